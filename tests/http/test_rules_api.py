"""Rules, what-if, activation jobs and audit history over HTTP (CONTRACT §7), on both stores."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from application.service import ResponsesApp
from domain.rules import DEFAULT_RULESET, LATEST_BUILTIN
from tests.helpers.http import SPRING, error_of, fixture_bytes, sign_unione, sqlite_only
from tests.integration.test_rules_replay import campaign, say


def deliver_fixture_batch(client: FlaskClient) -> None:
    r = client.post(
        "/v1/webhooks/unione", data=sign_unione(fixture_bytes("unione/batch-mixed.json")), content_type="application/json"
    )
    assert r.status_code == 200, r.json


def test_history_explains_each_signal_with_as_of_and_another_version(
    api: FlaskClient, client: FlaskClient, spring: dict[str, Any]
) -> None:
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
    assert r.json == {  # a new database starts on the latest built-in rules: nothing to offer
        "active": "builtin-2",
        "versions": [
            {"version": "1", "created_at": None, "created_by": None, "changes": {}, "based_on": None, "builtin": True},
            {
                "version": "builtin-2",
                "created_at": None,
                "created_by": None,
                "changes": LATEST_BUILTIN.changes_from(DEFAULT_RULESET),
                "based_on": "1",
                "builtin": True,
            },
        ],
        "offered": None,
    }
    default = api.get("/v1/rules/1").json
    assert default["statistics_period_days"] == 30 and default["responses"]["unsubscribed"] == {"final": True}

    bad = api.post(
        "/v1/rules",
        json={
            "responses": {"soft_bounce": {"final": True, "priority": 3}, "opened": {"final": False}, "nope": {"final": True}},
            "statistics_period_days": -1,
            "provider_mappings": {"mailchimp": {}, "unione": {"colour:red": "delivered", "status:sent": "nope"}},
            "colour": "red",
        },
    )
    assert bad.status_code == 422
    details = error_of(bad)["details"]
    assert set(details) == {
        "responses.soft_bounce.priority",
        "responses.opened.priority",
        "responses.nope",
        "statistics_period_days",
        "provider_mappings.mailchimp",
        "provider_mappings.unione.colour:red",
        "provider_mappings.unione.status:sent",
        "colour",
    }
    assert api.post("/v1/rules", data="{", content_type="application/json").status_code == 400
    assert api.get("/v1/rules").json["versions"][2:] == []  # nothing was stored

    created = api.post(
        "/v1/rules",
        json={"responses": {"soft_bounce": {"final": True}}, "provider_mappings": {"unione": {"status:brand_new": "delivered"}}},
    )
    assert created.status_code == 201 and created.json == {"version": "2"}
    listing = api.get("/v1/rules").json
    assert listing["active"] == "builtin-2"
    assert listing["versions"][2]["created_by"].startswith("token:") and "test-api-token" not in str(listing)
    assert (listing["versions"][2]["based_on"], listing["versions"][2]["builtin"]) == ("builtin-2", False)
    assert listing["offered"] is None  # made from builtin-2
    assert listing["versions"][2]["changes"] == {
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
    assert {(t["from"], t["to"]) for t in result["transitions"]} >= {
        ("clicked", "sent_to_provider"),
        ("hard_bounce", "sent_to_provider"),
    }
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
    version = api.post("/v1/rules", json={"responses": {"soft_bounce": {"final": True}, "clicked": {"priority": 5}}}).json[
        "version"
    ]
    r = api.post(f"/v1/rules/{version}/activate")
    assert r.status_code == 202
    job = r.json["job"]
    assert api.get(f"/v1/jobs/{job}").json["status"] == "running"
    app.jobs.run()  # what the projection process does
    assert api.get(f"/v1/jobs/{job}").json == {
        "id": job,
        "kind": "activate",
        "version": version,
        "status": "done",
        "progress": 1.0,
        "error": None,
    }
    assert api.get("/v1/rules").json["active"] == version
    items = {i["contact_id"]: i["response"]["code"] for i in api.get(f"/v1/mailings/{SPRING}/audience").json["items"]}
    assert items["c-1001"] == "opened"  # a click now ranks below an open
    assert api.post("/v1/rules/404/activate").status_code == 404
    assert api.get("/v1/jobs/nope").status_code == 404


def test_openapi_documents_the_rules_routes(client: FlaskClient) -> None:
    paths = json.loads(client.get("/openapi.json").data)["paths"]
    for path in (
        "/v1/rules",
        "/v1/rules/{version}",
        "/v1/rules/{version}/activate",
        "/v1/what-if",
        "/v1/jobs/{job}",
        "/v1/mailings/{mailing_id}/recipients/{contact_id}/history",
    ):
        assert path in paths


# ---- hostile rules: patterns, versions, bodies, nulls (issue 7, failures 6-8) -------------------------

SPEC_EXAMPLE_RULESET = {  # CONTRACT §7 "Ruleset document", verbatim
    "responses": {"soft_bounce": {"final": True}, "opened_machine": {"final": False, "priority": 45}},
    "statistics_period_days": 30,
    "count_machine_opens": False,
    "unsubscribe_from_all": True,
    "unsubscribe_url_patterns": ["/unsubscribe"],
    "soft_bounce_limit": None,
    "machine_open_user_agents": [],
    "machine_open_window_seconds": None,
    "machine_click_window_seconds": None,
    "confirmation_timeout_hours": 48,
    "confirmation_timeout_response": "unknown_response",
    "provider_mappings": {"elasticemail": {"category:Spam": "hard_bounce"}},
}


BUILTINS = ["1", "builtin-2"]


def stored_versions(api: FlaskClient) -> list[str]:
    return [v["version"] for v in api.get("/v1/rules").json["versions"]]


def journal_version_directly(app: ResponsesApp, version: str, document: dict[str, Any]) -> None:
    """A version as an older release stored it, past today's checks."""
    from application.unit_of_work import UnitOfWork
    from domain.aggregates import RulesBook, rules_book_id

    def work(uow: UnitOfWork) -> None:
        book: RulesBook = uow.get_or_create(rules_book_id(), RulesBook)
        book.define(
            version=version,
            document={**DEFAULT_RULESET.to_document(), **document, "version": version},
            changes={},
            based_on="1",
            created_at="2026-01-01T00:00:00+00:00",
            created_by=None,
        )

    app._in_transaction(work)
    app.rules._rulesets.clear()


