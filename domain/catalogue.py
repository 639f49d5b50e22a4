"""The response catalogue (CONTRACT §3): codes, names, groups, default finality and priority."""

from __future__ import annotations

from dataclasses import dataclass

PREPARING = "preparing"
DELIVERED = "delivered"
NOT_DELIVERED = "not_delivered"
NOT_SENT = "not_sent"
GROUPS = (PREPARING, DELIVERED, NOT_DELIVERED, NOT_SENT)


@dataclass(frozen=True)
class Response:
    code: str
    name_en: str
    name_ru: str
    group: str
    final: bool
    priority: int | None
    in_seed: bool

    def name(self, lang: str = "en") -> str:
        return self.name_ru if lang == "ru" else self.name_en


_CATALOGUE = [
    Response("planned", "Planned", "В планах", PREPARING, False, 10, True),
    Response("ready_to_send", "Ready to send", "Готово к отправке", PREPARING, False, 20, False),
    Response("queued", "Queued", "В очереди", PREPARING, False, 25, False),
    Response("sent_to_provider", "Sent to provider", "Отправлено провайдеру", PREPARING, False, 30, True),
    Response("soft_bounce", "Soft bounce", "Soft Bounce", NOT_DELIVERED, False, 35, True),
    Response("delivered", "Delivered", "Доставлено", DELIVERED, False, 40, True),
    Response("opened_machine", "Open (machine)", "Открыто (робот)", DELIVERED, False, 45, False),
    Response("opened", "Opened", "Открыто", DELIVERED, False, 50, True),
    Response("clicked", "Clicked", "Переход по ссылке", DELIVERED, False, 60, True),
    Response("unsubscribed", "Unsubscribed", "Отписался", DELIVERED, True, None, True),
    Response("spam_complaint", "Spam complaint", "Отправлено в спам", DELIVERED, True, None, True),
    Response("hard_bounce", "Hard bounce", "Hard Bounce", NOT_DELIVERED, True, None, True),
    Response("rejected", "Rejected", "Отклонено", NOT_DELIVERED, True, None, True),
    Response("invalid_address", "Invalid email address", "Некорректный адресат", NOT_DELIVERED, True, None, True),
    Response("send_error", "Send error", "Ошибки отправки", NOT_DELIVERED, True, None, True),
    Response("unknown_response", "Unknown response", "Unknown response", NOT_SENT, True, None, True),
    Response(
        "canceled_duplicate_email", "Canceled (duplicated email)", "Не отправлено (email дублирован)", NOT_SENT, True, None, True
    ),
    Response(
        "canceled_unsubscribed_type",
        "Canceled (unsubscribed by email type)",
        "Не отправлено (отписан по типу рассылки)",
        NOT_SENT,
        True,
        None,
        True,
    ),
    Response("stopped_expired", "Stopped (time to send expired)", "Остановлен (истек срок отправки)", NOT_SENT, True, None, True),
    Response(
        "canceled_no_email", "Canceled (email not provided)", "Не отправлено (email не указан)", NOT_SENT, True, None, False
    ),
    Response(
        "canceled_invalid_email", "Canceled (invalid email)", "Не отправлено (некорректный email)", NOT_SENT, True, None, False
    ),
    Response(
        "canceled_unsubscribed_all",
        "Canceled (unsubscribed from all emails)",
        "Не отправлено (отписан от всех рассылок)",
        NOT_SENT,
        True,
        None,
        False,
    ),
    Response(
        "canceled_template_not_found",
        "Canceled (template not found)",
        "Не отправлено (шаблон не найден)",
        NOT_SENT,
        True,
        None,
        False,
    ),
    Response(
        "canceled_domain_not_verified",
        "Canceled (sender's domain not verified)",
        "Не отправлено (домен не подтвержден)",
        NOT_SENT,
        True,
        None,
        False,
    ),
    Response("stopped_manually", "Stopped (manually)", "Остановлен (вручную)", NOT_SENT, True, None, False),
    Response("email_limit_reached", "Email limit reached", "Достигнут лимит писем", NOT_SENT, True, None, False),
]

RESPONSES: dict[str, Response] = {r.code: r for r in _CATALOGUE}
CODES: tuple[str, ...] = tuple(RESPONSES)

REASONS: tuple[str, ...] = (
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
)

# Effects and whys of a fold step (CONTRACT §4).
SET, COUNTED, IGNORED = "set", "counted", "ignored"
WHYS: tuple[str, ...] = (
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
)


def group_of(code: str) -> str:
    return RESPONSES[code].group


def response_object(code: str, reason: str | None = None, lang: str = "en") -> dict[str, str | None]:
    """A response as the API shows it: ``{"code","name","reason"}``."""
    return {"code": code, "name": RESPONSES[code].name(lang), "reason": reason}
