"""Event-sourced aggregates: the journals.

Aggregates record facts and commands only; decisions (responses, flags) are
folded from them under a ruleset by the projections. Ids are deterministic
(uuid5 of natural keys), so any process finds an aggregate from its key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.personal import contact_subject
from domain.signals import CLOCK_SKEW, PROVIDERS, Signal, parse_iso

NAMESPACE = uuid5(NAMESPACE_URL, "https://recipient-responses.invalid/")


@lru_cache(maxsize=65536)
def _id(*parts: str) -> UUID:
    return uuid5(NAMESPACE, "\x1f".join(parts))


def recipient_id(mailing_id: str, contact_id: str) -> UUID:
    return _id("recipient", mailing_id, contact_id)


def mailing_id_of(mailing_id: str) -> UUID:
    return _id("mailing", mailing_id)


def contact_id_of(contact_id: str) -> UUID:
    return _id("contact", contact_id)


def address_id(provider: str, email: str) -> UUID:
    return _id("address", provider, email)


def unmatched_bucket_id(bucket: str) -> UUID:
    return _id("unmatched", bucket)


def side_record_id(key: str) -> UUID:
    return _id("side", key)


def recipient_bucket(mailing_id: str, contact_id: str) -> str:
    return f"recipient:{mailing_id}:{contact_id}"


def email_bucket(provider: str, email: str) -> str:
    return f"email:{provider}:{email}"


class NotLoaded(Exception):
    """A lean aggregate (loaded without its signals) was asked what it was not loaded to answer.

    ``keys``: the dedup keys it would need to know about; None: it needs its whole journal.
    The unit of work retries the command with them loaded."""

    def __init__(self, aggregate_id: UUID, keys: frozenset[str] | None = None):
        super().__init__(f"aggregate {aggregate_id} was loaded without {'its journal' if keys is None else sorted(keys)}")
        self.aggregate_id = aggregate_id
        self.keys = keys


class LeanKeys:
    """Dedup over a journal that is not in memory: the keys stored or recorded so far that the
    loader looked up (``scope``), and those found. A key outside the scope cannot be answered."""

    def __init__(self, stored: set[str], scope: set[str]):
        self.known = set(stored)
        self.scope = set(scope)

    def widen(self, stored: set[str], scope: set[str]) -> None:
        self.known |= stored
        self.scope |= scope

    def holds(self, owner: UUID, key: str) -> bool:
        if key not in self.scope and key not in self.known:
            raise NotLoaded(owner, frozenset([key]))
        return key in self.known

    def add(self, key: str) -> None:
        self.known.add(key)
        self.scope.add(key)


def append_event(aggregate: Aggregate, event_class: Any, **state: Any) -> None:
    """What the library's ``trigger_event`` does for an ``@event`` method, without its generic
    argument handling (the write path's hot spot): the next event in the aggregate's sequence,
    pending. The caller applies the state change itself; the library's ``mutate`` applies the
    same event through the decorated method when the aggregate is rebuilt."""
    new = event_class(
        originator_id=aggregate.id,
        originator_version=aggregate.version + 1,
        timestamp=event_class.create_timestamp(),
        **state,
    )
    aggregate.version = new.originator_version
    aggregate.modified_on = new.timestamp
    aggregate.pending_events.append(new)


class Recipient(Aggregate):
    """One contact in one mailing's audience. Its journal holds the signals.

    Loaded lean for commands (see ``application.persistence.journal_index``): its facts, its version and
    ``lean`` (the looked-up dedup keys) instead of every signal's key."""

    @staticmethod
    def create_id(mailing_id: str, contact_id: str, name: str | None, email: str | None, subject: str | None = None) -> UUID:
        return recipient_id(mailing_id, contact_id)

    @event("Joined")
    def __init__(self, mailing_id: str, contact_id: str, name: str | None, email: str | None, subject: str | None = None):
        """``subject``: whose data key seals the name and address (``domain.personal``); None before sealing existed."""
        self.mailing_id = mailing_id
        self.contact_id = contact_id
        self.name = name
        self.email = email
        self.keys: set[str] = set()
        self.lean: LeanKeys | None = None

    def record(self, signal: Signal) -> bool:
        """Append a signal unless one with the same dedup key is already in the journal."""
        if self.has_signal(signal.key):
            return False
        record = signal.to_record()
        append_event(self, self.SignalRecorded, signal=record, subject=contact_subject(self.contact_id))  # type: ignore[attr-defined]
        self._remember(record["key"])
        return True

    def has_signal(self, key: str) -> bool:
        if self.lean is not None:
            return self.lean.holds(self.id, key)
        return key in self.keys

    def load_lean(self, stored: set[str], scope: set[str]) -> None:
        """Loaded without its signals: dedup answers for ``scope``, of which ``stored`` are in the journal."""
        self.lean = LeanKeys(stored, scope)

    @event("SignalRecorded")
    def _signal_recorded(self, signal: dict[str, Any], subject: str | None = None) -> None:
        self._remember(signal["key"])

    def _remember(self, key: str) -> None:
        if self.lean is not None:
            self.lean.add(key)
        else:
            self.keys.add(key)

    @event("DetailsChanged")
    def change_details(self, name: str | None, email: str | None, subject: str | None = None) -> None:
        self.name = name
        self.email = email


class Mailing(Aggregate):
    @staticmethod
    def create_id(mailing_id: str, **_: Any) -> UUID:
        return mailing_id_of(mailing_id)

    @event("Created")
    def __init__(
        self,
        mailing_id: str,
        name: str,
        category: str,
        email_type: str | None,
        provider: str,
        expires_at: str | None,
        prevent_duplicates: bool,
    ):
        self.mailing_id = mailing_id
        self.name = name
        self.category = category
        self.email_type = email_type
        self.provider = provider
        self.expires_at = expires_at
        self.prevent_duplicates = prevent_duplicates
        self.started_at: str | None = None
        self.stopped_at: str | None = None
        self.waves = 0

    def fields(self) -> dict[str, Any]:
        return {
            "id": self.mailing_id,
            "name": self.name,
            "category": self.category,
            "email_type": self.email_type,
            "provider": self.provider,
            "expires_at": self.expires_at,
            "prevent_duplicates": self.prevent_duplicates,
        }

    def start_dispatch_wave(self, at: str) -> int:
        """Number the next dispatch call's decisions (1, 2, ...); the first wave is the mailing's start."""
        self._dispatch_wave_started(mailing_id=self.mailing_id, at=at, wave=self.waves + 1)
        return self.waves

    @event("DispatchWaveStarted")
    def _dispatch_wave_started(self, mailing_id: str, at: str, wave: int | None = None) -> None:
        self.started_at = self.started_at or at
        self.waves = wave if wave is not None else self.waves + 1  # waves journaled before they were numbered

    @event("Stopped")
    def stop(self, at: str, recipients: int) -> None:
        """Journaled for the audit; the recipients it stopped carry their own ``stopped_manually`` signal."""
        self.stopped_at = at


class Contact(Aggregate):
    """A person. Its journal holds manual commands (flag changes, subscriptions, email changes)."""

    @staticmethod
    def create_id(contact_id: str) -> UUID:
        return contact_id_of(contact_id)

    @event("Registered")
    def __init__(self, contact_id: str):
        self.contact_id = contact_id
        self.email: str | None = None
        self.erased: dict[str, Any] | None = None

    @event("Erased")
    def erase(self, erased_at: str, basis: str, by: str | None, signals: int, mailings: list[str]) -> None:
        """The record of destruction (CONTRACT §12): when, why, by whose token, how much; no personal data."""
        self.erased = {"erased_at": erased_at, "basis": basis, "by": by, "signals": signals, "mailings": list(mailings)}
        self.email = None

    @event("CommandRecorded")
    def record_command(self, command: dict[str, Any], subject: str | None = None) -> None:
        if command.get("op") == "patch" and "email" in command:
            self.email = command["email"]


class AddressIndex(Aggregate):
    """Which recipients were sent to one address through one provider (for email correlation)."""

    @staticmethod
    def create_id(provider: str, email: str, subject: str | None = None, known_as: str | None = None) -> UUID:
        return address_id(provider, known_as or email)

    @event("Opened")
    def __init__(self, provider: str, email: str, subject: str | None = None, known_as: str | None = None):
        """``known_as``: the address's keyed hash, which names the index (CONTRACT §12); None in an index opened
        before, named by the address itself. ``email`` is sealed under ``subject``."""
        self.provider = provider
        self.email = email
        self.recipients: list[tuple[str, str, str | None]] = []

    @event("RecipientSent")
    def add_recipient(self, mailing_id: str, contact_id: str, sent_at: str | None = None) -> None:
        self.recipients.append((mailing_id, contact_id, sent_at))

    def match(
        self, mailing_id: str | None = None, occurred_at: datetime | None = None, skew: timedelta = CLOCK_SKEW
    ) -> tuple[str, str] | None:
        """The recipient an email-only event is about: the most recent one sent to this address
        (within ``mailing_id`` when the event names it) that was sent before the event happened,
        give or take ``skew`` (the MAX_CLOCK_SKEW_SECONDS setting); None when nobody was (the event stays unmatched)."""
        return match_address(self.recipients, mailing_id, occurred_at, skew)


def match_address(
    recipients: list[tuple[str, str, str | None]],
    mailing_id: str | None,
    occurred_at: datetime | None,
    skew: timedelta = CLOCK_SKEW,
) -> tuple[str, str] | None:
    """``AddressIndex.match`` over an index's (mailing, contact, sent_at) entries, in the order they were sent."""
    candidates = [r for r in recipients if (mailing_id is None or r[0] == mailing_id) and sent_before(r[2], occurred_at, skew)]
    return (candidates[-1][0], candidates[-1][1]) if candidates else None


def sent_before(sent_at: str | None, occurred_at: datetime | None, skew: timedelta = CLOCK_SKEW) -> bool:
    """Whether a sending (at ``sent_at``) can be what an event that happened at ``occurred_at`` is about,
    give or take ``skew``."""
    if sent_at is None or occurred_at is None:  # no time to compare: the address decides
        return True
    return parse_iso(sent_at) - skew <= occurred_at  # type: ignore[operator]  # our own time: never out of range


def provider_mismatch(signal: Signal, mailing_provider: str | None) -> bool:
    """A provider's event about a mailing sent through another provider: never that mailing's recipient's.
    The sender's own signals (source ``system``) name no provider."""
    return mailing_provider is not None and signal.source in PROVIDERS and signal.source != mailing_provider


class UnmatchedBucket(Aggregate):
    """Signals that matched no recipient, kept until their recipient appears.

    Loaded lean to park into (``lean``: the looked-up dedup keys, nothing parked in memory);
    claiming from it needs it whole."""

    @staticmethod
    def create_id(bucket: str, subject: str | None = None) -> UUID:
        return unmatched_bucket_id(bucket)

    @event("Opened")
    def __init__(self, bucket: str, subject: str | None = None):
        """``subject``: whose data key seals what is parked here (an address's, a contact's; None: nobody's)."""
        self.bucket = bucket
        self.subject = subject
        self.parked: dict[str, dict[str, Any]] = {}
        self.named_mailing: dict[str, str | None] = {}
        self.claimed: set[str] = set()
        self.lean: LeanKeys | None = None

    def load_lean(self, stored: set[str], scope: set[str]) -> None:
        self.lean = LeanKeys(stored, scope)

    def park(self, signal: Signal, correlation: dict[str, Any]) -> bool:
        if self.lean.holds(self.id, signal.key) if self.lean is not None else signal.key in self.parked:
            return False
        record = signal.to_record()
        subject = getattr(self, "subject", None)  # None: a bucket opened before sealing existed
        append_event(self, self.Parked, signal=record, correlation=correlation, subject=subject)  # type: ignore[attr-defined]
        self._keep(record, correlation)
        return True

    @event("Parked")
    def _parked(self, signal: dict[str, Any], correlation: dict[str, Any], subject: str | None = None) -> None:
        self._keep(signal, correlation)

    def _keep(self, signal: dict[str, Any], correlation: dict[str, Any]) -> None:
        if self.lean is not None:
            self.lean.add(signal["key"])
            return
        self.parked[signal["key"]] = signal
        self.named_mailing[signal["key"]] = correlation.get("mailing_id")

    def unclaimed(self) -> list[Signal]:
        if self.lean is not None:
            raise NotLoaded(self.id)
        return [Signal.from_record(s) for k, s in self.parked.items() if k not in self.claimed]

    def claimable(
        self, mailing_id: str, provider: str | None, sent_at: str | None = None, skew: timedelta = CLOCK_SKEW
    ) -> list[Signal]:
        """The parked signals a recipient of ``mailing_id`` (sent through ``provider``, at ``sent_at`` when
        it claims by address) may take: not another provider's, not naming another mailing, not from before
        its sending (give or take ``skew``)."""
        if self.lean is not None:
            raise NotLoaded(self.id)
        return claimable_signals(self.parked, self.named_mailing, self.claimed, mailing_id, provider, sent_at, skew)

    @event("Claimed")
    def claim(self, keys: list[str], mailing_id: str, contact_id: str) -> None:
        self.claimed.update(keys)


class SideRecord(Aggregate):
    """A kept input that is not a recipient signal: a test send, a provider notice, a quarantined body."""

    @staticmethod
    def create_id(key: str) -> UUID:
        return side_record_id(key)

    @event("Recorded")
    def __init__(self, key: str, kind: str, source: str, received_at: str, payload: dict[str, Any]):
        self.key = key
        self.kind = kind
        self.source = source
        self.received_at = received_at
        self.payload = payload


def claimable_signals(
    parked: dict[str, dict[str, Any]],
    named_mailing: dict[str, str | None],
    claimed: set[str],
    mailing_id: str,
    provider: str | None,
    sent_at: str | None = None,
    skew: timedelta = CLOCK_SKEW,
) -> list[Signal]:
    """``UnmatchedBucket.claimable`` over a bucket's parked records (by key, in the order parked), the mailing
    each named and the keys claimed already."""
    unclaimed = [Signal.from_record(s) for k, s in parked.items() if k not in claimed]
    return [
        s
        for s in unclaimed
        if not provider_mismatch(s, provider)
        and named_mailing.get(s.key) in (None, mailing_id)
        and sent_before(sent_at, s.occurred_at, skew)
    ]


def rules_book_id() -> UUID:
    return _id("rules-book")


def job_id(job: str) -> UUID:
    return _id("job", job)


class RulesBook(Aggregate):
    """Every ruleset version ever defined, in order; versions are never edited in place."""

    @staticmethod
    def create_id() -> UUID:
        return rules_book_id()

    @event("Opened")
    def __init__(self) -> None:
        self.versions: dict[str, dict[str, Any]] = {}

    @event("VersionDefined")
    def define(
        self,
        version: str,
        document: dict[str, Any],
        changes: dict[str, Any],
        based_on: str,
        created_at: str,
        created_by: str | None = None,
    ) -> None:
        self.versions[version] = {
            "version": version,
            "document": document,
            "changes": changes,
            "based_on": based_on,
            "created_at": created_at,
            "created_by": created_by,
        }


class Job(Aggregate):
    """A long job, executed by the projection process: a rebuild under a ruleset version (kind
    "activate"), or a what-if replay (kind "what-if": ``request`` holds what was asked, and the
    answer is kept as ``result``; identical what-ifs share a job: ``job`` is then derived from the
    request's identity, see ``application.rules``)."""

    @staticmethod
    def create_id(
        job: str,
        kind: str,
        rules_version: str,
        requested_at: str,
        request: dict[str, Any] | None = None,
        subject: str | None = None,
    ) -> UUID:
        return job_id(job)

    @event("Requested")
    def __init__(
        self,
        job: str,
        kind: str,
        rules_version: str,
        requested_at: str,
        request: dict[str, Any] | None = None,
        subject: str | None = None,
    ):
        """``subject``: whose key seals the request's personal fields (a bulk erasure's addresses: the job's own
        key, destroyed once it has run)."""
        self.subject = subject
        self.job = job
        self.kind = kind
        self.rules_version = rules_version
        self.requested_at = requested_at
        self.request = request
        self.status = "running"
        self.progress = 0.0
        self.error: str | None = None
        self.result: dict[str, Any] | None = None
        self.starts = 0  # times a projection process began running it (more than one: it was interrupted)

    @event("Started")
    def started(self, started_at: str) -> None:
        """A projection process begins running it (a restart that finds it still running knows it was interrupted)."""
        self.starts = getattr(self, "starts", 0) + 1

    @event("Progressed")
    def progressed(self, progress: float) -> None:
        self.progress = progress

    @event("Finished")
    def finish(self, status: str, error: str | None, finished_at: str) -> None:
        self.status = status
        self.error = error
        if status == "done":
            self.progress = 1.0

    @event("Answered")
    def answered(self, result: dict[str, Any], finished_at: str) -> None:
        """Done, with its answer (a what-if's result)."""
        self.status = "done"
        self.progress = 1.0
        self.error = None
        self.result = result

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.job,
            "kind": self.kind,
            "version": self.rules_version,
            "status": self.status,
            "progress": round(self.progress, 4),
            "error": self.error,
            **({"result": self.result} if getattr(self, "result", None) is not None else {}),
        }
