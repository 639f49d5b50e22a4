"""Ingest through the application against raw inserts of the same stored rows (SQLite and PostgreSQL),
against one signal per transaction, a hot recipient's batch, and dispatch; all in one run, interleaved."""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from application.config import Settings
from application.journal_index import SIGNAL_TOPICS, key_digest
from application.service import ResponsesApp
from bench.http_load import postgres_database, progress
from bench.journal import provider_events
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key
from projections.follower import ViewFollower

T0 = datetime(2026, 3, 1, tzinfo=UTC)
BATCH = 100
Report = list[tuple[str, str, str, str]]


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def campaign(url: str, recipients: int) -> ResponsesApp:
    app = ResponsesApp(Settings(database_url=url))
    app.follower = ViewFollower(app)
    app.create_mailing({"id": "bench", "name": "Bench", "category": "bulk", "provider": "unione"})
    app.add_audience("bench", [{"contact_id": f"c{i}", "email": f"user{i}@example.com"} for i in range(recipients)])
    while app.dispatch("bench", now=T0)["remaining"]:
        pass
    return app


def ingest(app: ResponsesApp, events: list[ProviderEvent], size: int = BATCH) -> float:
    return timed(lambda: [app.record_batch(ParsedBatch(events=events[i : i + size])) for i in range(0, len(events), size)])


def stored_rows(app: ResponsesApp, after: int) -> list[tuple[str, int, str, bytes]]:
    """The rows the ingest stored (after journal position ``after``), as the raw baselines insert them."""
    rows = []
    position = after
    while True:
        page = app.recorder.select_notifications(start=position + 1, limit=5000)
        if not page:
            return rows
        rows.extend((n.originator_id.hex, n.originator_version, n.topic, bytes(n.state)) for n in page)
        position = page[-1].id


# ---- SQLite -------------------------------------------------------------------------------------


def dedup_rows(rows: list[tuple[str, int, str, bytes]]) -> list[list[tuple[int, int]]]:
    """The dedup-index rows (digest, version) the stored signals among ``rows`` carry, per batch of ``BATCH`` rows."""
    batches = []
    for i in range(0, len(rows), BATCH):
        batches.append(
            [
                (key_digest(uuid.UUID(oid), orjson.loads(state)["signal"]["key"]), version)
                for oid, version, topic, state in rows[i : i + BATCH]
                if topic in SIGNAL_TOPICS
            ]
        )
    return batches


