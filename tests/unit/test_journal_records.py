"""What the journal stores and how it is found again: signal records, dedup keys, aggregate ids, aggregates.

These values outlive a release: a stored journal is read by the next version, so ids, dedup keys and
record shapes are pinned here (a change would orphan stored aggregates or count a provider's retry twice).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from domain.aggregates import (
    CLOCK_SKEW,
    AddressIndex,
    Contact,
    Job,
    Mailing,
    Recipient,
    RulesBook,
    SideRecord,
    UnmatchedBucket,
    address_id,
    contact_id_of,
    job_id,
    mailing_id_of,
    provider_mismatch,
    recipient_id,
    rules_book_id,
    sent_before,
    side_record_id,
    unmatched_bucket_id,
)
from domain.signals import (
    Signal,
    dedup_key,
    iso,
    key_digest,
    mask_email,
    normalise_email,
    parse_iso,
    plausible_time,
    system_signal,
    utc,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PLUS3 = timezone(timedelta(hours=3))


# ---- times ------------------------------------------------------------------------------------------


@pytest.fixture
def tokyo_local_time(monkeypatch):
    """The process's local time zone is not UTC (as on a server configured for its city)."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_utc_converts_to_utc_whatever_the_local_zone(tokyo_local_time):
    converted = utc(datetime(2026, 3, 1, 12, 0, tzinfo=PLUS3))
    assert converted == T0 and converted.utcoffset() == timedelta(0)
    assert iso(datetime(2026, 3, 1, 12, 0, tzinfo=PLUS3)) == "2026-03-01T09:00:00+00:00"


def test_a_naive_time_is_utc():
    assert utc(datetime(2026, 3, 1, 9, 0)) == T0
    assert iso(datetime(2026, 3, 1, 9, 0)) == "2026-03-01T09:00:00+00:00"


def test_iso_and_parse_iso_round_trip_and_pass_none():
    assert iso(None) is None and parse_iso(None) is None
    parsed = parse_iso("2026-03-01T12:00:00+03:00")
    assert parsed == T0 and parsed.utcoffset() == timedelta(0)
    assert parse_iso("2026-03-01T09:00:00") == T0
    assert parse_iso(iso(T0)) == T0


def test_a_time_utc_cannot_hold_is_a_value_error_naming_it():
    with pytest.raises(ValueError) as info:
        parse_iso("0001-01-01T00:00:00+14:00")
    assert str(info.value) == "time out of range: '0001-01-01T00:00:00+14:00'"
    with pytest.raises(ValueError) as info:
        parse_iso("9999-12-31T23:59:59.999999-14:00:00.000000")
    assert str(info.value) == "time out of range: '9999-12-31T23:59:59.999999-14:00:00.0000'"  # the first 40 characters
    with pytest.raises(ValueError) as info:
        plausible_time(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14))))
    assert str(info.value) == "time out of range"


# ---- dedup keys and digests ---------------------------------------------------------------------------


def test_dedup_keys_are_stable_across_releases():
    assert dedup_key("job-1", "ann@example.test", "delivered", None, 3) == "dde0a8ae77dec4e7ae2d2a7e8930a4ed"
    assert dedup_key() == "e3b0c44298fc1c149afbf4c8996fb924"


def test_dedup_key_parts_are_kept_apart_and_none_is_empty():
    assert dedup_key("ab", "c") != dedup_key("a", "bc")
    assert dedup_key("a", None) == dedup_key("a", "")
    assert len(dedup_key("x")) == 32


def test_key_digests_are_8_stable_bytes():
    assert key_digest("unione-1") == bytes.fromhex("3dcc5d97935d3cfb")
    assert len(key_digest("")) == 8


# ---- emails -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email, masked",
    [(None, "?"), ("", "?"), ("no-at-sign", "?"), ("ann@example.test", "a***@example.test"), ("@x.test", "***@x.test")],
)
def test_mask_email_never_shows_the_whole_address(email, masked):
    assert mask_email(email) == masked


