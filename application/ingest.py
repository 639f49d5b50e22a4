"""Provider signals: parse → plan → write.

The hot path builds no aggregate and no library event object. A batch is planned from one read of
the journal (``JournalIndex.lean_read``: the touched aggregates' versions, their few non-signal
events, and which of the batch's dedup keys they already hold) and a per-process cache of what never
changes of a mailing (provider, category, email type). The plan (``plan_batch``, pure) correlates
every event, decides duplicates, and lays out the new rows in the library's exact stored format: the
state dict its mapper would store, dumped once by the application's transcoder. A ``SignalWriter``
stores them with their dedup digests in one transaction.

When the plan finds it needs more than was read (a recipient matched through an address index this
very batch updated, a bucket a claim must read whole), it says so (``NeedMore``) and is made again
from a fresh read; when another writer stored the same aggregate version first, the write raises the
library's ``IntegrityError`` and the batch is planned again. Either way nothing was stored.

The rows, their versions and their order (grouped by aggregate, in the order the aggregate-loading
write path of issue 14 first touched each aggregate) are those that path wrote: checked against a
database it wrote (tests/integration/test_stored_format.py).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from application.persistence import JournalIndex, SignalWriter, StoredRow
from application.persistence.writer import SignalKey
from domain.aggregates import (
    AddressIndex,
    Mailing,
    Recipient,
    SideRecord,
    UnmatchedBucket,
    address_id,
    claimable_signals,
    email_bucket,
    mailing_id_of,
    match_address,
    provider_mismatch,
    recipient_bucket,
    recipient_id,
    side_record_id,
    unmatched_bucket_id,
)
from domain.personal import address_subject, contact_subject
from domain.signals import SYSTEM, ParsedBatch, ProviderEvent, Signal, clamped_time, iso, normalise_email

log = logging.getLogger("responses.ingest")

SIGNAL_RECORDED = get_topic(Recipient.SignalRecorded)  # type: ignore[attr-defined]
PARKED = get_topic(UnmatchedBucket.Parked)  # type: ignore[attr-defined]
CLAIMED = get_topic(UnmatchedBucket.Claimed)  # type: ignore[attr-defined]
BUCKET_OPENED = get_topic(UnmatchedBucket.Opened)  # type: ignore[attr-defined]
INDEX_OPENED = get_topic(AddressIndex.Opened)  # type: ignore[attr-defined]
RECIPIENT_SENT = get_topic(AddressIndex.RecipientSent)  # type: ignore[attr-defined]
SIDE_RECORDED = get_topic(SideRecord.Recorded)  # type: ignore[attr-defined]
MAILING_CREATED = get_topic(Mailing.Created)
RECIPIENT_JOINED = get_topic(Recipient.Joined)  # type: ignore[attr-defined]
DETAILS_CHANGED = get_topic(Recipient.DetailsChanged)  # type: ignore[attr-defined]
BUCKET = get_topic(UnmatchedBucket)
ADDRESS_INDEX = get_topic(AddressIndex)
SIDE_RECORD = get_topic(SideRecord)
NOWHERE = "nowhere"  # the bucket of events that name no one and no address


@dataclass
class IngestCounts:
    accepted: int = 0
    duplicates: int = 0
    unmatched: int = 0
    quarantined: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# ---- what never changes of a mailing, cached per process ------------------------------------------


@dataclass(frozen=True)
class MailingFacts:
    """A mailing's fields that no command changes (``create_mailing`` refuses other fields for an existing id).
    Whether it is stopped or expired can change, and is never cached; no ingest decision reads either."""

    provider: str
    category: str
    email_type: str | None


class MailingCache:
    """Per process: every worker on every host learns the same immutable facts, so none can be stale."""

    def __init__(self) -> None:
        self._facts: dict[uuid.UUID, MailingFacts] = {}

    def get(self, oid: uuid.UUID) -> MailingFacts | None:
        return self._facts.get(oid)

    def learn(self, oid: uuid.UUID, created: dict[str, Any]) -> None:
        self._facts[oid] = MailingFacts(created["provider"], created["category"], created.get("email_type"))


# ---- reads and what a plan wants read --------------------------------------------------------------


@dataclass
class Wants:
    """What to read for a plan: aggregates with the dedup keys to look up (``lean``), buckets read whole,
    and the buckets the aggregate-loading path would have loaded whole first (``first``: row order only)."""

    lean: dict[uuid.UUID, set[str]] = field(default_factory=dict)
    whole: set[uuid.UUID] = field(default_factory=set)
    first: set[uuid.UUID] = field(default_factory=set)
    facts: set[uuid.UUID] = field(default_factory=set)  # whose non-signal events to read (a recipient's only when needed)

    def add(self, oid: uuid.UUID, keys: Iterable[str] = ()) -> None:
        self.lean.setdefault(oid, set()).update(keys)

    def merge(self, other: Wants) -> None:
        for oid, keys in other.lean.items():
            self.add(oid, keys)
        self.whole |= other.whole
        self.first |= other.first
        self.facts |= other.facts


class NeedMore(Exception):
    """The plan needs what was not read: read it too, and plan again."""

    def __init__(self, wants: Wants):
        super().__init__("the plan needs more of the journal")
        self.wants = wants


@dataclass
class Reads:
    """One read of the journal for a plan."""

    versions: dict[uuid.UUID, int]  # the aggregates that exist
    facts: dict[uuid.UUID, list[tuple[str, dict[str, Any]]]]  # their non-signal events (topic, state), in order
    stored: dict[uuid.UUID, set[str]]  # which of the looked-up keys their journals hold
    wants: Wants  # what was read
    whole: dict[uuid.UUID, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)  # buckets read whole


def read(
    index: JournalIndex,
    wants: Wants,
    mailings: MailingCache,
    open_states: Callable[[Iterable[dict[str, Any]]], None] | None = None,
) -> Reads:
    """The journal as a plan needs it: one statement (the digest hits checked by one more), plus the
    buckets a claim reads whole, if any. Mailings read are remembered in ``mailings``; sealed personal
    fields are opened by ``open_states`` (an address to index, signals a claim moves)."""
    versions, stored_facts, stored = index.lean_read(wants.lean, wants.facts)
    facts = {oid: [(e.topic, orjson.loads(e.state)) for e in events] for oid, events in stored_facts.items()}
    whole = {}
    if wants.whole:
        whole = {oid: [(e.topic, orjson.loads(e.state)) for e in events] for oid, events in index.rows(wants.whole).items()}
    if open_states is not None:
        open_states(state for part in (facts, whole) for events in part.values() for _, state in events)
    for oid, events in facts.items():
        if events and events[0][0] == MAILING_CREATED:
            mailings.learn(oid, events[0][1])
    return Reads(versions, facts, stored, wants, whole)


class Target(NamedTuple):
    """Whom an event names, worked out once a batch: a test send's side record; a mailing's recipient;
    an address (the index it is looked up in, the bucket it parks in); or nowhere."""

    test: bool
    named: bool
    loaded: uuid.UUID | None  # the side record, mailing or address index the old path loaded whole first
    lean: uuid.UUID | None  # the recipient or bucket it loaded lean
    address: str | None


def targets(batch: ParsedBatch, identity: Callable[[str], str] | None = None) -> list[Target]:
    """Each event's ``Target``, in the batch's order. An address is known by its ``identity`` (the keyed hash
    of ``RESPONSES_ADDRESS_KEY``: the ids of its index and bucket never hold the clear address)."""
    out = []
    new = tuple.__new__  # a NamedTuple's own __new__ is a Python call: this runs once an event
    for event in batch.events:
        c, signal = event.correlation, event.signal
        if c.test:
            out.append(Target(True, False, side_record_id(f"test:{signal.key}"), None, None))
        elif c.mailing_id and c.contact_id:
            out.append(new(Target, (False, True, mailing_id_of(c.mailing_id), recipient_id(c.mailing_id, c.contact_id), None)))
        elif (address := normalise_email(c.email)) is not None:
            known_as = identity(address) if identity is not None else address
            out.append(
                Target(
                    False,
                    False,
                    address_id(signal.source, known_as),
                    unmatched_bucket_id(email_bucket(signal.source, known_as)),
                    known_as,
                )
            )
        else:
            out.append(Target(False, False, None, unmatched_bucket_id(NOWHERE), None))
    return out


def first_wants(batch: ParsedBatch, aimed: list[Target], mailings: MailingCache, loaded: list[uuid.UUID] | None = None) -> Wants:
    """What a batch will read before correlating: its side records, the mailings not cached yet, the
    address indexes of email-only events, and the recipients and buckets with the keys each may hold.
    ``loaded``: the batch's ``stage_a``, when worked out already."""
    wants = Wants()
    for oid in loaded if loaded is not None else stage_a(batch, aimed):
        if mailings.get(oid) is None:
            wants.lean.setdefault(oid, set())
            wants.facts.add(oid)  # a mailing's fields, an address index's entries, a side record (a few, small)
    keys: dict[int, tuple[uuid.UUID, set[str]]] = {}  # by the id's integer: a UUID's hash is a Python call
    for event, target in zip(batch.events, aimed):
        lean = target.lean
        if lean is not None:
            entry = keys.get(lean.int)
            if entry is None:
                keys[lean.int] = (lean, {event.signal.key})
            else:
                entry[1].add(event.signal.key)
    for oid, found in keys.values():  # in the order first named, after the aggregates above
        wants.lean.setdefault(oid, set()).update(found)
    return wants


