"""One process at a time creates or migrates the tables."""

from __future__ import annotations

import fcntl
import mmap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from application.config import Settings

SCHEMA_LOCK_KEY = 0x7265_7370_7363_6865  # "respsche": one process creates or migrates tables at a time


@contextmanager
def schema_lock(settings: Settings) -> Iterator[None]:
    """One process at a time creates tables: gunicorn workers start together.

    PostgreSQL: a session advisory lock (concurrent ``CREATE TABLE IF NOT EXISTS``
    fails with "tuple concurrently updated"). SQLite: an exclusive ``flock`` beside
    the file (switching a new file to WAL mode is refused while another connection
    does it: "database is locked").
    """
    if settings.is_postgres:
        with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
        return
    path = settings.eventsourcing_env()["SQLITE_DBNAME"]
    if path == ":memory:" or "mode=memory" in path:
        yield
        return
    with open(f"{path}.schema-lock", "ab") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


def sqlite_file_holds(datastore: Any, needles: Sequence[bytes]) -> bool:
    """Whether the SQLite database file or its WAL holds any of ``needles`` (byte for byte), read through
    ``mmap``: nothing loaded, whatever the file's size. An in-memory database holds nothing on disk."""
    pool = getattr(datastore, "pool", None)
    path = str(getattr(pool, "db_name", "") or "")
    if not needles or not path or getattr(pool, "is_sqlite_memory_mode", False) or path == ":memory:":
        return False
    for name in (path, path + "-wal"):
        try:
            with open(name, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if any(data.find(needle) != -1 for needle in needles):
                    return True
        except (FileNotFoundError, ValueError):  # no WAL, or an empty one (mmap refuses 0 bytes)
            continue
    return False


def scrub_files(datastore: Any, is_postgres: bool, tables: Sequence[str], vacuum_sqlite: bool = False) -> None:
    """No old copy of rewritten rows left in the store's files (CONTRACT §12): PostgreSQL's dead row versions of
    ``tables`` vacuumed; SQLite's WAL checkpointed into its (zeroed, ``secure_delete``) pages and truncated, and
    with ``vacuum_sqlite`` the whole file rebuilt, then checkpointed again (the rebuilt pages are in the WAL until
    then): free pages written before ``secure_delete`` was on, and the stale copies of cells that rebalancing a
    b-tree page leaves in its unused space (``secure_delete`` zeroes freed cells and pages, not that space)."""
    if is_postgres:
        with datastore.get_connection() as conn:
            conn.commit()
            conn.autocommit = True  # VACUUM runs outside a transaction
            try:
                for table in tables:
                    conn.execute(f"VACUUM {table}")
            finally:
                conn.autocommit = False
        return
    with datastore.transaction(commit=False) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if vacuum_sqlite:
        with datastore.get_connection(commit=True) as conn:
            conn._sqlite_conn.execute("VACUUM")
            conn._sqlite_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
