"""`responses serve` as a person runs it: waitress, `responses send`, an access log without secrets, a clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.e2e import API_TOKEN, EE_TOKEN, UNIONE_KEY, Http, Process, free_port, responses_command, service_env, start
from tests.helpers.http import SPRING, SPRING_AUDIENCE
from tests.helpers.stores import FIXTURES

NOTHING = {"accepted": 0, "duplicates": 0, "unmatched": 0, "quarantined": 0}


def send(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(responses_command("send", *args), env=env, capture_output=True, text=True, timeout=60)


def serve(tmp_path: Path, processes: list[Process], **extra: str) -> tuple[Process, Http, dict[str, str]]:
    port = free_port()
    env = service_env(f"sqlite:///{tmp_path / 'responses.db'}", **extra)
    server = start(processes, "serve", responses_command("serve", "--port", str(port)), env, tmp_path)
    http = Http(port)
    http.wait_until_up(server)
    return server, http, env


def stopped_by(server: Process, signum: signal.Signals, within: float = 10.0) -> float:
    began = time.monotonic()
    server.proc.send_signal(signum)
    assert server.proc.wait(timeout=within) == 0, server.output()
    return time.monotonic() - began


@pytest.mark.timeout(120)
def test_send_signs_and_posts_and_the_access_log_keeps_secrets(tmp_path: Path, processes: list[Process]) -> None:
    server, http, env = serve(tmp_path, processes)
    url = http.base
    http.ok("POST", "/v1/mailings", {"id": SPRING, "name": "Spring sale", "category": "bulk", "provider": "unione"})
    http.ok("POST", f"/v1/mailings/{SPRING}/audience", {"recipients": SPRING_AUDIENCE})
    http.ok("POST", f"/v1/mailings/{SPRING}/dispatch")

    batch = str(FIXTURES / "unione" / "batch-mixed.json")  # "auth": "AUTH_PLACEHOLDER": signed by `send`
    first = send(env, "unione", batch, "--url", url)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {**NOTHING, "accepted": 8}
    assert json.loads(send(env, "unione", batch, "--url", url).stdout) == {**NOTHING, "duplicates": 8}

    wrong = send({**env, "UNIONE_API_KEYS": "not-the-key"}, "unione", batch, "--url", url)
    assert wrong.returncode == 1 and "the service answered 401" in wrong.stderr
    missing = send(env, "unione", str(tmp_path / "nope.json"), "--url", url)
    assert missing.returncode == 2 and "nope.json: file does not exist" in missing.stderr

    notifications = send(env, "elasticemail", str(FIXTURES / "elasticemail" / "notifications.txt"), "--url", url)
    assert notifications.returncode == 0, notifications.stderr
    assert sum(json.loads(notifications.stdout).values()) == 7  # every line answered

    # secrets and addresses a request may carry
    http.call("GET", f"/v1/webhooks/elasticemail?token={EE_TOKEN}&to=anna%40example.com&status=Sent", auth=False)
    http.call("GET", "/v1/contacts/anna@example.com")
    http.call("GET", f"/v1/mailings?auth={UNIONE_KEY}")

    assert stopped_by(server, signal.SIGTERM) < 10
    log = server.output()
    assert "Traceback" not in log and "stopped" in log
    assert '"GET /v1/webhooks/elasticemail" 200' in log and '"POST /v1/webhooks/unione" 200' in log
    assert '"GET /v1/contacts/a***@example.com"' in log and '"GET /v1/mailings" 200' in log
    for secret in (EE_TOKEN, UNIONE_KEY, API_TOKEN, "anna@example.com", "anna%40example.com", "token=", "?"):
        assert secret not in log.replace("(docs at /docs)", ""), f"{secret!r} in the log"


@pytest.mark.timeout(60)
def test_serve_stops_cleanly_on_sigint_and_releases_the_database(tmp_path: Path, processes: list[Process]) -> None:
    server, http, env = serve(tmp_path, processes)
    http.ok("POST", "/v1/mailings", {"id": "m", "name": "M", "category": "bulk", "provider": "unione"})
    assert stopped_by(server, signal.SIGINT) < 10
    assert "received SIGINT, stopping" in server.output() and "stopped" in server.output()
    # the follower and its lock are gone: another serve of the same database follows at once
    again, http, _ = serve(tmp_path, processes)
    assert "not starting an in-process follower" not in again.output()
    assert http.ok("GET", "/v1/mailings/m")["id"] == "m"


@pytest.mark.timeout(60)
def test_a_second_server_on_the_same_database_stands_by_without_a_warning(tmp_path: Path, processes: list[Process]) -> None:
    first, _, env = serve(tmp_path, processes)
    port = free_port()
    second = start(processes, "serve-2", responses_command("serve", "--port", str(port)), env, tmp_path)
    Http(port).wait_until_up(second)
    assert "INFO responses.runner: another process follows this database's journal" in second.output()
    assert "WARNING" not in second.output()


def gunicorn_settings(env: dict[str, str]) -> dict[str, str]:
    from tests.helpers.e2e import BIN

    done = subprocess.run(
        [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--print-config", "interface.wsgi:app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    return {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in done.stdout.splitlines()) if v}


def test_gunicorn_conf_reads_bind_workers_and_keeps_the_timeout_above_the_write_deadline() -> None:
    from application.service import WRITE_WAIT_SECONDS

    base = {"PATH": "/usr/bin:/bin"}
    settings = gunicorn_settings({**base, "BIND": "127.0.0.1:9001", "WEB_CONCURRENCY": "3"})
    assert (settings["bind"], settings["workers"]) == ("['127.0.0.1:9001']", "3")
    assert float(settings["timeout"]) > WRITE_WAIT_SECONDS + 15  # a write's wait for the views, a dispatch call
    assert "%(U)s" in settings["access_log_format"] and "%(r)s" not in settings["access_log_format"]
    assert settings["logger_class"] == "interface.access_log.GunicornLogger"
    assert gunicorn_settings({**base, "HOST": "127.0.0.1", "PORT": "9002"})["bind"] == "['127.0.0.1:9002']"


def test_gunicorn_access_atoms_and_error_lines_hide_secrets() -> None:
    from types import SimpleNamespace

    from gunicorn.config import Config

    from interface.access_log import GunicornLogger

    logger = GunicornLogger(Config())
    environ = {
        "PATH_INFO": "/v1/contacts/anna@example.com",
        "QUERY_STRING": f"token={EE_TOKEN}",
        "REQUEST_METHOD": "GET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "RAW_URI": f"/v1/contacts/anna@example.com?token={EE_TOKEN}",
        "HTTP_REFERER": f"http://x/?token={EE_TOKEN}",
    }
    request = SimpleNamespace(
        headers=[], method="GET", path=environ["PATH_INFO"], query=environ["QUERY_STRING"], uri=environ["RAW_URI"], version=(1, 1)
    )
    response = SimpleNamespace(status="200 OK", headers=[], response_length=10, sent=10)
    atoms = logger.atoms(response, request, environ, SimpleNamespace(seconds=0, microseconds=1000))
    text = json.dumps(atoms)
    assert EE_TOKEN not in text and "anna@example.com" not in text
    assert atoms["U"] == "/v1/contacts/a***@example.com"
    records: list[str] = []
    logger.error_log.handlers = []
    logger.error_log.addHandler(
        type("H", (__import__("logging").Handler,), {"emit": lambda self, r: records.append(r.getMessage())})()
    )
    logger.exception("Error handling request %s", f"/v1/webhooks/elasticemail?token={EE_TOKEN}&to=anna@example.com")
    assert records and EE_TOKEN not in records[0] and "anna@example.com" not in records[0] and "token=***" in records[0]


def confirmation_checks(http: Http, contact: str) -> int:
    history = http.ok("GET", f"/v1/mailings/m/recipients/{contact}/history")["signals"]
    return sum(1 for s in history if s["source"] == "system" and s["maps_to"] != "sent_to_provider")


@pytest.mark.timeout(60)
def test_serve_sweeps_every_interval_and_checks_a_recipient_once_an_hour(tmp_path: Path, processes: list[Process]) -> None:
    server, http, _ = serve(tmp_path, processes, SWEEP_INTERVAL_SECONDS="0.2")
    http.ok("POST", "/v1/mailings", {"id": "m", "name": "M", "category": "bulk", "provider": "unione"})
    http.ok("POST", "/v1/mailings/m/audience", {"recipients": [{"contact_id": "a", "email": "a@example.com"}]})
    http.ok("POST", "/v1/mailings/m/dispatch")
    deadline = time.monotonic() + 20
    while "1 confirmation checks recorded" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # five more sweeps
    http.wait_caught_up()
    assert confirmation_checks(http, "a") in (1, 2)  # 2 only when the clock crossed an hour meanwhile
    assert server.output().count("confirmation checks recorded") == confirmation_checks(http, "a")


@pytest.mark.timeout(60)
def test_project_sweeps_every_interval(tmp_path: Path, processes: list[Process]) -> None:
    from application.config import Settings
    from application.service import ResponsesApp

    url = f"sqlite:///{tmp_path / 'responses.db'}"
    app = ResponsesApp(Settings(database_url=url))
    app.create_mailing({"id": "m", "name": "M", "category": "bulk", "provider": "unione"})
    app.add_audience("m", [{"contact_id": "a", "email": "a@example.com"}, {"contact_id": "b", "email": "b@example.com"}])
    app.close()
    from tests.helpers.e2e import service_env

    env = service_env(url, SWEEP_INTERVAL_SECONDS="0.2")
    projector = start(processes, "project", responses_command("project"), env, tmp_path)
    projector.wait_for_output("following the journal")
    app = ResponsesApp(Settings(database_url=url))
    try:
        app.dispatch("m")  # the projector's views answer the dispatch's read
    finally:
        app.close()
    projector.wait_for_output("2 confirmation checks recorded")
    assert projector.stop() == 0
    assert "Traceback" not in projector.output()
