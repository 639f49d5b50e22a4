"""The follower's round trips to the database for one batch (issue 15, item 3), on SQLite and PostgreSQL.

Counted, not timed: every statement the follower sends for a batch (each ``execute``; an
``executemany`` as one: psycopg pipelines it, SQLite runs it in-process), the journal read and
the position reads included. A batch costs a statement per view table it writes, the tracking
record, the journal read and a few preloads, whatever the number of events and recipients in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from application.service import ResponsesApp
from bench.journal import provider_events
from domain.signals import ParsedBatch

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
RECIPIENTS = 100
SIGNALS = 500
# The active generation and rules, the tracking row (locked, with the lag histogram), the journal read,
# one read each of recipients, mailings and contacts, a statement per view table written (here:
# recipients, link clicks, contacts, signal terms, mailing stats), the meta written, the tracking
# record. Before (issue 15): 19 for the signals, 114 for the audience (a read for each contact).
MOST_STATEMENTS = 13


class Counted:
    """A cursor that counts the statements sent through it."""

    def __init__(self, cursor: Any, sent: list[str]):
        self._cursor = cursor
        self._sent = sent

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._sent.append(str(args[0] if args else kwargs.get("query"))[:60])
        return self._cursor.execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        self._sent.append(str(args[0] if args else kwargs.get("query"))[:60])
        return self._cursor.executemany(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def counting(app: ResponsesApp, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the views' cursors, the journal's notification reads and the position reads send."""
    sent: list[str] = []
    views = app.views
    opened = views.cursor

    @contextmanager
    def cursor(*, commit: bool) -> Iterator[Any]:
        with opened(commit=commit) as c:
            yield Counted(c, sent)

    select_notifications = app.recorder.select_notifications
    max_tracking_id = views.max_tracking_id  # type: ignore[attr-defined]

    def notifications(*args: Any, **kwargs: Any) -> Any:
        sent.append("journal")  # (read through the batch cursor now: counted there)
        return select_notifications(*args, **kwargs)

    def tracked(*args: Any, **kwargs: Any) -> Any:
        sent.append("position")
        return max_tracking_id(*args, **kwargs)

    monkeypatch.setattr(views, "cursor", cursor)
    monkeypatch.setattr(app.recorder, "select_notifications", notifications)
    monkeypatch.setattr(views, "max_tracking_id", tracked)
    return sent


def test_a_batch_of_signals_costs_a_statement_a_table_not_one_a_recipient(
    app: ResponsesApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.create_mailing({"id": "rt", "name": "RT", "category": "bulk", "provider": "unione", "email_type": "news"})
    app.add_audience("rt", [{"contact_id": f"c{i}", "email": f"c{i}@example.com"} for i in range(RECIPIENTS)])
    while app.dispatch("rt", now=T0)["remaining"]:
        pass
    app.wait_for_views()
    events = provider_events("rt", RECIPIENTS, SIGNALS, T0, seed=3)
    app.record_batch(ParsedBatch(events=events))
    before = app.views_position()
    sent = counting(app, monkeypatch)
    assert app.follower is not None
    applied = app.follower.run_once()
    sent = sent[:]  # what the batch sent (not the reads below)
    assert applied >= SIGNALS * 0.9, applied
    assert app.views_position() > before
    assert len(sent) <= MOST_STATEMENTS, (len(sent), "\n".join(sent))


def test_an_audience_joining_costs_no_statement_a_contact(app: ResponsesApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recipients joining with their contacts: every contact a batch touches is read with the others."""
    app.create_mailing({"id": "join", "name": "Join", "category": "bulk", "provider": "unione", "email_type": "news"})
    app.wait_for_views()
    app.add_audience("join", [{"contact_id": f"c{i}", "email": f"c{i}@example.com"} for i in range(RECIPIENTS)])
    app.change_contact("c1", {"do_not_use_email": True})
    sent = counting(app, monkeypatch)
    assert app.follower is not None
    app.follower.run_once()
    sent = sent[:]
    assert app.views_position() == app.journal_position()
    assert len(sent) <= MOST_STATEMENTS, (len(sent), "\n".join(sent))
