"""Erasure in the views: the clear copies of people's data overwritten (CONTRACT §12).

The view tables are rebuildable and keep clear, search-ready copies of names and addresses; erasure
overwrites them in the transaction that destroys the people's keys (the caller's cursor), in every
generation present (the active one, and one being built). Counts, responses and reasons stay: only the
personal fields become null. Fold checkpoints of the people's recipients are dropped (a cache: a history
page folds from the journal, whose sealed fields can no longer be opened).

Set-based: a chunk of contacts (a bulk erasure's, or one) costs a few statements a table, not a few a
contact: ``WHERE contact_id IN (…)`` and ``executemany``, each parked-payload and side-text table read once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from domain.personal import redact_text, split_personal
from projections.views import ViewsMixin, dump_contact, load_contact

IN_CHUNK = 500  # ids in one IN (…): far below either store's limit on a statement's parameters


@dataclass
class ViewsErased:
    """What the views held of a person: their mailings, and every address and name they were known by."""

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


def _parts(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), IN_CHUNK):
        yield items[i : i + IN_CHUNK]


def _select_in(views: ViewsMixin, c: Any, sql: str, ids: Sequence[str]) -> Iterator[Any]:
    """``sql`` with ``{in}`` standing for a list of marks, run a part of ``ids`` at a time: every row."""
    for part in _parts(ids):
        c.execute(sql.format(ids=views._in(len(part))), list(part))
        yield from c.fetchall()


def _execute_in(views: ViewsMixin, c: Any, sql: str, ids: Sequence[str]) -> None:
    for part in _parts(ids):
        c.execute(sql.format(ids=views._in(len(part))), list(part))


def person_in_views(views: ViewsMixin, c: Any, generation: int, contact_id: str) -> ViewsErased:
    """The contact's mailings and every address and name the views know for them (read before erasing)."""
    return people_in_views(views, c, generation, [contact_id])[contact_id]


def people_in_views(views: ViewsMixin, c: Any, generation: int, contact_ids: Sequence[str]) -> dict[str, ViewsErased]:
    """Each contact's mailings and every address and name the views know for them: two reads a chunk."""
    t = views.t
    found = {cid: ViewsErased() for cid in contact_ids}
    ids = list(found)
    for row in _select_in(
        views,
        c,
        f"SELECT contact_id, mailing_id, name, email FROM {t(generation, 'recipients')} WHERE contact_id IN ({{ids}})",
        ids,
    ):
        person = found[row["contact_id"]]
        person.mailings.append(row["mailing_id"])
        if row["email"]:
            person.addresses.add(str(row["email"]).strip().lower())
        if row["name"]:
            person.names.add(str(row["name"]))
    for row in _select_in(
        views, c, f"SELECT contact_id, email FROM {t(generation, 'contacts')} WHERE contact_id IN ({{ids}})", ids
    ):
        if row["email"]:
            found[row["contact_id"]].addresses.add(str(row["email"]).strip().lower())
    for person in found.values():
        person.mailings.sort()
    return found


def erase_from_views(
    views: ViewsMixin,
    c: Any,
    contact_ids: Sequence[str],
    addresses: set[str],
    pattern: Callable[[], re.Pattern[str] | None] | None = None,
    names: Callable[[], re.Pattern[str] | None] | None = None,
) -> None:
    """Overwrite the contacts' clear copies in every generation: names, addresses, details, parked payloads
    naming them or one of ``addresses``, and (``pattern``: made when some text is there to search, every form
    of their addresses; ``names``: of their names) the text of quarantined input and notices. No contact ids:
    addresses only (people who never became contacts: what was parked under them)."""
    m = views.placeholder
    t = views.t
    ids = sorted(set(contact_ids))
    for g in generations(views, c):
        if ids:
            _erase_recipients(views, c, g, ids)
            rows = list(
                _select_in(views, c, f"SELECT contact_id, state FROM {t(g, 'contacts')} WHERE contact_id IN ({{ids}})", ids)
            )
            kept = []
            for row in rows:
                contact = load_contact(bytes(row["state"]) if not isinstance(row["state"], str) else row["state"])
                contact.email = None
                kept.append((dump_contact(contact), row["contact_id"]))
            if kept:
                c.executemany(f"UPDATE {t(g, 'contacts')} SET email = NULL, state = {m} WHERE contact_id = {m}", kept)
            _execute_in(views, c, f"UPDATE {t(g, 'wave_sends')} SET email = NULL WHERE contact_id IN ({{ids}})", ids)
        _erase_side(views, c, g, set(ids), addresses)
        if pattern is not None:
            redact_side_text(views, c, g, pattern, names)


