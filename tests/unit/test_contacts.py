"""Contact effects (CONTRACT §5 "Contact effects", §7 "Contacts"): the flags folded from signals and commands."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.contacts import ContactState, apply_command, apply_signal_effect
from domain.fold import Step
from domain.rules import DEFAULT_RULESET

H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture
def effects_of(fold_all):
    """Fold one recipient's journal and apply every step to the contact, as the projection does."""

    def run(journal, contact=None, email_type="newsletter", rules=DEFAULT_RULESET, mailing_start=timedelta(0)):
        contact = contact if contact is not None else ContactState(email="ann@example.test")
        state, steps = fold_all(journal, rules=rules, mailing_start=mailing_start)
        for step in steps:
            contact = apply_signal_effect(contact, step, email_type, rules)
        return contact, state, steps

    return run


@pytest.fixture
def sent(system):
    return system("sent_to_provider", key="dispatch")


def flags(contact: ContactState) -> tuple[bool, bool, set[str]]:
    return contact.do_not_use_email, contact.email_is_actual, contact.unsubscribed_types


def test_a_new_contact_may_be_emailed():
    contact = ContactState()
    assert flags(contact) == (False, True, set())
    assert not contact.suppressed
    assert contact.flags() == {"do_not_use_email": False, "email_is_actual": True, "unsubscribed_types": []}


# ---- signal effects -------------------------------------------------------------------------------


def test_unsubscribe_sets_do_not_use_email(effects_of, sent, unione):
    contact, _, _ = effects_of([sent, unione("delivered", H), unione("unsubscribed", 2 * H)])
    assert flags(contact) == (True, True, set())
    assert contact.suppressed


def test_unsubscribe_by_type_when_not_unsubscribing_from_all(effects_of, sent, unione):
    rules = DEFAULT_RULESET.patched({"unsubscribe_from_all": False})
    contact, _, _ = effects_of([sent, unione("unsubscribed", H)], rules=rules, email_type="promo")
    assert flags(contact) == (False, True, {"promo"})
    assert contact.flags()["unsubscribed_types"] == ["promo"]
    assert not contact.suppressed  # other types may still be sent


def test_unsubscribe_from_a_mailing_without_email_type_is_from_all(effects_of, sent, unione):
    rules = DEFAULT_RULESET.patched({"unsubscribe_from_all": False})
    contact, _, _ = effects_of([sent, unione("unsubscribed", H)], rules=rules, email_type=None)
    assert flags(contact) == (True, True, set())


def test_spam_complaint_sets_do_not_use_email(effects_of, sent, unione):
    rules = DEFAULT_RULESET.patched({"unsubscribe_from_all": False})  # a complaint is always from all
    contact, _, _ = effects_of([sent, unione("delivered", H), unione("spam", 2 * H)], rules=rules)
    assert flags(contact) == (True, True, set())


def test_hard_bounce_that_sets_the_response_suppresses_the_address(effects_of, sent, unione):
    contact, state, _ = effects_of([sent, unione("hard_bounced", H, delivery_status="err_user_unknown")])
    assert state.response == "hard_bounce"
    assert flags(contact) == (True, False, set())


def test_invalid_address_that_sets_the_response_marks_the_email_not_actual(effects_of, sent, provider_signal):
    contact, state, _ = effects_of([sent, provider_signal("elasticemail", {"status": "Error", "category": "NoMailbox"}, H)])
    assert state.response == "invalid_address"
    assert flags(contact) == (False, False, set())


@pytest.mark.parametrize(
    "before",
    [
        "send_error",  # response already final
        "unsubscribed",
    ],
)
def test_hard_bounce_or_invalid_address_after_a_final_does_not_reach_the_contact(
    effects_of, sent, system, provider_signal, unione, before
):
    contact, state, steps = effects_of(
        [
            sent,
            system(before, H),
            unione("hard_bounced", 2 * H),
            provider_signal("elasticemail", {"status": "Error", "category": "NoMailbox"}, 3 * H),
        ]
    )
    assert state.response == before
    assert [s.why for s in steps[2:]] == ["final", "final"]
    assert contact.email_is_actual is True
    assert contact.do_not_use_email is (before == "unsubscribed")


