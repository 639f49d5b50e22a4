"""Kept inputs: unmatched signals (and their re-matching), quarantine, notices, test sends; paging."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from tests.helpers.http import EE_TOKEN, SPRING, elastic_lines, error_of, sign_unione, sqlite_only


def unione(*events: dict[str, Any]) -> bytes:
    wrapped = [{"event_name": "transactional_email_status", "event_data": e} for e in events]
    return sign_unione(json.dumps({"auth": "AUTH_PLACEHOLDER", "events_by_user": [{"user_id": 1, "events": wrapped}]}).encode())


def event(contact: str | None, email: str, status: str = "delivered", mailing: str = "later") -> dict[str, Any]:
    data: dict[str, Any] = {"job_id": "j", "email": email, "status": status, "event_time": "2026-03-14 10:00:00"}
    if contact:
        data["metadata"] = {"mailing_id": mailing, "contact_id": contact}
    return data


def test_empty_lists(api: FlaskClient) -> None:
    for path in ("/v1/unmatched", "/v1/quarantine", "/v1/notices"):
        assert api.get(path).json == {"items": [], "next": None}


def test_unmatched_signals_are_listed_then_claimed_by_their_recipient(api: FlaskClient, client: FlaskClient) -> None:
    body = unione(event("c-1", "ann@example.com"), event("c-1", "ann@example.com", "opened"), event(None, "who@example.com"))
    assert client.post("/v1/webhooks/unione", data=body, content_type="application/json").json["unmatched"] == 3
    assert len(api.get("/v1/unmatched").json["items"]) == 3
    named = api.get("/v1/unmatched?mailing_id=later").json["items"]
    assert [(i["correlation"]["contact_id"], i["signal"]["fields"]["status"]) for i in named] == [
        ("c-1", "delivered"),
        ("c-1", "opened"),
    ]

    api.post("/v1/mailings", json={"id": "later", "name": "Later", "category": "trigger", "provider": "unione"})
    api.post("/v1/mailings/later/audience", json={"recipients": [{"contact_id": "c-1", "email": "ann@example.com"}]})
    remaining = api.get("/v1/unmatched").json["items"]
    assert [i["correlation"]["email"] for i in remaining] == ["who@example.com"]
    row = api.get("/v1/mailings/later/audience").json["items"][0]
    assert (row["response"]["code"], row["opens"]) == ("opened", 1)


def test_unmatched_pages(api: FlaskClient, client: FlaskClient) -> None:
    body = unione(*(event(f"c-{i}", f"p{i}@example.com") for i in range(5)))
    client.post("/v1/webhooks/unione", data=body, content_type="application/json")
    first = api.get("/v1/unmatched?limit=3").json
    assert len(first["items"]) == 3 and first["next"]
    second = api.get(f"/v1/unmatched?limit=3&cursor={first['next']}").json
    assert len(second["items"]) == 2 and second["next"] is None
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert len(set(ids)) == 5


@sqlite_only
def test_bad_paging_is_422(api: FlaskClient) -> None:
    for path in ("/v1/unmatched?limit=1001", "/v1/quarantine?limit=0", "/v1/notices?cursor=zzz", "/v1/unmatched?limit=x"):
        r = api.get(path)
        assert r.status_code == 422, path
        assert error_of(r)["code"] == "invalid"


def test_test_sends_of_a_mailing(api: FlaskClient, client: FlaskClient, spring: dict[str, Any]) -> None:
    assert api.get(f"/v1/mailings/{SPRING}/test-sends").json == {"items": [], "next": None}
    qa = event("qa-7", "qa@example.com", mailing=SPRING)
    qa["metadata"]["test"] = "true"
    other = event("qa-8", "qa@example.com", mailing="another")
    other["metadata"]["test"] = True
    client.post("/v1/webhooks/unione", data=unione(qa, other), content_type="application/json")
    items = api.get(f"/v1/mailings/{SPRING}/test-sends").json["items"]
    assert [(i["mailing_id"], i["contact_id"]) for i in items] == [(SPRING, "qa-7")]
    assert api.get("/v1/unmatched").json["items"] == []  # test sends are not unmatched signals


def test_another_providers_notification_about_a_mailing_is_unmatched_with_its_reason(
    api: FlaskClient, client: FlaskClient, spring: dict[str, Any]
) -> None:
    """Issue 7, failure 11: Elastic Email naming a UniOne mailing's recipient was counted (doubled clicks)."""
    line = elastic_lines()[2]  # Anna's click, postback spring-sale:c-1001
    assert client.get(f"/v1/webhooks/elasticemail?{line}&token={EE_TOKEN}").json == {
        "accepted": 0,
        "duplicates": 0,
        "unmatched": 1,
        "quarantined": 0,
    }
    client.post(
        "/v1/webhooks/unione", data=unione(event("c-9", "zoe@example.com", mailing=SPRING)), content_type="application/json"
    )
    items = api.get("/v1/unmatched").json["items"]
    assert [(i["source"], i["correlation"]["contact_id"], i["reason"]) for i in items] == [
        ("elasticemail", "c-1001", "provider_mismatch"),
        ("unione", "c-9", "no_recipient"),
    ]
    assert api.get(f"/v1/mailings/{SPRING}/summary").json["total_clicks"] == 0
