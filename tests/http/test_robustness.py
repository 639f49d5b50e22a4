"""No 500 on any input: every route, every method, hostile bodies, headers and query strings."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.service import ResponsesApp
from tests.helpers.http import TOKEN, sqlite_only

OURS = ("ops.", "webhooks.", "signals.", "mailings.", "contacts.", "inbox.", "rules.")
BODIES: list[tuple[bytes, str]] = [
    (b"", "application/json"),
    (b"{", "application/json"),
    (b"null", "application/json"),
    (b"[]", "application/json"),
    (b'{"recipients": [null, 1, "x", {"contact_id": {"a": 1}}]}', "application/json"),
    (b'{"id": "\\ud800", "name": 1e999, "category": [], "provider": {}}', "application/json"),
    (b'{"auth": "0123456789abcdef0123456789abcdef"}', "application/json"),
    (b"\xff\xfe\x00\x00", "application/octet-stream"),
    (b"a=1&b=%ZZ&token=&status=", "application/x-www-form-urlencoded"),
    (gzip.compress(b"{not json"), "application/json"),
    (b'{"signals": [{"event_id": 1, "kind": null, "occurred_at": []}]}', "application/json"),
    (
        b'{"id": "a\\u0000", "name": "n", "category": "bulk", "provider": "unione", "recipients": [{"contact_id": "c\\u0000"}]}',
        "application/json",
    ),
    (b'{"email_type": "news\\u0000", "subscribed": false, "email": "a\\u0000@example.com"}', "application/json"),
    (
        b'{"signals": [{"event_id": "e", "mailing_id": "m\\u0000", "contact_id": "c", "kind": "delivered", "occurred_at": "2026-03-14T10:00:00Z"}]}',
        "application/json",
    ),
]
QUERIES = [
    "",
    "?mailing_id=%00",
    "?cursor=%00",
    "?lang=en%00",
    "?response=planned%00",
    "?limit=-1",
    "?limit=99999999999999999999999",
    "?cursor=%00%FF",
    "?hours=1e3",
    "?lang=%E2%80%AE",
    "?response=planned&response=x",
    "?token=x&status=Sent",
    "?as_of=%00",
    "?as_of=99999-01-01",
    "?rules=%00",
]
PATH_VALUES = ["x", "%00", "%E2%98%83" * 200, "y" * 3000]


def routes(flask_app: Flask) -> list[tuple[str, str]]:
    found = []
    for rule in flask_app.url_map.iter_rules():
        if not rule.endpoint.startswith(OURS):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule))
    return found


def fill(rule: str, value: str) -> str:
    out = rule
    while "<" in out:
        start, end = out.index("<"), out.index(">")
        out = out[:start] + value + out[end + 1 :]
    return out


def check(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.get_data()[:300])
    if response.status_code >= 400:
        body = response.get_json()
        assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"]), body


def test_no_route_answers_500_to_hostile_input(
    flask_app: Flask, api: FlaskClient, client: FlaskClient, app: ResponsesApp
) -> None:
    table = routes(flask_app)
    assert len(table) >= 20
    for method, rule in table:
        for value in PATH_VALUES:
            check(api.open(fill(rule, value), method=method))
        path = fill(rule, "x")
        for query in QUERIES:
            check(api.open(path + query, method=method))
        if method in ("POST", "PATCH"):
            for data, content_type in BODIES:
                check(api.open(path, method=method, data=data, content_type=content_type))
                check(api.open(path, method=method, data=data, content_type=content_type, headers={"Content-Encoding": "gzip"}))
    app.wait_for_views()  # whatever was accepted, the projection can apply: nothing stalls it
    assert client.get("/readyz").json["lag"] == 0


@sqlite_only
def test_hostile_headers(api: FlaskClient, client: FlaskClient) -> None:
    for headers in (
        {"Authorization": "Bearer " + "x" * 10000},
        {"Authorization": "Bearer\x00"},
        {"Content-Length": "-1"},
        {"Content-Length": "abc"},
        {"Content-Encoding": "gzip, gzip"},
        {"X-Twilio-Email-Event-Webhook-Signature": "\u2603", "X-Twilio-Email-Event-Webhook-Timestamp": "x"},
    ):
        check(client.post("/v1/webhooks/sendgrid", data=b"[]", headers=headers))
        check(client.post("/v1/webhooks/unione", data=b"{}", headers=headers))
        check(api.get("/v1/mailings", headers={k: v for k, v in headers.items() if k != "Authorization"}))


@sqlite_only
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=512),
    path=st.sampled_from(
        ["/v1/webhooks/unione", "/v1/webhooks/sendgrid", "/v1/webhooks/elasticemail", "/v1/signals", "/v1/mailings"]
    ),
)
def test_random_bodies(client: FlaskClient, body: bytes, path: str) -> None:
    check(client.post(path, data=body, content_type="application/json", headers={"Authorization": f"Bearer {TOKEN}"}))


@sqlite_only
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    document=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=20,
    ),
    path=st.sampled_from(["/v1/mailings", "/v1/mailings/m/audience", "/v1/signals", "/v1/contacts/c/subscriptions"]),
)
def test_random_json(api: FlaskClient, document: Any, path: str) -> None:
    check(api.post(path, json=document))
    check(api.patch("/v1/contacts/c", json=document))


@sqlite_only
@pytest.mark.parametrize("depth", [40, 300, 5000])
def test_deeply_nested_json_is_refused_not_a_crash(api: FlaskClient, depth: int) -> None:
    deep = b"[" * depth + b"]" * depth
    for method, path in (
        ("post", "/v1/mailings"),
        ("post", "/v1/mailings/m/audience"),
        ("patch", "/v1/contacts/c"),
        ("post", "/v1/contacts/c/subscriptions"),
    ):
        r = getattr(api, method)(path, data=b'{"recipients": ' + deep + b"}", content_type="application/json")
        check(r)
        assert r.status_code in (400, 404, 422), (path, r.status_code)
    r = api.post("/v1/signals", data=b'{"signals": [{"event_id": "e", "extra": ' + deep + b"}]}", content_type="application/json")
    if depth <= 1024:  # a document JSON can read: the deep item alone is quarantined
        assert (r.status_code, r.json["quarantined"]) == (200, 1)
    else:  # past the decoder's depth the body is not JSON to us: 400
        assert r.status_code == 400
