"""A page of a recipient's audit history (issue 14, item 2): a page for now folds from the views' nearest
fold checkpoint, against a fold of the recipient's whole journal (``as_of``: what every page cost before).

    python -m bench.history [--signals N] [--no-postgres]     # prints the table and the results as JSON

``bench_history(work, report, results, signals=40_000, postgres=True)`` is what ``python -m bench`` calls.
For a recipient with ``signals`` signals, on SQLite and (``postgres``) PostgreSQL (keys ``…_postgres``):

* ``history_page_ms``: the median page of 1,000 when paging through the history from the first page;
* ``history_pages_ms``: that (``paging``), the ``first`` page, and the ``worst`` cursor (a page in the middle
  starting just before a checkpoint: a checkpoint's span folded, then the page), each a median of five reads;
* ``history_whole_fold_ms``: one ``as_of`` page of the same recipient, which folds its whole journal.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from application.queries import encode_cursor
from application.service import ResponsesApp
from bench.http_load import postgres_database, progress
from bench.ingest import campaign
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key
from projections.projector import CHECKPOINT_SIGNALS

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PAGE = 1000
READS = 5
TARGET_MS = 100.0
Report = list[tuple[str, str, str, str]]


def opens(first: int, n: int) -> list[ProviderEvent]:
    """A bot re-opening one mail: recipient c0's opens ``first`` … ``first + n - 1``."""
    return [
        ProviderEvent(
            Signal(
                key=dedup_key("bench-history", "c0", i),
                source="unione",
                fields={"status": "delivered" if i == 0 else "opened"},
                received_at=T0 + timedelta(hours=1, seconds=i),
                occurred_at=T0 + timedelta(hours=1, seconds=i),
                raw={"i": i},
            ),
            Correlation("bench", "c0"),
        )
        for i in range(first, first + n)
    ]


def long_recipient(url: str, signals: int) -> ResponsesApp:
    """Mailing "bench" whose recipient c0 has ``signals`` provider signals, the views caught up."""
    app = campaign(url, 2)
    for i in range(0, signals, 1000):
        app.record_batch(ParsedBatch(events=opens(i, min(1000, signals - i))))
    app.wait_for_views()
    return app


def median_ms(read: Callable[[], Any], reads: int = READS) -> float:
    times = []
    for _ in range(reads):
        start = time.perf_counter()
        read()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def history_page_ms(app: ResponsesApp, signals: int) -> dict[str, float]:
    """Milliseconds for pages of 1,000 of c0's history for now (each the median of ``READS``): ``paging``, the
    median page when paging through from the first with each ``next``; ``first``; ``worst``, a page in the
    middle starting just before a checkpoint (the most a page folds: a checkpoint's span, then the page)."""
    last_version = signals + 2  # joined (1), the dispatch decision (2), then the provider signals
    worst = (last_version // 2 // CHECKPOINT_SIGNALS) * CHECKPOINT_SIGNALS + CHECKPOINT_SIGNALS - 1
    paging, cursor = [], None
    while True:
        page = app.history("bench", "c0", limit=PAGE, cursor=cursor)
        paging.append(median_ms(lambda cursor=cursor: app.history("bench", "c0", limit=PAGE, cursor=cursor), reads=1))
        cursor = page["next"]
        if cursor is None:
            break
    assert len(paging) == -(-(last_version - 1) // PAGE), len(paging)
    first = median_ms(lambda: app.history("bench", "c0", limit=PAGE))
    assert len(app.history("bench", "c0", limit=PAGE, cursor=encode_cursor(worst))["signals"]) == PAGE
    slowest = median_ms(lambda: app.history("bench", "c0", limit=PAGE, cursor=encode_cursor(worst)))
    return {"paging": statistics.median(paging), "first": first, "worst": slowest}


def whole_fold_ms(app: ResponsesApp) -> float:
    """One page that folds the whole journal (``as_of``): what every page cost before checkpoints."""
    as_of = T0 + timedelta(days=3650)
    return median_ms(lambda: app.history("bench", "c0", limit=PAGE, as_of=as_of), reads=1)


def measure(url: str, signals: int) -> tuple[dict[str, float], float]:
    app = long_recipient(url, signals)
    try:
        return history_page_ms(app, signals), whole_fold_ms(app)
    finally:
        app.close()


def bench_history(work: Path, report: Report, results: dict[str, Any], signals: int = 40_000, postgres: bool = True) -> None:
    """``history_page_ms`` (SQLite) and ``history_page_ms_postgres``: the slowest page of 1,000 for now from a
    recipient with ``signals`` signals; ``history_whole_fold_ms`` (…``_postgres``): a whole-journal fold."""
    stores = [("SQLite", "")] + ([("PostgreSQL", "_postgres")] if postgres else [])
    for label, suffix in stores:
        progress(f"  {label}: {signals:,} signals for one recipient …")
        if suffix:
            with postgres_database() as url:
                pages, whole = measure(url, signals)
        else:
            pages, whole = measure(f"sqlite:///{work / 'history.db'}", signals)
        results[f"history_page_ms{suffix}"] = round(pages["paging"], 1)
        results[f"history_pages_ms{suffix}"] = {k: round(v, 1) for k, v in pages.items()}
        results[f"history_whole_fold_ms{suffix}"] = round(whole, 1)
        report.append(
            (
                f"history page of {PAGE:,} of a {signals:,}-signal recipient ({label})",
                f"{pages['paging']:,.1f} ms paging (first {pages['first']:,.1f}, worst cursor {pages['worst']:,.1f})",
                f"{whole:,.1f} ms folding the whole journal (as_of)",
                f"{'ok' if pages['worst'] < TARGET_MS else 'OVER'} (target < {TARGET_MS:.0f} ms)",
            )
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.history", description=__doc__)
    parser.add_argument("--signals", type=int, default=40_000)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    report: Report = []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="responses-bench-history-") as tmp:
        bench_history(Path(tmp), report, results, signals=args.signals, postgres=not args.no_postgres)
    for row in report:
        print("  ".join(row))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
