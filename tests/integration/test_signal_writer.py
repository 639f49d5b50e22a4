"""Provider signals go parse → plan → write (CONTRACT §10's ingest targets rest on it): a batch is planned
from one read of the journal, builds no aggregate and no library event object, and its rows are the
library's own, read back by its repository, notification log and LISTENers as if it had written them."""

from __future__ import annotations

import select
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from application.queries import Queries
from application.service import ResponsesApp
from domain.aggregates import Recipient, mailing_id_of, recipient_id
from domain.fold import RecipientState, fold_into
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key, parse_iso
from tests.integration.test_write_path import open_app, provider_event, start_campaign

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Spy:
    """Counts the calls of one method of an object, and keeps their arguments."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, target: Any, name: str):
        self.calls: list[tuple[Any, ...]] = []
        original = getattr(target, name)

        def spy(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(args)
            return original(*args, **kwargs)

        monkeypatch.setattr(target, name, spy)


def opens(mailing: str, contacts: range, n: int) -> ParsedBatch:
    return ParsedBatch(
        events=[
            provider_event(mailing, c, status, i, False) for c in contacts for i, status in enumerate(["delivered", "opened"][:n])
        ]
    )


def test_a_batch_is_planned_from_one_read_and_builds_no_aggregate_or_event_object(
    app: ResponsesApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    start_campaign(app, "one", range(20))
    reads = Spy(monkeypatch, app.journal_index, "lean_read")
    whole_reads = Spy(monkeypatch, app.journal_index, "rows")
    loads = Spy(monkeypatch, app, "load_many")
    to_stored = Spy(monkeypatch, app.mapper, "to_stored_event")
    to_domain = Spy(monkeypatch, app.mapper, "to_domain_event")
    counts = app.record_batch(opens("one", range(20), 2))
    assert counts.as_dict() == {"accepted": 40, "duplicates": 0, "unmatched": 0, "quarantined": 0}
    assert len(reads.calls) == 1  # versions, facts and digest hits: one read
    assert (len(whole_reads.calls), len(loads.calls)) == (0, 0)  # no aggregate loaded
    assert (len(to_stored.calls), len(to_domain.calls)) == (0, 0)  # no library event object, either way


def test_the_mailing_is_read_once_a_process(app: ResponsesApp, monkeypatch: pytest.MonkeyPatch) -> None:
    start_campaign(app, "cached", range(4))
    reads = Spy(monkeypatch, app.journal_index, "lean_read")
    app.record_batch(opens("cached", range(2), 1))
    app.record_batch(opens("cached", range(2, 4), 1))
    mailing = mailing_id_of("cached")
    assert [mailing in call[0] for call in reads.calls] == [True, False]


def test_the_librarys_repository_reads_a_recipient_as_the_views_fold_it(app: ResponsesApp) -> None:
    start_campaign(app, "fold", range(3))
    for status in ("delivered", "opened", "clicked", "opened"):
        app.record_batch(ParsedBatch(events=[provider_event("fold", c, status, i, False) for c in range(3) for i in range(2)]))
    app.record_batch(ParsedBatch(events=[provider_event("fold", 1, "opened", 9, True)]))  # by address
    app.wait_for_views()
    rules = app.active_rules()
    started = parse_iso(app.get_mailing_aggregate("fold").started_at)
    items = {i["contact_id"]: i for i in Queries(app).audience("fold", limit=100)["items"]}
    for c in range(3):
        rid = recipient_id("fold", f"c{c}")
        recipient: Recipient = app.repository.get(rid)  # type: ignore[assignment]
        events = list(app.events.get(rid))
        signals = [Signal.from_record(e.signal) for e in events if isinstance(e, Recipient.SignalRecorded)]  # type: ignore[attr-defined]
        assert recipient.version == len(events) and recipient.keys == {s.key for s in signals}
        state = RecipientState()
        for signal in signals:
            fold_into(state, signal, rules, started)
        view = items[f"c{c}"]
        assert (state.response, state.opens, state.clicks) == (view["response"]["code"], view["opens"], view["clicks"])


def test_the_notification_log_reads_the_writers_rows_densely(app: ResponsesApp) -> None:
    start_campaign(app, "log", range(5))
    before = app.journal_position()
    app.record_batch(opens("log", range(5), 2))
    notifications = app.notification_log.select(start=before + 1, limit=10) + app.notification_log.select(
        start=before + 11, limit=10
    )
    assert [n.id for n in notifications] == list(range(before + 1, before + 11))  # and no more
    assert Counter(n.topic for n in notifications) == {"domain.aggregates:Recipient.SignalRecorded": 10}
    assert app.views_position() < app.journal_position()  # nothing applied them yet: the follower does
    app.wait_for_views()
    assert app.views_position() == app.journal_position()


def test_a_conflict_with_another_writer_is_planned_again_from_fresh_reads(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = open_app(ResponsesApp, database_url), open_app(ResponsesApp, database_url)
    try:
        start_campaign(first, "race", range(2))
        write = first.signal_writer.write
        raced = []

        def racing(rows: Any, signals: Any) -> None:
            if not raced:  # the other writer stores the same recipient's next version first
                raced.append(second.record_batch(ParsedBatch(events=[provider_event("race", 0, "opened", 1, False)])).accepted)
            write(rows, signals)

        monkeypatch.setattr(first.signal_writer, "write", racing)
        counts = first.record_batch(
            ParsedBatch(events=[provider_event("race", 0, "delivered", 0, False), provider_event("race", 0, "opened", 1, False)])
        )
        assert raced == [1]
        assert counts.as_dict() == {
            "accepted": 1,
            "duplicates": 1,
            "unmatched": 0,
            "quarantined": 0,
        }  # planned again: the open is there
        versions = [e.originator_version for e in first.events.get(recipient_id("race", "c0"))]
        assert versions == list(range(1, len(versions) + 1)) and len(versions) == 2 + 2  # joined, dispatched, two signals
    finally:
        first.close()
        second.close()


def test_the_postgres_writer_notifies_the_librarys_channel(postgres_url: str) -> None:
    app = open_app(ResponsesApp, postgres_url)
    try:
        start_campaign(app, "wake", range(1))
        with psycopg.connect(postgres_url, autocommit=True) as listener:
            listener.execute(f'LISTEN "{app.recorder.channel_name}"')  # type: ignore[attr-defined]
            app.record_batch(ParsedBatch(events=[provider_event("wake", 0, "opened", 0, False)]))
            select.select([listener.fileno()], [], [], 5)
            assert len(list(listener.notifies(timeout=1, stop_after=1))) == 1
    finally:
        app.close()


def test_parked_signals_and_claims_are_the_aggregates_own(app: ResponsesApp) -> None:
    """Signals parked by the writer are claimed by ``add_audience`` (the library's way: get, command, save)."""
    start_campaign(app, "late", range(1))
    early = [
        ProviderEvent(
            Signal(
                key=dedup_key("late", i),
                source="unione",
                fields={"status": "opened"},
                received_at=T0 + timedelta(hours=i),
                occurred_at=T0 + timedelta(hours=i),
            ),
            Correlation("late", "newcomer"),
        )
        for i in range(3)
    ]
    assert app.record_batch(ParsedBatch(events=early)).unmatched == 3
    assert app.record_batch(ParsedBatch(events=early)).duplicates == 3
    app.add_audience("late", [{"contact_id": "newcomer", "email": "n@example.com"}])
    recipient: Recipient = app.repository.get(recipient_id("late", "newcomer"))  # type: ignore[assignment]
    assert {s.signal.key for s in early} <= recipient.keys
    assert app.record_batch(ParsedBatch(events=early)).duplicates == 3
