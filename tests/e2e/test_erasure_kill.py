"""kill -9 in the middle of a bulk erasure, restart, and it completes (CONTRACT §12: "A retry after a crash
completes an interrupted erasure").

``responses serve`` on SQLite runs a bulk erasure job (``POST /v1/erasures``) of a campaign's contacts; the
server is killed with SIGKILL as soon as the first chunk of them is recorded, while the job goes on (no
pause is injected: the job is long enough to be caught at work). Restarted, the server runs the
interrupted job again; a single erasure and the whole request are then asked again. At the end every
contact is erased once (one ``Contact.Erased`` each), the counts are what they were, and no address of
theirs is anywhere in the database's file or its WAL; a neighbour's is.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from application.config import Settings
from application.service import ResponsesApp
from bench.journal import provider_events
from domain.signals import ParsedBatch
from projections.follower import ViewFollower
from tests.helpers.e2e import Http, Process, free_port, responses_command, service_env, start

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
MAILING = "kill-erase"
CONTACTS = 1_500  # six chunks of 250: the kill comes as the first is recorded, five are left
DOMAIN = b"@erase.example.org"
NEIGHBOUR = b"neighbour@keep.example.net"
JOB_SECONDS = 60.0


def campaign(url: str) -> None:
    app = ResponsesApp(Settings(database_url=url))
    app.follower = ViewFollower(app)
    try:
        app.create_mailing({"id": MAILING, "name": "Kill", "category": "bulk", "provider": "unione"})
        people = [
            {"contact_id": f"c{i}", "email": f"Person.{i}@Erase.example.org", "name": f"Person {i}"} for i in range(CONTACTS)
        ]
        app.add_audience(MAILING, [*people, {"contact_id": "neighbour", "email": NEIGHBOUR.decode()}])
        while app.dispatch(MAILING, now=T0)["remaining"]:
            pass
        events = provider_events(MAILING, CONTACTS, CONTACTS, T0)
        for i in range(0, len(events), 500):
            app.record_batch(ParsedBatch(events=events[i : i + 500]))
        app.wait_for_views()
    finally:
        app.close()


def erased_rows(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as con:
        try:
            return int(con.execute("SELECT COUNT(*) FROM erasures").fetchone()[0])
        except sqlite3.OperationalError:  # the table not made yet
            return 0


def erased_events(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as con:
        return int(con.execute("SELECT COUNT(*) FROM stored_events WHERE topic LIKE '%Contact.Erased'").fetchone()[0])


def wait_for_job(http: Http, job: str, server: Process) -> dict[str, object]:
    deadline = time.monotonic() + JOB_SECONDS
    while True:
        state = http.ok("GET", f"/v1/jobs/{job}")
        if state["status"] in ("done", "failed"):
            return dict(state)
        assert server.proc.poll() is None, server.output()
        assert time.monotonic() < deadline, f"job {job} not done in {JOB_SECONDS} s: {state}\n{server.output()}"
        time.sleep(0.1)


@pytest.mark.timeout(180)
def test_a_bulk_erasure_killed_mid_way_completes_after_a_restart(tmp_path: Path, processes: list[Process]) -> None:
    db = tmp_path / "r.db"
    url = f"sqlite:///{db}"
    campaign(url)
    port = free_port()
    env = service_env(url)
    http = Http(port)
    server = start(processes, "serve", responses_command("serve", "--port", str(port)), env, tmp_path)
    http.wait_until_up(server)
    http.wait_caught_up()
    summary = http.ok("GET", f"/v1/mailings/{MAILING}/summary")
    wanted = [f"c{i}" for i in range(CONTACTS)]
    status, answer = http.call("POST", "/v1/erasures", {"contact_ids": wanted, "basis": "GDPR art. 17 batch"})
    assert status == 202, answer
    job = answer["job"]

    deadline = time.monotonic() + JOB_SECONDS
    while erased_rows(db) == 0:  # the first chunk recorded: the job is at work
        assert server.proc.poll() is None, server.output()
        assert time.monotonic() < deadline, f"no contact erased in {JOB_SECONDS} s:\n{server.output()}"
        time.sleep(0.005)
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)
    at_kill = erased_rows(db)
    assert 0 < at_kill < CONTACTS, f"the kill came after the job had erased {at_kill} of {CONTACTS}"
    assert erased_events(db) <= at_kill

    server = start(processes, "serve-again", responses_command("serve", "--port", str(port)), env, tmp_path)
    http.wait_until_up(server)
    state = wait_for_job(http, job, server)  # the interrupted job, run again by the restarted server
    assert state["status"] == "done", state
    assert state["result"] == {"erased": CONTACTS, "unknown": [], "addresses": 0}
    again = http.ok("POST", "/v1/contacts/c1/erase", {"basis": "GDPR art. 17 batch"})  # a single retry: the same record
    assert again["contact_id"] == "c1" and again["basis"] == "GDPR art. 17 batch"
    status, answer = http.call("POST", "/v1/erasures", {"contact_ids": wanted, "basis": "GDPR art. 17 batch"})
    assert status == 202, answer
    assert wait_for_job(http, answer["job"], server)["status"] == "done"  # the whole request again: nothing left to do

    assert http.ok("GET", f"/v1/mailings/{MAILING}/summary") == summary
    assert len(http.ok("GET", "/v1/erasures?limit=1")["items"]) == 1
    assert erased_rows(db) == CONTACTS
    assert erased_events(db) == CONTACTS  # one record of destruction each, whatever the kill interrupted
    server.stop()
    stored = b"".join(p.read_bytes() for p in sorted(tmp_path.glob("r.db*")) if p.is_file()).lower()
    assert DOMAIN not in stored, "an erased address is still in the database's files"
    assert b"person 1" not in stored  # nor a name ("Person 1", "Person 10" …)
    assert NEIGHBOUR in stored  # a neighbour keeps everything
