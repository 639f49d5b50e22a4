"""Aggregates loaded lean (without their signals): dedup answers only for looked-up keys, and the
events the write path builds directly are the ones the library's own ``@event`` methods build."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.aggregates import LeanKeys, NotLoaded, Recipient, UnmatchedBucket, recipient_id
from domain.signals import Signal

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def signal(key: str) -> Signal:
    return Signal(key=key, source="unione", fields={"status": "opened"}, received_at=T0, occurred_at=T0, raw={"k": key})


def test_lean_keys_answer_for_their_scope_and_refuse_any_other_key() -> None:
    owner = recipient_id("m", "c")
    keys = LeanKeys(stored={"a"}, scope={"a", "b"})
    assert keys.holds(owner, "a") is True
    assert keys.holds(owner, "b") is False
    with pytest.raises(NotLoaded) as refused:
        keys.holds(owner, "c")
    assert refused.value.aggregate_id == owner and refused.value.keys == frozenset({"c"})
    keys.widen(stored={"c"}, scope={"c"})
    assert keys.holds(owner, "c") is True
    keys.add("d")  # recorded in this command: known without a lookup
    assert keys.holds(owner, "d") is True


def test_a_lean_recipient_dedups_against_stored_and_new_keys_and_refuses_unknown_ones() -> None:
    recipient = Recipient(mailing_id="m", contact_id="c", name=None, email="c@example.com")
    recipient.collect_events()
    recipient.load_lean(stored={"old"}, scope={"old", "new"})
    assert recipient.record(signal("old")) is False
    assert recipient.record(signal("new")) is True
    assert recipient.record(signal("new")) is False  # twice in one command
    with pytest.raises(NotLoaded):
        recipient.record(signal("elsewhere"))
    assert recipient.keys == set()  # a lean recipient never pretends to know its whole journal


def test_a_lean_bucket_parks_once_and_cannot_be_claimed_from() -> None:
    bucket = UnmatchedBucket(bucket="nowhere")
    bucket.collect_events()
    bucket.load_lean(stored={"x"}, scope={"x", "y"})
    assert bucket.park(signal("x"), {}) is False
    assert bucket.park(signal("y"), {"mailing_id": "m"}) is True
    assert bucket.parked == {}  # nothing held in memory
    with pytest.raises(NotLoaded) as refused:
        bucket.unclaimed()
    assert refused.value.keys is None  # it needs its whole journal


def test_the_write_paths_events_are_the_librarys_own_and_rebuild_the_same_aggregate() -> None:
    fast = Recipient(mailing_id="m", contact_id="c", name=None, email=None)
    fast.record(signal("k1"))
    fast.record(signal("k2"))
    library = Recipient(mailing_id="m", contact_id="c", name=None, email=None)
    library._signal_recorded(signal("k1").to_record(), "contact:c")  # the decorated method: the library's trigger
    library._signal_recorded(signal("k2").to_record(), "contact:c")  # (with its subject: whose key seals it)
    mine, theirs = fast.collect_events(), library.collect_events()
    assert [type(e) for e in mine] == [type(e) for e in theirs]
    strip = lambda e: {k: v for k, v in vars(e).items() if k != "timestamp"}  # noqa: E731
    assert [strip(e) for e in mine] == [strip(e) for e in theirs]
    assert fast.version == library.version == 3
    rebuilt = None
    for e in mine:
        rebuilt = e.mutate(rebuilt)
    assert rebuilt.keys == {"k1", "k2"} and rebuilt.version == 3  # type: ignore[union-attr]
    assert fast.modified_on == mine[-1].timestamp


def test_a_bucket_parks_through_the_same_event_the_library_builds() -> None:
    fast = UnmatchedBucket(bucket="b")
    fast.park(signal("k"), {"mailing_id": "m"})
    assert fast.parked["k"]["key"] == "k" and fast.named_mailing == {"k": "m"}
    rebuilt = None
    for e in fast.collect_events():
        rebuilt = e.mutate(rebuilt)
    assert rebuilt.parked == fast.parked and rebuilt.named_mailing == fast.named_mailing  # type: ignore[union-attr]


def test_widening_keeps_what_was_known_and_scoped_before() -> None:
    owner = recipient_id("m", "c")
    keys = LeanKeys(stored={"a"}, scope={"a", "b"})
    keys.widen(stored={"c"}, scope={"c", "d"})
    assert keys.known == {"a", "c"} and keys.scope == {"a", "b", "c", "d"}
    assert [keys.holds(owner, k) for k in "abcd"] == [True, False, True, False]
    keys.add("e")
    assert "e" in keys.scope and "e" in keys.known


def test_not_loaded_names_the_aggregate_and_what_it_lacks() -> None:
    owner = recipient_id("m", "c")
    assert str(NotLoaded(owner)) == f"aggregate {owner} was loaded without its journal"
    assert str(NotLoaded(owner, frozenset({"k2", "k1"}))) == f"aggregate {owner} was loaded without ['k1', 'k2']"


def test_a_lean_aggregate_refusal_names_that_aggregate() -> None:
    recipient = Recipient(mailing_id="m", contact_id="c", name=None, email=None)
    recipient.load_lean(stored=set(), scope=set())
    with pytest.raises(NotLoaded) as refused:
        recipient.has_signal("k")
    assert refused.value.aggregate_id == recipient.id
    bucket = UnmatchedBucket(bucket="b")
    bucket.load_lean(stored=set(), scope=set())
    with pytest.raises(NotLoaded) as refused:
        bucket.park(signal("k"), {})
    assert refused.value.aggregate_id == bucket.id
    with pytest.raises(NotLoaded) as refused:
        bucket.unclaimed()
    assert refused.value.aggregate_id == bucket.id


def test_a_lean_bucket_remembers_what_it_parked_in_this_command() -> None:
    bucket = UnmatchedBucket(bucket="b")
    bucket.load_lean(stored=set(), scope={"k"})
    assert bucket.park(signal("k"), {}) is True
    assert bucket.lean is not None and bucket.lean.known == {"k"}
    assert bucket.park(signal("k"), {}) is False


def test_a_directly_built_event_carries_when_it_happened() -> None:
    recipient = Recipient(mailing_id="m", contact_id="c", name=None, email=None)
    before = datetime.now(UTC)
    recipient.record(signal("k"))
    event = recipient.collect_events()[-1]
    assert before <= event.timestamp <= datetime.now(UTC)
