"""The job runner: the journaled jobs (rule activations and what-ifs), run by the process that follows.

An activation is a rebuild of the views under other rules (``projections.replay.rebuild``), then the
swap; a what-if is a replay under candidate rules (``projections.replay.what_if``). Both are asked
for by journaling a ``Job`` (any process may), and run by the process that holds the follower:
``responses serve``'s follower thread, ``responses project``, or, for a follower caught up on
demand (tests, one-shot commands), a thread of its own that the asker waits for. Held as ``app.jobs``.

Jobs a stopped process left running are run again (an activation always; a what-if once:
interrupted a second time, it is finished as failed, with the reason). One thread of a process runs
the jobs at a time (``lock``).

Views that change shape upgrade themselves: when a follower is attached (the projection process starts)
and the active generation was built under an older view shape (``projections.views.VIEW_SHAPE``), an
upgrade job is journaled (one per generation and shape, whichever process asks first); it is run as an
activation under the active rules: a generation of the current shape is built in the background, with its
progress in the log and in ``/readyz`` (``upgrade_progress``), then swapped in; the old one serves until then.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import ConnectionPoolClosedError, RecordConflictError

from application.erasure import ERASE, Erasures
from application.errors import NotFound
from application.rules import REFUSED, RulesService, WhatIfQueueFull
from application.unit_of_work import now_utc
from domain.aggregates import Job
from domain.signals import iso
from projections import replay
from projections.follower import RETRYABLE, TRANSIENT, ViewFollower
from projections.ports import Following, Progress, ReplaySource
from projections.views import VIEW_SHAPE, ViewsMixin

log = logging.getLogger("responses.jobs")

WHAT_IF_MAX_STARTS = 2  # a what-if interrupted this often is failed, not run again
JOB_POLL_SECONDS = 0.1  # how often a waiting request reads its what-if job
JOBS_THREAD = "view-follower-jobs"  # the thread that runs the jobs beside a follower caught up on demand
UPGRADE = "upgrade"  # the kind of job that rebuilds views of an older shape under the active rules
UPGRADE_NAMESPACE = uuid.UUID("0b7c4e2a-5d1f-4a39-9c6e-2f8a1d3b5e70")  # ids of upgrade jobs, from what they upgrade
UPGRADING_KEY = "upgrading"  # meta: the running upgrade's progress, for ``/readyz`` of any process
PROGRESS_EVERY_SECONDS = 1.0  # how often a rebuild's progress is written (the job, the log, the meta)
# Why an upgrade may go unasked when a follower is attached: a database busy or away, or an application already
# closed (a test restoring its follower); the next start asks.
UNASKED: tuple[type[BaseException], ...] = (ConnectionPoolClosedError, *TRANSIENT)


class JobsHost(ReplaySource, Protocol):
    """What the job runner uses of the application: its rules, and the follower it keeps following."""

    @property
    def rules(self) -> RulesService: ...

    @property
    def erasures(self) -> Erasures: ...

    def save(self, *objs: Aggregate) -> Any: ...


def upgrade_job_name(generation: int, shape: int, attempt: int) -> str:
    """An upgrade job's id: the same generation to the same shape is one job, whichever process asks (a new
    attempt once one failed)."""
    return uuid.uuid5(UPGRADE_NAMESPACE, f"{generation}:{shape}:{attempt}").hex


def upgrade_progress(views: ViewsMixin) -> dict[str, Any]:
    """For ``/readyz``: ``{"upgrading": {"progress": 0.42, …}}`` while the active views are of an older shape
    than this code's (their replacement built, or waiting for the projection process to start), else ``{}``."""
    _generation, shape = views.active_shape()
    if shape >= VIEW_SHAPE:
        return {}
    raw = views.get_meta(UPGRADING_KEY)
    return {"upgrading": orjson.loads(raw) if raw else {"progress": 0.0, "from_shape": shape, "to_shape": VIEW_SHAPE}}


