"""The application: use cases over the event store (commands) and the views (queries)."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import OperationalError, Transcoder

from application.config import Settings
from application.erasure import Erasures
from application.errors import Conflict, NotFound
from application.ingest import IngestCounts, SignalIngest
from application.jobs import JobRunner
from application.persistence import JournalIndex, StoredRow, load_many, schema_lock, signal_writer
from application.persistence.keys import DataKeys, address_hasher, key_ring
from application.persistence.sealing import JournalSealing
from application.privacy import Privacy, SealingTranscoder
from application.rules import HISTORY_PAGE, RulesService
from application.unit_of_work import UnitOfWork, chunks, in_transaction, now_utc
from domain.aggregates import (
    AddressIndex,
    Contact,
    Job,
    Mailing,
    Recipient,
    UnmatchedBucket,
    address_id,
    contact_id_of,
    email_bucket,
    mailing_id_of,
    recipient_bucket,
    recipient_id,
    unmatched_bucket_id,
)
from domain.dispatch import MailingTerms, dispatch_outcome
from domain.personal import address_subject, contact_subject
from domain.rules import LATEST_BUILTIN_VERSION, Ruleset
from domain.signals import (
    CONFIRMATION_CHECKED,
    PROVIDERS,
    ParsedBatch,
    Quarantined,
    dedup_key,
    iso,
    normalise_email,
    parse_iso,
    system_signal,
)
from projections.follower import ViewFollower
from projections.ports import Following, Progress
from projections.reads import PlannedRecipient, ViewReads
from projections.views import PostgresViewRecorder, SQLiteViewRecorder, ViewsMixin

log = logging.getLogger("responses.app")

SIGNAL_EVENTS = (Recipient.SignalRecorded, UnmatchedBucket.Parked)  # type: ignore[attr-defined]  # the library declares event classes by decorator  # indexed by their dedup keys (journal_index)

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")

CATEGORIES = ("bulk", "trigger")
SAVE_CHUNK = 500
DISPATCH_CHUNK = SAVE_CHUNK  # recipients decided per transaction; the deadline is checked between chunks
WRITE_WAIT_SECONDS = 10.0  # inside gunicorn's default worker timeout: a stalled projection answers 503


class ResponsesApp(Application[uuid.UUID]):
    """Recipient responses: every signal journaled per recipient; responses folded under versioned rules."""

    name = "responses"
    env = {"COMPRESSOR_TOPIC": "", "CIPHER_TOPIC": ""}
    # False: commands rebuild every aggregate from its whole journal (the reference the write path is tested against)
    lean_loading = True

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        with schema_lock(self.settings):  # gunicorn workers start together: one creates the tables at a time
            super().__init__(env=self.settings.eventsourcing_env())
            recorder_class = PostgresViewRecorder if self.settings.is_postgres else SQLiteViewRecorder
            self.views: ViewsMixin = self.factory.tracking_recorder(recorder_class)  # type: ignore[assignment]  # the factory answers its base type
            self.views.create_views(self.views.active_generation())
            if not self.recorder.max_notification_id():  # a new database starts on the latest built-in rules
                self.views.start_rules(LATEST_BUILTIN_VERSION)
            self.journal_index = JournalIndex(self.recorder, self.settings.is_postgres)
            self.journal_index.create_indexes()
            recorder: Any = self.recorder  # both stores' recorders have a datastore
            keys = DataKeys(
                recorder.datastore, key_ring(self.settings.kek, self.settings.key_file("kek")), self.settings.is_postgres
            )
            keys.create_table()
            Erasures.create_table(self.views)
            self.privacy = Privacy(keys, address_hasher(self.settings.address_key, self.settings.key_file("address-key")))
            self._seal_older_journal(recorder)
        if isinstance(self.mapper.transcoder, SealingTranscoder):
            self.mapper.transcoder.privacy = self.privacy
        self.journal_index.open_states = self.privacy.open_states
        self.reads, self.rules = ViewReads(self.views), RulesService(self, self._in_transaction)
        self.erasures = Erasures(self)
        self.jobs, self.follower = JobRunner(self), None  # the follower: set when one follows in this process
        self.signal_writer = signal_writer(self.recorder, self.settings.is_postgres)
        self.signals = SignalIngest(
            self.journal_index,
            self.signal_writer,
            self.mapper.transcoder.encode,
            self.settings.max_clock_skew,
            address_identity=self.privacy.hasher,
            open_states=self.privacy.open_states,
        )

    # ---- reading and writing the journal ---------------------------------------------------

    def construct_transcoder(self) -> Transcoder:
        transcoder = SealingTranscoder()  # seals personal fields once ``privacy`` is set (below, once the keys table is)
        self.register_transcodings(transcoder)
        return transcoder

    def write_events(self, events: Sequence[Any]) -> None:
        """Store a command's new events in one transaction, through the store's ``SignalWriter`` (the
        signals among them with their dedup digests)."""
        self.privacy.prepare(s for e in events if (s := getattr(e, "subject", None)))  # the keys, in one read
        stored = [self.mapper.to_stored_event(e) for e in events]
        signals = [(e.originator_id, e.originator_version, e.signal["key"]) for e in events if isinstance(e, SIGNAL_EVENTS)]
        self.signal_writer.write(
            [StoredRow(cast(uuid.UUID, s.originator_id), s.originator_version, s.topic, s.state) for s in stored], signals
        )

    def load_many(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Aggregate]:
        """Reconstruct several aggregates from their events, read with one query per 500 ids."""
        return load_many(self, ids, self.settings.is_postgres)

    def _in_transaction(self, work: Callable[[UnitOfWork], T]) -> T:
        return in_transaction(self, work)

    def _seal_older_journal(self, recorder: Any) -> None:
        """A journal written before personal data was sealed is sealed at its first start (CONTRACT §12): once,
        under the schema lock (workers starting together wait for it), resumable, with progress in the log."""
        sealing = JournalSealing(
            self.journal_index, self.privacy.seal_state, self.privacy.prepare, self.privacy.hasher, self.views
        )
        for attempt in range(20):  # beside a busy writer, SQLite refuses a read lock's upgrade at once: again, as create_views
            try:
                with recorder.datastore.transaction(commit=True) as c:
                    if not self.settings.is_postgres:  # the write lock first, waiting for it (as create_views)
                        c.execute("ROLLBACK")
                        c.execute("BEGIN IMMEDIATE")
                    sealing.create_table(c)
                    sealing.start(c)
                break
            except OperationalError:
                if attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))
        sealing.run()

    def open_states(self, states: Iterable[dict[str, Any]], cursor: Any = None) -> None:
        """Open the sealed personal fields of journal states in place (CONTRACT §12); ``cursor``: read the keys
        through it (a caller inside a transaction of the store)."""
        self.privacy.open_states(states, cursor)

    # ---- mailings -------------------------------------------------------------------------------

    def create_mailing(self, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create a mailing; re-creating with identical fields is fine, with others a ``Conflict``."""
        wanted = {
            "id": fields["id"],
            "name": fields["name"],
            "category": fields["category"],
            "email_type": fields.get("email_type"),
            "provider": fields["provider"],
            "expires_at": iso(fields["expires_at"]) if fields.get("expires_at") else None,
            "prevent_duplicates": bool(fields.get("prevent_duplicates", False)),
        }
        if wanted["category"] not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}")
        if wanted["provider"] not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDERS)}")

        def work(uow: UnitOfWork) -> tuple[dict[str, Any], bool]:
            existing: Mailing | None = uow.get(mailing_id_of(wanted["id"]))
            if existing is not None:
                if existing.fields() != wanted:
                    raise Conflict(f"mailing {wanted['id']!r} exists with other fields")
                return existing.fields(), False
            mailing = uow.add(Mailing(mailing_id=wanted["id"], **{k: v for k, v in wanted.items() if k != "id"}))
            return mailing.fields(), True

        return self._in_transaction(work)

    def get_mailing_aggregate(self, mailing_id: str) -> Mailing:
        try:
            return self.repository.get(mailing_id_of(mailing_id))
        except AggregateNotFoundError:
            raise NotFound("mailing", mailing_id) from None

    def add_audience(self, mailing_id: str, recipients: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Add recipients (idempotent): each starts ``planned``; parked signals naming it are claimed."""
        provider = self.get_mailing_aggregate(mailing_id).provider
        added = present = 0
        for chunk in chunks(list(recipients), SAVE_CHUNK):

            def work(uow: UnitOfWork, chunk: list[dict[str, Any]] = chunk) -> tuple[int, int]:
                a = p = 0
                cids = [str(item["contact_id"]) for item in chunk]
                uow.prefetch_lean({recipient_id(mailing_id, c): set() for c in cids})
                uow.prefetch(
                    [contact_id_of(c) for c in cids] + [unmatched_bucket_id(recipient_bucket(mailing_id, c)) for c in cids]
                )
                for item in chunk:
                    cid, name, email = str(item["contact_id"]), item.get("name"), item.get("email")
                    recipient: Recipient | None = uow.get(recipient_id(mailing_id, cid))
                    if recipient is None:
                        recipient = uow.add(
                            Recipient(mailing_id=mailing_id, contact_id=cid, name=name, email=email, subject=contact_subject(cid))
                        )
                        a += 1
                    else:
                        p += 1
                        if (name, email) != (recipient.name, recipient.email) and (name or email):
                            recipient.change_details(
                                name or recipient.name, email or recipient.email, subject=contact_subject(cid)
                            )
                    contact: Contact = uow.get_or_create(contact_id_of(cid), lambda cid=cid: Contact(contact_id=cid))
                    if email and normalise_email(contact.email) != normalise_email(email):
                        contact.record_command(
                            {"op": "patch", "contact_id": cid, "email": email, "at": iso(now_utc())}, subject=contact_subject(cid)
                        )
                    self._claim(uow, recipient_bucket(mailing_id, cid), recipient, provider)
                return a, p

            a, p = self._in_transaction(work)
            added, present = added + a, present + p
        return {"added": added, "already_present": present}

    def _claim(self, uow: UnitOfWork, bucket_name: str, recipient: Recipient, provider: str, sent_at: str | None = None) -> int:
        """Re-match: the recipient takes the signals parked for it (see ``UnmatchedBucket.claimable``)."""
        bucket: UnmatchedBucket | None = uow.get_whole(unmatched_bucket_id(bucket_name))
        if bucket is None:
            return 0
        signals = bucket.claimable(recipient.mailing_id, provider, sent_at, self.settings.max_clock_skew)
        if not signals:
            return 0
        uow.ensure_keys(recipient, [s.key for s in signals])
        for signal in sorted(signals, key=lambda s: s.received_at):
            recipient.record(signal)  # keeps its original received_at
        bucket.claim([s.key for s in signals], recipient.mailing_id, recipient.contact_id)
        return len(signals)

    # ---- dispatch, stop, sweep ----------------------------------------------------------------

    def dispatch(
        self, mailing_id: str, now: datetime | None = None, limit: int | None = None, deadline_seconds: float | None = None
    ) -> dict[str, Any]:
        """Decide the pre-send outcome of planned recipients, in audience order, as one numbered wave.

        Bounded: at most ``limit`` recipients, and no new chunk once ``deadline_seconds`` (the
        ``dispatch_seconds`` setting) have passed; ``remaining`` says how many planned recipients
        are left for the next call. Every chunk is journaled before the next is decided, each
        ``sent_to_provider`` with its wave, so a lost answer is read again from the wave's send list.
        Waits for the views first: when they are behind, ``TimeoutError`` before anything changes.
        """
        now = now or now_utc()
        started = time.monotonic()
        deadline = started + (self.settings.dispatch_seconds if deadline_seconds is None else deadline_seconds)
        mailing = self.get_mailing_aggregate(mailing_id)
        self.wait_for_views()
        planned = self.reads.planned_recipients(mailing_id)
        taken = {normalise_email(email) for email in self.reads.sent_addresses(mailing_id)}
        taken.discard(None)
        wave: int = self._in_transaction(lambda uow: uow.get(mailing.id).start_dispatch_wave(iso(now)))
        terms = MailingTerms(mailing.email_type, mailing.prevent_duplicates, parse_iso(mailing.expires_at))
        send: list[dict[str, Any]] = []
        outcomes: Counter[str] = Counter()
        wanted = len(planned) if limit is None else min(limit, len(planned))
        looked_at = 0
        while looked_at < wanted and (looked_at == 0 or time.monotonic() < deadline):
            chunk = planned[looked_at : looked_at + min(DISPATCH_CHUNK, wanted - looked_at)]
            decided = self._in_transaction(
                lambda uow, chunk=chunk: self._decide_chunk(uow, mailing, wave, terms, taken, chunk, now)  # type: ignore[misc]
            )
            looked_at += len(chunk)
            for cid, code, email in decided:
                outcomes[code] += 1
                if code == "sent_to_provider":
                    taken.add(normalise_email(email))
                    send.append({"contact_id": cid, "email": email, "metadata": {"mailing_id": mailing_id, "contact_id": cid}})
        remaining = len(planned) - looked_at
        log.info(
            "dispatch %s wave %d: %d decided, %d to send, %d remaining, %.1f s",
            mailing_id,
            wave,
            sum(outcomes.values()),
            len(send),
            remaining,
            time.monotonic() - started,
        )
        return {"send": send, "outcomes": dict(outcomes), "wave": wave, "remaining": remaining}

    def _decide_chunk(
        self,
        uow: UnitOfWork,
        mailing: Mailing,
        wave: int,
        terms: MailingTerms,
        taken: set[str | None],
        chunk: list[PlannedRecipient],
        now: datetime,
    ) -> list[tuple[str, str, str | None]]:
        """One chunk of a wave, decided and journaled in one transaction (re-run whole on a conflict)."""
        mailing_id = mailing.mailing_id
        decided: list[tuple[str, str, str | None]] = []
        chunk_taken = set(taken)
        addresses = [normalise_email(row.contact.email or row.email) for row in chunk]
        known_as = [self.privacy.hasher(a) for a in addresses if a]  # an address's index and bucket: its keyed hash
        uow.prefetch_lean(
            {recipient_id(mailing_id, row.contact_id): {dedup_key("dispatch", mailing_id, row.contact_id)} for row in chunk}
        )
        uow.prefetch(
            [address_id(mailing.provider, k) for k in known_as]
            + [unmatched_bucket_id(email_bucket(mailing.provider, k)) for k in known_as]
        )
        raw = {"decided_by": "dispatch", "provider": mailing.provider, "wave": wave}
        for row in chunk:
            cid, contact = row.contact_id, row.contact
            key = dedup_key("dispatch", mailing_id, cid)
            recipient: Recipient = uow.get(recipient_id(mailing_id, cid))
            if recipient is None or recipient.has_signal(key):  # decided meanwhile by another call
                continue
            email = contact.email or row.email
            # a stopped mailing sends nobody, not even recipients added after the stop
            code = "stopped_manually" if mailing.stopped_at else dispatch_outcome(email, contact, terms, chunk_taken, now)  # type: ignore[arg-type]
            if email and email != recipient.email:
                recipient.change_details(recipient.name, email, subject=contact_subject(cid))
            recipient.record(system_signal(code, key=key, at=now, raw=raw))
            if code == "sent_to_provider":
                self._index_address(uow, mailing.provider, normalise_email(email), recipient, now)  # type: ignore[arg-type]
            decided.append((cid, code, email))
        return decided

    def _record_system(self, targets: Iterable[tuple[str, str]], code: str, key_prefix: str, now: datetime, *extra: str) -> int:
        recorded = 0
        for chunk in chunks(list(targets), SAVE_CHUNK):

            def work(uow: UnitOfWork, chunk: list[tuple[str, str]] = chunk) -> int:
                n = 0
                keys = {(m, c): dedup_key(key_prefix, m, c, *extra) for m, c in chunk}
                uow.prefetch_lean({recipient_id(m, c): {key} for (m, c), key in keys.items()})
                for mailing_id, cid in chunk:
                    recipient: Recipient | None = uow.get(recipient_id(mailing_id, cid))
                    if recipient is not None and recipient.record(system_signal(code, key=keys[mailing_id, cid], at=now)):
                        n += 1
                return n

            recorded += self._in_transaction(work)
        return recorded

    def stop(self, mailing_id: str, now: datetime | None = None) -> int:
        """Stop a mailing: planned, ready-to-send and queued recipients become ``stopped_manually``."""
        self.get_mailing_aggregate(mailing_id)
        self.wait_for_views()
        targets = self.reads.stoppable_recipients(mailing_id)
        now = now or now_utc()
        stopped = self._record_system(targets, "stopped_manually", "stop", now)
        self._in_transaction(lambda uow: uow.get(mailing_id_of(mailing_id)).stop(at=iso(now), recipients=stopped))
        return stopped

    def sweep(self, now: datetime | None = None) -> dict[str, int]:
        """Expire planned recipients of expired mailings; record a confirmation check for those still waiting."""
        now = now or now_utc()
        self.wait_for_views()
        expired = self.reads.expired_planned(iso(now) or "")
        waiting = self.reads.awaiting_confirmation()
        return {
            "expired": self._record_system(expired, "stopped_expired", "expired", now),
            "checked": self._record_system(waiting, CONFIRMATION_CHECKED, "confirmation", now, (iso(now) or "")[:13]),
        }  # checks keyed by the UTC hour (YYYY-MM-DDTHH): sweeps every few minutes record one check per recipient an hour

    # ---- ingestion ----------------------------------------------------------------------------

    def record_batch(self, batch: ParsedBatch) -> IngestCounts:
        """Journal a provider batch in one transaction: correlate, deduplicate, park the unmatched.

        Each signal is stored with its effective time (as ``Signal.stamped`` gives it): the provider's time,
        never later than the receipt plus ``MAX_CLOCK_SKEW_SECONDS``. Plan, write, count: ``application.ingest``."""
        return self.signals.record(batch, now=now_utc(), timestamp=Recipient.SignalRecorded.create_timestamp)  # type: ignore[attr-defined]

    def quarantine(self, items: Sequence[Quarantined]) -> IngestCounts:
        """Keep input we could not understand (a whole body, or single events), with the error.

        Idempotent: an item kept before (same source, same raw input) counts as a duplicate."""
        return self.record_batch(ParsedBatch(quarantined=list(items)))

    def _index_address(self, uow: UnitOfWork, provider: str, address: str, recipient: Recipient, at: datetime) -> None:
        """Remember who was sent to this address through this provider; claim what was parked for it. The index
        and the bucket are named by the address's keyed hash (CONTRACT §12), never the clear address."""
        known_as = self.privacy.hasher(address)
        index: AddressIndex = uow.get_or_create(
            address_id(provider, known_as),
            lambda: AddressIndex(provider=provider, email=address, subject=address_subject(known_as), known_as=known_as),
        )
        index.add_recipient(recipient.mailing_id, recipient.contact_id, iso(at))
        self._claim(uow, email_bucket(provider, known_as), recipient, provider, iso(at))

    # ---- contacts ---------------------------------------------------------------------------------

    def change_contact(self, contact_id: str, changes: dict[str, Any]) -> None:
        """A manual flag or email change, journaled on the contact (the later change wins)."""
        self._contact_command(contact_id, {"op": "patch", **changes})

    def set_subscription(self, contact_id: str, email_type: str, subscribed: bool) -> None:
        self._contact_command(contact_id, {"op": "subscription", "email_type": email_type, "subscribed": subscribed})

    def _contact_command(self, contact_id: str, command: dict[str, Any]) -> None:
        def work(uow: UnitOfWork) -> None:
            contact: Contact = uow.get_or_create(contact_id_of(contact_id), lambda: Contact(contact_id=contact_id))
            contact.record_command(
                {**command, "contact_id": contact_id, "at": iso(now_utc())}, subject=contact_subject(contact_id)
            )

        self._in_transaction(work)

    # ---- views ------------------------------------------------------------------------------------

    @property
    def follower(self) -> Following | None:
        """The follower of this process, if one follows here: waits for the views catch up through it,
        and its thread (when it runs one) runs the journaled jobs between its batches."""
        return self._follower

    @follower.setter
    def follower(self, follower: Following | None) -> None:
        self._follower = follower
        if isinstance(follower, ViewFollower):  # its thread runs the jobs between its batches
            self.jobs.attach(follower)

    def journal_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def views_position(self) -> int:
        return self.views.position(self.generation())

    def wait_for_views(self, timeout: float | None = None) -> None:
        """Read-your-writes: wait until the views have applied everything journaled so far.

        ``TimeoutError`` after ``timeout`` (default ``WRITE_WAIT_SECONDS``): only commands that must
        read the views before they change anything (dispatch, stop, sweep) let it become a 503.
        """
        target = self.journal_position()
        if self.follower is not None:
            self.follower.catch_up(until=target)
            return
        deadline = time.monotonic() + (WRITE_WAIT_SECONDS if timeout is None else timeout)
        while self.views_position() < target:
            if time.monotonic() > deadline:
                raise TimeoutError("the projection is behind; is `responses project` running?")
            time.sleep(0.02)

    # ---- rules, jobs and what-ifs: ``self.rules`` and ``self.jobs`` (kept for callers of the old mixin) ----

    def generation(self) -> int:
        return self.rules.generation()

    def active_version(self) -> str:
        return self.rules.active_version()

    def active_rules(self) -> Ruleset:
        return self.rules.active_rules()

    def ruleset(self, version: str) -> Ruleset:
        return self.rules.ruleset(version)

    def rules_versions(self) -> dict[str, Any]:
        return self.rules.rules_versions()

    def define_rules(self, document: dict[str, Any], created_by: str | None = None) -> Ruleset:
        return self.rules.define_rules(document, created_by)

    def swap_generation(self, generation: int, version: str) -> None:
        self.rules.swap_generation(generation, version)

    def request_activation(self, version: str) -> dict[str, Any]:
        return self.rules.request_activation(version)

    def job(self, job: str) -> dict[str, Any]:
        return self.rules.job(job)

    def pending_jobs(self) -> tuple[list[Job], int]:
        return self.rules.pending_jobs()

    def pending_what_ifs(self) -> list[tuple[int, Job]]:
        return self.rules.pending_what_ifs()

    def start_job(self, job: str) -> None:
        self.rules.start_job(job)

    def what_if(
        self,
        rules: dict[str, Any] | str,
        mailing_ids: list[str] | None = None,
        sample: int = 20,
        progress: Progress | None = None,
        current_version: str | None = None,
        follow: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        return self.rules.what_if(rules, mailing_ids, sample, progress, current_version, follow)

    def request_what_if(self, rules: dict[str, Any] | str, mailings: list[str] | None = None, sample: int = 20) -> str:
        return self.rules.request_what_if(rules, mailings, sample)

    def start_what_if(
        self, rules: dict[str, Any] | str, mailings: list[str] | None = None, sample: int = 20, wait_seconds: float = 1.0
    ) -> tuple[dict[str, Any] | None, str | None]:
        return self.jobs.start_what_if(rules, mailings, sample, wait_seconds)

    def history(
        self,
        mailing_id: str,
        contact_id: str,
        as_of: datetime | None = None,
        rules: Ruleset | None = None,
        lang: str = "en",
        limit: int = HISTORY_PAGE,
        cursor: str | None = None,
        for_replay: bool = False,
    ) -> dict[str, Any]:
        return self.rules.history(mailing_id, contact_id, as_of, rules, lang, limit, cursor, for_replay)
