"""Erasure (CONTRACT §12): one contact erased on a campaign's journal, and many one after another (SQLite)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.http_load import progress
from bench.ingest import T0, campaign, ingest
from bench.journal import provider_events

Report = list[tuple[str, str, str, str]]


def bench_erasure(work: Path, report: Report, results: dict[str, Any], recipients: int = 10_000, many: int = 1_000) -> None:
    app = campaign(f"sqlite:///{work / 'erasure.db'}", recipients)
    ingest(app, provider_events("bench", recipients, recipients * 4, T0))
    app.wait_for_views()
    progress(f"  {recipients:,} recipients, {recipients * 4:,} signals; erasing …")
    singles = []
    for i in range(5):
        started = time.perf_counter()
        app.erasures.erase(f"c{i}", "bench", None)
        singles.append(time.perf_counter() - started)
    one = statistics.median(singles)
    started = time.perf_counter()
    for i in range(5, 5 + many):
        app.erasures.erase(f"c{i}", "bench", None)
        if (i - 4) % 200 == 0:
            progress(f"  {i - 4:,}/{many:,} erased")
    batch = time.perf_counter() - started
    app.close()
    results["erase_one_seconds"] = round(one, 3)
    results["erase_many_seconds"] = round(batch, 1)
    results["erase_many_contacts"] = many
    report.append(
        (
            "erase one contact (SQLite)",
            f"{one * 1000:,.0f} ms",
            f"{recipients:,} recipients",
            "ok (target < 1 s)" if one < 1 else "OVER (target < 1 s)",
        )
    )
    per_10k = batch / many * 10_000
    report.append(
        (
            f"erase {many:,} contacts one after another (SQLite)",
            f"{batch:.1f} s",
            f"{per_10k:.0f} s for 10,000 at this rate",
            "ok (target 10,000 < 60 s)" if per_10k < 60 else "OVER (target 10,000 < 60 s)",
        )
    )
