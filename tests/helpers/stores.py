"""The stores every test runs on: the fixtures' folder, the PostgreSQL server, and how its absence is told."""

from __future__ import annotations

import os
import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import psycopg
import pytest

if TYPE_CHECKING:
    from application.service import ResponsesApp

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


TOO_MANY = ("too many clients", "too many connections", "remaining connection slots are reserved")


def postgres_unavailable_message(url: str, error: str, max_connections: int | None = None, in_use: int | None = None) -> str:
    """Why a PostgreSQL test cannot run, told apart: the server refuses for lack of connections (its own
    words, or a wait for a connection while it is full), it is slow (a wait while it has room), or it is
    not reachable at all. ``max_connections`` and ``in_use``: what the server said, when it could be asked."""
    counts = f"max_connections {max_connections if max_connections is not None else '?'}, in use {in_use if in_use is not None else '?'}"
    said = " ".join(error.split())
    full = max_connections is not None and in_use is not None and in_use >= max_connections - 3  # superuser_reserved_connections
    if any(words in said.lower() for words in TOO_MANY) or full:
        return (
            f"PostgreSQL refuses: too many connections ({counts}) at {url}: {said}. "
            "End the idle sessions (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle' AND pid <> pg_backend_pid()), "
            "stop other test runs, or raise max_connections."
        )
    if "timeout" in said.lower() or "couldn't get a connection" in said.lower():
        return f"PostgreSQL at {url} is slow: no connection in time ({counts}): {said}. The server has room; is the machine overloaded?"
    return (
        f"PostgreSQL is not reachable at {url} ({said}). "
        "Start it (make test does: pg_ctlcluster --skip-systemctl-redirect 15 main start)."
    )


def server_connections(url: str = PG_ADMIN_URL) -> tuple[int | None, int | None]:
    """(max_connections, connections in use) as the server tells them (a superuser may use its reserved
    slots), or (None, None) when it cannot be asked."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT current_setting('max_connections')::int, (SELECT count(*) FROM pg_stat_activity)"
            ).fetchone()
            return (int(row[0]), int(row[1])) if row else (None, None)
    except psycopg.Error:
        return None, None


def fail_unavailable(url: str, exc: BaseException) -> NoReturn:
    pytest.fail(postgres_unavailable_message(url, str(exc), *server_connections()), pytrace=False)


def _admin_connection() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - the environment is broken
        fail_unavailable(PG_ADMIN_URL, exc)


def database_url(name: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


class FreshDatabases:
    """Fresh, empty PostgreSQL databases for the tests, a new one each time, made ahead and dropped
    behind by a thread of their own: CREATE and DROP DATABASE mostly wait on the server (its disk), half a
    second to a second together on a shared machine, and a test need not wait for them.

    ``take()`` answers a database no one has used (made from template1, as ``CREATE DATABASE`` always
    does) and orders the next; ``give_back()`` drops one (``WITH (FORCE)``: connections a test left open
    go with it); ``close()`` drops the ones still made and waits for the drops. A server that cannot be
    reached or refuses fails the test that asked, as before (``fail_unavailable``): never a skip."""

    AHEAD = 2  # made before they are asked for: a short test's successor still finds one ready

    def __init__(self) -> None:
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._work: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="test-databases", daemon=True)
        self._thread.start()
        for _ in range(self.AHEAD):
            self._order()

    def _order(self) -> None:
        self._work.put(("create", f"responses_test_{uuid.uuid4().hex[:12]}"))

    def take(self) -> str:
        try:
            made = self._ready.get(timeout=120)
        except queue.Empty:
            made = TimeoutError("no new database within 120 s")
        self._order()  # the next test's, made while this one runs
        if isinstance(made, BaseException):
            fail_unavailable(PG_ADMIN_URL, made)
        return database_url(made)

    def give_back(self, url: str) -> None:
        self._work.put(("drop", url.rsplit("/", 1)[1]))

    def close(self) -> None:
        self._closing = True  # the creates still queued are skipped: no test will take them
        self._work.put(None)
        self._thread.join(timeout=120)
        while not self._ready.empty():
            made = self._ready.get_nowait()
            if isinstance(made, str):
                with _admin_connection() as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{made}" WITH (FORCE)')

    def _run(self) -> None:
        admin: psycopg.Connection | None = None
        while (job := self._work.get()) is not None:
            action, name = job
            if action == "create" and self._closing:
                continue
            try:
                if admin is None or admin.closed:
                    admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
                if action == "create":
                    admin.execute(f'CREATE DATABASE "{name}"')
                    self._ready.put(name)
                else:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except psycopg.Error as exc:
                if admin is not None:
                    admin.close()
                    admin = None
                if action == "create":
                    self._ready.put(exc)  # told to the test that takes it
                else:  # pragma: no cover - a drop that failed leaves a stray database, not a wrong test
                    try:
                        with _admin_connection() as again:
                            again.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    except BaseException:
                        pass
        if admin is not None:
            admin.close()


@contextmanager
def app_over(url: str) -> Iterator[ResponsesApp]:
    """The application on ``url`` with an in-process follower (no thread: the views are caught up on demand,
    deterministically), closed afterwards; a PostgreSQL server that lets it have no connection fails the test."""
    from eventsourcing.persistence import OperationalError

    from application.config import Settings
    from application.service import ResponsesApp
    from projections.follower import ViewFollower

    try:
        application = ResponsesApp(Settings(database_url=url))
    except (OperationalError, psycopg.OperationalError) as exc:  # e.g. the pool's bare "couldn't get a connection": say why
        if not url.startswith("postgresql"):
            raise
        fail_unavailable(url, exc)
    application.follower = ViewFollower(application)
    try:
        yield application
    finally:
        application.close()


# RESPONSES_KEK and RESPONSES_ADDRESS_KEY for settings read from an environment (PostgreSQL requires both);
# fixed, public test keys: nothing they seal is secret
KEYS = {
    "RESPONSES_KEK": "dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM=",
    "RESPONSES_ADDRESS_KEY": "dGVzdC1hZGRyZXNzLWtleS1vZi0zMi1ieXRlcyEhISE=",
}


def store_keys() -> dict[str, str]:
    """RESPONSES_KEK and RESPONSES_ADDRESS_KEY as the key files under ./var/ hold them: the keys settings made
    in code use, so a test's in-process application and the services it starts open the same journal."""
    from application.persistence.keys import ensure_key_file

    return {
        "RESPONSES_KEK": ensure_key_file(Path("var") / "kek"),
        "RESPONSES_ADDRESS_KEY": ensure_key_file(Path("var") / "address-key"),
    }


def use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """``DATABASE_URL`` for settings read from the environment (the CLI's); on PostgreSQL with the keys that
    settings made in code use from the current directory (call it after any ``chdir``)."""
    monkeypatch.setenv("DATABASE_URL", url)
    if url.startswith("postgresql"):
        for name, value in store_keys().items():
            monkeypatch.setenv(name, value)
