"""SendGrid Event Webhook: signature check and parsing (CONTRACT §6).

The body is a JSON array of events. The signature is ECDSA P-256 / SHA-256
(base64 DER) over the timestamp header followed by the raw body, verified with
the configured public key (base64 DER SubjectPublicKeyInfo). The status fields a
ruleset maps are ``event``, and on bounces ``type`` and ``bounce_classification``,
on drops ``reason``; an ``account_status_change`` is a provider notice.
"""

from __future__ import annotations

import base64
from datetime import datetime
from functools import lru_cache, partial
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from domain.signals import Notice, ParsedBatch, ProviderEvent, Signal, dedup_key

from .common import (
    Malformed,
    collect,
    correlation,
    load_json,
    opt_str,
    require_object,
    require_str,
    shown,
    sorted_json,
    truthy,
    unix_time,
)

SOURCE = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
ACCOUNT_STATUS_CHANGE = "account_status_change"  # an account event (a compliance suspension, say): a provider notice


def verify(body: bytes, signature_b64: str | None, timestamp: str | None, public_key_b64: str | None) -> bool:
    """True when the signature over ``timestamp + body`` is valid; any error is False."""
    if not signature_b64 or not timestamp or not public_key_b64:
        return False
    try:
        key = _public_key(public_key_b64)
        signature = base64.b64decode(signature_b64, validate=True)
        key.verify(signature, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except Exception:  # bad base64, bad key, bad DER, InvalidSignature: all mean "not authentic"
        return False
    return True


@lru_cache(maxsize=8)
def _public_key(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    key = load_der_public_key(base64.b64decode(public_key_b64, validate=True))
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an ECDSA P-256 public key")
    return key


def parse(body: bytes, now: datetime) -> ParsedBatch:
    """Parse an (already verified) body; ``ValueError`` if it is not a JSON array."""
    events = load_json(body)
    if not isinstance(events, list):
        raise ValueError("SendGrid body is not a JSON array")
    batch = ParsedBatch()
    for event in events:
        collect(batch, SOURCE, event, partial(_event, event, now))
    return batch


def _event(event: Any, now: datetime) -> ProviderEvent | Notice:
    event = require_object(event)
    name = require_str(event, "event")
    event_id = event.get("sg_event_id")
    if isinstance(event_id, (dict, list)):
        raise Malformed(f"'sg_event_id' is not an identifier: {shown(event_id)}")
    if name == ACCOUNT_STATUS_CHANGE:  # about the account, not a recipient: it names no address
        return Notice(
            provider=SOURCE,
            key=dedup_key("sendgrid-notice", name, event_id or sorted_json(event)),
            kind=name,
            received_at=now,
            raw=event,
        )
    email = require_str(event, "email")
    occurred_at = unix_time(event.get("timestamp"))
    url = opt_str(event.get("url"), "url")
    fields = {"event": name}
    if name == "bounce":
        for field_name in ("bounce_classification", "type"):
            value = opt_str(event.get(field_name), field_name)
            if value is not None:
                fields[field_name] = value
    elif name == "dropped":
        reason = opt_str(event.get("reason"), "reason")
        if reason is not None:
            fields["reason"] = reason
    if event_id:
        key = dedup_key(SOURCE, event_id)
    else:
        key = dedup_key(SOURCE, event.get("sg_message_id"), name, event.get("timestamp"), email, url)
    signal = Signal(
        key=key,
        source=SOURCE,
        fields=fields,
        received_at=now,
        occurred_at=occurred_at,
        url=url,
        detail=opt_str(event.get("reason") or event.get("response"), "reason"),
        user_agent=opt_str(event.get("useragent"), "useragent"),
        machine=truthy(event.get("sg_machine_open")),
        raw=event,
    )
    return ProviderEvent(signal=signal, correlation=correlation(event, email))