def test_late_hard_bounce_after_the_period_does_not_reach_the_contact(effects_of, sent, unione, provider_signal):
    contact, _, steps = effects_of(
        [
            sent,
            unione("hard_bounced", 31 * D),
            provider_signal("elasticemail", {"status": "Error", "category": "NoMailbox"}, 32 * D),
        ]
    )
    assert [s.why for s in steps[1:]] == ["period_closed", "period_closed"]
    assert flags(contact) == (False, True, set())


@pytest.mark.parametrize("status", ["unsubscribed", "spam"])
def test_unsubscribe_and_complaint_are_honoured_even_when_the_response_is_final(effects_of, sent, unione, system, status):
    contact, state, steps = effects_of([sent, system("send_error", H), unione(status, 2 * H)])
    assert state.response == "send_error"
    assert steps[-1].why == "final"
    assert contact.do_not_use_email is True


@pytest.mark.parametrize("status", ["unsubscribed", "spam"])
def test_unsubscribe_and_complaint_are_honoured_even_after_the_period(effects_of, sent, unione, status):
    contact, state, steps = effects_of([sent, unione("delivered", H), unione(status, 90 * D)])
    assert state.response == "delivered"
    assert steps[-1].why == "period_closed"
    assert contact.do_not_use_email is True


def test_unsubscribe_by_type_is_honoured_after_the_period_too(effects_of, sent, unione):
    rules = DEFAULT_RULESET.patched({"unsubscribe_from_all": False})
    contact, _, steps = effects_of([sent, unione("unsubscribed", 90 * D)], rules=rules, email_type="promo")
    assert steps[-1].why == "period_closed"
    assert contact.unsubscribed_types == {"promo"}


@pytest.mark.parametrize("code", ["unsubscribed", "spam_complaint", "hard_bounce", "invalid_address", "soft_bounce"])
def test_a_duplicate_step_has_no_effect(code):
    contact = ContactState()
    step = Step(code, None, "ignored", "duplicate", "delivered")
    assert apply_signal_effect(contact, step, "promo", DEFAULT_RULESET.patched({"soft_bounce_limit": 1})) == contact


def test_informational_and_engagement_signals_leave_flags_alone(effects_of, sent, unione):
    contact, _, _ = effects_of(
        [sent, unione("sent", H), unione("delivered", H), unione("opened", 2 * H), unione("clicked", 3 * H)]
    )
    assert flags(contact) == (False, True, set())


def test_effects_do_not_modify_the_contact_given():
    contact = ContactState(email="a@b.test")
    after = apply_signal_effect(
        contact,
        Step("unsubscribed", None, "set", None, "unsubscribed"),
        "promo",
        DEFAULT_RULESET.patched({"unsubscribe_from_all": False}),
    )
    assert after.unsubscribed_types == {"promo"}
    assert contact.unsubscribed_types == set() and contact.do_not_use_email is False


# ---- soft bounce limit ----------------------------------------------------------------------------


def _mailing_journal(unione, system, status, n):
    return [system("sent_to_provider", key=f"d{n}"), unione(status, H, key=f"s{n}")]


def test_soft_bounce_limit_is_off_by_default(effects_of, unione, system):
    contact = ContactState(email="a@b.test")
    for n in range(10):
        contact, _, _ = effects_of(_mailing_journal(unione, system, "soft_bounced", n), contact=contact)
    assert contact.email_is_actual is True


def test_soft_bounce_limit_consecutive_across_mailings(effects_of, unione, system):
    rules = DEFAULT_RULESET.patched({"soft_bounce_limit": 3})
    contact = ContactState(email="a@b.test")
    for n in range(2):
        contact, _, _ = effects_of(_mailing_journal(unione, system, "soft_bounced", n), contact=contact, rules=rules)
    assert contact.email_is_actual is True
    contact, _, _ = effects_of(_mailing_journal(unione, system, "soft_bounced", 2), contact=contact, rules=rules)
    assert contact.email_is_actual is False
    assert contact.do_not_use_email is False
    assert contact.suppressed


