"""Postmark webhooks (issue 17, CONTRACT §6): the secret POSTMARK_WEBHOOK_TOKEN as ?token=, HTTP Basic password
(Postmark's https://user:secret@host/… form) or Bearer, else 401 with nothing stored; Metadata names the
recipient, else the address; a retry is a duplicate; django-anymail's records fold as the table says; both stores."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from application.service import ResponsesApp
from tests.helpers.http import POSTMARK_TOKEN, SPRING, error_of, fixture_json, sqlite_only, start_spring

POSTMARK = "/v1/webhooks/postmark"
NOTHING = {"accepted": 0, "duplicates": 0, "unmatched": 0, "quarantined": 0}
BASIC = {"Authorization": "Basic " + base64.b64encode(f"postmark:{POSTMARK_TOKEN}".encode()).decode()}


def answer(**counts: int) -> dict[str, int]:
    return {**NOTHING, **counts}


def post(client: FlaskClient, record: Any, query: str = "", headers: dict[str, str] | None = None) -> Any:
    body = record if isinstance(record, bytes) else json.dumps(record).encode()
    return client.post(
        POSTMARK + query, data=body, content_type="application/json", headers=BASIC if headers is None else headers
    )


def audience(api: FlaskClient) -> dict[str, dict[str, Any]]:
    return {i["contact_id"]: i for i in api.get(f"/v1/mailings/{SPRING}/audience").json["items"]}


@pytest.fixture
def spring_postmark(api: FlaskClient) -> dict[str, Any]:
    return start_spring(api, "postmark")


def test_the_fixture_records_fold_and_their_retries_are_duplicates(
    client: FlaskClient, api: FlaskClient, spring_postmark: dict[str, Any]
) -> None:
    records = fixture_json("postmark/records.json")
    for record in records:
        assert post(client, record).json == answer(accepted=1)
    for record in records:
        assert post(client, record, query=f"?token={POSTMARK_TOKEN}", headers={}).json == answer(duplicates=1)
    rows = audience(api)
    assert {c: (r["response"]["code"], r["response"]["reason"]) for c, r in rows.items()} == {
        "c-1001": ("clicked", None),
        "c-1002": ("soft_bounce", "will_retry"),
        "c-1003": ("hard_bounce", "unknown_recipient"),
        "c-1004": ("unsubscribed", None),
        "c-1005": ("spam_complaint", None),
        "c-1006": ("delivered", None),
    }
    assert (rows["c-1001"]["opens"], rows["c-1001"]["clicks"]) == (1, 1)
    links = api.get(f"/v1/mailings/{SPRING}/links").json["links"]
    assert [(link["url"], link["clicks"]) for link in links] == [("https://example.com/click/me", 1)]


def test_a_second_click_on_another_link_at_the_same_time_is_another_click(
    client: FlaskClient, api: FlaskClient, spring_postmark: dict[str, Any]
) -> None:
    click = fixture_json("postmark/records.json")[2]
    assert post(client, click).json == answer(accepted=1)
    assert post(client, {**click, "OriginalLink": "https://example.com/other"}).json == answer(accepted=1)
    assert audience(api)["c-1001"]["clicks"] == 2


def test_without_metadata_the_address_names_the_recipient(
    client: FlaskClient, api: FlaskClient, spring_postmark: dict[str, Any]
) -> None:
    record = fixture_json("postmark/records.json")[7]
    record.update(Recipient="Dina@Example.com", Metadata={}, DeliveredAt=datetime.now(UTC).isoformat())
    assert post(client, record).json == answer(accepted=1)
    assert audience(api)["c-1006"]["response"]["code"] == "delivered"


def test_a_reactivation_is_informational(client: FlaskClient, api: FlaskClient, spring_postmark: dict[str, Any]) -> None:
    change = {**fixture_json("postmark/records.json")[5], "SuppressSending": False, "SuppressionReason": None}
    assert post(client, change).json == answer(accepted=1)
    history = api.get(f"/v1/mailings/{SPRING}/recipients/c-1004/history").json["signals"]
    assert [(s["source"], s["why"]) for s in history][-1] == ("postmark", "informational")


@pytest.mark.parametrize("form", ["query", "basic", "bearer"])
def test_each_form_of_the_secret_authenticates(client: FlaskClient, spring_postmark: dict[str, Any], form: str) -> None:
    record = fixture_json("postmark/records.json")[7]
    headers = {"query": {}, "basic": BASIC, "bearer": {"Authorization": f"Bearer {POSTMARK_TOKEN}"}}[form]
    assert post(client, record, query=f"?token={POSTMARK_TOKEN}" if form == "query" else "", headers=headers).json == answer(
        accepted=1
    )


@sqlite_only  # refused before anything reaches a store
@pytest.mark.parametrize(
    "query, headers",
    [
        ("", {}),
        ("?token=wrong", {}),
        ("", {"Authorization": "Basic " + base64.b64encode(b"postmark:wrong").decode()}),
        ("", {"Authorization": "Bearer " + POSTMARK_TOKEN[:-1]}),
        ("?token=" + "brevo-webhook-secret", {}),  # another provider's secret
    ],
    ids=["none", "wrong-query", "wrong-basic", "truncated-bearer", "brevos-secret"],
)
def test_a_wrong_or_missing_secret_is_401_and_stores_nothing(
    client: FlaskClient, app: ResponsesApp, query: str, headers: dict[str, str]
) -> None:
    r = post(client, fixture_json("postmark/records.json")[0], query=query, headers=headers)
    assert r.status_code == 401
    assert error_of(r)["code"] == "unauthorized"
    assert app.journal_position() == 0


@sqlite_only
def test_postmark_without_a_configured_secret_is_401(make_client, app: ResponsesApp) -> None:
    assert post(make_client(postmark_webhook_token=None), fixture_json("postmark/records.json")[0]).status_code == 401
    assert app.journal_position() == 0


def test_what_is_no_postmark_record_is_quarantined(client: FlaskClient, api: FlaskClient) -> None:
    assert post(client, {"FromFull": {"Email": "from@example.org"}}).json == answer(quarantined=1)  # an inbound message
    assert post(client, {"RecordType": "Delivery", "Recipient": "a@example.com"}).json == answer(quarantined=1)  # no time
    assert post(client, [fixture_json("postmark/records.json")[0]]).json == answer(quarantined=1)  # an array: whole
    errors = [i["error"] for i in api.get("/v1/quarantine").json["items"]]
    assert len(errors) == 3 and any("DeliveredAt" in e for e in errors)
