"""A retried batch costs a retry: the statement that checks digest hits against the stored signals is a
primary-key search a hit, never a scan of the journal, at any journal size (issue 14, item 3).

The journal is filled with 100,000 synthetic rows written straight into the library's table (only the
plan is read, so their content does not matter), the statistics refreshed with ``ANALYZE``, and the plan
of the exact statement the write path runs (``JournalIndex.verify_statement``) read from the store.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from application.service import ResponsesApp

ROWS = 100_000
VERSIONS_EACH = 10  # synthetic aggregates of 10 rows each
HITS = 100  # a provider's retried batch


def synthetic_id(n: int) -> uuid.UUID:
    return uuid.UUID(int=n + 1)


def fill_journal(app: ResponsesApp, rows: int) -> None:
    """``rows`` rows in the events table (``rows / VERSIONS_EACH`` aggregates), then ``ANALYZE``."""
    index = app.journal_index
    with app.recorder.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
        if index.is_postgres:
            c.execute(
                f"INSERT INTO {index.table} (originator_id, originator_version, topic, state) "
                f"SELECT lpad(to_hex(i / {VERSIONS_EACH} + 1), 32, '0')::uuid, i % {VERSIONS_EACH} + 1, 'synthetic:Row', '\\x7b7d'::bytea "
                f"FROM generate_series(0, {rows - 1}) AS i"
            )
        else:
            c.executemany(
                f"INSERT INTO {index.table} (originator_id, originator_version, topic, state) VALUES (?, ?, 'synthetic:Row', X'7b7d')",
                ((synthetic_id(i // VERSIONS_EACH).hex, i % VERSIONS_EACH + 1) for i in range(rows)),
            )
    with app.recorder.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
        c.execute("ANALYZE")


def retried_hits() -> list[tuple[uuid.UUID, int]]:
    """A retried batch's digest hits: stored (aggregate, version) pairs spread over the journal."""
    step = ROWS // HITS
    return [(synthetic_id(i // VERSIONS_EACH), i % VERSIONS_EACH + 1) for i in range(0, ROWS, step)][:HITS]


def query_plan(app: ResponsesApp, sql: str, params: list[Any]) -> list[str]:
    with app.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
        if app.journal_index.is_postgres:
            c.execute(f"EXPLAIN {sql}", params)
            return [str(next(iter(row.values())) if isinstance(row, dict) else row[0]) for row in c.fetchall()]
        c.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return [str(row["detail"] if isinstance(row, dict) or hasattr(row, "keys") else row[3]) for row in c.fetchall()]


def full_scans(plan: list[str]) -> list[str]:
    """The plan's lines that read a table whole: PostgreSQL's sequential scans; SQLite's ``SCAN`` of anything
    but constant rows or a ``VALUES`` list it built itself (a co-routine or materialised CTE)."""
    built = {m.group(1) for line in plan if (m := re.match(r"^\s*(?:CO-ROUTINE|MATERIALIZE) (\S+)", line))}
    scans = [line for line in plan if "Seq Scan" in line]
    for line in plan:
        m = re.match(r"^\s*SCAN (\S+)", line)
        if m and "CONSTANT ROWS" not in line and m.group(1) not in built:
            scans.append(line)
    return scans


def searches_the_primary_key(plan: list[str]) -> bool:
    return any(
        ("Index Scan using" in line and "_pkey" in line)
        or ("SEARCH" in line and "INDEX" in line and "originator_version=?" in line)
        for line in plan
    )


def test_checking_a_retried_batch_searches_the_primary_key_of_a_large_journal(app: ResponsesApp) -> None:
    fill_journal(app, ROWS)
    hits = retried_hits()
    index = app.journal_index
    sql, params = index.verify_statement(len(hits)), index.verify_params(hits)
    plan = query_plan(app, sql, params)
    assert not full_scans(plan), "\n".join(plan)
    assert searches_the_primary_key(plan), "\n".join(plan)
    with app.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
        c.execute(sql, params)
        assert len(c.fetchall()) == HITS  # the statement reads every hit's row, once


def test_a_retried_batch_is_found_stored_through_the_digests(app: ResponsesApp) -> None:
    """The verification reads each digest hit's signal: a real retry is reported as stored."""
    oid = uuid.uuid4()
    keys = [f"retry-key-{i}" for i in range(3)]
    with app.recorder.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
        index = app.journal_index
        mark = "%s" if index.is_postgres else "?"
        for version, key in enumerate(keys, start=1):
            state = f'{{"signal": {{"key": "{key}"}}}}'.encode()
            c.execute(
                f"INSERT INTO {index.table} (originator_id, originator_version, topic, state) VALUES ({mark}, {mark}, {mark}, {mark})",
                [oid if index.is_postgres else oid.hex, version, "domain.aggregates:Recipient.SignalRecorded", state],
            )
        index.insert_digests(c, [(oid, version, key) for version, key in enumerate(keys, start=1)])
    assert index.stored_keys({oid: {*keys, "a-new-key"}}) == {oid: set(keys)}
