"""Rules, what-if, activation jobs and audit history over HTTP (SPEC §7), on both stores."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient

from application.service import ResponsesApp
from tests.http.conftest import SPRING, error_of, fixture_bytes, sign_unione


def deliver_fixture_batch(client: FlaskClient) -> None:
    r = client.post("/v1/webhooks/unione", data=sign_unione(fixture_bytes("unione/batch-mixed.json")), content_type="application/json")
    assert r.status_code == 200, r.json


def test_history_explains_each_signal_with_as_of_and_another_version(api: FlaskClient, client: FlaskClient, spring: dict[str, Any]) -> None:
    deliver_fixture_batch(client)
    r = api.get(f"/v1/mailings/{SPRING}/recipients/c-1001/history")
    assert r.status_code == 200, r.json
    body = r.json
    assert body["response"] == {"code": "clicked", "name": "Clicked", "reason": None}
    assert (body["opens"], body["clicks"]) == (1, 1)
    steps = body["signals"]
    assert [(s["source"], s["maps_to"], s["effect"], s["why"]) for s in steps] == [
        ("system", "sent_to_provider", "set", None),
        ("unione", "delivered", "set", None),
        ("unione", "opened", "set", None),
        ("unione", "clicked", "set", None),
    ]
    assert steps[3]["raw"]["url"] == "https://shop.example.com/sale?utm_campaign=spring"
    assert steps[3]["response_after"]["code"] == "clicked"
    assert {"seq", "received_at", "occurred_at", "source", "raw", "maps_to", "effect", "why", "response_after"} <= set(steps[0])

    # as_of before the provider's signals were received: only the dispatch.
    sent_at = steps[0]["received_at"]
    r = api.get(f"/v1/mailings/{SPRING}/recipients/c-1001/history", query_string={"as_of": sent_at, "lang": "ru"})
    assert r.json["response"] == {"code": "sent_to_provider", "name": "Отправлено провайдеру", "reason": None}
    assert len(r.json["signals"]) == 1
    naive = api.get(f"/v1/mailings/{SPRING}/recipients/c-1001/history", query_string={"as_of": sent_at.replace("+00:00", "")})
    assert naive.json["response"]["code"] == "sent_to_provider" and len(naive.json["signals"]) == 1  # no offset: UTC

    # The same journal under another version.
    version = api.post("/v1/rules", json={"responses": {"opened": {"priority": 70}}}).json["version"]
    r = api.get(f"/v1/mailings/{SPRING}/recipients/c-1001/history", query_string={"rules": version})
    assert r.json["response"]["code"] == "opened"
    assert r.json["signals"][3]["why"] == "lower_priority" and r.json["signals"][3]["effect"] == "counted"

    assert error_of(api.get(f"/v1/mailings/{SPRING}/recipients/nobody/history"))["code"] == "not_found"
    assert api.get(f"/v1/mailings/{SPRING}/recipients/c-1001/history", query_string={"rules": "404"}).status_code == 404
    assert api.get(f"/v1/mailings/{SPRING}/recipients/c-1001/history", query_string={"as_of": "yesterday"}).status_code == 422


def test_rules_versions_validation_and_what_if(api: FlaskClient, client: FlaskClient, spring: dict[str, Any]) -> None:
    deliver_fixture_batch(client)
    r = api.get("/v1/rules")
    assert r.json == {"active": "1", "versions": [{"version": "1", "created_at": None, "created_by": None, "changes": {}, "based_on": None}]}
    default = api.get("/v1/rules/1").json
    assert default["statistics_period_days"] == 30 and default["responses"]["unsubscribed"] == {"final": True}

    bad = api.post("/v1/rules", json={
        "responses": {"soft_bounce": {"final": True, "priority": 3}, "opened": {"final": False}, "nope": {"final": True}},
        "statistics_period_days": -1,
        "provider_mappings": {"mailchimp": {}, "unione": {"colour:red": "delivered", "status:sent": "nope"}},
        "colour": "red",
    })
    assert bad.status_code == 422
    details = error_of(bad)["details"]
    assert set(details) == {
        "responses.soft_bounce.priority", "responses.opened.priority", "responses.nope", "statistics_period_days", "provider_mappings.mailchimp",
        "provider_mappings.unione.colour:red", "provider_mappings.unione.status:sent", "colour",
    }
    assert api.post("/v1/rules", data="{", content_type="application/json").status_code == 400
    assert api.get("/v1/rules").json["versions"][1:] == []  # nothing was stored

    created = api.post("/v1/rules", json={"responses": {"soft_bounce": {"final": True}}, "provider_mappings": {"unione": {"status:brand_new": "delivered"}}})
    assert created.status_code == 201 and created.json == {"version": "2"}
    listing = api.get("/v1/rules").json
    assert listing["active"] == "1"
    assert listing["versions"][1]["created_by"].startswith("token:") and "test-api-token" not in str(listing)
    assert listing["versions"][1]["changes"] == {
        "responses": {"soft_bounce": {"final": True}},
        "provider_mappings": {"unione": {"status:brand_new": "delivered"}},
    }
    assert api.post("/v1/rules", json={"version": "2"}).status_code == 409

    before = api.get(f"/v1/mailings/{SPRING}/audience").json
    r = api.post("/v1/what-if", json={"rules": "2", "sample": 5})
    assert r.status_code == 200, r.json
    # c-1002 had a soft bounce only: it stays; nobody else soft-bounced.
    assert r.json["changed"] == 0 and r.json["recipients"] == 6
    r = api.post("/v1/what-if", json={"rules": {"statistics_period_days": 0}, "mailings": [SPRING]})
    result = r.json
    assert result["changed"] == 5  # every provider signal was received after the dispatch
    assert {(t["from"], t["to"]) for t in result["transitions"]} >= {("clicked", "sent_to_provider"), ("hard_bounce", "sent_to_provider")}
    assert result["mailings"][SPRING]["after"]["delivered"] == 0
    # Only the hard bounce no longer suppresses: an unsubscribe or a complaint is honoured even after the period.
    assert result["contacts"]["no_longer_suppressed"] == {"count": 1, "sample": ["c-1003"]}
    assert result["examples"][0]["explanation"][-1]["why"] == "period_closed"
    assert api.get(f"/v1/mailings/{SPRING}/audience").json == before  # live views untouched

    assert api.post("/v1/what-if", json={"rules": {"statistics_period_days": "x"}}).status_code == 422
    assert api.post("/v1/what-if", json={"rules": 5}).status_code == 422
    assert api.post("/v1/what-if", json={"rules": "99"}).status_code == 404
    assert api.post("/v1/what-if", json={"rules": "2", "mailings": ["nope"]}).status_code == 404


def test_activation_job_swaps_the_views(api: FlaskClient, client: FlaskClient, spring: dict[str, Any], app: ResponsesApp) -> None:
    deliver_fixture_batch(client)
    version = api.post("/v1/rules", json={"responses": {"soft_bounce": {"final": True}, "clicked": {"priority": 5}}}).json["version"]
    r = api.post(f"/v1/rules/{version}/activate")
    assert r.status_code == 202
    job = r.json["job"]
    assert api.get(f"/v1/jobs/{job}").json["status"] == "running"
    app.follower.run_jobs()  # what the projection process does
    assert api.get(f"/v1/jobs/{job}").json == {"id": job, "kind": "activate", "version": version, "status": "done", "progress": 1.0, "error": None}
    assert api.get("/v1/rules").json["active"] == version
    items = {i["contact_id"]: i["response"]["code"] for i in api.get(f"/v1/mailings/{SPRING}/audience").json["items"]}
    assert items["c-1001"] == "opened"  # a click now ranks below an open
    assert api.post("/v1/rules/404/activate").status_code == 404
    assert api.get("/v1/jobs/nope").status_code == 404


def test_openapi_documents_the_rules_routes(client: FlaskClient) -> None:
    paths = json.loads(client.get("/openapi.json").data)["paths"]
    for path in ("/v1/rules", "/v1/rules/{version}", "/v1/rules/{version}/activate", "/v1/what-if", "/v1/jobs/{job}",
                 "/v1/mailings/{mailing_id}/recipients/{contact_id}/history"):
        assert path in paths
