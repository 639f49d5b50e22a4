"""Personal data: which fields of a journaled event identify a person, and how they are sealed (CONTRACT §12).

Crypto-shredding (CONTRACT §12): every personal field an event holds is stored only inside one sealed
blob per event, encrypted (AES-GCM) under the data key of the event's *subject*: a contact
(``contact:<id>``) or, for signals that never reached a contact, an address (``address:<keyed hash>``).
Destroying the subject's key erases every field sealed under it, in every copy of the journal.

What stays in clear is what the fold and the analytics read: codes, times, provider, mailing and
contact ids, dedup keys, reasons, machine flags, the user agent, and the click URL with any e-mail
address in it replaced by ``{email}`` (the link's identity). The fold never reads a sealed field.

Pure: sealing itself (the cipher, the keys) is ``application.privacy``'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

SEALED = "sealed"  # the event-state key holding the blob
SUBJECT = "subject"  # the event-state key naming whose data key seals it
ERASED = "erased"  # set on a decoded state whose subject's key was destroyed
EMAIL_PLACEHOLDER = "{email}"

# an address in a URL: plain, or with its @ URL-encoded; bounded (no backtracking past these lengths)
_ADDRESS_IN_URL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}(?:@|%40)[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){1,8}", re.IGNORECASE)
MAX_URL_SCAN = 8192  # characters of a URL searched for addresses (a longer one is sealed whole)


def contact_subject(contact_id: str) -> str:
    return f"contact:{contact_id}"


def address_subject(address_hash: str) -> str:
    return f"address:{address_hash}"


def redact_url(url: str) -> str:
    """The URL with every e-mail address in it (plain or URL-encoded) replaced by ``{email}``; a URL past
    ``MAX_URL_SCAN`` characters keeps its first part only (its whole text is sealed)."""
    if "@" not in url and "%" not in url:  # no address can be in it, written any way (the common case: no regex)
        return url if len(url) <= MAX_URL_SCAN else url[:MAX_URL_SCAN] + "…"
    head = url[:MAX_URL_SCAN]
    redacted = _ADDRESS_IN_URL.sub(EMAIL_PLACEHOLDER, head)
    if "@" in unquote(unquote(redacted)):  # an address written some other way: keep the URL up to its query
        redacted = re.split(r"[?#]", redacted, maxsplit=1)[0]
        if "@" in unquote(unquote(redacted)):
            return EMAIL_PLACEHOLDER
    return redacted if len(url) <= MAX_URL_SCAN else redacted + "…"


# ---- which fields are personal -----------------------------------------------------------------------

# top-level fields of an event state that identify a person
_TOP = ("name", "email", "bucket")
# fields of a nested record that identify a person, by the record's key in the state
_NESTED = {
    "signal": ("raw", "detail", "url"),
    "command": ("email", "name"),
    "correlation": ("email",),
    "request": ("emails",),  # a bulk erasure's addresses
}
_SYSTEM_RAW_KEPT = "system"  # our own signals' raw (decided_by, wave) names no one: kept in clear


def split_personal(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``state`` without its personal fields (a copy where anything changed), and those fields, by path.

    A signal's ``url`` stays in clear redacted (``redact_url``): the link's identity, what the fold and the
    click maps read; its original, when it differs, is sealed and opened as ``original_url``. Our own
    signals' ``raw`` stays in clear."""
    personal: dict[str, Any] = {}
    clear = state
    if "signal" in state and "name" not in state and "email" not in state and "bucket" not in state and "command" not in state:
        return _split_signal(
            state
        )  # (the names of _TOP, spelt out: this runs once a signal)  # a signal or a parked one (the hot path): only its record and correlation hold any
    for name in _TOP:
        if state.get(name) is not None:
            if clear is state:
                clear = dict(state)
            personal[name] = clear[name]
            clear[name] = None
    for outer, names in _NESTED.items():
        record = state.get(outer)
        if not isinstance(record, dict):
            continue
        inner = record
        for name in names:
            value = record.get(name)
            if value is None:
                continue
            if outer == "signal" and name == "raw" and record.get("source") == _SYSTEM_RAW_KEPT:
                continue
            if outer == "signal" and name == "url":
                if not isinstance(value, str):
                    continue
                redacted = redact_url(value)
                if redacted == value:
                    continue
                if inner is record:
                    inner = dict(record)
                personal[f"{outer}.original_{name}"] = value  # opened beside the redacted one: the fold reads that
                inner[name] = redacted
                continue
            if inner is record:
                inner = dict(record)
            personal[f"{outer}.{name}"] = value
            del inner[name]
        if inner is not record:
            if clear is state:
                clear = dict(state)
            clear[outer] = inner
    return clear, personal


