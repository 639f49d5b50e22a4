"""What a provider's retry costs: the write path's read of a retried batch (issue 14, item 3).

``retry_batch_ms(database_url)`` opens the journal at ``database_url`` (any size, either store: the
bench calls it on the largest journal it builds, ``replay.db`` of ``--big`` signals), picks ``batch``
stored signals spread over the whole journal, one a recipient, and times the read a retry of those
signals makes before it answers "duplicate": ``JournalIndex.lean_read`` of their recipients and keys
(versions, facts, the digests, which all hit, then each hit checked against its stored signal).
The best of ``repeats`` runs, in milliseconds.

    python -m bench.retry sqlite:///path/to/replay.db [--batch 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from application.config import Settings
from application.journal_index import SIGNAL_TOPICS
from application.service import ResponsesApp


def stored_batch(app: ResponsesApp, batch: int) -> dict[uuid.UUID, set[str]]:
    """``batch`` stored signals of distinct recipients, spread evenly over the journal: {recipient: {key}}."""
    last = app.recorder.max_notification_id() or 0
    step = max(1, last // batch)
    picked: dict[uuid.UUID, set[str]] = {}
    position = 1
    while len(picked) < batch and position <= last:
        for n in app.recorder.select_notifications(start=position, limit=1, topics=SIGNAL_TOPICS[:1]):
            if n.originator_id not in picked:
                picked[n.originator_id] = {orjson.loads(n.state)["signal"]["key"]}
            position = n.id
        position += step
    return picked


def retry_batch_ms(database_url: str, batch: int = 100, repeats: int = 5) -> float:
    """Milliseconds the write path reads for a retried batch of ``batch`` stored signals (best of ``repeats``)."""
    app = ResponsesApp(Settings(database_url=database_url))
    try:
        scopes = stored_batch(app, batch)
        if len(scopes) < batch:
            raise ValueError(f"the journal at {database_url} holds signals of {len(scopes)} recipients, fewer than {batch}")
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            _, _, stored = app.journal_index.lean_read(scopes)
            best = min(best, time.perf_counter() - started)
            if sum(len(keys) for keys in stored.values()) != batch:
                raise AssertionError("a retried signal was not found stored: the measurement would not be a retry")
        return round(best * 1000, 2)
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench.retry", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("database_url")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"retry_batch_ms {retry_batch_ms(args.database_url, args.batch, args.repeats)}")


if __name__ == "__main__":
    main()


def bench_retry(work: Path, report: list[tuple[str, str, str, str]], results: dict[str, Any], replayed: bool) -> None:
    """``retry_batch_ms``: a retried batch of 100 at the largest journal the run built (the replay's), against
    a new batch's read of the same recipients' versions (``retry_baseline_ms``: what a batch costs anyway)."""
    path = work / "replay.db"
    if not replayed or not path.exists():
        report.append(("retried batch of 100", "skipped", "needs the replay's journal (--only …,replay,retry)", ""))
        return
    url = f"sqlite:///{path}"
    app = ResponsesApp(Settings(database_url=url))
    try:
        signals = app.recorder.max_notification_id() or 0
    finally:
        app.close()
    ms = retry_batch_ms(url)
    results["retry_batch_ms"] = ms
    results["retry_batch_journal_events"] = signals
    report.append(
        (
            f"a retried batch of 100 at a {signals:,}-event journal (SQLite)",
            f"{ms:,.1f} ms (the write path's read: versions, facts, digest hits verified)",
            "445 ms at 1,000,000 before (a scan of the journal)",
            f"{'ok' if ms < 100 else 'OVER'} (a primary-key search a hit; target: as cheap as a new batch)",
        )
    )