class JobRunner:
    def __init__(self, host: JobsHost):
        self.host = host
        self.lock = threading.Lock()  # one thread of this process runs the journaled jobs at a time

    @property
    def rules(self) -> RulesService:
        return self.host.rules

    # ---- running the pending jobs ------------------------------------------------------------

    def run(self, follower: Following | None = None) -> int:
        """Run the journaled jobs still pending, in the order they were asked; return how many.

        ``follower`` (default: the application's) keeps the active views following between a
        rebuild's batches and while a what-if's workers fold."""
        follower = follower if follower is not None else self.host.follower
        with self.lock:
            jobs, position = self.rules.pending_jobs()
            for job in jobs:
                if job.kind == "what-if":
                    self.execute_what_if(job, follower)
                elif job.kind == UPGRADE:
                    self.execute_upgrade(job, follower)
                elif job.kind == ERASE:
                    self.execute_erasure(job)
                else:
                    self.execute(job.job, job.rules_version, follower=follower)
            if jobs or position:
                self.rules.jobs_done_up_to(position)
            return len(jobs)

    def attach(self, follower: ViewFollower) -> None:
        """Let a follower's thread run the jobs between its batches (``ViewFollower.on_turn``); views of an
        older shape are upgraded by it (``request_upgrade``)."""
        follower.on_turn = lambda: self.run(follower)
        try:
            self.request_upgrade()
        except UNASKED as exc:  # asked again at the next start; the follower follows meanwhile
            log.warning("could not look at the views' shape (%s: %s): no upgrade asked for now", type(exc).__name__, exc)

    def request_upgrade(self) -> str | None:
        """Journal the upgrade of the active views when they were built under an older view shape (None: they
        are current). One job per generation and shape: a job already asked (queued, running or done) is the
        answer; one that failed is asked anew, once per start."""
        generation, shape = self.host.views.active_shape()
        if shape >= VIEW_SHAPE:
            return None
        attempt = 0
        while True:
            name = upgrade_job_name(generation, VIEW_SHAPE, attempt)
            try:
                status = self.rules.job(name)["status"]
            except NotFound:
                break
            if status != "failed":
                return name
            attempt += 1
        job = Job(job=name, kind=UPGRADE, rules_version=self.rules.active_version(), requested_at=iso(now_utc()) or "")
        try:
            self.host.save(job)
        except RecordConflictError:  # another process asked first: the same job
            return name
        log.info(
            "views generation %d has shape %d, this code reads shape %d: job %s builds a generation of shape %d in the "
            "background; generation %d serves until it is swapped in",
            generation,
            shape,
            VIEW_SHAPE,
            name,
            VIEW_SHAPE,
            generation,
        )
        return name

    def requested(self) -> None:
        """A job was journaled in this process: a follower thread looks at once; a follower caught up
        on demand runs it in a thread of its own, waited for; else another process runs it."""
        follower = self.host.follower
        if follower is None:
            return
        if follower.running:
            follower.nudge()
        else:
            self.run_aside(follower)

    def run_aside(self, follower: Following | None = None) -> None:
        """Run the pending jobs in a thread of their own (``JOBS_THREAD``) and wait for it: a follower
        caught up on demand never runs a replay in the thread that asked for it."""
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self.run(follower)
            except BaseException as exc:  # raised in the caller's thread below
                failure.append(exc)

        thread = threading.Thread(target=run, name=JOBS_THREAD, daemon=True)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    # ---- one job ----------------------------------------------------------------------------------

    def execute(self, job: str, version: str, progress: Progress | None = None, follower: Following | None = None) -> None:
        """An activation: rebuild the views under ``version``, then swap them in (the old generation
        and rules stay active when it fails, the job failed with the reason)."""
        rules = self.rules
        last = [0.0]

        def report(done: int, end: int) -> None:
            if progress is not None:
                progress(done, end)
            now = time.monotonic()
            if end and now - last[0] >= PROGRESS_EVERY_SECONDS:
                last[0] = now
                rules.update_job(job, progress=min(done / end, 0.99))
                log.info("job %s: rebuild under rules %s, %d/%d events", job, version, done, end)

        follower = follower if follower is not None else self.host.follower
        try:
            replay.rebuild(self.host, rules.ruleset(version), report, between_batches=following(job, follower))
        except Exception as exc:  # the old generation and rules stay active
            log.exception("job %s failed", job)
            rules.update_job(job, status="failed", error=f"{type(exc).__name__}: {exc}")
        else:
            rules.update_job(job, status="done")
            log.info("job %s: rules %s active", job, version)

    def execute_upgrade(self, job: Job, follower: Following | None = None) -> None:
        """An upgrade job: the active views rebuilt under the active rules into a generation of the current
        shape, then swapped in, as an activation does; its progress in the meta (``upgrade_progress``) while it
        runs. Views already current (an activation swapped in meanwhile) finish it at once."""
        views = self.host.views
        generation, shape = views.active_shape()
        if shape >= VIEW_SHAPE:
            self.rules.update_job(job.job, status="done")
            log.info("job %s: views generation %d already have shape %d; nothing to upgrade", job.job, generation, shape)
            return
        version = self.rules.active_version()
        log.info(
            "job %s: upgrading views generation %d (shape %d) to shape %d under rules %s",
            job.job,
            generation,
            shape,
            VIEW_SHAPE,
            version,
        )
        last = [0.0]

        def report(done: int, end: int) -> None:
            now = time.monotonic()
            if done == 0 or now - last[0] >= PROGRESS_EVERY_SECONDS:
                last[0] = now
                fraction = round(min(done / end, 0.99), 3) if end else 0.0
                state = {"progress": fraction, "from_shape": shape, "to_shape": VIEW_SHAPE, "job": job.job}
                views.set_meta({UPGRADING_KEY: orjson.dumps(state).decode()})
                log.info("upgrading views to shape %d: %.0f %% (%d of %d journal events)", VIEW_SHAPE, fraction * 100, done, end)

        try:
            self.execute(job.job, version, report, follower)
        finally:
            views.delete_meta(UPGRADING_KEY)
        if views.active_shape()[1] >= VIEW_SHAPE:
            log.info("job %s: views of shape %d swapped in", job.job, VIEW_SHAPE)

    def execute_what_if(self, job: Job, follower: Following | None = None) -> None:
        """A what-if job: the replay (over ``REPLAY_WORKERS`` processes), its answer kept in the job.

        A job found already started was interrupted (its process killed, out of memory): run again
        once; started ``WHAT_IF_MAX_STARTS`` times, it fails with the reason instead, so no job can
        stop the projection process again and again, nor stay queued for ever."""
        rules = self.rules
        starts = getattr(job, "starts", 0)
        if starts >= WHAT_IF_MAX_STARTS:
            reason = (
                f"interrupted {starts} times: the projection process stopped while it ran this what-if "
                "(killed, or out of memory); ask again"
            )
            log.warning("job %s (what-if): %s", job.job, reason)
            rules.update_job(job.job, status="failed", error=reason)
            return
        if starts:
            log.warning("job %s (what-if): interrupted while it ran; running it again", job.job)
        rules.start_job(job.job)
        last = [time.monotonic()]

        def report(done: int, end: int) -> None:
            now = time.monotonic()
            if end and now - last[0] >= 1.0:
                last[0] = now
                rules.update_job(job.job, progress=min(done / end, 0.99))

        try:
            result = rules.run_what_if_job(job, progress=report, follow=following(job.job, follower))
        except Exception as exc:
            log.exception("job %s (what-if) failed", job.job)
            rules.update_job(job.job, status="failed", error=f"{type(exc).__name__}: {exc}")
        else:
            rules.answer_job(job.job, result)
            log.info("job %s: what-if answered", job.job)

    def execute_erasure(self, job: Job) -> None:
        """A bulk erasure (``POST /v1/erasures``): its contacts and addresses erased, one redaction pass, its
        answer kept; then the job's own key is destroyed, and with it the addresses its request held."""
        rules = self.rules
        rules.start_job(job.job)
        request = job.request or {}
        last = [time.monotonic()]

        def report(done: int, end: int) -> None:
            now = time.monotonic()
            if end and now - last[0] >= 1.0:
                last[0] = now
                rules.update_job(job.job, progress=min(done / end, 0.99))

        try:
            result = self.host.erasures.erase_many(
                list(request.get("contact_ids") or []),
                list(request.get("emails") or []),
                str(request.get("basis") or ""),
                request.get("by"),
                progress=report,
            )
        except Exception as exc:
            log.exception("job %s (erasure) failed", job.job)
            rules.update_job(job.job, status="failed", error=f"{type(exc).__name__}: {exc}")
        else:
            rules.answer_job(job.job, result)
            log.info("job %s: %d contacts erased", job.job, result["erased"])
        finally:
            if job.request is not None and getattr(job, "subject", None):
                self.host.erasures.forget_request(str(job.subject))

    # ---- asking for a what-if -----------------------------------------------------------------------

    def start_what_if(
        self, rules: dict[str, Any] | str, mailings: list[str] | None = None, sample: int = 20, wait_seconds: float = 1.0
    ) -> tuple[dict[str, Any] | None, str | None]:
        """A what-if as a journaled job, waited for up to ``wait_seconds``: (result, None) when it is
        answered in time, else (None, job id) to follow at ``GET /v1/jobs/{id}`` (a failed job too: its
        error is there). Raises ``WhatIfQueueFull`` when too many are queued or running.

        The calling thread never runs the replay: the projection process or a follower thread does
        (``responses serve``). A follower caught up on demand (tests, one-shot commands: no server runs
        so) runs the jobs in a thread of its own, and the caller waits for that thread to end."""
        service = self.rules
        job = service.request_what_if(rules, mailings, sample)
        self.requested()
        deadline = time.monotonic() + wait_seconds
        while True:
            state = service.job(job)
            if state["status"] == "done":
                return state.get("result"), None
            if state["status"] == "failed" and str(state.get("error") or "").startswith(REFUSED):  # joined at its refusal
                limit = service.settings.what_if_max_pending
                raise WhatIfQueueFull(limit, limit)
            if state["status"] == "failed" or time.monotonic() >= deadline:
                return None, job
            time.sleep(min(JOB_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def following(job: str, follower: Following | None) -> Callable[[], None] | None:
    """Between rebuild batches (and while a what-if's workers fold), one batch of the generation being
    replaced, so it keeps serving; None without a follower.

    The rebuild never depends on it: a generation that cannot apply its next event (the reason to
    activate other rules) is logged once and left behind until the swap."""
    if follower is None:
        return None
    stuck = [False]

    def follow() -> None:
        if stuck[0]:
            return
        try:
            follower.run_once()
        except RETRYABLE:  # contention: try again after the next rebuild batch
            pass
        except Exception as exc:
            stuck[0] = True
            log.warning(
                "job %s: the active views cannot follow (%s: %s); the rebuild goes on and replaces them",
                job,
                type(exc).__name__,
                exc,
            )

    return follow
