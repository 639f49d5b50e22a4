"""Postmark webhooks: parsing (CONTRACT §6).

One record a call, a JSON object with its ``RecordType`` (``Delivery``, ``Bounce``, ``SpamComplaint``,
``Open``, ``Click``, ``SubscriptionChange``). Postmark signs nothing: the secret ``POSTMARK_WEBHOOK_TOKEN``
comes with the call (``?token=``, HTTP Basic password, or ``Authorization: Bearer``; checked by the route).
``Metadata`` (``mailing_id``, ``contact_id``) names the recipient. The status is mapped by the ruleset
(``Type``, ``RecordType``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from domain.signals import ParsedBatch, ProviderEvent, Signal, dedup_key

from .common import Malformed, collect, correlation, load_json, opt_str, require_object, require_str, require_time, truthy

SOURCE = "postmark"
CLICK = "Click"
SUBSCRIPTION_CHANGE = "SubscriptionChange"
# each record type's own time field (the record's identity with MessageID and RecordType)
TIME_FIELDS = {
    "Delivery": "DeliveredAt",
    "Bounce": "BouncedAt",
    "SpamComplaint": "BouncedAt",
    "Open": "ReceivedAt",
    "Click": "ReceivedAt",
    SUBSCRIPTION_CHANGE: "ChangedAt",
}
_ANY_TIME = ("DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt")
TYPED = frozenset({"Bounce", "SpamComplaint"})  # the records whose ``Type`` is a status field


def parse(body: bytes, now: datetime) -> ParsedBatch:
    """Parse an (already authenticated) body; ``ValueError`` if it is not a JSON object."""
    record = load_json(body)
    if not isinstance(record, dict):
        raise ValueError("Postmark body is not a JSON object")
    batch = ParsedBatch()
    collect(batch, SOURCE, record, partial(_event, record, now))
    return batch


def _event(record: Any, now: datetime) -> ProviderEvent:
    record = require_object(record, "record")
    record_type = require_str(record, "RecordType")
    email = require_str(record, "Recipient" if record.get("Recipient") is not None else "Email")
    time_field = TIME_FIELDS.get(record_type) or next((name for name in _ANY_TIME if record.get(name) is not None), None)
    occurred_at = require_time(record, time_field) if time_field is not None else None
    url = opt_str(record.get("OriginalLink"), "OriginalLink") if record_type == CLICK else None
    fields = {"RecordType": record_type}
    status_type = _type(record, record_type)
    if status_type:
        fields["Type"] = status_type
    signal = Signal(
        key=dedup_key(SOURCE, record.get("MessageID"), record_type, record.get(time_field) if time_field else None, url),
        source=SOURCE,
        fields=fields,
        received_at=now,
        occurred_at=occurred_at,
        url=url,
        detail=_detail(record),
        user_agent=opt_str(record.get("UserAgent"), "UserAgent"),
        raw=record,
    )
    return ProviderEvent(signal=signal, correlation=correlation(_metadata(record), email))


def _type(record: Mapping[str, Any], record_type: str) -> str | None:
    """A bounce's (or complaint's) ``Type``; a suppressing ``SubscriptionChange``'s ``SuppressionReason``."""
    if record_type == SUBSCRIPTION_CHANGE:
        return opt_str(record.get("SuppressionReason"), "SuppressionReason") if truthy(record.get("SuppressSending")) else None
    return opt_str(record.get("Type"), "Type") if record_type in TYPED else None


def _detail(record: Mapping[str, Any]) -> str | None:
    for name in ("Details", "Description"):
        text = opt_str(record.get(name), name)
        if text and text.strip():
            return text
    return None


def _metadata(record: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = record.get("Metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise Malformed("'Metadata' is not an object")
    return metadata or {}
