"""Loading and saving aggregates for one command: few statements, one transaction, retried on conflict.

How rows are read and written lives in ``application.persistence``; ``load_many`` and ``schema_lock`` are
still importable from here."""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import EventStore, IntegrityError

from application.persistence import JournalIndex, load_many, schema_lock  # load_many, schema_lock: their old home's names
from domain.aggregates import NotLoaded

log = logging.getLogger("responses.unit_of_work")

__all__ = ["UnitOfWork", "in_transaction", "load_many", "schema_lock", "now_utc", "chunks", "Needs"]

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")


class UnitOfWorkHost(Protocol):
    """What a unit of work needs of the application."""

    events: EventStore[uuid.UUID]
    journal_index: JournalIndex

    def load_many(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Aggregate]: ...

    def write_events(self, events: Sequence[Any]) -> None: ...


@dataclass
class Needs:
    """What earlier attempts of a command learned they must load: aggregates whole, more dedup keys."""

    whole: set[uuid.UUID] = field(default_factory=set)
    keys: dict[uuid.UUID, set[str]] = field(default_factory=dict)

    def learn(self, missing: NotLoaded) -> None:
        if missing.keys is None:
            self.whole.add(missing.aggregate_id)
        else:
            self.keys.setdefault(missing.aggregate_id, set()).update(missing.keys)


class UnitOfWork:
    """Aggregates loaded or created for one command, saved together in one transaction.

    Loads many aggregates with one query (``prefetch``) and saves all pending
    events with one insert: a provider batch costs a few statements, not one
    per signal. Recipients and unmatched buckets are loaded lean (``prefetch_lean``):
    never rebuilt from their signals, whatever the length of their journals.
    """

    def __init__(self, app: UnitOfWorkHost, needs: Needs | None = None):
        self.app = app
        self.loaded: dict[uuid.UUID, Aggregate | None] = {}
        self.needs = needs or Needs()

    def prefetch(self, ids: Iterable[uuid.UUID]) -> None:
        wanted = [i for i in dict.fromkeys(ids) if i not in self.loaded]
        if not wanted:
            return
        found = self.app.load_many(wanted)
        for i in wanted:
            self.loaded[i] = found.get(i)

    def prefetch_lean(self, scopes: dict[uuid.UUID, set[str]]) -> None:
        """Load recipients or buckets without their signals: version, facts, and which of the
        dedup keys in ``scopes`` (per aggregate) their journals already hold."""
        wanted = {i: set(k) | self.needs.keys.get(i, set()) for i, k in scopes.items() if i not in self.loaded}
        whole = getattr(self.app, "lean_loading", True) is False
        self.prefetch([i for i in wanted if whole or i in self.needs.whole])
        lean = {i: k for i, k in wanted.items() if not whole and i not in self.needs.whole}
        if not lean:
            return
        versions, facts, stored = self.app.journal_index.lean_read(lean)
        present = {i: lean[i] for i in lean if i in versions}
        to_domain = self.app.mapper.to_domain_event  # type: ignore[attr-defined]
        privacy = getattr(self.app, "privacy", None)
        if privacy is not None:  # the sealed names of the whole chunk's recipients: their keys in one read
            privacy.warm(e.state for events in facts.values() for e in events)
        for i in lean:
            if i not in present:
                self.loaded[i] = None
                continue
            if i not in facts:  # no facts (not a recipient or bucket after all): load it whole
                self.loaded.update(self.app.load_many([i]))
                continue
            aggregate: Any = None
            for stored_event in facts[i]:
                e: Any = to_domain(stored_event)
                if aggregate is not None:
                    aggregate.version = e.originator_version - 1  # the signals in between are not loaded
                aggregate = e.mutate(aggregate)
            aggregate.version = versions[i]
            aggregate.load_lean(stored.get(i, set()), present[i])
            self.loaded[i] = aggregate

    def ensure_keys(self, aggregate: Any, keys: Iterable[str]) -> None:
        """Let a lean aggregate answer for more dedup keys (looked up in its journal)."""
        lean = getattr(aggregate, "lean", None)
        if lean is None:
            return
        missing = {k for k in keys if k not in lean.scope and k not in lean.known}
        if missing:
            found = self.app.journal_index.stored_keys({aggregate.id: missing})
            lean.widen(found.get(aggregate.id, set()), missing)

    def get_whole(self, aggregate_id: uuid.UUID) -> Any:
        """The aggregate with its whole journal in memory (a bucket to claim from)."""
        found = self.get(aggregate_id)
        if found is None or getattr(found, "lean", None) is None:
            return found
        if found.pending_events:  # parked into in this command: load it whole from the start
            raise NotLoaded(aggregate_id)
        self.loaded.pop(aggregate_id)
        return self.get(aggregate_id)

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
            self.app.write_events(events)


def in_transaction(app: UnitOfWorkHost, work: Callable[[UnitOfWork], T], attempts: int = 40) -> T:
    """Run ``work(uow)`` and save; retry from fresh state when another writer got there first.

    Concurrent provider batches often touch the same recipients: the loser
    backs off for a random, growing while (at most ~0.3 s a try) so the
    writers spread out instead of colliding again in step.
    """
    needs = Needs()
    for attempt in range(attempts):
        uow = UnitOfWork(app, needs)
        try:
            result = work(uow)
        except NotLoaded as missing:  # a lean aggregate needed more: load that too, from fresh state
            if attempt == attempts - 1:
                raise
            needs.learn(missing)
            continue
        try:
            uow.save()
            return result
        except IntegrityError as exc:
            if attempt == attempts - 1:
                log.error("gave up after %d attempts: another writer changed the same aggregates each time (%s)", attempts, exc)
                raise
            log.debug("conflict with another writer (attempt %d): retrying from fresh state", attempt + 1)
            time.sleep(random.uniform(0, min(0.3, 0.005 * 2**attempt)))
    raise AssertionError("unreachable")


def now_utc() -> datetime:
    return datetime.now(UTC)


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
