"""Rulesets: provider status mappings (CONTRACT §6) and ruleset documents (CONTRACT §7)."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

import pytest

from domain.catalogue import RESPONSES
from domain.contacts import ContactState, apply_signal_effect
from domain.fold import Step
from domain.mappings import MAPPING_FIELDS
from domain.rules import (
    DEFAULT_RULESET,
    InvalidRuleset,
    ResponseRule,
    Ruleset,
    Target,
    check_new_version,
    is_number_version,
    pattern_error,
)

ANY = object()  # the spec names no reason for this row


def _check(source, fields, code, reason):
    target = DEFAULT_RULESET.map(source, fields)
    assert target.code == code
    if reason is not ANY:
        assert target.reason == reason


# ---- UniOne ---------------------------------------------------------------------------------------

UNIONE_STATUS = [
    ("delivered", "delivered", None),
    ("opened", "opened", None),
    ("clicked", "clicked", None),
    ("unsubscribed", "unsubscribed", None),
    ("spam", "spam_complaint", None),
    ("soft_bounced", "soft_bounce", "will_retry"),
    ("sent", None, None),
    ("accepted", None, None),
    ("subscribed", None, None),
]

UNIONE_HARD_BOUNCED = [
    ("err_user_unknown", "hard_bounce", "unknown_recipient"),
    ("err_user_inactive", "hard_bounce", "unknown_recipient"),
    ("err_mailbox_discarded", "hard_bounce", "unknown_recipient"),
    ("err_domain_inactive", "hard_bounce", "domain_not_found"),
    ("err_no_dns", "hard_bounce", "domain_not_found"),
    ("err_dest_invalid", "hard_bounce", "domain_not_found"),
    ("err_mailbox_full", "hard_bounce", "mailbox_problem"),
    ("err_too_large", "hard_bounce", "mailbox_problem"),
    ("err_spam_rejected", "hard_bounce", "spam_reject"),
    ("err_blacklisted", "rejected", "recipient_blocked"),
    ("err_unsubscribed", "rejected", "recipient_blocked"),
    ("err_spam_skipped", "rejected", "recipient_blocked"),
    ("err_spam_removed", "rejected", "recipient_blocked"),
    ("err_skip_letter", "rejected", "recipient_blocked"),
    ("skip_dup_unsubscribed", "rejected", "recipient_blocked"),  # skip_dup_* glob
    ("skip_dup_blacklisted", "rejected", "recipient_blocked"),
    ("skip_dup_", "rejected", "recipient_blocked"),
    ("err_lost", "send_error", ANY),
    ("err_internal", "send_error", ANY),
    ("err_src_invalid", "send_error", ANY),
    # anything else → hard_bounce (other)
    ("err_not_in_the_spec", "hard_bounce", "other"),
    ("err_no_such_thing_yet", "hard_bounce", "other"),
    ("skip_du", "hard_bounce", "other"),
]


@pytest.mark.parametrize("status, code, reason", UNIONE_STATUS)
def test_unione_status(status, code, reason):
    _check("unione", {"status": status}, code, reason)


@pytest.mark.parametrize("delivery_status, code, reason", UNIONE_HARD_BOUNCED)
def test_unione_hard_bounced_by_delivery_status(delivery_status, code, reason):
    _check("unione", {"status": "hard_bounced", "delivery_status": delivery_status}, code, reason)


def test_unione_hard_bounced_without_delivery_status_is_hard_bounce_other():
    _check("unione", {"status": "hard_bounced"}, "hard_bounce", "other")


def test_unione_unknown_status_is_informational_not_dropped():
    assert DEFAULT_RULESET.map("unione", {"status": "brand_new_status"}) == Target(None)


# ---- Elastic Email --------------------------------------------------------------------------------

ELASTIC_STATUS = [
    ("Sent", "delivered", None),
    ("Opened", "opened", None),
    ("Clicked", "clicked", None),
    ("Unsubscribed", "unsubscribed", None),
    ("AbuseReport", "spam_complaint", None),
]

ELASTIC_ERROR_CATEGORY = [
    ("NoMailbox", "invalid_address", ANY),
    ("DNSProblem", "hard_bounce", "domain_not_found"),
    ("GreyListed", "soft_bounce", "will_retry"),
    ("Throttled", "soft_bounce", "will_retry"),
    ("Timeout", "soft_bounce", "will_retry"),
    ("ConnectionProblem", "soft_bounce", "will_retry"),
    ("ConnectionTerminated", "soft_bounce", "will_retry"),
    ("AccountProblem", "soft_bounce", "will_retry"),
    ("Spam", "soft_bounce", "spam_reject"),
    ("ContentFilter", "soft_bounce", "spam_reject"),
    ("BlackListed", "soft_bounce", "ip_reputation"),
    ("SPFProblem", "soft_bounce", "ip_reputation"),
    ("WhitelistingProblem", "soft_bounce", "ip_reputation"),
    ("Ignore", "send_error", ANY),
    ("NotDelivered", "send_error", ANY),
    ("NotDeliveredCancelled", "send_error", ANY),
    ("ManualCancel", "send_error", ANY),
    ("CodeError", "send_error", ANY),
    ("Unknown", "send_error", "other"),
    ("", "send_error", "other"),  # the adapter's missing category
    ("SomethingElastic_AddedLater", "send_error", "other"),  # unlisted
]


@pytest.mark.parametrize("status, code, reason", ELASTIC_STATUS)
def test_elasticemail_status(status, code, reason):
    _check("elasticemail", {"status": status}, code, reason)


@pytest.mark.parametrize("category, code, reason", ELASTIC_ERROR_CATEGORY)
def test_elasticemail_error_by_category(category, code, reason):
    _check("elasticemail", {"status": "Error", "category": category}, code, reason)


def test_elasticemail_error_without_category_is_send_error_other():
    _check("elasticemail", {"status": "Error"}, "send_error", "other")


def test_elasticemail_unknown_status_is_informational():
    assert DEFAULT_RULESET.map("elasticemail", {"status": "Suppressed"}).code is None


# ---- SendGrid -------------------------------------------------------------------------------------

SENDGRID = [
    ({"event": "processed"}, "queued", None),
    ({"event": "delivered"}, "delivered", None),
    ({"event": "open"}, "opened", None),
    ({"event": "click"}, "clicked", None),
    ({"event": "bounce", "type": "bounce"}, "hard_bounce", ANY),
    ({"event": "bounce", "type": "blocked"}, "soft_bounce", ANY),
    ({"event": "deferred"}, "soft_bounce", "will_retry"),
    ({"event": "dropped"}, "rejected", ANY),
    ({"event": "spamreport"}, "spam_complaint", None),
    ({"event": "unsubscribe"}, "unsubscribed", None),
    ({"event": "group_unsubscribe"}, "unsubscribed", None),
    ({"event": "group_resubscribe"}, None, None),
    ({"event": "some_future_event"}, None, None),
]


@pytest.mark.parametrize("fields, code, reason", SENDGRID, ids=lambda v: json.dumps(v) if isinstance(v, dict) else None)
def test_sendgrid_event(fields, code, reason):
    _check("sendgrid", fields, code, reason)


def test_sendgrid_bounce_without_type_is_a_hard_bounce():
    _check("sendgrid", {"event": "bounce"}, "hard_bounce", ANY)


# ---- system signals and unknown sources -----------------------------------------------------------


@pytest.mark.parametrize("code", sorted(RESPONSES))
def test_system_signal_kind_is_its_code(code):
    assert DEFAULT_RULESET.map("system", {"kind": code}).code == code


def test_system_signal_unknown_kind_and_confirmation_check_are_not_responses():
    assert DEFAULT_RULESET.map("system", {"kind": "confirmation_checked"}).code is None
    assert DEFAULT_RULESET.map("system", {"kind": "nonsense"}).code is None


def test_unknown_source_is_informational():
    assert DEFAULT_RULESET.map("mailjet", {"event": "delivered"}).code is None


# ---- ruleset documents: merging -------------------------------------------------------------------


def test_empty_patch_is_the_base():
    assert DEFAULT_RULESET.patched({}) == DEFAULT_RULESET


def test_patch_merges_over_base_keeping_everything_else():
    base = DEFAULT_RULESET.patched({"statistics_period_days": 7, "count_machine_opens": True})
    patched = base.patched({"responses": {"soft_bounce": {"final": True}}, "unsubscribe_from_all": False})
    assert patched.statistics_period_days == 7  # from the base, not the default
    assert patched.count_machine_opens is True
    assert patched.unsubscribe_from_all is False
    assert patched.is_final("soft_bounce")
    assert patched.responses["opened"] == base.responses["opened"]
    assert patched.provider_mappings == base.provider_mappings
    # the base is a value: untouched
    assert not base.is_final("soft_bounce") and base.unsubscribe_from_all is True


def test_every_option_field_can_be_set():
    doc = {
        "statistics_period_days": 10,
        "count_machine_opens": True,
        "unsubscribe_from_all": False,
        "unsubscribe_url_patterns": ["/optout", r"unsub\?id="],
        "soft_bounce_limit": 3,
        "machine_open_user_agents": ["GoogleImageProxy"],
        "machine_open_window_seconds": 5,
        "machine_click_window_seconds": 2,
        "confirmation_timeout_hours": 12.5,
        "confirmation_timeout_response": "send_error",
    }
    rules = DEFAULT_RULESET.patched(doc)
    for name, value in doc.items():
        got = getattr(rules, name)
        assert (list(got) if isinstance(got, tuple) else got) == value, name


def test_nullable_options_can_be_switched_off():
    rules = DEFAULT_RULESET.patched({"soft_bounce_limit": 2, "statistics_period_days": 5}).patched(
        {"soft_bounce_limit": None, "statistics_period_days": None}
    )
    assert rules.soft_bounce_limit is None
    assert rules.statistics_period_days is None


def test_final_true_alone_drops_priority():
    rules = DEFAULT_RULESET.patched({"responses": {"soft_bounce": {"final": True}}})
    assert rules.responses["soft_bounce"] == ResponseRule(True, None)


def test_final_false_with_priority_makes_a_final_non_final():
    rules = DEFAULT_RULESET.patched({"responses": {"unsubscribed": {"final": False, "priority": 70}}})
    assert rules.responses["unsubscribed"] == ResponseRule(False, 70)
    assert rules.priority("unsubscribed") == 70


def test_priority_alone_reprioritises_a_non_final():
    rules = DEFAULT_RULESET.patched({"responses": {"opened_machine": {"priority": 39}}})
    assert rules.responses["opened_machine"] == ResponseRule(False, 39)


def test_responses_merge_per_code():
    rules = DEFAULT_RULESET.patched({"responses": {"opened": {"priority": 55}}}).patched(
        {"responses": {"clicked": {"priority": 54}}}
    )
    assert rules.priority("opened") == 55 and rules.priority("clicked") == 54


def test_version_is_a_string_and_can_be_chosen():
    assert DEFAULT_RULESET.patched({"version": "2024-03 soft finals"}).version == "2024-03 soft finals"
    assert DEFAULT_RULESET.patched({"version": "x"}, version="y").version == "y"
    assert DEFAULT_RULESET.patched({}).version == DEFAULT_RULESET.version


# ---- ruleset documents: errors --------------------------------------------------------------------


def _errors(document, base=DEFAULT_RULESET) -> dict[str, str]:
    with pytest.raises(InvalidRuleset) as info:
        base.patched(document)
    assert info.value.errors  # one message per offending field
    return info.value.errors


def test_final_with_priority_is_an_error():
    errors = _errors({"responses": {"soft_bounce": {"final": True, "priority": 35}}})
    assert any(k.startswith("responses.soft_bounce") for k in errors)


def test_final_false_without_priority_is_an_error():
    errors = _errors({"responses": {"hard_bounce": {"final": False}}})
    assert any(k.startswith("responses.hard_bounce") for k in errors)
    # even for a response that already is non-final: final:false states the whole rule
    assert any(k.startswith("responses.opened") for k in _errors({"responses": {"opened": {"final": False}}}))


def test_priority_on_a_final_is_an_error():
    errors = _errors({"responses": {"spam_complaint": {"priority": 99}}})
    assert any(k.startswith("responses.spam_complaint") for k in errors)


def test_unknown_response_code_is_an_error():
    assert "responses.bounced" in _errors({"responses": {"bounced": {"final": True}}})


def test_unknown_field_inside_a_response_rule_is_an_error():
    assert any(k.startswith("responses.opened") for k in _errors({"responses": {"opened": {"prio": 3}}}))


def test_non_boolean_final_and_non_integer_priority_are_errors():
    assert any("opened" in k for k in _errors({"responses": {"opened": {"final": "no", "priority": 3}}}))
    assert any("opened" in k for k in _errors({"responses": {"opened": {"priority": 50.5}}}))
    assert any("opened" in k for k in _errors({"responses": {"opened": {"priority": True}}}))


def test_unknown_top_level_field_is_an_error():
    assert "statistics_period" in _errors({"statistics_period": 30})


def test_unknown_provider_is_an_error():
    assert "provider_mappings.mailjet" in _errors({"provider_mappings": {"mailjet": {"event:delivered": "delivered"}}})


@pytest.mark.parametrize(
    "provider, key",
    [
        ("unione", "event:delivered"),  # SendGrid's field
        ("unione", "category:Spam"),
        ("elasticemail", "delivery_status:err_lost"),
        ("sendgrid", "status:delivered"),
        ("sendgrid", "no_colon"),
        ("sendgrid", "event:"),
    ],
)
def test_unknown_or_malformed_key_field_is_an_error(provider, key):
    assert f"provider_mappings.{provider}.{key}" in _errors({"provider_mappings": {provider: {key: "delivered"}}})


def test_unknown_mapped_code_or_reason_is_an_error():
    assert "provider_mappings.unione.status:sent" in _errors({"provider_mappings": {"unione": {"status:sent": "bounced"}}})
    assert "provider_mappings.unione.status:sent" in _errors(
        {"provider_mappings": {"unione": {"status:sent": {"code": "bounced"}}}}
    )
    assert "provider_mappings.unione.status:sent" in _errors(
        {"provider_mappings": {"unione": {"status:sent": {"code": "hard_bounce", "reason": "because"}}}}
    )
    assert "provider_mappings.unione.status:sent" in _errors(
        {"provider_mappings": {"unione": {"status:sent": {"code": "hard_bounce", "why": "other"}}}}
    )
    assert "provider_mappings.unione.status:sent" in _errors({"provider_mappings": {"unione": {"status:sent": 5}}})


@pytest.mark.parametrize(
    "name",
    ["statistics_period_days", "machine_open_window_seconds", "machine_click_window_seconds", "confirmation_timeout_hours"],
)
def test_negative_periods_are_errors(name):
    assert name in _errors({name: -1})


@pytest.mark.parametrize(
    "document, field",
    [
        ({"soft_bounce_limit": 0}, "soft_bounce_limit"),
        ({"statistics_period_days": "30"}, "statistics_period_days"),
        ({"statistics_period_days": True}, "statistics_period_days"),
        ({"confirmation_timeout_hours": None}, "confirmation_timeout_hours"),
        ({"count_machine_opens": "yes"}, "count_machine_opens"),
        ({"unsubscribe_from_all": 1}, "unsubscribe_from_all"),
        ({"unsubscribe_url_patterns": "/unsubscribe"}, "unsubscribe_url_patterns"),
        ({"machine_open_user_agents": [1]}, "machine_open_user_agents"),
        ({"confirmation_timeout_response": "timed_out"}, "confirmation_timeout_response"),
        ({"version": ""}, "version"),
        ({"responses": []}, "responses"),
        ({"provider_mappings": ["unione"]}, "provider_mappings"),
    ],
)
def test_wrongly_typed_fields_are_errors(document, field):
    assert field in _errors(document)


@pytest.mark.parametrize(
    "text",
    [
        '{"confirmation_timeout_hours": NaN}',
        '{"confirmation_timeout_hours": Infinity}',
        '{"confirmation_timeout_hours": 1e300}',
        '{"statistics_period_days": 100000000000}',
    ],
)
def test_periods_the_fold_cannot_represent_are_errors(text):
    """json.loads (and so Flask) accepts NaN and Infinity: such a ruleset would crash every replay."""
    _errors(json.loads(text))


def test_very_long_periods_are_still_usable(fold_all, system):
    rules = DEFAULT_RULESET.patched({"statistics_period_days": 999_999_999, "confirmation_timeout_hours": 10**9})
    late = timedelta(days=3650)
    state, steps = fold_all(
        [system("sent_to_provider"), system("confirmation_checked", late), system("delivered", late)], rules=rules
    )
    assert [s.why for s in steps] == [None, "not_due", None]
    assert state.response == "delivered"


@pytest.mark.parametrize("name", ["unsubscribe_url_patterns", "machine_open_user_agents"])
def test_invalid_regex_is_an_error(name):
    errors = _errors({name: ["fine", "(unclosed"]})
    assert f"{name}.1" in errors
    assert f"{name}.0" not in errors


@pytest.mark.parametrize(
    "document",
    [
        {"confirmation_timeout_response": ["unknown_response"]},
        {"confirmation_timeout_response": {"code": "unknown_response"}},
        {"provider_mappings": {"unione": {"status:sent": {"code": ["delivered"]}}}},
        {"provider_mappings": {"unione": {"status:sent": {"code": {"x": 1}}}}},
        {"provider_mappings": {"unione": {"status:sent": {"code": "hard_bounce", "reason": ["other"]}}}},
        {"responses": {"opened": {"priority": [50]}}},
        {"provider_mappings": {"unione": {"status:sent": ["delivered"]}}},
        {"unsubscribe_url_patterns": [["x"]]},
    ],
)
def test_badly_shaped_json_is_an_invalid_ruleset_never_a_crash(document):
    _errors(document)


def test_every_error_is_reported_at_once():
    errors = _errors(
        {
            "statistics_period_days": -3,
            "responses": {"clicked": {"final": True, "priority": 1}, "nope": {"final": True}},
            "provider_mappings": {"unione": {"status:spam": "nope"}},
            "wat": 1,
        }
    )
    assert len(errors) == 5
    assert str(InvalidRuleset(errors))  # readable message


def test_base_is_unchanged_by_an_invalid_patch():
    before = DEFAULT_RULESET.to_document()
    _errors({"responses": {"soft_bounce": {"final": True, "priority": 3}}})
    assert DEFAULT_RULESET.to_document() == before


# ---- ruleset documents: provider mappings ---------------------------------------------------------


def test_mapping_value_as_code_keeps_the_replaced_mappings_reason():
    rules = DEFAULT_RULESET.patched({"provider_mappings": {"elasticemail": {"category:Spam": "hard_bounce"}}})
    assert rules.map("elasticemail", {"status": "Error", "category": "Spam"}) == Target("hard_bounce", "spam_reject")
    # other keys untouched (merge per key)
    assert rules.map("elasticemail", {"status": "Error", "category": "ContentFilter"}) == Target("soft_bounce", "spam_reject")


def test_mapping_value_as_code_keeps_the_replaced_glob_reason():
    rules = DEFAULT_RULESET.patched({"provider_mappings": {"unione": {"delivery_status:skip_dup_*": "hard_bounce"}}})
    assert rules.map("unione", {"status": "hard_bounced", "delivery_status": "skip_dup_x"}) == Target(
        "hard_bounce", "recipient_blocked"
    )


def test_mapping_object_sets_code_and_reason():
    rules = DEFAULT_RULESET.patched(
        {"provider_mappings": {"sendgrid": {"type:blocked": {"code": "soft_bounce", "reason": "ip_reputation"}}}}
    )
    assert rules.map("sendgrid", {"event": "bounce", "type": "blocked"}) == Target("soft_bounce", "ip_reputation")


def test_mapping_object_with_null_reason_has_no_reason():
    rules = DEFAULT_RULESET.patched(
        {"provider_mappings": {"elasticemail": {"category:Spam": {"code": "hard_bounce", "reason": None}}}}
    )
    assert rules.map("elasticemail", {"status": "Error", "category": "Spam"}) == Target("hard_bounce", None)


def test_mapping_to_null_makes_a_status_informational():
    rules = DEFAULT_RULESET.patched({"provider_mappings": {"unione": {"status:soft_bounced": None}}})
    assert rules.map("unione", {"status": "soft_bounced"}) == Target(None)


def test_mapping_a_delivery_status_to_null_is_informational_not_the_status_fallback():
    rules = DEFAULT_RULESET.patched({"provider_mappings": {"unione": {"delivery_status:err_lost": None}}})
    assert rules.map("unione", {"status": "hard_bounced", "delivery_status": "err_lost"}).code is None


def test_any_status_value_may_be_mapped():
    rules = DEFAULT_RULESET.patched(
        {
            "provider_mappings": {
                "unione": {"status:brand_new_status": "delivered", "status:accepted": "queued"},
                "elasticemail": {"status:Suppressed": {"code": "rejected", "reason": "recipient_blocked"}},
                "sendgrid": {"event:group_resubscribe": "delivered"},
            }
        }
    )
    assert rules.map("unione", {"status": "brand_new_status"}).code == "delivered"
    assert rules.map("unione", {"status": "accepted"}).code == "queued"
    assert rules.map("elasticemail", {"status": "Suppressed"}) == Target("rejected", "recipient_blocked")
    assert rules.map("sendgrid", {"event": "group_resubscribe"}).code == "delivered"


def test_glob_key_maps_every_matching_value():
    rules = DEFAULT_RULESET.patched(
        {"provider_mappings": {"unione": {"delivery_status:err_spam_*": {"code": "hard_bounce", "reason": "spam_reject"}}}}
    )
    for value in ("err_spam_skipped", "err_spam_removed", "err_spam_whatever"):
        # err_spam_skipped/removed keep their exact mapping (exact beats glob); a new one takes the glob
        expected = "rejected" if value != "err_spam_whatever" else "hard_bounce"
        assert rules.map("unione", {"status": "hard_bounced", "delivery_status": value}).code == expected
    assert rules.map("unione", {"status": "hard_bounced", "delivery_status": "err_other"}) == Target("hard_bounce", "other")


def test_most_specific_key_wins():
    rules = DEFAULT_RULESET.patched(
        {
            "provider_mappings": {
                "unione": {
                    "delivery_status:err_*": {"code": "send_error", "reason": "other"},
                    "delivery_status:err_x_*": {"code": "rejected", "reason": "recipient_blocked"},
                    "status:*": "delivered",
                }
            }
        }
    )
    hb = {"status": "hard_bounced"}
    # the longer glob over the shorter one
    assert rules.map("unione", {**hb, "delivery_status": "err_x_1"}).code == "rejected"
    assert rules.map("unione", {**hb, "delivery_status": "err_y_1"}).code == "send_error"
    # an exact value over any glob
    assert rules.map("unione", {**hb, "delivery_status": "err_user_unknown"}) == Target("hard_bounce", "unknown_recipient")
    # delivery_status over status, even a glob over an exact status
    assert rules.map("unione", {**hb, "delivery_status": "err_q"}).code == "send_error"
    # status: exact over glob; the glob catches unknown statuses
    assert rules.map("unione", {"status": "opened"}).code == "opened"
    assert rules.map("unione", {"status": "anything"}).code == "delivered"


def test_elasticemail_category_is_more_specific_than_status():
    rules = DEFAULT_RULESET.patched({"provider_mappings": {"elasticemail": {"status:Error": "hard_bounce"}}})
    assert rules.map("elasticemail", {"status": "Error", "category": "Spam"}).code == "soft_bounce"
    assert rules.map("elasticemail", {"status": "Error", "category": "Nope"}) == Target("hard_bounce", "other")


def test_mapping_lookup_ignores_case_of_status_values():
    assert DEFAULT_RULESET.map("elasticemail", {"status": "sent"}).code == "delivered"
    assert DEFAULT_RULESET.map("unione", {"status": "Hard_Bounced", "delivery_status": "ERR_NO_DNS"}).reason == (
        "domain_not_found"
    )


# ---- patterns ------------------------------------------------------------------------------------


def test_unsubscribe_patterns_are_searched_case_insensitively():
    assert DEFAULT_RULESET.is_unsubscribe_link("https://example.com/Unsubscribe?u=1")
    assert not DEFAULT_RULESET.is_unsubscribe_link("https://example.com/offer")
    assert not DEFAULT_RULESET.is_unsubscribe_link(None)
    rules = DEFAULT_RULESET.patched({"unsubscribe_url_patterns": [r"^https://x\.test/o(pt)?out$"]})
    assert rules.is_unsubscribe_link("https://X.TEST/optout")
    assert not rules.is_unsubscribe_link("https://example.com/unsubscribe")


def test_machine_user_agent_patterns():
    assert not DEFAULT_RULESET.is_machine_user_agent("Mozilla/5.0")  # off by default
    rules = DEFAULT_RULESET.patched({"machine_open_user_agents": ["googleimageproxy", "^Mozilla/5\\.0$"]})
    assert rules.is_machine_user_agent("Mozilla/5.0 (via ggpht.com GoogleImageProxy)")
    assert rules.is_machine_user_agent("mozilla/5.0")
    assert not rules.is_machine_user_agent("Mozilla/5.0 (Windows NT 10.0)")
    assert not rules.is_machine_user_agent(None)


# ---- documents: round trip and history ------------------------------------------------------------


def test_default_document_shape():
    doc = DEFAULT_RULESET.to_document()
    assert doc["responses"]["soft_bounce"] == {"final": False, "priority": 35}
    assert doc["responses"]["hard_bounce"] == {"final": True}
    assert doc["provider_mappings"]["unione"]["status:sent"] is None
    assert doc["provider_mappings"]["unione"]["status:delivered"] == "delivered"
    assert doc["provider_mappings"]["unione"]["delivery_status:skip_dup_*"] == {
        "code": "rejected",
        "reason": "recipient_blocked",
    }
    json.dumps(doc)  # a JSON document


ROUND_TRIP_PATCHES = [
    {},
    {"version": "2", "responses": {"soft_bounce": {"final": True}, "unsubscribed": {"final": False, "priority": 70}}},
    {"statistics_period_days": None, "soft_bounce_limit": 3, "machine_open_user_agents": ["GoogleImageProxy"]},
    {"confirmation_timeout_hours": 1.5, "confirmation_timeout_response": "send_error", "count_machine_opens": True},
    {"provider_mappings": {"elasticemail": {"category:Spam": "hard_bounce", "status:Suppressed": None}}},
    {"provider_mappings": {"elasticemail": {"category:Spam": {"code": "hard_bounce", "reason": None}}}},
    {"provider_mappings": {"unione": {"delivery_status:skip_dup_*": {"code": "send_error", "reason": None}}}},
    {"provider_mappings": {"unione": {"delivery_status:err_new_*": {"code": "hard_bounce", "reason": "other"}}}},
]


@pytest.mark.parametrize("patch", ROUND_TRIP_PATCHES)
def test_to_document_from_document_round_trip(patch):
    rules = DEFAULT_RULESET.patched(patch)
    doc = rules.to_document()
    again = Ruleset.from_document(json.loads(json.dumps(doc)))
    assert again == rules
    assert again.to_document() == doc
    # and it behaves the same
    for source, fields in [
        ("elasticemail", {"status": "Error", "category": "Spam"}),
        ("unione", {"status": "hard_bounced", "delivery_status": "skip_dup_1"}),
        ("unione", {"status": "hard_bounced", "delivery_status": "err_new_1"}),
    ]:
        assert again.map(source, fields) == rules.map(source, fields)


def test_from_document_keeps_the_version():
    doc = DEFAULT_RULESET.patched({"version": "soft-final"}).to_document()
    assert Ruleset.from_document(doc).version == "soft-final"


def test_to_document_can_be_patched_back_over_another_base():
    """A stored document is complete: applied over any base it gives the same rules."""
    rules = DEFAULT_RULESET.patched({"responses": {"opened": {"priority": 58}}, "statistics_period_days": 9})
    other_base = DEFAULT_RULESET.patched({"responses": {"soft_bounce": {"final": True}}, "count_machine_opens": True})
    assert Ruleset.from_document(rules.to_document()) == rules
    rebuilt = other_base.patched(rules.to_document())
    assert rebuilt.responses == rules.responses
    assert rebuilt.statistics_period_days == 9 and rebuilt.count_machine_opens is False


def test_changes_from_lists_only_what_differs():
    assert DEFAULT_RULESET.changes_from(DEFAULT_RULESET) == {}
    rules = DEFAULT_RULESET.patched(
        {
            "version": "2",
            "responses": {"soft_bounce": {"final": True}},
            "statistics_period_days": 14,
            "provider_mappings": {"elasticemail": {"category:Spam": "hard_bounce"}, "unione": {"status:new": "delivered"}},
        }
    )
    assert rules.changes_from(DEFAULT_RULESET) == {
        "responses": {"soft_bounce": {"final": True}},
        "statistics_period_days": 14,
        "provider_mappings": {
            # a changed mapping is shown whole, as a document value
            "elasticemail": {"category:Spam": {"code": "hard_bounce", "reason": "spam_reject"}},
            "unione": {"status:new": "delivered"},
        },
    }
    back = rules.changes_from(DEFAULT_RULESET)
    assert DEFAULT_RULESET.patched(back) == rules.patched({"version": DEFAULT_RULESET.version})


def test_changes_from_shows_a_reason_only_change_as_the_whole_mapping():
    rules = DEFAULT_RULESET.patched(
        {"provider_mappings": {"elasticemail": {"category:Spam": {"code": "soft_bounce", "reason": "ip_reputation"}}}}
    )
    assert rules.changes_from(DEFAULT_RULESET) == {
        "provider_mappings": {"elasticemail": {"category:Spam": {"code": "soft_bounce", "reason": "ip_reputation"}}}
    }


def test_rulesets_are_values():
    doc = DEFAULT_RULESET.to_document()
    snapshot = copy.deepcopy(doc)
    doc["responses"]["opened"]["priority"] = 1
    doc["provider_mappings"]["unione"]["status:opened"] = None
    assert DEFAULT_RULESET.to_document() == snapshot
    assert DEFAULT_RULESET.priority("opened") == 50


# ---- null switches an option off; patterns on RE2; new versions (issue 7) ---------------------------


_MIN, _D = timedelta(minutes=1), timedelta(days=1)
_ALL_ON = DEFAULT_RULESET.patched(
    {
        "soft_bounce_limit": 1,
        "machine_open_user_agents": ["proxy"],
        "machine_open_window_seconds": 10,
        "machine_click_window_seconds": 10,
        "statistics_period_days": 7,
    }
)


def _off(name):
    return _ALL_ON.patched({name: None})


def test_null_soft_bounce_limit_is_no_limit():
    step = Step("soft_bounce", "will_retry", "set", None, "soft_bounce")
    assert apply_signal_effect(ContactState(email="a@b.test"), step, "promo", _ALL_ON).email_is_actual is False
    off = _off("soft_bounce_limit")
    assert off.soft_bounce_limit is None
    assert apply_signal_effect(ContactState(email="a@b.test"), step, "promo", off).email_is_actual is True


def test_null_machine_open_window_lets_the_user_agent_alone_decide(fold_all, system, unione):
    journal = [system("sent_to_provider", key="d"), unione("delivered", _MIN), unione("opened", 3 * _D, user_agent="Proxy/1")]
    state = fold_all(journal, rules=_ALL_ON)[0]
    assert (state.response, state.opens) == ("opened", 1)  # three days after delivery: outside the window, a person
    state = fold_all(journal, rules=_off("machine_open_window_seconds"))[0]
    assert (state.response, state.opens) == ("opened_machine", 0)


def test_null_machine_click_window_is_no_scanner_rule(fold_all, system, unione):
    journal = [
        system("sent_to_provider", key="d"),
        unione("delivered", _MIN),
        unione("clicked", 2 * _MIN, occurred_at=_MIN, url="https://a.test/"),
    ]
    assert fold_all(journal, rules=_ALL_ON)[-1][-1].why == "machine_click"
    assert fold_all(journal, rules=_off("machine_click_window_seconds"))[0].clicks == 1


def test_null_statistics_period_never_closes(fold_all, system, unione):
    journal = [system("sent_to_provider", key="d"), unione("delivered", _MIN), unione("opened", 3000 * _D)]
    assert fold_all(journal, rules=_ALL_ON)[0].response == "delivered"
    assert fold_all(journal, rules=_off("statistics_period_days"))[0].response == "opened"


def test_patterns_are_case_insensitive_searches_on_re2():
    rules = DEFAULT_RULESET.patched(
        {"unsubscribe_url_patterns": ["/opt-?out"], "machine_open_user_agents": ["^googleimageproxy"]}
    )
    assert rules.is_unsubscribe_link("https://a.test/x/OPTOUT?c=1")
    assert not rules.is_unsubscribe_link("https://a.test/opt")
    assert rules.is_machine_user_agent("GoogleImageProxy/1.0") and not rules.is_machine_user_agent("x GoogleImageProxy")


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=x)", "(?<!a)b", "[", "(?P<n>a)(?P=n)"])
def test_a_pattern_re2_refuses_is_invalid_naming_it(pattern):
    assert pattern_error(pattern) is not None
    with pytest.raises(InvalidRuleset) as caught:
        DEFAULT_RULESET.patched({"machine_open_user_agents": ["bot", pattern]})
    assert set(caught.value.errors) == {"machine_open_user_agents.1"}
    assert pattern in caught.value.errors["machine_open_user_agents.1"]


def test_a_stored_pattern_re2_refuses_loads_and_matches_nothing():
    document = {**DEFAULT_RULESET.to_document(), "version": "old", "unsubscribe_url_patterns": ["(?=u)unsubscribe", "/optout"]}
    rules = Ruleset.from_document(document)
    assert rules.unsubscribe_url_patterns == ("(?=u)unsubscribe", "/optout")
    assert not rules.is_unsubscribe_link("https://a.test/unsubscribe") and rules.is_unsubscribe_link("https://a.test/optout")
    assert list(rules.refused_patterns()) == ["unsubscribe_url_patterns.0"]
    assert DEFAULT_RULESET.refused_patterns() == {}


@pytest.mark.parametrize("version", ["2", "v2.1_rc-3", "A", "x" * 64])
def test_a_well_formed_new_version(version):
    check_new_version(version)


@pytest.mark.parametrize("version", ["", "²", "٣", "a/b", "x" * 65, ".a", "_a", "-a", "a b", "a\n", None, 2])
def test_an_odd_new_version_is_invalid(version):
    with pytest.raises(InvalidRuleset) as caught:
        check_new_version(version)
    assert set(caught.value.errors) == {"version"}


@pytest.mark.parametrize("version, counted", [("12", True), ("²", False), ("٣", False), ("1.5", False), ("", False)])
def test_numbering_counts_ascii_digit_versions_only(version, counted):
    assert is_number_version(version) is counted


# ---- the rules mutation testing found unguarded ------------------------------------------------------
# Ruleset documents (CONTRACT §7): what mutation testing found unguarded (issue 7).
#
# A refused document answers 422 with one message per offending field, every field at once, so the
# operator fixes the document in one go; the messages are what the API shows, pinned here.


MAX_DAYS = timedelta.max.days
MAX_HOURS = MAX_DAYS * 24


def errors_of(document, base: Ruleset = DEFAULT_RULESET) -> dict[str, str]:
    with pytest.raises(InvalidRuleset) as info:
        base.patched(document)
    return info.value.errors


# ---- every invalid field, each with its message --------------------------------------------------------


def test_every_invalid_option_is_reported_with_its_message():
    errors = errors_of(
        {
            "wat": 1,
            "count_machine_opens": "yes",
            "unsubscribe_from_all": 1,
            "statistics_period_days": -1,
            "soft_bounce_limit": 0,
            "machine_open_window_seconds": 1.5,
            "machine_click_window_seconds": True,
            "confirmation_timeout_hours": -1,
            "confirmation_timeout_response": "nope",
            "unsubscribe_url_patterns": "/unsubscribe",
            "machine_open_user_agents": ["ok", 3],
        }
    )
    assert errors == {
        "wat": "unknown field",
        "count_machine_opens": "must be true or false",
        "unsubscribe_from_all": "must be true or false",
        "statistics_period_days": f"must be a whole number ≥ 0 and ≤ {MAX_DAYS} or null",
        "soft_bounce_limit": "must be a whole number ≥ 1 or null",
        "machine_open_window_seconds": "must be a whole number ≥ 0 or null",
        "machine_click_window_seconds": "must be a whole number ≥ 0 or null",
        "confirmation_timeout_hours": f"must be a number of hours ≥ 0 and ≤ {MAX_HOURS}",
        "confirmation_timeout_response": "unknown response code 'nope'",
        "unsubscribe_url_patterns": "must be a list of regular expressions",
        "machine_open_user_agents": "must be a list of regular expressions",
    }


def test_every_invalid_response_rule_is_reported_with_its_message():
    errors = errors_of(
        {
            "responses": {
                "nope": {"final": True},
                "also_nope": {"final": True},
                "opened": 3,
                "clicked": {"final": True, "extra": 1, "also": 2},
                "delivered": {"final": "yes"},
                "queued": {"priority": "high"},
                "hard_bounce": {"priority": 3},
                "soft_bounce": {"final": False},
                "delivered_twice": {},
                "opened_machine": {"final": False},
                "ready_to_send": {"priority": 21},  # valid, after the invalid ones: still merged
            }
        }
    )
    assert errors == {
        "responses.nope": "unknown response code",
        "responses.also_nope": "unknown response code",
        "responses.opened": "must be an object {final, priority}",
        "responses.clicked": "unknown fields: also, extra",
        "responses.delivered.final": "must be true or false",
        "responses.queued.priority": "must be a whole number",
        "responses.hard_bounce.priority": "a final response has no priority",
        "responses.soft_bounce.priority": "a non-final response needs a priority",
        "responses.delivered_twice": "unknown response code",
        "responses.opened_machine.priority": "a non-final response needs a priority",
    }
    assert errors_of({"responses": []}) == {"responses": "must be an object of response code → {final, priority}"}


def test_every_invalid_mapping_is_reported_with_its_message():
    errors = errors_of(
        {
            "provider_mappings": {
                "mailjet": {},
                "resend": {},
                "sendgrid": 3,
                "unione": {
                    "nocolon": "delivered",
                    "status:": "delivered",
                    "weird:x": "delivered",
                    "other:x": "delivered",
                    "status:a": "nope",
                    "status:b": {"code": "delivered", "why": 1},
                    "status:c": {"code": "nope"},
                    "status:d": {"code": "delivered", "reason": "nope"},
                    "status:e": 5,
                    "status:f": {"code": "rejected", "contact_effect": "forget"},
                    "status:g": {"code": None, "reason": "other"},
                    "status:h": {"code": None, "contact_effect": "resubscribe"},
                },
                "elasticemail": {"bad": "delivered"},
            }
        }
    )
    reasons = (
        "will_retry, unknown_recipient, mailbox_problem, spam_reject, domain_not_found, ip_reputation, recipient_blocked, other,"
        " previously_bounced, sender_blocked, content_rejected, rate_limited, technical"
    )
    providers = ", ".join(MAPPING_FIELDS)
    assert errors == {
        "provider_mappings.mailjet": f"unknown provider (one of {providers})",
        "provider_mappings.resend": f"unknown provider (one of {providers})",
        "provider_mappings.sendgrid": "must be an object",
        "provider_mappings.unione.nocolon": "a mapping key is field:value",
        "provider_mappings.unione.status:": "a mapping key is field:value",
        "provider_mappings.unione.weird:x": "unknown key field 'weird' (one of traffic_type, delivery_status, status)",
        "provider_mappings.unione.other:x": "unknown key field 'other' (one of traffic_type, delivery_status, status)",
        "provider_mappings.unione.status:a": "unknown response code 'nope'",
        "provider_mappings.unione.status:b": "a mapping object has only code, reason and contact_effect",
        "provider_mappings.unione.status:c": "unknown response code 'nope'",
        "provider_mappings.unione.status:d": f"unknown reason 'nope' (one of {reasons})",
        "provider_mappings.unione.status:e": "a mapping is a response code, {code, reason, contact_effect} or null",
        "provider_mappings.unione.status:f": "unknown contact_effect 'forget' (one of unsubscribe, suppress, resubscribe, or absent)",
        "provider_mappings.unione.status:g": "a mapping object names a code, a contact_effect or both (null alone: informational)",
        "provider_mappings.elasticemail.bad": "a mapping key is field:value",
    }
    assert errors_of({"provider_mappings": []}) == {"provider_mappings": "must be an object of provider → {field:value → code}"}


def test_an_invalid_pattern_is_reported_by_its_position():
    errors = errors_of({"unsubscribe_url_patterns": ["ok", "(", "also ok", "["]})
    assert set(errors) == {"unsubscribe_url_patterns.1", "unsubscribe_url_patterns.3"}
    assert all(isinstance(message, str) and message for message in errors.values())


def test_a_document_that_is_not_an_object_is_refused():
    for document in ([], "rules", 3, None):
        assert errors_of(document) == {"_schema": "a ruleset document is a JSON object"}
    with pytest.raises(InvalidRuleset):
        Ruleset.from_document([])  # type: ignore[arg-type]


def test_the_refusal_message_lists_every_field():
    assert str(InvalidRuleset({"a": "x", "b": "y"})) == "a: x; b: y"


# ---- zero is a valid period, the largest the fold can hold too ---------------------------------------------


def test_zero_periods_are_valid():
    rules = DEFAULT_RULESET.patched(
        {
            "statistics_period_days": 0,
            "machine_open_window_seconds": 0,
            "machine_click_window_seconds": 0,
            "confirmation_timeout_hours": 0,
        }
    )
    assert (
        rules.statistics_period_days,
        rules.machine_open_window_seconds,
        rules.machine_click_window_seconds,
        rules.confirmation_timeout_hours,
    ) == (0, 0, 0, 0)


def test_the_largest_periods_and_fractional_hours_are_valid():
    rules = DEFAULT_RULESET.patched({"statistics_period_days": MAX_DAYS, "confirmation_timeout_hours": MAX_HOURS})
    assert (rules.statistics_period_days, rules.confirmation_timeout_hours) == (MAX_DAYS, MAX_HOURS)
    assert DEFAULT_RULESET.patched({"confirmation_timeout_hours": 0.5}).confirmation_timeout_hours == 0.5
    assert "statistics_period_days" in errors_of({"statistics_period_days": MAX_DAYS + 1})
    assert "confirmation_timeout_hours" in errors_of({"confirmation_timeout_hours": MAX_HOURS + 0.5})


def test_a_soft_bounce_limit_of_one_is_valid():
    assert DEFAULT_RULESET.patched({"soft_bounce_limit": 1}).soft_bounce_limit == 1


# ---- response rules: what is left out keeps its value --------------------------------------------------------


@pytest.mark.parametrize("rule", [{}, {"priority": None}])
def test_a_response_rule_without_a_priority_keeps_the_old_one(rule):
    rules = DEFAULT_RULESET.patched({"responses": {"opened": rule}})
    assert (rules.is_final("opened"), rules.priority("opened")) == (False, 50)


# ---- mappings: a bare code keeps the reason of what it replaces ------------------------------------------


def test_a_bare_code_keeps_the_reason_of_the_default_glob_covering_a_new_key():
    rules = DEFAULT_RULESET.patched({"provider_mappings": {"unione": {"delivery_status:skip_dup_new": "hard_bounce"}}})
    assert rules.map("unione", {"status": "hard_bounced", "delivery_status": "skip_dup_new"}) == Target(
        "hard_bounce", "recipient_blocked"
    )


def test_a_status_value_may_hold_a_colon():
    rules = DEFAULT_RULESET.patched(
        {"provider_mappings": {"unione": {"status:a:b": "delivered", "delivery_status:skip_dup_a:b": "hard_bounce"}}}
    )
    assert rules.map("unione", {"status": "a:b"}) == Target("delivered")
    assert rules.map("unione", {"status": "hard_bounced", "delivery_status": "skip_dup_a:b"}) == Target(
        "hard_bounce", "recipient_blocked"
    )


def test_a_bare_code_on_a_new_glob_has_no_reason():
    """A new glob replaces no single mapping, so it has no reason to keep."""
    rules = DEFAULT_RULESET.patched({"provider_mappings": {"unione": {"delivery_status:skip_dup_a*": "hard_bounce"}}})
    assert rules.map("unione", {"status": "hard_bounced", "delivery_status": "skip_dup_ab"}) == Target("hard_bounce", None)
    assert rules.map("unione", {"status": "hard_bounced", "delivery_status": "skip_dup_b"}) == Target(
        "rejected", "recipient_blocked"
    )


def test_a_bare_code_on_a_key_nothing_covers_has_no_reason():
    rules = DEFAULT_RULESET.patched({"provider_mappings": {"sendgrid": {"event:bounced_twice": "hard_bounce"}}})
    assert rules.map("sendgrid", {"event": "bounced_twice"}) == Target("hard_bounce", None)


# ---- stored documents ---------------------------------------------------------------------------------


def test_a_stored_document_without_a_version_is_the_default_version():
    rules = Ruleset.from_document({"statistics_period_days": 7})
    assert (rules.version, rules.statistics_period_days) == ("1", 7)


def test_a_stored_document_states_its_reasons():
    """Read back whole, a bare code in a stored document has no reason (it is not a patch)."""
    document = DEFAULT_RULESET.to_document()
    document["provider_mappings"]["unione"]["status:soft_bounced"] = "soft_bounce"
    rules = Ruleset.from_document(document)
    assert rules.map("unione", {"status": "soft_bounced"}) == Target("soft_bounce", None)
    assert DEFAULT_RULESET.patched({"provider_mappings": {"unione": {"status:soft_bounced": "soft_bounce"}}}).map(
        "unione", {"status": "soft_bounced"}
    ) == Target("soft_bounce", "will_retry")


# ---- versions and RE2 patterns: the messages the API shows --------------------------------------------


def test_a_version_that_is_not_text_is_refused_with_its_message():
    for version in (3, "  ", ""):
        assert errors_of({"version": version}) == {"version": "a ruleset version is a non-empty string"}


def test_a_new_version_outside_the_format_is_refused_with_its_message():
    with pytest.raises(InvalidRuleset) as info:
        check_new_version("²")
    assert info.value.errors == {
        "version": "a ruleset version is 1 to 64 ASCII letters, digits, '.', '_' or '-', starting with a letter or digit"
    }


def test_a_pattern_re2_refuses_is_named_with_re2s_reason():
    assert pattern_error("(") == 'RE2 cannot compile the pattern "(": missing ): ('
    assert pattern_error("(?<=a)b") == 'RE2 cannot compile the pattern "(?<=a)b": invalid perl operator: (?<='
    assert pattern_error("^(a+)+$") is None


def test_a_stored_version_lists_the_patterns_re2_refuses():
    stored = Ruleset.from_document({"machine_open_user_agents": ["ok", "(?<=a)b"], "unsubscribe_url_patterns": ["("]})
    assert stored.refused_patterns() == {
        "unsubscribe_url_patterns.0": 'RE2 cannot compile the pattern "(": missing ): (',
        "machine_open_user_agents.1": 'RE2 cannot compile the pattern "(?<=a)b": invalid perl operator: (?<=',
    }
    assert DEFAULT_RULESET.refused_patterns() == {}


def test_a_mapping_with_a_contact_effect_round_trips_through_a_stored_document():
    patch = {
        "provider_mappings": {
            "sendgrid": {
                "event:dropped": {"code": "rejected", "reason": "recipient_blocked", "contact_effect": "suppress"},
                "event:group_resubscribe": {"code": None, "contact_effect": "resubscribe"},
            }
        }
    }
    rules = DEFAULT_RULESET.patched(patch, version="effects")
    assert rules.map("sendgrid", {"event": "dropped"}) == Target("rejected", "recipient_blocked", "suppress")
    assert rules.map("sendgrid", {"event": "group_resubscribe"}) == Target(None, None, "resubscribe")
    document = rules.to_document()
    assert document["provider_mappings"]["sendgrid"]["event:group_resubscribe"] == {
        "code": None,
        "reason": None,
        "contact_effect": "resubscribe",
    }
    assert Ruleset.from_document(document) == rules
    assert rules.changes_from(DEFAULT_RULESET)["provider_mappings"]["sendgrid"]["event:group_resubscribe"] == {
        "code": None,
        "reason": None,
        "contact_effect": "resubscribe",
    }
