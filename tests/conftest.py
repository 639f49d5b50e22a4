"""Shared fixtures: an application on a fresh SQLite file and on a fresh PostgreSQL database.

PostgreSQL tests never skip: if the server cannot be reached they fail, loudly
(``make test`` starts the server when it is installed but down).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from application.config import Settings
from application.service import ResponsesApp
from projections.follower import ViewFollower

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin_connection() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - the environment is broken
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} ({exc}). "
            "Start it (make test does: pg_ctlcluster --skip-systemctl-redirect 15 main start).",
            pytrace=False,
        )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"responses_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'responses.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Both stores: every test using it runs on a SQLite file and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def app(database_url: str) -> Iterator[ResponsesApp]:
    application = ResponsesApp(Settings(database_url=database_url))
    follower = ViewFollower(application)
    application.follower = follower  # in-process, caught up on demand (no thread: deterministic)
    try:
        yield application
    finally:
        application.close()