def sqlite_raw(path: Path, rows: list[tuple[str, int, str, bytes]], with_dedup: bool = False) -> float:
    """``executemany`` into a table like the library's (same journal mode and synchronous), batches of 100;
    ``with_dedup``: and the same batches' dedup-index rows into a digest table like the service's, same transaction."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
        "PRIMARY KEY (originator_id, originator_version))"
    )
    db.execute("CREATE TABLE signal_digests (digest INTEGER PRIMARY KEY, originator_version INTEGER NOT NULL)")
    digests = dedup_rows(rows) if with_dedup else [[] for _ in range(0, len(rows), BATCH)]

    def insert() -> None:
        for n, i in enumerate(range(0, len(rows), BATCH)):
            db.execute("BEGIN")
            db.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", rows[i : i + BATCH])
            if digests[n]:
                db.executemany("INSERT INTO signal_digests VALUES (?,?) ON CONFLICT DO NOTHING", digests[n])
            db.execute("COMMIT")

    elapsed = timed(insert)
    db.close()
    return elapsed


def bench_sqlite_ingest(work: Path, signals: int, report: Report, results: dict[str, Any], rounds: int = 5) -> None:
    recipients = max(1, signals // 4)
    events = provider_events("bench", recipients, signals, T0)
    ours, unsealed, raw, raw_dedup = [], [], [], []
    rows: list[tuple[str, int, str, bytes]] = []
    for r in range(rounds):  # interleaved: ours, ours unsealed, raw, raw with dedup rows, ours, …
        app = campaign(f"sqlite:///{work / f'ingest{r}.db'}", recipients)
        start = app.journal_position()
        ours.append(ingest(app, events))
        rows = stored_rows(app, start)
        app.close()
        plain = campaign(f"sqlite:///{work / f'ingest-unsealed{r}.db'}", recipients)
        plain.mapper.transcoder.privacy = None  # type: ignore[attr-defined]  # the bench-only path: no sealing (CONTRACT §12)
        unsealed.append(ingest(plain, events))
        plain.close()
        raw.append(sqlite_raw(work / f"raw{r}.db", rows))
        raw_dedup.append(sqlite_raw(work / f"raw-dedup{r}.db", rows, with_dedup=True))
        progress(
            f"  round {r + 1}: ours {ours[-1]:.2f} s, unsealed {unsealed[-1]:.2f} s, raw {raw[-1]:.2f} s, "
            f"raw with dedup rows {raw_dedup[-1]:.2f} s"
        )
    naive_app = campaign(f"sqlite:///{work / 'naive.db'}", recipients)
    sample = events[: min(len(events), 2000)]
    naive = ingest(naive_app, sample, size=1) * len(events) / len(sample)
    naive_app.close()
    mine, theirs, theirs_dedup = statistics.median(ours), statistics.median(raw), statistics.median(raw_dedup)
    # each round's ratio, then their median: a machine whose load comes and goes (other processes on 2 cores)
    # slows a round's three runs alike, where the medians of each side's times can come from different rounds
    ratio_raw = statistics.median(r / o for r, o in zip(raw, ours))
    ratio_raw_dedup = statistics.median(r / o for r, o in zip(raw_dedup, ours))
    ratio_encrypt = statistics.median(u / o for u, o in zip(unsealed, ours))
    results["ingest_encrypt_ratio"] = round(ratio_encrypt, 3)
    report.append(
        (
            "ingest with personal fields sealed vs without (SQLite)",
            f"{len(events) / mine:,.0f} signals/s",
            f"{len(events) / statistics.median(unsealed):,.0f} signals/s unsealed (bench-only path)",
            f"{ratio_encrypt:.2f} × (target ≥ 0.9)",
        )
    )
    results["ingest_signals_per_s"] = round(len(events) / mine)
    results["ingest_ratio_raw"] = round(ratio_raw, 3)
    results["ingest_ratio_raw_dedup"] = round(ratio_raw_dedup, 3)
    results["ingest_ratio_naive"] = round(naive / mine, 1)
    results["ingest_rows_per_signal"] = round(len(rows) / len(events), 3)
    report.append(
        (
            "ingest, batches of 100 (SQLite)",
            f"{len(events) / mine:,.0f} signals/s",
            f"{len(rows) / theirs_dedup:,.0f} rows/s raw executemany with dedup rows",
            f"{ratio_raw_dedup:.2f} × raw with dedup rows (target ≥ 0.5)",
        )
    )
    report.append(
        (
            "ingest, event rows alone (SQLite)",
            f"{len(events) / mine:,.0f} signals/s",
            f"{len(rows) / theirs:,.0f} rows/s raw executemany",
            f"{ratio_raw:.2f} × raw (expected ≥ 0.35)",
        )
    )
    report.append(
        (
            "ingest vs one signal a transaction (SQLite)",
            f"{len(events) / mine:,.0f} signals/s",
            f"{len(events) / naive:,.0f} signals/s one by one",
            f"{naive / mine:.1f} × (target ≥ 20)",
        )
    )


def bench_hot_recipient(work: Path, report: Report, results: dict[str, Any], prior: int = 40_000) -> None:
    """A batch of 100 new signals for a recipient with ``prior`` signals, against one for a fresh recipient."""
    app = campaign(f"sqlite:///{work / 'hot.db'}", 2)

    def opens(contact: str, first: int, n: int) -> list[ProviderEvent]:
        return [
            ProviderEvent(
                Signal(
                    key=dedup_key("bench-hot", contact, i),
                    source="unione",
                    fields={"status": "opened"},
                    received_at=T0 + timedelta(seconds=i),
                    occurred_at=T0 + timedelta(seconds=i),
                    raw={"i": i},
                ),
                Correlation("bench", contact),
            )
            for i in range(first, first + n)
        ]

    history = opens("c0", 0, prior)
    for i in range(0, prior, 1000):
        app.record_batch(ParsedBatch(events=history[i : i + 1000]))
    hot = [timed(lambda k=k: app.record_batch(ParsedBatch(events=opens("c0", prior + 100 * k, 100)))) for k in range(5)]
    fresh = [timed(lambda k=k: app.record_batch(ParsedBatch(events=opens("c1", 100 * k, 100)))) for k in range(5)]
    app.close()
    hot_ms, fresh_ms = statistics.median(hot) * 1000, statistics.median(fresh) * 1000
    results["hot_recipient_batch_ms"] = round(hot_ms, 1)
    results["fresh_recipient_batch_ms"] = round(fresh_ms, 1)
    report.append(
        (
            f"a batch of 100 for a recipient with {prior:,} signals",
            f"{hot_ms:,.1f} ms",
            f"{fresh_ms:,.1f} ms for a fresh recipient",
            f"{'ok' if hot_ms < 100 else 'OVER'} (target < 100 ms)",
        )
    )


# ---- PostgreSQL ---------------------------------------------------------------------------------


def pg_raw(url: str, rows: list[tuple[str, int, str, bytes]]) -> dict[str, float]:
    """The same rows into a table like the library's, batches of 100, two ways: executemany and COPY."""
    import psycopg

    times: dict[str, float] = {}
    with psycopg.connect(url) as conn:
        for method in ("executemany", "copy"):
            table = f"raw_{method}"
            conn.execute(
                f"CREATE TABLE {table} (originator_id uuid NOT NULL, originator_version integer NOT NULL, topic text, "
                "state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
            )
            conn.commit()

            def insert(table: str = table, method: str = method) -> None:
                for i in range(0, len(rows), BATCH):
                    with conn.transaction(), conn.cursor() as cur:
                        chunk = rows[i : i + BATCH]
                        if method == "executemany":
                            cur.executemany(
                                f"INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES (%s,%s,%s,%s)",
                                chunk,
                            )
                        else:
                            with cur.copy(f"COPY {table} (originator_id, originator_version, topic, state) FROM STDIN") as copy:
                                for row in chunk:
                                    copy.write_row(row)

            times[method] = timed(insert)
    return times


