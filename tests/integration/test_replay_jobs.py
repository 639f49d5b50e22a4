"""A what-if that outlasts its HTTP request (issue 8, item 4): a journaled job run by the projection
process, answered 202 {"job"} and then as the job's ``result``; on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from application.service import ResponsesApp
from domain.rules import InvalidRuleset
from interface.app import create_app
from projections.follower import ViewFollower
from tests.helpers.http import TOKEN, http_settings
from tests.integration.test_replay_lean import campaign

SOFT_FINAL: dict[str, Any] = {"responses": {"soft_bounce": {"final": True}}}


@pytest.fixture
def journal(app: ResponsesApp) -> ResponsesApp:
    campaign(app)
    return app


def as_an_http_worker(app: ResponsesApp) -> ViewFollower:
    """The application as a gunicorn worker sees it (no follower of its own); the projection process's follower."""
    projection = app.follower
    app.follower = None
    return projection


def test_a_what_if_past_the_bound_is_a_job_the_projection_process_answers(journal: ResponsesApp) -> None:
    app = journal
    expected = app.what_if(SOFT_FINAL, sample=5)
    projection = as_an_http_worker(app)
    result, job = app.start_what_if(SOFT_FINAL, sample=5, wait_seconds=0.05)
    assert result is None and job is not None
    waiting = app.job(job)
    assert (waiting["kind"], waiting["status"], waiting["version"]) == ("what-if", "running", "what-if")
    assert "result" not in waiting
    assert app.jobs.run(projection) == 1  # the projection process's next look at the journal's jobs
    done = app.job(job)
    assert done["status"] == "done" and done["progress"] == 1.0
    assert done["result"] == expected
    assert app.jobs.run(projection) == 0  # answered once


def test_a_what_if_within_the_bound_is_answered_directly_by_a_follower_thread(journal: ResponsesApp) -> None:
    """``responses serve``: the follower runs in a thread of the same process."""
    app = journal
    expected = app.what_if("1", sample=3)
    app.follower = None
    follower = ViewFollower(app).start()
    try:
        result, job = app.start_what_if("1", sample=3, wait_seconds=120)
    finally:
        follower.stop()
    assert job is None and result == expected


def test_an_invalid_ruleset_or_unknown_mailing_is_refused_before_anything_is_journaled(journal: ResponsesApp) -> None:
    app = journal
    as_an_http_worker(app)
    position = app.journal_position()
    with pytest.raises(InvalidRuleset):
        app.start_what_if({"statistics_period_days": "soon"}, wait_seconds=0)
    with pytest.raises(Exception, match="nope"):
        app.start_what_if(SOFT_FINAL, mailings=["nope"], wait_seconds=0)
    assert app.journal_position() == position
    assert app.pending_jobs()[0] == []


def test_the_http_answer_is_202_with_a_job_whose_result_comes_once_done(journal: ResponsesApp) -> None:
    app = journal
    expected = app.what_if(SOFT_FINAL, sample=2)
    projection = as_an_http_worker(app)
    app.settings = dataclasses.replace(app.settings, what_if_wait_seconds=0.05)
    api = create_app(app, http_settings(app.settings.database_url)).test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    assert api.post("/v1/what-if", json={"rules": {"statistics_period_days": "x"}}).status_code == 422
    r = api.post("/v1/what-if", json={"rules": SOFT_FINAL, "sample": 2})
    assert r.status_code == 202
    job = r.get_json()["job"]
    running = api.get(f"/v1/jobs/{job}").get_json()
    assert running["status"] == "running" and "result" not in running
    app.jobs.run(projection)
    done = api.get(f"/v1/jobs/{job}")
    assert done.status_code == 200
    assert done.get_json()["status"] == "done" and done.get_json()["result"] == expected
    spec = api.get("/openapi.json").get_json()
    answers = spec["paths"]["/v1/what-if"]["post"]["responses"]
    assert {"200", "202", "422"} <= set(answers)
    job_schema = answers["202"]["content"]["application/json"]["schema"]
    assert job_schema == {"$ref": "#/components/schemas/JobAccepted"}
    assert "result" in spec["components"]["schemas"]["Job"]["properties"]


def test_an_on_demand_follower_runs_the_job_in_the_waiting_process(journal: ResponsesApp) -> None:
    """Tests and one-shot commands have no follower thread: whoever waits runs the job."""
    app = journal
    result, job = app.start_what_if(SOFT_FINAL, sample=2, wait_seconds=30)
    assert job is None and result == app.what_if(SOFT_FINAL, sample=2)
