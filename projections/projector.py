"""The projector: journal events → view state, through ``domain.fold``.

One ``Projector`` class serves the live follower (with a database-backed
store), the rebuild (the same, into fresh tables) and the what-if (with an
in-memory store). It reads stored events as plain dicts (decoded with orjson)
so a replay never builds domain objects it does not need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from domain.contacts import ContactState, apply_command, apply_signal_effect
from domain.fold import RecipientState, Step, fold_into
from domain.rules import Ruleset
from domain.signals import SYSTEM, Signal, dedup_key, parse_iso

TOPIC_PREFIX = "domain.aggregates:"

# The views keep a recipient's fold state (a checkpoint) every this many of its journal events, so a page
# of its audit history folds at most this many signals before the page (``projections.replay.explain_page``).
# Read when a checkpoint is due: tests lower it with monkeypatch.
CHECKPOINT_SIGNALS = 1000


@dataclass
class MailingRow:
    id: str
    name: str
    category: str
    email_type: str | None
    provider: str
    expires_at: str | None
    prevent_duplicates: bool
    created_seq: int
    started_at: datetime | None = None
    # When its first recipient was recorded sent (``sent_to_provider``): the timeline's start of a mailing
    # its sender dispatched itself (no ``started_at``). Kept since the engagement buckets (view shape 2).
    first_sent_at: datetime | None = None

    @property
    def start(self) -> datetime | None:
        """Where its timeline's hours count from (CONTRACT §5): our dispatch's start, else its first sending."""
        return self.started_at or self.first_sent_at


@dataclass(slots=True)
class RecipientRow:
    rid: str
    mailing_id: str
    contact_id: str
    name: str | None
    email: str | None
    seq: int
    state: RecipientState = field(default_factory=RecipientState)
    # The recipient aggregate's version the state is folded to (a history cursor is a version); None for
    # a row projected before versions were counted (its history folds the whole journal).
    version: int | None = None
    checkpointed: int = 0  # the version of its last fold checkpoint (0: none yet)
    checkpointed_keys: int = 0  # how many dedup keys its state held then (each checkpoint keeps only the new ones)


@dataclass(frozen=True, slots=True)
class FoldCheckpoint:
    """A recipient's fold state after its journal event ``version`` (journal position ``seq``) under the
    generation's rules; ``keys_before``: the dedup keys the previous checkpoint already holds."""

    rid: str
    version: int
    seq: int
    state: RecipientState
    keys_before: int


@dataclass
class SideRow:
    id: str
    kind: str  # test_send | notice | quarantine | unmatched
    source: str
    mailing_id: str | None
    received_at: str
    seq: int
    payload: dict[str, Any]
    claimed: bool = False


@dataclass(frozen=True, slots=True)
class WaveSendRow:
    """One recipient a dispatch wave decided ``sent_to_provider``: what the sender was told to send."""

    mailing_id: str
    wave: int
    seq: int
    contact_id: str
    email: str | None


# A group of a mailing's recipients alike for its analytics (CONTRACT §5): the key of one row of the
# ``mailing_stats`` view. (mailing, response, reason or "", sent, unique open, clicked)
StatsKey = tuple[str, str, str, int, int, int]


def stats_key(mailing_id: str, s: RecipientState) -> StatsKey:
    return (mailing_id, s.response, s.reason or "", int(s.sent), int(s.unique_open), int(s.clicks > 0))


# A mailing's first opens and first clicks by UTC minute (the ``engagement`` view, CONTRACT §5): each minute in
# two parts, split at the second of the minute (with its fraction) of the mailing's start, so an hour since the
# start is an exact sum of rows, and so is any UTC minute (both parts: any time zone, any range).
# (mailing, minute "YYYY-MM-DDTHH:MM", early: 1 before the start's second of the minute, else 0)
EngagementKey = tuple[str, str, int]


def minute_split(start: datetime | None) -> str:
    """The start's second of the minute with its fraction (``SSffffff``), where each minute is split; "" without a
    start (nothing is early)."""
    return "" if start is None else start.astimezone(UTC).strftime("%S%f")


def engagement_key(mailing_id: str, at: datetime, split: str) -> EngagementKey:
    """The bucket of a first open or first click at ``at``, its minute split at ``split`` (``minute_split``)."""
    utc_at = at.astimezone(UTC)
    return (mailing_id, utc_at.isoformat()[:16], int(utc_at.strftime("%S%f") < split))


