"""The marketer's pages with a big mailing: each page's server time (Flask's test client, no socket).

    python -m bench.pages [--recipients 100000]

A journal of ``recipients`` recipients (about four signals each: sent, delivered, opens and clicks)
is written straight into a SQLite event store (``bench.journal.build_journal``), projected by the
follower, then every page is asked a few times by a signed-in session and the median kept. Target:
under 300 ms each (issue "the marketer's pages"); /what-if is a replay of everything and shows
a job's progress instead, so it is not measured here.

The opens-and-clicks tab (``page_engagement_ms``, and over 720 hours ``page_engagement_720h_ms``) sums the
per-minute engagement buckets of its range (CONTRACT §5): under ``ENGAGEMENT_TARGET_MS`` at 100,000
recipients, and not growing with them.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from application.config import Settings
from application.service import ResponsesApp
from bench.journal import build_journal
from interface.app import create_app
from projections.follower import ViewFollower

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TOKEN = "bench-pages-token"
TARGET_MS = 300.0
ENGAGEMENT_TARGET_MS = 100.0  # issue 15: the opens-and-clicks tab, read from the engagement buckets
ENGAGEMENT_PAGE = "/mailings/bench?tab=engagement"
ENGAGEMENT_720H_PAGE = "/mailings/bench?tab=engagement&hours=720&tz=Europe/Moscow"
RUNS = 5
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
Report = list[tuple[str, str, str, str]]


def pages(contact: str, cursor: str) -> list[str]:
    return [
        "/mailings",
        "/mailings?q=bench&category=bulk",
        "/mailings/bench",
        "/mailings/bench?response=opened",
        f"/mailings/bench?cursor={cursor}",
        "/mailings/bench?tab=results",
        ENGAGEMENT_PAGE,
        ENGAGEMENT_720H_PAGE,
        "/mailings/bench?tab=links",
        f"/mailings/bench/recipients/{contact}",
        "/contacts",
        f"/contacts?q={contact}@example.com",
        f"/contacts/{contact}",
        "/rules",
        "/inbox",
        "/inbox?tab=quarantine",
    ]


def median_ms(client: Any, path: str, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        response.get_data()
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
    return statistics.median(times)


def bench_pages(work: Path, report: Report, results: dict[str, Any], recipients: int = 100_000) -> None:
    """Fill ``results["pages_ms"]`` (path → median ms) and a report row a page."""
    path = work / "pages.db"
    print(f"  building a journal of {recipients:,} recipients …", flush=True)
    build_journal(path, recipients=recipients, signals=recipients * 4, start=T0, progress=True)
    settings = Settings(database_url=f"sqlite:///{path}", api_tokens=(TOKEN,), secret_key="bench-pages")
    app = ResponsesApp(settings)
    follower = ViewFollower(app)
    app.follower = follower
    started = time.perf_counter()
    follower.catch_up()
    print(f"  views projected in {time.perf_counter() - started:,.1f} s", flush=True)
    contact = f"c{recipients // 2}"
    app.change_contact(contact, {"email": f"{contact}@example.com"})  # build_journal writes no contact events
    follower.catch_up()
    client = create_app(app, settings).test_client()
    form = client.get("/login").get_data(as_text=True)
    match = CSRF.search(form)
    assert match is not None
    client.post("/login", data={"token": TOKEN, "csrf_token": match.group(1)})
    audience = client.get("/v1/mailings/bench/audience?limit=1000", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
    timings: dict[str, float] = {}
    for page in pages(contact, audience["next"]):
        client.get(page)  # warm: templates compiled, caches filled
        timings[page] = median_ms(client, page)
        verdict = "ok" if timings[page] < TARGET_MS else "OVER"
        report.append(
            (
                f"page {page}",
                f"{timings[page]:,.0f} ms",
                f"median of {RUNS}, {recipients:,} recipients",
                f"{verdict} (target < {TARGET_MS:.0f} ms)",
            )
        )
    started = time.perf_counter()
    exported = client.get("/mailings/bench/audience.csv").get_data()
    csv_ms = (time.perf_counter() - started) * 1000
    lines = exported.count(b"\n") - 1
    report.append(("audience CSV export (whole audience)", f"{csv_ms:,.0f} ms", f"{lines:,} rows streamed", "info"))
    results["pages_ms"] = {page: round(ms, 1) for page, ms in timings.items()}
    results["page_engagement_ms"] = round(timings[ENGAGEMENT_PAGE], 1)
    results["page_engagement_720h_ms"] = round(timings[ENGAGEMENT_720H_PAGE], 1)
    verdict = "ok" if timings[ENGAGEMENT_PAGE] < ENGAGEMENT_TARGET_MS else "OVER"
    report.append(
        (
            "page_engagement_ms (opens and clicks, from the minute buckets)",
            f"{timings[ENGAGEMENT_PAGE]:,.0f} ms",
            f"{recipients:,} recipients; 720 h: {timings[ENGAGEMENT_720H_PAGE]:,.0f} ms",
            f"{verdict} (target < {ENGAGEMENT_TARGET_MS:.0f} ms)",
        )
    )
    results["audience_csv_ms"] = round(csv_ms, 1)
    app.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.pages", description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    args = parser.parse_args(argv)
    report: Report = []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="responses-pages-") as tmp:
        bench_pages(Path(tmp), report, results, args.recipients)
    widths = [max(len(r[i]) for r in report) for i in range(4)]
    for row in report:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
