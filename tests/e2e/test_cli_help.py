"""The CLI explains itself: every argument described with its default, the environment each command reads
listed in its help; clear errors for a missing file or an unreachable database; a what-if shows only changes."""

from __future__ import annotations

import argparse
import inspect
import re
import subprocess
from pathlib import Path

import pytest

from application.config import Settings
from interface.cli import build_parser, main
from interface.cli.rules import what_if_report
from tests.helpers.e2e import responses_command
from tests.helpers.stores import KEYS

COMMAND_ENV = {
    "serve": {
        "DATABASE_URL",
        "RESPONSES_API_TOKENS",
        "UNIONE_API_KEYS",
        "ELASTICEMAIL_WEBHOOK_TOKEN",
        "SENDGRID_WEBHOOK_PUBLIC_KEY",
        "MAILGUN_WEBHOOK_SIGNING_KEYS",
        "BREVO_WEBHOOK_TOKEN",
        "POSTMARK_WEBHOOK_TOKEN",
        "SES_SNS_TOPIC_ARNS",
        "SES_SNS_CERT_DIR",
        "SES_SNS_FETCH_CERTS",
        "SES_SNS_AUTO_CONFIRM",
        "MAX_BODY_BYTES",
        "SWEEP_INTERVAL_SECONDS",
        "READY_MAX_LAG_SECONDS",
        "REPLAY_WORKERS",
        "WHAT_IF_WAIT_SECONDS",
        "RESPONSES_SECRET_KEY",
        "DATABASE_POOL_SIZE",
        "WHAT_IF_MAX_PENDING",
        "HISTORY_FOLDS_MAX",
        "SESSION_MAX_HOURS",
        "FORWARDED_ALLOW_IPS",
        "AUTH_FAILURES_PER_MINUTE",
        "MAX_CLOCK_SKEW_SECONDS",
        "RESPONSES_KEK",
        "RESPONSES_ADDRESS_KEY",
    },
    "project": {
        "DATABASE_URL",
        "SWEEP_INTERVAL_SECONDS",
        "REPLAY_WORKERS",
        "DATABASE_POOL_SIZE",
        "RESPONSES_KEK",
        "RESPONSES_ADDRESS_KEY",
    },
    "sweep": {"DATABASE_URL", "RESPONSES_KEK", "RESPONSES_ADDRESS_KEY"},
    "simulate": {"DATABASE_URL", "RESPONSES_API_TOKENS", "UNIONE_API_KEYS", "RESPONSES_KEK", "RESPONSES_ADDRESS_KEY"},
    "send": {
        "UNIONE_API_KEYS",
        "ELASTICEMAIL_WEBHOOK_TOKEN",
        "MAILGUN_WEBHOOK_SIGNING_KEYS",
        "BREVO_WEBHOOK_TOKEN",
        "POSTMARK_WEBHOOK_TOKEN",
    },
    "rebuild": {"DATABASE_URL", "RESPONSES_KEK", "RESPONSES_ADDRESS_KEY"},
    "what-if": {"DATABASE_URL", "REPLAY_WORKERS", "RESPONSES_KEK", "RESPONSES_ADDRESS_KEY"},
    "keys": {"RESPONSES_KEK", "RESPONSES_ADDRESS_KEY"},
}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return dict(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def listed_environment(help_text: str) -> set[str]:
    section = help_text.split("environment:", 1)[1]
    return set(re.findall(r"^  ([A-Z][A-Z_]+)\s", section, re.MULTILINE))


def test_every_variable_the_configuration_reads_is_in_the_serve_help() -> None:
    read = set(re.findall(r'"([A-Z][A-Z_]{3,})"', inspect.getsource(Settings.from_env)))
    assert read <= COMMAND_ENV["serve"], f"not in the help: {read - COMMAND_ENV['serve']}"


@pytest.mark.parametrize("name", sorted(COMMAND_ENV))
def test_each_command_describes_its_arguments_and_lists_its_environment(name: str) -> None:
    parser = subcommands()[name]
    text = parser.format_help()
    assert listed_environment(text) == COMMAND_ENV[name]
    for action in parser._actions:
        assert action.help, f"{name} {action.option_strings or action.dest}: no description"
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert f"(default: {action.default})" in " ".join(text.split()), f"{name} {action.option_strings}: default not shown"


def test_the_installed_command_prints_its_help() -> None:
    done = subprocess.run(responses_command("serve", "--help"), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "--port PORT  TCP port to listen on (default: 8000)" in done.stdout
    assert "SWEEP_INTERVAL_SECONDS" in done.stdout
    top = subprocess.run(responses_command("--help"), capture_output=True, text=True, timeout=60).stdout
    assert all(command in top for command in COMMAND_ENV)


@pytest.fixture
def empty_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'r.db'}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_what_if_on_a_missing_file_says_the_file_does_not_exist(empty_sqlite: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["what-if", "nonexist.json"]) == 2
    err = capsys.readouterr().err
    assert "nonexist.json: file does not exist" in err and "ruleset version" not in err.split("(")[0]
    assert main(["what-if", "7"]) == 2  # not a path: a version, which is not stored
    assert "not found" in capsys.readouterr().err


def test_a_missing_postgres_database_is_one_line_with_the_way_to_create_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = (
        postgres_url.rsplit("/", 1)[0].replace("postgresql://postgres@", "postgresql://postgres:hunter2@")
        + "/responses_missing_db"
    )
    env = {"DATABASE_URL": missing, "PATH": "/usr/bin:/bin", **KEYS}
    done = subprocess.run(responses_command("sweep"), capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if "responses.cli" not in line]  # the "database ..." info line
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        "cannot reach the database at postgresql://127.0.0.1:5432/responses_missing_db (password hidden): "
    )
    assert 'database "responses_missing_db" does not exist' in lines[0]
    assert lines[0].endswith("create it with `createdb -h 127.0.0.1 -p 5432 -U postgres responses_missing_db`")
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_postgres_server_is_one_line(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:9/responses", "PATH": "/usr/bin:/bin", **KEYS}
    done = subprocess.run(responses_command("project"), capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 2
    [line] = [line for line in done.stderr.splitlines() if "responses.cli" not in line]
    assert line.startswith("cannot reach the database at postgresql://127.0.0.1:9/responses: ") and "refused" in line


def report(mailing_after: dict, **overrides: object) -> str:
    same = {
        "delivered": 10,
        "unique_opens": 4,
        "total_opens": 6,
        "unique_clicks": 1,
        "total_clicks": 1,
        "responses": {"delivered": 6, "opened": 4},
        "rates": {"delivery": 0.5, "unsubscribe": 0.00501},
    }
    result = {
        "rules": {"candidate": "what-if", "current": "1"},
        "recipients": 20,
        "changed": 0,
        "counters_changed": 0,
        "transitions": [],
        "mailings": {"quiet": {"before": same, "after": same}, "moved": {"before": same, "after": {**same, **mailing_after}}},
        "contacts": {"newly_suppressed": {"count": 0, "sample": []}, "no_longer_suppressed": {"count": 0, "sample": []}},
        "examples": [],
    }
    result.update(overrides)
    return what_if_report(result)


def test_the_text_what_if_shows_only_what_changes() -> None:
    text = report({"total_opens": 5, "rates": {"delivery": 0.5, "unsubscribe": 0.00502}}, counters_changed=1)
    assert "mailing quiet" not in text  # no heading with nothing under it
    assert "mailing moved\n  total_opens " in text and "6 → 5" in text
    assert "rate" not in text  # 0.5 % → 0.5 % is no change
    assert "contacts" not in text  # nobody (un)suppressed
    assert "nothing changes" in report({})
    assert "mailing" not in report({})


def test_postgresql_without_its_keys_is_refused_at_start_in_one_line(tmp_path: Path) -> None:
    """Workers on several hosts must share the keys that seal personal data: no silent per-host default."""
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:9/responses", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(responses_command("project"), capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "RESPONSES_KEK and RESPONSES_ADDRESS_KEY are required with PostgreSQL" in done.stderr
    assert "Traceback" not in done.stderr
