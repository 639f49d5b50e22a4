"""Use cases of rules: versions, activation jobs, what-if replays and the audit history (CONTRACT §4, §7)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from typing import Any, Protocol, cast

import orjson
from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError

from application.config import Settings
from application.errors import Conflict, NotFound
from application.history_folds import fold_slots
from application.persistence import JournalIndex
from application.unit_of_work import UnitOfWork, now_utc
from domain.aggregates import Job, Mailing, RulesBook, job_id, recipient_id, rules_book_id
from domain.fold import RecipientState
from domain.mappings import without_builtin_later_mappings
from domain.rules import (
    BUILTIN_RULESETS,
    DEFAULT_RULESET,
    DEFAULT_VERSION,
    LATEST_BUILTIN_VERSION,
    InvalidRuleset,
    Ruleset,
    check_new_version,
    is_number_version,
)
from domain.signals import Signal, iso, parse_iso
from projections import replay
from projections.cursors import decode_cursor
from projections.lean_replay import last_folded_position
from projections.ports import Progress, ReplaySource
from projections.replay import explain, explain_page, history_reads
from projections.views import ViewsMixin

HISTORY_PAGE = 1000  # signals in one page of an audit history (the default and the most)
HISTORY_VIEWS_WAIT_SECONDS = 2.0  # a history page for now waits this long for the views, then shows what they hold

log = logging.getLogger("responses.rules")
WHAT_IF_RETRY_AFTER_SECONDS = 5  # told to a what-if refused for a full queue (about one small replay)
WHAT_IF_NAMESPACE = uuid.UUID("6f1d2c3e-9a8b-4c7d-8e5f-0a1b2c3d4e5f")  # ids of what-if jobs, from their identity
JOB_REQUESTED = "domain.aggregates:Job.Requested"
REFUSED = "refused:"  # the error of a what-if journaled past the bound by workers that counted at once


class WhatIfQueueFull(Exception):
    """Too many what-ifs queued or running (``WHAT_IF_MAX_PENDING``, counted in the database): ask again later."""

    def __init__(self, pending: int, limit: int, retry_after: int = WHAT_IF_RETRY_AFTER_SECONDS):
        super().__init__(
            f"{pending} what-ifs are queued or running, the most there may be (WHAT_IF_MAX_PENDING={limit}); "
            f"ask again in about {retry_after} s"
        )
        self.pending, self.limit, self.retry_after = pending, limit, retry_after


def what_if_identity(candidate: Ruleset, mailings: list[str] | None, sample: int) -> str:
    """What makes two what-ifs the same question: the full candidate ruleset, the sorted mailings, the sample."""
    scope = sorted(set(mailings)) if mailings else None
    question = {"rules": without_builtin_later_mappings(candidate.to_document()), "mailings": scope, "sample": sample}
    return hashlib.sha256(orjson.dumps(question, option=orjson.OPT_SORT_KEYS)).hexdigest()


def what_if_job_name(identity: str, current_version: str, position: int, attempt: int) -> str:
    """A what-if job's id: the same question, under the same active rules, at the same journal position
    (and the same attempt: one that failed is asked anew) is the same job, whichever process asks."""
    return uuid.uuid5(WHAT_IF_NAMESPACE, f"{identity}:{current_version}:{position}:{attempt}").hex


class RulesHost(ReplaySource, Protocol):
    """What the rules use of the application: the journal (its repository, saves, units of work and
    index), the views and their follower, and the mailings (a what-if's scope is checked against them)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def repository(self) -> Repository[uuid.UUID]: ...

    @property
    def journal_index(self) -> JournalIndex: ...

    def save(self, *objs: Aggregate) -> Any: ...

    def get_mailing_aggregate(self, mailing_id: str) -> Mailing: ...

    def wait_for_views(self, timeout: float | None = None) -> None: ...


class RulesService:
    """Rules are versioned data, adopted by a rebuild (an activation job), previewed by a replay
    (a what-if), and explained signal by signal (the audit history). Held as ``app.rules``."""

    def __init__(self, host: RulesHost, in_transaction: Callable[[Callable[[UnitOfWork], Any]], Any]):
        self.host = host
        self._in_transaction = in_transaction
        self._rulesets: dict[str, Ruleset] = {}

    @property
    def settings(self) -> Settings:
        return self.host.settings

    @property
    def views(self) -> ViewsMixin:
        return self.host.views

    @property
    def repository(self) -> Repository[uuid.UUID]:
        return self.host.repository

    # ---- rules and generations -----------------------------------------------------------

    def generation(self) -> int:
        return int(self.views.active_generation())

    def active_version(self) -> str:
        return self.views.active_rules_version() or DEFAULT_VERSION

    def active_rules(self) -> Ruleset:
        return self.ruleset(self.active_version())

    def ruleset(self, version: str) -> Ruleset:
        """One ruleset version: a built-in one ("1", "builtin-2") or a stored one.

        A version stored under a built-in name before the ``builtin-`` prefix was reserved keeps its meaning in
        its database (history never changes): it shadows the built-in one there."""
        cached = self._rulesets.get(version)
        if cached is not None:
            return cached
        if version == DEFAULT_VERSION:
            rules = DEFAULT_RULESET
        else:
            book = self._rules_book()
            entry = book.versions.get(version) if book is not None else None
            if entry is not None:
                rules = Ruleset.from_document(entry["document"])
            elif version in BUILTIN_RULESETS:
                rules = BUILTIN_RULESETS[version]
            else:
                raise NotFound("ruleset version", version)
        self._rulesets[version] = rules
        return rules

    def _rules_book(self) -> RulesBook | None:
        try:
            return self.repository.get(rules_book_id())
        except AggregateNotFoundError:
            return None

    def rules_versions(self) -> dict[str, Any]:
        """The versions (the built-in ones first, then the stored ones in the order they were made), the active one,
        and the built-in version ``offered`` for adoption: the latest, unless the active rules are it or derive
        from it (None then). Adopting it replaces the active rules whole: the what-if against this database's
        history (``POST /v1/what-if {"rules": "builtin-2"}``) shows what would change first."""
        book = self._rules_book()
        stored = dict(book.versions) if book is not None else {}
        versions: list[dict[str, Any]] = []
        previous: Ruleset | None = None
        for name, builtin in BUILTIN_RULESETS.items():
            if name not in stored:
                versions.append(
                    {
                        "version": name,
                        "created_at": None,
                        "created_by": None,
                        "changes": builtin.changes_from(previous) if previous is not None else {},
                        "based_on": previous.version if previous is not None else None,
                        "builtin": True,
                    }
                )
            previous = builtin
        versions += [
            {"created_by": None, **{k: v for k, v in entry.items() if k != "document"}, "builtin": False}
            for entry in stored.values()
        ]
        active = self.active_version()
        return {"active": active, "versions": versions, "offered": self._offered(active, stored)}

    @staticmethod
    def _offered(active: str, stored: dict[str, Any]) -> str | None:
        """The latest built-in version when the active rules neither are it nor were made from it."""
        if LATEST_BUILTIN_VERSION in stored:  # a stored version of that name shadows it in this database
            return None
        version: str | None = active
        seen: set[str] = set()
        while version is not None and version not in seen:
            if version == LATEST_BUILTIN_VERSION:
                return None
            seen.add(version)
            entry = stored.get(version)
            version = entry.get("based_on") if entry is not None else None
        return LATEST_BUILTIN_VERSION

    def define_rules(self, document: dict[str, Any], created_by: str | None = None) -> Ruleset:
        """A new ruleset version: ``document`` merged over the active version (raises InvalidRuleset).

        ``created_by`` says who, for the rules history (never a secret: e.g. a token's fingerprint).
        """
        base = self.active_rules()
        requested = document.get("version") if isinstance(document, dict) else None
        if requested is not None:
            check_new_version(requested)

        def work(uow: UnitOfWork) -> Ruleset:
            book: RulesBook = uow.get_or_create(rules_book_id(), RulesBook)
            taken = set(book.versions) | set(BUILTIN_RULESETS)
            if requested is not None and requested in taken:
                raise Conflict(f"ruleset version {requested!r} exists; versions are never edited in place")
            version = requested or str(max([int(v) for v in taken if is_number_version(str(v))] + [0]) + 1)
            rules = base.patched({k: v for k, v in document.items() if k != "version"}, version=version)
            book.define(
                version=version,
                document=without_builtin_later_mappings(rules.to_document()),  # read back with them (from_document)
                changes=rules.changes_from(base),
                based_on=base.version,
                created_at=iso(now_utc()),
                created_by=created_by,
            )
            return rules

        defined: Ruleset = self._in_transaction(work)
        return defined

    def swap_generation(self, generation: int, version: str) -> None:
        """Make a rebuilt generation of views (and the rules it was built under) the active one."""
        follower = self.host.follower
        lock = getattr(follower, "lock", None) or nullcontext()
        with lock, self.views.cursor(commit=True) as c:
            self.views.set_meta({"generation": str(generation), "rules_version": version}, cursor=c)

    # ---- jobs (executed by the projection process) ---------------------------------------------

    def request_activation(self, version: str) -> dict[str, Any]:
        """Journal a rebuild job under ``version``; the projection process runs it and swaps when done."""
        refused = self.ruleset(version).refused_patterns()  # 404 for an unknown version
        if refused:  # stored before patterns ran on RE2: readable for history, never the live rules
            raise InvalidRuleset(refused)
        job = Job(job=uuid.uuid4().hex, kind="activate", rules_version=version, requested_at=iso(now_utc()))
        self.host.save(job)
        return job.as_dict()

    def job(self, job: str) -> dict[str, Any]:
        try:
            found: Job = self.repository.get(job_id(job))
            return found.as_dict()
        except AggregateNotFoundError:
            raise NotFound("job", job) from None

    def pending_jobs(self) -> tuple[list[Job], int]:
        """Jobs requested but not finished, and the journal position scanned to.

        They survive restarts: the journal holds the requests, and the scan
        position (``jobs_position``) only moves once they have finished.
        """
        found, position = self._running_jobs()
        return [job for _, job in found], position

    def _running_jobs(self) -> tuple[list[tuple[int, Job]], int]:
        """``pending_jobs``, each with the journal position of its request (the queue's order)."""
        start = int(self.views.get_meta("jobs_position", "0") or 0)
        found: list[tuple[int, Job]] = []
        while True:
            notes = self.host.recorder.select_notifications(start=start + 1, limit=500, topics=[JOB_REQUESTED])
            if not notes:
                break
            for n in notes:
                job: Job = self.repository.get(cast(uuid.UUID, n.originator_id))
                if job.status == "running":
                    found.append((n.id, job))
            start = notes[-1].id
        return found, start

    def pending_what_ifs(self) -> list[tuple[int, Job]]:
        """What-if jobs queued or running (not activations), in the order they were asked, from the
        database: every process counts the same ones."""
        return [(position, job) for position, job in self._running_jobs()[0] if job.kind == "what-if"]

    def jobs_done_up_to(self, position: int) -> None:
        self.views.set_meta({"jobs_position": str(position)})

    def start_job(self, job: str) -> None:
        """A projection process begins running ``job`` (counted: one found started at a restart was interrupted)."""

        def work(uow: UnitOfWork) -> None:
            j: Job = uow.get(job_id(job))
            j.started(started_at=iso(now_utc()))

        self._in_transaction(work)

    def _job_or_none(self, job: str) -> Job | None:
        try:
            return self.repository.get(job_id(job))
        except AggregateNotFoundError:
            return None

    def update_job(self, job: str, *, progress: float | None = None, status: str | None = None, error: str | None = None) -> None:
        def work(uow: UnitOfWork) -> None:
            j: Job = uow.get(job_id(job))
            if status is not None:
                j.finish(status=status, error=error, finished_at=iso(now_utc()))
            elif progress is not None:
                j.progressed(progress=progress)

        self._in_transaction(work)

    # ---- what-if ---------------------------------------------------------------------------------

    def candidate_rules(self, rules: dict[str, Any] | str, current: Ruleset) -> Ruleset:
        """The ruleset a what-if tries: a stored version, or a patch over ``current`` (InvalidRuleset, NotFound)."""
        return self.ruleset(rules) if isinstance(rules, str) else current.patched(rules, version="what-if")

    def what_if(
        self,
        rules: dict[str, Any] | str,
        mailing_ids: list[str] | None = None,
        sample: int = 20,
        progress: Progress | None = None,
        current_version: str | None = None,
        follow: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Fold the journal under candidate rules (a patch over the active set, or a version) and diff.

        Runs here, in this process (the CLI, the projection process): over ``REPLAY_WORKERS`` processes,
        and only over the recipients the change can touch when the projection's index says which."""
        current = self.ruleset(current_version) if current_version else self.active_rules()
        candidate = self.candidate_rules(rules, current)
        for mailing_id in mailing_ids or []:
            self.host.get_mailing_aggregate(mailing_id)
        if self.host.follower is not None:  # a scoped what-if reads the views beside the journal: caught up here
            self.host.wait_for_views()
        return replay.what_if(
            self.host, current, candidate, mailing_ids, sample, progress, workers=self.settings.replay_workers, follow=follow
        )

    def request_what_if(self, rules: dict[str, Any] | str, mailings: list[str] | None = None, sample: int = 20) -> str:
        """The what-if job answering this request: an identical one (same candidate ruleset, mailings and
        sample, under the same active rules, at the same journal position) still queued, running or
        answered, else a new one journaled for the projection process to run.

        Invalid rules and unknown mailings are refused here, before anything is journaled; a new job
        beyond ``WHAT_IF_MAX_PENDING`` what-ifs queued or running raises ``WhatIfQueueFull``."""
        current = self.active_rules()
        candidate = self.candidate_rules(rules, current)
        for mailing_id in mailings or []:
            self.host.get_mailing_aggregate(mailing_id)
        identity = what_if_identity(candidate, mailings, sample)
        position = last_folded_position(self.host)
        attempt = 0
        while (existing := self._job_or_none(name := what_if_job_name(identity, current.version, position, attempt))) is not None:
            if existing.status != "failed":
                return name  # queued or running: joined; answered: its answer is this one's
            attempt += 1
        limit = self.settings.what_if_max_pending
        pending = len(self.pending_what_ifs())
        if pending >= limit:
            raise WhatIfQueueFull(pending, limit)
        request = {
            "rules": rules,
            "mailings": mailings,
            "sample": sample,
            "current": current.version,
            "identity": identity,
            "position": position,
        }
        job = Job(
            job=name,
            kind="what-if",
            rules_version=rules if isinstance(rules, str) else "what-if",
            requested_at=iso(now_utc()),
            request=request,
        )
        try:
            self.host.save(job)
        except RecordConflictError:  # the identical request of another worker journaled it first: joined
            return name
        self._refuse_past_the_bound(name, limit)
        return name

    def _refuse_past_the_bound(self, name: str, limit: int) -> None:
        """Workers that counted at once may each have journaled one: those past the bound, in the
        journal's order, are finished as refused, so the bound holds across processes."""
        queue = self.pending_what_ifs()
        ahead = next((i for i, (_, job) in enumerate(queue) if job.job == name), None)
        if ahead is not None and ahead >= limit:
            self.update_job(
                name, status="failed", error=f"{REFUSED} {ahead} what-ifs were queued or running (WHAT_IF_MAX_PENDING={limit})"
            )
            raise WhatIfQueueFull(ahead, limit)

    def run_what_if_job(
        self, job: Job, progress: Progress | None = None, follow: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Execute a journaled what-if job's request (the projection process calls this)."""
        request = job.request or {}
        return self.what_if(
            request["rules"],
            mailing_ids=request.get("mailings"),
            sample=int(request.get("sample", 20)),
            progress=progress,
            current_version=request.get("current"),
            follow=follow,
        )

    def answer_job(self, job: str, result: dict[str, Any]) -> None:
        def work(uow: UnitOfWork) -> None:
            j: Job = uow.get(job_id(job))
            j.answered(result=result, finished_at=iso(now_utc()))

        self._in_transaction(work)

    # ---- audit history ------------------------------------------------------------------------

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
        """A recipient's signals in journal order, with what each did and why under ``rules``: one page
        of them (``limit`` after ``cursor``, ``next`` for the rest), with its response, opens and clicks.

        For now under the active rules (no ``as_of``, ``rules`` None or the active ones), a page is folded
        from the views' nearest fold checkpoint, after a short wait for the views (read-your-writes, as every
        read), and shows the journal as far as the views have applied it: the response, opens and clicks are
        the views' (the last step's ``response_after`` on the last page). Otherwise the whole journal is
        folded, streamed: at most ``HISTORY_FOLDS_MAX`` such folds at a time in this process, ``HistoryBusy``
        beyond. A replay's own calls (``for_replay``: the what-if's examples) neither wait nor take a slot."""
        mailing = self.host.get_mailing_aggregate(mailing_id)
        oid = recipient_id(mailing_id, contact_id)
        after, limit = decode_cursor(cursor), min(max(1, limit), HISTORY_PAGE)
        started = parse_iso(mailing.started_at)
        if as_of is None and (rules is None or rules == self.active_rules()):
            if not for_replay:
                self._views_caught_up_briefly()
            page = self._history_from_checkpoint(oid, rules, started, lang, after, limit)
            if page is not None:
                return page
        if not self.host.journal_index.versions([oid]):
            raise NotFound("recipient", f"{mailing_id}/{contact_id}")
        return self._history_folded_whole(oid, rules or self.active_rules(), started, as_of, lang, after, limit, not for_replay)

    def _views_caught_up_briefly(self) -> None:
        try:
            self.host.wait_for_views(timeout=HISTORY_VIEWS_WAIT_SECONDS)
        except TimeoutError:
            log.warning(
                "audit history from views %d events behind the journal", self.host.journal_position() - self.host.views_position()
            )

    def _history_from_checkpoint(
        self, oid: uuid.UUID, rules: Ruleset | None, started: datetime | None, lang: str, after: int, limit: int
    ) -> dict[str, Any] | None:
        """A page for now folded from the views' nearest checkpoint; None when ``rules`` are not the views',
        the views' row of the recipient predates fold checkpoints, or the journal holds no such recipient."""
        start = self.views.history_start(oid.hex, after)
        active = self.ruleset(start.rules_version or DEFAULT_VERSION)
        if rules is not None and rules != active:
            return None
        if start.state is None:  # unknown (None: the caller says so), or the views have not applied its joining yet
            if not self.host.journal_index.versions([oid]):
                return None
            return explain_page((), active, started, RecipientState(), RecipientState(), 0, lang, after, limit)
        if start.version is None:
            return None
        records = self.host.journal_index.signals_of(
            oid, page=history_reads(start.checkpoint_version, after, limit), after=start.checkpoint_version
        )
        signals = ((seq, Signal.from_record(record)) for seq, record in records)
        return explain_page(
            signals, active, started, start.checkpoint or RecipientState(), start.state, start.version, lang, after, limit
        )

    def _history_folded_whole(
        self,
        oid: uuid.UUID,
        rules: Ruleset,
        started: datetime | None,
        as_of: datetime | None,
        lang: str,
        after: int,
        limit: int,
        bounded: bool,
    ) -> dict[str, Any]:
        with fold_slots(self).held() if bounded else nullcontext():
            records = self.host.journal_index.signals_of(oid)
            signals = ((seq, Signal.from_record(record)) for seq, record in records)
            return explain(signals, rules, started, as_of, lang, after=after, limit=limit)
