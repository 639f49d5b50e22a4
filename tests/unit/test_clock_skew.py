"""Skew is recorded, not trusted (issue 14, item 7): a provider time later than the receipt plus the allowance
(``MAX_CLOCK_SKEW_SECONDS``) is clamped to it at ingest, the fold's windows and times use that effective time, and a
record stored before the field existed gets the same rule when read."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.config import DEFAULT_MAX_CLOCK_SKEW_SECONDS, ConfigError, Settings
from domain.aggregates import CLOCK_SKEW, AddressIndex, sent_before
from domain.fold import RecipientState, fold
from domain.rules import DEFAULT_RULESET
from domain.signals import Signal, clamped_time, iso, system_signal
from interface.simulate import Simulator, event_time
from projections.lean_replay import LightSignal

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
IN_2027 = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
IN_2031 = datetime(2031, 1, 1, tzinfo=UTC)
ALLOWANCE = timedelta(seconds=600)


def signal(status: str, received: datetime, occurred: datetime | None, key: str, **kw: Any) -> Signal:
    return Signal(key=key, source="unione", fields={"status": status}, received_at=received, occurred_at=occurred, **kw)


def fold_journal(journal: list[Signal], rules: Any = DEFAULT_RULESET) -> tuple[RecipientState, list[Any]]:
    state, steps = RecipientState(), []
    for s in journal:
        state, step = fold(state, s, rules, T0)
        steps.append(step)
    return state, steps


# ---- the rule -----------------------------------------------------------------------------------------


def test_the_allowance_is_the_one_correlation_uses_and_defaults_to_600_seconds() -> None:
    assert DEFAULT_MAX_CLOCK_SKEW_SECONDS == 600 == CLOCK_SKEW.total_seconds()
    assert Settings().max_clock_skew == CLOCK_SKEW
    assert Settings.from_env({}).max_clock_skew_seconds == 600
    assert Settings.from_env({"MAX_CLOCK_SKEW_SECONDS": "60"}).max_clock_skew == timedelta(seconds=60)


@pytest.mark.parametrize("value", ["soon", "-1", "inf", "nan", "86401"])
def test_a_bad_allowance_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="MAX_CLOCK_SKEW_SECONDS"):
        Settings.from_env({"MAX_CLOCK_SKEW_SECONDS": value})


def test_correlation_takes_the_allowance_as_a_value() -> None:
    sent = iso(T0)
    assert sent_before(sent, T0 - timedelta(minutes=5))  # the default: 10 minutes
    assert not sent_before(sent, T0 - timedelta(minutes=5), timedelta(minutes=1))
    index = AddressIndex(provider="unione", email="a@example.com")
    index.add_recipient("m-1", "c-1", sent)
    assert index.match(occurred_at=T0 - timedelta(minutes=5)) == ("m-1", "c-1")
    assert index.match(occurred_at=T0 - timedelta(minutes=5), skew=timedelta(minutes=1)) is None


def test_an_open_dated_2027_takes_effect_at_receipt_plus_the_allowance() -> None:
    stamped = signal("opened", T0, IN_2027, "k").stamped(ALLOWANCE)
    assert stamped.effective_at == T0 + ALLOWANCE
    assert stamped.occurred_at == IN_2027  # the provider's own time is kept beside it
    assert stamped.skew_seconds() == (IN_2027 - T0 - ALLOWANCE).total_seconds()
    record = stamped.to_record()
    assert record["effective_at"] == iso(T0 + ALLOWANCE) and record["occurred_at"] == iso(IN_2027)
    assert Signal.from_record(record) == stamped


def test_a_time_within_the_allowance_is_trusted_and_not_skewed() -> None:
    for occurred in (T0 - timedelta(days=3), T0, T0 + ALLOWANCE):
        stamped = signal("opened", T0, occurred, "k").stamped(ALLOWANCE)
        assert stamped.effective_at == occurred and stamped.skew_seconds() == 0
    assert signal("opened", T0, None, "k").stamped(ALLOWANCE).effective_at == T0  # no provider time: the receipt


def test_a_future_open_no_longer_sets_the_first_open_in_the_future() -> None:
    delivered = signal("delivered", T0, T0, "d")
    opened = signal("opened", T0 + timedelta(seconds=5), IN_2027, "o").stamped(ALLOWANCE)
    clicked = signal("clicked", T0 + timedelta(seconds=6), IN_2031, "c", url="https://a.test/").stamped(ALLOWANCE)
    state, steps = fold_journal([delivered, opened, clicked])
    assert state.first_open_at == T0 + timedelta(seconds=5) + ALLOWANCE
    assert state.first_click_at == T0 + timedelta(seconds=6) + ALLOWANCE


def test_the_machine_open_window_is_measured_on_effective_times() -> None:
    """A machine-agent open that arrived a second after the delivery is within a 15-minute window, whatever year
    the provider's clock says it is."""
    rules = DEFAULT_RULESET.patched({"machine_open_user_agents": ["GoogleImageProxy"], "machine_open_window_seconds": 900})
    delivered = signal("delivered", T0, T0, "d")
    opened = signal("opened", T0 + timedelta(seconds=1), IN_2027, "o", user_agent="GoogleImageProxy").stamped(ALLOWANCE)
    state, steps = fold_journal([delivered, opened], rules)
    assert steps[-1].maps_to == "opened_machine" and state.opens == 0


def test_the_machine_click_window_is_measured_on_effective_times() -> None:
    rules = DEFAULT_RULESET.patched({"machine_click_window_seconds": 900})
    delivered = signal("delivered", T0, T0, "d")
    clicked = signal("clicked", T0 + timedelta(seconds=1), IN_2031, "c", url="https://a.test/").stamped(ALLOWANCE)
    state, steps = fold_journal([delivered, clicked], rules)
    assert (steps[-1].effect, steps[-1].why) == ("ignored", "machine_click")


