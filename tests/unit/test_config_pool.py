"""The PostgreSQL pool of a process: DATABASE_POOL_SIZE (default 4, no overflow), at least a worker's threads;
gunicorn's workers are gthread with GUNICORN_THREADS threads (issue 14, item 4)."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from application.config import ConfigError, Settings, check_pool_covers_threads
from tests.helpers.stores import KEYS

PG = "postgresql://responses@db.example:5432/responses"
GUNICORN_CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def test_the_pool_is_four_connections_without_overflow_by_default() -> None:
    settings = Settings.from_env({"DATABASE_URL": PG, **KEYS})
    assert settings.database_pool_size == 4
    env = settings.eventsourcing_env()
    assert (env["POSTGRES_POOL_SIZE"], env["POSTGRES_MAX_OVERFLOW"]) == ("4", "0")


def test_database_pool_size_sets_the_pool_of_the_process() -> None:
    env = Settings.from_env({"DATABASE_URL": PG, "DATABASE_POOL_SIZE": "9", **KEYS}).eventsourcing_env()
    assert (env["POSTGRES_POOL_SIZE"], env["POSTGRES_MAX_OVERFLOW"]) == ("9", "0")


@pytest.mark.parametrize("value", ["many", "0", "-2", "1.5"])
def test_a_pool_size_that_is_not_a_positive_whole_number_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_POOL_SIZE"):
        Settings.from_env({"DATABASE_POOL_SIZE": value})


def test_the_budget_is_the_pool_plus_a_listen_connection_a_follower_and_one_a_lock() -> None:
    settings = Settings(database_url=PG, database_pool_size=4)
    assert settings.connection_budget() == 4  # a gunicorn worker
    assert settings.connection_budget(followers=1, locks=1) == 6  # responses project, responses serve


def test_a_pool_smaller_than_the_threads_is_refused_with_both_numbers() -> None:
    check_pool_covers_threads(4, 4, "each gunicorn worker")
    with pytest.raises(ConfigError) as refused:
        check_pool_covers_threads(3, 4, "each gunicorn worker")
    assert str(refused.value) == (
        "DATABASE_POOL_SIZE=3 is smaller than the 4 request threads of each gunicorn worker: "
        "each thread needs a PostgreSQL connection of its own; set DATABASE_POOL_SIZE=4 or use 3 threads"
    )


def gunicorn_conf(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in ("GUNICORN_THREADS", "DATABASE_POOL_SIZE", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(GUNICORN_CONF))


def test_gunicorn_runs_gthread_workers_of_gunicorn_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = gunicorn_conf(monkeypatch)
    assert (conf["worker_class"], conf["threads"]) == ("gthread", 4)
    assert gunicorn_conf(monkeypatch, GUNICORN_THREADS="6")["threads"] == 6


def test_gunicorn_refuses_to_start_when_a_workers_threads_outnumber_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = gunicorn_conf(monkeypatch, DATABASE_URL=PG, DATABASE_POOL_SIZE="4")
    conf["on_starting"](SimpleNamespace(cfg=SimpleNamespace(threads=4)))  # as many: fine
    with pytest.raises(RuntimeError, match="DATABASE_POOL_SIZE=4 is smaller than the 8 request threads"):
        conf["on_starting"](SimpleNamespace(cfg=SimpleNamespace(threads=8)))
    sqlite = gunicorn_conf(monkeypatch, DATABASE_URL="sqlite:///var/r.db", DATABASE_POOL_SIZE="1")
    sqlite["on_starting"](SimpleNamespace(cfg=SimpleNamespace(threads=8)))  # no PostgreSQL pool to run short


def test_serve_without_a_pool_size_gets_a_pool_as_large_as_its_threads() -> None:
    from interface.cli.serve import pool_for_threads

    postgres = Settings(database_url="postgresql://postgres@127.0.0.1:5432/x")
    assert pool_for_threads(postgres, 8, {}).database_pool_size == 8
    assert pool_for_threads(postgres, 2, {}).database_pool_size == 4  # never below the default
    assert pool_for_threads(postgres, 8, {"DATABASE_POOL_SIZE": "4"}).database_pool_size == 4  # set: kept (and refused)
    assert pool_for_threads(Settings(database_url="sqlite:///var/x.db"), 8, {}).database_pool_size == 4
