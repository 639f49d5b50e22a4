"""Elastic Email notification adapter: token check and parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl

import pytest

from domain.signals import dedup_key
from interface.providers import elasticemail

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "elasticemail" / "notifications.txt"
NOW = datetime(2026, 3, 14, 13, 0, 0, tzinfo=UTC)


def notifications() -> list[dict[str, str]]:
    lines = FIXTURE.read_text().splitlines()
    return [dict(parse_qsl(line)) for line in lines if line.strip() and not line.startswith("#")]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    "given, configured, ok",
    [
        ("s3cret", "s3cret", True),
        ("s3cre", "s3cret", False),
        ("S3CRET", "s3cret", False),
        (None, "s3cret", False),
        ("", "s3cret", False),
        ("s3cret", None, False),
        ("s3cret", "", False),
        (None, None, False),
        ("", "", False),
        ("sécret", "sécret", True),
    ],
)
def test_verify(given, configured, ok):
    assert elasticemail.verify(given, configured) is ok


def test_every_fixture_line_parses():
    parsed = [elasticemail.parse({**params, "token": "s3cret"}, NOW) for params in notifications()]
    assert len(parsed) == 7
    for batch in parsed:
        assert len(batch.events) == 1 and not batch.quarantined and not batch.notices
    events = [b.events[0] for b in parsed]
    assert [e.signal.fields for e in events] == [
        {"status": "Sent"},
        {"status": "Opened"},
        {"status": "Clicked"},
        {"status": "Error", "category": "NoMailbox"},
        {"status": "Error", "category": "GreyListed"},
        {"status": "AbuseReport"},  # category read only on Error
        {"status": "Unsubscribed"},
    ]
    assert [e.signal.occurred_at for e in events] == [
        utc(2026, 3, 14, 10, 4, 11),
        utc(2026, 3, 14, 10, 31, 40),
        utc(2026, 3, 14, 10, 32, 2),
        utc(2026, 3, 14, 10, 6, 40),
        utc(2026, 3, 14, 10, 5, 0),
        utc(2026, 3, 14, 12, 0, 0),  # 12:00:00 PM is noon
        utc(2026, 3, 14, 11, 0, 0),
    ]
    assert [(e.correlation.mailing_id, e.correlation.contact_id) for e in events] == [
        ("spring-sale", "c-1001"),
        ("spring-sale", "c-1001"),
        ("spring-sale", "c-1001"),
        ("spring-sale", "c-1003"),
        ("spring-sale", "c-1002"),
        ("spring-sale", "c-1005"),
        ("spring-sale", "c-1004"),
    ]
    assert events[0].correlation.email == "anna@example.com"
    assert events[2].signal.url == "https://shop.example.com/sale"
    assert events[0].signal.url is None
    assert all(e.signal.source == "elasticemail" and e.signal.received_at == NOW for e in events)
    assert len({e.signal.key for e in events}) == 7
    for event in events:
        assert "token" not in event.signal.raw
        assert not event.correlation.test


def test_raw_keeps_every_param_but_the_token_and_key_is_stable():
    params = notifications()[2]
    [event] = elasticemail.parse({**params, "token": "s3cret"}, NOW).events
    assert event.signal.raw == params
    assert event.signal.key == dedup_key(
        "elasticemail",
        params["transaction"],
        "anna@example.com",
        "Clicked",
        None,
        "3/14/2026 10:32:02 AM",
        "https://shop.example.com/sale",
    )
    [same] = elasticemail.parse(params, NOW).events
    assert same.signal.key == event.signal.key


def test_error_without_category_gets_an_empty_category():
    params = {**notifications()[3]}
    del params["category"]
    [event] = elasticemail.parse(params, NOW).events
    assert event.signal.fields == {"status": "Error", "category": ""}


def test_iso_date_is_accepted():
    [event] = elasticemail.parse({**notifications()[0], "date": "2026-03-14T10:04:11Z"}, NOW).events
    assert event.signal.occurred_at == utc(2026, 3, 14, 10, 4, 11)


def test_missing_date_is_accepted_without_a_provider_time():
    params = {**notifications()[0]}
    del params["date"]
    [event] = elasticemail.parse(params, NOW).events
    assert event.signal.occurred_at is None


@pytest.mark.parametrize("postback", [None, "", "spring-sale", "spring-sale:", ":c-1", " : "])
def test_postback_without_both_ids_names_no_one(postback):
    params = {**notifications()[0]}
    params.pop("postback")
    if postback is not None:
        params["postback"] = postback
    [event] = elasticemail.parse(params, NOW).events
    assert event.correlation.mailing_id is None and event.correlation.contact_id is None
    assert event.correlation.email == "anna@example.com"


def test_postback_splits_on_the_first_colon():
    [event] = elasticemail.parse({**notifications()[0], "postback": "m:c:with:colons"}, NOW).events
    assert (event.correlation.mailing_id, event.correlation.contact_id) == ("m", "c:with:colons")


@pytest.mark.parametrize(
    "change, error",
    [({"status": None}, "status"), ({"status": ""}, "status"), ({"to": None}, "to"), ({"date": "soon"}, "date")],
)
def test_bad_notification_is_quarantined_without_the_token(change, error):
    params = {**notifications()[0], "token": "s3cret"}
    for name, value in change.items():
        if value is None:
            del params[name]
        else:
            params[name] = value
    batch = elasticemail.parse(params, NOW)
    assert batch.events == []
    [q] = batch.quarantined
    assert q.source == "elasticemail"
    assert error in q.error
    assert "s3cret" not in q.raw_text and "token" not in q.raw_text
    expected = {k: [v] for k, v in params.items() if k != "token"}
    assert parse_qs(q.raw_text, keep_blank_values=True) == expected
