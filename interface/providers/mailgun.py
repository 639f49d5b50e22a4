"""Mailgun webhooks: signature check and parsing (CONTRACT §6).

One event a request, as JSON: ``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``.
Authenticity: ``signature`` is the hex HMAC-SHA256 of ``timestamp + token`` under a webhook signing key
(``MAILGUN_WEBHOOK_SIGNING_KEYS``); a timestamp older than ``MAX_AGE`` (or later than the clock skew allows)
is refused, so a captured body cannot be replayed after it. Inside the window a retry is a duplicate
(``event-data.id``). The status is not mapped here: the ruleset maps ``Signal.fields``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from functools import partial
from typing import Any

from domain.signals import ParsedBatch, ProviderEvent, Signal, dedup_key

from .common import (
    Malformed,
    collect,
    correlation,
    load_json,
    opt_id,
    opt_str,
    optional_object,
    require_object,
    require_str,
    unix_time,
)

SOURCE = "mailgun"
MAX_AGE = timedelta(hours=24)  # a signed timestamp older than this is refused
FAILED = "failed"  # the one event whose ``severity`` and ``reason`` are status fields


def refusal(body: bytes, signing_keys: Sequence[str], now: datetime, max_skew: timedelta) -> str | None:
    """Why the body is not an authentic Mailgun call of now (None when it is)."""
    keys = [key for key in signing_keys if key]
    if not keys:
        return "no Mailgun webhook signing key is configured"
    try:
        document = load_json(body)
    except ValueError:
        return "the body is not JSON: no signature to check"
    block = document.get("signature") if isinstance(document, dict) else None
    if not isinstance(block, dict):
        return "no signature block"
    timestamp, token, signature = block.get("timestamp"), block.get("token"), block.get("signature")
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        timestamp = str(timestamp)
    if not all(isinstance(v, str) and v for v in (timestamp, token, signature)):
        return "the signature block lacks timestamp, token or signature"
    message = f"{timestamp}{token}".encode()
    given = signature.strip().lower().encode()
    if not any(hmac.compare_digest(hmac.new(k.encode(), message, hashlib.sha256).hexdigest().encode(), given) for k in keys):
        return "the signature does not verify with a configured signing key"
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return "the signed timestamp is not Unix seconds"
    if signed_at < now - MAX_AGE:
        return f"the signed timestamp is older than {int(MAX_AGE.total_seconds() // 3600)} h"
    if signed_at > now + max_skew:
        return "the signed timestamp is in the future"
    return None


def sign(timestamp: str, token: str, key: str) -> str:
    """The signature Mailgun computes (for ``responses send`` and the tests)."""
    return hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def parse(body: bytes, now: datetime) -> ParsedBatch:
    """Parse an (already authenticated) body; ``ValueError`` if it is not a JSON object."""
    document = load_json(body)
    if not isinstance(document, dict):
        raise ValueError("Mailgun body is not a JSON object")
    if "event-data" not in document:
        raise ValueError("Mailgun body has no 'event-data' (a legacy form-encoded webhook is not accepted)")
    data = document["event-data"]
    batch = ParsedBatch()
    collect(batch, SOURCE, data, partial(_event, data, now))
    return batch


def _event(data: Any, now: datetime) -> ProviderEvent:
    data = require_object(data, "'event-data'")
    name = require_str(data, "event")
    email = _recipient(data)
    occurred_at = unix_time(data.get("timestamp"))
    fields = {"event": name}
    if name == FAILED:
        for field_name in ("severity", "reason"):
            value = opt_str(data.get(field_name), field_name)
            if value:
                fields[field_name] = value
    url = opt_str(data.get("url"), "url")
    event_id = opt_id(data.get("id"), "id")
    if event_id is not None:
        key = dedup_key(SOURCE, event_id)
    else:
        message_id = optional_object(optional_object(data, "message"), "headers").get("message-id")
        key = dedup_key(SOURCE, message_id, name, data.get("timestamp"), email, url)
    signal = Signal(
        key=key,
        source=SOURCE,
        fields=fields,
        received_at=now,
        occurred_at=occurred_at,
        url=url,
        detail=_detail(data),
        user_agent=opt_str(optional_object(data, "client-info").get("user-agent"), "user-agent"),
        raw=data,
    )
    return ProviderEvent(signal=signal, correlation=correlation(_user_variables(data), email))


def _recipient(data: Mapping[str, Any]) -> str:
    """``recipient``; a ``rejected`` event has none, only the message's ``To`` header."""
    if data.get("recipient") is not None:
        return require_str(data, "recipient")
    to = optional_object(optional_object(data, "message"), "headers").get("to")
    address = parseaddr(to)[1] if isinstance(to, str) else ""
    if not address:
        raise Malformed("missing 'recipient'")
    return address


def _detail(data: Mapping[str, Any]) -> str | None:
    status = optional_object(data, "delivery-status")
    for value in (status.get("message"), status.get("description"), optional_object(data, "reject").get("reason")):
        text = opt_str(value, "detail")
        if text and text.strip():
            return text
    return None


def _user_variables(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """What the sender attached (``v:mailing_id``…): an object; anything else names no one (the address does)."""
    variables = data.get("user-variables")
    return variables if isinstance(variables, dict) else {}