def _erase_recipients(views: ViewsMixin, c: Any, g: int, ids: Sequence[str]) -> None:
    """The contacts' recipient rows without names, addresses and detail texts; their fold checkpoints dropped."""
    m = views.placeholder
    table = views.t(g, "recipients")
    rids, details = [], []
    for row in _select_in(views, c, f"SELECT rid, state FROM {table} WHERE contact_id IN ({{ids}})", ids):
        rids.append(row["rid"])
        state = orjson.loads(bytes(row["state"]))
        if state.get("detail") is not None:
            state["detail"] = None
            details.append((orjson.dumps(state), row["rid"]))
    _execute_in(views, c, f"UPDATE {table} SET name = NULL, email = NULL WHERE contact_id IN ({{ids}})", ids)
    if details:
        c.executemany(f"UPDATE {table} SET state = {m} WHERE rid = {m}", details)
    if rids:
        _execute_in(views, c, f"DELETE FROM {views.t(g, 'checkpoints')} WHERE rid IN ({{ids}})", rids)


def redact_side_text(
    views: ViewsMixin,
    c: Any,
    g: int,
    pattern: Callable[[], re.Pattern[str] | None],
    names: Callable[[], re.Pattern[str] | None] | None = None,
) -> None:
    """Quarantined input and provider notices whose text names a person: those forms replaced. The patterns
    are made only when there is text to search (a big chunk's take a while to compile)."""
    m = views.placeholder
    table = views.t(g, "side")
    c.execute(f"SELECT id, payload FROM {table} WHERE kind IN ('quarantine', 'notice')")
    rows = c.fetchall()
    if not rows:
        return
    addresses = pattern()
    if addresses is None:
        return
    named = names() if names is not None else None
    changed = []
    for row in rows:
        raw = row["payload"]
        text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
        redacted = redact_text(text, addresses, named)
        if redacted != text:
            changed.append((redacted.encode(), row["id"]))
    if changed:
        c.executemany(f"UPDATE {table} SET payload = {m} WHERE id = {m}", changed)


def _erase_side(views: ViewsMixin, c: Any, g: int, contact_ids: set[str], addresses: set[str]) -> None:
    """Parked signals and test sends naming one of the contacts or one of the addresses: their payloads
    without the personal fields (what they counted stays). One read of the table."""
    m = views.placeholder
    table = views.t(g, "side")
    c.execute(f"SELECT id, payload FROM {table} WHERE kind IN ('unmatched', 'test_send')")
    changed = []
    for row in c.fetchall():
        raw = row["payload"]
        payload = orjson.loads(raw if isinstance(raw, (bytes, str)) else bytes(raw))
        correlation = payload.get("correlation") or payload
        email = str(correlation.get("email") or "").strip().lower()
        if correlation.get("contact_id") not in contact_ids and email not in addresses:
            continue
        clear, personal = split_personal(payload)
        signal = clear.get("signal")
        if isinstance(signal, dict) and "original_url" in signal:  # held opened: the URL as clicked, the address in it
            clear = {**clear, "signal": {k: v for k, v in signal.items() if k != "original_url"}}
            personal["signal.original_url"] = signal["original_url"]
        if personal:
            clear["erased"] = True
            changed.append((orjson.dumps(clear), row["id"]))
    if changed:
        c.executemany(f"UPDATE {table} SET payload = {m} WHERE id = {m}", changed)


def rekey_side(views: ViewsMixin, c: Any, old_hex: str, new_hex: str) -> None:
    """A bucket renamed by its address's keyed hash: its parked rows' ids (``<bucket id>:<key>``) follow it, in
    every generation."""
    m = views.placeholder
    for g in generations(views, c):
        table = views.t(g, "side")
        c.execute(f"UPDATE {table} SET id = {m} || substr(id, 33) WHERE id LIKE {m}", (new_hex, old_hex + ":%"))