@pytest.mark.timeout(20)
def test_what_if_with_a_nested_quantifier_answers_promptly(api: FlaskClient, app: ResponsesApp) -> None:
    campaign(app, ["r"])
    say(app, "r", "click", 1, url="https://x/" + "a" * 40 + "!")
    r = api.post("/v1/what-if", json={"rules": {"unsubscribe_url_patterns": ["(a+)+$"]}})
    assert r.status_code == 200, r.json
    assert r.json["recipients"] == 1 and r.json["changed"] == 0
    assert api.get("/healthz").status_code == 200


@sqlite_only
@pytest.mark.parametrize("field, pattern", [("unsubscribe_url_patterns", r"(a)\1"), ("machine_open_user_agents", "(?=x)bot")])
def test_a_pattern_re2_cannot_run_is_refused_naming_the_field_and_pattern(api: FlaskClient, field: str, pattern: str) -> None:
    for r in (api.post("/v1/rules", json={field: ["ok", pattern]}), api.post("/v1/what-if", json={"rules": {field: [pattern]}})):
        assert r.status_code == 422, r.json
        details = error_of(r)["details"]
        [(where, message)] = [(k, v) for k, v in details.items()]
        assert where.startswith(field) and pattern in message
    assert stored_versions(api) == BUILTINS


