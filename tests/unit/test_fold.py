"""The fold (CONTRACT §4 and §7 "Journal and fold"): one test per rule, with the audit's effect and why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.catalogue import RESPONSES
from domain.contacts import ContactState, apply_signal_effect
from domain.fold import RecipientState, SeenKeys, Step, fold, fold_into
from domain.rules import DEFAULT_RULESET
from domain.signals import key_digest

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
    state, steps = fold_all(
        [
            sent,
            unione("delivered", MIN, detail="first"),
            provider_signal("sendgrid", {"event": "delivered"}, 2 * MIN, detail="second"),
        ]
    )
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
    journal = [
        sent,
        unione("clicked", H, url="https://a.test/OptOut"),
        unione("clicked", 2 * H, url="https://a.test/unsubscribe"),
    ]
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
        [
            sent,
            provider_signal("sendgrid", {"event": "open"}, H),
            provider_signal("sendgrid", {"event": "open"}, 2 * H, machine=True),
        ]
    )
    assert (state.response, state.opens) == ("opened", 1)
    assert steps[-1] == Step("opened_machine", None, "ignored", "machine_open", "opened")


def test_real_open_after_machine_open_shows_opened(fold_all, sent, provider_signal):
    state, steps = fold_all(
        [
            sent,
            provider_signal("sendgrid", {"event": "open"}, H, machine=True),
            provider_signal("sendgrid", {"event": "open"}, 2 * H),
        ]
    )
    assert (state.response, state.opens) == ("opened", 1)


def test_count_machine_opens_counts_them(fold_all, sent, provider_signal):
    rules = DEFAULT_RULESET.patched({"count_machine_opens": True})
    journal = [
        sent,
        provider_signal("sendgrid", {"event": "open"}, H),
        provider_signal("sendgrid", {"event": "open"}, 2 * H, machine=True),
    ]
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
    state, _ = fold_all(
        [sent, unione("clicked", H), unione("opened", 2 * H), unione("soft_bounced", 3 * H), unione("sent", 4 * H)]
    )
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


# ---- the rules mutation testing found unguarded ------------------------------------------------------
# The fold's rules that mutation testing found unguarded (issue 7): each test names what a user would see go wrong.
#
# Times: ``at`` is when we received a signal, ``occurred_at`` the provider's time (signals arrive out of order).


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


# ---- contact effects in the steps (CONTRACT §5) ---------------------------------------------------------


def test_every_step_of_a_mapping_with_a_contact_effect_carries_it(fold_all, sent, provider_signal):
    effect = {"code": "rejected", "reason": "recipient_blocked", "contact_effect": "suppress"}
    rules = DEFAULT_RULESET.patched({"provider_mappings": {"sendgrid": {"event:dropped": effect}}})
    dropped = provider_signal("sendgrid", {"event": "dropped"}, H, key="drop")
    _, steps = fold_all([sent, dropped, dropped], rules=rules)
    assert steps[1] == Step("rejected", "recipient_blocked", "set", None, "rejected", "suppress")
    assert steps[2] == Step("rejected", "recipient_blocked", "ignored", "duplicate", "rejected", "suppress")
    _, plain = fold_all([sent, dropped])  # the built-in mapping of version 1 carries none
    assert plain[1].contact_effect is None
