"""The lean replay behind the what-if: a direct reader of the journal, partitioned by contact.

* ``JournalReader`` reads the library's stored-events table with one plain SQL query a page
  (tuples, no per-row library objects), decodes ``state`` with orjson and hands the projector
  light signal values (``LightSignal``): the fold is still ``domain.fold``, through ``Projector``.
* ``fold_partition`` folds the recipients of one partition of contacts (``crc32(contact) % parts``)
  under the current and the candidate rules and answers a mergeable ``Partial``. A contact's
  recipients, its commands and so its effects all fall in one partition, so partitions are
  independent and their merged answer is the single-process answer, exactly.
* ``run_partitions`` runs them in ``REPLAY_WORKERS`` processes ('spawn': nothing of the caller's
  state is forked) — from the projection process or the CLI, never an HTTP worker (the HTTP
  worker journals a job instead).
"""

from __future__ import annotations

import atexit
import ctypes
import multiprocessing
import os
import signal
import sqlite3
import sys
import threading
import time
import types
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from domain.contacts import ContactState
from domain.fold import RecipientState
from domain.rules import Ruleset
from domain.signals import clamped_time, key_digest
from projections.ports import ProjectionSource
from projections.projector import TOPIC_PREFIX, MemoryStore, Projector
from projections.summary import SummaryBuilder

PAGE = 10_000
# The journal events a what-if folds (kept inputs, jobs and rules are not part of any recipient's state).
MAILING_TOPICS = (TOPIC_PREFIX + "Mailing.Created", TOPIC_PREFIX + "Mailing.DispatchWaveStarted")
JOINED = TOPIC_PREFIX + "Recipient.Joined"
RECIPIENT_TOPICS = (JOINED, TOPIC_PREFIX + "Recipient.DetailsChanged", TOPIC_PREFIX + "Recipient.SignalRecorded")
CONTACT_TOPICS = (TOPIC_PREFIX + "Contact.Registered", TOPIC_PREFIX + "Contact.CommandRecorded")
REPLAY_TOPICS = MAILING_TOPICS + RECIPIENT_TOPICS + CONTACT_TOPICS
SIGNAL = TOPIC_PREFIX + "Recipient.SignalRecorded"


# ---- the journal, read directly ------------------------------------------------------------------


@dataclass(frozen=True)
class JournalSource:
    """Where the stored events are (picklable: each worker process opens its own connection)."""

    kind: str  # "sqlite" | "postgres"
    target: str  # the SQLite file, or the PostgreSQL URL
    table: str

    @classmethod
    def of(cls, app: ProjectionSource) -> JournalSource:
        settings = app.settings
        recorder: Any = app.recorder  # the library's recorders of both stores: a table name, and a datastore on PostgreSQL
        events_table: str = recorder.events_table_name
        if settings.is_postgres:
            schema = recorder.datastore.schema
            table = f'"{schema}"."{events_table}"' if schema else f'"{events_table}"'
            return cls("postgres", settings.database_url, table)
        return cls("sqlite", settings.eventsourcing_env()["SQLITE_DBNAME"], events_table)


def last_folded_position(app: ProjectionSource) -> int:
    """The journal position of the last event a fold reads (the views' or a what-if's): jobs, their
    progress and rules versions journaled since leave it where it is. Read backwards from the end,
    so it costs the events after that one, not the journal."""
    source = JournalSource.of(app)
    topics = sorted(set(REPLAY_TOPICS) | set(Projector.topics()))
    if source.kind == "sqlite":
        sql = f"SELECT rowid FROM {source.table} WHERE topic IN ({','.join('?' * len(topics))}) ORDER BY rowid DESC LIMIT 1"
        params: Any = topics
    else:
        sql = f"SELECT notification_id FROM {source.table} WHERE topic = ANY(%s) ORDER BY notification_id DESC LIMIT 1"
        params = (topics,)
    recorder: Any = app.recorder  # either store's recorder has a datastore opening transactions
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(sql, params)
        row = c.fetchone()
    if row is None:
        return 0
    return int(row[0] if not isinstance(row, dict) else next(iter(row.values())))


