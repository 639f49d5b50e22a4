"""Signals: the immutable facts a recipient's journal holds.

A signal is what a provider (or this service, or the sender) *said*, never what
we decided. Decisions are made by ``domain.fold`` under a ruleset.

Signals are stored as plain JSON-able dicts (``Signal.to_record``) so that a
replay can decode them straight from the event store without building objects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, overload

SYSTEM = "system"  # dispatch outcomes and canonical signals from the sender
PROVIDERS = ("unione", "elasticemail", "sendgrid", "ses", "mailgun", "brevo", "postmark")
SOURCES = PROVIDERS + (SYSTEM,)

CONFIRMATION_CHECKED = "confirmation_checked"

# The provider times we keep: no e-mail event is older than 1970, and the ceiling leaves
# centuries of room for what the fold, correlation and the views add to a time (a time
# near datetime.max would overflow there, long after it was journaled).
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)
# How far a provider's clock may differ from ours (the default of MAX_CLOCK_SKEW_SECONDS): correlation lets an
# email-only event say it happened this long before its sending, and no provider time is trusted later than its
# receipt plus this. Records journaled before the effective time was stored are read with it (the allowance of
# their time), so a replay on any host, under any setting, folds them alike.
CLOCK_SKEW = timedelta(minutes=10)
QUARANTINE_RAW_BYTES = 64 * 1024  # of a quarantined raw text, kept
QUARANTINE_ERROR_CHARS = 1000


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime (naive means UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


@overload
def iso(dt: datetime) -> str: ...
@overload
def iso(dt: None) -> None: ...
def iso(dt: datetime | None) -> str | None:
    return None if dt is None else utc(dt).isoformat()


def parse_iso(value: str | None) -> datetime | None:
    """Re-read a stored time; ``ValueError`` (never ``OverflowError``) for one UTC cannot hold."""
    if value is None:
        return None
    try:
        return utc(datetime.fromisoformat(value))
    except OverflowError:
        raise ValueError(f"time out of range: {value[:40]!r}") from None


def plausible_time(dt: datetime) -> datetime:
    """``dt`` in UTC when it lies in [``EARLIEST_TIME``, ``LATEST_TIME``); ``ValueError`` otherwise."""
    try:
        at = utc(dt)
    except OverflowError:
        raise ValueError("time out of range") from None
    if not EARLIEST_TIME <= at < LATEST_TIME:
        raise ValueError(f"time out of range: {at.isoformat()}")
    return at


def clamped_time(occurred_at: datetime | None, received_at: datetime, allowance: timedelta = CLOCK_SKEW) -> datetime:
    """A signal's effective time: the provider's time, but never later than its receipt plus ``allowance``
    (the receipt itself when the provider gave no time)."""
    latest = received_at + allowance
    if occurred_at is None:
        return received_at
    return occurred_at if occurred_at <= latest else latest


def text_digest(data: str | bytes) -> str:
    """A digest of raw input as received: what a retry of the same input repeats."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()[:32]