def test_a_delivery_resets_the_soft_bounce_streak(effects_of, unione, system):
    rules = DEFAULT_RULESET.patched({"soft_bounce_limit": 3})
    contact = ContactState(email="a@b.test")
    for n, status in enumerate(["soft_bounced", "soft_bounced", "delivered", "soft_bounced", "soft_bounced"]):
        contact, _, _ = effects_of(_mailing_journal(unione, system, status, n), contact=contact, rules=rules)
    assert contact.email_is_actual is True
    assert contact.soft_bounce_streak == 2
    contact, _, _ = effects_of(_mailing_journal(unione, system, "soft_bounced", 9), contact=contact, rules=rules)
    assert contact.email_is_actual is False


def test_a_soft_bounce_then_delivery_in_one_mailing_breaks_the_streak(effects_of, unione, system):
    rules = DEFAULT_RULESET.patched({"soft_bounce_limit": 3})
    contact = ContactState(email="a@b.test", soft_bounce_streak=1)
    contact, _, _ = effects_of(
        [system("sent_to_provider"), unione("soft_bounced", H), unione("delivered", 2 * H)], contact=contact, rules=rules
    )
    assert (contact.email_is_actual, contact.soft_bounce_streak) == (True, 0)


def test_several_soft_bounces_of_one_mailing_are_one_soft_bounce(effects_of, provider_signal, system):
    """SendGrid reports every deferred attempt: one slow mailing is not N consecutive soft bounces."""
    rules = DEFAULT_RULESET.patched({"soft_bounce_limit": 2})
    contact = ContactState(email="a@b.test")
    deferrals = [provider_signal("sendgrid", {"event": "deferred"}, i * H, key=f"def{i}") for i in range(1, 5)]
    contact, state, _ = effects_of([system("sent_to_provider", key="d1"), *deferrals], contact=contact, rules=rules)
    assert state.response == "soft_bounce"
    assert (contact.email_is_actual, contact.soft_bounce_streak) == (True, 1)
    # a second mailing that soft-bounces too: two consecutive
    blocked = provider_signal("sendgrid", {"event": "bounce", "type": "blocked"}, H, key="blk")
    contact, _, _ = effects_of([system("sent_to_provider", key="d2"), blocked], contact=contact, rules=rules)
    assert contact.email_is_actual is False


def test_a_late_soft_bounce_of_a_delivered_mail_is_not_a_soft_bounce_of_the_address(effects_of, unione, system):
    rules = DEFAULT_RULESET.patched({"soft_bounce_limit": 1})
    contact, _, steps = effects_of(
        [system("sent_to_provider"), unione("delivered", H), unione("soft_bounced", 2 * H)], rules=rules
    )
    assert steps[-1].why == "lower_priority"
    assert contact.email_is_actual is True


# ---- manual commands ------------------------------------------------------------------------------


def test_manual_patch_wins_over_an_earlier_effect_and_a_later_effect_wins_again(effects_of, sent, unione, system):
    contact, _, _ = effects_of([sent, unione("unsubscribed", H)])
    assert contact.do_not_use_email is True
    contact = apply_command(contact, {"op": "patch", "do_not_use_email": False})
    assert contact.do_not_use_email is False
    contact, _, _ = effects_of([system("sent_to_provider", key="d2"), unione("spam", H, key="spam2")], contact=contact)
    assert contact.do_not_use_email is True


def test_patch_sets_only_the_flags_it_names():
    contact = ContactState(email="a@b.test", do_not_use_email=True, email_is_actual=False, unsubscribed_types={"promo"})
    assert flags(apply_command(contact, {"op": "patch", "email_is_actual": True})) == (True, True, {"promo"})
    assert flags(apply_command(contact, {"op": "patch", "do_not_use_email": False})) == (False, False, {"promo"})
    assert flags(apply_command(contact, {"op": "patch", "do_not_use_email": None})) == (True, False, {"promo"})
    assert flags(apply_command(contact, {"op": "patch"})) == (True, False, {"promo"})


def test_new_email_resets_email_is_actual_and_the_streak():
    contact = ContactState(email="old@b.test", do_not_use_email=True, email_is_actual=False, soft_bounce_streak=4)
    after = apply_command(contact, {"op": "patch", "email": "new@b.test"})
    assert after.email == "new@b.test"
    assert after.email_is_actual is True
    assert after.soft_bounce_streak == 0
    assert after.do_not_use_email is True  # an unsubscribe is about the person, not the address


