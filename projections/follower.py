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
from dataclasses import dataclass
from datetime import datetime, timezone
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError

from domain.rules import Ruleset
from domain.signals import iso, parse_iso
from projections.lag import LagHistogram, lag_key
from projections.projector import Projector, SideRow
from projections.views import StaleBatch

if TYPE_CHECKING:
    from application.service import ResponsesApp

log = logging.getLogger("responses.follower")


def decode(notification: Any) -> dict[str, Any]:
    return orjson.loads(notification.state)


def originator_key(originator_id: Any) -> str:
    return originator_id.hex if hasattr(originator_id, "hex") else str(originator_id)


def apply_batch(
    app: "ResponsesApp", generation: int, rules: Ruleset, limit: int, stop: int | None = None, measure: bool = True
) -> int:
    """Apply the next batch of journal events to one generation of views, atomically with its tracking record.

    The live follower and the rebuild both call this: one path from journal to views.
    """
    position = app.views.position(generation)
    notifications = app.recorder.select_notifications(start=position + 1, limit=limit, stop=stop)
    if not notifications:
        return 0
    decoded = [(n.id, originator_key(n.originator_id), n.topic, decode(n)) for n in notifications]
    rids = [oid for _, oid, topic, _ in decoded if ":Recipient." in topic]
    cids = [d["command"]["contact_id"] for _, _, topic, d in decoded if topic.endswith("Contact.CommandRecorded")]
    with app.views.batch(generation, position, notifications[-1].id) as store:
        store.preload(rids, cids)
        projector = Projector(rules, store)
        for seq, oid, topic, data in decoded:
            projector.apply(seq, oid, topic, data)
        mark_moved(app, generation, store.cursor)
        if measure:  # a rebuild replays history: its "lag" is the journal's age, not the projection's
            record_lag(app, generation, [d for _, _, _, d in decoded], store.cursor)
    return len(notifications)


def record_lag(app: "ResponsesApp", generation: int, events: list[dict[str, Any]], cursor: Any) -> None:
    """Add this batch's lags (now minus each event's stored time) to the generation's histogram."""
    now = datetime.now(timezone.utc)
    lags = []
    for data in events:
        try:
            lags.append(max(0.0, (now - datetime.fromisoformat(data["timestamp"]["_data_"])).total_seconds() * 1000))
        except (KeyError, TypeError, ValueError):
            continue
    histogram = LagHistogram.loads(app.views.get_meta(lag_key(generation), cursor=cursor))
    histogram.add_batch(lags, now)
    app.views.set_meta({lag_key(generation): histogram.dumps()}, cursor=cursor)


def applied_lag(app: "ResponsesApp") -> LagHistogram:
    """What the follower measured for the active views: every applied event's lag, and the last batch's."""
    return LagHistogram.loads(app.views.get_meta(lag_key(app.generation())))


# ---- lag: how long journal events wait for the views ------------------------------------------


def moved_key(generation: int) -> str:
    return f"views-g{generation}-moved-at"


def mark_moved(app: "ResponsesApp", generation: int, cursor: Any) -> None:
    """Remember when the views last moved, in the batch's transaction (``/readyz`` of any process reads it)."""
    app.views.set_meta({moved_key(generation): iso(datetime.now(timezone.utc)) or ""}, cursor=cursor)


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


def measure_lag(app: "ResponsesApp", now: datetime | None = None) -> Lag:
    """The active views' lag, measured from the journal (any process can: no follower needed)."""
    now = now or datetime.now(timezone.utc)
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
    OperationalError, InterfaceError, sqlite3.OperationalError, psycopg.OperationalError, TimeoutError
)


def set_aside(app: "ResponsesApp", generation: int, error: Exception) -> None:
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
                received_at=iso(datetime.now(timezone.utc)) or "",
                seq=n.id,
                payload={"raw": raw, "error": message},
            )
        )


class JournalWakeUp:
    """Wait for news in the journal. PostgreSQL: LISTEN on the channel the library's recorder
    NOTIFYs in every insert, so the follower wakes as soon as a writer commits; SQLite (and a
    connection lost): sleep ``poll_interval``. Either way it waits at most ``poll_interval``."""

    def __init__(self, app: "ResponsesApp", poll_interval: float):
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
WHAT_IF_MAX_STARTS = 2  # a what-if interrupted this often is failed, not run again
JOBS_CHECK_SECONDS = 0.2  # how often the follower looks for jobs other processes journaled (one small query)


