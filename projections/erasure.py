"""Erasure in the views: the clear copies of a person's data overwritten (CONTRACT §12).

The view tables are rebuildable and keep clear, search-ready copies of names and addresses; erasure
overwrites them in the transaction that destroys the person's keys (the caller's cursor), in every
generation present (the active one, and one being built). Counts, responses and reasons stay: only the
personal fields become null. Fold checkpoints of the person's recipients are dropped (a cache: a history
page folds from the journal, whose sealed fields can no longer be opened).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from domain.personal import redact_text, split_personal
from projections.views import ViewsMixin, dump_contact, load_contact


@dataclass
class ViewsErased:
    """What the views held of the person: their mailings, and how many signals their recipients folded."""

    mailings: list[str] = field(default_factory=list)
    signals: int = 0
    addresses: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)


def generations(views: ViewsMixin, c: Any) -> list[int]:
    """The generations whose recipients table exists."""
    if views.placeholder == "%s":
        c.execute(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'rv%%_recipients'"
        )
    else:
        c.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'rv%_recipients'")
    found = []
    for row in c.fetchall():
        digits = row["name"][2 : -len("_recipients")]
        if digits.isdigit():
            found.append(int(digits))
    return sorted(found)


def person_in_views(views: ViewsMixin, c: Any, generation: int, contact_id: str) -> ViewsErased:
    """The contact's mailings, signals and every address the views know for them (read before erasing)."""
    m = views.placeholder
    t = views.t
    found = ViewsErased()
    c.execute(f"SELECT mailing_id, name, email FROM {t(generation, 'recipients')} WHERE contact_id = {m}", (contact_id,))
    for row in c.fetchall():
        found.mailings.append(row["mailing_id"])
        if row["email"]:
            found.addresses.add(str(row["email"]).strip().lower())
        if row["name"]:
            found.names.add(str(row["name"]))
    c.execute(f"SELECT email FROM {t(generation, 'contacts')} WHERE contact_id = {m}", (contact_id,))
    row = c.fetchone()
    if row is not None and row["email"]:
        found.addresses.add(str(row["email"]).strip().lower())
    found.mailings.sort()
    return found


def erase_from_views(
    views: ViewsMixin,
    c: Any,
    contact_id: str | None,
    addresses: set[str],
    pattern: re.Pattern[str] | None = None,
    names: re.Pattern[str] | None = None,
) -> None:
    """Overwrite the contact's clear copies in every generation: names, addresses, details, parked payloads,
    and (``pattern``: every form of their addresses and names) the text of quarantined input and notices.
    ``contact_id`` None: addresses only (people who never became contacts: what was parked under them)."""
    m = views.placeholder
    t = views.t
    for g in generations(views, c):
        if contact_id is None:
            _erase_side(views, c, g, None, addresses)
            if pattern is not None:
                redact_side_text(views, c, g, pattern, names)
            continue
        c.execute(f"SELECT rid, state FROM {t(g, 'recipients')} WHERE contact_id = {m}", (contact_id,))
        rows = c.fetchall()
        for row in rows:
            state = orjson.loads(bytes(row["state"]))
            if state.get("detail") is not None:
                state["detail"] = None
            c.execute(
                f"UPDATE {t(g, 'recipients')} SET name = NULL, email = NULL, state = {m} WHERE rid = {m}",
                (orjson.dumps(state), row["rid"]),
            )
        if rows:
            rids = [row["rid"] for row in rows]
            c.execute(f"DELETE FROM {t(g, 'checkpoints')} WHERE rid IN ({', '.join([m] * len(rids))})", rids)
        c.execute(f"SELECT state FROM {t(g, 'contacts')} WHERE contact_id = {m}", (contact_id,))
        contact = c.fetchone()
        if contact is not None:
            kept = load_contact(bytes(contact["state"]) if not isinstance(contact["state"], str) else contact["state"])
            kept.email = None
            c.execute(
                f"UPDATE {t(g, 'contacts')} SET email = NULL, state = {m} WHERE contact_id = {m}",
                (dump_contact(kept), contact_id),
            )
        c.execute(f"UPDATE {t(g, 'wave_sends')} SET email = NULL WHERE contact_id = {m}", (contact_id,))
        _erase_side(views, c, g, contact_id, addresses)
        if pattern is not None:
            redact_side_text(views, c, g, pattern, names)


def redact_side_text(views: ViewsMixin, c: Any, g: int, pattern: re.Pattern[str], names: re.Pattern[str] | None) -> None:
    """Quarantined input and provider notices whose text names the person: those forms replaced."""
    m = views.placeholder
    table = views.t(g, "side")
    c.execute(f"SELECT id, payload FROM {table} WHERE kind IN ('quarantine', 'notice')")
    for row in c.fetchall():
        raw = row["payload"]
        text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
        redacted = redact_text(text, pattern, names)
        if redacted != text:
            c.execute(f"UPDATE {table} SET payload = {m} WHERE id = {m}", (redacted.encode(), row["id"]))


def _erase_side(views: ViewsMixin, c: Any, g: int, contact_id: str | None, addresses: set[str]) -> None:
    """Parked signals and test sends naming the contact or one of its addresses: their payloads without
    the personal fields (what they counted stays)."""
    m = views.placeholder
    table = views.t(g, "side")
    c.execute(f"SELECT id, payload FROM {table} WHERE kind IN ('unmatched', 'test_send')")
    for row in c.fetchall():
        raw = row["payload"]
        payload = orjson.loads(raw if isinstance(raw, (bytes, str)) else bytes(raw))
        correlation = payload.get("correlation") or payload
        email = str(correlation.get("email") or "").strip().lower()
        if (contact_id is None or correlation.get("contact_id") != contact_id) and email not in addresses:
            continue
        clear, personal = split_personal(payload)
        signal = clear.get("signal")
        if isinstance(signal, dict) and "original_url" in signal:  # held opened: the URL as clicked, the address in it
            clear = {**clear, "signal": {k: v for k, v in signal.items() if k != "original_url"}}
            personal["signal.original_url"] = signal["original_url"]
        if personal:
            clear["erased"] = True
            c.execute(f"UPDATE {table} SET payload = {m} WHERE id = {m}", (orjson.dumps(clear), row["id"]))


def rekey_side(views: ViewsMixin, c: Any, old_hex: str, new_hex: str) -> None:
    """A bucket renamed by its address's keyed hash: its parked rows' ids (``<bucket id>:<key>``) follow it, in
    every generation."""
    m = views.placeholder
    for g in generations(views, c):
        table = views.t(g, "side")
        c.execute(f"UPDATE {table} SET id = {m} || substr(id, 33) WHERE id LIKE {m}", (new_hex, old_hex + ":%"))
