"""Connections are a budget, not a surprise (issue 14, item 4): a process on PostgreSQL holds at most
``DATABASE_POOL_SIZE`` connections (no overflow) plus one LISTEN connection a running follower, however
many requests arrive at once; requests beyond the pool wait for a connection, they do not fail.

Counted as the server sees them: rows of ``pg_stat_activity`` for the test's own database, sampled
while a burst of concurrent requests (writes that wait for the views, and reads) runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from flask import Flask

from application.config import Settings
from application.service import ResponsesApp
from interface.app import create_app
from projections.follower import ViewFollower
from tests.helpers.e2e import Process, responses_command, service_env
from tests.helpers.stores import PG_ADMIN_URL

TOKEN = "budget-token"
POOL = 3
REQUEST_THREADS = 12  # four times the pool: requests queue for a connection
REQUESTS_EACH = 6


class ConnectionCounter:
    """Samples how many server connections a database has, from a connection to another database."""

    def __init__(self, database: str):
        self.database = database
        self.admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def count(self) -> int:
        row = self.admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,)).fetchone()
        return int(row[0]) if row else 0

    def settle(self, at_most: int, seconds: float = 5.0) -> None:
        """Wait (bounded) for a backend closed a moment ago (the start's schema lock) to leave the server."""
        deadline = time.monotonic() + seconds
        while self.count() > at_most and time.monotonic() < deadline:
            time.sleep(0.05)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.count())
            self.samples += 1
            time.sleep(0.005)

    def __enter__(self) -> ConnectionCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.peak = max(self.peak, self.count())

    def close(self) -> None:
        self.admin.close()


@pytest.fixture
def settings(postgres_url: str) -> Settings:
    return Settings(database_url=postgres_url, api_tokens=(TOKEN,), database_pool_size=POOL)


@pytest.fixture
def counter(settings: Settings) -> Iterator[ConnectionCounter]:
    counting = ConnectionCounter(settings.database_url.rsplit("/", 1)[1])
    try:
        yield counting
    finally:
        counting.close()


def burst(flask_app: Flask) -> list[int]:
    """``REQUEST_THREADS`` threads at once, each creating a mailing (a write that waits for the views),
    listing the mailings and asking /readyz: every status code. The app is made before: its start (the
    schema lock's moment) is not the burst."""
    start = threading.Barrier(REQUEST_THREADS)

    def requests_of(n: int) -> list[int]:
        client = flask_app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        start.wait(timeout=30)
        codes = []
        for i in range(REQUESTS_EACH):
            mailing = {"id": f"m-{n}-{i}", "name": "Budget", "category": "bulk", "email_type": "news", "provider": "unione"}
            codes.append(client.post("/v1/mailings", json=mailing).status_code)
            codes.append(client.get("/v1/mailings?limit=5").status_code)
            codes.append(client.get("/readyz").status_code)
        return codes

    with ThreadPoolExecutor(REQUEST_THREADS) as pool:
        return [code for codes in pool.map(requests_of, range(REQUEST_THREADS)) for code in codes]


def test_a_web_worker_holds_no_more_than_its_pool_under_a_burst(settings: Settings, counter: ConnectionCounter) -> None:
    """A gunicorn worker's shape: no follower in the process (another one projects; here one caught up on demand)."""
    app = ResponsesApp(settings)
    app.follower = ViewFollower(app)  # caught up in the requests' own threads, through the same pool
    flask_app = create_app(app, settings)
    try:
        budget = settings.connection_budget()
        counter.settle(budget)
        with counter:
            codes = burst(flask_app)
    finally:
        app.close()
    assert budget == POOL
    assert counter.samples > 0
    assert counter.peak <= budget, f"{counter.peak} connections held, budget {budget}"
    assert sorted(set(codes)) == [200, 201], codes


def test_a_process_with_a_running_follower_adds_one_listen_connection(settings: Settings, counter: ConnectionCounter) -> None:
    """``responses serve``'s shape: the pool, and the follower thread's LISTEN connection."""
    app = ResponsesApp(settings)
    follower = ViewFollower(app).start()
    flask_app = create_app(app, settings)
    try:
        budget = settings.connection_budget(followers=1)
        counter.settle(budget)
        with counter:
            codes = burst(flask_app)
    finally:
        follower.stop()
        app.close()
    assert budget == POOL + 1
    assert counter.peak <= budget, f"{counter.peak} connections held, budget {budget}"
    assert sorted(set(codes)) == [200, 201], codes


def test_responses_project_holds_its_pool_a_listen_and_a_lock_connection(
    settings: Settings, counter: ConnectionCounter, tmp_path: Path
) -> None:
    """The projector's budget, counted on a running ``responses project`` while requests write beside it."""

    ResponsesApp(settings).close()  # the schema, before the projector starts
    env = service_env(settings.database_url, DATABASE_POOL_SIZE=str(POOL))
    projector = Process("project", responses_command("project", "--report-every", "0.2"), env, tmp_path)
    try:
        projector.wait_for_output("following the journal")
        app = ResponsesApp(settings)  # another process's writes, for the projector to follow (counted apart)
        flask_app = create_app(app, settings)
        try:
            with counter:
                writer_budget = settings.connection_budget()
                codes = burst(flask_app)
        finally:
            app.close()
    finally:
        assert projector.stop() == 0
    budget = settings.connection_budget(followers=1, locks=1) + settings.connection_budget()
    assert counter.peak <= budget, (
        f"{counter.peak} connections held by the projector and the writer, budget {budget} ({writer_budget} the writer's)"
    )
    assert 500 not in codes and 201 in codes
