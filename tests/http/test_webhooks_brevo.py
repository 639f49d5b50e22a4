"""Brevo webhooks (issue 17, CONTRACT §6): the secret BREVO_WEBHOOK_TOKEN as ?token=, HTTP Basic password or
Bearer; anything else is 401 with nothing stored; batched arrays; X-Mailin-custom names the recipient, else
the address; proxy opens are machine opens; a retry is a duplicate; on both stores."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from application.service import ResponsesApp
from tests.helpers.http import BREVO_TOKEN, MAX_BODY, SPRING, error_of, fixture_bytes, sqlite_only, start_spring

BREVO = "/v1/webhooks/brevo"
NOTHING = {"accepted": 0, "duplicates": 0, "unmatched": 0, "quarantined": 0}


def answer(**counts: int) -> dict[str, int]:
    return {**NOTHING, **counts}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def post(client: FlaskClient, body: bytes, query: str = f"?token={BREVO_TOKEN}", **headers: str) -> Any:
    return client.post(BREVO + query, data=body, content_type="application/json", headers=headers)


def audience(api: FlaskClient) -> dict[str, dict[str, Any]]:
    return {i["contact_id"]: i for i in api.get(f"/v1/mailings/{SPRING}/audience").json["items"]}


@pytest.fixture
def spring_brevo(api: FlaskClient) -> dict[str, Any]:
    return start_spring(api, "brevo")


def test_a_batch_folds_and_its_retry_is_duplicates(client: FlaskClient, api: FlaskClient, spring_brevo: dict[str, Any]) -> None:
    body = fixture_bytes("brevo/batch.json")
    assert post(client, body).json == answer(accepted=10)
    assert post(client, body, query="", **basic("brevo", BREVO_TOKEN)).json == answer(duplicates=10)
    rows = audience(api)
    assert {c: (r["response"]["code"], r["response"]["reason"]) for c, r in rows.items()} == {
        "c-1001": ("clicked", None),
        "c-1002": ("soft_bounce", "other"),
        "c-1003": ("hard_bounce", "other"),
        "c-1004": ("unsubscribed", None),
        "c-1005": ("spam_complaint", None),
        "c-1006": ("opened_machine", None),  # a proxy open (Apple Mail Privacy Protection): not the recipient's
    }
    assert (rows["c-1001"]["opens"], rows["c-1001"]["clicks"]) == (1, 1)
    assert rows["c-1006"]["opens"] == 0  # machine opens are not counted (count_machine_opens off)


@pytest.mark.parametrize("form", ["query", "basic", "bearer"])
def test_each_form_of_the_secret_authenticates(
    client: FlaskClient, api: FlaskClient, spring_brevo: dict[str, Any], form: str
) -> None:
    event = json.loads(fixture_bytes("brevo/batch.json"))[8]  # dina delivered
    body = json.dumps(event).encode()
    headers = {"query": {}, "basic": basic("any-user", BREVO_TOKEN), "bearer": {"Authorization": f"Bearer {BREVO_TOKEN}"}}[form]
    query = f"?token={BREVO_TOKEN}" if form == "query" else ""
    assert post(client, body, query=query, **headers).json == answer(accepted=1)
    assert audience(api)["c-1006"]["response"]["code"] == "delivered"


@sqlite_only  # refused before anything reaches a store
@pytest.mark.parametrize(
    "query, headers",
    [
        ("", {}),
        ("?token=", {}),
        ("?token=wrong", {}),
        (f"?token={BREVO_TOKEN}x", {}),
        ("", {"Authorization": "Bearer wrong"}),
        ("", {"Authorization": f"Basic {base64.b64encode(f'{BREVO_TOKEN}:'.encode()).decode()}"}),  # the secret as the user
        ("", {"Authorization": f"Token {BREVO_TOKEN}"}),
    ],
    ids=["none", "empty", "wrong", "longer", "wrong-bearer", "secret-as-user", "other-scheme"],
)
def test_a_wrong_or_missing_secret_is_401_and_stores_nothing(
    client: FlaskClient, app: ResponsesApp, query: str, headers: dict[str, str]
) -> None:
    r = post(client, fixture_bytes("brevo/batch.json"), query=query, **headers)
    assert r.status_code == 401
    assert error_of(r)["code"] == "unauthorized"
    assert app.journal_position() == 0


@sqlite_only
def test_brevo_without_a_configured_secret_is_401(make_client, app: ResponsesApp) -> None:
    client = make_client(brevo_webhook_token=None)
    assert post(client, fixture_bytes("brevo/batch.json")).status_code == 401
    assert app.journal_position() == 0


def test_without_x_mailin_custom_the_address_names_the_recipient(
    client: FlaskClient, api: FlaskClient, spring_brevo: dict[str, Any]
) -> None:
    now = int(datetime.now(UTC).timestamp())
    events = [  # Brevo's own contact_id and id name its contact and account, never ours
        {
            "event": "delivered",
            "email": "Boris@Example.org",
            "message-id": "<m-9@relay>",
            "ts_event": now,
            "contact_id": 42,
            "id": 7,
        },
        {
            "event": "opened",
            "email": "boris@example.org",
            "message-id": "<m-9@relay>",
            "ts_event": now + 5,
            "X-Mailin-custom": "not JSON",
        },
    ]
    assert post(client, json.dumps(events).encode()).json == answer(accepted=2)
    assert audience(api)["c-1002"]["response"]["code"] == "opened"


def test_malformed_events_are_quarantined_alone(client: FlaskClient, api: FlaskClient, spring_brevo: dict[str, Any]) -> None:
    events: list[Any] = json.loads(fixture_bytes("brevo/batch.json"))[8:9]
    events += [
        {"event": "delivered"},
        {"email": "x@example.com"},
        {"event": "opened", "email": "a@example.com", "ts_epoch": "soon"},
        7,
    ]
    assert post(client, json.dumps(events).encode()).json == answer(accepted=1, quarantined=4)
    assert post(client, b'{"event": ').json == answer(quarantined=1)  # not JSON: quarantined whole
    assert len(api.get("/v1/quarantine").json["items"]) == 5
    assert BREVO_TOKEN not in json.dumps(api.get("/v1/quarantine").json)


def test_a_gzip_batch_is_read_and_the_limit_holds_after_gunzip(
    client: FlaskClient, app: ResponsesApp, spring_brevo: dict[str, Any]
) -> None:
    body = gzip.compress(fixture_bytes("brevo/batch.json"))
    assert post(client, body, **{"Content-Encoding": "gzip"}).json == answer(accepted=10)
    before = app.journal_position()
    bomb = gzip.compress(b"[" + b" " * (MAX_BODY * 4) + b"]")
    assert post(client, bomb, **{"Content-Encoding": "gzip"}).status_code == 413
    assert post(client, b"[" + b" " * MAX_BODY + b"]").status_code == 413
    assert app.journal_position() == before