class JournalReader:
    """Pages of ``(position, originator id, topic, state bytes)`` in journal order: one query a page."""

    def __init__(self, source: JournalSource):
        self.source = source
        if source.kind == "sqlite":
            self.conn: Any = sqlite3.connect(f"file:{source.target}?mode=ro", uri=True, timeout=30)
            self.sql = f"SELECT rowid, originator_id, topic, state FROM {source.table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
        else:
            self.conn = psycopg.connect(source.target, autocommit=True)
            self.sql = (
                f"SELECT notification_id, originator_id::text, topic, state FROM {source.table} "
                "WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id LIMIT %s"
            )

    def rows(
        self, end: int, after: int = 0, page: int = PAGE, progress: Callable[[int, int], None] | None = None
    ) -> Iterator[tuple[Any, ...]]:
        position = after
        while position < end:
            rows = self.conn.execute(self.sql, (position, end, page)).fetchall()
            if not rows:
                break
            yield from rows
            position = rows[-1][0]
            if progress is not None:
                progress(position, end)

    def rows_of(self, originators: tuple[str, ...], end: int, chunk: int = 500) -> list[tuple[Any, ...]]:
        """Every replayed event of these aggregates (hex ids), to ``end``, in journal order: the
        primary key finds them, so the cost follows how many there are, not the journal's size."""
        found: list[tuple[Any, ...]] = []
        topics = list(REPLAY_TOPICS)
        for i in range(0, len(originators), chunk):
            ids = list(originators[i : i + chunk])
            if self.source.kind == "sqlite":
                sql = (
                    f"SELECT rowid, originator_id, topic, state FROM {self.source.table} WHERE originator_id IN "
                    f"({','.join('?' * len(ids))}) AND rowid <= ?"
                )
                rows = self.conn.execute(sql, (*ids, end)).fetchall()
            else:
                sql = (
                    f"SELECT notification_id, originator_id::text, topic, state FROM {self.source.table} "
                    "WHERE originator_id = ANY(%s::uuid[]) AND notification_id <= %s"
                )
                rows = self.conn.execute(sql, (ids, end)).fetchall()
            found.extend(r for r in rows if r[2] in topics)
        found.sort(key=lambda r: r[0])
        return found

    def close(self) -> None:
        self.conn.close()


class LightSignal:
    """A stored signal as the fold reads it: the attributes of ``domain.signals.Signal``, decoded
    once, without a dataclass's construction (``key_digest`` computed up front)."""

    __slots__ = (
        "key",
        "source",
        "fields",
        "received_at",
        "occurred_at",
        "url",
        "reason",
        "detail",
        "user_agent",
        "machine",
        "raw",
        "key_digest",
        "effective_time",
    )

    def __init__(self, r: dict[str, Any]):
        self.key = r["key"]
        self.source = r["source"]
        self.fields = r["fields"]
        self.received_at = _time(r["received_at"])
        occurred = r.get("occurred_at")
        self.occurred_at = None if occurred is None else _time(occurred)
        self.url = r.get("url")
        self.reason = r.get("reason")
        self.detail = r.get("detail")
        self.user_agent = r.get("user_agent")
        self.machine = bool(r.get("machine", False))
        self.raw = r.get("raw")
        self.key_digest = key_digest(self.key)
        effective = r.get("effective_at")  # absent in a record from before it was stored: the rule, when read
        self.effective_time = clamped_time(self.occurred_at, self.received_at) if effective is None else _time(effective)


def _time(text: str) -> datetime:
    """``domain.signals.parse_iso``, with the common case (already UTC) left as parsed."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is UTC:
        return at
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# ---- one partition ---------------------------------------------------------------------------------


ChangedRow = tuple[int, str, str, tuple[str, str | None, int, int], tuple[str, str | None, int, int]]


@dataclass
class Partial:
    """What one partition of contacts contributes to a what-if answer (merged by ``merge``)."""

    considered: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    counters_changed: int = 0
    changed: list[ChangedRow] = field(default_factory=list)  # (join seq, mailing, contact, before, after)
    summaries: dict[str, tuple[SummaryBuilder, SummaryBuilder]] = field(default_factory=dict)
    newly: list[str] = field(default_factory=list)
    no_longer: list[str] = field(default_factory=list)
    events: int = 0  # journal events folded (of this partition)


@dataclass(frozen=True)
class PartitionTask:
    source: JournalSource
    end: int
    current: Ruleset
    candidate: Ruleset
    part: int
    parts: int
    mailing_ids: tuple[str, ...] | None
    contacts: frozenset[str] | None = None  # only these contacts (a scoped what-if); None: all
    light: bool = True  # LightSignal values (False: the projector builds full ``Signal`` objects)
    # A scoped what-if reads only these aggregates' events (hex ids): the mailings, then groups of
    # whole contacts (each contact's aggregate and its recipients), folded a group at a time.
    mailings: tuple[str, ...] = ()
    groups: tuple[tuple[str, ...], ...] | None = None


def partition_of(contact_id: str, parts: int) -> int:
    return zlib.crc32(contact_id.encode("utf-8", "surrogatepass")) % parts if parts > 1 else 0


def fold_partition(task: PartitionTask, rows: Iterator[tuple[Any, ...]] | None = None) -> Partial:
    """Fold the journal's recipients of one partition under both rulesets and diff them."""
    reader = None
    if rows is None:
        reader = JournalReader(task.source)
        if task.groups is not None:
            try:
                return _fold_groups(task, reader)
            finally:
                reader.close()
        rows = reader.rows(task.end)
    try:
        return _fold_rows(task, rows)
    finally:
        if reader is not None:
            reader.close()