class ProjectionStore(Protocol):
    """Where a projector keeps what it projects (a batch over view tables, or memory)."""

    def mailing(self, mailing_id: str) -> MailingRow | None: ...
    def put_mailing(self, row: MailingRow) -> None: ...
    def recipient(self, rid: str) -> RecipientRow | None: ...
    def put_recipient(self, row: RecipientRow) -> None: ...
    def contact(self, contact_id: str) -> ContactState | None: ...
    def put_contact(self, contact_id: str, state: ContactState) -> None: ...
    def put_side(self, row: SideRow) -> None: ...
    def claim_side(self, bucket_seq_ids: list[str]) -> None: ...
    def put_wave_send(self, row: WaveSendRow) -> None: ...
    def put_term(self, source: str, fields: dict[str, str], contact_id: str) -> None: ...
    def add_stats(self, key: StatsKey, recipients: int, opens: int, clicks: int) -> None: ...
    def put_checkpoint(self, checkpoint: FoldCheckpoint) -> None: ...
    def add_engagement(self, key: EngagementKey, first_opens: int, first_clicks: int) -> None: ...
    def resplit(self, mailing_id: str) -> None: ...


# Observers see each folded recipient signal (what-if diffs and history use them).
StepObserver = Callable[[RecipientRow, Signal, Step], None]


# The journal events the views are made of, and the method that applies each.
HANDLED: dict[str, str] = {
    "Mailing.Created": "_mailing_created",
    "Mailing.DispatchWaveStarted": "_dispatch_wave_started",
    "Recipient.Joined": "_recipient_joined",
    "Recipient.DetailsChanged": "_recipient_details_changed",
    "Recipient.SignalRecorded": "_signal_recorded",
    "Contact.Registered": "_contact_registered",
    "Contact.CommandRecorded": "_contact_command",
    "SideRecord.Recorded": "_side_recorded",
    "UnmatchedBucket.Parked": "_unmatched_parked",
    "UnmatchedBucket.Claimed": "_unmatched_claimed",
}


