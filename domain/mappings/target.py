"""What a provider status maps to (CONTRACT §6, §7): a response, its reason, and an optional contact effect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# A mapping may reach the contact beyond what its response does (CONTRACT §5): "unsubscribe" (as an
# unsubscribe from the mailing's email type, or from all under ``unsubscribe_from_all``), "suppress"
# (do not use the address again) or "resubscribe" (the mailing's email type is no longer unsubscribed:
# SendGrid's group_resubscribe; never a do-not-use).
UNSUBSCRIBE, SUPPRESS, RESUBSCRIBE = "unsubscribe", "suppress", "resubscribe"
CONTACT_EFFECTS: tuple[str, ...] = (UNSUBSCRIBE, SUPPRESS, RESUBSCRIBE)


@dataclass(frozen=True, slots=True)
class Target:
    """A response code (or None: informational), a reason, and a contact effect (or None).

    An informational target may still carry a contact effect: the response stays, the contact moves."""

    code: str | None
    reason: str | None = None
    contact_effect: str | None = None

    def to_document(self) -> Any:
        if self.contact_effect is not None:
            return {"code": self.code, "reason": self.reason, "contact_effect": self.contact_effect}
        if self.code is None:
            return None
        if self.reason is None:
            return self.code
        return {"code": self.code, "reason": self.reason}


def t(code: str | None, reason: str | None = None, contact_effect: str | None = None) -> Target:
    """Short form for mapping tables."""
    return Target(code, reason, contact_effect)


def many(keys: str, target: Target, field_name: str) -> dict[str, Target]:
    """``field:key`` → ``target`` for every space-separated key (a key ending in ``*`` is a glob)."""
    return {f"{field_name}:{k}": target for k in keys.split()}
