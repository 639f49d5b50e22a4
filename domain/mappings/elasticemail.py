"""Elastic Email: the status fields a mapping key may name, and the built-in mapping (CONTRACT §6, §7)."""

from __future__ import annotations

from domain.mappings.target import Target, many, t

# The status fields a mapping key may name, most specific first.
FIELDS: tuple[str, ...] = ("category", "status")

# The built-in mapping of ruleset version 1 (stored histories were folded under it: it never changes).
VERSION_1: dict[str, Target] = {
    "status:Sent": t("delivered"),
    "status:Opened": t("opened"),
    "status:Clicked": t("clicked"),
    "status:Unsubscribed": t("unsubscribed"),
    "status:AbuseReport": t("spam_complaint"),
    "status:Error": t("send_error", "other"),
    "category:NoMailbox": t("invalid_address"),
    "category:DNSProblem": t("hard_bounce", "domain_not_found"),
    **many(
        "GreyListed Throttled Timeout ConnectionProblem ConnectionTerminated AccountProblem",
        t("soft_bounce", "will_retry"),
        "category",
    ),
    **many("Spam ContentFilter", t("soft_bounce", "spam_reject"), "category"),
    **many("BlackListed SPFProblem WhitelistingProblem", t("soft_bounce", "ip_reputation"), "category"),
    **many("Ignore NotDelivered NotDeliveredCancelled ManualCancel CodeError", t("send_error"), "category"),
    "category:Unknown": t("send_error", "other"),
}
