"""Concurrent what-ifs do not take the service off the air (issue 14, item 1), on SQLite and PostgreSQL.

A web worker never runs a replay and waits for one at most WHAT_IF_WAIT_SECONDS; identical what-ifs
share one job (and its answer, at the same journal position under the same active rules); what-ifs
queued or running, counted in the database, are bounded by WHAT_IF_MAX_PENDING (429 + Retry-After);
a webhook is answered while what-ifs wait.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask.testing import FlaskClient

import projections.replay
from application.config import ConfigError, Settings
from application.service import ResponsesApp
from interface.app import create_app
from projections.follower import ViewFollower
from tests.helpers.http import TOKEN, error_of, fixture_bytes, http_settings, sign_unione, start_spring

SOFT_FINAL: dict[str, Any] = {"responses": {"soft_bounce": {"final": True}}}
LIMIT = 4


def rules(n: int) -> dict[str, Any]:
    """A distinct candidate ruleset per ``n`` (each a different question)."""
    return {"confirmation_timeout_hours": 10 + n}


def what_if_jobs(app: ResponsesApp) -> Counter[str]:
    """The what-if jobs in the journal, by status."""
    notes = app.recorder.select_notifications(start=1, limit=100_000, topics=["domain.aggregates:Job.Requested"])
    jobs = [app.job(app.repository.get(n.originator_id).job) for n in notes]
    return Counter(job["status"] for job in jobs if job["kind"] == "what-if")


@pytest.fixture
def worker(app: ResponsesApp) -> Iterator[tuple[ResponsesApp, FlaskClient, ViewFollower]]:
    """The application as a gunicorn worker sees it (no follower: ``responses project`` runs the jobs),
    the fixtures' mailing sent; and the projection process's follower, to run the jobs when told."""
    app.settings = dataclasses.replace(app.settings, what_if_wait_seconds=0.2, what_if_max_pending=LIMIT)
    api = create_app(app, http_settings(app.settings.database_url)).test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    start_spring(api, "unione")
    projection = app.follower
    app.follower = None
    yield app, api, projection
    app.follower = projection


def post_batch(client: FlaskClient) -> None:
    r = client.post(
        "/v1/webhooks/unione", data=sign_unione(fixture_bytes("unione/batch-mixed.json")), content_type="application/json"
    )
    assert r.status_code == 200, r.get_json()


def test_the_wait_is_one_second_by_default_and_never_more_than_two() -> None:
    assert Settings.from_env({}).what_if_wait_seconds == 1.0
    assert Settings.from_env({"WHAT_IF_WAIT_SECONDS": "2"}).what_if_wait_seconds == 2.0
    with pytest.raises(ConfigError, match=r"WHAT_IF_WAIT_SECONDS is 15: at most 2 seconds"):
        Settings.from_env({"WHAT_IF_WAIT_SECONDS": "15"})
    assert Settings.from_env({}).what_if_max_pending == 4
    assert Settings.from_env({"WHAT_IF_MAX_PENDING": "9"}).what_if_max_pending == 9
    for bad in ("0", "many"):
        with pytest.raises(ConfigError, match="WHAT_IF_MAX_PENDING"):
            Settings.from_env({"WHAT_IF_MAX_PENDING": bad})


def test_identical_what_ifs_share_one_job_and_the_queue_is_bounded(
    worker: tuple[ResponsesApp, FlaskClient, ViewFollower],
) -> None:
    app, api, projection = worker
    first = api.post("/v1/what-if", json={"rules": SOFT_FINAL, "sample": 3})
    assert first.status_code == 202
    job = first.get_json()["job"]
    # the same question, sent again, in another spelling of the same mailings scope: joined
    assert api.post("/v1/what-if", json={"rules": SOFT_FINAL, "sample": 3}).get_json() == {"job": job}
    assert what_if_jobs(app) == {"running": 1}
    answers = [api.post("/v1/what-if", json={"rules": rules(n)}) for n in range(LIMIT)]
    assert [r.status_code for r in answers] == [202] * (LIMIT - 1) + [429]
    refused = answers[-1]
    assert refused.headers["Retry-After"] == "5"
    error = error_of(refused)
    assert error["code"] == "too_many_what_ifs" and error["details"] == {"pending": LIMIT, "limit": LIMIT, "retry_after": 5}
    assert what_if_jobs(app) == {"running": LIMIT}, "a refused what-if journals nothing"
    # joining a queued job adds no work: not refused at the bound
    assert api.post("/v1/what-if", json={"rules": SOFT_FINAL, "sample": 3}).get_json() == {"job": job}
    assert api.post("/v1/what-if", json={"rules": SOFT_FINAL, "sample": 4}).status_code == 429, "another sample: another question"

    assert app.jobs.run(projection) == LIMIT  # the projection process answers them
    answered = api.get(f"/v1/jobs/{job}").get_json()
    assert answered["status"] == "done"
    position = app.journal_position()
    again = api.post("/v1/what-if", json={"rules": SOFT_FINAL, "sample": 3})
    assert again.status_code == 200 and again.get_json() == answered["result"], "the same position and rules: the answer, reused"
    assert app.journal_position() == position and what_if_jobs(app) == {"done": LIMIT}

    post_batch(api)  # the journal moves: the answer is no longer this question's
    moved = api.post("/v1/what-if", json={"rules": SOFT_FINAL, "sample": 3})
    assert moved.status_code == 202 and moved.get_json()["job"] != job
    app.jobs.run(projection)
    version = app.define_rules({"statistics_period_days": 30}).version  # a rules version defined: no fold reads it
    same = api.post("/v1/what-if", json={"rules": SOFT_FINAL, "sample": 3})
    assert same.status_code == 200
    assert app.request_activation(version)["kind"] == "activate"
    app.jobs.run(projection)  # other active rules: the answer is no longer this question's
    assert api.post("/v1/what-if", json={"rules": SOFT_FINAL, "sample": 3}).status_code == 202
    assert what_if_jobs(app) == {"done": LIMIT + 1, "running": 1}


def test_concurrent_what_ifs_create_at_most_the_bound_of_jobs(worker: tuple[ResponsesApp, FlaskClient, ViewFollower]) -> None:
    """16 at once from 8 threads, half of them one question: never more than WHAT_IF_MAX_PENDING jobs
    queued, however the workers' counts interleave; the identical ones that got in share one job."""
    app, api, _ = worker
    flask_app = api.application
    bodies = [{"rules": SOFT_FINAL} if i % 2 else {"rules": rules(i)} for i in range(16)]

    def post(body: dict[str, Any]) -> tuple[int, dict[str, Any], str | None]:
        own = flask_app.test_client()
        own.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        r = own.post("/v1/what-if", json=body)
        return r.status_code, r.get_json(), r.headers.get("Retry-After")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, bodies))
    assert {status for status, _, _ in answers} == {202, 429}
    assert all(retry == "5" for status, _, retry in answers if status == 429)
    assert all(set(body) == {"error"} for status, body, _ in answers if status == 429)
    accepted = {body["job"] for status, body, _ in answers if status == 202}
    assert len(accepted) == LIMIT
    assert what_if_jobs(app)["running"] == LIMIT
    shared = {body["job"] for (status, body, _), sent in zip(answers, bodies) if status == 202 and sent["rules"] == SOFT_FINAL}
    assert len(shared) <= 1


