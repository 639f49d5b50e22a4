"""The what-if page as a web worker runs it (issue 14, item 1): it never runs the replay, follows the
job it gets, and shows the API's refusal when too many what-ifs are queued (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

import projections.replay
from application.service import ResponsesApp
from tests.helpers.web import csrf_of

LIMIT = 2


def form(csrf: str, hours: int) -> dict[str, Any]:
    return {"csrf_token": csrf, "soft_bounce_final": "no", "confirmation_timeout_hours": str(hours), "sample": "3"}


def test_the_page_follows_the_job_and_shows_the_refusal(
    browser: FlaskClient, app: ResponsesApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.settings = dataclasses.replace(app.settings, what_if_wait_seconds=0.1, what_if_max_pending=LIMIT)
    projection, app.follower = app.follower, None  # a gunicorn worker: `responses project` runs the jobs
    calls: list[str] = []
    monkeypatch.setattr(projections.replay, "what_if", lambda *a, **k: calls.append("replay") or {})
    csrf = csrf_of(browser.get("/what-if").get_data(as_text=True))
    followed = [browser.post("/what-if", data=form(csrf, 10 + n)) for n in range(LIMIT)]
    assert [r.status_code for r in followed] == [302] * LIMIT
    assert all(re.fullmatch(r"/jobs/[0-9a-f]{32}", r.headers["Location"]) for r in followed)
    assert browser.post("/what-if", data=form(csrf, 10)).headers["Location"] == followed[0].headers["Location"], (
        "the same question: the same job"
    )
    refused = browser.post("/what-if", data=form(csrf, 99))
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
    html = refused.get_data(as_text=True)
    assert re.search(
        r'<p class="error" role="alert" data-refused="what-if">Too many what-ifs are queued or running \(2 of 2\)\. Try again in 5 s\.</p>',
        html,
    )
    assert 'value="99"' in html, "the form keeps what was asked"
    assert calls == [], "the web worker never runs the replay"
    app.follower = projection
