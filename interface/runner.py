"""Running the projection follower from a command: one active follower per database.

The views refuse a batch another follower already applied (``StaleBatch``), so
two followers are safe, but they duplicate their reads and retry each other's
batches. Commands that run one (``serve``, ``project``, ``sweep``, ``simulate``)
first take a per-database lock: a PostgreSQL advisory lock held on its own
connection, or an exclusive ``flock`` beside the SQLite file. A command that
cannot take it leaves the projecting to whoever holds it (``project`` stands
by and takes over when the holder goes away).
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path
from typing import IO, Any

from application.config import Settings
from application.service import ResponsesApp
from projections.follower import ViewFollower

log = logging.getLogger("responses.runner")

ADVISORY_KEY = 0x7265_7370_6F6E_73  # "respons": one projector per PostgreSQL database


class ProjectorLock:
    """``try_acquire()`` → True when this process may run the follower; released on ``release()``/exit."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._conn: Any = None
        self._file: IO[bytes] | None = None
        self.held = False

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.settings.is_postgres:
            self.held = self._try_postgres()
        else:
            self.held = self._try_sqlite()
        return self.held

    def _try_postgres(self) -> bool:
        import psycopg

        if self._conn is None:
            self._conn = psycopg.connect(self.settings.database_url, autocommit=True, connect_timeout=10)
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()
        return bool(row and row[0])

    def _try_sqlite(self) -> bool:
        path = self.settings.eventsourcing_env()["SQLITE_DBNAME"]
        if path == ":memory:":
            return True
        if self._file is None:
            self._file = open(Path(f"{path}.projector-lock"), "ab")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()  # ends the session: the advisory lock goes with it
            self._conn = None
        if self._file is not None:
            self._file.close()  # releases the flock
            self._file = None
        self.held = False

    def __enter__(self) -> "ProjectorLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def on_demand_follower(app: ResponsesApp, lock: ProjectorLock) -> bool:
    """Let ``app.wait_for_views`` catch up in-process when nobody else projects; else it polls."""
    if lock.try_acquire():
        app.follower = ViewFollower(app)
        return True
    log.info("another process follows the journal; waiting for it instead")
    return False


def background_follower(app: ResponsesApp, lock: ProjectorLock) -> ViewFollower | None:
    """Follow the journal in a thread of this process, unless another process already does."""
    if not lock.try_acquire():
        log.warning("another process follows this database's journal; not starting an in-process follower")
        return None
    return ViewFollower(app).start()
