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
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from application.config import Settings
from application.service import ResponsesApp
from projections.follower import TRANSIENT, ViewFollower

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
            try:  # unlocked before the answer: closing alone frees it only once the server's backend has exited
                self._conn.execute("SELECT pg_advisory_unlock_all()")
            except Exception:  # the connection is gone: so is the lock
                pass
            self._conn.close()  # ends the session: the advisory lock goes with it
            self._conn = None
        if self._file is not None:
            self._file.close()  # releases the flock
            self._file = None
        self.held = False

    def __enter__(self) -> ProjectorLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def on_demand_follower(app: ResponsesApp, lock: ProjectorLock) -> bool:
    """Let ``app.wait_for_views`` catch up in-process when nobody else projects (the application's
    jobs run beside it, in a thread of their own, when one is asked for here); else it polls."""
    if lock.try_acquire():
        app.follower = ViewFollower(app)
        return True
    log.info("another process follows the journal; waiting for it instead")
    return False


def background_follower(app: ResponsesApp, lock: ProjectorLock) -> ViewFollower | None:
    """Follow the journal in a thread of this process, unless another process already does; that
    thread runs the journaled jobs between its batches (``app.jobs``: activations and what-ifs),
    at once when one is asked for in this process."""
    if not lock.try_acquire():  # expected with a `responses project` beside: not a warning
        log.info("another process follows this database's journal; not starting an in-process follower")
        return None
    return ViewFollower(app).start()


class PeriodicSweep:
    """``app.sweep()`` every ``interval`` seconds in a thread: expiry and the confirmation timeout need no cron.

    Run by the process that holds the projector lock (``serve``, ``project``), so
    one per database. The first run is one interval after the start. A busy or
    unreachable database postpones a run (logged at debug level); any other
    failure is logged with its cause, its traceback once while it repeats.
    """

    def __init__(self, app: ResponsesApp, interval: float, on_result: Callable[[dict[str, int]], None] | None = None):
        self.app = app
        self.interval = interval
        self.on_result = on_result
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: str | None = None

    def start(self) -> PeriodicSweep:
        if self.interval > 0:
            self._thread = threading.Thread(target=self._run, name="periodic-sweep", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def run_once(self) -> dict[str, int] | None:
        try:
            result = self.app.sweep()
        except TRANSIENT as exc:
            log.debug("sweep postponed: %s", one_line(exc))
            return None
        except Exception as exc:
            cause = f"{type(exc).__name__}: {one_line(exc)}"
            log.error("sweep failed: %s", cause, exc_info=cause != self._failing)
            self._failing = cause
            return None
        self._failing = None
        if result.get("expired") or result.get("checked"):
            log.info(
                "sweep: %d planned recipients expired, %d confirmation checks recorded",
                result.get("expired", 0),
                result.get("checked", 0),
            )
        if self.on_result is not None:
            self.on_result(result)
        return result

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


# ---- the database cannot be used: one line, not a traceback ---------------------------------------

DATABASE_ERRORS: tuple[type[BaseException], ...] = TRANSIENT


def one_line(exc: BaseException) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip()


def database_error_message(settings: Settings, exc: BaseException) -> str:
    """What a person reads when the database cannot be reached or opened (the password never shown)."""
    reason = one_line(exc)
    if not settings.is_postgres:
        return f"cannot open the SQLite database {settings.database_url}: {reason}"
    url = urlparse(settings.database_url)
    host, port = url.hostname or "127.0.0.1", url.port or 5432
    name = (url.path or "/").lstrip("/") or "postgres"
    where = f"postgresql://{host}:{port}/{name}" + (" (password hidden)" if url.password else "")
    message = f"cannot reach the database at {where}: {reason}"
    if "does not exist" in reason and f'"{name}"' in reason:
        user = f" -U {url.username}" if url.username else ""
        message += f"; create it with `createdb -h {host} -p {port}{user} {name}`"
    elif "refused" in reason or "timeout" in reason.lower():
        message += f"; is PostgreSQL running there (pg_isready -h {host} -p {port})?"
    return message
