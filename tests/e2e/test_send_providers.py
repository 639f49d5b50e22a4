"""`responses send` for the providers added by issue 17: it signs or authenticates a file as the provider does
and posts it to a running `responses serve`; the retry is a duplicate, a wrong secret is the service's 401."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers.e2e import Http, Process, free_port, responses_command, service_env, start
from tests.helpers.http import SPRING, SPRING_AUDIENCE
from tests.helpers.stores import FIXTURES

NOTHING = {"accepted": 0, "duplicates": 0, "unmatched": 0, "quarantined": 0}
SECRETS = {
    "MAILGUN_WEBHOOK_SIGNING_KEYS": "e2e-mailgun-signing-key",
    "BREVO_WEBHOOK_TOKEN": "e2e-brevo-secret",
    "POSTMARK_WEBHOOK_TOKEN": "e2e-postmark-secret",
}


def send(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(responses_command("send", *args), env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("provider, fixture, events", [("mailgun", "mailgun/events.json", 9), ("brevo", "brevo/batch.json", 10)])
def test_send_signs_a_file_as_the_provider_does(
    tmp_path: Path, processes: list[Process], provider: str, fixture: str, events: int
) -> None:
    port = free_port()
    env = service_env(f"sqlite:///{tmp_path / 'responses.db'}", **SECRETS)
    server = start(processes, "serve", responses_command("serve", "--port", str(port)), env, tmp_path)
    http = Http(port)
    http.wait_until_up(server)
    http.ok("POST", "/v1/mailings", {"id": SPRING, "name": "Spring sale", "category": "bulk", "provider": provider})
    http.ok("POST", f"/v1/mailings/{SPRING}/audience", {"recipients": SPRING_AUDIENCE})
    http.ok("POST", f"/v1/mailings/{SPRING}/dispatch")

    path = str(FIXTURES / fixture)
    first = send(env, provider, path, "--url", http.base)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {**NOTHING, "accepted": events}
    again = send(env, provider, path, "--url", http.base)
    assert json.loads(again.stdout) == {**NOTHING, "duplicates": events}

    wrong = send({**env, **{name: "not-the-secret" for name in SECRETS}}, provider, path, "--url", http.base)
    assert wrong.returncode == 1 and "the service answered 401" in wrong.stderr
    unset = send({k: v for k, v in env.items() if k not in SECRETS}, provider, path, "--url", http.base)
    assert unset.returncode == 2 and "is not set" in unset.stderr
