"""Mailgun adapter: the signature (HMAC-SHA256 of timestamp + token), its 24-hour window, and parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from domain.personal import split_personal
from domain.signals import dedup_key
from interface.providers import mailgun

NOW = datetime(2018, 8, 12, 21, 17, 17, tzinfo=UTC)  # the vector's signed instant
SKEW = timedelta(minutes=10)
KEY = "TEST_WEBHOOK_SIGNING_KEY"  # django-anymail's test key
# django-anymail's test_delivered_event signature block, signed with KEY (hmac-sha256 of timestamp + token, hex)
VECTOR = {
    "timestamp": "1534108637",
    "token": "651869375b9df3c98fc15c4889b102119add1235c38fc92824",
    "signature": "2a75affe24846ead9e37e614a5e7643a04abf4d5b49b34d224ede9af23a00ccc",
}


def body(signature: dict[str, str] | None = None, **event: object) -> bytes:
    data = {"event": "delivered", "id": "hTWCTD81RtiDN-...", "timestamp": 1534108637.153125, "recipient": "a@example.com"}
    return json.dumps({"signature": signature or VECTOR, "event-data": {**data, **event}}).encode()


def test_the_vector_verifies_inside_the_window() -> None:
    assert mailgun.sign(VECTOR["timestamp"], VECTOR["token"], KEY) == VECTOR["signature"]
    assert mailgun.refusal(body(), [KEY], NOW, SKEW) is None
    assert mailgun.refusal(body(), ["rotated-away", KEY], NOW + timedelta(hours=23, minutes=59), SKEW) is None


@pytest.mark.parametrize(
    "keys, signature, at, why",
    [
        (["another key"], VECTOR, NOW, "does not verify"),
        ([], VECTOR, NOW, "no Mailgun webhook signing key"),
        ([KEY], {**VECTOR, "token": VECTOR["token"] + "0"}, NOW, "does not verify"),
        ([KEY], {**VECTOR, "timestamp": "1534108638"}, NOW, "does not verify"),
        ([KEY], {**VECTOR, "signature": VECTOR["signature"].upper()}, NOW, None),  # hex in either case
        ([KEY], {"timestamp": VECTOR["timestamp"], "token": VECTOR["token"]}, NOW, "lacks"),
        ([KEY], VECTOR, NOW + timedelta(hours=24, seconds=1), "older than 24 h"),
        ([KEY], VECTOR, NOW - timedelta(minutes=11), "future"),
    ],
)
def test_refusals(keys: list[str], signature: dict[str, str], at: datetime, why: str | None) -> None:
    refused = mailgun.refusal(body(signature), keys, at, SKEW)
    assert (refused is None) if why is None else (refused is not None and why in refused)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'{"event-data": {}}', b'{"signature": "x"}'])
def test_bodies_without_a_signature_block_are_refused(raw: bytes) -> None:
    assert mailgun.refusal(raw, [KEY], NOW, SKEW) is not None


def test_a_failed_event_carries_severity_and_reason_as_status_fields() -> None:
    batch = mailgun.parse(body(event="failed", severity="permanent", reason="bounce", **{"user-variables": {}}), NOW)
    [event] = batch.events
    assert event.signal.fields == {"event": "failed", "severity": "permanent", "reason": "bounce"}
    assert event.signal.key == dedup_key("mailgun", "hTWCTD81RtiDN-...")
    assert event.correlation.email == "a@example.com" and event.correlation.contact_id is None


def test_other_events_never_carry_a_reason_field() -> None:
    [event] = mailgun.parse(body(event="delivered", reason="generic", severity="permanent"), NOW).events
    assert event.signal.fields == {"event": "delivered"}


def test_user_variables_name_the_recipient_and_the_event_reads_its_details() -> None:
    raw = body(
        event="clicked",
        url="https://shop.example.com/?u=a%40example.com",
        ip="203.0.113.9",
        geolocation={"city": "San Francisco"},
        message={"headers": {"to": "A <a@example.com>"}},
        **{
            "user-variables": {"mailing_id": "spring-sale", "contact_id": "c-1", "test": "1"},
            "client-info": {"user-agent": "Mozilla/5.0"},
            "delivery-status": {"message": "", "description": "a description"},
        },
    )
    [event] = mailgun.parse(raw, NOW).events
    c = event.correlation
    assert (c.mailing_id, c.contact_id, c.email, c.test) == ("spring-sale", "c-1", "a@example.com", True)
    assert event.signal.user_agent == "Mozilla/5.0" and event.signal.detail == "a description"
    assert event.signal.occurred_at == datetime(2018, 8, 12, 21, 17, 17, 153125, tzinfo=UTC)
    # personal fields (the address, headers, IP, geolocation) only in what is sealed
    clear, personal = split_personal({"signal": event.signal.to_record(), "correlation": {"email": c.email}})
    text = json.dumps(clear)
    assert "a@example.com" not in text and "203.0.113.9" not in text and "San Francisco" not in text
    assert "a%40example.com" not in text and "u={email}" in text
    assert personal["signal.raw"]["ip"] == "203.0.113.9"


def test_without_an_id_the_key_is_made_of_what_identifies_the_event() -> None:
    raw = body(id=None, message={"headers": {"message-id": "m-1"}})
    [event] = mailgun.parse(raw, NOW).events
    assert event.signal.key == dedup_key("mailgun", "m-1", "delivered", 1534108637.153125, "a@example.com", None)


@pytest.mark.parametrize(
    "change, error",
    [
        ({"recipient": None}, "recipient"),
        ({"timestamp": "soon"}, "timestamp"),
        ({"timestamp": 1e20}, "timestamp"),
        ({"event": None}, "event"),
        ({"id": {"a": 1}}, "id"),
        ({"user-variables": {"contact_id": ["x"]}}, "contact_id"),
    ],
)
def test_a_malformed_event_is_quarantined(change: dict[str, object], error: str) -> None:
    batch = mailgun.parse(body(**change), NOW)
    assert batch.events == [] and len(batch.quarantined) == 1
    assert error in batch.quarantined[0].error


@pytest.mark.parametrize("raw", [b"[]", b"{}", b'"x"', b"{"])
def test_a_body_that_is_no_webhook_call_raises_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        mailgun.parse(raw, NOW)