def _split_signal(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``split_personal`` of a state whose personal fields are its signal record's (and a parked one's
    correlation address). The same fields, in the same order, as the general path: the record's detail,
    raw and original URL, then the correlation's address."""
    record = state["signal"]
    if "correlation" not in state and "detail" not in record and "url" not in record:  # most signals: only a raw body
        raw = record.get("raw")
        if raw is None or record.get("source") == _SYSTEM_RAW_KEPT:
            return state, {}
        inner = dict(record)
        del inner["raw"]
        clear = dict(state)
        clear["signal"] = inner
        return clear, {"signal.raw": raw}
    get = record.get
    detail, raw, url = get("detail"), get("raw"), get("url")
    if raw is not None and get("source") == _SYSTEM_RAW_KEPT:
        raw = None
    redacted = redact_url(url) if isinstance(url, str) else url
    url_changed = redacted != url
    correlation = state.get("correlation")
    email = correlation.get("email") if isinstance(correlation, dict) else None
    if detail is None and raw is None and not url_changed and email is None:
        return state, {}
    personal: dict[str, Any] = {}
    clear = dict(state)
    if detail is not None or raw is not None or url_changed:
        inner = dict(record)
        if detail is not None:
            personal["signal.detail"] = inner.pop("detail")
        if raw is not None:
            personal["signal.raw"] = inner.pop("raw")
        if url_changed:
            personal["signal.original_url"] = url
            inner["url"] = redacted
        clear["signal"] = inner
    if email is not None:
        personal["correlation.email"] = email
        clear["correlation"] = {k: v for k, v in correlation.items() if k != "email"}  # type: ignore[union-attr]
    return clear, personal


def merge_personal(state: dict[str, Any], personal: dict[str, Any]) -> dict[str, Any]:
    """The state with its personal fields put back (in place)."""
    for path, value in personal.items():
        outer, _, name = path.partition(".")
        if name:
            record = state.get(outer)
            if isinstance(record, dict):
                record[name] = value
        else:
            state[outer] = value
    return state


def mark_erased(state: dict[str, Any]) -> dict[str, Any]:
    """A state whose sealed fields can no longer be opened: flagged, its personal fields absent (null)."""
    state.pop(SEALED, None)
    state[ERASED] = True
    return state


ERASED_TEXT = "[erased]"


def json_escaped(text: str) -> str:
    """``text`` as a JSON writer that escapes non-ASCII writes it (``\\uXXXX``, lower-case hex)."""
    return "".join(ch if ord(ch) < 128 else f"\\u{ord(ch):04x}" for ch in text)


def person_patterns(texts: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for every form a person's address or name takes in stored text: as
    given, URL-encoded, and JSON-escaped (non-ASCII as ``\\uXXXX``), longest first. None when there is none."""
    forms: set[str] = set()
    for text in texts:
        text = text.strip()
        if len(text) < 3:  # a two-letter name would redact half the journal
            continue
        forms.update(
            {text, quote(text, safe=""), quote(text, safe="@"), text.encode("ascii", "backslashreplace").decode("ascii")}
        )
        forms.add(json_escaped(text))
    if not forms:
        return None
    return re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)), re.IGNORECASE)


def redact_text(text: str, addresses: re.Pattern[str], names: re.Pattern[str] | None = None) -> str:
    """The text with the person's addresses replaced; when it held one, their names too."""
    redacted, found = addresses.subn(ERASED_TEXT, text)
    if found and names is not None:
        redacted = names.sub(ERASED_TEXT, redacted)
    return redacted