def test_a_stored_version_re2_refuses_loads_for_history_but_cannot_be_activated(api: FlaskClient, app: ResponsesApp) -> None:
    journal_version_directly(app, "old", {"unsubscribe_url_patterns": ["(?=un)subscribe"]})
    assert "old" in stored_versions(api)
    assert api.get("/v1/rules/old").json["unsubscribe_url_patterns"] == ["(?=un)subscribe"]
    assert app.ruleset("old").is_unsubscribe_link("https://x/unsubscribe") is False  # such a pattern matches nothing
    r = api.post("/v1/rules/old/activate")
    assert r.status_code == 422, r.json
    assert "(?=un)subscribe" in str(error_of(r)["details"])
    assert api.get("/v1/rules").json["active"] == "builtin-2"


@sqlite_only
@pytest.mark.parametrize("version", ["²", "a/b", "x" * 65, "-lead", "", " 2", "ver sion", "٣"])
def test_an_odd_version_is_refused(api: FlaskClient, version: str) -> None:
    r = api.post("/v1/rules", json={"version": version})
    assert r.status_code == 422, r.json
    assert "version" in error_of(r)["details"]
    assert stored_versions(api) == BUILTINS


@sqlite_only
def test_a_well_formed_version_is_kept(api: FlaskClient) -> None:
    for version in ("v2.1_rc-3", "x" * 64, "7"):
        assert api.post("/v1/rules", json={"version": version}).status_code == 201
    assert api.get(f"/v1/rules/{'x' * 64}").status_code == 200


def test_numbering_ignores_a_stored_non_numeric_version(api: FlaskClient, app: ResponsesApp) -> None:
    journal_version_directly(app, "²", {})
    journal_version_directly(app, "a/b", {})
    r = api.post("/v1/rules", json={})
    assert r.status_code == 201, r.json
    assert r.json == {"version": "2"}
    assert stored_versions(api) == [*BUILTINS, "²", "a/b", "2"]  # odd versions stored earlier still list


@sqlite_only
def test_a_missing_or_non_json_body_is_a_400_and_creates_nothing(api: FlaskClient) -> None:
    for r in (
        api.post("/v1/rules"),
        api.post("/v1/rules", data="", content_type="application/json"),
        api.post("/v1/rules", data='{"version": "9"}', content_type="text/plain"),
    ):
        assert r.status_code == 400, (r.status_code, r.data)
        assert error_of(r)["code"] == "bad_request"
    assert stored_versions(api) == BUILTINS


def test_the_spec_example_ruleset_document_is_accepted(api: FlaskClient, client: FlaskClient, spring: dict[str, Any]) -> None:
    deliver_fixture_batch(client)
    assert api.post("/v1/what-if", json={"rules": SPEC_EXAMPLE_RULESET}).status_code == 200
    r = api.post("/v1/rules", json=SPEC_EXAMPLE_RULESET)
    assert r.status_code == 201, r.json
    stored = api.get(f"/v1/rules/{r.json['version']}").json
    for name in ("soft_bounce_limit", "machine_open_window_seconds", "machine_click_window_seconds"):
        assert stored[name] is None


def test_null_switches_an_option_off(api: FlaskClient, app: ResponsesApp) -> None:
    on = api.post(
        "/v1/rules",
        json={
            "soft_bounce_limit": 3,
            "machine_open_window_seconds": 5,
            "machine_click_window_seconds": 5,
            "statistics_period_days": 7,
        },
    )
    assert on.status_code == 201
    assert api.post(f"/v1/rules/{on.json['version']}/activate").status_code == 202
    app.jobs.run()
    off = api.post(
        "/v1/rules",
        json={
            "soft_bounce_limit": None,
            "machine_open_window_seconds": None,
            "machine_click_window_seconds": None,
            "statistics_period_days": None,
        },
    )
    assert off.status_code == 201, off.json
    assert api.get("/v1/rules").json["versions"][-1]["changes"] == {
        "soft_bounce_limit": None,
        "machine_open_window_seconds": None,
        "machine_click_window_seconds": None,
        "statistics_period_days": None,
    }
