"""Properties of the fold (hypothesis): duplicates, order, finality, and a truthful audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.catalogue import RESPONSES
from domain.fold import RecipientState, fold
from domain.rules import DEFAULT_RULESET, Ruleset
from domain.signals import Signal, system_signal

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RULESETS = [
    DEFAULT_RULESET,
    DEFAULT_RULESET.patched({"count_machine_opens": True, "statistics_period_days": 7}),
    DEFAULT_RULESET.patched(
        {
            "machine_click_window_seconds": 30,
            "machine_open_user_agents": ["proxy"],
            "machine_open_window_seconds": 60,
            "confirmation_timeout_hours": 1,
        }
    ),
    DEFAULT_RULESET.patched(
        {
            "responses": {"soft_bounce": {"final": True}, "unsubscribed": {"final": False, "priority": 70}},
            "statistics_period_days": None,
        }
    ),
]

URLS = ["https://shop.test/a", "https://shop.test/b", "https://mail.test/unsubscribe?u=1", None]

# (source, fields, extra) — everything a recipient's journal may hold
SIGNAL_SHAPES = [
    ("system", {"kind": "sent_to_provider"}, {}),
    ("system", {"kind": "queued"}, {}),
    ("system", {"kind": "canceled_no_email"}, {}),
    ("system", {"kind": "stopped_expired"}, {}),
    ("system", {"kind": "confirmation_checked"}, {}),
    ("unione", {"status": "delivered"}, {}),
    ("unione", {"status": "opened"}, {}),
    ("unione", {"status": "opened"}, {"user_agent": "Some Proxy/1.0"}),
    ("unione", {"status": "clicked"}, {"url": True}),
    ("unione", {"status": "soft_bounced"}, {}),
    ("unione", {"status": "hard_bounced", "delivery_status": "err_user_unknown"}, {}),
    ("unione", {"status": "hard_bounced", "delivery_status": "skip_dup_x"}, {}),
    ("unione", {"status": "unsubscribed"}, {}),
    ("unione", {"status": "spam"}, {}),
    ("unione", {"status": "sent"}, {}),
    ("sendgrid", {"event": "open"}, {"machine": True}),
    ("sendgrid", {"event": "bounce", "type": "blocked"}, {}),
    ("elasticemail", {"status": "Error", "category": "NoMailbox"}, {}),
]


@st.composite
def signals(draw, key: str) -> Signal:
    source, fields, extra = draw(st.sampled_from(SIGNAL_SHAPES))
    received = T0 + timedelta(minutes=draw(st.integers(0, 60 * 24 * 40)))  # up to 40 days: periods close
    occurred = received - timedelta(seconds=draw(st.integers(-120, 3600)))
    if source == "system":
        return system_signal(fields["kind"], key=key, at=received)
    return Signal(
        key=key,
        source=source,
        fields=dict(fields),
        received_at=received,
        occurred_at=occurred,
        url=draw(st.sampled_from(URLS)) if extra.get("url") else None,
        user_agent=extra.get("user_agent"),
        machine=extra.get("machine", False),
    )


@st.composite
def journals(draw, min_size: int = 1, max_size: int = 25) -> list[Signal]:
    n = draw(st.integers(min_size, max_size))
    return [draw(signals(f"k{i}")) for i in range(n)]


def fold_journal(journal: list[Signal], rules: Ruleset):
    state = RecipientState()
    steps = []
    for signal in journal:
        state, step = fold(state, signal, rules, T0)
        steps.append(step)
    return state, steps


# ---- duplicates -----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(journal=journals(), rules=st.sampled_from(RULESETS), data=st.data())
def test_duplicates_change_nothing(journal, rules, data):
    """Providers retry: a repeated key, at any later point and received at any later time, changes nothing."""
    with_dups: list[Signal] = []
    for i, signal in enumerate(journal):
        with_dups.append(signal)
        for j in data.draw(st.lists(st.integers(0, i), max_size=2), label=f"dups after {i}"):
            retry_delay = timedelta(minutes=data.draw(st.integers(0, 60 * 24 * 60)))
            with_dups.append(journal[j].with_received_at(journal[j].received_at + retry_delay))

    state, steps = fold_journal(journal, rules)
    state_d, steps_d = fold_journal(with_dups, rules)

    assert state_d == state  # response, reason, counters, urls, times, seen keys: all of it
    kept = [s for s in steps_d if s.why != "duplicate"]
    assert kept == steps
    assert len(steps_d) - len(kept) == len(with_dups) - len(journal)


# ---- order ----------------------------------------------------------------------------------------

ENGAGEMENT_SHAPES = {
    "delivered": ("unione", {"status": "delivered"}, False),
    "opened": ("unione", {"status": "opened"}, False),
    "clicked": ("unione", {"status": "clicked"}, False),
    "soft_bounce": ("unione", {"status": "soft_bounced"}, False),
    "opened_machine": ("sendgrid", {"event": "open"}, True),
}
NON_FINAL = list(ENGAGEMENT_SHAPES)


@st.composite
def priorities_rulesets(draw) -> Ruleset:
    """The default, or one with the five non-finals in a random (distinct) priority order."""
    base = draw(st.sampled_from([DEFAULT_RULESET, DEFAULT_RULESET.patched({"count_machine_opens": True})]))
    if draw(st.booleans()):
        return base
    prios = draw(st.lists(st.integers(31, 99), min_size=5, max_size=5, unique=True))
    return base.patched({"responses": {c: {"priority": p} for c, p in zip(NON_FINAL, prios)}})


@PROPERTY_SETTINGS
@given(
    codes=st.lists(st.sampled_from(NON_FINAL), min_size=1, max_size=12).flatmap(st.permutations),
    order=st.data(),
    rules=priorities_rulesets(),
)
def test_any_order_of_the_same_non_final_signals_gives_the_same_response_and_counters(codes, order, rules):
    dispatch = system_signal("sent_to_provider", key="dispatch", at=T0)
    journal = []
    for i, code in enumerate(codes):
        source, fields, machine = ENGAGEMENT_SHAPES[code]
        at = T0 + timedelta(hours=i + 1)
        url = URLS[i % 2] if code == "clicked" else None
        journal.append(
            Signal(key=f"k{i}", source=source, fields=fields, received_at=at, occurred_at=at, url=url, machine=machine)
        )
    shuffled = order.draw(st.permutations(journal), label="another order")

    a, _ = fold_journal([dispatch, *journal], rules)
    b, _ = fold_journal([dispatch, *shuffled], rules)

    for state in (a, b):  # and both are what the rules say
        best = max(["sent_to_provider", *codes], key=rules.priority)
        assert state.response == best
        assert state.reason == ("will_retry" if best == "soft_bounce" else None)
        assert state.opens == codes.count("opened") + (codes.count("opened_machine") if rules.count_machine_opens else 0)
        assert state.clicks == codes.count("clicked")
    assert (a.response, a.reason, a.opens, a.clicks, a.clicked_urls, a.sent, a.sent_at) == (
        b.response,
        b.reason,
        b.opens,
        b.clicks,
        b.clicked_urls,
        b.sent,
        b.sent_at,
    )


# ---- finality -------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(journal=journals(max_size=30), rules=st.sampled_from(RULESETS))
def test_the_response_never_changes_after_a_final(journal, rules):
    state = RecipientState()
    final_state = None
    for signal in journal:
        state, step = fold(state, signal, rules, T0)
        if final_state is not None:
            assert (state.response, state.reason) == (final_state.response, final_state.reason)
            assert step.effect != "set"
            if RESPONSES[final_state.response].group in ("not_sent", "not_delivered"):
                # the mail never arrived: engagement counts nowhere
                assert (state.opens, state.clicks, state.clicked_urls) == (
                    final_state.opens,
                    final_state.clicks,
                    final_state.clicked_urls,
                )
        elif rules.is_final(state.response):
            final_state = state


@PROPERTY_SETTINGS
@given(journal=journals(max_size=30), rules=st.sampled_from(RULESETS))
def test_the_audit_tells_the_truth(journal, rules):
    """Each step's effect is what happened: set ⇔ response changed; counted ⇔ only counters moved;
    ignored ⇔ neither. Counters never go down. ``response_after`` is the state's response."""
    state = RecipientState()
    for signal in journal:
        before = state
        state, step = fold(before, signal, rules, T0)
        assert step.response_after == state.response
        assert state.opens >= before.opens and state.clicks >= before.clicks
        assert sum(state.clicked_urls.values()) <= state.clicks
        moved = (state.opens, state.clicks) != (before.opens, before.clicks)
        changed = state.response != before.response
        if step.effect == "set":
            assert changed and step.why is None and step.maps_to == state.response
        elif step.effect == "counted":
            assert moved and not changed and step.why in ("final", "lower_priority")
        else:
            assert step.effect == "ignored" and step.why is not None
            assert not moved and not changed and state.reason == before.reason