def test_the_http_thread_never_runs_the_replay(app: ResponsesApp, api: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even beside a follower caught up on demand (the tests'), the request's thread only waits."""
    start_spring(api, "unione")
    replay = projections.replay.what_if
    threads: list[str] = []

    def recorded(*args: Any, **kwargs: Any) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return replay(*args, **kwargs)

    monkeypatch.setattr(projections.replay, "what_if", recorded)
    r = api.post("/v1/what-if", json={"rules": SOFT_FINAL, "sample": 2})
    assert r.status_code == 200, r.get_json()
    assert threads == ["view-follower-jobs"]
    assert threading.current_thread().name not in threads


@pytest.fixture
def served(app: ResponsesApp, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, threading.Event, list[str]]]:
    """``responses serve``'s shape, in this process: waitress with 4 threads, the follower in a thread of
    its own, settings as configured by default; every replay blocks until the test ends."""
    from waitress import create_server

    settings = http_settings(app.settings.database_url)
    app.settings = dataclasses.replace(app.settings, what_if_wait_seconds=settings.what_if_wait_seconds)
    api = create_app(app, settings).test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    start_spring(api, "unione")
    release = threading.Event()
    threads: list[str] = []

    def blocked(*args: Any, **kwargs: Any) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        release.wait(60)
        raise RuntimeError("the test is over")

    monkeypatch.setattr(projections.replay, "what_if", blocked)
    app.follower = None
    follower = ViewFollower(app).start()
    server: Any = create_server(create_app(app, settings), host="127.0.0.1", port=0, threads=4)
    runner = threading.Thread(target=server.run, name="waitress", daemon=True)
    runner.start()
    try:
        yield server.effective_port, release, threads
    finally:
        release.set()
        server.close()
        runner.join(10)
        follower.stop()


def request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 20.0
) -> tuple[int, dict[str, str]] | None:
    """One request; None when it was not answered within ``timeout``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        r.read()
        return r.status, dict(r.getheaders())
    except TimeoutError:
        return None
    finally:
        conn.close()


def test_a_webhook_is_answered_while_what_ifs_are_pending(served: tuple[int, threading.Event, list[str]]) -> None:
    """12 what-ifs on 4 server threads, their replays stuck: the webhook and /healthz sent after them are
    answered (before: each what-if held its thread for WHAT_IF_WAIT_SECONDS, 15 s)."""
    port, release, threads = served
    bearer = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with ThreadPoolExecutor(16) as pool:
        what_ifs = [
            pool.submit(request, port, "POST", "/v1/what-if", json.dumps({"rules": rules(i)}).encode(), bearer) for i in range(12)
        ]
        threading.Event().wait(0.3)  # the what-ifs first
        webhook = pool.submit(
            request,
            port,
            "POST",
            "/v1/webhooks/unione",
            sign_unione(fixture_bytes("unione/batch-mixed.json")),
            {"Content-Type": "application/json"},
        )
        health = pool.submit(request, port, "GET", "/healthz")
        others = [webhook.result(), health.result()]
        answers = [f.result() for f in what_ifs]
    assert [a[0] if a else None for a in others] == [200, 200], "answered while what-ifs are pending"
    statuses = Counter(a[0] if a else None for a in answers)
    assert statuses == {202: LIMIT, 429: 12 - LIMIT}
    assert all(a[1].get("Retry-After") == "5" for a in answers if a and a[0] == 429)
    assert not release.is_set() and set(threads) <= {"view-follower"}, "only the follower thread runs replays"
