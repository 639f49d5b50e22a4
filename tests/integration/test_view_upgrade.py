"""Views that change shape upgrade themselves (issue 15, item 6), on both stores.

A database whose views were written by the code before the engagement buckets (view shape 1; here made by
building today's views and taking them back to that shape: no bucket table, no ``first_sent_at``, no shape in
the meta; and, as the code before fold checkpoints wrote them, recipient rows without a version) is upgraded
when a projection process starts: a job is journaled once, run by the process that follows, builds a
generation of the current shape in the background while the old one serves, and swaps it in. The answers
are the same before, during and after; the history then folds from checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from application import jobs as jobs_module
from application.config import Settings
from application.jobs import UPGRADE, upgrade_progress
from application.queries import Queries
from application.service import ResponsesApp
from domain.aggregates import recipient_id
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key
from interface.app import create_app
from projections import projector
from projections.follower import ViewFollower
from projections.views import VIEW_SHAPE, dump_recipient_state, load_recipient_row_state, shape_key

T0 = datetime(2026, 3, 14, 9, 0, 22, 500000, tzinfo=UTC)
CONTACTS = [f"c{i}" for i in range(30)]


def provider_event(contact: str, status: str, at: datetime, n: int) -> ProviderEvent:
    url = "https://x.example/a" if status == "clicked" else None
    signal = Signal(
        key=dedup_key("unione", contact, status, n),
        source="unione",
        fields={"status": status},
        received_at=T0 + timedelta(hours=5),
        occurred_at=at,
        url=url,
        raw={"status": status},
    )
    return ProviderEvent(signal, Correlation("up", contact))


def fill(app: ResponsesApp) -> None:
    app.create_mailing({"id": "up", "name": "Upgrade", "category": "bulk", "provider": "unione", "email_type": "news"})
    app.add_audience("up", [{"contact_id": c, "email": f"{c}@example.com"} for c in CONTACTS])
    while app.dispatch("up", now=T0)["remaining"]:
        pass
    events = []
    for i, c in enumerate(CONTACTS):
        events.append(provider_event(c, "delivered", T0 + timedelta(minutes=1), 0))
        events += [provider_event(c, "opened", T0 + timedelta(minutes=97 - 3 * i - k), k + 1) for k in range(4)]  # out of order
        if i % 3 == 0:
            events.append(provider_event(c, "clicked", T0 + timedelta(minutes=40 + i), 9))
    app.record_batch(ParsedBatch(events=events))
    app.wait_for_views()


def answers(app: ResponsesApp) -> dict[str, Any]:
    queries = Queries(app)
    return {
        "summary": queries.summary("up"),
        "mailings": queries.mailings(),
        "timeline": queries.timeline("up"),
        "timeline_3h": queries.timeline("up", hours=3),
        "audience": queries.audience("up", limit=1000),
        "history": app.history("up", "c0")["signals"],
    }


def downgrade(app: ResponsesApp) -> None:
    """The active views back to what the code before this shape (and before fold checkpoints) wrote."""
    views, g = app.views, app.generation()
    rows = views.fetch(f"SELECT rid, state FROM {views.t(g, 'recipients')}")
    with views.cursor(commit=True) as c:
        c.execute(f"DROP TABLE {views.t(g, 'engagement')}")
        c.execute(f"ALTER TABLE {views.t(g, 'mailings')} DROP COLUMN first_sent_at")
        c.execute(views._q("DELETE FROM rv_meta WHERE key = ?"), (shape_key(g),))
        c.execute(f"DELETE FROM {views.t(g, 'checkpoints')}")
        for r in rows:  # rows without a version, as projected before checkpoints
            state = load_recipient_row_state(r["state"])[0]
            c.execute(
                views._q(f"UPDATE {views.t(g, 'recipients')} SET state = ? WHERE rid = ?"),
                (dump_recipient_state(state), r["rid"]),
            )


@pytest.fixture
def written_before(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, dict[str, Any]]]:
    """A database whose views have the older shape, and the answers today's views gave before they were taken back."""
    monkeypatch.setattr(projector, "CHECKPOINT_SIGNALS", 3)
    settings = Settings(database_url=database_url)
    app = ResponsesApp(settings)
    app.follower = ViewFollower(app)
    try:
        fill(app)
        before = answers(app)
        downgrade(app)
    finally:
        app.close()
    yield settings, before


