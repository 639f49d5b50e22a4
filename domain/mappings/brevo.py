"""Brevo (transactional webhooks): the status fields a mapping key may name, and the built-in mapping (CONTRACT §6, §7).

Brevo names its events ``request``, ``delivered``, ``hard_bounce``…; ``proxy_open`` is an open through a
privacy proxy (Apple Mail Privacy Protection and the like): a machine's, not the recipient's.
"""

from __future__ import annotations

from domain.mappings.target import Target, many, t

# The status fields a mapping key may name, most specific first.
FIELDS: tuple[str, ...] = ("event",)

# The built-in mapping (no stored history predates it: the same under every ruleset version).
VERSION_1: dict[str, Target] = {
    **many("request sent", t("queued"), "event"),
    "event:delivered": t("delivered"),
    **many("opened unique_opened", t("opened"), "event"),
    **many("proxy_open unique_proxy_open", t("opened_machine"), "event"),
    "event:click": t("clicked"),
    **many("unsubscribed unsubscribe", t("unsubscribed"), "event"),
    **many("spam complaint", t("spam_complaint"), "event"),
    "event:hard_bounce": t("hard_bounce", "other"),
    "event:soft_bounce": t("soft_bounce", "other"),
    "event:deferred": t("soft_bounce", "will_retry"),
    "event:blocked": t("rejected", "recipient_blocked"),  # Brevo did not send: the address is on its blocklist
    "event:invalid_email": t("invalid_address"),
    "event:error": t("send_error", "technical"),  # Brevo could not send (the sender's side)
}
