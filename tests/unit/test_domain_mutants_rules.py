"""Ruleset documents (CONTRACT §7): what mutation testing found unguarded (issue 7).

A refused document answers 422 with one message per offending field, every field at once, so the
operator fixes the document in one go; the messages are what the API shows, pinned here.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.rules import DEFAULT_RULESET, InvalidRuleset, Ruleset, Target, check_new_version, pattern_error

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
                "mailgun": {},
                "postmark": {},
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
                },
                "elasticemail": {"bad": "delivered"},
            }
        }
    )
    reasons = "will_retry, unknown_recipient, mailbox_problem, spam_reject, domain_not_found, ip_reputation, recipient_blocked, other"
    assert errors == {
        "provider_mappings.mailgun": "unknown provider (one of unione, elasticemail, sendgrid)",
        "provider_mappings.postmark": "unknown provider (one of unione, elasticemail, sendgrid)",
        "provider_mappings.sendgrid": "must be an object",
        "provider_mappings.unione.nocolon": "a mapping key is field:value",
        "provider_mappings.unione.status:": "a mapping key is field:value",
        "provider_mappings.unione.weird:x": "unknown key field 'weird' (one of delivery_status, status)",
        "provider_mappings.unione.other:x": "unknown key field 'other' (one of delivery_status, status)",
        "provider_mappings.unione.status:a": "unknown response code 'nope'",
        "provider_mappings.unione.status:b": "a mapping object has only code and reason",
        "provider_mappings.unione.status:c": "unknown response code 'nope'",
        "provider_mappings.unione.status:d": f"unknown reason 'nope' (one of {reasons})",
        "provider_mappings.unione.status:e": "a mapping is a response code, {code, reason} or null",
        "provider_mappings.elasticemail.bad": "a mapping key is field:value",
    }
    assert errors_of({"provider_mappings": []}) == {
        "provider_mappings": "must be an object of provider → {field:value → code}"
    }


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
