"""The live projection: follows the journal and keeps the active views current.

Polls the application's notification log (the library has no SQLite
subscription; on PostgreSQL polling a few times a second keeps lag well under
a second too), applies each batch through the ``Projector`` and commits the
view changes with the tracking record in one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError

from domain.rules import DEFAULT_VERSION, Ruleset
from domain.signals import iso, parse_iso
from projections.lag import LagHistogram, lag_key
from projections.lean_replay import JournalSource
from projections.ports import ProjectionSource
from projections.projector import Projector, SideRow
from projections.views import StaleBatch

log = logging.getLogger("responses.follower")


def decode(notification: Any) -> dict[str, Any]:
    state: dict[str, Any] = orjson.loads(notification.state)
    return state


def originator_key(originator_id: Any) -> str:
    return originator_id.hex if hasattr(originator_id, "hex") else str(originator_id)


def apply_batch(
    app: ProjectionSource, generation: int, rules: Ruleset, limit: int, stop: int | None = None, measure: bool = True
) -> int:
    """Apply the next batch of journal events to one generation of views, atomically with its tracking record.

    The live follower and the rebuild both call this: one path from journal to views. A batch's round
    trips do not grow with its events: the tracking row locked and read (with the lag histogram), the
    journal read, one read each of the recipients, mailings and contacts it touches, one statement per
    view table written, the meta and the tracking record."""
    with app.views.next_batch(generation, lag_key(generation)) as store:
        decoded = read_journal(JournalSource.of(app), store.cursor, store.position, limit, stop)
        if not decoded:
            return 0
        # the views keep clear copies of names and addresses; the keys read through the batch's own connection (a
        # second one asked for while this batch holds the writer waits behind whoever waits for the writer: a deadlock)
        app.open_states((d for _, _, _, d in decoded), cursor=store.cursor)
        store.preload(*touched(decoded))
        projector = Projector(rules, store)
        for seq, oid, topic, data in decoded:
            projector.apply(seq, oid, topic, data)
        store.meta[moved_key(generation)] = iso(datetime.now(UTC)) or ""
        if measure:  # a rebuild replays history: its "lag" is the journal's age, not the projection's
            store.meta[lag_key(generation)] = measured_lag(store.meta_read, [d for _, _, _, d in decoded])
        store.last_notification_id = decoded[-1][0]
    return len(decoded)


Decoded = tuple[int, str, str, dict[str, Any]]


def read_journal(source: JournalSource, cursor: Any, after: int, limit: int, stop: int | None = None) -> list[Decoded]:
    """The journal events after ``after`` (at most ``limit``, none past ``stop``), decoded, read through the
    batch's own connection and transaction (a batch never holds a second connection of the pool)."""
    if source.kind == "sqlite":
        position, originator = "rowid", "originator_id"
    else:
        position, originator = "notification_id", "originator_id"
    until = f" AND {position} <= {int(stop)}" if stop is not None else ""
    mark = "?" if source.kind == "sqlite" else "%s"
    cursor.execute(
        f"SELECT {position} AS id, {originator} AS originator_id, topic, state FROM {source.table} "
        f"WHERE {position} > {mark}{until} ORDER BY {position} LIMIT {mark}",
        (after, limit),
    )
    return [(int(r["id"]), originator_key(r["originator_id"]), r["topic"], orjson.loads(r["state"])) for r in cursor.fetchall()]


def touched(decoded: list[Decoded]) -> tuple[list[str], list[str], list[str]]:
    """The recipients, contacts and mailings a batch's events name (read before it is applied, at once)."""
    rids: list[str] = []
    contacts: set[str] = set()
    mailings: set[str] = set()
    for _, oid, topic, data in decoded:
        if ":Recipient." in topic:
            rids.append(oid)
            if topic.endswith("Recipient.Joined"):  # its contact and mailing too
                contacts.add(data["contact_id"])
                mailings.add(data["mailing_id"])
        elif ":Contact." in topic:
            command = data.get("command")
            contact = command.get("contact_id") if isinstance(command, dict) else data.get("contact_id")
            if contact is not None:
                contacts.add(contact)
        elif topic.endswith("Mailing.DispatchWaveStarted") and "mailing_id" in data:
            mailings.add(data["mailing_id"])
    return rids, sorted(contacts), sorted(mailings)


def measured_lag(histogram: str | None, events: list[dict[str, Any]]) -> str:
    """The generation's lag histogram with this batch's lags added (now minus each event's stored time)."""
    now = datetime.now(UTC)
    lags = []
    for data in events:
        try:
            lags.append(max(0.0, (now - datetime.fromisoformat(data["timestamp"]["_data_"])).total_seconds() * 1000))
        except (KeyError, TypeError, ValueError):
            continue
    lag = LagHistogram.loads(histogram)
    lag.add_batch(lags, now)
    return lag.dumps()