def _fold_groups(task: PartitionTask, reader: JournalReader) -> Partial:
    """Contacts are independent of each other: fold a group of whole contacts at a time (with the
    mailings' events in journal order among theirs), diff, drop; memory follows one group."""
    mailings = reader.rows_of(task.mailings, task.end)
    partials = []
    for group in task.groups or ():
        rows = sorted(mailings + reader.rows_of(group, task.end), key=lambda r: r[0])
        partials.append(_fold_rows(task, iter(rows)))
    return merge(partials)


def _fold_rows(task: PartitionTask, rows: Iterator[tuple[Any, ...]]) -> Partial:
    before, after = MemoryStore(), MemoryStore()
    p_before, p_after = Projector(task.current, before), Projector(task.candidate, after)
    parts, part, only, light = task.parts, task.part, task.contacts, task.light
    # Projector.apply, without its topic parsing: every topic read here has a handler
    before_handlers = {t: p_before._handlers[t[len(TOPIC_PREFIX) :]] for t in REPLAY_TOPICS}
    after_handlers = {t: p_after._handlers[t[len(TOPIC_PREFIX) :]] for t in REPLAY_TOPICS}
    mine: set[str] = set()
    loads = orjson.loads
    events = 0

    def ours(contact_id: str) -> bool:
        return (only is None or contact_id in only) and (parts == 1 or partition_of(contact_id, parts) == part)

    for seq, oid, topic, state in rows:
        if topic == SIGNAL or topic in RECIPIENT_TOPICS:
            if topic == JOINED:
                data = loads(state)
                if not ours(data["contact_id"]):
                    continue
                mine.add(oid)
            elif oid not in mine:
                continue
            else:
                data = loads(state)
                if topic == SIGNAL and light:
                    data["_signal"] = LightSignal(data["signal"])
        elif topic in MAILING_TOPICS:
            data = loads(state)
        elif topic in CONTACT_TOPICS:
            data = loads(state)
            contact_id = data["command"]["contact_id"] if "command" in data else data.get("contact_id")
            if contact_id is None or not ours(contact_id):
                continue
        else:
            continue
        events += 1
        before_handlers[topic](seq, oid, data)
        after_handlers[topic](seq, oid, data)
    partial = diff(before, after, task.mailing_ids)
    partial.events = events
    return partial


def diff(before: MemoryStore, after: MemoryStore, mailing_ids: tuple[str, ...] | list[str] | None) -> Partial:
    """The difference of two folds of the same recipients (the what-if's arithmetic, for one partition)."""
    scope = set(mailing_ids) if mailing_ids else None
    p = Partial()
    contacts_in_scope: set[str] = set()
    for rid, b in before.recipients.items():
        if scope is not None and b.mailing_id not in scope:
            continue
        a = after.recipients[rid]
        p.considered += 1
        contacts_in_scope.add(b.contact_id)
        sb, sa = p.summaries.setdefault(b.mailing_id, (SummaryBuilder(), SummaryBuilder()))
        add_state(sb, b.state)
        add_state(sa, a.state)
        response_changed = b.state.response != a.state.response
        counters = (b.state.opens, b.state.clicks) != (a.state.opens, a.state.clicks)
        if response_changed:
            p.transitions[(b.state.response, a.state.response)] += 1
        if counters:
            p.counters_changed += 1
        if response_changed or counters:
            p.changed.append((b.seq, b.mailing_id, b.contact_id, _brief(b.state), _brief(a.state)))
    cids = contacts_in_scope if scope is not None else set(before.contacts) | set(after.contacts)
    for cid in cids:
        was = (before.contacts.get(cid) or ContactState()).suppressed
        now = (after.contacts.get(cid) or ContactState()).suppressed
        if now and not was:
            p.newly.append(cid)
        elif was and not now:
            p.no_longer.append(cid)
    return p


def add_state(builder: SummaryBuilder, s: RecipientState) -> None:
    builder.add(s.response, s.reason, s.sent, s.unique_open, s.opens, s.clicks)


def _brief(s: RecipientState) -> tuple[str, str | None, int, int]:
    return (s.response, s.reason, s.opens, s.clicks)


