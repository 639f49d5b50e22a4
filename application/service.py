"""The application: use cases over the event store (commands) and the views (queries)."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, StoredEvent

from application.config import Settings
from domain.aggregates import (
    AddressIndex,
    Contact,
    Job,
    Mailing,
    Recipient,
    RulesBook,
    SideRecord,
    UnmatchedBucket,
    address_id,
    contact_id_of,
    email_bucket,
    job_id,
    mailing_id_of,
    recipient_bucket,
    recipient_id,
    rules_book_id,
    side_record_id,
    unmatched_bucket_id,
)
from domain.catalogue import PREPARING, RESPONSES
from domain.contacts import ContactState
from domain.dispatch import MailingTerms, dispatch_outcome
from domain.rules import DEFAULT_RULESET, DEFAULT_VERSION, Ruleset
from domain.signals import (
    CONFIRMATION_CHECKED,
    PROVIDERS,
    Notice,
    ParsedBatch,
    ProviderEvent,
    Quarantined,
    Signal,
    dedup_key,
    iso,
    normalise_email,
    parse_iso,
    system_signal,
)
from projections.views import PostgresViewRecorder, SQLiteViewRecorder, ViewsMixin

log = logging.getLogger("responses.app")

A = TypeVar("A", bound=Aggregate)

CATEGORIES = ("bulk", "trigger")
SAVE_CHUNK = 500
WRITE_WAIT_SECONDS = 10.0  # inside gunicorn's default worker timeout: a stalled projection answers 503


class NotFound(LookupError):
    def __init__(self, what: str, key: str):
        super().__init__(f"{what} {key!r} not found")
        self.what, self.key = what, key


class Conflict(ValueError):
    pass


@dataclass
class IngestCounts:
    accepted: int = 0
    duplicates: int = 0
    unmatched: int = 0
    quarantined: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


SCHEMA_LOCK_KEY = 0x7265_7370_7363_6865  # "respsche": one process creates or migrates tables at a time


@contextmanager
def schema_lock(settings: Settings) -> Iterator[None]:
    """On PostgreSQL, a session advisory lock around table creation: concurrent
    ``CREATE TABLE IF NOT EXISTS`` in several processes fails ("tuple concurrently updated")."""
    if not settings.is_postgres:
        yield
        return
    import psycopg

    with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class _UnitOfWork:
    """Aggregates loaded or created for one command, saved together in one transaction.

    Loads many aggregates with one query (``prefetch``) and saves all pending
    events with one insert: a provider batch costs a few statements, not one
    per signal.
    """

    def __init__(self, app: "ResponsesApp"):
        self.app = app
        self.loaded: dict[uuid.UUID, Aggregate | None] = {}

    def prefetch(self, ids: Iterable[uuid.UUID]) -> None:
        wanted = [i for i in dict.fromkeys(ids) if i not in self.loaded]
        if not wanted:
            return
        found = self.app.load_many(wanted)
        for i in wanted:
            self.loaded[i] = found.get(i)

    def get(self, aggregate_id: uuid.UUID) -> Any:
        if aggregate_id not in self.loaded:
            self.prefetch([aggregate_id])
        return self.loaded[aggregate_id]

    def add(self, aggregate: A) -> A:
        self.loaded[aggregate.id] = aggregate
        return aggregate

    def get_or_create(self, aggregate_id: uuid.UUID, factory: Any) -> Any:
        found = self.get(aggregate_id)
        return found if found is not None else self.add(factory())

    def save(self) -> None:
        events = [e for a in self.loaded.values() if a is not None for e in a.collect_events()]
        if events:
            self.app.events.put(events)


class ResponsesApp(Application[uuid.UUID]):
    """Recipient responses: every signal journaled per recipient; responses folded under versioned rules."""

    name = "responses"
    env = {"COMPRESSOR_TOPIC": "", "CIPHER_TOPIC": ""}

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        with schema_lock(self.settings):  # gunicorn workers start together: one creates the tables at a time
            super().__init__(env=self.settings.eventsourcing_env())
            recorder_class = PostgresViewRecorder if self.settings.is_postgres else SQLiteViewRecorder
            self.views: ViewsMixin = self.factory.tracking_recorder(recorder_class)  # type: ignore[arg-type]
            self.views.create_views(self.generation())
        self._rulesets: dict[str, Ruleset] = {}
        self.follower: Any = None  # set by projections.follower.ViewFollower when it runs in-process

    # ---- rules and generations -----------------------------------------------------------

    def generation(self) -> int:
        return int(self.views.get_meta("generation", "1") or 1)

    def active_version(self) -> str:
        return self.views.get_meta("rules_version", DEFAULT_VERSION) or DEFAULT_VERSION

    def active_rules(self) -> Ruleset:
        return self.ruleset(self.active_version())

    def ruleset(self, version: str) -> Ruleset:
        """One ruleset version (the built-in default is version "1")."""
        cached = self._rulesets.get(version)
        if cached is not None:
            return cached
        if version == DEFAULT_VERSION:
            rules = DEFAULT_RULESET
        else:
            entry = self._rules_book().versions.get(version) if self._rules_book() else None
            if entry is None:
                raise NotFound("ruleset version", version)
            rules = Ruleset.from_document(entry["document"])
        self._rulesets[version] = rules
        return rules

    def _rules_book(self) -> RulesBook | None:
        try:
            return self.repository.get(rules_book_id())  # type: ignore[return-value]
        except AggregateNotFoundError:
            return None

    def rules_versions(self) -> dict[str, Any]:
        book = self._rules_book()
        versions = [{"version": DEFAULT_VERSION, "created_at": None, "created_by": None, "changes": {}, "based_on": None}]
        if book is not None:
            versions += [
                {"created_by": None, **{k: v for k, v in entry.items() if k != "document"}} for entry in book.versions.values()
            ]
        return {"active": self.active_version(), "versions": versions}

    def define_rules(self, document: dict[str, Any], created_by: str | None = None) -> Ruleset:
        """A new ruleset version: ``document`` merged over the active version (raises InvalidRuleset).

        ``created_by`` says who, for the rules history (never a secret: e.g. a token's fingerprint).
        """
        base = self.active_rules()
        requested = document.get("version") if isinstance(document, dict) else None

        def work(uow: _UnitOfWork) -> Ruleset:
            book: RulesBook = uow.get_or_create(rules_book_id(), RulesBook)
            taken = set(book.versions) | {DEFAULT_VERSION}
            if requested is not None and requested in taken:
                raise Conflict(f"ruleset version {requested!r} exists; versions are never edited in place")
            version = requested or str(max([int(v) for v in taken if v.isdigit()] + [0]) + 1)
            rules = base.patched({k: v for k, v in document.items() if k != "version"}, version=version)
            book.define(
                version=version,
                document=rules.to_document(),
                changes=rules.changes_from(base),
                based_on=base.version,
                created_at=iso(now_utc()),
                created_by=created_by,
            )
            return rules

        return self._in_transaction(work)

    def swap_generation(self, generation: int, version: str) -> None:
        """Make a rebuilt generation of views (and the rules it was built under) the active one."""
        lock = self.follower.lock if self.follower is not None else nullcontext()
        with lock, self.views.cursor(commit=True) as c:
            self.views.set_meta({"generation": str(generation), "rules_version": version}, cursor=c)

    # ---- jobs (executed by the projection process) ---------------------------------------------

    def request_activation(self, version: str) -> dict[str, Any]:
        """Journal a rebuild job under ``version``; the projection process runs it and swaps when done."""
        self.ruleset(version)  # 404 for an unknown version
        job = Job(job=uuid.uuid4().hex, kind="activate", rules_version=version, requested_at=iso(now_utc()))
        self.save(job)
        return job.as_dict()

    def job(self, job: str) -> dict[str, Any]:
        try:
            return self.repository.get(job_id(job)).as_dict()  # type: ignore[attr-defined]
        except AggregateNotFoundError:
            raise NotFound("job", job) from None

    def pending_jobs(self) -> tuple[list[Job], int]:
        """Jobs requested but not finished, and the journal position scanned to.

        They survive restarts: the journal holds the requests, and the scan
        position (``jobs_position``) only moves once they have finished.
        """
        start = int(self.views.get_meta("jobs_position", "0") or 0)
        topic = "domain.aggregates:Job.Requested"
        found: list[Job] = []
        while True:
            notes = self.recorder.select_notifications(start=start + 1, limit=500, topics=[topic])
            if not notes:
                break
            for n in notes:
                job: Job = self.repository.get(n.originator_id)  # type: ignore[assignment]
                if job.status == "running":
                    found.append(job)
            start = notes[-1].id
        return found, start

    def jobs_done_up_to(self, position: int) -> None:
        self.views.set_meta({"jobs_position": str(position)})

    def update_job(self, job: str, *, progress: float | None = None, status: str | None = None, error: str | None = None) -> None:
        def work(uow: _UnitOfWork) -> None:
            j: Job = uow.get(job_id(job))
            if status is not None:
                j.finish(status=status, error=error, finished_at=iso(now_utc()))
            elif progress is not None:
                j.progressed(progress=progress)

        self._in_transaction(work)

    # ---- what-if ---------------------------------------------------------------------------------

    def what_if(
        self,
        rules: dict[str, Any] | str,
        mailing_ids: list[str] | None = None,
        sample: int = 20,
        progress: Any = None,
    ) -> dict[str, Any]:
        """Fold the journal under candidate rules (a patch over the active set, or a version) and diff."""
        from projections.replay import what_if

        current = self.active_rules()
        candidate = self.ruleset(rules) if isinstance(rules, str) else current.patched(rules, version="what-if")
        for mailing_id in mailing_ids or []:
            self.get_mailing_aggregate(mailing_id)
        return what_if(self, current, candidate, mailing_ids, sample, progress)

    # ---- audit history ------------------------------------------------------------------------

    def history(
        self,
        mailing_id: str,
        contact_id: str,
        as_of: datetime | None = None,
        rules: Ruleset | None = None,
        lang: str = "en",
    ) -> dict[str, Any]:
        """Every signal of a recipient, in journal order, with what it did and why under ``rules``."""
        from projections.replay import explain

        mailing = self.get_mailing_aggregate(mailing_id)
        events = list(self.repository.event_store.get(recipient_id(mailing_id, contact_id)))
        if not events:
            raise NotFound("recipient", f"{mailing_id}/{contact_id}")
        signals = [
            (e.originator_version, Signal.from_record(e.signal))  # type: ignore[attr-defined]
            for e in events
            if isinstance(e, Recipient.SignalRecorded)  # type: ignore[attr-defined]
        ]
        return explain(signals, rules or self.active_rules(), parse_iso(mailing.started_at), as_of, lang)

    # ---- loading many aggregates at once ----------------------------------------------------

    def load_many(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Aggregate]:
        """Reconstruct several aggregates from their events, read with one query per 500 ids."""
        recorder: Any = self.recorder
        table = recorder.events_table_name
        by_id: dict[uuid.UUID, list[Any]] = {}
        for chunk in _chunks(list(ids), 500):
            if self.settings.is_postgres:
                schema = recorder.datastore.schema
                name = f'"{schema}"."{table}"' if schema else f'"{table}"'
                sql = f"SELECT * FROM {name} WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
                params: Any = (list(chunk),)
            else:
                sql = f"SELECT * FROM {table} WHERE originator_id IN ({','.join('?' * len(chunk))}) ORDER BY originator_id, originator_version"
                params = [i.hex for i in chunk]
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(sql, params)
                rows = c.fetchall()
            for row in rows:
                oid = row["originator_id"]
                oid = oid if isinstance(oid, uuid.UUID) else uuid.UUID(oid)
                stored = StoredEvent(originator_id=oid, originator_version=row["originator_version"], topic=row["topic"], state=bytes(row["state"]))
                by_id.setdefault(oid, []).append(self.mapper.to_domain_event(stored))
        aggregates: dict[uuid.UUID, Aggregate] = {}
        for oid, events in by_id.items():
            aggregate: Any = None
            for event in events:
                aggregate = event.mutate(aggregate)
            aggregates[oid] = aggregate
        return aggregates

    # ---- retries ------------------------------------------------------------------------------

    def _in_transaction(self, work: Any, attempts: int = 40) -> Any:
        """Run ``work(uow)`` and save; retry from fresh state when another writer got there first.

        Concurrent provider batches often touch the same recipients: the loser
        backs off for a random, growing while (at most ~0.3 s a try) so the
        writers spread out instead of colliding again in step.
        """
        for attempt in range(attempts):
            uow = _UnitOfWork(self)
            result = work(uow)
            try:
                uow.save()
                return result
            except IntegrityError:
                if attempt == attempts - 1:
                    raise
                time.sleep(random.uniform(0, min(0.3, 0.005 * 2**attempt)))
        raise AssertionError("unreachable")

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

        def work(uow: _UnitOfWork) -> tuple[dict[str, Any], bool]:
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
            return self.repository.get(mailing_id_of(mailing_id))  # type: ignore[return-value]
        except AggregateNotFoundError:
            raise NotFound("mailing", mailing_id) from None

    def add_audience(self, mailing_id: str, recipients: Sequence[dict[str, Any]]) -> dict[str, int]:
        """Add recipients (idempotent): each starts ``planned``; parked signals naming it are claimed."""
        self.get_mailing_aggregate(mailing_id)
        added = present = 0
        for chunk in _chunks(list(recipients), SAVE_CHUNK):

            def work(uow: _UnitOfWork, chunk: list[dict[str, Any]] = chunk) -> tuple[int, int]:
                a = p = 0
                cids = [str(item["contact_id"]) for item in chunk]
                uow.prefetch(
                    [recipient_id(mailing_id, c) for c in cids]
                    + [contact_id_of(c) for c in cids]
                    + [unmatched_bucket_id(recipient_bucket(mailing_id, c)) for c in cids]
                )
                for item in chunk:
                    cid, name, email = str(item["contact_id"]), item.get("name"), item.get("email")
                    recipient: Recipient | None = uow.get(recipient_id(mailing_id, cid))
                    if recipient is None:
                        recipient = uow.add(Recipient(mailing_id=mailing_id, contact_id=cid, name=name, email=email))
                        a += 1
                    else:
                        p += 1
                        if (name, email) != (recipient.name, recipient.email) and (name or email):
                            recipient.change_details(name or recipient.name, email or recipient.email)
                    contact: Contact = uow.get_or_create(contact_id_of(cid), lambda cid=cid: Contact(contact_id=cid))
                    if email and contact.email != email:
                        contact.record_command({"op": "patch", "contact_id": cid, "email": email, "at": iso(now_utc())})
                    self._claim(uow, recipient_bucket(mailing_id, cid), recipient)
                return a, p

            a, p = self._in_transaction(work)
            added, present = added + a, present + p
        return {"added": added, "already_present": present}

    def _claim(self, uow: _UnitOfWork, bucket_name: str, recipient: Recipient) -> int:
        bucket: UnmatchedBucket | None = uow.get(unmatched_bucket_id(bucket_name))
        if bucket is None:
            return 0
        signals = bucket.unclaimed()
        if not signals:
            return 0
        for signal in sorted(signals, key=lambda s: s.received_at):
            recipient.record(signal)  # keeps its original received_at
        bucket.claim([s.key for s in signals], recipient.mailing_id, recipient.contact_id)
        return len(signals)

    # ---- dispatch, stop, sweep ----------------------------------------------------------------

    def dispatch(self, mailing_id: str, now: datetime | None = None) -> dict[str, Any]:
        """Decide the pre-send outcome of every planned recipient, in audience order."""
        now = now or now_utc()
        mailing = self.get_mailing_aggregate(mailing_id)
        self.wait_for_views()
        g = self.generation()
        t = self.views.t
        planned = self.views.fetch(
            f"SELECT r.contact_id, r.name, r.email, c.state AS contact_state FROM {t(g, 'recipients')} r "
            f"LEFT JOIN {t(g, 'contacts')} c ON c.contact_id = r.contact_id "
            "WHERE r.mailing_id = ? AND r.response = 'planned' ORDER BY r.seq",
            (mailing_id,),
        )
        taken = {
            normalise_email(r["email"])
            for r in self.views.fetch(
                f"SELECT email FROM {t(g, 'recipients')} WHERE mailing_id = ? AND sent_at IS NOT NULL", (mailing_id,)
            )
        }
        taken.discard(None)
        terms = MailingTerms(mailing.email_type, mailing.prevent_duplicates, parse_iso(mailing.expires_at))
        send: list[dict[str, Any]] = []
        outcomes: Counter[str] = Counter()
        from projections.views import load_contact  # local: views own the serialisation

        first = True
        for chunk in _chunks(planned, SAVE_CHUNK):

            def work(uow: _UnitOfWork, chunk: list[Any] = chunk, first: bool = first) -> list[tuple[str, str, str | None]]:
                decided: list[tuple[str, str, str | None]] = []
                chunk_taken = set(taken)
                addresses = [
                    normalise_email((load_contact(row["contact_state"]).email if row["contact_state"] else None) or row["email"])
                    for row in chunk
                ]
                uow.prefetch(
                    [recipient_id(mailing_id, row["contact_id"]) for row in chunk]
                    + [address_id(mailing.provider, a) for a in addresses if a]
                    + [unmatched_bucket_id(email_bucket(mailing.provider, a)) for a in addresses if a]
                )
                if first:
                    m: Mailing = uow.get(mailing.id)
                    m.start_dispatch_wave(iso(now))  # type: ignore[arg-type]
                for row in chunk:
                    cid = row["contact_id"]
                    key = dedup_key("dispatch", mailing_id, cid)
                    recipient: Recipient = uow.get(recipient_id(mailing_id, cid))
                    if recipient is None or recipient.has_signal(key):
                        continue
                    contact = load_contact(row["contact_state"]) if row["contact_state"] else ContactState()
                    email = contact.email or row["email"]
                    code = dispatch_outcome(email, contact, terms, chunk_taken, now)
                    if email and email != recipient.email:
                        recipient.change_details(recipient.name, email)
                    recipient.record(
                        system_signal(code, key=key, at=now, raw={"decided_by": "dispatch", "provider": mailing.provider})
                    )
                    if code == "sent_to_provider":
                        address = normalise_email(email)
                        index: AddressIndex = uow.get_or_create(
                            address_id(mailing.provider, address),  # type: ignore[arg-type]
                            lambda: AddressIndex(provider=mailing.provider, email=address),
                        )
                        index.add_recipient(mailing_id, cid)
                        self._claim(uow, email_bucket(mailing.provider, address), recipient)  # type: ignore[arg-type]
                    decided.append((cid, code, email))
                return decided

            decided = self._in_transaction(work)
            first = False
            for cid, code, email in decided:
                outcomes[code] += 1
                if code == "sent_to_provider":
                    taken.add(normalise_email(email))
                    send.append({"contact_id": cid, "email": email, "metadata": {"mailing_id": mailing_id, "contact_id": cid}})
        if first:  # nobody planned: still a wave (the mailing's start)
            self._in_transaction(lambda uow: uow.get(mailing.id).start_dispatch_wave(iso(now)))
        return {"send": send, "outcomes": dict(outcomes)}

    def _record_system(self, targets: Iterable[tuple[str, str]], code: str, key_prefix: str, now: datetime, *extra: str) -> int:
        recorded = 0
        for chunk in _chunks(list(targets), SAVE_CHUNK):

            def work(uow: _UnitOfWork, chunk: list[tuple[str, str]] = chunk) -> int:
                n = 0
                uow.prefetch(recipient_id(m, c) for m, c in chunk)
                for mailing_id, cid in chunk:
                    recipient: Recipient | None = uow.get(recipient_id(mailing_id, cid))
                    if recipient is not None and recipient.record(
                        system_signal(code, key=dedup_key(key_prefix, mailing_id, cid, *extra), at=now)
                    ):
                        n += 1
                return n

            recorded += self._in_transaction(work)
        return recorded

    def stop(self, mailing_id: str, now: datetime | None = None) -> int:
        """Stop a mailing: planned, ready-to-send and queued recipients become ``stopped_manually``."""
        self.get_mailing_aggregate(mailing_id)
        self.wait_for_views()
        rows = self.views.fetch(
            f"SELECT mailing_id, contact_id FROM {self.views.t(self.generation(), 'recipients')} "
            "WHERE mailing_id = ? AND response IN ('planned', 'ready_to_send', 'queued') ORDER BY seq",
            (mailing_id,),
        )
        now = now or now_utc()
        stopped = self._record_system([(r["mailing_id"], r["contact_id"]) for r in rows], "stopped_manually", "stop", now)
        self._in_transaction(lambda uow: uow.get(mailing_id_of(mailing_id)).stop(at=iso(now), recipients=stopped))
        return stopped

    def sweep(self, now: datetime | None = None) -> dict[str, int]:
        """Expire planned recipients of expired mailings; record a confirmation check for those still waiting."""
        now = now or now_utc()
        self.wait_for_views()
        g, t = self.generation(), self.views.t
        expired = self.views.fetch(
            f"SELECT r.mailing_id, r.contact_id FROM {t(g, 'recipients')} r JOIN {t(g, 'mailings')} m ON m.id = r.mailing_id "
            "WHERE r.response = 'planned' AND m.expires_at IS NOT NULL AND m.expires_at < ? ORDER BY r.seq",
            (iso(now),),
        )
        preparing = tuple(code for code, r in RESPONSES.items() if r.group == PREPARING)
        waiting = self.views.fetch(
            f"SELECT mailing_id, contact_id FROM {t(g, 'recipients')} WHERE sent_at IS NOT NULL "
            f"AND response IN ({','.join('?' * len(preparing))}) ORDER BY seq",
            preparing,
        )
        return {
            "expired": self._record_system([(r["mailing_id"], r["contact_id"]) for r in expired], "stopped_expired", "expired", now),
            "checked": self._record_system(
                [(r["mailing_id"], r["contact_id"]) for r in waiting], CONFIRMATION_CHECKED, "confirmation", now, iso(now) or ""
            ),
        }

    # ---- ingestion ----------------------------------------------------------------------------

    def record_batch(self, batch: ParsedBatch) -> IngestCounts:
        """Journal a provider batch in one transaction: correlate, deduplicate, park the unmatched."""

        def work(uow: _UnitOfWork) -> IngestCounts:
            counts = IngestCounts()
            uow.prefetch(self._batch_ids(batch))
            for event in batch.events:
                outcome = self._record_event(uow, event)
                setattr(counts, outcome, getattr(counts, outcome) + 1)
            for notice in batch.notices:
                stored = self._keep_side(uow, f"notice:{notice.key}", "notice", notice.provider, iso(notice.received_at), {"kind": notice.kind, "raw": notice.raw})  # type: ignore[arg-type]
                if stored:
                    counts.accepted += 1
                else:
                    counts.duplicates += 1
            for item in batch.quarantined:
                self._quarantine(uow, item)
                counts.quarantined += 1
            return counts

        return self._in_transaction(work)

    def _batch_ids(self, batch: ParsedBatch) -> list[uuid.UUID]:
        """The aggregates a batch will touch, as far as can be told before correlating."""
        ids: list[uuid.UUID] = []
        for event in batch.events:
            c, key = event.correlation, event.signal.key
            if c.test:
                ids.append(side_record_id(f"test:{key}"))
            elif c.mailing_id and c.contact_id:
                ids.append(recipient_id(c.mailing_id, c.contact_id))
                ids.append(unmatched_bucket_id(recipient_bucket(c.mailing_id, c.contact_id)))
            elif (address := normalise_email(c.email)) is not None:
                ids.append(address_id(event.signal.source, address))
        ids.extend(side_record_id(f"notice:{n.key}") for n in batch.notices)
        return ids

    def quarantine(self, source: str, raw_text: str, error: str) -> None:
        """Keep a whole body we could not parse, with the error."""
        self._in_transaction(lambda uow: self._quarantine(uow, Quarantined(source, raw_text, error)))

    def _quarantine(self, uow: _UnitOfWork, item: Quarantined) -> None:
        self._keep_side(
            uow, f"quarantine:{uuid.uuid4().hex}", "quarantine", item.source, iso(now_utc()),  # type: ignore[arg-type]
            {"raw": item.raw_text, "error": item.error},
        )

    def _keep_side(self, uow: _UnitOfWork, key: str, kind: str, source: str, received_at: str, payload: dict[str, Any]) -> bool:
        if uow.get(side_record_id(key)) is not None:
            return False
        uow.add(SideRecord(key=key, kind=kind, source=source, received_at=received_at, payload=payload))
        return True

    def _record_event(self, uow: _UnitOfWork, event: ProviderEvent) -> str:
        signal, corr = event.signal, event.correlation
        if corr.test:
            stored = self._keep_side(
                uow, f"test:{signal.key}", "test_send", signal.source, iso(signal.received_at),  # type: ignore[arg-type]
                {"mailing_id": corr.mailing_id, "contact_id": corr.contact_id, "email": corr.email, "signal": signal.to_record()},
            )
            return "accepted" if stored else "duplicates"
        recipient, bucket_name = self._correlate(uow, signal.source, corr.mailing_id, corr.contact_id, corr.email)
        if recipient is not None:
            return "accepted" if recipient.record(signal) else "duplicates"
        bucket: UnmatchedBucket = uow.get_or_create(unmatched_bucket_id(bucket_name), lambda: UnmatchedBucket(bucket=bucket_name))
        parked = bucket.park(signal, {"mailing_id": corr.mailing_id, "contact_id": corr.contact_id, "email": corr.email})
        return "unmatched" if parked else "duplicates"

    def _correlate(
        self, uow: _UnitOfWork, source: str, mailing_id: str | None, contact_id: str | None, email: str | None
    ) -> tuple[Recipient | None, str]:
        """Metadata first; failing that, the address among recipients sent through that provider, most recent first."""
        if mailing_id and contact_id:
            return uow.get(recipient_id(mailing_id, contact_id)), recipient_bucket(mailing_id, contact_id)
        address = normalise_email(email)
        if address is None:
            return None, "nowhere"
        index: AddressIndex | None = uow.get(address_id(source, address))
        latest = index.most_recent() if index is not None else None
        if latest is not None:
            return uow.get(recipient_id(*latest)), email_bucket(source, address)
        return None, email_bucket(source, address)

    # ---- contacts ---------------------------------------------------------------------------------

    def change_contact(self, contact_id: str, changes: dict[str, Any]) -> None:
        """A manual flag or email change, journaled on the contact (the later change wins)."""
        self._contact_command(contact_id, {"op": "patch", **changes})

    def set_subscription(self, contact_id: str, email_type: str, subscribed: bool) -> None:
        self._contact_command(contact_id, {"op": "subscription", "email_type": email_type, "subscribed": subscribed})

    def _contact_command(self, contact_id: str, command: dict[str, Any]) -> None:
        def work(uow: _UnitOfWork) -> None:
            contact: Contact = uow.get_or_create(contact_id_of(contact_id), lambda: Contact(contact_id=contact_id))
            contact.record_command({**command, "contact_id": contact_id, "at": iso(now_utc())})

        self._in_transaction(work)

    # ---- views ------------------------------------------------------------------------------------

    def journal_position(self) -> int:
        return self.recorder.max_notification_id() or 0  # type: ignore[attr-defined]

    def views_position(self) -> int:
        return self.views.position(self.generation())

    def wait_for_views(self, timeout: float = WRITE_WAIT_SECONDS) -> None:
        """Read-your-writes: wait until the views have applied everything journaled so far."""
        target = self.journal_position()
        if self.follower is not None:
            self.follower.catch_up(until=target)
            return
        deadline = time.monotonic() + timeout
        while self.views_position() < target:
            if time.monotonic() > deadline:
                raise TimeoutError("the projection is behind; is `responses project` running?")
            time.sleep(0.02)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