def dedup_key(*parts: Any) -> str:
    """A stable dedup key from the parts that identify a provider event."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def key_digest(key: str) -> bytes:
    """A 64-bit digest of a dedup key: how a folded state remembers it."""
    return hashlib.blake2b(key.encode(), digest_size=8).digest()


def normalise_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip().lower()
    return email or None


def mask_email(email: str | None) -> str:
    """For logs: never a full address."""
    if not email or "@" not in email:
        return "?"
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


@dataclass(frozen=True)
class Signal:
    """One fact about a recipient, as received.

    ``fields`` are the provider's status fields the ruleset maps to a response
    (UniOne ``status``/``delivery_status``, Elastic Email ``status``/``category``,
    SendGrid ``event``/``type``; system signals ``kind``).
    """

    key: str
    source: str
    fields: dict[str, str]
    received_at: datetime
    occurred_at: datetime | None = None
    url: str | None = None
    reason: str | None = None
    detail: str | None = None
    user_agent: str | None = None
    machine: bool = False
    raw: Any = None
    # when it counts as having happened: set at ingest (``stamped``) and stored beside ``occurred_at``;
    # None in a record stored before it existed (``effective_time`` applies the rule when read)
    effective_at: datetime | None = None
    # its personal fields were sealed under a key since destroyed (CONTRACT §12): raw, detail and the
    # original URL are gone; never stored, set when a reader opens the journal
    erased: bool = False

    @cached_property
    def key_digest(self) -> bytes:
        """8 bytes that stand for ``key`` in a folded state (see ``domain.fold.SeenKeys``)."""
        return key_digest(self.key)

    @cached_property
    def effective_time(self) -> datetime:
        """The time the fold's windows, first-open times and the timeline use: the stored effective time, or,
        for a record from before it was stored, the same rule with the allowance of that time."""
        if self.effective_at is not None:
            return self.effective_at
        return clamped_time(self.occurred_at, self.received_at)

    def stamped(self, allowance: timedelta) -> Signal:
        """This signal with its effective time fixed at ingest: ``clamped_time`` under ``allowance``."""
        effective = clamped_time(self.occurred_at, self.received_at, allowance)
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return Signal(**{**fields, "effective_at": effective})

    def skew_seconds(self) -> float:
        """The seconds by which the provider's time was clamped (0 when it was trusted as given)."""
        if self.occurred_at is None:
            return 0.0
        return max(0.0, (self.occurred_at - self.effective_time).total_seconds())

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "key": self.key,
            "source": self.source,
            "fields": dict(self.fields),
            "received_at": iso(self.received_at),
            "occurred_at": iso(self.occurred_at),
        }
        if self.effective_at is not None:
            record["effective_at"] = iso(self.effective_at)
        for name in ("url", "reason", "detail", "user_agent", "raw"):
            value = getattr(self, name)
            if value is not None:
                record[name] = value
        if self.machine:
            record["machine"] = True
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Signal:
        return cls(
            key=record["key"],
            source=record["source"],
            fields=dict(record["fields"]),
            received_at=parse_iso(record["received_at"]),  # type: ignore[arg-type]
            occurred_at=parse_iso(record.get("occurred_at")),
            url=record.get("url"),
            reason=record.get("reason"),
            detail=record.get("detail"),
            user_agent=record.get("user_agent"),
            machine=bool(record.get("machine", False)),
            raw=record.get("raw"),
            effective_at=parse_iso(record.get("effective_at")),
            erased=bool(record.get("erased", False)),
        )

    def with_received_at(self, received_at: datetime) -> Signal:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return Signal(**{**fields, "received_at": received_at})


def system_signal(
    kind: str,
    *,
    key: str,
    at: datetime,
    occurred_at: datetime | None = None,
    reason: str | None = None,
    detail: str | None = None,
    url: str | None = None,
    raw: Any = None,
) -> Signal:
    """A signal from this service or the sender: ``kind`` is a response code
    or ``confirmation_checked``."""
    return Signal(
        key=key,
        source=SYSTEM,
        fields={"kind": kind},
        received_at=at,
        occurred_at=occurred_at or at,
        reason=reason,
        detail=detail,
        url=url,
        raw=raw,
    )


@dataclass(frozen=True)
class Correlation:
    """How a provider event names its recipient."""

    mailing_id: str | None = None
    contact_id: str | None = None
    email: str | None = None
    test: bool = False


@dataclass(frozen=True)
class ProviderEvent:
    signal: Signal
    correlation: Correlation


@dataclass(frozen=True)
class Notice:
    """A provider notice about sending in general (UniOne spam blocks, SendGrid account status changes)."""

    provider: str
    key: str
    kind: str
    received_at: datetime
    raw: Any


@dataclass(frozen=True)
class Quarantined:
    """Input we could not understand: kept whole, with the error.

    ``digest`` identifies the raw input (by default a digest of ``raw_text``; a whole
    body's is of its bytes): the same input quarantined again is the same item.
    """

    source: str
    raw_text: str
    error: str
    digest: str = ""

    @property
    def key(self) -> str:
        """The quarantine's dedup key: source and the raw input's digest."""
        return dedup_key("quarantine", self.source, self.digest or text_digest(self.raw_text))

    def kept(self) -> dict[str, Any]:
        """What the quarantine stores: the raw text readable and bounded, and the error.

        A NUL becomes the six characters ``\\u0000`` and a lone surrogate its ``\\udxxx``
        escape (no store, view or client chokes on them); past ``QUARANTINE_RAW_BYTES`` the
        text is cut, and the error says so.
        """
        size = len(self.raw_text.encode("utf-8", "surrogatepass"))
        text = self.raw_text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace")
        error = self.error[:QUARANTINE_ERROR_CHARS]
        truncated = len(text) > QUARANTINE_RAW_BYTES
        if truncated:
            text = text[:QUARANTINE_RAW_BYTES]
            error += f" (raw text truncated: the first {QUARANTINE_RAW_BYTES} of {size} bytes are kept)"
        kept: dict[str, Any] = {"raw": text.decode("utf-8", "ignore"), "error": error}
        if truncated:
            kept.update(truncated=True, raw_bytes=size)
        return kept


@dataclass
class ParsedBatch:
    events: list[ProviderEvent] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
