"""kill -9 under load, restart (CONTRACT §10, the crash target, small): nothing acknowledged is lost, counters hold each signal once.

SQLite: ``responses serve`` (HTTP and its follower in one process) is killed.
PostgreSQL: ``responses project`` is killed alone and restarted while the load
goes on, then gunicorn (master and workers) and the projector together.
A few hundred UniOne events in batches of 20 from 8 senders; after the restart
every batch is delivered again, as a provider retries (bench/http_load.py).
Correctness only: nothing here is timed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.http_load import Stack, crash_run


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_kill_9_under_load_loses_nothing_acknowledged_and_counts_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    stack = Stack(kind, request.getfixturevalue(f"{kind}_url"), tmp_path, workers=2)
    notes: list[str] = []
    began = time.monotonic()

    def say(text: str) -> None:
        notes.append(f"{time.monotonic() - began:5.1f} s  {text}")

    try:
        stack.start()
        result = crash_run(
            stack,
            recipients=300,
            batch_size=20,
            senders=8,
            kill_at=0.5,
            kill_projector_at=0.25 if kind == "postgres" else None,
            load_seconds=60,
            say=say,
        )
    except Exception:
        print("\n".join(notes), stack.logs(), sep="\n")
        raise
    finally:
        stack.stop()
    context = "\n".join([*notes, *(f"gunicorn boot race, restarted: {name}" for name in stack.boot_races), result.describe()])
    if not result.ok:
        print(stack.logs())
    assert 0 < result.acknowledged < result.batches, context  # the kill came mid-stream
    assert result.lost == 0, context  # the views after the restart hold every acknowledged open and click
    assert result.resent_accepted == 0, context  # every acknowledged signal was in the journal: sent again, all duplicates
    assert result.bad_answers == [], context
    assert result.over_counted == 0, context  # nothing applied twice by the projector across its kills
    assert (result.final_missing, result.final_extra) == (0, 0), (
        context
    )  # once every batch is delivered: each signal exactly once
    assert result.summary_opens[0] == result.summary_opens[1], context
    assert result.summary_clicks[0] == result.summary_clicks[1], context