def test_the_confirmation_timeout_is_measured_on_effective_times() -> None:
    """A check recorded an hour after the sending is not due, whatever time it says it happened."""
    sent = system_signal("sent_to_provider", key="s", at=T0)
    early = system_signal("confirmation_checked", key="c1", at=T0 + timedelta(hours=1), occurred_at=IN_2027)
    due = system_signal("confirmation_checked", key="c2", at=T0 + timedelta(hours=49))
    state, steps = fold_journal([sent, early, due])
    assert (steps[1].effect, steps[1].why) == ("ignored", "not_due")
    assert steps[2].effect == "set" and state.response == "unknown_response"


# ---- old records, other readers --------------------------------------------------------------------------


times = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@settings(max_examples=200, deadline=None)
@given(received=times, occurred=st.one_of(st.none(), times), allowance_seconds=st.integers(0, 86400))
def test_no_effective_time_is_later_than_the_receipt_plus_the_allowance(
    received: datetime, occurred: datetime | None, allowance_seconds: int
) -> None:
    allowance = timedelta(seconds=allowance_seconds)
    stamped = signal("opened", received, occurred, "k").stamped(allowance)
    assert stamped.effective_at is not None and stamped.effective_at <= received + allowance
    assert stamped.effective_at == min(occurred or received, received + allowance)
    assert stamped.skew_seconds() == max(0.0, ((occurred or received) - received - allowance).total_seconds())
    again = Signal.from_record(orjson.loads(orjson.dumps(stamped.to_record())))
    assert again.effective_time == stamped.effective_at  # the stored effective time, whatever the reader's setting
    assert LightSignal(stamped.to_record()).effective_time == stamped.effective_at


@settings(max_examples=200, deadline=None)
@given(received=times, occurred=st.one_of(st.none(), times))
def test_an_old_format_record_reads_back_with_the_same_effective_time(received: datetime, occurred: datetime | None) -> None:
    """Stored before the field existed: no ``effective_at``; read with the rule and the allowance of the time."""
    old = signal("opened", received, occurred, "k").to_record()
    assert "effective_at" not in old
    stamped = signal("opened", received, occurred, "k").stamped(CLOCK_SKEW)
    assert Signal.from_record(old).effective_time == stamped.effective_at <= received + CLOCK_SKEW
    assert LightSignal(old).effective_time == stamped.effective_at
    assert clamped_time(occurred, received) == stamped.effective_at


@settings(max_examples=100, deadline=None)
@given(
    offsets=st.lists(st.tuples(st.integers(0, 3600), st.integers(-7200, 10**8)), min_size=1, max_size=6),
    statuses=st.lists(st.sampled_from(["delivered", "opened", "clicked", "soft_bounced"]), min_size=6, max_size=6),
)
def test_an_old_format_journal_folds_as_the_stamped_one(offsets: list[tuple[int, int]], statuses: list[str]) -> None:
    rules = DEFAULT_RULESET.patched({"machine_open_user_agents": ["Bot"], "machine_open_window_seconds": 700})
    old, new = [], []
    for i, (received, ahead) in enumerate(offsets):
        at = T0 + timedelta(seconds=received)
        s = signal(statuses[i], at, at + timedelta(seconds=ahead), f"k{i}", url="https://a.test/", user_agent="Bot")
        old.append(Signal.from_record(s.to_record()))
        new.append(Signal.from_record(s.stamped(CLOCK_SKEW).to_record()))
    assert fold_journal(old, rules) == fold_journal(new, rules)


# ---- the simulator ---------------------------------------------------------------------------------------


class FakeService:
    """Answers the simulator's API calls; remembers when each UniOne batch was posted and what it said."""

    def __init__(self) -> None:
        self.posts: list[tuple[datetime, list[dict[str, Any]]]] = []
        self.dispatched_at: datetime | None = None

    def __call__(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        if path == "/v1/mailings":
            return 201, {}
        if path.endswith("/audience"):
            return 200, {}
        if path.endswith("/dispatch"):
            send = [
                {"contact_id": f"c{i}", "email": f"c{i}@example.com", "metadata": {"contact_id": f"c{i}"}} for i in range(300)
            ]
            self.dispatched_at = datetime.now(UTC)
            return 200, {"send": send, "remaining": 0}
        if path == "/v1/webhooks/unione":
            document = json.loads(body or b"{}")
            self.posts.append((datetime.now(UTC), [e["event_data"] for e in document["events_by_user"][0]["events"]]))
            return 200, {"accepted": 1}
        if path == "/readyz":
            return 200, {"lag": 0}
        return 200, {}


def test_the_simulator_reports_no_time_later_than_its_posting() -> None:
    service = FakeService()
    report = Simulator(service, "t", "k", lambda *_: None, seed=7).run(300, "sim")
    events = [(posted, e) for posted, batch in service.posts for e in batch]
    assert report.events > 300 and len(events) >= report.events
    late = [e for posted, e in events if event_time(e) > posted]
    assert late == []
    assert service.dispatched_at is not None
    assert all(event_time(e) > service.dispatched_at for _, e in events)  # in the timeline, which starts at the dispatch
    statuses = {e["status"] for _, e in events}
    assert {"delivered", "opened", "clicked"} <= statuses  # still a campaign: engagement is reported
    opens = Counter(e["job_id"] for _, e in events if e["status"] == "opened")
    assert max(opens.values()) > 1  # a recipient opening again is reported again
    keys = [(e["job_id"], e["status"], e["event_time"], e.get("url")) for _, e in events]
    assert len(set(keys)) == report.events  # no two events of a campaign are one provider event
