"""Brevo (formerly Sendinblue) transactional webhooks: parsing (CONTRACT §6).

A call carries one event (a JSON object) or, with batched webhooks, a JSON array of them. Brevo signs
nothing: the secret ``BREVO_WEBHOOK_TOKEN`` comes with the call (``?token=``, HTTP Basic password or
``Authorization: Bearer``; checked by the route with ``common.secret_matches``). ``X-Mailin-custom``, the
header set at sending, holds JSON ``{"mailing_id", "contact_id"}``; Brevo's own ``id`` and ``contact_id``
name its account and its contact, never our recipient. The status is mapped by the ruleset (``event``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from domain.signals import ParsedBatch, ProviderEvent, Signal, dedup_key, plausible_time

from .common import Malformed, collect, correlation, load_json, opt_str, require_object, require_str, shown

SOURCE = "brevo"
CUSTOM = "X-Mailin-custom"
CLICK = "click"
MACHINE_OPENS = frozenset({"proxy_open", "unique_proxy_open"})  # loaded by a privacy proxy, not the recipient
_MILLISECONDS = 10**11  # a ``ts_epoch`` above this is milliseconds (Brevo sends seconds in some events)


def parse(body: bytes, now: datetime) -> ParsedBatch:
    """Parse an (already authenticated) body; ``ValueError`` if it is neither an object nor an array."""
    document = load_json(body)
    if isinstance(document, dict):
        events: list[Any] = [document]
    elif isinstance(document, list):
        events = document
    else:
        raise ValueError("Brevo body is neither a JSON object nor an array of them")
    batch = ParsedBatch()
    for event in events:
        collect(batch, SOURCE, event, partial(_event, event, now))
    return batch


def _event(event: Any, now: datetime) -> ProviderEvent:
    event = require_object(event)
    name = require_str(event, "event")
    email = require_str(event, "email")
    url = opt_str(event.get("link"), "link") if name == CLICK else None
    time_of_event = event.get("ts_event", event.get("ts_epoch", event.get("date")))
    signal = Signal(
        key=dedup_key(SOURCE, event.get("message-id"), name, time_of_event, email, url),
        source=SOURCE,
        fields={"event": name},
        received_at=now,
        occurred_at=_occurred_at(event),
        url=url,
        detail=opt_str(event.get("reason"), "reason"),
        user_agent=opt_str(event.get("user_agent"), "user_agent"),
        machine=name in MACHINE_OPENS,
        raw=event,
    )
    return ProviderEvent(signal=signal, correlation=correlation(_custom(event.get(CUSTOM)), email))


def _custom(value: Any) -> Mapping[str, Any]:
    """``X-Mailin-custom``: JSON text (or an object) naming the recipient; any other text names no one."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _occurred_at(event: Mapping[str, Any]) -> datetime | None:
    """``ts_epoch`` (milliseconds, or seconds), else ``ts_event`` or ``ts`` (Unix seconds), all UTC. ``date`` is in
    the Brevo account's time zone, which the call does not name: without an epoch time, the receipt's is used."""
    for name in ("ts_epoch", "ts_event", "ts"):
        value = event.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise Malformed(f"unparsable {name!r}: {shown(value)}")
        try:
            seconds = float(value)
            if name == "ts_epoch" and abs(seconds) >= _MILLISECONDS:
                seconds /= 1000
            return plausible_time(datetime.fromtimestamp(seconds, tz=UTC))
        except (ValueError, OverflowError, OSError):
            raise Malformed(f"unparsable {name!r}: {shown(value)}") from None
    return None
