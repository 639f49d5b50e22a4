"""The response catalogue (CONTRACT §3), row by row."""

from __future__ import annotations

import pytest

from domain.catalogue import CODES, GROUPS, REASONS, RESPONSES, WHYS, group_of, response_object
from domain.rules import DEFAULT_RULESET

# code, English name, Russian name, group, final, default priority, in seed — copied from CONTRACT §3.
SPEC_CATALOGUE = [
    ("planned", "Planned", "В планах", "preparing", False, 10, True),
    ("ready_to_send", "Ready to send", "Готово к отправке", "preparing", False, 20, False),
    ("queued", "Queued", "В очереди", "preparing", False, 25, False),
    ("sent_to_provider", "Sent to provider", "Отправлено провайдеру", "preparing", False, 30, True),
    ("soft_bounce", "Soft bounce", "Soft Bounce", "not_delivered", False, 35, True),
    ("delivered", "Delivered", "Доставлено", "delivered", False, 40, True),
    ("opened_machine", "Open (machine)", "Открыто (робот)", "delivered", False, 45, False),
    ("opened", "Opened", "Открыто", "delivered", False, 50, True),
    ("clicked", "Clicked", "Переход по ссылке", "delivered", False, 60, True),
    ("unsubscribed", "Unsubscribed", "Отписался", "delivered", True, None, True),
    ("spam_complaint", "Spam complaint", "Отправлено в спам", "delivered", True, None, True),
    ("hard_bounce", "Hard bounce", "Hard Bounce", "not_delivered", True, None, True),
    ("rejected", "Rejected", "Отклонено", "not_delivered", True, None, True),
    ("invalid_address", "Invalid email address", "Некорректный адресат", "not_delivered", True, None, True),
    ("send_error", "Send error", "Ошибки отправки", "not_delivered", True, None, True),
    ("unknown_response", "Unknown response", "Unknown response", "not_sent", True, None, True),
    ("canceled_duplicate_email", "Canceled (duplicated email)", "Не отправлено (email дублирован)", "not_sent", True, None, True),
    (
        "canceled_unsubscribed_type",
        "Canceled (unsubscribed by email type)",
        "Не отправлено (отписан по типу рассылки)",
        "not_sent",
        True,
        None,
        True,
    ),
    ("stopped_expired", "Stopped (time to send expired)", "Остановлен (истек срок отправки)", "not_sent", True, None, True),
    ("canceled_no_email", "Canceled (email not provided)", "Не отправлено (email не указан)", "not_sent", True, None, False),
    ("canceled_invalid_email", "Canceled (invalid email)", "Не отправлено (некорректный email)", "not_sent", True, None, False),
    (
        "canceled_unsubscribed_all",
        "Canceled (unsubscribed from all emails)",
        "Не отправлено (отписан от всех рассылок)",
        "not_sent",
        True,
        None,
        False,
    ),
    (
        "canceled_template_not_found",
        "Canceled (template not found)",
        "Не отправлено (шаблон не найден)",
        "not_sent",
        True,
        None,
        False,
    ),
    (
        "canceled_domain_not_verified",
        "Canceled (sender's domain not verified)",
        "Не отправлено (домен не подтвержден)",
        "not_sent",
        True,
        None,
        False,
    ),
    ("stopped_manually", "Stopped (manually)", "Остановлен (вручную)", "not_sent", True, None, False),
    ("email_limit_reached", "Email limit reached", "Достигнут лимит писем", "not_sent", True, None, False),
]

ROW_IDS = [row[0] for row in SPEC_CATALOGUE]


@pytest.mark.parametrize("code, name_en, name_ru, group, final, priority, in_seed", SPEC_CATALOGUE, ids=ROW_IDS)
def test_catalogue_row_matches_spec(code, name_en, name_ru, group, final, priority, in_seed):
    response = RESPONSES[code]
    assert response.code == code
    assert response.name_en == name_en
    assert response.name_ru == name_ru
    assert response.name() == name_en
    assert response.name("en") == name_en
    assert response.name("ru") == name_ru
    assert response.group == group
    assert group_of(code) == group
    assert response.final is final
    assert response.priority == priority
    assert response.in_seed is in_seed


@pytest.mark.parametrize("code, name_en, name_ru, group, final, priority, in_seed", SPEC_CATALOGUE, ids=ROW_IDS)
def test_default_ruleset_carries_the_catalogue_finality_and_priority(code, name_en, name_ru, group, final, priority, in_seed):
    assert DEFAULT_RULESET.is_final(code) is final
    assert DEFAULT_RULESET.responses[code].priority == priority


@pytest.mark.parametrize("code, name_en, name_ru, group, final, priority, in_seed", SPEC_CATALOGUE, ids=ROW_IDS)
def test_api_response_object_in_both_languages(code, name_en, name_ru, group, final, priority, in_seed):
    assert response_object(code) == {"code": code, "name": name_en, "reason": None}
    assert response_object(code, "other", lang="ru") == {"code": code, "name": name_ru, "reason": "other"}


def test_catalogue_has_exactly_the_spec_codes_in_spec_order():
    assert list(CODES) == ROW_IDS
    assert set(RESPONSES) == set(ROW_IDS)


def test_finals_have_no_priority_and_non_finals_have_distinct_priorities():
    for response in RESPONSES.values():
        assert (response.priority is None) == response.final, response.code
    priorities = [r.priority for r in RESPONSES.values() if not r.final]
    assert len(priorities) == len(set(priorities))


def test_groups_are_the_four_spec_groups():
    assert set(GROUPS) == {"preparing", "delivered", "not_delivered", "not_sent"}
    assert {r.group for r in RESPONSES.values()} == set(GROUPS)


def test_reasons_are_the_spec_reasons():
    assert set(REASONS) == {
        "will_retry",
        "unknown_recipient",
        "mailbox_problem",
        "spam_reject",
        "domain_not_found",
        "ip_reputation",
        "recipient_blocked",
        "other",
        "previously_bounced",
        "sender_blocked",
        "content_rejected",
        "rate_limited",
        "technical",
    }


def test_whys_are_the_spec_whys():
    assert set(WHYS) == {
        "duplicate",
        "final",
        "lower_priority",
        "period_closed",
        "informational",
        "unsubscribe_link",
        "not_delivered",
        "machine_open",
        "machine_click",
        "superseded",
        "not_due",
    }


def test_unknown_code_is_not_in_the_catalogue():
    with pytest.raises(KeyError):
        group_of("bounced")
