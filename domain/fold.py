"""The fold (CONTRACT §4): one signal, one recipient state, one ruleset → new state and an explanation.

This is the only place the response rules live. The live projection, the
rebuild, the audit history and the what-if replay all call ``fold``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from domain.catalogue import (
    COUNTED,
    DELIVERED,
    IGNORED,
    NOT_DELIVERED,
    NOT_SENT,
    PREPARING,
    RESPONSES,
    SET,
)
from domain.mappings.target import Target
from domain.rules import Ruleset
from domain.signals import CONFIRMATION_CHECKED, SYSTEM, Signal, key_digest

ENGAGEMENT = ("opened", "opened_machine", "clicked")
_DISPATCH_GROUPS = (PREPARING, NOT_SENT)
_SENT_GROUPS = (DELIVERED, NOT_DELIVERED)
_IMPLYING_OPEN = ("unsubscribed", "spam_complaint")


class SeenKeys:
    """The dedup keys a recipient's journal has folded, kept compact: 8 bytes a key.

    A replay holds one of these per recipient, so its memory grows with the
    signals of each recipient only by 8 bytes a signal (a 64-bit digest of
    the key; a collision is a 1 in 2**64 event).
    """

    __slots__ = ("blob",)

    def __init__(self, blob: bytes = b"") -> None:
        self.blob = blob

    digest = staticmethod(key_digest)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.has_digest(self.digest(key))

    def has_digest(self, d: bytes) -> bool:
        blob = self.blob
        i = blob.find(d)
        while i != -1:
            if i % 8 == 0:
                return True
            i = blob.find(d, i + 1)
        return False

    def add(self, key: str) -> None:
        d = self.digest(key)
        if not self.has_digest(d):
            self.blob += d

    def __iter__(self) -> Iterator[bytes]:
        blob = self.blob
        return (blob[i : i + 8] for i in range(0, len(blob), 8))

    def __len__(self) -> int:
        return len(self.blob) // 8

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeenKeys) and set(self) == set(other)

    def hex(self) -> str:
        return self.blob.hex()

    @classmethod
    def fromhex(cls, text: str) -> SeenKeys:
        return cls(bytes.fromhex(text))


@dataclass(slots=True)
class RecipientState:
    """What a recipient's journal folds to."""

    response: str = "planned"
    reason: str | None = None
    detail: str | None = None
    opens: int = 0
    clicks: int = 0
    clicked_urls: dict[str, int] = field(default_factory=dict)
    sent: bool = False  # the journal holds a sent_to_provider or any provider signal
    sent_at: datetime | None = None  # when *we* recorded sent_to_provider
    # effective times (the provider's, never later than the receipt plus the clock-skew allowance)
    delivered_at: datetime | None = None  # of the first delivery
    first_open_at: datetime | None = None
    first_click_at: datetime | None = None
    updated_at: datetime | None = None  # received_at of the last change
    seen: SeenKeys = field(default_factory=SeenKeys)

    def copy(self) -> RecipientState:
        clone = RecipientState.__new__(RecipientState)
        for name in self.__slots__:
            setattr(clone, name, getattr(self, name))
        clone.clicked_urls = dict(self.clicked_urls)
        clone.seen = SeenKeys(self.seen.blob)  # bytes are immutable: sharing is safe
        return clone

    @property
    def unique_open(self) -> bool:
        """A counted open, or an implied one (a click, unsubscribe or spam complaint)."""
        return self.opens > 0 or self.clicks > 0 or self.response in ("unsubscribed", "spam_complaint")


class Step(NamedTuple):
    """How one signal was folded: ``set`` / ``counted`` / ``ignored`` and why, and the contact effect its
    mapping carries (``unsubscribe``, ``suppress``, ``resubscribe`` or None: CONTRACT §5), whatever it did
    to the response (``domain.contacts`` applies it unless the signal is a duplicate).

    A named tuple: immutable like a frozen dataclass, and built in a third of the time
    (a replay builds two a signal)."""

    maps_to: str | None
    reason: str | None
    effect: str
    why: str | None
    response_after: str
    contact_effect: str | None = None


def fold(
    state: RecipientState,
    signal: Signal,
    rules: Ruleset,
    mailing_start: datetime | None = None,
) -> tuple[RecipientState, Step]:
    """Fold one signal into a recipient's state under ``rules``. ``state`` is not modified."""
    if state.seen.has_digest(signal.key_digest):
        return state, _duplicate(signal, rules, state.response)
    s = state.copy()
    return s, fold_into(s, signal, rules, mailing_start)


def fold_into(
    s: RecipientState,
    signal: Signal,
    rules: Ruleset,
    mailing_start: datetime | None = None,
) -> Step:
    """``fold``, updating ``s`` in place (for replays that own their states): the same rules, no copy."""
    d = signal.key_digest
    if s.seen.has_digest(d):
        return _duplicate(signal, rules, s.response)
    s.seen.blob += d
    return _fold_new(s, signal, rules, mailing_start)


def _duplicate(signal: Signal, rules: Ruleset, response: str) -> Step:
    """A signal already folded: ignored, explained by what its mapping says (its effects were applied once)."""
    if signal.source == SYSTEM and signal.fields.get("kind") == CONFIRMATION_CHECKED:
        return Step(None, None, IGNORED, "duplicate", response)
    target = rules.map(signal.source, signal.fields)
    return Step(target.code, signal.reason or target.reason, IGNORED, "duplicate", response, target.contact_effect)