def test_new_email_does_not_reset_what_the_same_patch_sets():
    contact = ContactState(email="old@b.test", email_is_actual=False, soft_bounce_streak=4)
    after = apply_command(contact, {"op": "patch", "email": "new@b.test", "email_is_actual": False, "do_not_use_email": True})
    assert (after.email, after.email_is_actual, after.do_not_use_email, after.soft_bounce_streak) == (
        "new@b.test",
        False,
        True,
        0,
    )


def test_same_email_is_not_a_change():
    contact = ContactState(email="a@b.test", email_is_actual=False, soft_bounce_streak=2)
    after = apply_command(contact, {"op": "patch", "email": "a@b.test"})
    assert (after.email_is_actual, after.soft_bounce_streak) == (False, 2)


def test_streak_after_an_email_change_starts_again(effects_of, unione, system):
    rules = DEFAULT_RULESET.patched({"soft_bounce_limit": 2})
    contact = ContactState(email="old@b.test")
    contact, _, _ = effects_of(_mailing_journal(unione, system, "soft_bounced", 1), contact=contact, rules=rules)
    contact = apply_command(contact, {"op": "patch", "email": "new@b.test"})
    contact, _, _ = effects_of(_mailing_journal(unione, system, "soft_bounced", 2), contact=contact, rules=rules)
    assert contact.email_is_actual is True
    contact, _, _ = effects_of(_mailing_journal(unione, system, "soft_bounced", 3), contact=contact, rules=rules)
    assert contact.email_is_actual is False


def test_subscription_commands():
    contact = ContactState()
    contact = apply_command(contact, {"op": "subscription", "email_type": "promo", "subscribed": False})
    contact = apply_command(contact, {"op": "subscription", "email_type": "news", "subscribed": False})
    assert contact.unsubscribed_types == {"promo", "news"}
    contact = apply_command(contact, {"op": "subscription", "email_type": "promo", "subscribed": True})
    assert contact.unsubscribed_types == {"news"}
    contact = apply_command(contact, {"op": "subscription", "email_type": "promo", "subscribed": True})  # idempotent
    assert contact.unsubscribed_types == {"news"}
    assert contact.do_not_use_email is False


def test_resubscribing_a_type_undoes_an_unsubscribe_by_type(effects_of, sent, unione):
    rules = DEFAULT_RULESET.patched({"unsubscribe_from_all": False})
    contact, _, _ = effects_of([sent, unione("unsubscribed", H)], rules=rules, email_type="promo")
    contact = apply_command(contact, {"op": "subscription", "email_type": "promo", "subscribed": True})
    assert contact.unsubscribed_types == set()


def test_commands_do_not_modify_the_contact_given():
    contact = ContactState(email="a@b.test")
    apply_command(contact, {"op": "subscription", "email_type": "promo", "subscribed": False})
    apply_command(contact, {"op": "patch", "email": "c@d.test", "do_not_use_email": True})
    assert contact == ContactState(email="a@b.test")


# ---- contact effects carried by a mapping (CONTRACT §5) ----------------------------------------------------

UNSUBSCRIBE_DROP = {"code": "rejected", "reason": "recipient_blocked", "contact_effect": "unsubscribe"}
SUPPRESS_DROP = {"code": "rejected", "reason": "recipient_blocked", "contact_effect": "suppress"}
RESUBSCRIBE = {"code": None, "contact_effect": "resubscribe"}


def sendgrid_rules(mapping: dict, base=DEFAULT_RULESET, **options):
    return base.patched({"provider_mappings": {"sendgrid": mapping}, **options})


@pytest.mark.parametrize("unsubscribe_from_all, expected", [(True, (True, True, set())), (False, (False, True, {"promo"}))])
def test_an_unsubscribe_effect_acts_as_an_unsubscribe(effects_of, sent, provider_signal, unsubscribe_from_all, expected):
    rules = sendgrid_rules({"event:dropped": UNSUBSCRIBE_DROP}, unsubscribe_from_all=unsubscribe_from_all)
    contact, state, steps = effects_of(
        [sent, provider_signal("sendgrid", {"event": "dropped"}, H)], rules=rules, email_type="promo"
    )
    assert state.response == "rejected"
    assert steps[-1] == Step("rejected", "recipient_blocked", "set", None, "rejected", "unsubscribe")
    assert flags(contact) == expected


