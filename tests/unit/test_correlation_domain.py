"""Correlation rules of the journals (issue 7, failure 11): provider mismatch, sent-before with clock skew,
what a recipient may claim, and dispatch wave numbering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.aggregates import CLOCK_SKEW, AddressIndex, Mailing, UnmatchedBucket, provider_mismatch, sent_before
from domain.signals import Signal, iso, system_signal

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def signal(source: str = "unione", key: str = "k", at: datetime | None = T0) -> Signal:
    return Signal(key=key, source=source, fields={"status": "opened"}, received_at=T0, occurred_at=at)


def test_the_clock_skew_is_ten_minutes() -> None:
    assert timedelta(minutes=10) == CLOCK_SKEW


def test_sent_before_allows_the_skew_and_no_more() -> None:
    sent = iso(T0)
    assert sent_before(sent, T0 + timedelta(hours=1))
    assert sent_before(sent, T0 - CLOCK_SKEW)  # the boundary is inside
    assert not sent_before(sent, T0 - CLOCK_SKEW - timedelta(microseconds=1))
    assert sent_before(None, T0) and sent_before(sent, None)  # nothing to compare: the address decides


def test_provider_mismatch_is_another_providers_event_only() -> None:
    assert provider_mismatch(signal("elasticemail"), "unione")
    assert not provider_mismatch(signal("unione"), "unione")
    assert not provider_mismatch(signal("unione"), None)  # the mailing is not known (yet)
    assert not provider_mismatch(system_signal("delivered", key="s", at=T0), "unione")  # the sender's own


def test_the_address_index_matches_the_latest_sent_before_the_event_else_nobody() -> None:
    index = AddressIndex(provider="unione", email="a@example.com")
    index.add_recipient("mon", "a", iso(T0))
    index.add_recipient("tue", "a", iso(T0 + timedelta(days=1)))
    assert index.match(None, T0 + timedelta(hours=2)) == ("mon", "a")
    assert index.match(None, T0 + timedelta(days=2)) == ("tue", "a")
    assert index.match("mon", T0 + timedelta(days=2)) == ("mon", "a")
    assert index.match(None, T0 - timedelta(days=700)) is None
    assert index.match("wed", T0 + timedelta(days=2)) is None
    assert index.match(None, None) == ("tue", "a")


def test_a_recipient_claims_only_what_may_be_its_own() -> None:
    bucket = UnmatchedBucket(bucket="email:unione:a@example.com")
    bucket.park(signal(key="early", at=T0 - timedelta(days=1)), {"mailing_id": None})
    bucket.park(signal(key="late", at=T0 + timedelta(hours=1)), {"mailing_id": None})
    bucket.park(signal(key="other-mailing", at=T0 + timedelta(hours=1)), {"mailing_id": "other"})
    bucket.park(signal(source="elasticemail", key="elastic", at=T0 + timedelta(hours=1)), {"mailing_id": "m"})
    bucket.park(signal(key="named", at=T0 + timedelta(hours=1)), {"mailing_id": "m"})
    assert [s.key for s in bucket.claimable("m", "unione", iso(T0))] == ["late", "named"]
    assert [s.key for s in bucket.claimable("m", "unione")] == ["early", "late", "named"]  # by metadata: no time rule
    bucket.claim(["late"], "m", "a")
    assert [s.key for s in bucket.claimable("m", "unione", iso(T0))] == ["named"]


def test_dispatch_waves_are_numbered_from_one() -> None:
    mailing = Mailing(
        mailing_id="m", name="M", category="bulk", email_type=None, provider="unione", expires_at=None, prevent_duplicates=False
    )
    assert mailing.start_dispatch_wave(iso(T0)) == 1  # type: ignore[arg-type]
    assert mailing.start_dispatch_wave(iso(T0 + timedelta(days=1))) == 2  # type: ignore[arg-type]
    assert (mailing.waves, mailing.started_at) == (2, iso(T0))
    events = mailing.collect_events()
    assert [e.wave for e in events[1:]] == [1, 2]  # type: ignore[attr-defined]


def test_sent_before_holds_for_the_last_representable_time() -> None:
    assert sent_before(iso(T0), datetime.max.replace(tzinfo=UTC))  # (was: an OverflowError adding the skew)
