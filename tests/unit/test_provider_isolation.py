"""Per-event isolation in the provider parsers (issue 7, failures 1 and 2).

One event a provider cannot have meant (a time out of range, a NUL character, nesting
deeper than any provider payload, a field over 64 KiB, a field of the wrong type) is
quarantined alone with its raw text and the error; its neighbours are parsed. Times
never raise anything but ``ValueError``; a time whose later arithmetic would overflow
is refused when it is parsed, not in the fold or the views.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest

from domain.aggregates import CLOCK_SKEW
from domain.signals import (
    EARLIEST_TIME,
    LATEST_TIME,
    QUARANTINE_ERROR_CHARS,
    QUARANTINE_RAW_BYTES,
    Quarantined,
    dedup_key,
    parse_iso,
    plausible_time,
    text_digest,
)
from interface.providers import canonical, elasticemail, sendgrid, unione
from interface.providers.common import parse_utc

NOW = datetime(2026, 3, 14, 13, 0, 0, tzinfo=UTC)
GOOD_TIME = "2026-03-14 10:00:00"
MAX_FIELD_BYTES = 64 * 1024  # a string (value or key) longer than this, in UTF-8, is refused
MAX_EVENT_DEPTH = 32  # containers nested deeper than this in one event are refused

OUT_OF_RANGE_TIMES = [
    "0001-01-01T00:00:00+14:00",  # before datetime.min in UTC: OverflowError
    "9999-12-31T23:59:59-14:00",  # after datetime.max in UTC: OverflowError
    "9999-12-31T23:59:59Z",  # representable, but + CLOCK_SKEW overflows in correlation
    "0001-01-01 00:00:00",  # a zero-value time, no provider event is that old
    "12/31/9999 11:59:59 PM",
]


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth - 1):
        value = [value]
    return value


# ---- times ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", OUT_OF_RANGE_TIMES)
def test_parse_utc_refuses_times_out_of_range_with_a_value_error(text):
    with pytest.raises(ValueError):
        parse_utc(text)


@pytest.mark.parametrize("text", ["1970-01-01T00:00:00Z", "2026-03-14 10:00:00", "8999-12-31T23:59:59+00:00"])
def test_parse_utc_keeps_plausible_times_and_they_survive_the_arithmetic_done_on_them(text):
    parsed = parse_utc(text)
    assert parsed + CLOCK_SKEW > parsed  # what correlation does with an event time
    assert parse_iso(parsed.isoformat()) == parsed


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_parse_iso_raises_only_value_errors(text):
    with pytest.raises(ValueError):
        parse_iso(text)


# ---- one hostile event among good ones, in every parser ---------------------------------------


HOSTILE_UNIONE: dict[str, tuple[dict[str, Any], str]] = {
    **{f"time-{i}": ({"event_time": t}, "event_time") for i, t in enumerate(OUT_OF_RANGE_TIMES)},
    "nul-in-a-value": ({"email": "a\x00@example.com"}, "NUL"),
    "nul-in-metadata": ({"metadata": {"mailing_id": "spring\x00sale", "contact_id": "c-1"}}, "NUL"),
    "nul-in-a-key": ({"extra": {"k\x00": 1}}, "NUL"),
    "nested-40": ({"extra": nested(40)}, "nested deeper"),
    "nested-300": ({"extra": nested(300)}, "nested deeper"),  # deeper than orjson.dumps goes
    "field-over-64KiB": ({"url": "https://x.example/" + "a" * MAX_FIELD_BYTES}, "64 KiB"),
    "url-not-text": ({"url": {"href": "https://x.example/"}}, "url"),
    "user-agent-not-text": ({"delivery_info": {"user_agent": ["Mozilla"]}}, "user_agent"),
    "status-not-text": ({"status": 7}, "status"),
    "mailing-id-an-object": ({"metadata": {"mailing_id": {"id": 1}, "contact_id": "c-1"}}, "mailing_id"),
}


def unione_event(**data: Any) -> dict[str, Any]:
    base = {"job_id": "j", "email": "a@example.com", "status": "delivered", "event_time": GOOD_TIME}
    return {"event_name": "transactional_email_status", "event_data": {**base, **data}}


def unione_envelope(*events: Any) -> bytes:
    return json.dumps(
        {"auth": "0" * 32, "events_by_user": [{"user_id": 1, "events": list(events)}]}
    ).encode()  # json: orjson stops at 254 levels


@pytest.mark.parametrize("change, error", HOSTILE_UNIONE.values(), ids=HOSTILE_UNIONE.keys())
def test_unione_one_hostile_event_is_quarantined_alone(change, error):
    bad = unione_event(**change)
    batch = unione.parse(unione_envelope(unione_event(), bad, unione_event(status="opened")), NOW)
    assert [e.signal.fields["status"] for e in batch.events] == ["delivered", "opened"]
    [q] = batch.quarantined
    assert q.source == "unione" and error in q.error
    assert orjson.loads(q.raw_text) == bad  # its raw text, whatever its depth


def test_unione_flat_form_hostile_event_is_quarantined():
    document = {"auth": "0" * 32, **unione_event(email="a\x00@example.com")["event_data"], "event_name": unione.STATUS_EVENT}
    batch = unione.parse(orjson.dumps(document), NOW)
    assert batch.events == []
    [q] = batch.quarantined
    assert "NUL" in q.error


def test_a_spam_block_notice_with_a_nul_is_quarantined_not_kept():
    bad = {"event_name": unione.SPAM_BLOCK, "event_data": {"domain": "mail\x00.example.com"}}
    batch = unione.parse(unione_envelope(bad, unione_event()), NOW)
    assert batch.notices == [] and len(batch.events) == 1
    assert "NUL" in batch.quarantined[0].error


HOSTILE_SENDGRID: dict[str, tuple[dict[str, Any], str]] = {
    "timestamp-1e20": ({"timestamp": 1e20}, "timestamp"),
    "timestamp-minus-1e20": ({"timestamp": -1e20}, "timestamp"),
    "timestamp-1e20-as-text": ({"timestamp": "1e20"}, "timestamp"),
    "timestamp-year-9999": ({"timestamp": 253402300799}, "timestamp"),  # 9999-12-31T23:59:59Z
    "timestamp-year-1": ({"timestamp": -62135596800}, "timestamp"),
    "timestamp-negative": ({"timestamp": -1}, "timestamp"),
    "nul": ({"email": "a\x00@example.com"}, "NUL"),
    "nested-40": ({"extra": nested(40)}, "nested deeper"),
    "field-over-64KiB": ({"reason": "x" * (MAX_FIELD_BYTES + 1)}, "64 KiB"),
    "url-not-text": ({"url": ["https://x.example/"]}, "url"),
    "type-not-text": ({"event": "bounce", "type": {"t": "bounce"}}, "type"),
    "event-id-an-object": ({"sg_event_id": {"id": "e-9"}}, "sg_event_id"),
}


def sendgrid_event(**fields: Any) -> dict[str, Any]:
    return {"event": "delivered", "email": "a@example.com", "timestamp": 1773482651, "sg_event_id": "e-1", **fields}


@pytest.mark.parametrize("change, error", HOSTILE_SENDGRID.values(), ids=HOSTILE_SENDGRID.keys())
def test_sendgrid_one_hostile_event_is_quarantined_alone(change, error):
    bad = sendgrid_event(**change)
    batch = sendgrid.parse(orjson.dumps([sendgrid_event(), bad, sendgrid_event(event="open", sg_event_id="e-2")]), NOW)
    assert [e.signal.fields["event"] for e in batch.events] == ["delivered", "open"]
    [q] = batch.quarantined
    assert q.source == "sendgrid" and error in q.error
    assert orjson.loads(q.raw_text) == bad


HOSTILE_CANONICAL: dict[str, tuple[dict[str, Any], str]] = {
    **{f"time-{i}": ({"occurred_at": t}, "occurred_at") for i, t in enumerate(OUT_OF_RANGE_TIMES)},
    "nul-in-event-id": ({"event_id": "e\x00"}, "NUL"),
    "nested-40": ({"extra": nested(40)}, "nested deeper"),
    "field-over-64KiB": ({"detail": "x" * (MAX_FIELD_BYTES + 1)}, "64 KiB"),
}


def canonical_item(**fields: Any) -> dict[str, Any]:
    base = {"event_id": "ev-1", "mailing_id": "m", "contact_id": "c", "kind": "delivered", "occurred_at": "2026-03-14T10:00:00Z"}
    return {**base, **fields}


@pytest.mark.parametrize("change, error", HOSTILE_CANONICAL.values(), ids=HOSTILE_CANONICAL.keys())
def test_canonical_one_hostile_item_is_quarantined_alone(change, error):
    bad = canonical_item(**change)
    batch = canonical.parse(orjson.dumps({"signals": [canonical_item(), bad, canonical_item(event_id="ev-2")]}), NOW)
    assert len(batch.events) == 2
    [q] = batch.quarantined
    assert q.source == "canonical" and error in q.error
    assert orjson.loads(q.raw_text) == bad


HOSTILE_ELASTIC: dict[str, tuple[dict[str, str], str]] = {
    **{f"date-{i}": ({"date": t}, "date") for i, t in enumerate(OUT_OF_RANGE_TIMES)},
    "nul": ({"postback": "spring\x00sale:c-1"}, "NUL"),
    "field-over-64KiB": ({"target": "https://x.example/" + "a" * MAX_FIELD_BYTES}, "64 KiB"),
}


@pytest.mark.parametrize("change, error", HOSTILE_ELASTIC.values(), ids=HOSTILE_ELASTIC.keys())
def test_elastic_email_hostile_notification_is_quarantined_with_its_parameters(change, error):
    params = {"transaction": "t", "to": "a@example.com", "status": "Clicked", "date": GOOD_TIME, **change}
    batch = elasticemail.parse(params, NOW)
    assert batch.events == []
    [q] = batch.quarantined
    assert error in q.error
    assert parse_qs(q.raw_text) == {k: [v] for k, v in params.items()}


def test_errors_quote_hostile_values_briefly():
    huge = "x" * (MAX_FIELD_BYTES * 4)
    batch = unione.parse(unione_envelope(unione_event(event_time=huge), unione_event(status=huge)), NOW)
    assert len(batch.quarantined) == 2
    assert all(len(q.error) < 300 for q in batch.quarantined)


def test_depth_limit_is_counted_from_the_event():
    # containers: the event, its event_data, then nested(n)'s n - 1 lists
    ok = unione_event(extra=nested(MAX_EVENT_DEPTH - 1))
    batch = unione.parse(unione_envelope(ok), NOW)
    assert len(batch.events) == 1, batch.quarantined
    too_deep = unione_event(extra=nested(MAX_EVENT_DEPTH))
    assert len(unione.parse(unione_envelope(too_deep), NOW).quarantined) == 1


# ---- the domain's pieces: the time range, the quarantine's identity ---------------------------


def test_plausible_time_bounds_are_inclusive_below_and_exclusive_above():
    tick = timedelta(microseconds=1)
    assert plausible_time(EARLIEST_TIME) == EARLIEST_TIME
    assert plausible_time(LATEST_TIME - tick) == LATEST_TIME - tick
    for outside in (EARLIEST_TIME - tick, LATEST_TIME):
        with pytest.raises(ValueError, match="out of range"):
            plausible_time(outside)
    naive = datetime(2026, 3, 14, 10)
    assert plausible_time(naive) == naive.replace(tzinfo=UTC)  # naive means UTC
    with pytest.raises(ValueError, match="out of range"):
        plausible_time(datetime.fromisoformat("0001-01-01T00:00:00+14:00"))


def test_quarantine_key_is_the_source_and_a_digest_of_the_raw_input():
    item = Quarantined("unione", "raw text", "error one")
    assert item.key == Quarantined("unione", "raw text", "another error").key  # the same input again
    assert item.key != Quarantined("sendgrid", "raw text", "error one").key
    assert item.key != Quarantined("unione", "raw text!", "error one").key
    assert item.key == dedup_key("quarantine", "unione", text_digest("raw text"))
    whole = Quarantined("unione", "\ufffd", "not JSON", digest=text_digest(b"\xff"))
    assert whole.key != Quarantined("unione", "\ufffd", "not JSON", digest=text_digest(b"\xfe")).key
    assert text_digest("abc") == text_digest(b"abc") and len(text_digest("abc")) == 32
    assert text_digest("\ud800") != text_digest("?")  # lone surrogates are digested, not refused


def test_a_quarantine_item_keeps_a_readable_bounded_raw_text():
    assert Quarantined("p", "raw", "bad").kept() == {"raw": "raw", "error": "bad"}
    assert Quarantined("p", "a\x00b\ud800", "bad").kept()["raw"] == "a\\u0000b\\ud800"
    exactly = "é" * (QUARANTINE_RAW_BYTES // 2)  # two bytes each: the limit exactly
    assert Quarantined("p", exactly, "bad").kept() == {"raw": exactly, "error": "bad"}
    over = exactly + "x"
    kept = Quarantined("p", over, "bad").kept()
    assert kept["raw"] == exactly and kept["truncated"] is True and kept["raw_bytes"] == QUARANTINE_RAW_BYTES + 1
    assert (
        kept["error"]
        == f"bad (raw text truncated: the first {QUARANTINE_RAW_BYTES} of {QUARANTINE_RAW_BYTES + 1} bytes are kept)"
    )
    cut_in_a_character = Quarantined("p", "x" + exactly, "bad").kept()["raw"]
    assert cut_in_a_character == "x" + exactly[:-1]  # never half a character
    assert len(Quarantined("p", "raw", "e" * 5000).kept()["error"]) == QUARANTINE_ERROR_CHARS


def test_the_limits_are_the_documented_ones():
    """1970 to 9000 for provider times; 64 KiB of raw text and 1,000 characters of error kept."""
    assert parse_utc("1970-01-01T00:00:00Z") == datetime(1970, 1, 1, tzinfo=UTC)
    assert parse_utc("8999-12-31T23:59:59.999999Z").year == 8999
    for outside in ("1969-12-31T23:59:59.999999Z", "9000-01-01T00:00:00Z"):
        with pytest.raises(ValueError, match="out of range"):
            parse_utc(outside)
    assert (QUARANTINE_RAW_BYTES, QUARANTINE_ERROR_CHARS) == (65536, 1000)
    with pytest.raises(ValueError, match="time out of range: '0001-01-01T00:00:00"):
        parse_iso("0001-01-01T00:00:00+14:00")