def stage_a(batch: ParsedBatch, aimed: list[Target]) -> list[uuid.UUID]:
    """The aggregates the old write path loaded whole first, in its order: per event its side record,
    mailing or address index; then the notices' and quarantined items' side records."""
    ids = [t.loaded for t in aimed if t.loaded is not None]
    ids.extend(side_record_id(f"notice:{n.key}") for n in batch.notices)
    ids.extend(side_record_id(f"quarantine:{q.key}") for q in batch.quarantined)
    return distinct(ids)


def distinct(ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """``ids`` without repeats, in the order first named. A batch names the same few ids (cached: the same
    objects) over and over: those repeats go by identity, in C, before the ``UUID`` hashes (a Python call each)."""
    return list(dict.fromkeys(dict(zip(map(id, ids), ids)).values()))


class Records:
    """``Signal.to_record`` for a batch's signals, with each distinct time written once (a batch's signals
    share their receipt time, and most an effective time equal to the provider's)."""

    def __init__(self) -> None:
        self.times: dict[datetime, str | None] = {}

    def iso(self, at: datetime | None) -> str | None:
        if at is None:
            return None
        text = self.times.get(at)
        if text is None:
            text = self.times[at] = iso(at)
        return text

    def of(self, signal: Signal, allowance: timedelta | None = None) -> dict[str, Any]:
        """Exactly ``signal.to_record()``; with an ``allowance``, exactly ``signal.stamped(allowance).to_record()``
        (a signal as received is stamped with its effective time on the way in, without a copy of it)."""
        times = self.times
        received, occurred = signal.received_at, signal.occurred_at
        received_text = times.get(received)
        if received_text is None:
            received_text = self.iso(received)
        occurred_text = times.get(occurred) if occurred is not None else None
        if occurred_text is None and occurred is not None:
            occurred_text = self.iso(occurred)
        record: dict[str, Any] = {
            "key": signal.key,
            "source": signal.source,
            "fields": dict(signal.fields),
            "received_at": received_text,
            "occurred_at": occurred_text,
        }
        if allowance is None:
            effective = signal.effective_at
        elif occurred is None:
            effective = received
        else:  # clamped_time, written out
            latest = received + allowance
            effective = occurred if occurred <= latest else latest
        if effective is not None:
            record["effective_at"] = occurred_text if effective is occurred else self.iso(effective)
        if signal.url is not None:
            record["url"] = signal.url
        if signal.reason is not None:
            record["reason"] = signal.reason
        if signal.detail is not None:
            record["detail"] = signal.detail
        if signal.user_agent is not None:
            record["user_agent"] = signal.user_agent
        if signal.raw is not None:
            record["raw"] = signal.raw
        if signal.machine:
            record["machine"] = True
        return record


# ---- the plan --------------------------------------------------------------------------------------


@dataclass
class Plan:
    rows: list[StoredRow]
    signals: list[SignalKey]  # the stored signals' (aggregate, version, key): their dedup digests
    counts: IngestCounts


@dataclass
class _Bucket:
    """A bucket read whole: what a claim takes from."""

    parked: dict[str, dict[str, Any]] = field(default_factory=dict)
    named_mailing: dict[str, str | None] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)