def _fold_new(s: RecipientState, signal: Signal, rules: Ruleset, mailing_start: datetime | None) -> Step:
    source = signal.source
    if source != SYSTEM:
        s.sent = True
    elif signal.fields.get("kind") == CONFIRMATION_CHECKED:
        return _confirmation_checked(s, signal, rules)

    target = rules.map(source, signal.fields)
    step = _fold_mapped(s, signal, rules, mailing_start, target)
    if target.contact_effect is not None:  # the contact's part, whatever the response did (CONTRACT §5)
        return step._replace(contact_effect=target.contact_effect)
    return step


def _fold_mapped(s: RecipientState, signal: Signal, rules: Ruleset, mailing_start: datetime | None, target: Target) -> Step:
    code = target.code
    if code is None:
        return Step(None, None, IGNORED, "informational", s.response)
    reason = signal.reason or target.reason

    group = RESPONSES[code].group
    if code == "sent_to_provider" or group in _SENT_GROUPS:
        s.sent = True
    if code == "sent_to_provider" and s.sent_at is None:
        s.sent_at = signal.received_at

    if group not in _DISPATCH_GROUPS and _period_closed(s, signal, rules, mailing_start):
        return Step(code, reason, IGNORED, "period_closed", s.response)

    at = signal.effective_time  # the provider's time (signals arrive out of order), never a future one
    if code == "delivered":
        s.delivered_at = _earliest(s.delivered_at, at)

    counted = False
    engagement_why: str | None = None
    if code in ENGAGEMENT:
        if code == "opened" and _machine_open(s, signal, rules):
            code = "opened_machine"
        if rules.is_final(s.response) and RESPONSES[s.response].group in (NOT_SENT, NOT_DELIVERED):
            return Step(code, reason, IGNORED, "not_delivered", s.response)
        if code == "clicked":
            if rules.is_unsubscribe_link(signal.url):
                return Step(code, reason, IGNORED, "unsubscribe_link", s.response)
            if _within(s.delivered_at, signal, rules.machine_click_window_seconds):
                return Step(code, reason, IGNORED, "machine_click", s.response)
            s.clicks += 1
            if signal.url:
                s.clicked_urls[signal.url] = s.clicked_urls.get(signal.url, 0) + 1
            s.first_click_at = _earliest(s.first_click_at, at)
            s.first_open_at = _earliest(s.first_open_at, at)  # a click implies an open
            counted = True
        elif code == "opened" or rules.count_machine_opens:
            s.opens += 1
            s.first_open_at = _earliest(s.first_open_at, at)
            counted = True
        else:
            engagement_why = "machine_open"

    step = _respond(s, signal, rules, code, reason, counted, engagement_why)
    if code in _IMPLYING_OPEN and step.effect == SET:  # the chart of first opens agrees with unique opens
        s.first_open_at = _earliest(s.first_open_at, at)
    return step


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _respond(
    s: RecipientState,
    signal: Signal,
    rules: Ruleset,
    code: str,
    reason: str | None,
    counted: bool,
    engagement_why: str | None,
) -> Step:
    responses = rules.responses  # rules.is_final and rules.priority, read in place (twice a signal in a what-if)
    current = responses[s.response]
    if current.final:
        why = "final"
    else:
        candidate = responses[code]
        if candidate.final or (candidate.priority or 0) > (current.priority or 0):
            s.response, s.reason, s.detail = code, reason, signal.detail
            s.updated_at = signal.received_at
            return Step(code, reason, SET, None, s.response)
        why = "lower_priority"
    if counted:
        s.updated_at = signal.received_at
        return Step(code, reason, COUNTED, why, s.response)
    return Step(code, reason, IGNORED, engagement_why or why, s.response)


def _confirmation_checked(s: RecipientState, signal: Signal, rules: Ruleset) -> Step:
    if RESPONSES[s.response].group != PREPARING or rules.is_final(s.response):
        return Step(None, None, IGNORED, "superseded", s.response)
    at = signal.effective_time
    if s.sent_at is None or at - s.sent_at < timedelta(hours=rules.confirmation_timeout_hours):
        return Step(None, None, IGNORED, "not_due", s.response)
    code = rules.confirmation_timeout_response
    return _respond(s, signal, rules, code, None, False, None)


def _period_closed(s: RecipientState, signal: Signal, rules: Ruleset, mailing_start: datetime | None) -> bool:
    period = rules.statistics_period
    if period is None:
        return False
    anchor = s.sent_at or mailing_start
    # by our clock, not the effective time: a provider time can only be trusted up to the receipt plus the
    # allowance, and an earlier one would let a late event claim it came inside the period
    return anchor is not None and signal.received_at - anchor > period


def _within(delivered_at: datetime | None, signal: Signal, window: int | None) -> bool:
    """Whether ``signal`` came within ``window`` seconds of the delivery, by effective times."""
    if window is None or delivered_at is None or signal.occurred_at is None:
        return False
    return (signal.effective_time - delivered_at).total_seconds() <= window


def _machine_open(s: RecipientState, signal: Signal, rules: Ruleset) -> bool:
    if signal.machine:
        return True
    if not rules.is_machine_user_agent(signal.user_agent):
        return False
    if rules.machine_open_window_seconds is None:
        return True
    return _within(s.delivered_at, signal, rules.machine_open_window_seconds)
