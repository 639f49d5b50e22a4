"""Replay and what-if benchmarks (issue 8, item 6): the lean replay against a raw read of the same rows.

    python -m bench.replay [--signals N]        # prints the table and the results as JSON

``bench_replay_all`` is what ``python -m bench`` calls. The journal is written straight into a
SQLite file (``bench.journal.build_journal``); every ratio is measured in this one run:

* raw: one process, one ``SELECT`` of the stored rows the replay reads + orjson decode of each;
* replay: the full what-if (soft bounces made final, two folds and the diff) in one process
  (``replay_ratio_raw`` = raw time ÷ replay time) and in two (``replay_ratio_raw_parallel``);
* what-if: ``REPLAY_WORKERS`` (the CPU count) processes, in a child process whose peak RSS,
  summed over it and its workers, is sampled from /proc; scoped: the same change with the views
  current, folding only the contacts whose journals hold a soft bounce.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from application.config import Settings
from application.service import ResponsesApp
from bench.journal import build_journal
from projections.lean_replay import REPLAY_TOPICS

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SOFT_FINAL = {"responses": {"soft_bounce": {"final": True}}}
Report = list[tuple[str, str, str, str]]


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def raw_read(path: Path) -> tuple[float, int]:
    """Seconds to SELECT the replay's rows and orjson-decode each, in one process; and how many rows."""
    marks = ",".join("?" * len(REPLAY_TOPICS))
    start = time.perf_counter()
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    n = 0
    loads = orjson.loads
    for _rowid, _oid, _topic, state in con.execute(
        f"SELECT rowid, originator_id, topic, state FROM stored_events WHERE topic IN ({marks}) ORDER BY rowid", REPLAY_TOPICS
    ):
        loads(state)
        n += 1
    con.close()
    return time.perf_counter() - start, n


EVERYONE = {"statistics_period_days": 7}  # a change every signal is measured against: the whole journal folded


def what_if_seconds(path: Path, workers: int, scoped: bool, rules: dict[str, Any] = SOFT_FINAL) -> float:
    """One what-if over the journal at ``path``, timed in this process (``scoped=False``: streamed in
    journal order; else read contact by contact from the views, only the touched ones when it can)."""
    from projections.replay import what_if

    app = ResponsesApp(Settings(database_url=f"sqlite:///{path}", replay_workers=workers))
    try:
        current = app.active_rules()
        candidate = current.patched(rules, version="what-if")
        start = time.perf_counter()
        what_if(app, current, candidate, sample=20, workers=workers, scoped=scoped)
        return time.perf_counter() - start
    finally:
        app.close()


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants (KiB), from /proc."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def measured_child(path: Path, workers: int, scoped: bool) -> tuple[float, float]:
    """(seconds, peak RSS MiB summed over the processes) of a what-if touching everyone, run (worker
    pool started and all) by a child process."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.replay", "--child", str(path), str(workers), "1" if scoped else "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kib(child.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise RuntimeError(f"the what-if child failed ({child.returncode})")
    return float(json.loads(out.strip().splitlines()[-1])["seconds"]), peak[0] / 1024


def catch_up_views(path: Path) -> None:
    """Project the journal into the views (the scope index with them), as the projection process would."""
    from projections.follower import ViewFollower

    app = ResponsesApp(Settings(database_url=f"sqlite:///{path}"))
    try:
        ViewFollower(app).catch_up()
    finally:
        app.close()


def bench_replay_all(work: Path, signals: int, report: Report, results: dict[str, Any]) -> None:
    recipients = max(1, signals // 4)
    path = work / "replay.db"
    for stale in work.glob("replay.db*"):
        stale.unlink()
    ResponsesApp(Settings(database_url=f"sqlite:///{path}")).close()  # the schema
    build_journal(path, recipients, signals, T0, progress=True)
    workers = os.cpu_count() or 1

    raw, rows = min(raw_read(path) for _ in range(3))
    one = min(what_if_seconds(path, 1, scoped=False) for _ in range(2))
    two = min(what_if_seconds(path, 2, scoped=False) for _ in range(2))
    ratio, ratio_two = raw / one, raw / two
    results.update(
        replay_signals_per_s=round(signals / one),
        replay_ratio_raw=round(ratio, 3),
        replay_ratio_raw_parallel=round(ratio_two, 3),
        replay_rows=rows,
    )
    report.append(
        (
            f"replay {signals:,} signals, 1 process",
            f"{ratio:.3f} × raw ({signals / one:,.0f} signals/s)",
            "≥ 0.15 × raw",
            verdict(ratio >= 0.15),
        )
    )
    report.append(
        (
            "replay, 2 processes",
            f"{ratio_two:.3f} × raw ({ratio_two / ratio:.2f} × one)",
            "≥ 1.7 × one process",
            verdict(ratio_two >= 1.7 * ratio),
        )
    )

    scale = 1_000_000 / signals  # the targets are for 1M signals: said with the measured size
    streamed, streamed_peak = measured_child(path, workers, scoped=False)
    catch_up_views(path)  # the projection's views (and scope index) current, as the projection process keeps them
    seconds, peak = measured_child(path, workers, scoped=True)
    results.update(
        whatif_signals=signals,
        whatif_seconds=round(seconds, 3),
        whatif_peak_rss_mib=round(peak, 1),
        whatif_workers=workers,
        whatif_streamed_seconds=round(streamed, 3),
        whatif_streamed_peak_rss_mib=round(streamed_peak, 1),
    )
    report.append(
        (
            f"what-if {signals:,} signals, {workers} processes (by contact)",
            f"{seconds:.2f} s",
            f"< {15 / scale:.2f} s (15 s a 1M)",
            verdict(seconds * scale < 15),
        )
    )
    report.append(("what-if peak RSS, processes summed", f"{peak:.0f} MiB", "< 300 MiB (1M)", verdict(peak < 300)))
    report.append(
        (
            "what-if streamed in journal order",
            f"{streamed:.2f} s, {streamed_peak:.0f} MiB",
            "(views behind: the fallback)",
            "info",
        )
    )

    scoped = min(what_if_seconds(path, workers, scoped=True) for _ in range(2))
    results.update(whatif_scoped_seconds=round(scoped, 3))
    report.append(
        ("what-if scoped (soft bounces final)", f"{scoped:.2f} s", f"< {3 / scale:.2f} s (3 s a 1M)", verdict(scoped * scale < 3))
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        path, workers, scoped = Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
        print(json.dumps({"seconds": what_if_seconds(path, workers, scoped, EVERYONE)}))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=100_000, help="signals in the journal (default: 100000)")
    args = parser.parse_args()
    report: Report = []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bench_replay_all(Path(tmp), args.signals, report, results)
    width = max(len(r[0]) for r in report)
    for what, measured, target, ok in report:
        print(f"{what:<{width}}  {measured:<34} {target:<22} {ok}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
