"""Expected contention is retried quietly (debug, no traceback); a real failure is logged once with its cause."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from application.unit_of_work import in_transaction
from projections.follower import ViewFollower


class Host:
    """A unit of work's host whose saves conflict ``conflicts`` times (another writer got there first)."""

    def __init__(self, conflicts: int):
        self.conflicts = conflicts

    def load_many(self, ids: Any) -> dict:
        return {}

    def write_events(self, events: Any) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise IntegrityError("UNIQUE constraint failed: stored_events.originator_id, stored_events.originator_version")


def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_a_conflict_that_a_retry_resolves_is_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pending = [object()]

    def work(uow: Any) -> str:
        uow.add(type("A", (), {"id": 1, "collect_events": lambda self: pending})())
        return "done"

    assert in_transaction(Host(conflicts=3), work) == "done"
    assert loud(caplog) == []
    assert len([r for r in caplog.records if "conflict" in r.getMessage()]) == 3


def test_a_conflict_that_never_resolves_is_logged_once_with_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def work(uow: Any) -> None:
        uow.add(type("A", (), {"id": 1, "collect_events": lambda self: [object()]})())

    with pytest.raises(IntegrityError):
        in_transaction(Host(conflicts=100), work, attempts=3)
    [error] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "3 attempts" in error.getMessage() and "UNIQUE constraint" in error.getMessage()


@pytest.mark.timeout(20)
def test_the_follower_retries_a_locked_database_quietly(
    app: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    follower = ViewFollower(app, poll_interval=0.01)
    calls = {"n": 0}
    real = follower.run_once

    def sometimes_locked() -> int:
        calls["n"] += 1
        if calls["n"] <= 3:
            raise sqlite3.OperationalError("database is locked")
        return real()

    monkeypatch.setattr(follower, "run_once", sometimes_locked)
    app.create_mailing({"id": "m1", "name": "M1", "category": "bulk", "provider": "unione"})
    thread = threading.Thread(target=follower.run_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while app.views_position() < app.journal_position() and time.monotonic() < deadline:
        time.sleep(0.02)
    follower._stop.set()
    thread.join(timeout=5)
    assert app.views_position() == app.journal_position()  # it did get through
    assert loud(caplog) == []
    assert any("database is locked" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


@pytest.mark.timeout(20)
def test_a_database_away_for_long_is_one_warning_then_one_line_when_back(
    app: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import projections.follower as follower_module

    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(follower_module, "UNAVAILABLE_WARNING_SECONDS", 0.1)
    follower = ViewFollower(app, poll_interval=0.01)
    real, away_until = follower.run_once, time.monotonic() + 0.8

    def away() -> int:
        if time.monotonic() < away_until:
            raise sqlite3.OperationalError("unable to open database file")
        return real()

    monkeypatch.setattr(follower, "run_once", away)
    thread = threading.Thread(target=follower.run_forever, daemon=True)
    thread.start()
    time.sleep(1.2)
    follower._stop.set()
    thread.join(timeout=5)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "unable to open database file" in warnings[0].getMessage() and not warnings[0].exc_info
    assert len([r for r in caplog.records if "answers again" in r.getMessage()]) == 1
