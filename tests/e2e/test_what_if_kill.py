"""A kill -9 of the process running a replay leaves no replay worker behind (issue 14, item 1).

``responses what-if`` with ``REPLAY_WORKERS=2`` over a journal the views have not caught up with (so
the journal is streamed, partitioned over two worker processes); the workers' fold blocks (a
``sitecustomize`` of the test, active only in the spawned workers) so the kill finds them at work.
Every child process recorded before the kill (the two workers, multiprocessing's resource tracker)
must be gone within a bounded time. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from application.service import ResponsesApp
from tests.helpers.e2e import BIN, Process, service_env
from tests.integration.test_replay_lean import campaign

SITECUSTOMIZE = """
import os, sys
if os.environ.get("RESPONSES_TEST_BLOCK_FOLDS") and "--multiprocessing-fork" in sys.argv:
    import pathlib, time
    import projections.lean_replay as lean

    def fold_partition(task, rows=None):  # a replay worker at work, for as long as the test needs
        pathlib.Path(os.environ["RESPONSES_TEST_BLOCK_FOLDS"], f"folding-{os.getpid()}").touch()
        time.sleep(600)

    lean.fold_partition = fold_partition
"""
WORKERS_START_SECONDS = 90.0  # two spawned interpreters importing the fold, on a loaded machine
GONE_SECONDS = 10.0


def children_of(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid``: process id → its start time (to tell a reused id apart)."""
    parents: dict[int, int] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        started[int(entry.name)] = fields[19]
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, of in parents.items():
            if of == parent and child not in found:
                found[child] = started[child]
                frontier.append(child)
    return found


def alive(pid: int, started: str) -> bool:
    """Running (not a zombie waiting for PID 1 to reap it) and the same process as recorded."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and fields[19] == started


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_a_kill_of_the_replaying_process_leaves_no_worker_behind(app: ResponsesApp, tmp_path: Path) -> None:
    campaign(app)
    app.follower = None
    app.change_contact("c1", {"name": "behind"})  # the views are behind: the journal is streamed over the workers
    assert app.views_position() < app.journal_position()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    marks = tmp_path / "marks"
    marks.mkdir()
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"responses": {"soft_bounce": {"final": True}}}))
    env = service_env(
        app.settings.database_url,
        REPLAY_WORKERS="2",
        RESPONSES_TEST_BLOCK_FOLDS=str(marks),
        PYTHONPATH=os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    replaying = Process("what-if", [str(BIN / "responses"), "what-if", str(rules)], env, tmp_path)
    recorded: dict[int, str] = {}
    try:
        deadline = time.monotonic() + WORKERS_START_SECONDS
        while len(list(marks.iterdir())) < 2:
            assert replaying.proc.poll() is None, replaying.output()
            assert time.monotonic() < deadline, f"the two replay workers did not start:\n{replaying.output()}"
            time.sleep(0.1)
        recorded = children_of(replaying.proc.pid)
        folding = {int(mark.name.split("-")[1]) for mark in marks.iterdir()}
        assert folding <= set(recorded), "the folding workers are children of the replaying process"
        os.kill(replaying.proc.pid, signal.SIGKILL)
        replaying.proc.wait(timeout=10)
        deadline = time.monotonic() + GONE_SECONDS
        while (left := [pid for pid, started in recorded.items() if alive(pid, started)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == [], f"still running after the kill: {left} of {sorted(recorded)}"
    finally:
        for pid, started in recorded.items():  # what this test started, if it failed
            if alive(pid, started):
                os.kill(pid, signal.SIGKILL)
        if replaying.proc.poll() is None:
            replaying.proc.kill()
        replaying.proc.wait(timeout=10)
        replaying._log.close()