class Projector:
    def __init__(self, rules: Ruleset, store: ProjectionStore, observer: StepObserver | None = None):
        self.rules = rules
        self.store = store
        self.observer = observer
        self.keeps_stats = bool(getattr(store, "keeps_stats", False))  # only the view tables keep mailing_stats
        self.keeps_checkpoints = bool(getattr(store, "keeps_checkpoints", False))  # and fold checkpoints
        self.keeps_engagement = bool(getattr(store, "keeps_engagement", False))  # and the engagement buckets
        self.keeps_sends = bool(getattr(store, "keeps_sends", True))  # send lists and the scope index (not a what-if's)
        self._handlers: dict[str, Callable[[int, str, dict[str, Any]], None]] = {
            event: getattr(self, method) for event, method in HANDLED.items()
        }

    @staticmethod
    def topics() -> list[str]:
        """The stored-event topics a projector reads (others are skipped by the reader)."""
        return [TOPIC_PREFIX + event for event in HANDLED]

    def apply(self, seq: int, originator_id: str, topic: str, data: dict[str, Any]) -> None:
        handler = self._handlers.get(topic[len(TOPIC_PREFIX) :]) if topic.startswith(TOPIC_PREFIX) else None
        if handler is not None:
            handler(seq, originator_id, data)

    # ---- mailings -------------------------------------------------------------------

    def _mailing_created(self, seq: int, _oid: str, d: dict[str, Any]) -> None:
        self.store.put_mailing(
            MailingRow(
                id=d["mailing_id"],
                name=d["name"],
                category=d["category"],
                email_type=d.get("email_type"),
                provider=d["provider"],
                expires_at=d.get("expires_at"),
                prevent_duplicates=bool(d.get("prevent_duplicates")),
                created_seq=seq,
            )
        )

    def _dispatch_wave_started(self, _seq: int, oid: str, d: dict[str, Any]) -> None:
        mailing = self.store.mailing(d["mailing_id"]) if "mailing_id" in d else None
        if mailing is not None and mailing.started_at is None:
            before = mailing.start
            mailing.started_at = parse_iso(d["at"])
            self.store.put_mailing(mailing)
            self._start_moved(mailing, before)

    # ---- recipients -----------------------------------------------------------------

    def _recipient_joined(self, seq: int, oid: str, d: dict[str, Any]) -> None:
        row = RecipientRow(
            rid=oid,
            mailing_id=d["mailing_id"],
            contact_id=d["contact_id"],
            name=d.get("name"),
            email=d.get("email"),
            seq=seq,
            version=1,
        )
        self.store.put_recipient(row)
        if self.keeps_stats:
            self.store.add_stats(stats_key(row.mailing_id, row.state), 1, 0, 0)

    def _recipient_details_changed(self, _seq: int, oid: str, d: dict[str, Any]) -> None:
        row = self.store.recipient(oid)
        if row is not None:
            row.name, row.email = d.get("name"), d.get("email")
            if row.version is not None:
                row.version += 1
            self.store.put_recipient(row)

    def _signal_recorded(self, seq: int, oid: str, d: dict[str, Any]) -> None:
        row = self.store.recipient(oid)
        if row is None:  # cannot happen in a consistent journal: a recipient joins first
            return
        signal = d.get("_signal")
        if signal is None:  # decoded once, even when several projectors read the same event
            signal = d["_signal"] = Signal.from_record(d["signal"])
        mailing = self.store.mailing(row.mailing_id)
        start = mailing.started_at if mailing else None
        state = row.state
        firsts = (state.first_open_at, state.first_click_at, state.sent_at)
        if not self.keeps_stats:
            step = fold_into(state, signal, self.rules, start)
            self.store.put_recipient(row)
        else:
            key_before, opens_before, clicks_before = stats_key(row.mailing_id, state), state.opens, state.clicks
            step = fold_into(state, signal, self.rules, start)
            self.store.put_recipient(row)
            key_after = stats_key(row.mailing_id, state)
            if key_after != key_before or state.opens != opens_before or state.clicks != clicks_before:
                self.store.add_stats(key_before, -1, -opens_before, -clicks_before)
                self.store.add_stats(key_after, 1, state.opens, state.clicks)
        if self.keeps_engagement and firsts != (state.first_open_at, state.first_click_at, state.sent_at):
            self._first_times_moved(row, mailing, *firsts)
        if row.version is not None:
            row.version += 1
            if self.keeps_checkpoints and row.version - row.checkpointed >= CHECKPOINT_SIGNALS:
                self._checkpoint(row, seq)
        if (step.maps_to is not None or step.contact_effect is not None) and step.why != "duplicate":
            stored = self.store.contact(row.contact_id)
            contact = stored or ContactState(email=row.email)
            after = apply_signal_effect(contact, step, mailing.email_type if mailing else None, self.rules)
            if after is not contact or stored is None:  # (unchanged: the same state, already stored)
                self.store.put_contact(row.contact_id, after)
        if self.keeps_sends:
            wave = dispatch_wave(signal, row)
            if wave is not None:
                self.store.put_wave_send(WaveSendRow(row.mailing_id, wave, seq, row.contact_id, row.email))
            self.store.put_term(signal.source, signal.fields, row.contact_id)
        if self.observer is not None:
            self.observer(row, signal, step)

    def _first_times_moved(
        self,
        row: RecipientRow,
        mailing: MailingRow | None,
        open_before: datetime | None,
        click_before: datetime | None,
        sent_before: datetime | None,
    ) -> None:
        """A recipient's first open or first click happened, or moved earlier (an earlier one arrived out of
        order): one less in the old minute's bucket, one more in the new one. A first sending may move the
        mailing's start (a mailing its sender dispatched), and with it where its minutes are split."""
        state = row.state
        first_sending = mailing is not None and state.sent_at is not None and sent_before is None
        if (
            first_sending
            and mailing is not None
            and state.sent_at is not None
            and (mailing.first_sent_at is None or state.sent_at < mailing.first_sent_at)
        ):
            before = mailing.start
            mailing.first_sent_at = state.sent_at
            self.store.put_mailing(mailing)
            self._start_moved(mailing, before)
        split = minute_split(mailing.start if mailing is not None else None)
        for before, after, opens, clicks in (
            (open_before, state.first_open_at, 1, 0),
            (click_before, state.first_click_at, 0, 1),
        ):
            if before == after:
                continue
            if before is not None:
                self.store.add_engagement(engagement_key(row.mailing_id, before, split), -opens, -clicks)
            if after is not None:
                self.store.add_engagement(engagement_key(row.mailing_id, after, split), opens, clicks)

    def _start_moved(self, mailing: MailingRow, before: datetime | None) -> None:
        """The mailing's start moved: its minutes are split elsewhere now, its buckets counted again."""
        if self.keeps_engagement and minute_split(mailing.start) != minute_split(before):
            self.store.resplit(mailing.id)

    def _checkpoint(self, row: RecipientRow, seq: int) -> None:
        """Keep the row's fold state at this version: a history page folds from the nearest one."""
        self.store.put_checkpoint(FoldCheckpoint(row.rid, row.version or 0, seq, row.state, row.checkpointed_keys))
        row.checkpointed, row.checkpointed_keys = row.version or 0, len(row.state.seen)

    # ---- contacts -------------------------------------------------------------------

    def _contact_registered(self, _seq: int, _oid: str, d: dict[str, Any]) -> None:
        if self.store.contact(d["contact_id"]) is None:
            self.store.put_contact(d["contact_id"], ContactState())

    def _contact_command(self, _seq: int, _oid: str, d: dict[str, Any]) -> None:
        command = d["command"]
        contact = self.store.contact(command["contact_id"]) or ContactState()
        self.store.put_contact(command["contact_id"], apply_command(contact, command))

    # ---- kept inputs ----------------------------------------------------------------

    def _side_recorded(self, seq: int, oid: str, d: dict[str, Any]) -> None:
        payload = d["payload"]
        self.store.put_side(
            SideRow(
                id=oid,
                kind=d["kind"],
                source=d["source"],
                mailing_id=payload.get("mailing_id"),
                received_at=d["received_at"],
                seq=seq,
                payload=payload,
            )
        )

    def _unmatched_parked(self, seq: int, oid: str, d: dict[str, Any]) -> None:
        signal = d["signal"]
        correlation = d["correlation"]
        self.store.put_side(
            SideRow(
                id=f"{oid}:{signal['key']}",
                kind="unmatched",
                source=signal["source"],
                mailing_id=correlation.get("mailing_id"),
                received_at=signal["received_at"],
                seq=seq,
                payload={"signal": signal, "correlation": correlation},
            )
        )

    def _unmatched_claimed(self, _seq: int, oid: str, d: dict[str, Any]) -> None:
        self.store.claim_side([f"{oid}:{key}" for key in d["keys"]])


