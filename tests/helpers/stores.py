"""The stores every test runs on: the fixtures' folder, the PostgreSQL server, and how its absence is told."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

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
