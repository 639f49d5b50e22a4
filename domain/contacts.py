"""Contact effects (CONTRACT §5, §7 Details "Contacts").

A contact's flags are a projection: the recipient signals of all its mailings
and its own journaled manual commands, applied in journal order (the later wins).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.catalogue import DELIVERED, RESPONSES, SET
from domain.fold import Step
from domain.mappings.target import RESUBSCRIBE, SUPPRESS, UNSUBSCRIBE
from domain.rules import Ruleset
from domain.signals import normalise_email


@dataclass(slots=True)
class ContactState:
    email: str | None = None
    do_not_use_email: bool = False
    email_is_actual: bool = True
    unsubscribed_types: frozenset[str] = frozenset()  # immutable: copies share it
    soft_bounce_streak: int = 0

    @property
    def suppressed(self) -> bool:
        return self.do_not_use_email or not self.email_is_actual

    def copy(self) -> ContactState:
        return ContactState(
            self.email, self.do_not_use_email, self.email_is_actual, self.unsubscribed_types, self.soft_bounce_streak
        )

    def flags(self) -> dict[str, Any]:
        return {
            "do_not_use_email": self.do_not_use_email,
            "email_is_actual": self.email_is_actual,
            "unsubscribed_types": sorted(self.unsubscribed_types),
        }


_CONTACT_CODES = frozenset({"unsubscribed", "spam_complaint", "hard_bounce", "invalid_address", "soft_bounce"})


def apply_signal_effect(contact: ContactState, step: Step, email_type: str | None, rules: Ruleset) -> ContactState:
    """What one folded recipient signal does to its contact.

    Unsubscribes and spam complaints always reach the contact (an unsubscribe must
    be honoured even when the recipient's response is final or its period closed);
    hard bounces and invalid addresses only when they set the recipient's response.
    A mapping's contact effect (``step.contact_effect``) always reaches it too, as an
    unsubscribe does: ``unsubscribe`` is an unsubscribe, ``suppress`` a do-not-use, and
    ``resubscribe`` takes the mailing's email type out of the unsubscribed types (never
    a do-not-use, whoever set it). A duplicate does nothing.
    """
    code, effect = step.maps_to, step.contact_effect
    if (code is None and effect is None) or step.why == "duplicate":
        return contact
    if (
        effect is None and code is not None and code not in _CONTACT_CODES
    ):  # most signals (delivered, opened, …): a streak reset at most
        if contact.soft_bounce_streak and RESPONSES[code].group == DELIVERED:
            c = contact.copy()
            c.soft_bounce_streak = 0
            return c
        return contact  # unchanged: the same state (the caller keeps it as it is)
    c = contact.copy()
    if code == "unsubscribed" or effect == UNSUBSCRIBE:
        if rules.unsubscribe_from_all or not email_type:
            c.do_not_use_email = True
        else:
            c.unsubscribed_types = c.unsubscribed_types | {email_type}
    if code == "spam_complaint" or effect == SUPPRESS:
        c.do_not_use_email = True
    if code == "hard_bounce" and step.effect == SET:
        c.do_not_use_email = True
        c.email_is_actual = False
    elif code == "invalid_address" and step.effect == SET:
        c.email_is_actual = False
    if effect == RESUBSCRIBE and email_type:
        c.unsubscribed_types = c.unsubscribed_types - {email_type}
    if code is None:
        return c
    if code == "soft_bounce":
        # Counted only when it sets the recipient's response: once per mailing at most (SendGrid reports
        # every deferred attempt), and never for a late soft bounce of a mail already delivered.
        if step.effect == SET:
            c.soft_bounce_streak += 1
            if rules.soft_bounce_limit is not None and c.soft_bounce_streak >= rules.soft_bounce_limit:
                c.email_is_actual = False
    elif RESPONSES[code].group == DELIVERED:
        c.soft_bounce_streak = 0
    return c


def apply_command(contact: ContactState, command: Mapping[str, Any]) -> ContactState:
    """A journaled manual change: ``{"op": "patch" | "subscription", ...}``."""
    c = contact.copy()
    op = command.get("op")
    if op == "patch":
        if "email" in command and normalise_email(command["email"]) != normalise_email(c.email):
            c.email = command["email"]
            c.soft_bounce_streak = 0
            c.email_is_actual = True
        if command.get("do_not_use_email") is not None:
            c.do_not_use_email = bool(command["do_not_use_email"])
        if command.get("email_is_actual") is not None:
            c.email_is_actual = bool(command["email_is_actual"])
    elif op == "subscription":
        if command["subscribed"]:
            c.unsubscribed_types = c.unsubscribed_types - {command["email_type"]}
        else:
            c.unsubscribed_types = c.unsubscribed_types | {command["email_type"]}
    return c
