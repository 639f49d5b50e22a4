"""`make bench`: CONTRACT §10's targets, measured against raw baselines in the same run.

    python -m bench [--quick] [--signals N] [--big N] [--http-recipients N] [--http-batches N] [--crash-recipients N]
                    [--hot-prior N] [--dispatch N] [--pages-recipients N] [--history-signals N] [--flood-recipients N]
                    [--erase-recipients N] [--erase-contacts N]
                    [--only ingest,pg,hot,dispatch,replay,retry,history,pages,flood,erasure,http,lag,crash] [--json PATH]

Writes var/bench.json (the machine, the sizes, every figure) beside the table it prints.

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
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.http_load import bench_crash, bench_http


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


def machine_facts() -> dict[str, Any]:
    import psycopg

    facts: dict[str, Any] = {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu": machine().split(" · ")[2],
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__} build)",
        "os": f"{platform.system()} {platform.release()}",
    }
    try:
        from bench.http_load import PG_ADMIN_URL

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
            facts["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    except psycopg.Error as exc:
        facts["postgresql"] = f"unreachable: {type(exc).__name__}"
    return facts


QUICK = {
    "signals": 5_000,
    "big": 100_000,
    "http_recipients": 5_000,
    "http_batches": 100,
    "crash_recipients": 1_000,
    "hot_prior": 10_000,
    "dispatch": 5_000,
    "pages_recipients": 20_000,
    "history_signals": 10_000,
    "flood_recipients": 1_000,
    "erase_recipients": 2_000,
    "erase_contacts": 1_000,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--signals", type=int, default=20_000, help="signals for the ingest and replay comparisons")
    parser.add_argument(
        "--big", type=int, default=1_000_000, help="signals of the replay and what-if journal (ratios, time, memory, scoped)"
    )
    parser.add_argument("--http-recipients", type=int, default=20_000, help="audience of the HTTP load's mailing (http, lag)")
    parser.add_argument("--http-batches", type=int, default=400, help="at most this many UniOne batches of 100 in the HTTP load")
    parser.add_argument("--crash-recipients", type=int, default=5_000, help="audience of each crash run (SQLite, PostgreSQL)")
    parser.add_argument("--hot-prior", type=int, default=40_000, help="signals already in the hot recipient's journal")
    parser.add_argument("--dispatch", type=int, default=20_000, help="recipients dispatched (SQLite, PostgreSQL)")
    parser.add_argument(
        "--pages-recipients", type=int, default=100_000, help="audience of the mailing the marketer's pages are timed on"
    )
    parser.add_argument("--history-signals", type=int, default=40_000, help="signals of the recipient whose history is paged")
    parser.add_argument(
        "--flood-recipients", type=int, default=5_000, help="audience of the journal 40 concurrent what-ifs replay"
    )
    parser.add_argument(
        "--quick", action="store_true", default=os.environ.get("QUICK") == "1", help="smaller sizes (QUICK=1): under 5 minutes"
    )
    parser.add_argument(
        "--erase-recipients", type=int, default=12_000, help="audience of the campaign contacts are erased from (SQLite)"
    )
    parser.add_argument(
        "--erase-contacts", type=int, default=10_000, help="contacts of the bulk erasure (10,000: erase_10k_seconds, measured)"
    )
    parser.add_argument("--only", default="ingest,pg,hot,dispatch,replay,retry,history,pages,flood,erasure,http,lag,crash")
    parser.add_argument("--json", default="var/bench.json", help="where the machine-readable results go")
    args = parser.parse_args(argv)
    shrunk: dict[str, tuple[int, int]] = {}
    if args.quick:
        for name, small in QUICK.items():
            if getattr(args, name) > small:
                shrunk[name] = (getattr(args, name), small)
                setattr(args, name, small)
        print("QUICK: " + ", ".join(f"{n.replace('_', '-')} {a:,} → {b:,}" for n, (a, b) in shrunk.items()))
    only = set(args.only.split(","))
    report: list[tuple[str, str, str, str]] = []
    results: dict[str, Any] = {
        "machine": machine_facts(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "sizes": {k: getattr(args, k) for k in QUICK},
    }
    print(f"machine: {machine()}")
    from bench.erasure import bench_erasure
    from bench.history import bench_history
    from bench.ingest import bench_dispatch, bench_hot_recipient, bench_pg_ingest, bench_sqlite_ingest
    from bench.pages import bench_pages
    from bench.replay import bench_replay_all
    from bench.retry import bench_retry
    from bench.whatif_flood import run as bench_whatif_flood

    with tempfile.TemporaryDirectory(prefix="responses-bench-") as tmp:
        work = Path(tmp)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("ingest", lambda: bench_sqlite_ingest(work, args.signals, report, results)),
            ("pg", lambda: bench_pg_ingest(args.signals, report, results)),
            ("hot", lambda: bench_hot_recipient(work, report, results, prior=args.hot_prior)),
            ("dispatch", lambda: bench_dispatch(work, args.dispatch, report, results)),
            ("replay", lambda: bench_replay_all(work, args.big, report, results)),
            ("retry", lambda: bench_retry(work, report, results, replayed="replay" in only)),
            ("history", lambda: bench_history(work, report, results, signals=args.history_signals)),
            ("pages", lambda: bench_pages(work, report, results, recipients=args.pages_recipients)),
            ("flood", lambda: bench_whatif_flood(work, report, results, recipients=args.flood_recipients)),
            (
                "erasure",
                lambda: bench_erasure(work, report, results, recipients=args.erase_recipients, contacts=args.erase_contacts),
            ),
        ]
        for name, step in steps:
            if name in only:
                print(f"{name} …", flush=True)
                step()
        if only & {"http", "lag"}:
            print(f"{','.join(sorted(only & {'http', 'lag'}))} …", flush=True)
            bench_http(
                work,
                report,
                recipients=args.http_recipients,
                batches=args.http_batches,
                want_http="http" in only,
                want_lag="lag" in only,
                results=results,
            )
        if "crash" in only:
            print("crash …", flush=True)
            bench_crash(work, report, recipients=args.crash_recipients)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["report"] = [dict(zip(("what", "measured", "baseline", "verdict"), row)) for row in report]
    widths = [max(len(r[i]) for r in report) for i in range(4)] if report else [0] * 4
    print()
    for row in report:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
