"""The fold (CONTRACT §4 and §7 "Journal and fold"): one test per rule, with the audit's effect and why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.catalogue import RESPONSES
from domain.fold import RecipientState, Step, fold
from domain.rules import DEFAULT_RULESET

S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)

FINALS = [c for c, r in RESPONSES.items() if r.final]
UNDELIVERED_FINALS = [c for c in FINALS if RESPONSES[c].group in ("not_sent", "not_delivered")]
DELIVERED_FINALS = [c for c in FINALS if RESPONSES[c].group == "delivered"]
DISPATCH_FINALS = [c for c in FINALS if RESPONSES[c].group == "not_sent"]


def effects(steps: list[Step]) -> list[tuple[str, str | None]]:
    return [(s.effect, s.why) for s in steps]


@pytest.fixture
def sent(system):
    """The usual first signal: our dispatch recorded sent_to_provider at T0."""
    return system("sent_to_provider", at=timedelta(0), key="dispatch")


# ---- the seed's rules -----------------------------------------------------------------------------


def test_a_new_recipient_is_planned_with_nothing_counted():
    state = RecipientState()
    assert (state.response, state.opens, state.clicks, state.sent, state.sent_at) == ("planned", 0, 0, False, None)
    assert not state.unique_open


def test_seed_example_open_click_spam_complaint_shows_spam_complaint(fold_all, sent, unione):
    state, steps = fold_all(
        [
            sent,
            unione("delivered", 1 * MIN),
            unione("opened", 10 * MIN),
            unione("clicked", 11 * MIN, url="https://shop.test/offer"),
            unione("spam", 12 * MIN),
        ]
    )
    assert state.response == "spam_complaint"
    assert [s.response_after for s in steps] == ["sent_to_provider", "delivered", "opened", "clicked", "spam_complaint"]
    assert effects(steps) == [("set", None)] * 5
    assert (state.opens, state.clicks) == (1, 1)
    assert state.clicked_urls == {"https://shop.test/offer": 1}


@pytest.mark.parametrize("final", FINALS)
def test_a_final_response_never_changes(fold_all, sent, system, unione, final):
    later = [
        unione("delivered", 1 * H),
        unione("soft_bounced", 2 * H),
        system("hard_bounce", 3 * H),
        unione("unsubscribed", 4 * H),
        system("canceled_no_email", 5 * H),
        unione("spam", 6 * H),
    ]
    state, steps = fold_all([sent, system(final, 1 * MIN), *later])
    assert state.response == final
    assert steps[1].effect == "set"
    for step in steps[2:]:
        assert (step.effect, step.why) == ("ignored", "final")
        assert step.response_after == final


def test_a_final_replaces_any_non_final_whatever_its_priority(fold_all, sent, unione):
    state, steps = fold_all([sent, unione("delivered", MIN), unione("clicked", 2 * MIN), unione("unsubscribed", 3 * MIN)])
    assert state.response == "unsubscribed"
    assert steps[-1].effect == "set"


def test_delivered_then_late_soft_bounce_stays_delivered(fold_all, sent, unione):
    state, steps = fold_all([sent, unione("delivered", MIN), unione("soft_bounced", 2 * H)])
    assert state.response == "delivered"
    assert state.reason is None
    assert steps[-1] == Step("soft_bounce", "will_retry", "ignored", "lower_priority", "delivered")


def test_soft_bounce_then_hard_bounce_shows_hard_bounce(fold_all, sent, unione):
    state, steps = fold_all(
        [
            sent,
            unione("soft_bounced", H),
            unione("hard_bounced", 2 * H, delivery_status="err_user_unknown", detail="550 5.1.1 no such user"),
        ]
    )
    assert (state.response, state.reason, state.detail) == ("hard_bounce", "unknown_recipient", "550 5.1.1 no such user")
    assert effects(steps) == [("set", None)] * 3


def test_soft_bounce_then_delivered_shows_delivered(fold_all, sent, unione):
    state, steps = fold_all([sent, unione("soft_bounced", H), unione("delivered", 2 * H)])
    assert state.response == "delivered"
    assert state.reason is None  # the soft bounce's will_retry is gone with it
    assert steps[-1].effect == "set"


def test_clicked_then_opened_stays_clicked_but_the_open_is_counted(fold_all, sent, unione):
    state, steps = fold_all([sent, unione("clicked", H, url="https://a.test/"), unione("opened", 2 * H)])
    assert state.response == "clicked"
    assert (state.opens, state.clicks) == (1, 1)
    assert steps[-1] == Step("opened", None, "counted", "lower_priority", "clicked")


def test_every_open_and_click_is_counted(fold_all, sent, unione):
    state, steps = fold_all(
        [sent, unione("delivered", MIN)]
        + [unione("opened", i * H) for i in range(1, 4)]
        + [unione("clicked", 5 * H, url="https://a.test/x"), unione("clicked", 6 * H, url="https://a.test/x")]
        + [unione("clicked", 7 * H, url="https://a.test/y"), unione("clicked", 8 * H)]
    )
    assert (state.opens, state.clicks) == (3, 4)
    assert state.clicked_urls == {"https://a.test/x": 2, "https://a.test/y": 1}
    assert effects(steps)[3:5] == [("counted", "lower_priority")] * 2


def test_higher_priority_replaces_lower(fold_all, system):
    state, steps = fold_all([system(code, i * MIN) for i, code in enumerate(["ready_to_send", "queued", "sent_to_provider"])])
    assert state.response == "sent_to_provider"
    state, steps = fold_all([system("sent_to_provider"), system("queued", MIN)])
    assert state.response == "sent_to_provider"
    assert (steps[-1].effect, steps[-1].why) == ("ignored", "lower_priority")


def test_equal_priority_does_not_replace(fold_all, sent, unione, provider_signal):
    state, steps = fold_all([sent, unione("delivered", MIN, detail="first"), provider_signal("sendgrid", {"event": "delivered"}, 2 * MIN, detail="second")])
    assert state.detail == "first"
    assert (steps[-1].effect, steps[-1].why) == ("ignored", "lower_priority")


def test_priorities_are_ruleset_data(fold_all, sent, unione):
    rules = DEFAULT_RULESET.patched({"responses": {"opened": {"priority": 70}}})
    state, steps = fold_all([sent, unione("clicked", H), unione("opened", 2 * H)], rules=rules)
    assert state.response == "opened"
    assert steps[-1].effect == "set"


def test_soft_bounce_made_final_by_a_ruleset_replaces_delivered(fold_all, sent, unione):
    rules = DEFAULT_RULESET.patched({"responses": {"soft_bounce": {"final": True}}})
    journal = [sent, unione("delivered", MIN), unione("soft_bounced", H), unione("opened", 2 * H)]
    state, steps = fold_all(journal, rules=rules)
    assert state.response == "soft_bounce"
    assert state.opens == 0
    assert steps[-1].why == "not_delivered"
    assert fold_all(journal)[0].response == "opened"  # the same journal under the default rules


# ---- duplicates -----------------------------------------------------------------------------------


def test_duplicate_key_changes_nothing(fold_all, sent, unione):
    opened = unione("opened", H, key="uni-open-1")
    state, _ = fold_all([sent, unione("delivered", MIN), opened])
    again, step = fold(state, opened, DEFAULT_RULESET)
    assert again is state
    assert again.opens == 1
    assert step == Step("opened", None, "ignored", "duplicate", "opened")


def test_duplicate_is_by_key_not_by_content(fold_all, sent, unione):
    state, steps = fold_all([sent, unione("opened", H, key="a"), unione("clicked", 2 * H, key="a"), unione("opened", H, key="b")])
    assert state.response == "opened"
    assert state.clicks == 0 and state.opens == 2
    assert effects(steps)[2] == ("ignored", "duplicate")


def test_duplicate_of_a_final_or_a_system_signal_is_still_a_duplicate(fold_all, system, unione):
    dispatch = system("sent_to_provider", key="d")
    bounce = unione("hard_bounced", H, key="hb", delivery_status="err_no_dns")
    state, steps = fold_all([dispatch, dispatch, bounce, bounce])
    assert effects(steps) == [("set", None), ("ignored", "duplicate"), ("set", None), ("ignored", "duplicate")]
    assert steps[3].maps_to == "hard_bounce" and steps[3].reason == "domain_not_found"


# ---- statistics period ----------------------------------------------------------------------------


def test_signal_received_within_the_period_counts(fold_all, sent, unione):
    state, steps = fold_all([sent, unione("delivered", MIN), unione("opened", 30 * D)])  # exactly 30 days: not "more than"
    assert state.response == "opened" and state.opens == 1


def test_signal_received_after_the_period_changes_nothing(fold_all, sent, unione):
    before, _ = fold_all([sent, unione("delivered", MIN)])
    for late in [
        unione("opened", 30 * D + S),
        unione("clicked", 31 * D, url="https://a.test/"),
        unione("hard_bounced", 40 * D),
        unione("unsubscribed", 45 * D),
        unione("spam", 400 * D),
    ]:
        after, step = fold(before, late, DEFAULT_RULESET, None)
        assert (step.effect, step.why) == ("ignored", "period_closed")
        assert step.maps_to is not None  # the audit still shows what it would have been
        assert (after.response, after.opens, after.clicks, after.clicked_urls) == ("delivered", 0, 0, {})


def test_period_is_measured_from_received_at_not_provider_time(fold_all, sent, unione):
    # a provider event that happened on day 2 but reached us on day 31 is late
    state, steps = fold_all([sent, unione("opened", 31 * D, occurred_at=2 * D)])
    assert steps[-1].why == "period_closed"
    # one that happened "long ago" by a skewed provider clock but arrived in time counts
    state, steps = fold_all([sent, unione("opened", 2 * D, occurred_at=-90 * D)])
    assert steps[-1].effect == "set"


def test_period_is_anchored_on_sent_at_not_the_mailing_start(fold_all, system, unione):
    # a second dispatch wave, 20 days after the mailing started
    journal = [system("sent_to_provider", 20 * D), unione("opened", 45 * D)]
    state, steps = fold_all(journal, mailing_start=timedelta(0))
    assert state.response == "opened" and state.opens == 1


def test_period_is_anchored_on_the_mailing_start_without_sent_at(fold_all, unione):
    journal = [unione("delivered", 29 * D), unione("opened", 31 * D)]
    state, steps = fold_all(journal, mailing_start=timedelta(0))
    assert state.response == "delivered"
    assert steps[-1].why == "period_closed"
    # nothing to anchor on: nothing is late
    state, steps = fold_all(journal, mailing_start=None)
    assert state.response == "opened"


@pytest.mark.parametrize("code", DISPATCH_FINALS + ["sent_to_provider", "ready_to_send", "queued"])
def test_dispatch_outcomes_are_never_period_closed(fold_all, system, code):
    state, steps = fold_all([system(code, 90 * D)], mailing_start=timedelta(0))
    assert steps[-1].effect == "set"
    assert state.response == code


def test_period_is_ruleset_data(fold_all, sent, unione):
    journal = [sent, unione("delivered", MIN), unione("opened", 8 * D)]
    assert fold_all(journal)[0].response == "opened"
    assert fold_all(journal, rules=DEFAULT_RULESET.patched({"statistics_period_days": 7}))[0].response == "delivered"
    late = [sent, unione("delivered", MIN), unione("opened", 3000 * D)]
    assert fold_all(late, rules=DEFAULT_RULESET.patched({"statistics_period_days": None}))[0].response == "opened"


# ---- counters -------------------------------------------------------------------------------------


def test_unsubscribe_link_click_is_not_a_click(fold_all, sent, unione):
    state, steps = fold_all([sent, unione("delivered", MIN), unione("clicked", H, url="https://mail.test/Unsubscribe?c=42")])
    assert state.response == "delivered"
    assert (state.clicks, state.clicked_urls) == (0, {})
    assert steps[-1] == Step("clicked", None, "ignored", "unsubscribe_link", "delivered")
    state, _ = fold_all([unione("clicked", 2 * H, url="https://shop.test/")], state=state)
    assert (state.response, state.clicks) == ("clicked", 1)


def test_unsubscribe_url_patterns_are_ruleset_data(fold_all, sent, unione):
    rules = DEFAULT_RULESET.patched({"unsubscribe_url_patterns": [r"/optout\b"]})
    journal = [sent, unione("clicked", H, url="https://a.test/OptOut"), unione("clicked", 2 * H, url="https://a.test/unsubscribe")]
    state, steps = fold_all(journal, rules=rules)
    assert state.clicks == 1
    assert state.clicked_urls == {"https://a.test/unsubscribe": 1}
    assert steps[1].why == "unsubscribe_link"


@pytest.mark.parametrize("final", UNDELIVERED_FINALS)
def test_engagement_after_a_mail_that_never_arrived_counts_nowhere(fold_all, sent, system, unione, provider_signal, final):
    state, steps = fold_all(
        [
            sent,
            system(final, MIN),
            unione("opened", H),
            unione("clicked", 2 * H, url="https://a.test/"),
            provider_signal("sendgrid", {"event": "open"}, 3 * H, machine=True),
        ],
        rules=DEFAULT_RULESET.patched({"count_machine_opens": True}),
    )
    assert (state.response, state.opens, state.clicks, state.clicked_urls) == (final, 0, 0, {})
    assert effects(steps[2:]) == [("ignored", "not_delivered")] * 3
    assert not state.unique_open
    assert state.first_open_at is None and state.first_click_at is None


@pytest.mark.parametrize("final", DELIVERED_FINALS)
def test_engagement_after_unsubscribe_or_spam_complaint_still_counts(fold_all, sent, system, unione, final):
    state, steps = fold_all([sent, system(final, MIN), unione("opened", H), unione("clicked", 2 * H, url="https://a.test/")])
    assert (state.response, state.opens, state.clicks) == (final, 1, 1)
    assert effects(steps[2:]) == [("counted", "final")] * 2


def test_engagement_after_a_non_final_soft_bounce_counts(fold_all, sent, unione):
    state, steps = fold_all([sent, unione("soft_bounced", H), unione("opened", 2 * H)])
    assert (state.response, state.opens) == ("opened", 1)


# ---- machine opens and clicks ---------------------------------------------------------------------


def test_provider_flagged_machine_open_is_opened_machine_and_not_counted(fold_all, sent, provider_signal):
    open_ = provider_signal("sendgrid", {"event": "open"}, H, machine=True)
    state, steps = fold_all([sent, provider_signal("sendgrid", {"event": "delivered"}, MIN), open_])
    assert state.response == "opened_machine"  # it outranks delivered
    assert state.opens == 0
    assert not state.unique_open
    assert steps[-1].maps_to == "opened_machine" and steps[-1].effect == "set"
    # a second one: nothing moves, and the audit says why
    state, step = fold(state, provider_signal("sendgrid", {"event": "open"}, 2 * H, machine=True), DEFAULT_RULESET)
    assert (step.effect, step.why) == ("ignored", "machine_open")


def test_machine_open_after_a_real_open_is_ignored_as_machine_open(fold_all, sent, provider_signal):
    state, steps = fold_all(
        [sent, provider_signal("sendgrid", {"event": "open"}, H), provider_signal("sendgrid", {"event": "open"}, 2 * H, machine=True)]
    )
    assert (state.response, state.opens) == ("opened", 1)
    assert steps[-1] == Step("opened_machine", None, "ignored", "machine_open", "opened")


def test_real_open_after_machine_open_shows_opened(fold_all, sent, provider_signal):
    state, steps = fold_all(
        [sent, provider_signal("sendgrid", {"event": "open"}, H, machine=True), provider_signal("sendgrid", {"event": "open"}, 2 * H)]
    )
    assert (state.response, state.opens) == ("opened", 1)


def test_count_machine_opens_counts_them(fold_all, sent, provider_signal):
    rules = DEFAULT_RULESET.patched({"count_machine_opens": True})
    journal = [sent, provider_signal("sendgrid", {"event": "open"}, H), provider_signal("sendgrid", {"event": "open"}, 2 * H, machine=True)]
    state, steps = fold_all(journal, rules=rules)
    assert state.opens == 2
    assert steps[-1] == Step("opened_machine", None, "counted", "lower_priority", "opened")


def test_machine_open_by_user_agent_within_the_window(fold_all, sent, unione):
    rules = DEFAULT_RULESET.patched({"machine_open_user_agents": ["GoogleImageProxy"], "machine_open_window_seconds": 10})
    proxy = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    journal = [
        sent,
        unione("delivered", 2 * MIN, occurred_at=MIN),
        unione("opened", 3 * MIN, occurred_at=MIN + 4 * S, user_agent=proxy),  # 4 s after delivery: the proxy
        unione("opened", 4 * MIN, occurred_at=3 * MIN, user_agent=proxy),  # 2 min after: a person behind the proxy
        unione("opened", 5 * MIN, occurred_at=MIN + 5 * S, user_agent="Thunderbird"),  # another agent
    ]
    state, steps = fold_all(journal, rules=rules)
    assert [s.maps_to for s in steps[2:]] == ["opened_machine", "opened", "opened"]
    assert steps[2].effect == "set" and steps[2].response_after == "opened_machine"
    assert state.opens == 2
    # without the heuristic (the default), all three are real opens
    assert fold_all(journal)[0].opens == 3


def test_machine_open_user_agent_without_a_window_is_always_machine(fold_all, sent, unione):
    rules = DEFAULT_RULESET.patched({"machine_open_user_agents": ["bot"]})
    state, steps = fold_all([sent, unione("delivered", MIN), unione("opened", 5 * D, user_agent="SecurityBot/2")], rules=rules)
    assert steps[-1].maps_to == "opened_machine" and state.opens == 0


def test_machine_click_within_the_window_is_a_scanner(fold_all, sent, unione):
    rules = DEFAULT_RULESET.patched({"machine_click_window_seconds": 10})
    journal = [
        sent,
        unione("delivered", 2 * MIN, occurred_at=MIN),
        unione("clicked", 3 * MIN, occurred_at=MIN + 3 * S, url="https://a.test/"),
    ]
    state, steps = fold_all(journal, rules=rules)
    assert steps[-1] == Step("clicked", None, "ignored", "machine_click", "delivered")
    assert (state.response, state.clicks, state.clicked_urls) == ("delivered", 0, {})
    state, step = fold(state, unione("clicked", H, occurred_at=30 * MIN, url="https://a.test/"), rules)
    assert (state.response, state.clicks, step.effect) == ("clicked", 1, "set")
    # default: off
    assert fold_all(journal)[0].clicks == 1


# ---- informational --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, fields",
    [
        ("unione", {"status": "sent"}),
        ("unione", {"status": "accepted"}),
        ("unione", {"status": "subscribed"}),
        ("unione", {"status": "never_heard_of_it"}),
        ("sendgrid", {"event": "group_resubscribe"}),
        ("elasticemail", {"status": "Queued"}),
        ("system", {"kind": "not_a_code"}),
    ],
)
def test_informational_signal_changes_no_response(fold_all, sent, unione, provider_signal, source, fields):
    state, steps = fold_all([sent, unione("delivered", MIN), provider_signal(source, fields, H)])
    assert state.response == "delivered"
    assert steps[-1] == Step(None, None, "ignored", "informational", "delivered")


def test_informational_status_mapped_by_a_ruleset_counts_on_replay(fold_all, sent, unione):
    journal = [sent, unione("accepted", MIN)]
    rules = DEFAULT_RULESET.patched({"provider_mappings": {"unione": {"status:accepted": "delivered"}}})
    assert fold_all(journal)[0].response == "sent_to_provider"
    assert fold_all(journal, rules=rules)[0].response == "delivered"


# ---- confirmation timeout -------------------------------------------------------------------------


def test_confirmation_check_before_the_hours_is_not_due(fold_all, sent, system):
    state, steps = fold_all([sent, system("confirmation_checked", 47 * H + 59 * MIN)])
    assert state.response == "sent_to_provider"
    assert steps[-1] == Step(None, None, "ignored", "not_due", "sent_to_provider")


def test_confirmation_check_after_the_hours_sets_the_timeout_response(fold_all, sent, system):
    state, steps = fold_all([sent, system("confirmation_checked", 47 * H), system("confirmation_checked", 48 * H)])
    assert state.response == "unknown_response"
    assert steps[-1] == Step("unknown_response", None, "set", None, "unknown_response")


def test_confirmation_timeout_hours_and_response_are_ruleset_data(fold_all, sent, system):
    journal = [sent, system("confirmation_checked", 48 * H)]
    assert fold_all(journal, rules=DEFAULT_RULESET.patched({"confirmation_timeout_hours": 72}))[0].response == "sent_to_provider"
    rules = DEFAULT_RULESET.patched({"confirmation_timeout_hours": 2, "confirmation_timeout_response": "send_error"})
    assert fold_all(journal, rules=rules)[0].response == "send_error"


def test_confirmation_timeout_is_measured_from_sent_at(fold_all, system):
    journal = [system("sent_to_provider", 30 * H), system("confirmation_checked", 60 * H)]
    assert fold_all(journal)[0].response == "sent_to_provider"  # 30 h after dispatch


@pytest.mark.parametrize("answer", ["delivered", "opened", "soft_bounced", "hard_bounced"])
def test_confirmation_check_after_a_provider_answer_is_superseded(fold_all, sent, system, unione, answer):
    state, steps = fold_all([sent, unione(answer, H), system("confirmation_checked", 100 * H)])
    assert state.response != "unknown_response"
    assert (steps[-1].effect, steps[-1].why) == ("ignored", "superseded")


def test_confirmation_check_after_a_dispatch_cancel_is_superseded(fold_all, system):
    state, steps = fold_all([system("canceled_no_email"), system("confirmation_checked", 100 * H)])
    assert state.response == "canceled_no_email"
    assert steps[-1].why == "superseded"


def test_a_recipient_never_sent_does_not_time_out(fold_all, system):
    state, steps = fold_all([system("confirmation_checked", 100 * H)])
    assert state.response == "planned"
    assert steps[-1].why == "not_due"


def test_provider_answer_after_the_timeout_cannot_undo_it(fold_all, sent, system, unione):
    state, steps = fold_all([sent, system("confirmation_checked", 49 * H), unione("delivered", 50 * H)])
    assert state.response == "unknown_response"
    assert steps[-1].why == "final"


# ---- sent, sent_at, times -------------------------------------------------------------------------


def test_sent_to_provider_sets_sent_and_sent_at_from_our_received_at(fold_all, system, t0):
    state, _ = fold_all([system("sent_to_provider", 5 * MIN, occurred_at=-H)])
    assert state.sent is True
    assert state.sent_at == t0 + 5 * MIN
    state, _ = fold_all([system("sent_to_provider", 7 * MIN)], state=state)
    assert state.sent_at == t0 + 5 * MIN  # the first one


@pytest.mark.parametrize("code", DISPATCH_FINALS + ["planned", "ready_to_send", "queued"])
def test_a_dispatch_outcome_is_not_sent(fold_all, system, code):
    state, _ = fold_all([system(code)])
    assert state.sent is False and state.sent_at is None


def test_any_provider_signal_makes_the_recipient_sent(fold_all, unione, provider_signal):
    assert fold_all([unione("accepted")])[0].sent is True  # even an informational one
    assert fold_all([provider_signal("elasticemail", {"status": "Error", "category": "NoMailbox"})])[0].sent is True
    state, _ = fold_all([unione("delivered")])
    assert state.sent is True and state.sent_at is None  # sent_at is only ours


def test_first_times_are_provider_times(fold_all, sent, unione, t0):
    state, _ = fold_all(
        [
            sent,
            unione("delivered", 10 * MIN, occurred_at=2 * MIN),
            unione("opened", 20 * MIN, occurred_at=5 * MIN),
            unione("opened", 30 * MIN, occurred_at=6 * MIN),
            unione("clicked", 40 * MIN, occurred_at=7 * MIN, url="https://a.test/"),
        ]
    )
    assert state.delivered_at == t0 + 2 * MIN
    assert state.first_open_at == t0 + 5 * MIN
    assert state.first_click_at == t0 + 7 * MIN
    assert state.updated_at == t0 + 40 * MIN


def test_updated_at_moves_on_set_and_counted_only(fold_all, sent, unione, t0):
    state, _ = fold_all([sent, unione("clicked", H), unione("opened", 2 * H), unione("soft_bounced", 3 * H), unione("sent", 4 * H)])
    assert state.updated_at == t0 + 2 * H


def test_signal_reason_and_detail_win_over_the_mapping(fold_all, sent, system):
    state, steps = fold_all([sent, system("hard_bounce", H, reason="mailbox_problem", detail="552 mailbox full")])
    assert (state.response, state.reason, state.detail) == ("hard_bounce", "mailbox_problem", "552 mailbox full")
    assert steps[-1].reason == "mailbox_problem"


# ---- unique opens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statuses, unique",
    [
        (["delivered"], False),
        (["delivered", "opened"], True),
        (["delivered", "clicked"], True),  # implied by a click
        (["delivered", "unsubscribed"], True),  # implied by an unsubscribe
        (["delivered", "spam"], True),  # implied by a spam complaint
        (["soft_bounced"], False),
    ],
)
def test_unique_open_is_a_counted_or_implied_open(fold_all, sent, unione, statuses, unique):
    state, _ = fold_all([sent] + [unione(s, (i + 1) * H, url="https://a.test/") for i, s in enumerate(statuses)])
    assert state.unique_open is unique


# ---- purity ---------------------------------------------------------------------------------------


def test_fold_does_not_modify_the_state_it_is_given(fold_all, sent, unione):
    state, _ = fold_all([sent, unione("clicked", H, url="https://a.test/")])
    snapshot = (state.response, state.opens, state.clicks, dict(state.clicked_urls), set(state.seen))
    after, _ = fold(state, unione("clicked", 2 * H, url="https://a.test/"), DEFAULT_RULESET)
    assert after.clicks == 2 and after.clicked_urls == {"https://a.test/": 2}
    assert (state.response, state.opens, state.clicks, dict(state.clicked_urls), set(state.seen)) == snapshot