def test_a_suppress_effect_sets_do_not_use_and_leaves_the_address_actual(effects_of, sent, provider_signal):
    rules = sendgrid_rules({"event:dropped": SUPPRESS_DROP})
    contact, _, steps = effects_of([sent, provider_signal("sendgrid", {"event": "dropped"}, H)], rules=rules)
    assert steps[-1].contact_effect == "suppress"
    assert flags(contact) == (True, True, set())


@pytest.mark.parametrize("why_first", ["final", "period_closed"])
def test_a_contact_effect_reaches_the_contact_when_the_response_does_not_move(
    effects_of, sent, provider_signal, unione, why_first
):
    """Like an unsubscribe: a final response already there, or the statistics period closed, stop the response only."""
    rules = sendgrid_rules({"event:dropped": SUPPRESS_DROP})
    if why_first == "final":
        journal = [
            sent,
            unione("hard_bounced", H, delivery_status="err_mailbox_full"),
            provider_signal("sendgrid", {"event": "dropped"}, 2 * H),
        ]
        start = ContactState(email="ann@example.test", do_not_use_email=False)
    else:
        journal = [sent, provider_signal("sendgrid", {"event": "dropped"}, 90 * D)]
        start = None
    contact, _, steps = effects_of(journal, contact=start, rules=rules)
    assert steps[-1].why == why_first and steps[-1].effect == "ignored"
    assert steps[-1].contact_effect == "suppress"
    assert contact.do_not_use_email is True


def test_a_duplicate_carries_its_effect_for_the_history_but_does_nothing():
    step = Step("rejected", None, "ignored", "duplicate", "rejected", "suppress")
    assert apply_signal_effect(ContactState(), step, "promo", DEFAULT_RULESET) == ContactState()


def test_an_informational_mapping_with_an_effect_moves_the_contact_and_not_the_response(effects_of, sent, provider_signal):
    rules = sendgrid_rules({"event:group_resubscribe": RESUBSCRIBE}, unsubscribe_from_all=False)
    journal = [
        sent,
        provider_signal("sendgrid", {"event": "group_unsubscribe"}, H),
        provider_signal("sendgrid", {"event": "group_resubscribe"}, 2 * H),
    ]
    contact, state, steps = effects_of(journal, rules=rules, email_type="promo")
    assert state.response == "unsubscribed"  # the recipient's response stays, as a final does
    assert steps[-1] == Step(None, None, "ignored", "informational", "unsubscribed", "resubscribe")
    assert flags(contact) == (False, True, set())


@pytest.mark.parametrize(
    "cause",
    [
        [("spamreport", {"event": "spamreport"})],
        [("bounce", {"event": "bounce", "type": "bounce"})],
        [("group_unsubscribe under unsubscribe_from_all", {"event": "group_unsubscribe"})],
    ],
)
def test_a_resubscribe_never_lifts_a_do_not_use(effects_of, sent, provider_signal, cause):
    rules = sendgrid_rules({"event:group_resubscribe": RESUBSCRIBE})  # unsubscribe_from_all: true
    (_, fields) = cause[0]
    journal = [sent, provider_signal("sendgrid", fields, H), provider_signal("sendgrid", {"event": "group_resubscribe"}, 2 * H)]
    contact, _, _ = effects_of(journal, rules=rules, email_type="promo")
    assert contact.do_not_use_email is True


def test_a_resubscribe_lifts_only_the_mailings_own_type(effects_of, sent, provider_signal):
    rules = sendgrid_rules({"event:group_resubscribe": RESUBSCRIBE}, unsubscribe_from_all=False)
    start = ContactState(email="ann@example.test", unsubscribed_types=frozenset({"promo", "news"}))
    contact, _, _ = effects_of(
        [sent, provider_signal("sendgrid", {"event": "group_resubscribe"}, H)], contact=start, rules=rules, email_type="promo"
    )
    assert contact.unsubscribed_types == {"news"}
    contact, _, _ = effects_of(
        [sent, provider_signal("sendgrid", {"event": "group_resubscribe"}, H)], contact=start, rules=rules, email_type=None
    )
    assert contact.unsubscribed_types == {"promo", "news"}  # a mailing of no type names no group
