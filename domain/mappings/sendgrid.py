"""SendGrid: the status fields a mapping key may name, and the built-in mapping (CONTRACT §6, §7)."""

from __future__ import annotations

from domain.mappings.target import Target, t

# The status fields a mapping key may name, most specific first.
FIELDS: tuple[str, ...] = ("type", "event")

# The built-in mapping of ruleset version 1 (stored histories were folded under it: it never changes).
VERSION_1: dict[str, Target] = {
    "event:processed": t("queued"),
    "event:delivered": t("delivered"),
    "event:open": t("opened"),
    "event:click": t("clicked"),
    "event:bounce": t("hard_bounce", "other"),
    "type:bounce": t("hard_bounce", "other"),
    "type:blocked": t("soft_bounce", "other"),
    "event:deferred": t("soft_bounce", "will_retry"),
    "event:dropped": t("rejected", "recipient_blocked"),
    "event:spamreport": t("spam_complaint"),
    "event:unsubscribe": t("unsubscribed"),
    "event:group_unsubscribe": t("unsubscribed"),
    "event:group_resubscribe": t(None),
}
