"""The fold's rules that mutation testing found unguarded (issue 7): each test names what a user would see go wrong.

Times: ``at`` is when we received a signal, ``occurred_at`` the provider's time (signals arrive out of order).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.contacts import ContactState, apply_signal_effect
from domain.fold import RecipientState, SeenKeys, Step, fold, fold_into
from domain.rules import DEFAULT_RULESET
from domain.signals import key_digest

S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture
def sent(system):
    return system("sent_to_provider", at=timedelta(0), key="dispatch")


def fold_in_place(signals, rules=DEFAULT_RULESET, start=None):
    """Fold a journal as a replay does: one state, updated in place by ``fold_into``."""
    state = RecipientState()
    return state, [fold_into(state, signal, rules, start) for signal in signals]


# ---- a repeated key, in place (replays) -------------------------------------------------------------


def test_fold_into_ignores_a_repeated_key_and_says_what_it_would_have_mapped_to(sent, unione, t0):
    bounce = unione("hard_bounced", MIN, key="bounce-1", delivery_status="err_user_unknown")
    state, steps = fold_in_place([sent, bounce, bounce])
    assert steps[2] == Step("hard_bounce", "unknown_recipient", "ignored", "duplicate", "hard_bounce")
    assert (state.response, state.reason, state.updated_at) == ("hard_bounce", "unknown_recipient", t0 + MIN)


def test_fold_into_a_repeated_key_changes_no_counter(sent, unione):
    click = unione("clicked", MIN, key="click-1", url="https://shop.test/a")
    state, steps = fold_in_place([sent, click, click, click])
    assert [s.why for s in steps[2:]] == ["duplicate", "duplicate"]
    assert (state.clicks, state.clicked_urls, len(state.seen)) == (1, {"https://shop.test/a": 1}, 2)


def test_a_repeated_key_folded_in_place_does_not_reapply_contact_effects(sent, unione):
    """The soft-bounce streak counts once per signal, whichever fold the replay uses."""
    rules = DEFAULT_RULESET.patched({"soft_bounce_limit": 2})
    bounce = unione("soft_bounced", MIN, key="soft-1")
    contact = ContactState(email="ann@example.test")
    state = RecipientState()
    for signal in (sent, bounce, bounce):
        contact = apply_signal_effect(contact, fold_into(state, signal, rules), None, rules)
    assert contact.soft_bounce_streak == 1
    assert contact.email_is_actual is True


def test_a_repeated_unsubscribe_is_a_duplicate_with_its_target(sent, unione):
    unsubscribe = unione("unsubscribed", MIN, key="unsub-1")
    _, steps = fold_in_place([sent, unsubscribe, unsubscribe])
    assert steps[2] == Step("unsubscribed", None, "ignored", "duplicate", "unsubscribed")


def test_a_repeated_confirmation_check_maps_to_nothing_even_with_a_reason(sent, system):
    check = system("confirmation_checked", 49 * H, key="check-1", reason="other")
    _, steps = fold_in_place([sent, check, check])
    assert steps[1].effect == "set"
    assert steps[2] == Step(None, None, "ignored", "duplicate", "unknown_response")
    state, step = fold(RecipientState(), check, DEFAULT_RULESET)
    assert fold(state, check, DEFAULT_RULESET)[1] == Step(None, None, "ignored", "duplicate", "planned")


def test_only_the_system_confirms_a_provider_status_field_named_kind_is_mapped_as_usual(sent, provider_signal):
    odd = provider_signal("unione", {"status": "delivered", "kind": "confirmation_checked"}, MIN, key="odd")
    _, steps = fold_in_place([sent, odd, odd])
    assert steps[1] == Step("delivered", None, "set", None, "delivered")
    assert steps[2].maps_to == "delivered"


# ---- an ignored step still says the reason it mapped to -----------------------------------------------


def test_a_late_signal_after_the_period_keeps_its_reason(fold_all, sent, unione):
    late = unione("hard_bounced", 31 * D, delivery_status="err_mailbox_full")
    _, steps = fold_all([sent, late])
    assert steps[1] == Step("hard_bounce", "mailbox_problem", "ignored", "period_closed", "sent_to_provider")


def test_engagement_after_a_bounce_is_not_delivered_and_keeps_its_target(fold_all, sent, unione, system):
    bounce = unione("hard_bounced", MIN, delivery_status="err_user_unknown")
    open_ = system("opened", 2 * MIN, reason="other")
    click = system("clicked", 3 * MIN, reason="other", url="https://shop.test/a")
    state, steps = fold_all([sent, bounce, open_, click])
    assert steps[2] == Step("opened", "other", "ignored", "not_delivered", "hard_bounce")
    assert steps[3] == Step("clicked", "other", "ignored", "not_delivered", "hard_bounce")
    assert (state.opens, state.clicks, state.first_open_at) == (0, 0, None)


def test_an_unsubscribe_link_click_keeps_its_target(fold_all, sent, unione, system):
    click = system("clicked", 2 * MIN, reason="other", url="https://mail.test/unsubscribe?u=1")
    _, steps = fold_all([sent, unione("delivered", MIN), click])
    assert steps[2] == Step("clicked", "other", "ignored", "unsubscribe_link", "delivered")


def test_a_scanner_click_keeps_its_target(fold_all, sent, unione, system):
    rules = DEFAULT_RULESET.patched({"machine_click_window_seconds": 30})
    click = system("clicked", MIN + 10 * S, reason="other", url="https://shop.test/a")
    _, steps = fold_all([sent, unione("delivered", MIN), click], rules=rules)
    assert steps[2] == Step("clicked", "other", "ignored", "machine_click", "delivered")


def test_a_counted_click_that_does_not_change_the_response_keeps_its_reason(fold_all, sent, unione, system):
    click = system("clicked", 3 * MIN, reason="other", url="https://shop.test/a")
    _, steps = fold_all([sent, unione("delivered", MIN), unione("clicked", 2 * MIN, url="https://shop.test/a"), click])
    assert steps[3] == Step("clicked", "other", "counted", "lower_priority", "clicked")


# ---- first times: the earliest provider time wins -----------------------------------------------------


def test_the_first_click_time_is_the_earliest_even_when_a_later_click_arrives_after(fold_all, sent, unione, t0):
    state, _ = fold_all(
        [
            sent,
            unione("delivered", MIN),
            unione("clicked", 10 * MIN, occurred_at=5 * MIN, url="https://a.test/"),
            unione("clicked", 20 * MIN, occurred_at=9 * MIN, url="https://a.test/"),
        ]
    )
    assert state.first_click_at == t0 + 5 * MIN
    assert state.first_open_at == t0 + 5 * MIN  # a click implies an open


def test_the_first_click_time_moves_back_for_an_earlier_click_reported_late(fold_all, sent, unione, t0):
    state, _ = fold_all(
        [
            sent,
            unione("delivered", MIN),
            unione("clicked", 10 * MIN, occurred_at=9 * MIN, url="https://a.test/"),
            unione("clicked", 20 * MIN, occurred_at=4 * MIN, url="https://a.test/"),
        ]
    )
    assert state.first_click_at == t0 + 4 * MIN


@pytest.mark.parametrize("status", ["unsubscribed", "spam"])
def test_an_implied_open_sets_the_first_open_time(fold_all, sent, unione, t0, status):
    state, steps = fold_all([sent, unione("delivered", MIN), unione(status, 20 * MIN, occurred_at=15 * MIN)])
    assert steps[2].effect == "set"
    assert state.unique_open and state.first_open_at == t0 + 15 * MIN


@pytest.mark.parametrize("status", ["unsubscribed", "spam"])
def test_an_implied_open_keeps_an_earlier_tracked_open(fold_all, sent, unione, t0, status):
    state, _ = fold_all(
        [sent, unione("delivered", MIN), unione("opened", 5 * MIN), unione(status, 20 * MIN, occurred_at=15 * MIN)]
    )
    assert state.first_open_at == t0 + 5 * MIN


def test_an_unsubscribe_that_does_not_set_the_response_implies_no_open(fold_all, sent, unione, system):
    """After a hard bounce an unsubscribe still reaches the contact, but the mail was never opened."""
    state, steps = fold_all([sent, unione("hard_bounced", MIN), unione("unsubscribed", 20 * MIN)])
    assert (steps[2].effect, steps[2].why) == ("ignored", "final")
    assert state.first_open_at is None


# ---- machine windows: from the first delivery, inclusive -----------------------------------------------


def test_the_click_window_is_measured_from_the_first_delivery(fold_all, sent, unione):
    rules = DEFAULT_RULESET.patched({"machine_click_window_seconds": 60})
    state, steps = fold_all(
        [
            sent,
            unione("delivered", MIN, occurred_at=timedelta(0)),
            unione("delivered", 2 * MIN, occurred_at=100 * S),  # the provider reports a second delivery
            unione("clicked", 3 * MIN, occurred_at=130 * S, url="https://a.test/"),
        ],
        rules=rules,
    )
    assert (steps[3].effect, state.clicks) == ("set", 1)


def test_a_delivery_reported_late_moves_the_window_back(fold_all, sent, unione):
    rules = DEFAULT_RULESET.patched({"machine_click_window_seconds": 60})
    state, steps = fold_all(
        [
            sent,
            unione("delivered", MIN, occurred_at=100 * S),
            unione("delivered", 2 * MIN, occurred_at=timedelta(0)),
            unione("clicked", 3 * MIN, occurred_at=90 * S, url="https://a.test/"),
        ],
        rules=rules,
    )
    assert (steps[3].effect, state.clicks) == ("set", 1)


def test_the_click_window_boundary_is_inclusive(fold_all, sent, unione):
    rules = DEFAULT_RULESET.patched({"machine_click_window_seconds": 60})
    delivered = unione("delivered", MIN, occurred_at=timedelta(0))
    at_the_edge = unione("clicked", 2 * MIN, occurred_at=60 * S, url="https://a.test/")
    just_after = unione("clicked", 3 * MIN, occurred_at=60 * S + timedelta(milliseconds=1), url="https://a.test/")
    state, steps = fold_all([sent, delivered, at_the_edge, just_after], rules=rules)
    assert [(s.effect, s.why) for s in steps[2:]] == [("ignored", "machine_click"), ("set", None)]
    assert state.clicks == 1


def test_the_open_window_is_inclusive_and_from_the_first_delivery(fold_all, sent, unione):
    rules = DEFAULT_RULESET.patched({"machine_open_user_agents": ["ProxyBot"], "machine_open_window_seconds": 60})
    journal = [
        sent,
        unione("delivered", MIN, occurred_at=timedelta(0)),
        unione("delivered", 2 * MIN, occurred_at=50 * S),
        unione("opened", 3 * MIN, occurred_at=60 * S, user_agent="ProxyBot/1"),
        unione("opened", 4 * MIN, occurred_at=61 * S, user_agent="ProxyBot/1"),
    ]
    state, steps = fold_all(journal, rules=rules)
    assert [s.maps_to for s in steps[3:]] == ["opened_machine", "opened"]
    assert state.opens == 1


def test_a_zero_click_window_catches_only_a_click_at_the_delivery_instant(fold_all, sent, unione):
    rules = DEFAULT_RULESET.patched({"machine_click_window_seconds": 0})
    journal = [
        sent,
        unione("delivered", MIN, occurred_at=MIN),
        unione("clicked", 2 * MIN, occurred_at=MIN, url="https://a.test/"),
        unione("clicked", 3 * MIN, occurred_at=MIN + S, url="https://a.test/"),
    ]
    _, steps = fold_all(journal, rules=rules)
    assert [s.why for s in steps[2:]] == ["machine_click", None]


# ---- confirmation timeouts --------------------------------------------------------------------------


def test_a_confirmation_timeout_of_lower_priority_is_ignored_not_counted(fold_all, sent, system, t0):
    """No counter moved, so the step is ``ignored`` (``counted`` means counters moved)."""
    rules = DEFAULT_RULESET.patched({"confirmation_timeout_response": "queued"})
    state, steps = fold_all([sent, system("confirmation_checked", 49 * H)], rules=rules)
    assert steps[1] == Step("queued", None, "ignored", "lower_priority", "sent_to_provider")
    assert state.updated_at == t0


def test_a_confirmation_check_is_due_by_when_it_was_made_not_when_it_was_recorded(fold_all, sent, system):
    """A check made at +10 h but recorded (imported, re-matched) at +50 h is not due under 48 h."""
    check = system("confirmation_checked", 50 * H, occurred_at=10 * H)
    _, steps = fold_all([sent, check])
    assert (steps[1].effect, steps[1].why) == ("ignored", "not_due")
    # made at +48 h, recorded 5 minutes earlier by our clock: inside the clock-skew allowance, so its own time counts
    # (issue 14: a time further ahead of its receipt than the allowance is clamped to receipt + allowance)
    due = system("confirmation_checked", 48 * H - 5 * timedelta(minutes=1), occurred_at=48 * H)
    _, steps = fold_all([sent, due])
    assert steps[1].response_after == "unknown_response"


# ---- priorities are compared as given ---------------------------------------------------------------


def test_a_priority_of_zero_is_lower_than_one(fold_all, system):
    rules = DEFAULT_RULESET.patched({"responses": {"planned": {"priority": 0}, "ready_to_send": {"priority": 1}}})
    state, steps = fold_all([system("ready_to_send")], rules=rules)
    assert (steps[0].effect, state.response) == ("set", "ready_to_send")


# ---- the seen keys: 8 bytes a key, matched only on 8-byte boundaries ----------------------------------


def test_seen_keys_add_contains_len_iter_and_hex():
    seen = SeenKeys()
    for key in ("a", "b", "a", "c"):
        seen.add(key)
    assert len(seen) == 3
    assert list(seen) == [key_digest("a"), key_digest("b"), key_digest("c")]
    assert "a" in seen and "c" in seen and "d" not in seen
    assert b"a" not in seen and None not in seen  # only text keys
    assert SeenKeys.fromhex(seen.hex()) == seen
    assert SeenKeys.fromhex(seen.hex()).blob == seen.blob


def test_seen_keys_equality_is_by_the_set_of_keys():
    one, other = SeenKeys(), SeenKeys()
    for key in ("a", "b"):
        one.add(key)
    for key in ("b", "a"):
        other.add(key)
    assert one == other
    other.add("c")
    assert one != other
    assert SeenKeys() != []
    assert SeenKeys() != set()


def test_a_digest_straddling_two_keys_is_not_seen():
    d = bytes(range(1, 9))
    blob = b"\xee" * 3 + d + b"\xee" * 5  # d at offset 3: the tail of one digest and the head of the next
    assert not SeenKeys(blob).has_digest(d)


def test_a_digest_is_seen_on_a_boundary_after_an_unaligned_occurrence():
    d = bytes(range(1, 9))
    blob = b"\xee" * 3 + d + b"\xee" * 5 + d + b"\xee" * 3 + d + b"\xee" * 5  # d at 3, 16 and 27
    assert SeenKeys(blob).has_digest(d)
    overlapping = b"\x00" * 7 + b"\x01" * 9  # b"\x01" * 8 at offsets 7 (unaligned) and 8 (aligned)
    assert SeenKeys(overlapping).has_digest(b"\x01" * 8)
    assert SeenKeys(d + b"\xee" * 3 + d[:5] + d[5:] + b"\xee" * 5).has_digest(d)