class ViewFollower:
    def __init__(self, app: "ResponsesApp", batch_size: int = FOLLOWER_BATCH, poll_interval: float = 0.1):
        self.app = app
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.wake_up = JournalWakeUp(app, poll_interval)
        self.lock = threading.RLock()
        self.jobs_lock = threading.Lock()  # one thread of this process runs the journaled jobs at a time
        self._jobs_due = threading.Event()  # a job was requested in this process: look now, not at the next check
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
            generation, rules = self.app.generation(), self.app.active_rules()
            for attempt in range(1, POISON_AFTER_FAILURES + 1):
                try:
                    return apply_batch(self.app, generation, rules, self.batch_size)
                except (StaleBatch, *TRANSIENT):
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
            except (StaleBatch, *TRANSIENT):
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

    def run_jobs(self) -> int:
        """Run the journaled jobs still pending (rule activations: a rebuild, then the swap; what-ifs).

        Jobs a stopped process left running are run again (an activation always; a what-if once:
        interrupted a second time, it is finished as failed, with the reason)."""
        with self.jobs_lock:
            jobs, position = self.app.pending_jobs()
            for job in jobs:
                if job.kind == "what-if":
                    self.execute_what_if(job)
                else:
                    self.execute(job.job, job.rules_version)
            if jobs or position:
                self.app.jobs_done_up_to(position)
            return len(jobs)

    def jobs_requested(self) -> None:
        """A job was journaled by this process: the follower thread looks for it at its next turn."""
        self._jobs_due.set()

    def run_jobs_aside(self) -> None:
        """Run the pending jobs in a thread of this follower and wait for it: a follower caught up on
        demand (tests, one-shot commands) never runs a replay in the thread that asked for it."""
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self.run_jobs()
            except BaseException as exc:  # raised in the caller's thread below
                failure.append(exc)

        thread = threading.Thread(target=run, name="view-follower-jobs", daemon=True)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    def execute(self, job: str, version: str, progress: Callable[[int, int], None] | None = None) -> None:
        from projections.replay import rebuild

        app = self.app
        last = [0.0]

        def report(done: int, end: int) -> None:
            if progress is not None:
                progress(done, end)
            now = time.monotonic()
            if end and now - last[0] >= 1.0:
                last[0] = now
                app.update_job(job, progress=min(done / end, 0.99))
                log.info("job %s: rebuild under rules %s, %d/%d events", job, version, done, end)

        try:
            rebuild(app, app.ruleset(version), report, between_batches=self._follow_during_rebuild(job))
        except Exception as exc:  # the old generation and rules stay active
            log.exception("job %s failed", job)
            app.update_job(job, status="failed", error=f"{type(exc).__name__}: {exc}")
        else:
            app.update_job(job, status="done")
            log.info("job %s: rules %s active", job, version)

    def execute_what_if(self, job: Any) -> None:
        """A what-if job: the replay (over ``REPLAY_WORKERS`` processes), its answer kept in the job.

        A job found already started was interrupted (its process killed, out of memory): run again
        once; started ``WHAT_IF_MAX_STARTS`` times, it fails with the reason instead, so no job can
        stop the projection process again and again, nor stay queued for ever."""
        app = self.app
        starts = getattr(job, "starts", 0)
        if starts >= WHAT_IF_MAX_STARTS:
            reason = (
                f"interrupted {starts} times: the projection process stopped while it ran this what-if "
                "(killed, or out of memory); ask again"
            )
            log.warning("job %s (what-if): %s", job.job, reason)
            app.update_job(job.job, status="failed", error=reason)
            return
        if starts:
            log.warning("job %s (what-if): interrupted while it ran; running it again", job.job)
        app.start_job(job.job)
        last = [time.monotonic()]

        def report(done: int, end: int) -> None:
            now = time.monotonic()
            if end and now - last[0] >= 1.0:
                last[0] = now
                app.update_job(job.job, progress=min(done / end, 0.99))

        try:
            result = app.run_what_if_job(job, progress=report, follow=self._follow_during_rebuild(job.job))
        except Exception as exc:
            log.exception("job %s (what-if) failed", job.job)
            app.update_job(job.job, status="failed", error=f"{type(exc).__name__}: {exc}")
        else:
            app.answer_job(job.job, result)
            log.info("job %s: what-if answered", job.job)

    def _follow_during_rebuild(self, job: str) -> Callable[[], None]:
        """Between rebuild batches, one batch of the generation being replaced, so it keeps serving.

        The rebuild never depends on it: a generation that cannot apply its next event (the
        reason to activate other rules) is logged once and left behind until the swap.
        """
        stuck = [False]

        def follow() -> None:
            if stuck[0]:
                return
            try:
                self.run_once()
            except (StaleBatch, *TRANSIENT):  # contention: try again after the next rebuild batch
                pass
            except Exception as exc:
                stuck[0] = True
                log.warning(
                    "job %s: the active views cannot follow (%s: %s); the rebuild goes on and replaces them",
                    job, type(exc).__name__, exc,
                )

        return follow

    def run_forever(self) -> None:
        next_jobs_check = 0.0
        postponed_since: float | None = None  # a database busy or away since then
        warned = False  # that it is away, once
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_jobs_check or self._jobs_due.is_set():
                    self._jobs_due.clear()
                    self.run_jobs()
                    next_jobs_check = time.monotonic() + JOBS_CHECK_SECONDS
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

    def start(self) -> "ViewFollower":
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
