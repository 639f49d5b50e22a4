"""Settings an operator may try that would quietly break the service are refused at start, in one line
(issue 14): ``POSTGRES_ENABLE_DB_FUNCTIONS`` (the library would skip the table lock and the dedup
digests) and a SQLite ``DATABASE_URL`` whose folder does not exist (it was created, and an empty
database served)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from application.config import DEFAULT_DATABASE_URL, ConfigError, Settings
from application.service import ResponsesApp
from tests.helpers.e2e import responses_command, service_env

DB_FUNCTIONS = "POSTGRES_ENABLE_DB_FUNCTIONS"


@pytest.mark.parametrize("name", [DB_FUNCTIONS, f"RESPONSES_{DB_FUNCTIONS}"])
@pytest.mark.parametrize("value", ["y", "yes", "no", ""])
@pytest.mark.parametrize("url", ["sqlite:///x.db", "postgresql://postgres@127.0.0.1:5432/x"])
def test_the_library_db_functions_setting_is_refused_whatever_its_value_and_store(name: str, value: str, url: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"DATABASE_URL": url, name: value})


def test_the_app_refuses_to_start_with_db_functions_in_its_environment(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DB_FUNCTIONS, "y")
    with pytest.raises(ConfigError, match=DB_FUNCTIONS):
        ResponsesApp(Settings(database_url=database_url))


def test_responses_refuses_to_start_with_db_functions_in_one_line(tmp_path: Path, postgres_url: str) -> None:
    env = service_env(postgres_url, **{DB_FUNCTIONS: "y"})
    done = subprocess.run(responses_command("project"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and DB_FUNCTIONS in lines[0] and "unset" in lines[0], done.stderr


def test_a_sqlite_file_in_a_missing_folder_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    folder = tmp_path / "typo" / "dir"
    url = f"sqlite:///{folder / 'x.db'}"
    for refuse in (
        lambda: Settings.from_env({"DATABASE_URL": url}),
        lambda: Settings(database_url=url).eventsourcing_env(),
        lambda: ResponsesApp(Settings(database_url=url)),
    ):
        with pytest.raises(ConfigError, match=f"mkdir -p {folder}"):
            refuse()
    assert not (tmp_path / "typo").exists()


def test_a_relative_sqlite_path_names_its_folder_in_the_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="mkdir -p data/db"):
        Settings.from_env({"DATABASE_URL": "sqlite:///data/db/x.db"})
    assert not (tmp_path / "data").exists()


def test_the_default_database_and_others_in_var_still_get_the_var_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.eventsourcing_env()["SQLITE_DBNAME"] == "var/responses.db"
    assert (tmp_path / "var").is_dir()
    (tmp_path / "var").rmdir()
    assert Settings.from_env({"DATABASE_URL": "sqlite:///var/other.db"}).eventsourcing_env()["SQLITE_DBNAME"] == "var/other.db"
    assert (tmp_path / "var").is_dir()


def test_an_existing_folder_and_memory_are_accepted(tmp_path: Path) -> None:
    assert Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}).eventsourcing_env()["SQLITE_DBNAME"] == str(
        tmp_path / "x.db"
    )
    assert Settings(database_url="sqlite:///:memory:").eventsourcing_env()["SQLITE_DBNAME"] == ":memory:"


def test_responses_refuses_a_sqlite_file_in_a_missing_folder_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "typo" / "dir"
    env = service_env(f"sqlite:///{folder / 'x.db'}")
    done = subprocess.run(
        responses_command("serve", "--port", "0"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"mkdir -p {folder}" in lines[0], done.stderr
    assert not (tmp_path / "typo").exists() and not (tmp_path / "var").exists()