def test_normalise_email():
    assert normalise_email("  Ann@Example.TEST ") == "ann@example.test"
    assert normalise_email(None) is None and normalise_email("   ") is None


# ---- signal records -----------------------------------------------------------------------------------


def full_signal() -> Signal:
    return Signal(
        key="k-1",
        source="sendgrid",
        fields={"event": "open"},
        received_at=T0,
        occurred_at=T0 - timedelta(minutes=5),
        url="https://a.test/",
        reason="other",
        detail="250 ok",
        user_agent="Mozilla/5.0",
        machine=True,
        raw={"sg_event_id": "k-1"},
    )


def test_a_signal_record_holds_every_field_it_has():
    assert full_signal().to_record() == {
        "key": "k-1",
        "source": "sendgrid",
        "fields": {"event": "open"},
        "received_at": "2026-03-01T09:00:00+00:00",
        "occurred_at": "2026-03-01T08:55:00+00:00",
        "url": "https://a.test/",
        "reason": "other",
        "detail": "250 ok",
        "user_agent": "Mozilla/5.0",
        "raw": {"sg_event_id": "k-1"},
        "machine": True,
    }


def test_a_minimal_signal_record_leaves_out_what_it_does_not_have():
    signal = Signal(key="k-2", source="unione", fields={"status": "delivered"}, received_at=T0)
    assert signal.to_record() == {
        "key": "k-2",
        "source": "unione",
        "fields": {"status": "delivered"},
        "received_at": "2026-03-01T09:00:00+00:00",
        "occurred_at": None,
    }
    assert Signal.from_record(signal.to_record()) == signal


def test_a_record_reads_back_as_the_same_signal():
    signal = full_signal()
    again = Signal.from_record(signal.to_record())
    assert again == signal
    assert again.received_at.utcoffset() == timedelta(0)


def test_a_record_copies_its_fields():
    record = full_signal().to_record()
    signal = Signal.from_record(record)
    record["fields"]["event"] = "click"
    assert signal.fields == {"event": "open"}
    assert full_signal().to_record()["fields"] is not full_signal().fields


def test_with_received_at_changes_only_received_at():
    later = full_signal().with_received_at(T0 + timedelta(days=1))
    assert later.received_at == T0 + timedelta(days=1)
    assert later.to_record() | {"received_at": None} == full_signal().to_record() | {"received_at": None}


def test_a_system_signal_happened_when_recorded_unless_told():
    signal = system_signal("opened", key="s-1", at=T0, reason="other", detail="d", url="https://a.test/", raw={"x": 1})
    assert (signal.source, signal.fields, signal.occurred_at) == ("system", {"kind": "opened"}, T0)
    assert (signal.reason, signal.detail, signal.url, signal.raw) == ("other", "d", "https://a.test/", {"x": 1})
    assert system_signal("opened", key="s-2", at=T0, occurred_at=T0 - timedelta(hours=1)).occurred_at == T0 - timedelta(hours=1)


# ---- aggregate ids: deterministic, stable, distinct -----------------------------------------------------


def test_aggregate_ids_are_stable_across_releases():
    assert recipient_id("spring-sale", "c-1001") == UUID("2a0421b0-5059-50a5-a6d1-0049ad00fea9")
    assert mailing_id_of("spring-sale") == UUID("7c6a31d6-8925-5645-a513-ffcd4664b612")
    assert contact_id_of("c-1001") == UUID("2a893df6-1718-51b9-879a-3df5e18b1488")
    assert address_id("unione", "ann@example.test") == UUID("cf76ada2-2036-5a63-b155-3d3f3badc81f")
    assert unmatched_bucket_id("email:unione:ann@example.test") == UUID("1793ab91-30cb-53c5-b46a-7d90e06956be")
    assert side_record_id("q:1") == UUID("edf34559-f8e4-5d3e-9dc0-3dfdc562ff6e")
    assert rules_book_id() == UUID("63631fe6-b01d-51ec-a7d8-ba5aae5c1b1b")
    assert job_id("j-1") == UUID("a0986dbd-51d0-5b9f-ae52-66ce64023e1f")


