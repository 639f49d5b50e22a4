"""Idle sockets do not take `responses serve` off the air (issue 14, item 4).

waitress's defaults (100 connections, idle ones kept 120 s) let 101 sockets that send nothing make every
probe wait. `serve` raises its soft limit of open files to the hard one and holds min(1000, that − 100)
connections, idle ones closed after 30 s. The server here starts with a soft limit of 200 open files
(the hard one untouched), so without the raise it could hold at most 100 connections.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from interface.cli.serve import CHANNEL_TIMEOUT_SECONDS, connection_limit, raise_open_files_limit
from tests.helpers.e2e import Http, Process, free_port, responses_command, service_env, start
from tests.helpers.stores import use_database

IDLE_SOCKETS = 150
LOW_SOFT_LIMIT = 200


def open_files_limits(pid: int) -> tuple[int, int]:
    """(soft, hard) "Max open files" of a running process, from /proc."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open files limit in /proc/{pid}/limits")


def idle_sockets(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that never send a byte (each accepted by the server before the next opens)."""
    opened = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        opened.append(s)
    return opened


def test_serve_answers_healthz_beside_150_idle_sockets(tmp_path: Path, processes: list[Process]) -> None:
    port = free_port()
    env = service_env(f"sqlite:///{tmp_path / 'responses.db'}")
    low_limit = ["sh", "-c", f'ulimit -Sn {LOW_SOFT_LIMIT} && exec "$@"', "sh"]
    server = start(processes, "serve", low_limit + responses_command("serve", "--port", str(port)), env, tmp_path)
    http = Http(port)
    http.wait_until_up(server)
    soft, hard = open_files_limits(server.proc.pid)
    assert soft == hard and soft > LOW_SOFT_LIMIT, (soft, hard)  # raised at start
    assert f"up to {connection_limit(soft)} connections" in server.output()
    sockets = idle_sockets(port, IDLE_SOCKETS)
    try:
        time.sleep(0.5)  # waitress has accepted them all (its loop accepts while under its limit)
        answered = []
        for _ in range(3):  # new connections each time, beside the idle ones
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                conn.settimeout(10)
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                answered.append(conn.recv(64).split(b"\r\n", 1)[0])
            except TimeoutError:
                answered.append(b"timed out")
            finally:
                conn.close()
        assert answered == [b"HTTP/1.1 200 OK"] * 3, answered
    finally:
        for s in sockets:
            s.close()
    assert server.proc.poll() is None


def test_the_connection_limit_leaves_room_for_everything_else() -> None:
    assert connection_limit(20000) == 1000
    assert connection_limit(1024) == 924
    assert connection_limit(200) == 100
    assert connection_limit(50) == 1
    assert CHANNEL_TIMEOUT_SECONDS == 30


def test_raising_the_open_files_limit_reaches_the_hard_limit() -> None:
    import resource

    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, before[1]), before[1]))
        raised = raise_open_files_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == raised
        assert raised == before[1] or before[1] == resource.RLIM_INFINITY
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_serve_on_postgresql_refuses_a_pool_smaller_than_its_threads(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from interface.cli import main

    use_database(monkeypatch, postgres_url)
    monkeypatch.setenv("RESPONSES_API_TOKENS", "t")
    monkeypatch.setenv("DATABASE_POOL_SIZE", "4")
    assert main(["serve", "--threads", "8", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "DATABASE_POOL_SIZE=4 is smaller than the 8 request threads" in err and "Traceback" not in err


# ---- gunicorn (gunicorn.conf.py) ---------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
IDLE_FOR_GUNICORN = 8  # twice a worker's threads: with sync workers, one idle socket pins the only worker


def gunicorn_command(*args: str) -> list[str]:
    import gunicorn.config

    from tests.helpers.e2e import BIN

    quiet = ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in gunicorn.config.KNOWN_SETTINGS) else []
    return [str(BIN / "gunicorn"), *quiet, "-c", str(REPO / "gunicorn.conf.py"), *args]


def healthz_over_new_connections(port: int, times: int) -> list[bytes]:
    answered = []
    for _ in range(times):
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            conn.settimeout(10)
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answered.append(conn.recv(64).split(b"\r\n", 1)[0])
        except TimeoutError:
            answered.append(b"timed out")
        finally:
            conn.close()
    return answered


def test_idle_sockets_do_not_pin_the_gunicorn_workers(tmp_path: Path, processes: list[Process]) -> None:
    port = free_port()
    env = service_env(f"sqlite:///{tmp_path / 'responses.db'}", BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="1")
    web = start(processes, "gunicorn", gunicorn_command("interface.wsgi:app"), env, tmp_path)
    Http(port).wait_until_up(web)
    sockets = idle_sockets(port, IDLE_FOR_GUNICORN)
    try:
        time.sleep(0.5)
        assert healthz_over_new_connections(port, 3) == [b"HTTP/1.1 200 OK"] * 3
    finally:
        for s in sockets:
            s.close()


def test_gunicorn_refuses_a_pool_smaller_than_a_workers_threads(tmp_path: Path) -> None:
    import subprocess

    env = service_env(
        "postgresql://nobody@127.0.0.1:9/none", DATABASE_POOL_SIZE="2", GUNICORN_THREADS="4", BIND=f"127.0.0.1:{free_port()}"
    )
    done = subprocess.run(
        gunicorn_command("interface.wsgi:app"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "DATABASE_POOL_SIZE=2 is smaller than the 4 request threads of each gunicorn worker" in done.stderr
    assert "Traceback" not in done.stderr
