"""Shared fixtures: an application on a fresh SQLite file and on a fresh PostgreSQL database.

PostgreSQL tests never skip: if the server cannot be reached they fail, loudly
(``make test`` starts the server when it is installed but down)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from application.service import ResponsesApp
from tests.helpers.stores import FreshDatabases, app_over


@pytest.fixture(scope="session")
def fresh_databases() -> Iterator[FreshDatabases]:
    """Made on the first PostgreSQL test's demand: new databases ahead of the tests, old ones dropped behind."""
    databases = FreshDatabases()
    yield databases
    databases.close()


@pytest.fixture
def postgres_url(fresh_databases: FreshDatabases) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    url = fresh_databases.take()
    try:
        yield url
    finally:
        fresh_databases.give_back(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'responses.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Both stores: every test using it runs on a SQLite file and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def app(database_url: str) -> Iterator[ResponsesApp]:
    with app_over(database_url) as application:
        yield application