def test_ids_of_different_kinds_or_parts_never_collide():
    ids = {
        recipient_id("a", "b"),
        recipient_id("b", "a"),
        recipient_id("a:b", ""),
        mailing_id_of("a"),
        contact_id_of("a"),
        address_id("unione", "a"),
        address_id("sendgrid", "a"),
        unmatched_bucket_id("a"),
        side_record_id("a"),
        job_id("a"),
    }
    assert len(ids) == 10


def test_aggregates_are_created_under_their_natural_ids():
    assert Recipient(mailing_id="m", contact_id="c", name=None, email=None).id == recipient_id("m", "c")
    assert Mailing(**mailing_fields()).id == mailing_id_of("m-1")
    assert Contact(contact_id="c").id == contact_id_of("c")
    assert AddressIndex(provider="unione", email="a@b.test").id == address_id("unione", "a@b.test")
    assert UnmatchedBucket(bucket="b").id == unmatched_bucket_id("b")
    assert SideRecord(key="q", kind="quarantine", source="unione", received_at="t", payload={}).id == side_record_id("q")
    assert RulesBook().id == rules_book_id()
    assert Job(job="j", kind="activate", rules_version="2", requested_at="t").id == job_id("j")


# ---- aggregates ---------------------------------------------------------------------------------------


def mailing_fields() -> dict:
    return {
        "mailing_id": "m-1",
        "name": "Spring",
        "category": "bulk",
        "email_type": "news",
        "provider": "unione",
        "expires_at": "2026-04-01T00:00:00+00:00",
        "prevent_duplicates": True,
    }


def test_a_mailing_shows_its_fields():
    assert Mailing(**mailing_fields()).fields() == {
        "id": "m-1",
        "name": "Spring",
        "category": "bulk",
        "email_type": "news",
        "provider": "unione",
        "expires_at": "2026-04-01T00:00:00+00:00",
        "prevent_duplicates": True,
    }


def test_dispatch_waves_are_numbered_and_the_first_is_the_start():
    mailing = Mailing(**mailing_fields())
    assert (mailing.started_at, mailing.waves) == (None, 0)
    assert mailing.start_dispatch_wave("t1") == 1
    assert mailing.start_dispatch_wave("t2") == 2
    assert (mailing.started_at, mailing.waves) == ("t1", 2)
    waves = [e for e in mailing.collect_events() if type(e).__name__ == "DispatchWaveStarted"]
    assert [(e.mailing_id, e.at, e.wave) for e in waves] == [("m-1", "t1", 1), ("m-1", "t2", 2)]  # the journal numbers them


def test_a_recipient_records_a_key_once():
    recipient = Recipient(mailing_id="m", contact_id="c", name=None, email=None)
    signal = system_signal("sent_to_provider", key="dispatch", at=T0)
    assert not recipient.has_signal("dispatch")
    assert recipient.record(signal) is True
    assert recipient.record(signal.with_received_at(T0 + timedelta(hours=1))) is False
    assert recipient.has_signal("dispatch") and not recipient.has_signal("other")
    assert len(recipient.collect_events()) == 2  # joined, one signal


def test_a_job_as_the_api_shows_it():
    job = Job(job="j", kind="activate", rules_version="2", requested_at="t")
    assert job.as_dict() == {"id": "j", "kind": "activate", "version": "2", "status": "running", "progress": 0.0, "error": None}
    job.progressed(0.123456)
    assert job.as_dict()["progress"] == 0.1235
    job.finish("failed", "boom", "t2")
    assert job.as_dict() == {
        "id": "j",
        "kind": "activate",
        "version": "2",
        "status": "failed",
        "progress": 0.1235,
        "error": "boom",
    }
    done = Job(job="k", kind="activate", rules_version="3", requested_at="t")
    done.finish("done", None, "t2")
    assert (done.as_dict()["status"], done.as_dict()["progress"]) == ("done", 1.0)


# ---- correlation by address --------------------------------------------------------------------------


