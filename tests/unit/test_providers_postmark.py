"""Postmark adapter: record types, their time fields and dedup identity, Type, Metadata, what is kept sealed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.personal import split_personal
from domain.signals import dedup_key
from interface.providers import postmark

NOW = datetime(2026, 3, 14, 13, 0, tzinfo=UTC)


def parse(record: dict[str, object]) -> list:
    return postmark.parse(json.dumps(record).encode(), NOW).events


@pytest.mark.parametrize(
    "record_type, time_field, recipient_field",
    [
        ("Delivery", "DeliveredAt", "Recipient"),
        ("Bounce", "BouncedAt", "Email"),
        ("SpamComplaint", "BouncedAt", "Email"),
        ("Open", "ReceivedAt", "Recipient"),
        ("Click", "ReceivedAt", "Recipient"),
        ("SubscriptionChange", "ChangedAt", "Recipient"),
    ],
)
def test_each_record_type_reads_its_own_time_field(record_type: str, time_field: str, recipient_field: str) -> None:
    at = "2016-04-27T16:28:50.3963933-04:00"
    record = {"RecordType": record_type, "MessageID": "m-1", recipient_field: "a@example.com", time_field: at}
    [event] = parse({**record, "OriginalLink": "https://x.example/"})
    assert event.signal.occurred_at == datetime(2016, 4, 27, 16, 28, 50, 396393, tzinfo=timezone(timedelta(hours=-4)))
    link = "https://x.example/" if record_type == "Click" else None
    assert event.signal.key == dedup_key("postmark", "m-1", record_type, at, link) and event.signal.url == link
    assert event.correlation.email == "a@example.com"
    other = {k: v for k, v in record.items() if k != time_field}
    other[next(f for f in ("DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt") if f != time_field)] = at
    assert postmark.parse(json.dumps(other).encode(), NOW).quarantined  # the record's own field is required


def test_type_is_a_status_field_of_bounces_and_complaints_only() -> None:
    base = {"MessageID": "m", "Email": "a@example.com", "BouncedAt": "2016-04-27T16:28:50Z", "Type": "HardBounce"}
    [bounce] = parse({**base, "RecordType": "Bounce"})
    assert bounce.signal.fields == {"RecordType": "Bounce", "Type": "HardBounce"}
    [open_] = parse({**base, "RecordType": "Open", "Recipient": "a@example.com", "ReceivedAt": "2016-04-27T16:28:50Z"})
    assert open_.signal.fields == {"RecordType": "Open"}


@pytest.mark.parametrize(
    "suppress, reason, fields",
    [
        (True, "ManualSuppression", {"RecordType": "SubscriptionChange", "Type": "ManualSuppression"}),
        (True, "HardBounce", {"RecordType": "SubscriptionChange", "Type": "HardBounce"}),
        (False, None, {"RecordType": "SubscriptionChange"}),
        (False, "ManualSuppression", {"RecordType": "SubscriptionChange"}),
    ],
)
def test_a_subscription_change_carries_its_suppression_reason_while_it_suppresses(
    suppress: bool, reason: str | None, fields: dict[str, str]
) -> None:
    record = {
        "RecordType": "SubscriptionChange",
        "MessageID": "m",
        "Recipient": "a@example.com",
        "ChangedAt": "2022-06-05T17:17:32Z",
    }
    [event] = parse({**record, "SuppressSending": suppress, "SuppressionReason": reason})
    assert event.signal.fields == fields


def test_metadata_names_the_recipient_and_personal_fields_stay_sealed() -> None:
    record = {
        "RecordType": "Click",
        "MessageID": "m",
        "Recipient": "a@example.com",
        "ReceivedAt": "2017-10-25T15:21:11.9065619Z",
        "OriginalLink": "https://example.com/?e=a@example.com",
        "UserAgent": "Mozilla/5.0",
        "Geo": {"City": "Novi Sad", "IP": "8.8.8.8"},
        "Metadata": {"mailing_id": "spring-sale", "contact_id": "c-1", "test": "true"},
    }
    [event] = parse(record)
    c = event.correlation
    assert (c.mailing_id, c.contact_id, c.test) == ("spring-sale", "c-1", True)
    clear, personal = split_personal({"signal": event.signal.to_record(), "correlation": {"email": c.email}})
    text = json.dumps(clear)
    assert "a@example.com" not in text and "Novi Sad" not in text and "8.8.8.8" not in text
    assert clear["signal"]["url"] == "https://example.com/?e={email}" and clear["signal"]["user_agent"] == "Mozilla/5.0"
    assert personal["signal.original_url"] == record["OriginalLink"]


@pytest.mark.parametrize(
    "change, error",
    [
        ({"RecordType": None}, "RecordType"),
        ({"Recipient": None}, "Email"),
        ({"DeliveredAt": "yesterday"}, "DeliveredAt"),
        ({"Metadata": "mailing"}, "Metadata"),
        ({"Metadata": {"contact_id": {"x": 1}}}, "contact_id"),
    ],
)
def test_a_malformed_record_is_quarantined(change: dict[str, object], error: str) -> None:
    record = {"RecordType": "Delivery", "MessageID": "m", "Recipient": "a@example.com", "DeliveredAt": "2014-08-01T13:28:10Z"}
    batch = postmark.parse(json.dumps({**record, **change}).encode(), NOW)
    assert batch.events == [] and len(batch.quarantined) == 1 and error in batch.quarantined[0].error


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"{"])
def test_a_body_that_is_no_record_raises_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        postmark.parse(raw, NOW)
