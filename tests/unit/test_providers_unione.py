"""UniOne webhook adapter: auth on raw bytes and parsing of both forms."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from domain.signals import dedup_key
from interface.providers import unione
from interface.providers.common import read_body

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "unione"
REAL_KEY = "6mjstx9gwi7qj8eni6m77hfiiw6aifmss154y4ze"
OUR_KEY = "our-test-key-0123456789"
NOW = datetime(2026, 3, 14, 13, 0, 0, tzinfo=UTC)


def signed(body: bytes, key: str = OUR_KEY) -> bytes:
    """Sign a fixture as UniOne does: md5 of the body with the key in place of ``auth``."""
    digest = hashlib.md5(body.replace(b"AUTH_PLACEHOLDER", key.encode())).hexdigest()
    return body.replace(b"AUTH_PLACEHOLDER", digest.encode())


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- verify -------------------------------------------------------------------


def test_real_signed_body_verifies():
    body = fixture("real-signed-clicked.json.raw")
    assert unione.verify(body, [REAL_KEY])
    assert unione.verify(body, ["another-key", REAL_KEY])  # any configured key may match


def test_real_signed_body_fails_with_another_key_or_no_key():
    body = fixture("real-signed-clicked.json.raw")
    assert not unione.verify(body, ["6mjstx9gwi7qj8eni6m77hfiiw6aifmss154y4zf"])
    assert not unione.verify(body, [])
    assert not unione.verify(body, [""])


def test_one_changed_byte_fails():
    body = fixture("real-signed-clicked.json.raw")
    at = body.index(b"19:56:41")
    tampered = body[:at] + b"2" + body[at + 1 :]
    assert len(tampered) == len(body)
    assert not unione.verify(tampered, [REAL_KEY])
    assert not unione.verify(body + b" ", [REAL_KEY])


def test_reserialised_json_does_not_verify():
    body = fixture("real-signed-clicked.json.raw")
    assert not unione.verify(orjson.dumps(orjson.loads(body)), [REAL_KEY])


def test_body_without_auth_fails():
    assert not unione.verify(b'{"events_by_user":[]}', [REAL_KEY])
    assert not unione.verify(b"not json at all", [REAL_KEY])


def test_whitespace_around_colon_and_uppercase_hex():
    body = b'{"auth" : "AUTH_PLACEHOLDER", "event_name": "x"}'
    good = signed(body)
    assert unione.verify(good, [OUR_KEY])
    digest = hashlib.md5(body.replace(b"AUTH_PLACEHOLDER", OUR_KEY.encode())).hexdigest()
    assert unione.verify(body.replace(b"AUTH_PLACEHOLDER", digest.upper().encode()), [OUR_KEY])


# A genuine body whose metadata holds an ``"auth":"<32 hex>"`` field before the top-level ``auth`` (a sender may
# attach any metadata): UniOne signs the top-level value only. Built with the public test key (tests/fixtures/README.md).
NESTED_AUTH_FIRST = (
    b'{"events_by_user":[{"user_id":5960727,"project_id":"6862471","events":[{"event_name":"transactional_email_status",'
    b'"event_data":{"job_id":"1sn15Z-0007Le-GtVN","metadata":{"auth":"0123456789abcdef0123456789abcdef",'
    b'"mailing_id":"spring-sale","contact_id":"c-1001"},"email":"anna@example.com","status":"delivered",'
    b'"event_time":"2026-03-14 10:04:11"}}]}],"auth":"AUTH_PLACEHOLDER"}'
)


def test_a_nested_auth_field_before_the_top_level_one_still_verifies():
    body = signed(NESTED_AUTH_FIRST, REAL_KEY)
    assert body.index(b'"auth":"0123') < body.rindex(b'"auth":"')  # the metadata's comes first
    assert unione.verify(body, [REAL_KEY])
    assert not unione.verify(body, [OUR_KEY])
    batch = unione.parse(body, NOW)
    assert [e.correlation.contact_id for e in batch.events] == ["c-1001"]


def test_only_the_top_level_auth_is_the_signature():
    # the metadata's value signed as if it were the signature: refused (UniOne never signs a nested field)
    nested_signed = NESTED_AUTH_FIRST.replace(b"0123456789abcdef0123456789abcdef", b"AUTH_PLACEHOLDER", 1)
    nested_signed = nested_signed.replace(b'"auth":"AUTH_PLACEHOLDER"}', b'"auth":"00000000000000000000000000000000"}')
    assert not unione.verify(signed(nested_signed, REAL_KEY), [REAL_KEY])
    # no top-level auth at all, a nested one only: refused
    only_nested = signed(b'{"events_by_user":[{"events":[{"metadata":{"auth":"AUTH_PLACEHOLDER"}}]}]}', REAL_KEY)
    assert not unione.verify(only_nested, [REAL_KEY])
    # a top-level auth that is not 32 hex digits, or not a string: refused
    assert not unione.verify(b'{"auth":"abc","x":1}', [REAL_KEY])
    assert not unione.verify(b'{"auth":12345678901234567890123456789012}', [REAL_KEY])


@pytest.mark.parametrize(
    "template",
    [
        b'{"auth":"AUTH_PLACEHOLDER","events_by_user":[]}',
        b' \n{ "auth" :\t"AUTH_PLACEHOLDER" }',
        b'{"a":{"auth":"0123456789abcdef0123456789abcdef"},"b":["auth",{"auth":1}],"auth":"AUTH_PLACEHOLDER"}',
        b'{"s":"\\"auth\\":\\"0123456789abcdef0123456789abcdef\\"","auth":"AUTH_PLACEHOLDER"}',
        b'{"x":[1,2,{"y":"}"}],"auth":"AUTH_PLACEHOLDER","z":null}',
    ],
)
def test_the_top_level_auth_is_found_wherever_it_stands(template):
    assert unione.verify(signed(template), [OUR_KEY])


@pytest.mark.parametrize(
    "body",
    [
        b'["auth","0123456789abcdef0123456789abcdef"]',
        b'{"a":"unclosed, "auth":"0123456789abcdef0123456789abcdef"}',
        b'{"a":1}{"auth":"0123456789abcdef0123456789abcdef"}',
        b'{"a":{"auth":"0123456789abcdef0123456789abcdef"',
        b"{" * 5000 + b'"auth":"0123456789abcdef0123456789abcdef"',
        b'{"auth_x":"0123456789abcdef0123456789abcdef"}',
    ],
)
def test_bodies_without_a_top_level_auth_are_refused(body):
    assert not unione.verify(body, [OUR_KEY])


def test_gzipped_body_verifies_after_read_body():
    body = signed(fixture("batch-mixed.json"))
    assert unione.verify(read_body(gzip.compress(body), "gzip", 1 << 20), [OUR_KEY])


# --- parse: envelope ------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed():
    body = signed(fixture("batch-mixed.json"))
    assert unione.verify(body, [OUR_KEY])
    return unione.parse(body, NOW)


def test_mixed_batch_counts(mixed):
    assert len(mixed.events) == 7
    assert len(mixed.notices) == 1
    assert mixed.quarantined == []
    assert [e.signal.fields["status"] for e in mixed.events] == [
        "delivered",
        "opened",
        "clicked",
        "soft_bounced",
        "hard_bounced",
        "unsubscribed",
        "spam",
    ]


def test_mixed_batch_signal_fields(mixed):
    delivered, opened, clicked, soft, hard, unsubscribed, spam = (e.signal for e in mixed.events)
    assert delivered.source == "unione"
    assert delivered.fields == {"status": "delivered"}
    assert delivered.received_at == NOW
    assert delivered.occurred_at == utc(2026, 3, 14, 10, 4, 11)
    assert delivered.detail == "250 2.0.0 OK"
    assert delivered.url is None and delivered.reason is None and not delivered.machine
    assert opened.user_agent == "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
    assert opened.occurred_at == utc(2026, 3, 14, 10, 31, 40)
    assert clicked.url == "https://shop.example.com/sale?utm_campaign=spring"
    assert soft.fields == {"status": "soft_bounced"}  # delivery_status only on hard bounces
    assert soft.detail == "451 4.7.1 Greylisted, try later"
    assert hard.fields == {"status": "hard_bounced", "delivery_status": "err_user_unknown"}
    assert hard.detail == "550 5.1.1 User unknown"
    assert unsubscribed.fields == {"status": "unsubscribed"}
    assert unsubscribed.raw["comment"] == "too many emails"
    assert spam.fields == {"status": "spam"}
    assert hard.raw["delivery_info"]["delivery_status"] == "err_user_unknown"
    assert hard.key == dedup_key(
        "unione",
        "1smi9f-00057m-86zr",
        "nobody@example.net",
        "hard_bounced",
        "2026-03-14 10:06:40",
        None,
        "err_user_unknown",
    )
    assert len({e.signal.key for e in mixed.events}) == 7


def test_mixed_batch_correlation(mixed):
    assert [(e.correlation.mailing_id, e.correlation.contact_id) for e in mixed.events] == [
        ("spring-sale", "c-1001"),
        ("spring-sale", "c-1001"),
        ("spring-sale", "c-1001"),
        ("spring-sale", "c-1002"),
        ("spring-sale", "c-1003"),
        ("spring-sale", "c-1004"),
        ("spring-sale", "c-1005"),
    ]
    assert mixed.events[4].correlation.email == "nobody@example.net"
    assert not any(e.correlation.test for e in mixed.events)


def test_spam_block_is_a_notice(mixed):
    [notice] = mixed.notices
    assert notice.provider == "unione"
    assert notice.kind == "transactional_spam_block"
    assert notice.received_at == NOW
    assert notice.raw["domain"] == "mail.example.com"


def test_parse_is_deterministic():
    body = signed(fixture("batch-mixed.json"))
    first, again = unione.parse(body, NOW), unione.parse(body, NOW)
    assert [e.signal.key for e in first.events] == [e.signal.key for e in again.events]
    assert first.notices[0].key == again.notices[0].key


def test_real_fixture_without_metadata_correlates_by_email():
    [event] = unione.parse(fixture("real-signed-clicked.json.raw"), NOW).events
    assert event.correlation.mailing_id is None and event.correlation.contact_id is None
    assert event.correlation.email == "unisendergo@anymail.dev"
    assert event.signal.url == "https://example.com"
    assert event.signal.occurred_at == utc(2024, 9, 8, 19, 56, 41)


# --- parse: flat form ------------------------------------------------------------


def test_single_event_form():
    batch = unione.parse(signed(fixture("single-event-delivered.json")), NOW)
    [event] = batch.events
    assert batch.notices == [] and batch.quarantined == []
    assert event.signal.fields == {"status": "delivered"}
    assert event.signal.occurred_at == utc(2026, 3, 14, 10, 4, 15)
    assert event.signal.detail == "250 OK"
    assert (event.correlation.mailing_id, event.correlation.contact_id) == ("spring-sale", "c-1006")
    assert event.correlation.email == "dina@example.com"
    for envelope_key in ("auth", "event_name", "user_id", "project_id", "project_name"):
        assert envelope_key not in event.signal.raw
    assert event.signal.raw["job_id"] == "1smi9f-00057m-86zr"


def test_single_event_form_and_envelope_give_the_same_key():
    flat = orjson.loads(fixture("single-event-delivered.json"))
    data = {k: v for k, v in flat.items() if k not in ("auth", "event_name", "user_id", "project_id")}
    envelope = {"auth": "x", "events_by_user": [{"events": [{"event_name": flat["event_name"], "event_data": data}]}]}
    [a] = unione.parse(orjson.dumps(flat), NOW).events
    [b] = unione.parse(orjson.dumps(envelope), NOW).events
    assert a.signal.key == b.signal.key


def test_malformed_flat_event_is_quarantined_with_the_body():
    body = b'{"auth":"x","event_name":"transactional_email_status","email":"a@b.c","event_time":"2026-03-14 10:00:00"}'
    batch = unione.parse(body, NOW)
    [q] = batch.quarantined
    assert q.source == "unione" and q.raw_text == body.decode() and "status" in q.error


# --- parse: bad input -------------------------------------------------------------


def _event(**data):
    base = {"job_id": "j", "email": "a@example.com", "status": "delivered", "event_time": "2026-03-14 10:00:00"}
    return {"event_name": "transactional_email_status", "event_data": {**base, **data}}


def _envelope(*events) -> bytes:
    return orjson.dumps({"auth": "0" * 32, "events_by_user": [{"user_id": 1, "events": list(events)}]})


@pytest.mark.parametrize(
    "bad, error",
    [
        ("not an event", "not an object"),
        ({"event_data": {}}, "event_name"),
        ({"event_name": "transactional_email_status", "event_data": []}, "event_data"),
        (_event(status=None), "status"),
        (_event(email=""), "email"),
        (_event(event_time=None), "event_time"),
        (_event(event_time="the day before yesterday"), "event_time"),
        (_event(metadata="spring-sale:c-1"), "metadata"),
        (_event(delivery_info=["x"]), "delivery_info"),
    ],
)
def test_one_malformed_event_is_quarantined_alone(bad, error):
    batch = unione.parse(_envelope(_event(), bad, _event(status="opened")), NOW)
    assert [e.signal.fields["status"] for e in batch.events] == ["delivered", "opened"]
    [q] = batch.quarantined
    assert q.source == "unione"
    assert error in q.error
    assert orjson.loads(q.raw_text) == bad


def test_user_entry_without_events_is_quarantined():
    body = orjson.dumps({"auth": "x", "events_by_user": [{"user_id": 1}, {"events": [_event()]}]})
    batch = unione.parse(body, NOW)
    assert len(batch.events) == 1
    [q] = batch.quarantined
    assert orjson.loads(q.raw_text) == {"user_id": 1}


def test_test_send_flag_and_numeric_metadata():
    batch = unione.parse(
        _envelope(
            _event(metadata={"mailing_id": 7, "contact_id": 42, "test": True}),
            _event(metadata={"mailing_id": "m", "contact_id": "c", "test": "0"}),
        ),
        NOW,
    )
    first, second = (e.correlation for e in batch.events)
    assert (first.mailing_id, first.contact_id, first.test) == ("7", "42", True)
    assert second.test is False


def test_unknown_event_name_is_kept_as_a_notice():
    batch = unione.parse(_envelope({"event_name": "future_event", "event_data": {"x": 1}}), NOW)
    [notice] = batch.notices
    assert notice.kind == "future_event" and notice.raw == {"x": 1}


def test_notice_key_ignores_key_order():
    a = unione.parse(_envelope({"event_name": "transactional_spam_block", "event_data": {"a": 1, "b": 2}}), NOW)
    b = unione.parse(_envelope({"event_name": "transactional_spam_block", "event_data": {"b": 2, "a": 1}}), NOW)
    assert a.notices[0].key == b.notices[0].key


@pytest.mark.parametrize(
    "body",
    [b"not json", b"", b"[]", b'"text"', b'{"auth":"x"}', b'{"auth":"x","events_by_user":{}}'],
)
def test_unrecognised_body_is_a_value_error(body):
    with pytest.raises(ValueError):
        unione.parse(body, NOW)


# --- bytes after the document (what an MD5 length extension appends) ---------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":1}x',
        b'{"a":1}\n{"b":2}',
        b'{"a":"}"}\x80\x00\x00',
        b" [1,[2]] ]",
        b'{"a":"\\"}"} z',
        b'"text" more',
        b"12 34",
        b'{"a":1}\x00',
    ],
)
def test_a_document_followed_by_bytes_has_trailing_bytes(body):
    assert unione.trailing_bytes(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":1}',
        b'{"a":1} \r\n\t',
        b"",
        b"   ",
        b'{"a":',
        b'{"a":"}',
        b'{"a": nonsense} x',
        b"hello world",
        b"[" * 2000 + b"]" * 2000 + b"x",
        b'{"a":"\\u00"} x',
        b"\xff\xfe",
    ],
)
def test_one_document_or_no_document_has_no_trailing_bytes(body):
    assert not unione.trailing_bytes(body)


def test_an_opens_traffic_type_is_a_status_field_and_only_an_opens():
    def one(status, **info):
        data = {"job_id": "j", "email": "a@example.com", "status": status, "event_time": "2026-03-14 10:00:00"}
        body = orjson.dumps({"auth": "0" * 32, "event_name": "transactional_email_status", **data, "delivery_info": info})
        [event] = unione.parse(body, NOW).events
        return event.signal

    assert one("opened", traffic_type="protected").fields == {"status": "opened", "traffic_type": "protected"}
    assert one("opened", traffic_type="machine").raw["delivery_info"]["traffic_type"] == "machine"
    assert one("opened").fields == {"status": "opened"}
    assert one("clicked", traffic_type="machine").fields == {"status": "clicked"}
    assert one("delivered", traffic_type={"odd": 1}).fields == {"status": "delivered"}  # read on opens only
    opened = one("opened", traffic_type="machine")
    assert opened.key == one("opened").key  # the dedup key is what it was: a retry stays a duplicate
    body = orjson.dumps(
        {
            "auth": "0" * 32,
            "event_name": "transactional_email_status",
            "job_id": "j",
            "email": "a@example.com",
            "status": "opened",
            "event_time": "2026-03-14 10:00:00",
            "delivery_info": {"traffic_type": {"odd": 1}},
        }
    )
    assert "traffic_type" in unione.parse(body, NOW).quarantined[0].error