def applied_lag(app: ProjectionSource) -> LagHistogram:
    """What the follower measured for the active views: every applied event's lag, and the last batch's."""
    return LagHistogram.loads(app.views.get_meta(lag_key(app.generation())))


# ---- lag: how long journal events wait for the views ------------------------------------------


def moved_key(generation: int) -> str:
    return f"views-g{generation}-moved-at"


def mark_moved(app: ProjectionSource, generation: int, cursor: Any) -> None:
    """Remember when the views last moved, in the batch's transaction (``/readyz`` of any process reads it)."""
    app.views.set_meta({moved_key(generation): iso(datetime.now(UTC)) or ""}, cursor=cursor)


def stored_at(notification: Any) -> datetime | None:
    """When a journal event was stored: its own timestamp (a re-matched signal's is the re-matching's,
    not the signal's original ``received_at``)."""
    try:
        return parse_iso(decode(notification)["timestamp"]["_data_"])
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
        return None


@dataclass(frozen=True)
class Lag:
    events: int  # journal events the views have not applied
    seconds: float  # how long the oldest of them has waited since it was stored (0 when none)
    still_seconds: float | None  # since the views last moved (None: never, as far as is recorded)

    def stalled(self, limit_seconds: float) -> bool:
        """Behind, and not moving for longer than ``limit_seconds``: an idle journal is never stalled."""
        not_moving = self.still_seconds is None or self.still_seconds > limit_seconds
        return self.events > 0 and self.seconds > limit_seconds and not_moving


def measure_lag(app: ProjectionSource, now: datetime | None = None) -> Lag:
    """The active views' lag, measured from the journal (any process can: no follower needed)."""
    now = now or datetime.now(UTC)
    generation = app.generation()
    views = app.views.position(generation)
    events = max(0, app.journal_position() - views)
    seconds = 0.0
    if events:
        oldest = app.recorder.select_notifications(start=views + 1, limit=1)
        at = stored_at(oldest[0]) if oldest else None
        seconds = max(0.0, (now - at).total_seconds()) if at is not None else 0.0
    moved = parse_iso(app.views.get_meta(moved_key(generation)))
    still = max(0.0, (now - moved).total_seconds()) if moved is not None else None
    return Lag(events, seconds, still)


POISON_AFTER_FAILURES = 3
UNAVAILABLE_WARNING_SECONDS = 30.0  # transient errors for longer than this are an outage, not contention
TRANSIENT: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    sqlite3.OperationalError,
    psycopg.OperationalError,
    TimeoutError,
)
RETRYABLE: tuple[type[BaseException], ...] = (StaleBatch, *TRANSIENT)  # a batch another follower took, or contention


def set_aside(app: ProjectionSource, generation: int, error: Exception) -> None:
    """Move a generation past the next event, keeping the event and the error in the quarantine."""
    position = app.views.position(generation)
    [n] = app.recorder.select_notifications(start=position + 1, limit=1)
    raw = bytes(n.state).decode("utf-8", "replace")[:65536]
    message = f"the views could not apply {n.topic} #{n.id}: {type(error).__name__}: {error}"[:2000]
    log.error("%s; set aside in the quarantine", message)
    with app.views.batch(generation, position, n.id) as store:
        mark_moved(app, generation, store.cursor)
        store.put_side(
            SideRow(
                id=f"projection:{generation}:{n.id}",
                kind="quarantine",
                source="projection",
                mailing_id=None,
                received_at=iso(datetime.now(UTC)) or "",
                seq=n.id,
                payload={"raw": raw, "error": message},
            )
        )


class JournalWakeUp:
    """Wait for news in the journal. PostgreSQL: LISTEN on the channel the library's recorder
    NOTIFYs in every insert, so the follower wakes as soon as a writer commits; SQLite (and a
    connection lost): sleep ``poll_interval``. Either way it waits at most ``poll_interval``."""

    def __init__(self, app: ProjectionSource, poll_interval: float):
        self.app = app
        self.poll_interval = poll_interval
        self.conn: Any = None

    def wait(self, stop: threading.Event) -> None:
        if not self.app.settings.is_postgres:
            stop.wait(self.poll_interval)
            return
        try:
            if self.conn is None:
                self.conn = psycopg.connect(self.app.settings.database_url, autocommit=True, connect_timeout=5)
                self.conn.execute(f'LISTEN "{self.app.recorder.channel_name}"')  # type: ignore[attr-defined]
            deadline = time.monotonic() + self.poll_interval
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                for _ in self.conn.notifies(timeout=min(0.5, left), stop_after=1):  # short waits: a stop is seen soon
                    return
        except psycopg.Error:
            self.close()
            stop.wait(self.poll_interval)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass
            self.conn = None


