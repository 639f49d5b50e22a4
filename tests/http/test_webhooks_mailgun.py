"""Mailgun webhooks (issue 17, CONTRACT §6): signed with a webhook signing key, refused when forged, altered,
signed with another key or older than 24 h (401, nothing stored); a retry inside the window is a duplicate;
django-anymail's Mailgun payloads fold as the contract's table says, on both stores."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from application.service import ResponsesApp
from tests.helpers.http import SPRING, error_of, fixture_json, sign_mailgun, sqlite_only, start_spring

MAILGUN = "/v1/webhooks/mailgun"
NOTHING = {"accepted": 0, "duplicates": 0, "unmatched": 0, "quarantined": 0}


def answer(**counts: int) -> dict[str, int]:
    return {**NOTHING, **counts}


def post(client: FlaskClient, body: bytes) -> Any:
    return client.post(MAILGUN, data=body, content_type="application/json")


def responses(api: FlaskClient) -> dict[str, tuple[str, str | None]]:
    items = api.get(f"/v1/mailings/{SPRING}/audience").json["items"]
    return {i["contact_id"]: (i["response"]["code"], i["response"]["reason"]) for i in items}


@pytest.fixture
def spring_mailgun(api: FlaskClient) -> dict[str, Any]:
    return start_spring(api, "mailgun")


def test_the_fixture_events_fold_and_their_retries_are_duplicates(
    client: FlaskClient, api: FlaskClient, spring_mailgun: dict[str, Any]
) -> None:
    bodies = [sign_mailgun(event) for event in fixture_json("mailgun/events.json")]
    for body in bodies:
        assert post(client, body).json == answer(accepted=1)
    assert responses(api) == {
        "c-1001": ("clicked", None),
        "c-1002": ("soft_bounce", "will_retry"),
        "c-1003": ("hard_bounce", "other"),
        "c-1004": ("unsubscribed", None),
        "c-1005": ("spam_complaint", None),
        "c-1006": ("delivered", None),
    }
    # Mailgun retries with the same event id (a new token and timestamp each time): duplicates inside the window
    for event in fixture_json("mailgun/events.json"):
        event["signature"]["token"] = "another-token-for-the-retry-0123456789abcdef0123"
        assert post(client, sign_mailgun(event, at=time.time() - 23 * 3600)).json == answer(duplicates=1)
    row = {i["contact_id"]: i for i in api.get(f"/v1/mailings/{SPRING}/audience").json["items"]}["c-1001"]
    assert (row["opens"], row["clicks"]) == (1, 1)
    history = api.get(f"/v1/mailings/{SPRING}/recipients/c-1003/history").json["signals"]
    mailgun = [s for s in history if s["source"] == "mailgun"]
    assert [s["maps_to"] for s in mailgun] == ["hard_bounce"]
    assert mailgun[0]["raw"]["delivery-status"]["code"] == 550  # the whole event-data kept (sealed)


def test_an_event_without_user_variables_is_matched_by_its_address(
    client: FlaskClient, api: FlaskClient, spring_mailgun: dict[str, Any]
) -> None:
    event = fixture_json("mailgun/events.json")[0]
    data = event["event-data"]
    data.update({"user-variables": {}, "recipient": "Dina@Example.com", "id": "no-metadata-1", "timestamp": time.time()})
    assert post(client, sign_mailgun(event)).json == answer(accepted=1)
    assert responses(api)["c-1006"] == ("delivered", None)


def test_a_rejected_event_names_its_recipient_in_the_to_header_and_suppresses_no_one(
    client: FlaskClient, api: FlaskClient, spring_mailgun: dict[str, Any]
) -> None:
    event = {  # django-anymail's test_rejected_event (a request Mailgun refused: no "recipient")
        "event-data": {
            "event": "rejected",
            "id": "rejected-1",
            "timestamp": time.time(),
            "log-level": "warn",
            "reject": {"reason": "Sandbox subdomains are for test purposes only.", "description": ""},
            "message": {"headers": {"to": "Boris <boris@example.org>", "message-id": "m-1", "from": "t@example.org"}},
        }
    }
    assert post(client, sign_mailgun(event)).json == answer(accepted=1)
    assert responses(api)["c-1002"] == ("send_error", "technical")
    assert api.get("/v1/contacts/c-1002").json["flags"]["do_not_use_email"] is False


@sqlite_only  # refused before anything reaches a store
@pytest.mark.parametrize("case", ["unsigned", "wrong-key", "altered-token", "altered-timestamp", "forged", "stale", "future"])
def test_bad_mailgun_signatures_are_401_and_store_nothing(client: FlaskClient, app: ResponsesApp, case: str) -> None:
    event = fixture_json("mailgun/events.json")[0]
    body = sign_mailgun(event)
    if case == "unsigned":
        body = json.dumps({"event-data": event["event-data"]}).encode()
    elif case == "wrong-key":
        body = sign_mailgun(event, key="somebody-elses-signing-key")
    elif case == "altered-token":
        signed = json.loads(body)
        signed["signature"]["token"] = signed["signature"]["token"][:-1] + "0"
        body = json.dumps(signed).encode()
    elif case == "altered-timestamp":  # a stale body made to look fresh
        signed = json.loads(sign_mailgun(event, at=time.time() - 25 * 3600))
        signed["signature"]["timestamp"] = str(int(time.time()))
        body = json.dumps(signed).encode()
    elif case == "forged":
        body = b'{"signature": {"timestamp": "1", "token": "t", "signature": "00"}, "event-data": {"event": "opened"}}'
    elif case == "stale":
        body = sign_mailgun(event, at=time.time() - 24 * 3600 - 60)
    else:
        body = sign_mailgun(event, at=time.time() + 3600)
    r = post(client, body)
    assert r.status_code == 401, r.json
    assert error_of(r)["code"] == "unauthorized"
    assert app.journal_position() == 0


@sqlite_only
def test_mailgun_without_configured_keys_is_401(make_client, app: ResponsesApp) -> None:
    client = make_client(mailgun_webhook_signing_keys=())
    assert post(client, sign_mailgun(fixture_json("mailgun/events.json")[0])).status_code == 401
    assert app.journal_position() == 0


def test_a_signed_body_that_is_no_mailgun_event_is_quarantined(client: FlaskClient, api: FlaskClient) -> None:
    assert post(client, sign_mailgun({"event-data": "not an object"})).json == answer(quarantined=1)
    assert post(client, sign_mailgun({"event-data": {"event": "opened"}})).json == answer(quarantined=1)  # no recipient
    assert post(client, sign_mailgun({})).json == answer(quarantined=1)  # no event-data: quarantined whole
    errors = [i["error"] for i in api.get("/v1/quarantine").json["items"]]
    assert len(errors) == 3 and any("recipient" in e for e in errors)


def test_suppression_list_failures_are_rejections(client: FlaskClient, api: FlaskClient, spring_mailgun: dict[str, Any]) -> None:
    event = fixture_json("mailgun/events.json")[4]  # the permanent failure of c-1003
    data = event["event-data"]
    data.update({"reason": "suppress-bounce", "id": "suppressed-1"})
    data["delivery-status"] = {"code": 605, "message": "Not delivering to previously bounced address"}
    assert post(client, sign_mailgun(copy.deepcopy(event))).json == answer(accepted=1)
    assert responses(api)["c-1003"] == ("rejected", "previously_bounced")
