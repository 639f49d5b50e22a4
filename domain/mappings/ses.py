"""Amazon SES (through SNS): the status fields a mapping key may name, and the built-in mapping (CONTRACT §6, §7).

``eventType`` is the event publishing's type, or an identity notification's ``notificationType`` (``Bounce``,
``Complaint``, ``Delivery``: the same names). ``bounceType`` and ``bounceSubType`` are a bounce's. A subtype
SES gives both bounce types (``General``) is left to ``bounceType``; the subtypes that say more are mapped alone.
A failure on the sender's side (a virus found, a template that would not render) never suppresses a contact.
"""

from __future__ import annotations

from domain.mappings.target import Target, many, t

# The status fields a mapping key may name, most specific first.
FIELDS: tuple[str, ...] = ("bounceSubType", "bounceType", "eventType")

# The built-in mapping (no stored history predates it: the same under every ruleset version).
VERSION_1: dict[str, Target] = {
    "eventType:Send": t("queued"),
    "eventType:Delivery": t("delivered"),
    "eventType:Open": t("opened"),
    "eventType:Click": t("clicked"),
    "eventType:Complaint": t("spam_complaint"),
    "eventType:Bounce": t("soft_bounce", "other"),  # a bounce without a type: nothing to suppress on
    "eventType:Reject": t("rejected", "content_rejected"),  # SES found a virus and did not send
    "eventType:Rendering Failure": t("send_error", "technical"),  # the template would not render: not sent
    "eventType:DeliveryDelay": t("soft_bounce", "will_retry"),
    "eventType:Subscription": t(None),  # a change of the recipient's topic preferences (SES subscription management)
    "bounceType:Permanent": t("hard_bounce", "other"),
    "bounceType:Transient": t("soft_bounce", "other"),
    "bounceType:Undetermined": t("soft_bounce", "other"),
    "bounceSubType:NoEmail": t("hard_bounce", "unknown_recipient"),
    **many("Suppressed OnAccountSuppressionList", t("rejected", "previously_bounced"), "bounceSubType"),
    "bounceSubType:MailboxFull": t("soft_bounce", "mailbox_problem"),
    **many("MessageTooLarge ContentRejected AttachmentRejected", t("soft_bounce", "content_rejected"), "bounceSubType"),
}