# Issue 8's measurement (8 UniOne senders, gunicorn on PostgreSQL): batches of 2,000 instead of 500
# cut lag p99 from 2.2 s to 1.5 s. LISTEN/NOTIFY takes out the poll's wait (0.05 s on average).
FOLLOWER_BATCH = 2000
TURN_SECONDS = 0.2  # how often a running follower gives its ``on_turn`` chore a turn (one small query: the jobs)


class ViewFollower:
    """Follows the journal into the active views: batch by batch on demand (``catch_up``), or in a
    thread of its own (``start``). It only follows: whoever runs it may give it a chore, ``on_turn``,
    which its thread runs between batches every ``TURN_SECONDS`` and at once when ``nudge``d (the
    application's job runner: activations and what-ifs, ``application.jobs``)."""

    def __init__(self, app: ProjectionSource, batch_size: int = FOLLOWER_BATCH, poll_interval: float = 0.1):
        self.app = app
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.wake_up = JournalWakeUp(app, poll_interval)
        self.lock = threading.RLock()
        self.on_turn: Callable[[], object] | None = None
        self._turn_due = threading.Event()  # nudged: the chore's turn now, not at the next interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Apply one batch of new journal events to the active views; return how many were read.

        A batch that fails for its data, again and again (a poison event: one
        the view tables cannot hold), is applied event by event; the event that
        fails is set aside in the quarantine with its error, so the views go on
        with everything else. A database that is unreachable or busy is no
        reason to set anything aside: that error is raised, and retried later.
        """
        with self.lock:
            generation, version = self.app.views.active()  # one read: the generation and its rules
            rules = self.app.ruleset(version or DEFAULT_VERSION)
            for attempt in range(1, POISON_AFTER_FAILURES + 1):
                try:
                    return apply_batch(self.app, generation, rules, self.batch_size)
                except RETRYABLE:
                    raise
                except Exception:
                    if self.app.generation() != generation:  # swapped by a rebuild meanwhile: read the new one
                        return 0
                    if attempt == POISON_AFTER_FAILURES:
                        log.exception("a batch failed %d times: applying it event by event", attempt)
            return self._isolate_poison(generation, rules)

    def _isolate_poison(self, generation: int, rules: Ruleset) -> int:
        applied = 0
        for _ in range(self.batch_size):
            try:
                n = apply_batch(self.app, generation, rules, 1)
            except RETRYABLE:
                raise
            except Exception as exc:
                set_aside(self.app, generation, exc)
                n = 1
            if n == 0:
                break
            applied += n
        return applied

    def catch_up(self, until: int | None = None) -> None:
        target = until if until is not None else self.app.journal_position()
        while self.app.views_position() < target:
            if self.run_once() == 0:
                break

    # ---- background thread ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Following in a thread of its own (else it is caught up on demand by whoever waits)."""
        return self._thread is not None and self._thread.is_alive()

    def nudge(self) -> None:
        """Give the chore its turn at the thread's next look, not at the next interval."""
        self._turn_due.set()

    def run_forever(self) -> None:
        next_turn = 0.0
        postponed_since: float | None = None  # a database busy or away since then
        warned = False  # that it is away, once
        while not self._stop.is_set():
            try:
                if self.on_turn is not None and (time.monotonic() >= next_turn or self._turn_due.is_set()):
                    self._turn_due.clear()
                    self.on_turn()
                    next_turn = time.monotonic() + TURN_SECONDS
                if self.run_once() == 0:
                    self.wake_up.wait(self._stop)
                if warned:
                    log.info("the database answers again: following the journal")
                postponed_since, warned = None, False
            except StaleBatch:  # another follower got there first: read again from where it left off
                continue
            except TRANSIENT as exc:  # expected contention (SQLite "database is locked"), a database restart
                log.debug("projection batch postponed (%s: %s); retrying", type(exc).__name__, exc)
                now = time.monotonic()
                if postponed_since is None:
                    postponed_since = now
                elif not warned and postponed_since < now - UNAVAILABLE_WARNING_SECONDS:  # not contention any more: said once
                    log.warning("the views cannot be updated for %.0f s: %s: %s", now - postponed_since, type(exc).__name__, exc)
                    warned = True
                self._stop.wait(0.2)
            except Exception:  # keep following; the batch rolled back and will be retried
                log.exception("projection batch failed; retrying")
                self._stop.wait(1.0)

    def start(self) -> ViewFollower:
        self.app.follower = self
        self._thread = threading.Thread(target=self.run_forever, name="view-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.wake_up.close()
        if self.app.follower is self:
            self.app.follower = None

    def lag(self) -> int:
        return max(0, self.app.journal_position() - self.app.views_position())
