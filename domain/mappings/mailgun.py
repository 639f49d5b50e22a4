"""Mailgun: the status fields a mapping key may name, and the built-in mapping (CONTRACT §6, §7).

``severity`` and ``reason`` are read from ``failed`` events only (Mailgun's webhooks since 2018: ``event-data``).
A ``reason`` Mailgun gives both severities (``generic``, ``bounce``) is left to ``severity``; the reasons that say
more are mapped alone. A failure on the sender's side (Mailgun refused the send) never suppresses a contact.
"""

from __future__ import annotations

from domain.mappings.target import SUPPRESS, UNSUBSCRIBE, Target, many, t

# The status fields a mapping key may name, most specific first.
FIELDS: tuple[str, ...] = ("reason", "severity", "event")

# The built-in mapping (no stored history predates it: the same under every ruleset version).
VERSION_1: dict[str, Target] = {
    "event:accepted": t("queued"),
    "event:delivered": t("delivered"),
    "event:opened": t("opened"),
    "event:clicked": t("clicked"),
    "event:unsubscribed": t("unsubscribed"),
    "event:complained": t("spam_complaint"),
    "event:failed": t("soft_bounce", "other"),  # a failure without a severity: nothing to suppress on
    "event:rejected": t("send_error", "technical"),  # Mailgun refused the sending request (sandbox, limits)
    **many("stored list_member_uploaded list_member_upload_error list_uploaded", t(None), "event"),
    "severity:permanent": t("hard_bounce", "other"),
    "severity:temporary": t("soft_bounce", "will_retry"),
    # Mailgun's suppression lists: it did not try the address
    "reason:suppress-bounce": t("rejected", "previously_bounced"),
    "reason:suppress-unsubscribe": t("rejected", "recipient_blocked", UNSUBSCRIBE),
    "reason:suppress-complaint": t("rejected", "recipient_blocked", SUPPRESS),
    "reason:espblock": t("soft_bounce", "ip_reputation"),  # the recipient's provider blocked the sending IP
    "reason:greylisted": t("soft_bounce", "will_retry"),
    "reason:old": t("soft_bounce", "other"),  # retried until too old: nothing said the address is bad
}
