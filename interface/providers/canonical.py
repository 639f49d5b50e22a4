"""Canonical signals from the sender (``POST /v1/signals``, CONTRACT §6).

``{"signals":[{"event_id","mailing_id","contact_id","kind","occurred_at",
"url"?,"reason"?,"detail"?}]}`` where ``kind`` is a response code or
``confirmation_checked``. A body of another shape raises ``ValueError``
(answered 400); a bad item is quarantined alone.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from domain.catalogue import CODES, REASONS
from domain.signals import (
    CONFIRMATION_CHECKED,
    Correlation,
    ParsedBatch,
    ProviderEvent,
    dedup_key,
    system_signal,
)

from .common import Malformed, collect, load_json, require_object, require_str, require_time, shown

SOURCE = "canonical"  # the quarantine's source; the signals' source is "system"
KINDS = frozenset(CODES) | {CONFIRMATION_CHECKED}
_OPTIONAL_TEXT = ("url", "reason", "detail")


def parse(body: bytes, now: datetime) -> ParsedBatch:
    document = load_json(body)
    if not isinstance(document, dict) or not isinstance(document.get("signals"), list):
        raise ValueError('body must be an object {"signals": [...]}')
    batch = ParsedBatch()
    for item in document["signals"]:
        collect(batch, SOURCE, item, partial(_event, item, now))
    return batch


def _event(item: Any, now: datetime) -> ProviderEvent:
    item = require_object(item, "signal")
    event_id = require_str(item, "event_id")
    mailing_id = require_str(item, "mailing_id")
    contact_id = require_str(item, "contact_id")
    kind = require_str(item, "kind")
    if kind not in KINDS:
        raise Malformed(f"unknown 'kind': {shown(kind)}")
    occurred_at = require_time(item, "occurred_at")
    for name in _OPTIONAL_TEXT:
        if item.get(name) is not None and not isinstance(item[name], str):
            raise Malformed(f"{name!r} is not a string")
    reason = item.get("reason")
    if reason is not None and reason not in REASONS:
        raise Malformed(f"unknown 'reason': {shown(reason)}")
    signal = system_signal(
        kind,
        key=dedup_key("canonical", event_id),
        at=now,
        occurred_at=occurred_at,
        reason=reason,
        detail=item.get("detail"),
        url=item.get("url"),
        raw=item,
    )
    return ProviderEvent(signal=signal, correlation=Correlation(mailing_id=mailing_id, contact_id=contact_id))