def signal_term(source: str, fields: dict[str, str]) -> str:
    """What a ruleset maps of a signal (its source and status fields), as one index term: the scoped
    what-if finds the contacts whose journals hold signals a rule change maps differently."""
    return source + "\x1f" + orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode()


def parse_term(term: str) -> tuple[str, dict[str, str]]:
    source, _, fields = term.partition("\x1f")
    return source, orjson.loads(fields)


def dispatch_wave(signal: Signal, row: RecipientRow) -> int | None:
    """The wave of our dispatch's ``sent_to_provider`` decision (None for any other signal, and for a
    decision journaled before waves were numbered)."""
    raw = signal.raw
    if signal.source != SYSTEM or signal.fields.get("kind") != "sent_to_provider" or not isinstance(raw, dict):
        return None
    wave = raw.get("wave")
    if raw.get("decided_by") != "dispatch" or type(wave) is not int:
        return None
    return wave if signal.key == dedup_key("dispatch", row.mailing_id, row.contact_id) else None


class MemoryStore:
    """A projection store in memory: the what-if's, and the write-back cache of a live batch."""

    keeps_stats = False  # a what-if diffs recipients, not mailing_stats: the projector skips them
    keeps_sends = False  # nor send lists and the scope index: the projector skips them too

    def __init__(self) -> None:
        self.mailings: dict[str, MailingRow] = {}
        self.recipients: dict[str, RecipientRow] = {}
        self.contacts: dict[str, ContactState] = {}
        self.sides: dict[str, SideRow] = {}
        self.claimed: list[str] = []
        self.stats: dict[StatsKey, list[int]] = {}  # recipients, opens, clicks added to each group

    def mailing(self, mailing_id: str) -> MailingRow | None:
        return self.mailings.get(mailing_id)

    def put_mailing(self, row: MailingRow) -> None:
        self.mailings[row.id] = row

    def recipient(self, rid: str) -> RecipientRow | None:
        return self.recipients.get(rid)

    def put_recipient(self, row: RecipientRow) -> None:
        self.recipients[row.rid] = row

    def contact(self, contact_id: str) -> ContactState | None:
        return self.contacts.get(contact_id)

    def put_contact(self, contact_id: str, state: ContactState) -> None:
        self.contacts[contact_id] = state

    def put_side(self, row: SideRow) -> None:
        self.sides[row.id] = row

    def claim_side(self, ids: list[str]) -> None:
        self.claimed.extend(ids)
        for i in ids:
            if i in self.sides:
                self.sides[i].claimed = True

    def put_wave_send(self, row: WaveSendRow) -> None:
        """Send lists are kept by the view tables only (what-ifs do not need them)."""

    def put_term(self, source: str, fields: dict[str, str], contact_id: str) -> None:
        """The scope index (``signal_term`` → contacts) is kept by the view tables only."""

    def put_checkpoint(self, checkpoint: FoldCheckpoint) -> None:
        """Fold checkpoints are kept by the view tables only (a what-if folds whole journals)."""

    def add_engagement(self, key: EngagementKey, first_opens: int, first_clicks: int) -> None:
        """Engagement buckets are kept by the view tables only (``views.BatchStore``)."""

    def resplit(self, mailing_id: str) -> None:
        """Engagement buckets are kept by the view tables only (``views.BatchStore``)."""

    def add_stats(self, key: StatsKey, recipients: int, opens: int, clicks: int) -> None:
        totals = self.stats.get(key)
        if totals is None:
            self.stats[key] = [recipients, opens, clicks]
        else:
            totals[0] += recipients
            totals[1] += opens
            totals[2] += clicks
