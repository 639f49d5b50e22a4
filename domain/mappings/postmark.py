"""Postmark: the status fields a mapping key may name, and the built-in mapping (CONTRACT §6, §7).

``Type`` is a bounce's (and a spam complaint's) type as Postmark names it (``HardBounce``, ``Transient``…). A
``SubscriptionChange`` that suppresses sending carries its ``SuppressionReason`` as its ``Type``
(``ManualSuppression``: the recipient unsubscribed, or was suppressed by hand; ``HardBounce``;
``SpamComplaint``); one that reactivates the address has none and is informational.
"""

from __future__ import annotations

from domain.mappings.target import Target, t

# The status fields a mapping key may name, most specific first.
FIELDS: tuple[str, ...] = ("Type", "RecordType")

# The built-in mapping (no stored history predates it: the same under every ruleset version).
VERSION_1: dict[str, Target] = {
    "RecordType:Delivery": t("delivered"),
    "RecordType:Open": t("opened"),
    "RecordType:Click": t("clicked"),
    "RecordType:SpamComplaint": t("spam_complaint"),
    "RecordType:Bounce": t("soft_bounce", "other"),  # a bounce type Postmark adds later: nothing to suppress on yet
    "RecordType:SubscriptionChange": t(None),  # sending reactivated
    # bounce types (TypeCode in brackets)
    "Type:HardBounce": t("hard_bounce", "unknown_recipient"),  # [1]
    "Type:Transient": t("soft_bounce", "will_retry"),  # [2]
    "Type:Unsubscribe": t("unsubscribed"),  # [16]
    "Type:Subscribe": t(None),  # [32]
    "Type:AutoResponder": t(None),  # [64]: out of office, delivered
    "Type:AddressChange": t(None),  # [128]
    "Type:DnsError": t("soft_bounce", "domain_not_found"),  # [256]: a temporary DNS error
    "Type:SpamNotification": t("soft_bounce", "spam_reject"),  # [512]
    "Type:OpenRelayTest": t(None),  # [1024]
    "Type:Unknown": t("soft_bounce", "other"),  # [2048]
    "Type:SoftBounce": t("soft_bounce", "will_retry"),  # [4096]
    "Type:VirusNotification": t("soft_bounce", "content_rejected"),  # [8192]
    "Type:ChallengeVerification": t(None),  # [16384]: a challenge to the sender, delivered once answered
    "Type:BadEmailAddress": t("invalid_address"),  # [100000]
    "Type:SpamComplaint": t("spam_complaint"),  # [100001]
    "Type:ManuallyDeactivated": t("rejected", "recipient_blocked"),  # [100002]: Postmark did not send
    "Type:Unconfirmed": t("send_error", "technical"),  # [100003]: the sender signature is not confirmed
    "Type:Blocked": t("soft_bounce", "ip_reputation"),  # [100006]: the receiving server blocked the sender
    "Type:SMTPApiError": t("send_error", "technical"),  # [100007]
    "Type:InboundError": t("send_error", "technical"),  # [100008]
    "Type:DMARCPolicy": t("rejected", "sender_blocked"),  # [100009]: the sender's domain failed DMARC
    "Type:TemplateRenderingFailed": t("send_error", "technical"),  # [100010]
    # a SubscriptionChange that suppresses sending: its SuppressionReason
    "Type:ManualSuppression": t("unsubscribed"),
}
