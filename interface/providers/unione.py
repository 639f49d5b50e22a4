"""UniOne (Unisender Go) webhooks: authentication and parsing (CONTRACT §6).

Authenticity: ``auth`` is the MD5 hex of the raw body in which the top-level
``auth`` value is replaced by the API key. We hash the raw bytes, never re-serialised
JSON. The status is not mapped here: the ruleset maps ``Signal.fields``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from domain.signals import (
    Notice,
    ParsedBatch,
    ProviderEvent,
    Quarantined,
    Signal,
    dedup_key,
)

from .common import (
    collect,
    correlation,
    json_text,
    load_json,
    opt_str,
    optional_object,
    require_object,
    require_str,
    require_time,
    sorted_json,
)

SOURCE = "unione"
STATUS_EVENT = "transactional_email_status"
SPAM_BLOCK = "transactional_spam_block"
# Keys of the single-event flat form that are not part of ``event_data``.
_FLAT_ENVELOPE_KEYS = frozenset({"auth", "event_name", "user_id", "project_id", "project_name"})
# The tokens that decide where a key of the top-level object stands: strings (whole, escapes included), a
# string never closed, brackets, and the comma between members. Scalars need no token.
_MEMBER_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|"|[][{},]', re.DOTALL)
_AUTH_KEY = b'"auth"'
_AUTH_VALUE = re.compile(rb'[ \t\r\n]*:[ \t\r\n]*"([0-9a-fA-F]{32})"')  # JSON's whitespace, then 32 hex digits
# What delimits a JSON document: strings (skipped whole, escapes included), a string never
# closed, and brackets.
_DELIMITERS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|"|[][{}]', re.DOTALL)
_SCALAR = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[-+.0-9A-Za-z]+', re.DOTALL)  # a string, number, true, false, null
_JSON_WHITESPACE = b" \t\r\n"


def verify(body: bytes, api_keys: Sequence[str]) -> bool:
    """True when the body's top-level ``auth`` matches one of the configured API keys.

    The key replaces the value of the top-level object's ``auth`` member, located in the raw bytes
    (``_top_level_auth``): an ``auth`` field deeper in the body (the sender's metadata may hold one) is
    not the signature, whatever comes first."""
    match = _top_level_auth(body)
    if match is None:
        return False
    given = match.group(1).decode("ascii").lower()
    head, tail = body[: match.start(1)], body[match.end(1) :]
    return any(hmac.compare_digest(hashlib.md5(head + key.encode("utf-8") + tail).hexdigest(), given) for key in api_keys if key)


def _top_level_auth(body: bytes) -> re.Match[bytes] | None:
    """The value of the top-level object's ``auth`` member, as 32 hex digits in a string (group 1), or None.

    A tokenizer over the raw bytes, never a parse and re-serialisation: one pass, no recursion, reading
    strings whole (so a bracket or a quoted ``"auth"`` inside one is text), and stopping at the member, at
    the end of the top-level object, or at a string never closed. Bytes after the document are refused by
    ``trailing_bytes``, not here."""
    start = len(body) - len(body.lstrip(_JSON_WHITESPACE))
    if body[start : start + 1] != b"{":
        return None
    depth = 0
    key_next = False  # the next string at depth 1 names a member
    for token in _MEMBER_TOKENS.finditer(body, start):
        text = token.group()
        if text == b'"':  # a string never closed
            return None
        if text[0] == 0x22:
            if key_next and depth == 1:
                if text == _AUTH_KEY:
                    return _AUTH_VALUE.match(body, token.end())
                key_next = False
            continue
        if text in (b"{", b"["):
            depth += 1
            key_next = depth == 1
        elif text == b",":
            key_next = depth == 1
        else:  # a closing bracket
            depth -= 1
            if depth == 0:
                return None
    return None


def trailing_bytes(body: bytes) -> bool:
    """Whether the body is a JSON document followed by anything but whitespace.

    A genuine UniOne call is one JSON document. Bytes after it are what an MD5 length
    extension adds (a genuine body + MD5 padding + any text carries a valid ``auth``
    without the key: ``verify`` cannot tell), so such a body is refused, not kept.
    A body that is one document, or that does not begin with one, has none.
    """
    try:
        load_json(body)
        return False  # orjson takes one document and whitespace, nothing more
    except ValueError:
        pass
    start = len(body) - len(body.lstrip(_JSON_WHITESPACE))
    end = _document_end(body, start)
    if end is None or not body[end:].strip(_JSON_WHITESPACE):
        return False
    try:
        load_json(body[start:end])
    except ValueError:
        return False  # no JSON document to begin with: quarantined whole, as any unparsable body
    return True


def _document_end(body: bytes, start: int) -> int | None:
    """Where the JSON value starting at ``start`` ends (None when it never does); no recursion."""
    if body[start : start + 1] not in (b"{", b"["):
        scalar = _SCALAR.match(body, start)
        return scalar.end() if scalar else None
    depth = 0
    for token in _DELIMITERS.finditer(body, start):
        text = token.group()
        if text == b'"':  # a string never closed: the document never ends
            return None
        if text[0] == 0x22:  # a whole string: its brackets are text
            continue
        depth += 1 if text in (b"{", b"[") else -1
        if depth == 0:
            return token.end()
    return None


def parse(body: bytes, now: datetime) -> ParsedBatch:
    """Parse an (already authenticated, decompressed) UniOne body.

    Raises ``ValueError`` when the body is not JSON or neither the envelope nor
    the single-event flat form.
    """
    document = load_json(body)
    if not isinstance(document, dict):
        raise ValueError("UniOne body is not a JSON object")
    batch = ParsedBatch()
    if "events_by_user" in document:
        users = document["events_by_user"]
        if not isinstance(users, list):
            raise ValueError("'events_by_user' is not a list")
        for user in users:
            events = user.get("events") if isinstance(user, dict) else None
            if not isinstance(events, list):
                error = "'events_by_user' entry without an 'events' list"
                batch.quarantined.append(Quarantined(source=SOURCE, raw_text=json_text(user), error=error))
                continue
            for event in events:
                collect(batch, SOURCE, event, partial(_enveloped, event, now))
    elif "event_name" in document:
        collect(batch, SOURCE, document, partial(_flat, document, now), partial(body.decode, "utf-8", "replace"))
    else:
        raise ValueError("UniOne body has neither 'events_by_user' nor 'event_name'")
    return batch


def _enveloped(event: Any, now: datetime) -> ProviderEvent | Notice:
    event = require_object(event)
    return _event(require_str(event, "event_name"), event.get("event_data"), now)


def _flat(document: dict[str, Any], now: datetime) -> ProviderEvent | Notice:
    data = {k: v for k, v in document.items() if k not in _FLAT_ENVELOPE_KEYS}
    return _event(require_str(document, "event_name"), data, now)


def _event(name: str, data: Any, now: datetime) -> ProviderEvent | Notice:
    if name != STATUS_EVENT:
        # Spam blocks, and any event we do not know yet: kept as a notice.
        return Notice(
            provider=SOURCE,
            key=dedup_key("unione-notice", name, sorted_json(data)),
            kind=name,
            received_at=now,
            raw=data,
        )
    data = require_object(data, "'event_data'")
    status = require_str(data, "status")
    email = require_str(data, "email")
    occurred_at = require_time(data, "event_time")
    metadata = optional_object(data, "metadata")
    info = optional_object(data, "delivery_info")
    url = opt_str(data.get("url"), "url")
    delivery_status = opt_str(info.get("delivery_status"), "delivery_status")
    fields = {"status": status}
    if status == "hard_bounced" and delivery_status is not None:
        fields["delivery_status"] = delivery_status
    if status == "opened":  # "machine", "protected": a robot's or a privacy proxy's open (a ruleset maps it)
        traffic_type = opt_str(info.get("traffic_type"), "traffic_type")
        if traffic_type is not None:
            fields["traffic_type"] = traffic_type
    signal = Signal(
        key=dedup_key(SOURCE, data.get("job_id"), email, status, data["event_time"], url, delivery_status),
        source=SOURCE,
        fields=fields,
        received_at=now,
        occurred_at=occurred_at,
        url=url,
        detail=opt_str(info.get("destination_response"), "destination_response"),
        user_agent=opt_str(info.get("user_agent"), "user_agent"),
        raw=data,
    )
    return ProviderEvent(signal=signal, correlation=correlation(metadata, email))
