"""The ``responses`` command in-process: sweep, simulate (this process's app), the parser, log redaction."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from application.config import Settings
from application.service import ResponsesApp
from interface.access_log import SECRET_PARAM
from interface.cli import COMMANDS, build_parser, main
from interface.runner import ProjectorLock
from projections.follower import ViewFollower
from tests.helpers.stores import use_database


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'responses.db'}"
    for name in (
        "RESPONSES_API_TOKENS",
        "UNIONE_API_KEYS",
        "ELASTICEMAIL_WEBHOOK_TOKEN",
        "SENDGRID_WEBHOOK_PUBLIC_KEY",
        "MAX_BODY_BYTES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    use_database(monkeypatch, url)
    return url


def test_every_command_is_registered() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"serve", "project", "sweep", "simulate", "rebuild", "what-if"} <= set(commands)
    assert len(COMMANDS) == len(commands)
    args = parser.parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)


def test_sweep_expires_planned_recipients(sqlite_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    app = ResponsesApp(Settings(database_url=sqlite_env))
    yesterday = datetime.now(UTC) - timedelta(days=1)
    app.create_mailing({"id": "old", "name": "Old", "category": "bulk", "provider": "unione", "expires_at": yesterday})
    app.add_audience("old", [{"contact_id": "c-1", "email": "a@example.com"}, {"contact_id": "c-2", "email": "b@example.com"}])
    app.close()
    assert main(["sweep"]) == 0
    assert json.loads(capsys.readouterr().out) == {"expired": 2, "checked": 0}
    assert main(["sweep"]) == 0
    assert json.loads(capsys.readouterr().out) == {"expired": 0, "checked": 0}


def test_simulate_in_process(sqlite_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--recipients", "250", "--seed", "11", "--mailing", "demo"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mailing_id"] == "demo"
    assert report["sent"] > 230 and report["events"] > report["sent"]
    assert report["answers"] == {
        "accepted": report["events"],
        "duplicates": 100 * report["retried_batches"],
        "unmatched": 0,
        "quarantined": 0,
    }
    summary = report["summary"]
    assert summary["audience"] == 250 and summary["sent"] == report["sent"]
    assert summary["delivered"] > 0.8 * report["sent"]
    assert 0 < summary["unique_opens"] < summary["delivered"]


def test_serve_on_a_taken_port_fails_cleanly(
    sqlite_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RESPONSES_API_TOKENS", "t")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "--port", str(taken.getsockname()[1])]) == 1
    err = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1:" in err and "in use" in err and "Traceback" not in err


def test_simulate_against_a_url_needs_credentials(sqlite_env: str) -> None:
    with pytest.raises(SystemExit, match="UNIONE_API_KEYS"):
        main(["simulate", "--recipients", "5", "--url", "http://127.0.0.1:9"])


def test_one_projector_per_database(sqlite_env: str) -> None:
    settings = Settings(database_url=sqlite_env)
    with ProjectorLock(settings) as first, ProjectorLock(settings) as second:
        assert first.try_acquire()
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()


def test_one_projector_per_postgres_database(postgres_url: str) -> None:
    settings = Settings(database_url=postgres_url)
    app = ResponsesApp(settings)
    try:
        with ProjectorLock(settings) as first, ProjectorLock(settings) as second:
            assert first.try_acquire() and first.try_acquire()
            assert not second.try_acquire()
            first.release()
            assert second.try_acquire()
            ViewFollower(app).catch_up()
    finally:
        app.close()


def test_a_released_postgres_lock_is_free_at_once(postgres_url: str) -> None:
    """Closing the connection frees the advisory lock only once the server's backend has exited: a
    follower taking over right after (a restart, a standby) found it still held."""
    settings = Settings(database_url=postgres_url)
    for _ in range(50):
        first, second = ProjectorLock(settings), ProjectorLock(settings)
        assert first.try_acquire()
        first.release()
        assert second.try_acquire()
        second.release()


@pytest.mark.parametrize(
    "line, kept",
    [
        ('"GET /v1/webhooks/elasticemail?status=Sent&token=s3cret HTTP/1.1" 200', "status=Sent&token=***"),
        ("code 400, message Bad request syntax ('GET /x?auth=abc&token=s3cret')", "auth=***&token=***"),
    ],
)
def test_access_log_lines_hide_secrets(line: str, kept: str) -> None:
    redacted = SECRET_PARAM.sub(r"\1***", line)
    assert "s3cret" not in redacted and kept in redacted
