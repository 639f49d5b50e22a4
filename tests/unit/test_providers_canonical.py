"""Canonical signals (POST /v1/signals) adapter."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from domain.signals import dedup_key
from interface.providers import canonical

NOW = datetime(2026, 3, 14, 13, 0, 0, tzinfo=UTC)


def item(**fields):
    base = {
        "event_id": "ev-1",
        "mailing_id": "spring-sale",
        "contact_id": "c-1001",
        "kind": "canceled_unsubscribed_type",
        "occurred_at": "2026-03-14T10:00:00Z",
    }
    return {k: v for k, v in {**base, **fields}.items() if v is not None}


def body(*items) -> bytes:
    return orjson.dumps({"signals": list(items)})


def test_parse_signals():
    full = item(
        event_id="ev-2",
        kind="soft_bounce",
        reason="will_retry",
        detail="451",
        url="https://x.example",
        occurred_at="2026-03-14 10:00:00",
    )
    batch = canonical.parse(body(item(), full, item(event_id="ev-3", kind="confirmation_checked")), NOW)
    assert batch.quarantined == [] and batch.notices == []
    first, second, third = batch.events
    assert first.signal.source == "system"
    assert first.signal.fields == {"kind": "canceled_unsubscribed_type"}
    assert first.signal.key == dedup_key("canonical", "ev-1")
    assert first.signal.received_at == NOW
    assert first.signal.occurred_at == datetime(2026, 3, 14, 10, tzinfo=UTC)
    assert first.signal.raw == item()
    assert (first.correlation.mailing_id, first.correlation.contact_id) == ("spring-sale", "c-1001")
    assert first.correlation.email is None and not first.correlation.test
    assert (second.signal.reason, second.signal.detail, second.signal.url) == ("will_retry", "451", "https://x.example")
    assert second.signal.occurred_at == datetime(2026, 3, 14, 10, tzinfo=UTC)
    assert third.signal.fields == {"kind": "confirmation_checked"}


def test_null_optional_fields_are_absent():
    [event] = canonical.parse(body({**item(), "reason": None, "url": None, "detail": None}), NOW).events
    assert event.signal.reason is None and event.signal.url is None


@pytest.mark.parametrize(
    "bad, error",
    [
        ("text", "not an object"),
        (item(event_id=""), "event_id"),
        ({k: v for k, v in item().items() if k != "event_id"}, "event_id"),
        ({k: v for k, v in item().items() if k != "mailing_id"}, "mailing_id"),
        ({k: v for k, v in item().items() if k != "contact_id"}, "contact_id"),
        ({k: v for k, v in item().items() if k != "kind"}, "kind"),
        ({k: v for k, v in item().items() if k != "occurred_at"}, "occurred_at"),
        (item(kind="bounced"), "kind"),
        (item(occurred_at="soon"), "occurred_at"),
        (item(reason="because"), "reason"),
        (item(url=42), "url"),
        (item(mailing_id=7), "mailing_id"),
    ],
)
def test_bad_item_is_quarantined_alone(bad, error):
    batch = canonical.parse(body(item(), bad, item(event_id="ev-9")), NOW)
    assert [e.signal.key for e in batch.events] == [dedup_key("canonical", "ev-1"), dedup_key("canonical", "ev-9")]
    [q] = batch.quarantined
    assert q.source == "canonical" and error in q.error
    assert orjson.loads(q.raw_text) == bad


@pytest.mark.parametrize("raw", [b"not json", b"", b"[]", b"{}", b'{"signals":{}}', b'{"signals":"x"}', b'"signals"'])
def test_body_of_another_shape_is_a_value_error(raw):
    with pytest.raises(ValueError):
        canonical.parse(raw, NOW)


def test_empty_signals_list_is_fine():
    batch = canonical.parse(b'{"signals":[]}', NOW)
    assert batch.events == [] and batch.quarantined == []
