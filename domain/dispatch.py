"""Pre-send outcomes (CONTRACT §6 "Dispatch"): what happens to a planned recipient when its mailing is sent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from domain.contacts import ContactState
from domain.signals import normalise_email

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class MailingTerms:
    email_type: str | None
    prevent_duplicates: bool
    expires_at: datetime | None


def dispatch_outcome(
    email: str | None,
    contact: ContactState,
    terms: MailingTerms,
    taken: set[str],
    now: datetime,
) -> str:
    """The response code for one planned recipient, checked in the order §6 gives.

    ``taken`` holds the normalised addresses already sent to in this mailing;
    a ``sent_to_provider`` outcome adds its address to it.
    """
    address = normalise_email(email)
    if address is None:
        return "canceled_no_email"
    if contact.do_not_use_email:
        return "canceled_unsubscribed_all"
    if not contact.email_is_actual or not _EMAIL.match(address):
        return "canceled_invalid_email"
    if terms.email_type and terms.email_type in contact.unsubscribed_types:
        return "canceled_unsubscribed_type"
    if terms.prevent_duplicates and address in taken:
        return "canceled_duplicate_email"
    if terms.expires_at is not None and now > terms.expires_at:
        return "stopped_expired"
    taken.add(address)
    return "sent_to_provider"