def bench_pg_ingest(signals: int, report: Report, results: dict[str, Any], rounds: int = 5) -> None:
    recipients = max(1, signals // 4)
    events = provider_events("bench", recipients, signals, T0)
    ours, raws = [], []
    rows: list[tuple[str, int, str, bytes]] = []
    for r in range(rounds):
        with postgres_database("responses_bench_ingest") as url:
            app = campaign(url, recipients)
            start = app.journal_position()
            ours.append(ingest(app, events))
            rows = stored_rows(app, start)
            app.close()
        with postgres_database("responses_bench_raw") as url:
            raws.append(pg_raw(url, rows))
        progress(f"  round {r + 1}: ours {ours[-1]:.2f} s, raw {raws[-1]}")
    with postgres_database("responses_bench_naive") as url:
        app = campaign(url, recipients)
        sample = events[: min(len(events), 1000)]
        naive = ingest(app, sample, size=1) * len(events) / len(sample)
        app.close()
    mine = statistics.median(ours)
    per_method = {m: statistics.median(t[m] for t in raws) for m in raws[0]}
    fastest = min(per_method, key=lambda m: per_method[m])
    ratio = statistics.median(t[fastest] / o for t, o in zip(raws, ours))  # each round's ratio, then their median
    results["pg_ingest_signals_per_s"] = round(len(events) / mine)
    results["pg_ingest_ratio_raw"] = round(ratio, 3)
    results["pg_ingest_raw_method"] = fastest
    results["pg_ingest_ratio_naive"] = round(naive / mine, 1)
    report.append(
        (
            "ingest, batches of 100 (PostgreSQL)",
            f"{len(events) / mine:,.0f} signals/s",
            f"{len(rows) / per_method[fastest]:,.0f} rows/s raw {fastest} (fastest raw)",
            f"{ratio:.2f} × raw (target ≥ 0.45)",
        )
    )
    report.append(
        (
            "ingest vs one signal a transaction (PostgreSQL)",
            f"{len(events) / mine:,.0f} signals/s",
            f"{len(events) / naive:,.0f} signals/s one by one",
            f"{naive / mine:.1f} ×",
        )
    )


def bench_dispatch(work: Path, recipients: int, report: Report, results: dict[str, Any]) -> None:
    for store in ("sqlite", "postgres"):

        def run(url: str) -> float:
            app = ResponsesApp(Settings(database_url=url))
            app.follower = ViewFollower(app)
            app.create_mailing({"id": "d", "name": "D", "category": "bulk", "provider": "unione"})
            app.add_audience("d", [{"contact_id": f"c{i}", "email": f"u{i}@example.com"} for i in range(recipients)])
            app.wait_for_views()
            waves = [0]

            def dispatch_all() -> None:
                while app.dispatch("d", now=T0)["remaining"]:
                    waves[0] += 1

            elapsed = timed(dispatch_all)
            app.close()
            return elapsed

        if store == "sqlite":
            elapsed = run(f"sqlite:///{work / 'dispatch.db'}")
        else:
            with postgres_database("responses_bench_dispatch") as url:
                elapsed = run(url)
        results[f"dispatch_{store}_seconds"] = round(elapsed, 2)
        report.append(
            (
                f"dispatch {recipients:,} recipients ({store})",
                f"{elapsed:,.1f} s",
                f"{recipients / elapsed:,.0f} recipients/s",
                "(target: a few seconds)",
            )
        )


if __name__ == "__main__":  # a quick look: python -m bench.ingest
    out: Report = []
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bench_sqlite_ingest(Path(tmp), 20_000, out, res, rounds=1)
    print(res)
