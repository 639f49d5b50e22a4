"""The seed's lifecycle over real HTTP: `responses serve` on SQLite; gunicorn (2 workers) + `responses project` on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import gunicorn.config

from tests.helpers.e2e import (
    API_TOKEN,
    BIN,
    EE_TOKEN,
    MAX_BODY,
    UNIONE_KEY,
    Http,
    Process,
    free_port,
    responses_command,
    service_env,
    start,
)
from tests.helpers.http import SPRING
from tests.helpers.http import SPRING_AUDIENCE as AUDIENCE
from tests.helpers.stores import FIXTURES

NOTHING = {"accepted": 0, "duplicates": 0, "unmatched": 0, "quarantined": 0}


def signed(body: bytes) -> bytes:
    digest = hashlib.md5(body.replace(b"AUTH_PLACEHOLDER", UNIONE_KEY.encode())).hexdigest()
    return body.replace(b"AUTH_PLACEHOLDER", digest.encode())


def unione_events(*event_data: dict[str, Any]) -> bytes:
    events = [{"event_name": "transactional_email_status", "event_data": d} for d in event_data]
    return signed(json.dumps({"auth": "AUTH_PLACEHOLDER", "events_by_user": [{"user_id": 1, "events": events}]}).encode())


def dina(status: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": "job-d",
        "metadata": {"mailing_id": SPRING, "contact_id": "c-1006"},
        "email": "dina@example.com",
        "status": status,
        "event_time": at,
        **extra,
    }


def webhook(http: Http, path: str, data: bytes, **headers: str) -> dict[str, int]:
    return http.ok("POST", path, data=data, headers={"Content-Type": "application/json", **headers}, auth=False)


def seed_lifecycle(http: Http) -> None:
    """Mailing, audience, dispatch, provider batches (with a retry, out of order), Elastic Email, then the answers."""
    mailing = {"id": SPRING, "name": "Spring sale", "category": "bulk", "email_type": "news", "provider": "unione"}
    assert http.call("POST", "/v1/mailings", mailing)[0] == 201
    assert http.call("POST", "/v1/mailings", mailing)[0] == 200
    assert http.call("POST", "/v1/mailings", {**mailing, "name": "Other"})[0] == 409
    assert http.ok("POST", f"/v1/mailings/{SPRING}/audience", {"recipients": AUDIENCE}) == {"added": 6, "already_present": 0}
    dispatch = http.ok("POST", f"/v1/mailings/{SPRING}/dispatch")
    assert dispatch["outcomes"] == {"sent_to_provider": 6}
    assert dispatch["send"][0] == {
        "contact_id": "c-1001",
        "email": "anna@example.com",
        "metadata": {"mailing_id": SPRING, "contact_id": "c-1001"},
    }

    batch = signed((FIXTURES / "unione" / "batch-mixed.json").read_bytes())
    assert webhook(http, "/v1/webhooks/unione", batch) == {**NOTHING, "accepted": 8}
    assert webhook(http, "/v1/webhooks/unione", batch) == {**NOTHING, "duplicates": 8}  # the provider's retry
    assert http.call("POST", "/v1/webhooks/unione", data=batch.replace(b"anna@", b"hanna@"), auth=False)[0] == 401

    # out of order: the click arrives first, the delivery and the open after it
    click = dina("clicked", "2026-03-14 10:40:00", url="https://shop.example.com/new")
    assert webhook(http, "/v1/webhooks/unione", unione_events(click)) == {**NOTHING, "accepted": 1}
    late = unione_events(dina("opened", "2026-03-14 10:39:00"), dina("delivered", "2026-03-14 10:04:15"))
    assert webhook(http, "/v1/webhooks/unione", late) == {**NOTHING, "accepted": 2}

    lines = [
        line
        for line in (FIXTURES / "elasticemail" / "notifications.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    # the mailing goes through UniOne: Elastic Email's notifications about it are kept apart, never counted
    for line in lines[:-1]:
        assert http.ok("GET", f"/v1/webhooks/elasticemail?{line}&token={EE_TOKEN}", auth=False) == {**NOTHING, "unmatched": 1}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert http.ok("POST", f"/v1/webhooks/elasticemail?token={EE_TOKEN}", data=lines[-1].encode(), headers=form, auth=False) == {
        **NOTHING,
        "unmatched": 1,
    }
    assert http.call("GET", f"/v1/webhooks/elasticemail?{lines[0]}&token=wrong", auth=False)[0] == 401

    # a chunked body over the limit is refused without being stored
    status, error = http.chunked("/v1/webhooks/unione", (b" " * 8192 for _ in range(2 * MAX_BODY // 8192)))
    assert status == 413 and error["error"]["code"] == "payload_too_large"
    # the same on an API route (a truncated document is not a 400)
    bearer = {"Authorization": f"Bearer {http.token}"}
    status, error = http.chunked("/v1/rules", (b" " * 8192 for _ in range(2 * MAX_BODY // 8192)), headers=bearer)
    assert status == 413 and error["error"]["code"] == "payload_too_large"

    http.wait_caught_up()
    check_answers(http)


def check_answers(http: Http) -> None:
    items = http.ok("GET", f"/v1/mailings/{SPRING}/audience")["items"]
    rows = {i["contact_id"]: (i["response"]["code"], i["response"]["reason"], i["opens"], i["clicks"]) for i in items}
    assert rows == {
        "c-1001": ("clicked", None, 1, 1),  # UniOne open + click; Elastic Email's open + click are another provider's
        "c-1002": ("soft_bounce", "will_retry", 0, 0),
        "c-1003": ("hard_bounce", "unknown_recipient", 0, 0),
        "c-1004": ("unsubscribed", None, 0, 0),
        "c-1005": ("spam_complaint", None, 0, 0),
        "c-1006": ("clicked", None, 1, 1),
    }
    ru = http.ok("GET", f"/v1/mailings/{SPRING}/audience?response=spam_complaint&lang=ru")["items"]
    assert [i["response"]["name"] for i in ru] == ["Отправлено в спам"]

    summary = http.ok("GET", f"/v1/mailings/{SPRING}/summary")
    assert (summary["audience"], summary["sent"], summary["delivered"]) == (6, 6, 4)
    assert summary["responses"] == {"clicked": 2, "hard_bounce": 1, "soft_bounce": 1, "spam_complaint": 1, "unsubscribed": 1}
    assert (summary["unique_clicks"], summary["total_clicks"], summary["total_opens"]) == (2, 2, 2)
    unmatched = http.ok("GET", "/v1/unmatched")["items"]
    assert unmatched and {i["reason"] for i in unmatched} == {"provider_mismatch"}
    assert summary["rates"]["delivery"] == round(4 / 6, 4)
    assert summary["errors"]["not_delivered"] == {
        "hard_bounce": {"count": 1, "reasons": {"unknown_recipient": 1}},
        "soft_bounce": {"count": 1, "reasons": {"will_retry": 1}},
    }

    links = http.ok("GET", f"/v1/mailings/{SPRING}/links")["links"]
    assert {link["url"]: (link["clicks"], link["unique_clicks"]) for link in links} == {
        "https://shop.example.com/sale?utm_campaign=spring": (1, 1),
        "https://shop.example.com/new": (1, 1),
    }

    flags = {cid: http.ok("GET", f"/v1/contacts/{cid}")["flags"] for cid in ("c-1001", "c-1003", "c-1004", "c-1005")}
    assert flags["c-1001"] == {"do_not_use_email": False, "email_is_actual": True, "unsubscribed_types": []}
    assert flags["c-1003"]["do_not_use_email"] is True and flags["c-1003"]["email_is_actual"] is False
    assert flags["c-1004"]["do_not_use_email"] is True
    assert flags["c-1005"]["do_not_use_email"] is True
    assert [n["kind"] for n in http.ok("GET", "/v1/notices")["items"]] == ["transactional_spam_block"]
    assert http.ok("GET", "/v1/quarantine")["items"] == []


def assert_logs_keep_secrets(*processes: Process) -> None:
    logs = "".join(p.output() for p in processes)
    for secret in (API_TOKEN, UNIONE_KEY, EE_TOKEN, "anna@example.com", "nobody@example.net"):
        assert secret not in logs, f"{secret!r} in the logs"


def test_serve_on_sqlite(tmp_path: Path, processes: list[Process]) -> None:
    port = free_port()
    env = service_env(f"sqlite:///{tmp_path / 'responses.db'}")
    server = start(processes, "serve", responses_command("serve", "--port", str(port)), env, tmp_path)
    http = Http(port)
    http.wait_until_up(server)
    assert http.call("GET", "/v1/mailings", auth=False)[0] == 401
    seed_lifecycle(http)
    assert "openapi" in http.ok("GET", "/openapi.json", auth=False)
    assert server.stop() == 0
    assert_logs_keep_secrets(server)


def gunicorn_command(*args: str) -> list[str]:
    """gunicorn, without the control socket newer versions open under ~/.gunicorn (shared by concurrent runs)."""
    quiet = ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in gunicorn.config.KNOWN_SETTINGS) else []
    return [str(BIN / "gunicorn"), *quiet, *args]


def test_gunicorn_and_project_on_postgresql(tmp_path: Path, processes: list[Process], postgres_url: str) -> None:
    env = service_env(postgres_url)
    projector = start(processes, "project", responses_command("project", "--report-every", "0.5"), env, tmp_path)
    projector.wait_for_output("following the journal")  # the schema exists before the workers start
    port = free_port()
    workers = start(
        processes, "gunicorn", gunicorn_command("-w", "2", "-b", f"127.0.0.1:{port}", "interface.wsgi:app"), env, tmp_path
    )
    http = Http(port)
    http.wait_until_up(workers)
    seed_lifecycle(http)
    assert workers.stop() == 0
    assert projector.stop() == 0
    assert "views at" in projector.output()
    assert_logs_keep_secrets(projector, workers)


def test_serve_creates_a_token_once_when_none_is_configured(tmp_path: Path, processes: list[Process]) -> None:
    env = service_env(f"sqlite:///{tmp_path / 'responses.db'}")
    del env["RESPONSES_API_TOKENS"]
    port = free_port()
    first = start(processes, "serve-1", responses_command("serve", "--port", str(port)), env, tmp_path)
    Http(port).wait_until_up(first)
    token_file = tmp_path / "var" / "api-token"
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert Http(port, token).call("GET", "/v1/mailings")[0] == 200
    assert Http(port, "guess").call("GET", "/v1/mailings")[0] == 401
    first.stop()
    assert first.output().count(token) == 1  # printed once, never logged

    again = start(processes, "serve-2", responses_command("serve", "--port", str(port)), env, tmp_path)
    Http(port).wait_until_up(again)
    assert Http(port, token).call("GET", "/v1/mailings")[0] == 200
    again.stop()
    assert token not in again.output()


def test_simulate_against_a_running_service(tmp_path: Path, processes: list[Process]) -> None:
    port = free_port()
    env = service_env(f"sqlite:///{tmp_path / 'responses.db'}")
    server = start(processes, "serve", responses_command("serve", "--port", str(port)), env, tmp_path)
    Http(port).wait_until_up(server)
    simulation = start(
        processes,
        "simulate",
        responses_command(
            "simulate", "--recipients", "300", "--url", f"http://127.0.0.1:{port}", "--seed", "7", "--mailing", "sim"
        ),
        env,
        tmp_path,
    )
    assert simulation.proc.wait(timeout=60) == 0, simulation.output()
    report = json.loads(simulation.output()[simulation.output().index("{") :])
    assert report["mailing_id"] == "sim" and report["recipients"] == 300
    assert report["answers"]["accepted"] == report["events"]
    assert report["answers"]["duplicates"] == 100 * report["retried_batches"]
    assert report["summary"]["audience"] == 300


def test_the_follower_opening_sealed_fields_never_blocks_a_writer(tmp_path: Path, processes: list[Process]) -> None:
    """Seen in `make bench`: the follower opened sealed names through a second connection while its batch held
    the writer; a request waiting for the writer held the pool's queue, so both waited 5 s and the request
    answered 503. Audiences added and dispatched at once, as fast as a sender does it, answer 200."""
    port = free_port()
    env = service_env(f"sqlite:///{tmp_path / 'responses.db'}")
    server = start(processes, "serve", responses_command("serve", "--port", str(port)), env, tmp_path)
    http = Http(port)
    http.wait_until_up(server)
    for n in range(3):
        mailing = f"fast-{n}"
        http.ok("POST", "/v1/mailings", {"id": mailing, "name": mailing, "category": "bulk", "provider": "unione"})
        for part in range(4):  # bodies under the tests' MAX_BODY_BYTES
            audience = [
                {"contact_id": f"c{n}-{part}-{i}", "email": f"u{n}-{part}-{i}@example.com", "name": f"Name {i}"}
                for i in range(250)
            ]
            status, answer = http.call("POST", f"/v1/mailings/{mailing}/audience", {"recipients": audience})
            assert status == 200, answer
        status, answer = http.call("POST", f"/v1/mailings/{mailing}/dispatch", {})
        assert status == 200, answer
        assert len(answer["send"]) == 1000
    assert server.stop() == 0
