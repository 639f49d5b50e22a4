"""Shared fixtures: an application on a fresh SQLite file and on a fresh PostgreSQL database.

PostgreSQL tests never skip: if the server cannot be reached they fail, loudly
(``make test`` starts the server when it is installed but down)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from application.config import Settings
from application.service import ResponsesApp
from projections.follower import ViewFollower
from tests.helpers.stores import (
    PG_ADMIN_URL,
    _admin_connection,
    fail_unavailable,
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
    try:
        application = ResponsesApp(Settings(database_url=database_url))
    except (OperationalError, psycopg.OperationalError) as exc:  # e.g. the pool's bare "couldn't get a connection": say why
        if not database_url.startswith("postgresql"):
            raise
        fail_unavailable(database_url, exc)
    follower = ViewFollower(application)
    application.follower = follower  # in-process, caught up on demand (no thread: deterministic)
    try:
        yield application
    finally:
        application.close()
