"""What-if jobs a killed projection process left "running" (issue 14, item 1), on SQLite and PostgreSQL.

Decided: the restarted projection process runs such a job again once (a restart during a deploy still
answers it); a job found interrupted a second time is finished as failed, with the reason, so no
what-if can stop the projection process again and again, nor count against WHAT_IF_MAX_PENDING for
ever. Asked again, it is a new job.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from application.rules import WhatIfQueueFull
from application.service import ResponsesApp
from projections.follower import ViewFollower

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


def hours(n: int) -> dict[str, int]:
    return {"confirmation_timeout_hours": n}


def test_an_interrupted_what_if_runs_again_once_then_fails_with_the_reason(app: ResponsesApp) -> None:
    app.create_mailing({"id": "m", "name": "M", "category": "bulk", "provider": "unione"})
    app.add_audience("m", [{"contact_id": f"c{i}", "email": f"c{i}@example.com"} for i in range(5)])
    app.dispatch("m", now=T0)
    app.settings = dataclasses.replace(app.settings, what_if_max_pending=2)
    app.follower = None  # the web worker journals; the projection processes below run
    once = app.request_what_if(hours(10))
    twice = app.request_what_if(hours(11))
    app.start_job(once)  # a projection process began both and was killed: twice for the second
    app.start_job(twice)
    app.start_job(twice)
    assert [job.job for _, job in app.pending_what_ifs()] == [once, twice]
    with pytest.raises(WhatIfQueueFull):
        app.request_what_if(hours(12))

    restarted = ViewFollower(app)  # the projection process, started again
    assert app.jobs.run(restarted) == 2
    assert app.job(once)["status"] == "done" and app.job(once)["result"]["recipients"] == 5
    failed = app.job(twice)
    assert failed["status"] == "failed"
    assert failed["error"].startswith("interrupted 2 times: the projection process stopped while it ran this what-if")
    assert app.pending_what_ifs() == [], "nothing counts against the bound any more"
    assert app.jobs.run(restarted) == 0
    again = app.request_what_if(hours(11))
    assert again != twice and app.job(again)["status"] == "running"
