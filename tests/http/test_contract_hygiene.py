"""Contract hygiene (issue "Nothing lost, nothing stalls", items 1, 5 and 12): parameters out of
range are a 422 in the error format, never a 500; 405 says what is allowed; an empty patch changes
nothing; ``as_of`` written with an unescaped ``+`` still reads as the instant meant."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers.http import SPRING, error_of, sqlite_only

HUGE_CURSOR = base64.urlsafe_b64encode(b"s" + b"9" * 40).decode().rstrip("=")
PAGED = [
    f"/v1/mailings/{SPRING}/audience",
    "/v1/unmatched",
    "/v1/quarantine",
    "/v1/notices",
    f"/v1/mailings/{SPRING}/test-sends",
]


@pytest.mark.parametrize("path", PAGED)
def test_a_huge_cursor_is_a_422_on_every_paged_route(api: FlaskClient, spring: dict[str, Any], path: str) -> None:
    r = api.get(f"{path}?cursor={HUGE_CURSOR}")
    assert r.status_code == 422, r.data
    assert "cursor" in error_of(r)["details"]


@pytest.mark.parametrize("negative", [base64.urlsafe_b64encode(b"s-5").decode().rstrip("=")])
def test_a_negative_cursor_is_refused(api: FlaskClient, spring: dict[str, Any], negative: str) -> None:
    assert api.get(f"/v1/mailings/{SPRING}/audience?cursor={negative}").status_code == 422


@sqlite_only
def test_405_names_the_allowed_methods(api: FlaskClient) -> None:
    r = api.delete("/v1/mailings")
    assert r.status_code == 405
    assert error_of(r)["code"] == "method_not_allowed"
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed and "DELETE" not in allowed


@sqlite_only
@pytest.mark.parametrize("body", [{}, None])
def test_an_empty_contact_patch_is_refused_and_creates_nothing(api: FlaskClient, body: Any) -> None:
    r = api.patch("/v1/contacts/c-empty", json=body) if body is not None else api.patch("/v1/contacts/c-empty")
    assert r.status_code in (400, 422), r.data
    error_of(r)
    assert api.get("/v1/contacts/c-empty").status_code == 404


@sqlite_only
@pytest.mark.parametrize(
    "expires_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "not a time", "2026-13-01T00:00:00Z"]
)
def test_an_expiry_out_of_range_is_a_422(api: FlaskClient, expires_at: str) -> None:
    r = api.post(
        "/v1/mailings",
        json={"id": "m-range", "name": "Range", "category": "bulk", "provider": "unione", "expires_at": expires_at},
    )
    assert r.status_code == 422, r.data
    assert "expires_at" in error_of(r)["details"]
    assert api.get("/v1/mailings/m-range").status_code == 404


def history(api: FlaskClient, query: str) -> Any:
    return api.get(f"/v1/mailings/{SPRING}/recipients/c-1001/history?{query}")


@pytest.mark.parametrize("as_of", ["0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59-14:00"])
def test_an_as_of_out_of_range_is_a_422(api: FlaskClient, spring: dict[str, Any], as_of: str) -> None:
    r = history(api, f"as_of={as_of}")
    assert r.status_code == 422, r.data
    assert "as_of" in error_of(r)["details"]


def test_as_of_with_an_unescaped_plus_reads_as_the_offset_meant(api: FlaskClient, spring: dict[str, Any]) -> None:
    escaped = history(api, "as_of=2099-01-01T03:00:00%2B03:00")
    unescaped = history(api, "as_of=2099-01-01T03:00:00+03:00")  # '+' arrives as a space
    assert escaped.status_code == unescaped.status_code == 200, unescaped.data
    assert unescaped.json == escaped.json
    past = history(api, "as_of=2000-01-01T03:00:00+03:00")
    assert past.status_code == 200 and past.json["signals"] == []


def test_a_bad_as_of_names_the_expected_format(api: FlaskClient, spring: dict[str, Any]) -> None:
    r = history(api, "as_of=yesterday")
    assert r.status_code == 422
    message = " ".join(error_of(r)["details"]["as_of"])
    assert "ISO 8601" in message and "%2B" in message


def test_every_answer_tells_browsers_not_to_sniff_its_type(client: FlaskClient, api: FlaskClient) -> None:
    for answer in (client.get("/healthz"), api.get("/v1/quarantine"), client.get("/nowhere"), client.get("/docs")):
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", answer.request.path