def index_of(*recipients: tuple[str, str, str | None]) -> AddressIndex:
    index = AddressIndex(provider="unione", email="ann@example.test")
    for mailing_id, contact_id, sent_at in recipients:
        index.add_recipient(mailing_id, contact_id, sent_at)
    return index


def test_an_address_matches_its_most_recent_recipient():
    index = index_of(("m-1", "c-1", iso(T0)), ("m-2", "c-1", iso(T0 + timedelta(days=1))))
    assert index.match() == ("m-2", "c-1")
    assert index.match(occurred_at=T0 + timedelta(days=2)) == ("m-2", "c-1")


def test_an_address_matches_within_the_mailing_the_event_names():
    index = index_of(("m-1", "c-1", iso(T0)), ("m-2", "c-1", iso(T0 + timedelta(days=1))))
    assert index.match("m-1") == ("m-1", "c-1")
    assert index.match("m-3") is None


def test_an_address_matches_only_recipients_sent_before_the_event():
    index = index_of(("m-1", "c-1", iso(T0)), ("m-2", "c-2", iso(T0 + timedelta(days=1))))
    assert index.match(occurred_at=T0 + timedelta(hours=1)) == ("m-1", "c-1")
    assert index.match(occurred_at=T0 - timedelta(days=1)) is None  # nobody was sent anything yet


def test_the_clock_skew_allowance_is_inclusive():
    index = index_of(("m-1", "c-1", iso(T0)))
    assert timedelta(minutes=10) == CLOCK_SKEW
    assert index.match(occurred_at=T0 - CLOCK_SKEW) == ("m-1", "c-1")
    assert index.match(occurred_at=T0 - CLOCK_SKEW - timedelta(microseconds=1)) is None


def test_without_times_the_address_decides():
    assert sent_before(None, T0) and sent_before(iso(T0), None) and sent_before(None, None)
    assert index_of(("m-1", "c-1", None)).match(occurred_at=T0) == ("m-1", "c-1")
    assert index_of().match() is None


def test_provider_mismatch():
    unione_event = Signal(key="k", source="unione", fields={}, received_at=T0)
    ours = system_signal("opened", key="s", at=T0)
    assert provider_mismatch(unione_event, "sendgrid")
    assert not provider_mismatch(unione_event, "unione")
    assert not provider_mismatch(unione_event, None)
    assert not provider_mismatch(ours, "sendgrid")  # the sender's own signals name no provider


# ---- the unmatched bucket ---------------------------------------------------------------------------


def event(key: str, source: str = "unione", occurred_at: datetime = T0) -> Signal:
    return Signal(key=key, source=source, fields={"status": "opened"}, received_at=T0, occurred_at=occurred_at)


def test_a_bucket_parks_a_key_once_and_hands_back_the_unclaimed():
    bucket = UnmatchedBucket(bucket="email:unione:ann@example.test")
    assert bucket.park(event("a"), {"mailing_id": None}) is True
    assert bucket.park(event("a"), {"mailing_id": None}) is False
    assert bucket.park(event("b"), {"mailing_id": "m-1"}) is True
    assert [s.key for s in bucket.unclaimed()] == ["a", "b"]
    assert bucket.unclaimed()[0] == event("a")
    bucket.claim(["a"], "m-1", "c-1")
    assert [s.key for s in bucket.unclaimed()] == ["b"]


def test_a_recipient_claims_only_what_can_be_about_it():
    bucket = UnmatchedBucket(bucket="email:unione:ann@example.test")
    bucket.park(event("plain"), {})
    bucket.park(event("names-m1"), {"mailing_id": "m-1"})
    bucket.park(event("names-m2"), {"mailing_id": "m-2"})
    bucket.park(event("sendgrid", source="sendgrid"), {})
    bucket.park(event("early", occurred_at=T0 - timedelta(days=1)), {})
    claimable = bucket.claimable("m-1", "unione", iso(T0))
    assert [s.key for s in claimable] == ["plain", "names-m1"]
    assert [s.key for s in bucket.claimable("m-1", "unione")] == ["plain", "names-m1", "early"]
