"""UniOne: the status fields a mapping key may name, and the built-in mapping (CONTRACT §6, §7)."""

from __future__ import annotations

from domain.mappings.target import Target, many, t

# The status fields a mapping key may name, most specific first. ``traffic_type`` is kept on opens only
# (``delivery_info.traffic_type``: "machine", "protected": a privacy proxy such as Apple Mail Privacy
# Protection or Gmail's image proxy fetched the pixel); ``delivery_status`` on hard bounces only.
FIELDS: tuple[str, ...] = ("traffic_type", "delivery_status", "status")

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

# The built-in mapping of ruleset version "builtin-2": version 1 and what UniOne's own status list says each
# of these means (godocs.unisender.ru/email-statuses). Every key of version 1 stays (a stored version based
# on this one lists them all). A failure on the sender's or the provider's side never suppresses a contact.
VERSION_2: dict[str, Target] = {
    **VERSION_1,
    # an open by a machine or a privacy proxy, as SendGrid's sg_machine_open
    **many("machine protected", t("opened_machine"), "traffic_type"),
    # the campaign was blocked as spam: the sender's, not the recipient's
    "delivery_status:err_spam_skipped": t("rejected", "sender_blocked"),
    # delivery attempts failed and go on (resend: the same, as UniOne says; retry_letter: queued again)
    **many("err_will_retry err_resend err_retry_letter", t("soft_bounce", "will_retry"), "delivery_status"),
    # attempts given up, the destination's server unreachable or misconfigured: not the address's fault for good
    **many("err_giveup err_unreachable err_destination_misconfigured", t("soft_bounce", "other"), "delivery_status"),
    # the domain has DNS but no mail server: the address cannot receive mail, as err_no_dns
    "delivery_status:err_no_smtp": t("hard_bounce", "domain_not_found"),
    # never sent by the provider
    "delivery_status:not_sent": t("send_error", "technical"),
}
