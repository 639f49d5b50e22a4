"""Contacts over HTTP: GET (404 unknown), PATCH (creates, flags, email), subscriptions, responses across mailings."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers.http import SPRING, error_of, fixture_bytes, sign_unione, sqlite_only


def test_unknown_contact_is_404(api: FlaskClient) -> None:
    r = api.get("/v1/contacts/nobody")
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"


def test_patch_creates_the_contact_and_answers_it(api: FlaskClient) -> None:
    r = api.patch("/v1/contacts/c-9", json={"email": "new@example.com", "do_not_use_email": True})
    assert r.status_code == 200
    assert r.json == {
        "contact_id": "c-9",
        "email": "new@example.com",
        "erased_at": None,
        "flags": {"do_not_use_email": True, "email_is_actual": True, "unsubscribed_types": []},
        "responses": [],
    }
    assert api.get("/v1/contacts/c-9").json == r.json


def test_a_later_patch_wins_and_a_new_email_is_actual_again(api: FlaskClient) -> None:
    api.patch("/v1/contacts/c-9", json={"email": "old@example.com", "email_is_actual": False})
    r = api.patch("/v1/contacts/c-9", json={"do_not_use_email": False})
    assert r.json["flags"]["email_is_actual"] is False
    r = api.patch("/v1/contacts/c-9", json={"email": "fixed@example.com"})
    assert r.json["email"] == "fixed@example.com"
    assert r.json["flags"]["email_is_actual"] is True


def test_subscriptions(api: FlaskClient) -> None:
    r = api.post("/v1/contacts/c-9/subscriptions", json={"email_type": "news", "subscribed": False})
    assert r.status_code == 200
    assert r.json["flags"]["unsubscribed_types"] == ["news"]
    r = api.post("/v1/contacts/c-9/subscriptions", json={"email_type": "news", "subscribed": True})
    assert r.json["flags"]["unsubscribed_types"] == []


@sqlite_only
@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not an email"}, "email"),
        ({"do_not_use_email": "sometimes"}, "do_not_use_email"),
        ({"email_is_actual": None}, "email_is_actual"),
        ({"nickname": "x"}, "nickname"),
    ],
)
def test_invalid_patch_is_422(api: FlaskClient, body: dict[str, Any], field: str) -> None:
    r = api.patch("/v1/contacts/c-9", json=body)
    assert r.status_code == 422
    assert field in error_of(r)["details"]


@sqlite_only
@pytest.mark.parametrize(
    "body, field",
    [
        ({"subscribed": False}, "email_type"),
        ({"email_type": "news"}, "subscribed"),
        ({"email_type": "", "subscribed": False}, "email_type"),
    ],
)
def test_invalid_subscription_is_422(api: FlaskClient, body: dict[str, Any], field: str) -> None:
    r = api.post("/v1/contacts/c-9/subscriptions", json=body)
    assert r.status_code == 422
    assert field in error_of(r)["details"]


@sqlite_only
def test_malformed_patch_is_400(api: FlaskClient) -> None:
    r = api.patch("/v1/contacts/c-9", data=b'{"email":', content_type="application/json")
    assert r.status_code == 400
    assert error_of(r)["code"] == "malformed_json"


def test_contact_flags_and_responses_after_the_seed(api: FlaskClient, client: FlaskClient, spring: dict[str, Any]) -> None:
    client.post(
        "/v1/webhooks/unione", data=sign_unione(fixture_bytes("unione/batch-mixed.json")), content_type="application/json"
    )
    hard = api.get("/v1/contacts/c-1003").json
    assert hard["flags"] == {"do_not_use_email": True, "email_is_actual": False, "unsubscribed_types": []}
    assert hard["responses"] == [
        {
            "mailing_id": SPRING,
            "category": "bulk",
            "response": {"code": "hard_bounce", "name": "Hard bounce", "reason": "unknown_recipient"},
            "opens": 0,
            "clicks": 0,
        }
    ]
    assert api.get("/v1/contacts/c-1004").json["flags"]["do_not_use_email"] is True  # unsubscribed
    assert api.get("/v1/contacts/c-1005").json["flags"]["do_not_use_email"] is True  # spam complaint
    anna = api.get("/v1/contacts/c-1001?lang=ru").json
    assert anna["email"] == "anna@example.com"
    assert anna["flags"] == {"do_not_use_email": False, "email_is_actual": True, "unsubscribed_types": []}
    assert anna["responses"][0]["response"] == {"code": "clicked", "name": "Переход по ссылке", "reason": None}
    assert (anna["responses"][0]["opens"], anna["responses"][0]["clicks"]) == (1, 1)


@sqlite_only
def test_unknown_language_is_422(api: FlaskClient) -> None:
    api.patch("/v1/contacts/c-9", json={})
    r = api.get("/v1/contacts/c-9?lang=xx")
    assert r.status_code == 422
    assert "lang" in error_of(r)["details"]


@sqlite_only
def test_ids_longer_than_any_created_name_nothing(api: FlaskClient) -> None:
    long = "c" * 201
    assert api.patch(f"/v1/contacts/{long}", json={"do_not_use_email": True}).status_code == 404
    assert api.post(f"/v1/contacts/{long}/subscriptions", json={"email_type": "news", "subscribed": False}).status_code == 404
    assert api.get(f"/v1/contacts/{long}").status_code == 404
    assert api.patch(f"/v1/contacts/{'c' * 200}", json={"do_not_use_email": True}).status_code == 200