class _Planner:
    """One batch planned over one ``Reads``: the aggregates' versions and dedup answers as the batch changes them.

    Keyed by each id's 128-bit integer, not the ``UUID`` (whose hash is a Python call: a dozen a signal)."""

    def __init__(
        self,
        reads: Reads,
        mailings: MailingCache,
        skew: timedelta,
        timestamp: dict[str, str],
        encode: Callable[[Any], bytes],
        address_identity: Callable[[str], str] | None = None,
    ):
        self.reads = reads
        self.address_identity = address_identity  # an address's keyed hash (None: the address itself, unsealed)
        self.contact_of: dict[int, str] = {}  # a recipient's contact, as correlation learned it: whose key seals its signals
        self.mailings = mailings
        self.skew = skew
        self.timestamp = timestamp
        self.encode = encode
        self.asked = {oid.int: keys for oid, keys in reads.wants.lean.items()}  # read, with the keys looked up
        self.first = {oid.int for oid in reads.wants.first}
        self.read_whole = {oid.int for oid in reads.wants.whole}
        self.ids: dict[int, uuid.UUID] = {}
        self.order: dict[int, None] = {}
        self.new: dict[int, list[tuple[str, dict[str, Any], str | None]]] = {}
        self.version = {oid.int: v for oid, v in reads.versions.items()}
        self.known = {oid.int: set(keys) for oid, keys in reads.stored.items()}
        self.facts_of = {oid.int: events for oid, events in reads.facts.items()}
        self.whole_of = {oid.int: events for oid, events in reads.whole.items()}
        self.indexes: dict[int, list[tuple[str, str, str | None]]] = {}
        self.emails: dict[int, str | None] = {}
        self.buckets: dict[int, _Bucket] = {}
        self.lean_loaded: set[int] = set()  # buckets the old path had loaded lean (a claim reloaded them whole)
        self.mailing_facts: dict[str, MailingFacts | None] = {}
        self.records = Records()

    # -- the order the old path first touched aggregates in (the rows' order) --

    def touch(self, oid: uuid.UUID) -> int:
        i = oid.int
        if i not in self.order:
            self.order[i] = None
            self.ids[i] = oid
        return i

    def touch_group(self, ids: Sequence[uuid.UUID]) -> None:
        """A lean prefetch of the old path: the ids it had learned to load whole first, then the rest."""
        fresh = [oid for oid in distinct(ids) if oid.int not in self.order]
        if self.first:
            fresh = [oid for oid in fresh if oid.int in self.first] + [oid for oid in fresh if oid.int not in self.first]
        for oid in fresh:
            i = self.touch(oid)
            if i not in self.first:
                self.lean_loaded.add(i)

    # -- reading what was read --

    def exists(self, oid: uuid.UUID) -> bool:
        i = oid.int
        if self.version.get(i):
            return True
        if i not in self.asked and i not in self.new:
            raise NeedMore(Wants(lean={oid: set()}))
        return False

    def holds(self, oid: uuid.UUID, key: str) -> bool:
        """Whether the aggregate's journal (stored or planned) holds the dedup key."""
        i = oid.int
        if self.buckets and i in self.buckets:
            return key in self.buckets[i].parked
        known = self.known.get(i)
        if known is not None and key in known:
            return True
        if key not in self.asked.get(i, ()):
            raise NeedMore(Wants(lean={oid: {key}}))
        return False

    def mailing(self, mailing_id: str) -> MailingFacts | None:
        if mailing_id in self.mailing_facts:
            return self.mailing_facts[mailing_id]
        oid = mailing_id_of(mailing_id)
        self.touch(oid)
        facts = self.mailings.get(oid)
        if facts is None and oid not in self.reads.wants.facts:
            raise NeedMore(Wants(lean={oid: set()}, facts={oid}))
        self.mailing_facts[mailing_id] = facts
        return facts

    def facts(self, oid: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
        if oid not in self.reads.wants.facts:
            raise NeedMore(Wants(lean={oid: set()}, facts={oid}))
        return self.facts_of.get(oid.int, [])

    def index(self, oid: uuid.UUID) -> list[tuple[str, str, str | None]]:
        i = oid.int
        if i not in self.indexes:
            self.exists(oid)
            self.indexes[i] = [
                (s["mailing_id"], s["contact_id"], s.get("sent_at")) for t, s in self.facts(oid) if t == RECIPIENT_SENT
            ]
        return self.indexes[i]

    def email_of(self, oid: uuid.UUID) -> str | None:
        i = oid.int
        if i not in self.emails:
            email = None
            for topic, state in self.facts(oid):
                if topic in (RECIPIENT_JOINED, DETAILS_CHANGED):
                    email = state["email"]
            self.emails[i] = email
        return self.emails[i]

    # -- appending --

    def append(self, oid: uuid.UUID, topic: str, state: dict[str, Any], key: str | None = None) -> None:
        """The next event of the aggregate: ``state`` as the library stores it, after the event's timestamp."""
        self.append_stamped(oid, topic, {"timestamp": self.timestamp} | state, key)

    def append_stamped(self, oid: uuid.UUID, topic: str, state: dict[str, Any], key: str | None = None) -> None:
        """``append`` of a state that starts with the event's timestamp already."""
        i = self.touch(oid)
        planned = self.new.get(i)
        if planned is None:
            planned = self.new[i] = []
        planned.append((topic, state, key))
        self.version[i] = self.version.get(i, 0) + 1
        if key is not None:
            known = self.known.get(i)
            if known is None:
                known = self.known[i] = set()
            known.add(key)

    def record(self, rid: uuid.UUID, record: dict[str, Any]) -> bool:
        """``Recipient.record``: append unless its journal holds the key. (``holds`` and ``append``, written out:
        this runs once a signal; a recipient is never a bucket read whole.)"""
        key = record["key"]
        i = rid.int
        known = self.known.get(i)
        if known is not None and key in known:
            return False
        if key not in self.asked.get(i, ()):
            raise NeedMore(Wants(lean={rid: {key}}))
        contact = self.contact_of.get(i)
        state: dict[str, Any]
        if contact is None:
            state = {"timestamp": self.timestamp, "signal": record}
        else:
            state = {"timestamp": self.timestamp, "signal": record, "subject": contact_subject(contact)}
        if i not in self.order:
            self.order[i] = None
            self.ids[i] = rid
        planned = self.new.get(i)
        if planned is None:
            self.new[i] = [(SIGNAL_RECORDED, state, key)]
        else:
            planned.append((SIGNAL_RECORDED, state, key))
        self.version[i] = self.version.get(i, 0) + 1
        if known is None:
            self.known[i] = {key}
        else:
            known.add(key)
        return True

    def keep_side(self, key: str, kind: str, source: str, received_at: str | None, payload: dict[str, Any]) -> bool:
        oid = side_record_id(key)
        self.touch(oid)
        if self.exists(oid):
            return False
        self.append(
            oid,
            SIDE_RECORDED,
            {
                "originator_topic": SIDE_RECORD,
                "key": key,
                "kind": kind,
                "source": source,
                "received_at": received_at,
                "payload": payload,
            },
        )
        return True

    def bucket_subject(self, name: str, correlation: dict[str, Any]) -> dict[str, str]:
        """Whose key seals what parks in a bucket: the contact a recipient bucket names, the address of an
        address bucket; nobody's for the bucket of events naming no one."""
        if name.startswith("recipient:") and correlation.get("contact_id"):
            return {"subject": contact_subject(str(correlation["contact_id"]))}
        if name.startswith("email:") and self.address_identity is not None:  # named by the address's identity
            return {"subject": address_subject(name.split(":", 2)[2])}
        return {}

    def park(self, name: str, signal: Signal, correlation: dict[str, Any]) -> bool:
        oid = unmatched_bucket_id(name)
        i = self.touch(oid)
        sealing = self.bucket_subject(name, correlation)
        if not self.exists(oid):
            self.append(oid, BUCKET_OPENED, {"originator_topic": BUCKET, "bucket": name, **sealing})
            self.buckets[i] = _Bucket()  # new: whole from its start
        if self.holds(oid, signal.key):
            return False
        record = self.records.of(signal, self.skew)
        self.append(oid, PARKED, {"signal": record, "correlation": correlation, **sealing}, signal.key)
        if i in self.buckets:
            self.buckets[i].parked[signal.key] = record
            self.buckets[i].named_mailing[signal.key] = correlation.get("mailing_id")
        return True

    # -- the use case's steps, as the aggregates decided them --

    def event(self, event: ProviderEvent, target: Target) -> str:
        signal, corr = event.signal, event.correlation
        if target.test:
            stored = self.keep_side(
                f"test:{signal.key}",
                "test_send",
                signal.source,
                iso(signal.received_at),
                {
                    "mailing_id": corr.mailing_id,
                    "contact_id": corr.contact_id,
                    "email": corr.email,
                    "signal": self.records.of(signal, self.skew),
                },
            )
            return "accepted" if stored else "duplicates"
        rid, bucket = self.correlate(signal, corr.mailing_id, corr.contact_id, target)
        if rid is not None:
            if not self.record(rid, self.records.of(signal, self.skew)):
                return "duplicates"
            if signal.source == SYSTEM and signal.fields.get("kind") == "sent_to_provider":
                self.sent_by_sender(rid, signal)
            return "accepted"
        parked = self.park(bucket, signal, {"mailing_id": corr.mailing_id, "contact_id": corr.contact_id, "email": corr.email})
        return "unmatched" if parked else "duplicates"

    def correlate(
        self, signal: Signal, mailing_id: str | None, contact_id: str | None, target: Target
    ) -> tuple[uuid.UUID | None, str]:
        """The recipient (if any) and the bucket a signal parks in otherwise. Metadata first; failing that, the
        address among recipients sent through that provider (of the mailing the event names, if it names one),
        most recent first, sent before the event.

        A provider's event about a mailing sent through another provider matches nobody: kept as
        unmatched (``provider_mismatch``), and never claimed by that recipient later."""
        if target.named:
            assert mailing_id is not None and contact_id is not None and target.lean is not None
            mailing = self.mailing(mailing_id)
            if mailing is not None and provider_mismatch(signal, mailing.provider):
                return None, recipient_bucket(mailing_id, contact_id)
            lean = target.lean
            self.contact_of[lean.int] = contact_id
            if self.exists(lean):
                return lean, ""  # matched: parks nowhere
            return None, recipient_bucket(mailing_id, contact_id)
        if target.address is None:
            return None, NOWHERE
        index = target.loaded
        assert index is not None
        self.touch(index)
        match = match_address(self.index(index), mailing_id, signal.occurred_at, self.skew) if self.exists(index) else None
        if match is not None:
            rid = recipient_id(*match)
            self.contact_of[rid.int] = match[1]
            self.touch(rid)
            return (rid if self.exists(rid) else None), email_bucket(signal.source, target.address)
        return None, email_bucket(signal.source, target.address)

    def sent_by_sender(self, rid: uuid.UUID, signal: Signal) -> None:
        """A sender that dispatches itself reports sent_to_provider: email-only events can match it from now on."""
        mailing_id, contact_id = self.recipient_names(rid)
        address = normalise_email(self.email_of(rid))
        mailing = self.mailing(mailing_id)
        if address is not None and mailing is not None:
            self.index_address(
                mailing.provider,
                address,
                mailing_id,
                contact_id,
                rid,
                clamped_time(signal.occurred_at, signal.received_at, self.skew),
            )

    def recipient_names(self, rid: uuid.UUID) -> tuple[str, str]:
        joined = next(s for t, s in self.facts(rid) if t == RECIPIENT_JOINED)
        return joined["mailing_id"], joined["contact_id"]

    def index_address(self, provider: str, address: str, mailing_id: str, contact_id: str, rid: uuid.UUID, at: datetime) -> None:
        known_as = self.address_identity(address) if self.address_identity is not None else address
        oid = address_id(provider, known_as)
        self.touch(oid)
        entries = self.index(oid)
        if not self.exists(oid):
            named = {"subject": address_subject(known_as), "known_as": known_as} if self.address_identity is not None else {}
            self.append(oid, INDEX_OPENED, {"originator_topic": ADDRESS_INDEX, "provider": provider, "email": address, **named})
        sent_at = iso(at)
        self.append(oid, RECIPIENT_SENT, {"mailing_id": mailing_id, "contact_id": contact_id, "sent_at": sent_at})
        entries.append((mailing_id, contact_id, sent_at))
        self.claim(email_bucket(provider, known_as), rid, mailing_id, contact_id, provider, sent_at)

    def claim(self, name: str, rid: uuid.UUID, mailing_id: str, contact_id: str, provider: str, sent_at: str | None) -> None:
        """Re-match: the recipient takes the signals parked for it (``UnmatchedBucket.claimable``)."""
        oid = unmatched_bucket_id(name)
        bucket = self.whole_bucket(oid)
        if bucket is None:
            return
        signals = claimable_signals(bucket.parked, bucket.named_mailing, bucket.claimed, mailing_id, provider, sent_at, self.skew)
        if not signals:
            return
        missing = {
            s.key for s in signals if s.key not in self.known.get(rid.int, set()) and s.key not in self.asked.get(rid.int, ())
        }
        if missing:
            raise NeedMore(Wants(lean={rid: missing}))
        self.contact_of[rid.int] = contact_id
        for signal in sorted(signals, key=lambda s: s.received_at):
            self.record(rid, self.records.of(signal))  # keeps its original received_at
        keys = [s.key for s in signals]
        self.append(oid, CLAIMED, {"keys": keys, "mailing_id": mailing_id, "contact_id": contact_id})
        bucket.claimed.update(keys)

    def whole_bucket(self, oid: uuid.UUID) -> _Bucket | None:
        """The bucket with every parked signal (the old path's ``get_whole``, with its loading order)."""
        i = oid.int
        if i in self.buckets:
            return self.buckets[i]
        if i in self.order and i in self.asked and not self.exists(oid):
            return None  # loaded, and not there
        if i not in self.read_whole:
            if i in self.new:  # parked into in this batch while loaded lean: the old path loaded it whole first
                raise NeedMore(Wants(whole={oid}, first={oid}))
            raise NeedMore(Wants(lean={oid: set()}, whole={oid}))
        if i in self.lean_loaded and i not in self.new:  # reloaded whole: the old path moved it to the end
            del self.order[i]
        self.touch(oid)
        if not self.exists(oid):
            return None
        self.buckets[i] = bucket = _Bucket()
        stored = self.whole_of.get(i, [])
        planned = [(topic, state) for topic, state, _ in self.new.get(i, [])]
        for topic, state in stored + planned:
            if topic == PARKED:
                bucket.parked[state["signal"]["key"]] = state["signal"]
                bucket.named_mailing[state["signal"]["key"]] = state["correlation"].get("mailing_id")
            elif topic == CLAIMED:
                bucket.claimed.update(state["keys"])
        return bucket

    def rows(self) -> tuple[list[StoredRow], list[SignalKey]]:
        rows: list[StoredRow] = []
        signals: list[SignalKey] = []
        encode, new = self.encode, tuple.__new__  # (a NamedTuple's own __new__ is a Python call)
        for i in self.order:
            events = self.new.get(i)
            if not events:
                continue
            oid = self.ids[i]
            version = self.version[i] - len(events)
            for topic, state, key in events:
                version += 1
                rows.append(new(StoredRow, (oid, version, topic, encode(state))))
                if key is not None and topic in (SIGNAL_RECORDED, PARKED):
                    signals.append((oid, version, key))
        return rows, signals


def plan_batch(
    batch: ParsedBatch,
    reads: Reads,
    mailings: MailingCache,
    skew: timedelta,
    now: datetime,
    timestamp: datetime,
    encode: Callable[[Any], bytes],
    aimed: list[Target] | None = None,
    loaded: list[uuid.UUID] | None = None,
    address_identity: Callable[[str], str] | None = None,
) -> Plan:
    """The rows a (stamped) batch appends and what it counts, decided over ``reads``: what the aggregates'
    methods would have decided (``NeedMore`` when ``reads`` lacks something). ``now``: the receipt time of
    quarantined items; ``timestamp``: the new events' (the library's ``create_timestamp``); ``aimed`` and
    ``loaded``: the batch's ``targets`` and ``stage_a``, when worked out already."""
    planner = _Planner(
        reads, mailings, skew, {"_type_": "datetime_iso", "_data_": timestamp.isoformat()}, encode, address_identity
    )
    aimed = aimed if aimed is not None else targets(batch, address_identity)
    for oid in loaded if loaded is not None else stage_a(batch, aimed):
        planner.touch(oid)
    lean = [t.lean for t in aimed if t.lean is not None]  # the old path's lean prefetch: recipients and buckets,
    for event, target in zip(batch.events, aimed):  # then the recipients address indexes point at
        if target.address is not None and target.loaded is not None:
            c = event.correlation
            index = target.loaded
            match = (
                match_address(planner.index(index), c.mailing_id, event.signal.occurred_at, skew)
                if planner.exists(index)
                else None
            )
            if match is not None:
                lean.append(recipient_id(*match))
    absent = {oid.int for oid in distinct(lean) if not planner.exists(oid)}
    planner.touch_group(lean)
    parked = [  # the buckets of recipients not (yet) in an audience
        unmatched_bucket_id(recipient_bucket(e.correlation.mailing_id, e.correlation.contact_id))  # type: ignore[arg-type]
        for e, t in zip(batch.events, aimed)
        if t.named and t.lean.int in absent  # type: ignore[union-attr]
    ]
    planner.touch_group(parked)
    outcomes = dict.fromkeys(("accepted", "duplicates", "unmatched"), 0)
    event_of = planner.event
    for event, target in zip(batch.events, aimed):
        outcomes[event_of(event, target)] += 1
    counts = IngestCounts(**outcomes)
    for notice in batch.notices:
        if planner.keep_side(
            f"notice:{notice.key}", "notice", notice.provider, iso(notice.received_at), {"kind": notice.kind, "raw": notice.raw}
        ):
            counts.accepted += 1
        else:
            counts.duplicates += 1
    for item in batch.quarantined:  # kept once: a retry's malformed events count as duplicates
        if planner.keep_side(f"quarantine:{item.key}", "quarantine", item.source, iso(now), item.kept()):
            counts.quarantined += 1
        else:
            counts.duplicates += 1
    rows, signals = planner.rows()
    return Plan(rows, signals, counts)


# ---- plan, write, count ----------------------------------------------------------------------------


class SignalIngest:
    """Journals provider batches: read, plan, write; planned again from fresh reads when it must be."""

    def __init__(
        self,
        index: JournalIndex,
        writer: SignalWriter,
        encode: Callable[[Any], bytes],
        skew: timedelta,
        attempts: int = 40,
        address_identity: Callable[[str], str] | None = None,
        open_states: Callable[[Iterable[dict[str, Any]]], None] | None = None,
    ):
        self.address_identity = address_identity
        self.open_states = open_states
        self.index = index
        self.writer = writer
        self.encode = encode
        self.skew = skew
        self.attempts = attempts
        self.mailings = MailingCache()

    def plan(
        self,
        batch: ParsedBatch,
        now: datetime,
        timestamp: datetime,
        aimed: list[Target] | None = None,
        wants: Wants | None = None,
        loaded: list[uuid.UUID] | None = None,
    ) -> Plan:
        """Read what the batch needs and plan it (reading more while the plan asks for more)."""
        aimed = aimed if aimed is not None else targets(batch, self.address_identity)
        loaded = loaded if loaded is not None else stage_a(batch, aimed)
        wants = wants or first_wants(batch, aimed, self.mailings, loaded)
        while True:
            try:
                reads = read(self.index, wants, self.mailings, self.open_states)
                return plan_batch(
                    batch, reads, self.mailings, self.skew, now, timestamp, self.encode, aimed, loaded, self.address_identity
                )
            except NeedMore as more:
                asked = sum(len(k) + 1 for k in wants.lean.values()) + len(wants.whole) + len(wants.first) + len(wants.facts)
                wants.merge(more.wants)
                if (
                    sum(len(k) + 1 for k in wants.lean.values()) + len(wants.whole) + len(wants.first) + len(wants.facts) == asked
                ):  # pragma: no cover
                    raise AssertionError(f"the plan asked again for what was read: {more.wants}") from None

    def record(self, batch: ParsedBatch, now: datetime, timestamp: Callable[[], datetime]) -> IngestCounts:
        """Plan, write, count; when another writer stored one of the same aggregate versions first, plan again."""
        aimed = targets(batch, self.address_identity)
        loaded = stage_a(batch, aimed)
        wants = first_wants(batch, aimed, self.mailings, loaded)
        for attempt in range(self.attempts):
            plan = self.plan(batch, now, timestamp(), aimed, wants, loaded)
            try:
                self.writer.write(plan.rows, plan.signals)
                return plan.counts
            except IntegrityError as exc:
                if attempt == self.attempts - 1:
                    log.error(
                        "gave up after %d attempts: another writer changed the same aggregates each time (%s)", self.attempts, exc
                    )
                    raise
                log.debug("conflict with another writer (attempt %d): planning again from fresh reads", attempt + 1)
                time.sleep(random.uniform(0, min(0.3, 0.005 * 2**attempt)))
        raise AssertionError("unreachable")