def combine(into: SummaryBuilder, other: SummaryBuilder, sign: int = 1) -> None:
    """``into`` += ``other`` (or -=): summaries of disjoint recipients add up."""
    into.audience += sign * other.audience
    into.sent += sign * other.sent
    into.unique_opens += sign * other.unique_opens
    into.total_opens += sign * other.total_opens
    into.unique_clicks += sign * other.unique_clicks
    into.total_clicks += sign * other.total_clicks
    for code, n in other.responses.items():
        into.responses[code] += sign * n
    for code, reasons in other.reasons.items():
        mine = into.reasons.setdefault(code, Counter())
        for reason, n in reasons.items():
            mine[reason] += sign * n
    if sign < 0:  # as if the subtracted recipients had never been added
        for code in [c for c in into.reasons if into.responses[c] <= 0]:
            del into.reasons[code]
        for reasons in into.reasons.values():
            for reason in [r for r, n in reasons.items() if n <= 0]:
                del reasons[reason]


def merge(partials: list[Partial]) -> Partial:
    total = Partial()
    for p in partials:
        total.considered += p.considered
        total.transitions.update(p.transitions)
        total.counters_changed += p.counters_changed
        total.changed.extend(p.changed)
        total.newly.extend(p.newly)
        total.no_longer.extend(p.no_longer)
        total.events += p.events
        for mailing, (sb, sa) in p.summaries.items():
            tb, ta = total.summaries.setdefault(mailing, (SummaryBuilder(), SummaryBuilder()))
            combine(tb, sb)
            combine(ta, sa)
    total.changed.sort(key=lambda row: row[0])  # join order: the order one process meets them in
    total.newly.sort()
    total.no_longer.sort()
    return total


# ---- many partitions -------------------------------------------------------------------------------


def run_partitions(
    tasks: list[PartitionTask],
    follow: Callable[[], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Partial]:
    """Fold every partition: in this process when there is one, else one worker process each.

    While the workers fold, ``follow`` (the projection process keeping its views current) runs
    about every half second here."""
    if len(tasks) == 1:
        task = tasks[0]
        if task.groups is not None:
            return [fold_partition(task)]
        reader = JournalReader(task.source)
        last = [time.monotonic()]

        def page_done(position: int, end: int) -> None:  # between pages: the projection keeps following
            if progress is not None:
                progress(position, end)
            if follow is not None and time.monotonic() - last[0] >= 0.5:
                follow()
                last[0] = time.monotonic()

        try:
            return [fold_partition(task, reader.rows(task.end, progress=page_done))]
        finally:
            reader.close()
    pool = worker_pool(len(tasks))
    results: list[Partial | None] = [None] * len(tasks)
    try:
        futures = _submit_all(pool, tasks)
    except BrokenProcessPool:
        _POOLS.pop(len(tasks), None)
        raise
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        for f in done:
            try:
                results[futures[f]] = f.result()
            except BrokenProcessPool:  # a worker died (killed, out of memory): the next what-if starts a new pool
                _POOLS.pop(len(tasks), None)
                raise
        if progress is not None:
            progress(len(tasks) - len(pending), len(tasks))
        if pending and follow is not None:
            started = time.monotonic()
            follow()
            if time.monotonic() - started < 0.05:
                time.sleep(0.05)
    return [r for r in results if r is not None]


_POOLS: dict[int, ProcessPoolExecutor] = {}
# Every submit to the pools happens in this one thread, which lives as long as the process: the
# workers start there, on the first submits, and a worker's parent-death signal (Linux) follows the
# thread that started it, so it must be one that never ends before the process does.
_SUBMITTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-pool")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_WATCH_SECONDS = 0.2


def _submit_all(pool: ProcessPoolExecutor, tasks: list[PartitionTask]) -> dict[Any, int]:
    def submit() -> dict[Any, int]:
        with _main_unseen():  # workers start here, on the first submit
            return {pool.submit(fold_partition, task): i for i, task in enumerate(tasks)}

    return _SUBMITTER.submit(submit).result()


def die_with_parent(parent: int) -> None:
    """A replay worker's initializer: it ends when the process that started it ends, however that one
    ended (kill -9 included). Linux: the kernel sends SIGKILL (``PR_SET_PDEATHSIG``); anywhere: a
    thread sees the parent change (re-parented to init or a subreaper) and exits. The multiprocessing
    resource tracker then sees every end of its pipe closed and exits too."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_WATCH_SECONDS)
    os._exit(1)


@contextmanager
def _main_unseen() -> Iterator[None]:
    """Spawned workers import only what a fold needs (``fold_partition``'s module), not this
    process's main module (the CLI's, the benchmark's: its imports, memory and start-up time)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def worker_pool(size: int) -> ProcessPoolExecutor:
    """The replay's worker processes, started once ('spawn': a clean interpreter, nothing of this
    process forked) and kept for the next what-if; shut down at exit."""
    pool = _POOLS.get(size)
    if pool is None:
        pool = _POOLS[size] = ProcessPoolExecutor(
            max_workers=size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        )
    return pool


@atexit.register
def _shutdown_pools() -> None:
    for pool in _POOLS.values():
        pool.shutdown(wait=False, cancel_futures=True)
    _POOLS.clear()
