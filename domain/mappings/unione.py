"""UniOne: the status fields a mapping key may name, and the built-in mapping (CONTRACT §6, §7)."""

from __future__ import annotations

from domain.mappings.target import Target, many, t

# The status fields a mapping key may name, most specific first.
FIELDS: tuple[str, ...] = ("delivery_status", "status")

# The built-in mapping of ruleset version 1 (stored histories were folded under it: it never changes).
VERSION_1: dict[str, Target] = {
    "status:delivered": t("delivered"),
    "status:opened": t("opened"),
    "status:clicked": t("clicked"),
    "status:unsubscribed": t("unsubscribed"),
    "status:spam": t("spam_complaint"),
    "status:soft_bounced": t("soft_bounce", "will_retry"),
    "status:hard_bounced": t("hard_bounce", "other"),
    "status:sent": t(None),
    "status:accepted": t(None),
    "status:subscribed": t(None),
    **many("err_user_unknown err_user_inactive err_mailbox_discarded", t("hard_bounce", "unknown_recipient"), "delivery_status"),
    **many("err_domain_inactive err_no_dns err_dest_invalid", t("hard_bounce", "domain_not_found"), "delivery_status"),
    **many("err_mailbox_full err_too_large", t("hard_bounce", "mailbox_problem"), "delivery_status"),
    **many("err_spam_rejected", t("hard_bounce", "spam_reject"), "delivery_status"),
    **many(
        "err_blacklisted err_unsubscribed err_spam_skipped err_spam_removed err_skip_letter skip_dup_*",
        t("rejected", "recipient_blocked"),
        "delivery_status",
    ),
    **many("err_lost err_internal err_src_invalid", t("send_error"), "delivery_status"),
}
