"""SendGrid: the status fields a mapping key may name, and the built-in mapping (CONTRACT §6, §7)."""

from __future__ import annotations

from domain.mappings.target import RESUBSCRIBE, SUPPRESS, UNSUBSCRIBE, Target, t

# The status fields a mapping key may name, most specific first: ``reason`` is kept on ``dropped`` only (why
# SendGrid did not send), ``bounce_classification`` and ``type`` on ``bounce`` only.
FIELDS: tuple[str, ...] = ("reason", "bounce_classification", "type", "event")

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

# The built-in mapping of ruleset version "builtin-2": version 1, SendGrid's reasons for dropping a message and
# its bounce classifications (the Event Webhook reference: twilio.com/docs/sendgrid/for-developers/tracking-events/event),
# and a group resubscribe that undoes its group's unsubscribe. Every key of version 1 stays. A failure on the
# sender's side (reputation, content, volume, a technical one) never suppresses a contact.
VERSION_2: dict[str, Target] = {
    **VERSION_1,
    # dropped, by reason
    "reason:Invalid": t("invalid_address"),
    "reason:Bounced Address": t("rejected", "previously_bounced"),
    "reason:Unsubscribed Address": t("rejected", "recipient_blocked", UNSUBSCRIBE),
    "reason:Spam Reporting Address": t("rejected", "recipient_blocked", SUPPRESS),
    "reason:Spam Content*": t("rejected", "content_rejected"),
    "reason:Invalid SMTPAPI header": t("send_error", "technical"),
    "reason:Recipient List over Package Quota": t("send_error", "technical"),
    # bounces and blocks, by classification ("Unclassified": the type decides, hard for a bounce, soft for a block)
    "bounce_classification:Invalid Address": t("hard_bounce", "unknown_recipient"),
    "bounce_classification:Mailbox Unavailable": t("hard_bounce", "mailbox_problem"),
    "bounce_classification:Reputation": t("soft_bounce", "ip_reputation"),
    "bounce_classification:Content": t("soft_bounce", "content_rejected"),
    "bounce_classification:Technical": t("soft_bounce", "technical"),
    "bounce_classification:Frequency or Volume Too High": t("soft_bounce", "rate_limited"),
    # the recipient subscribed to the group (the mailing's email type) again; the response stays
    "event:group_resubscribe": t(None, None, RESUBSCRIBE),
}
