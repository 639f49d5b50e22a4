"""`make bench`: SPEC §10's targets, measured against raw baselines in the same run.

    python -m bench [--signals N] [--big N] [--http-recipients N] [--http-batches N] [--crash-recipients N]
                    [--only ingest,replay,memory,http,lag,crash]

http and lag share one run (gunicorn -w 4 + responses project on a fresh
PostgreSQL database, 8 concurrent UniOne senders); crash kills the service
with SIGKILL under load on SQLite and on PostgreSQL (bench/http_load.py).

Numbers are printed with the machine they ran on; comparisons are ratios
measured in one run, never absolute timings in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import orjson

from application.config import Settings
from application.service import ResponsesApp
from bench.http_load import bench_crash, bench_http
from bench.journal import build_journal, provider_events
from domain.signals import ParsedBatch

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()} · {os.cpu_count()} cores · {cpu} · Python {platform.python_version()} · {platform.system()} {platform.release()}"


def fresh_app(directory: Path, name: str) -> ResponsesApp:
    return ResponsesApp(Settings(database_url=f"sqlite:///{directory / name}"))


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def setup_campaign(app: ResponsesApp, recipients: int) -> None:
    app.create_mailing({"id": "bench", "name": "Bench", "category": "bulk", "provider": "unione"})
    app.add_audience("bench", [{"contact_id": f"c{i}", "email": f"user{i}@example.com"} for i in range(recipients)])
    from projections.follower import ViewFollower

    app.follower = ViewFollower(app)
    while app.dispatch("bench", now=T0)["remaining"]:
        pass


def bench_ingest(work: Path, signals: int, report: list[tuple[str, str, str, str]]) -> None:
    recipients = max(1, signals // 4)
    events = provider_events("bench", recipients, signals, T0)

    app = fresh_app(work, "ingest.db")
    setup_campaign(app, recipients)
    start_pos = app.journal_position()
    batched = timed(lambda: [app.record_batch(ParsedBatch(events=events[i : i + 100])) for i in range(0, len(events), 100)])
    rows = [
        (r["originator_id"], r["originator_version"], r["topic"], r["state"])
        for r in sqlite3.connect(work / "ingest.db").execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events WHERE rowid > ?", (start_pos,)
        ).fetchall()
        for r in [dict(zip(("originator_id", "originator_version", "topic", "state"), r))]
    ]
    app.close()

    raw_db = sqlite3.connect(work / "raw.db", isolation_level=None)
    raw_db.execute("PRAGMA journal_mode=WAL")
    raw_db.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
        "PRIMARY KEY (originator_id, originator_version))"
    )

    def raw_insert() -> None:
        for i in range(0, len(rows), 100):
            raw_db.execute("BEGIN")
            raw_db.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", rows[i : i + 100])
            raw_db.execute("COMMIT")

    raw = timed(raw_insert)

    single_app = fresh_app(work, "single.db")
    setup_campaign(single_app, recipients)
    sample = events[: min(len(events), 2000)]
    single = timed(lambda: [single_app.record_batch(ParsedBatch(events=[e])) for e in sample]) * len(events) / len(sample)
    single_app.close()

    rate = len(events) / batched
    report.append(("ingest, batches of 100 (SQLite)", f"{rate:,.0f} signals/s", f"{len(rows) / raw:,.0f} rows/s raw executemany", f"{raw / batched:.2f} × raw (target ≥ 0.5)"))
    report.append(("ingest vs one save per signal", f"{rate:,.0f} signals/s", f"{len(events) / single:,.0f} signals/s one-by-one", f"{single / batched:.1f} × (target ≥ 10)"))


def bench_replay(work: Path, signals: int, report: list[tuple[str, str, str, str]]) -> None:
    path = work / "replay.db"
    build_journal(path, recipients=max(1, signals // 5), signals=signals, start=T0)
    app = ResponsesApp(Settings(database_url=f"sqlite:///{path}"))

    def raw() -> int:
        n = 0
        con = sqlite3.connect(path)
        for (state,) in con.execute("SELECT state FROM stored_events ORDER BY rowid"):
            orjson.loads(state)
            n += 1
        return n

    raw_time = timed(raw)
    fold_time = timed(lambda: app.what_if({"statistics_period_days": 7}))
    events = app.journal_position()
    app.close()
    report.append(("what-if fold (two rulesets at once)", f"{events / fold_time:,.0f} events/s", f"{events / raw_time:,.0f} rows/s raw SELECT+orjson", f"{raw_time / fold_time:.2f} × raw (target ≥ 0.4)"))


def bench_memory(work: Path, big: int, report: list[tuple[str, str, str, str]]) -> None:
    path = work / "big.db"
    print(f"  building a journal of {big:,} signals …", flush=True)
    build_journal(path, recipients=max(1, big // 10), signals=big, start=T0, progress=True)
    code = (
        "import resource, sys\n"
        "from application.config import Settings\n"
        "from application.service import ResponsesApp\n"
        f"app = ResponsesApp(Settings(database_url='sqlite:///{path}'))\n"
        "app.what_if({'responses': {'soft_bounce': {'final': True}}})\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    elapsed = time.perf_counter() - started
    peak_mib = int(out.strip().splitlines()[-1]) / 1024
    report.append((f"what-if over {big:,} signals", f"peak RSS {peak_mib:,.0f} MiB", f"{elapsed:,.1f} s", f"{'ok' if peak_mib < 300 else 'OVER'} (target < 300 MiB)"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--signals", type=int, default=20_000, help="signals for the ingest and replay comparisons")
    parser.add_argument("--big", type=int, default=1_000_000, help="signals for the what-if memory run")
    parser.add_argument("--http-recipients", type=int, default=20_000, help="audience of the HTTP load's mailing (http, lag)")
    parser.add_argument("--http-batches", type=int, default=400, help="at most this many UniOne batches of 100 in the HTTP load")
    parser.add_argument("--crash-recipients", type=int, default=5_000, help="audience of each crash run (SQLite, PostgreSQL)")
    parser.add_argument("--only", default="ingest,replay,memory,http,lag,crash")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    report: list[tuple[str, str, str, str]] = []
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="responses-bench-") as tmp:
        work = Path(tmp)
        if "ingest" in only:
            print("ingest …", flush=True)
            bench_ingest(work, args.signals, report)
        if "replay" in only:
            print("replay …", flush=True)
            bench_replay(work, args.signals * 5, report)
        if "memory" in only:
            print("memory …", flush=True)
            bench_memory(work, args.big, report)
        if only & {"http", "lag"}:
            print(f"{','.join(sorted(only & {'http', 'lag'}))} …", flush=True)
            bench_http(work, report, recipients=args.http_recipients, batches=args.http_batches, want_http="http" in only, want_lag="lag" in only)
        if "crash" in only:
            print("crash …", flush=True)
            bench_crash(work, report, recipients=args.crash_recipients)
    widths = [max(len(r[i]) for r in report) for i in range(4)]
    print()
    for row in report:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))


if __name__ == "__main__":
    main()
