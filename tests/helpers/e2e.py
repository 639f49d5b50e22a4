"""End-to-end helpers: real processes of the service, their environment, and HTTP against them."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.stores import store_keys

BIN = Path(sys.executable).parent


API_TOKEN = "e2e-api-token-7f3a9c"


UNIONE_KEY = "e2e-unione-key-51d2"


EE_TOKEN = "e2e-elastic-token-0b8e"


MAX_BODY = 64 * 1024


STARTUP_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    """The process environment: the caller's, less any configuration of ours, plus exactly this."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "RESPONSES_",
                "UNIONE_",
                "ELASTICEMAIL_",
                "SENDGRID_",
                "MAILGUN_",
                "BREVO_",
                "POSTMARK_",
                "SES_",
                "DATABASE_URL",
                "MAX_BODY",
            )
        )
    }
    env.update(
        DATABASE_URL=database_url,
        RESPONSES_API_TOKENS=API_TOKEN,
        UNIONE_API_KEYS=UNIONE_KEY,
        ELASTICEMAIL_WEBHOOK_TOKEN=EE_TOKEN,
        MAX_BODY_BYTES=str(MAX_BODY),
        PYTHONUNBUFFERED="1",
    )
    if database_url.startswith("postgresql"):  # the keys settings made in code use (./var/): one journal, one key set
        env.update(store_keys())
    env.update(extra)
    return env


class Process:
    """A child process whose output goes to a file (read back for assertions and failures)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], cwd: Path):
        self.name = name
        self.log_path = cwd / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = STARTUP_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited ({self.proc.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not print {text!r} in {timeout}s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        return self.proc.returncode


class Http:
    """A tiny client of the running service."""

    def __init__(self, port: int, token: str | None = API_TOKEN):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, Any]:
        headers = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, answer = self.call(method, path, body, **kw)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer

    def chunked(self, path: str, chunks: Iterable[bytes], headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """POST with ``Transfer-Encoding: chunked`` (no Content-Length)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(
                "POST",
                path,
                body=iter(chunks),
                headers={"Content-Type": "application/json", **(headers or {})},
                encode_chunked=True,
            )
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    def wait_until_up(self, process: Process, timeout: float = STARTUP_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if process.proc.poll() is not None:
                pytest.fail(f"{process.name} exited ({process.proc.returncode}):\n{process.output()}")
            try:
                if self.call("GET", "/healthz", auth=False)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{process.name} not answering after {timeout}s:\n{process.output()}")
            time.sleep(0.05)

    def wait_caught_up(self, timeout: float = 10.0) -> dict[str, Any]:
        """Poll /readyz until the views have applied the whole journal (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            status, ready = self.call("GET", "/readyz", auth=False)
            if status == 200 and ready["lag"] == 0:
                return ready
            if time.monotonic() > deadline:
                pytest.fail(f"projection lag did not reach 0 in {timeout}s: {ready}")
            time.sleep(0.05)


def start(processes: list[Process], name: str, args: list[str], env: dict[str, str], cwd: Path) -> Process:
    process = Process(name, args, env, cwd)
    processes.append(process)
    return process


def responses_command(*args: str) -> list[str]:
    script = BIN / "responses"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "interface.cli", *args]