def test_views_of_an_older_shape_upgrade_themselves_through_a_journaled_job(
    written_before: tuple[Settings, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, before = written_before
    web = ResponsesApp(settings)  # a web worker: it reads the old views and never builds new ones
    try:
        old_generation = web.generation()
        assert web.views.active_shape() == (old_generation, 1)
        assert web.pending_jobs()[0] == []
        assert answers(web) == before  # the older shape answers as it did
        assert web.views.history_start(recipient_id("up", "c0").hex, 0).version is None  # rows without a version
    finally:
        web.close()

    app = ResponsesApp(settings)  # the projection process starts
    try:
        app.follower = ViewFollower(app)  # becomes this process's follower: the upgrade is asked for
        [job] = app.pending_jobs()[0]
        assert job.kind == UPGRADE
        assert upgrade_progress(app.views) == {"upgrading": {"progress": 0.0, "from_shape": 1, "to_shape": VIEW_SHAPE}}
        client = create_app(app, settings).test_client()
        during = read_during_the_rebuild(app, client, monkeypatch)
        app.jobs.run()

        assert len(during) >= 2, "the rebuild had batches to read between"
        for _answered, readiness, shape in during:  # the old generation served meanwhile, and said it is upgrading
            assert shape == 1
            assert readiness.status_code == 200 and 0.0 <= readiness.json["upgrading"]["progress"] < 1.0
        assert during[0][0] == before
        # an earlier open of c1 journaled during the rebuild: the old generation followed it in its own shape
        following = during[-1][0]
        assert following["timeline_3h"] != before["timeline_3h"]
        assert app.job(job.job)["status"] == "done"
        generation, shape = app.views.active_shape()
        assert generation > old_generation and shape == VIEW_SHAPE
        assert answers(app) == following
        start = app.views.history_start(recipient_id("up", "c0").hex, 0)
        assert start.version is not None  # history pages fold from checkpoints again
        last = app.views.history_start(recipient_id("up", "c0").hex, start.version)
        assert last.checkpoint is not None and last.checkpoint_version > 0
        assert upgrade_progress(app.views) == {}
        assert "upgrading" not in client.get("/readyz").json
        assert app.jobs.request_upgrade() is None  # run once
    finally:
        app.close()

    again = ResponsesApp(settings)  # restarted: nothing more to upgrade
    try:
        again.follower = ViewFollower(again)
        assert again.pending_jobs()[0] == []
        assert answers(again) == following
    finally:
        again.close()


def read_during_the_rebuild(
    app: ResponsesApp, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[dict[str, Any], Any, int]]:
    """Between the rebuild's batches (small ones here), read the answers, ``/readyz`` and the active shape; after the
    first, journal an earlier open of c1 (the old generation follows it while the new one is built)."""
    seen: list[tuple[dict[str, Any], Any, int]] = []
    rebuild = jobs_module.replay.rebuild

    def small_batches(host: Any, rules: Any, progress: Any = None, between_batches: Any = None, batch_size: int = 1000) -> int:
        def between() -> None:
            if between_batches is not None:
                between_batches()
            seen.append((answers(app), client.get("/readyz"), app.views.active_shape()[1]))
            if len(seen) == 1:  # news while the rebuild goes on: c1 opened earlier than it was known to
                app.record_batch(ParsedBatch(events=[provider_event("c1", "opened", T0 + timedelta(minutes=2), 77)]))

        return rebuild(host, rules, progress, between, batch_size=40)

    monkeypatch.setattr(jobs_module.replay, "rebuild", small_batches)
    monkeypatch.setattr(jobs_module, "PROGRESS_EVERY_SECONDS", 0.0)
    return seen


def test_an_upgrade_interrupted_is_run_again_at_the_next_start(
    written_before: tuple[Settings, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Journaled: a projection process stopped before it ran the upgrade leaves it queued; the next one runs it
    (and asks for no second one)."""
    settings, before = written_before
    first = ResponsesApp(settings)
    try:
        first.follower = ViewFollower(first)
        [job] = first.pending_jobs()[0]
    finally:
        first.close()  # stopped before its follower's thread ran the job
    second = ResponsesApp(settings)
    try:
        second.follower = ViewFollower(second)
        assert [j.job for j in second.pending_jobs()[0]] == [job.job]
        second.jobs.run()
        assert second.views.active_shape()[1] == VIEW_SHAPE
        assert second.job(job.job)["status"] == "done"
        assert answers(second) == before
    finally:
        second.close()
