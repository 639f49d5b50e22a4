"""/healthz, /readyz, the OpenAPI document and docs, and the error format of unrouted requests."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

import application.queries as queries_module
import application.service as service_module
from application.service import ResponsesApp
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal
from interface.shared import context
from projections.follower import ViewFollower
from tests.helpers.http import error_of, sqlite_only

CONTRACT_PATHS = {
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/v1/mailings": {"get", "post"},
    "/v1/mailings/{mailing_id}": {"get"},
    "/v1/mailings/{mailing_id}/audience": {"get", "post"},
    "/v1/mailings/{mailing_id}/dispatch": {"post"},
    "/v1/mailings/{mailing_id}/stop": {"post"},
    "/v1/mailings/{mailing_id}/summary": {"get"},
    "/v1/mailings/{mailing_id}/timeline": {"get"},
    "/v1/mailings/{mailing_id}/links": {"get"},
    "/v1/mailings/{mailing_id}/test-sends": {"get"},
    "/v1/mailings/{mailing_id}/waves/{wave}/send": {"get"},
    "/v1/contacts/{contact_id}": {"get", "patch"},
    "/v1/contacts/{contact_id}/subscriptions": {"post"},
    "/v1/webhooks/unione": {"get", "post"},
    "/v1/webhooks/elasticemail": {"get", "post"},
    "/v1/webhooks/sendgrid": {"post"},
    "/v1/signals": {"post"},
    "/v1/unmatched": {"get"},
    "/v1/quarantine": {"get"},
    "/v1/notices": {"get"},
}


def test_healthz(client: FlaskClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json == {"status": "ok"}


def test_readyz_reports_the_projection_lag(client: FlaskClient, api: FlaskClient, app: ResponsesApp) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json == {
        "status": "ok",
        "journal_position": 0,
        "views_position": 0,
        "lag": 0,
        "lag_seconds": 0.0,
        "applied_lag": {"events": 0, "p50_ms": None, "p99_ms": None, "last_batch_ms": 0.0},
    }
    app.change_contact("c-1", {"do_not_use_email": True})  # journaled; the views have not run yet
    r = client.get("/readyz")
    assert r.json["lag"] == r.json["journal_position"] - r.json["views_position"] > 0
    app.wait_for_views()
    assert client.get("/readyz").json["lag"] == 0


def test_the_lag_in_readyz_is_what_the_follower_measured_when_it_applied_the_events(
    client: FlaskClient, app: ResponsesApp
) -> None:
    """Issue 8: lag measured by the follower (now minus each applied event's stored time), not by polling."""
    import time

    app.change_contact("c-1", {"do_not_use_email": True})
    app.change_contact("c-2", {"do_not_use_email": True})
    time.sleep(0.3)  # the events wait before the follower applies them
    app.wait_for_views()
    time.sleep(0.5)  # asking later does not make the lag bigger: it was measured when applied
    r = client.get("/readyz").json
    assert r["lag"] == 0
    assert r["applied_lag"]["events"] == r["journal_position"]
    assert 300 <= r["applied_lag"]["p50_ms"] < 800 and 300 <= r["applied_lag"]["last_batch_ms"] < 800
    assert 0.3 <= r["lag_seconds"] < 0.8


def test_openapi_document_covers_the_contract(client: FlaskClient) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json
    assert doc["openapi"].startswith("3.")
    for path, methods in CONTRACT_PATHS.items():
        assert path in doc["paths"], path
        assert methods <= set(doc["paths"][path]), (path, set(doc["paths"][path]))
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert doc["security"] == [{"bearer": []}]
    # webhooks and probes opt out of the bearer token
    assert doc["paths"]["/v1/webhooks/unione"]["post"]["security"] == []
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert "security" not in doc["paths"]["/v1/signals"]["post"]
    schemas = doc["components"]["schemas"]
    for name in ("Mailing", "MailingCreate", "Summary", "AudiencePage", "Contact", "IngestAnswer", "Error", "UniOneBody"):
        assert name in schemas, name
    assert set(schemas["IngestAnswer"]["properties"]) == {"accepted", "duplicates", "unmatched", "quarantined"}
    audience_params = {p["name"] for p in doc["paths"]["/v1/mailings/{mailing_id}/audience"]["get"]["parameters"]}
    assert {"response", "limit", "cursor", "lang"} <= audience_params


def test_docs_page_renders(client: FlaskClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    assert b"openapi.json" in r.data


def test_unknown_path_is_404_in_the_error_format(client: FlaskClient) -> None:
    r = client.get("/v2/nothing")
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"


def test_wrong_method_is_405_in_the_error_format(client: FlaskClient, api: FlaskClient) -> None:
    for r in (client.delete("/healthz"), api.put("/v1/mailings"), client.delete("/v1/webhooks/unione")):
        assert r.status_code == 405
        assert error_of(r)["code"] == "method_not_allowed"


@pytest.mark.timeout(60)
def test_without_a_running_projection_a_write_answers_once_it_is_journaled(
    api: FlaskClient, client: FlaskClient, app: ResponsesApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 7, failure 10: POST /v1/mailings waited 10 s and answered 503, though the mailing was stored."""
    monkeypatch.setattr(context, "READ_WAIT_SECONDS", 0.1)
    monkeypatch.setattr(queries_module, "MISSING_MAILING_WAIT_SECONDS", 0.1, raising=False)
    app.follower = None  # as a gunicorn worker whose `responses project` is down
    started = time.monotonic()
    r = api.post("/v1/mailings", json={"id": "m", "name": "M", "category": "bulk", "provider": "unione"})
    assert r.status_code == 201, r.json
    assert time.monotonic() - started < 3
    assert (r.json["id"], r.json["provider"], r.json["summary"]["audience"]) == ("m", "unione", 0)
    assert app.get_mailing_aggregate("m").name == "M"  # stored
    assert api.get("/v1/mailings/m").json["name"] == "M"  # a read of it, from the journal while the views lack it
    r = api.patch("/v1/contacts/c-1", json={"do_not_use_email": True})
    assert r.status_code == 200, r.json
    assert r.json["flags"]["do_not_use_email"] is True
    assert api.get("/v1/mailings").json == {"items": []}  # a read answers from the views as they are
    assert client.get("/readyz").json["lag"] > 0


@sqlite_only
def test_without_a_running_projection_dispatch_answers_503_before_it_changes_anything(
    api: FlaskClient, app: ResponsesApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.post("/v1/mailings", json={"id": "m", "name": "M", "category": "bulk", "provider": "unione"})
    api.post("/v1/mailings/m/audience", json={"recipients": [{"contact_id": "c-1", "email": "a@example.com"}]})
    monkeypatch.setattr(service_module, "WRITE_WAIT_SECONDS", 0.1)
    app.follower = None
    app.change_contact("c-2", {"do_not_use_email": True})  # journaled, not in the views
    before = app.journal_position()
    for path in ("/v1/mailings/m/dispatch", "/v1/mailings/m/stop"):
        r = api.post(path)
        assert r.status_code == 503 and error_of(r)["code"] == "unavailable", path
    assert app.journal_position() == before
    r = api.get("/v1/mailings/m/waves/1/send")
    assert r.status_code == 404  # no wave was started


def test_readyz_is_503_only_when_the_views_are_behind_and_not_moving(make_client, app: ResponsesApp) -> None:
    """Issue 7, failure 10: a stopped projection left /readyz 200 ok."""
    client = make_client(ready_max_lag_seconds=0.3)
    follower, app.follower = app.follower, None  # the projection is stopped
    app.change_contact("c-1", {"do_not_use_email": True})
    app.change_contact("c-2", {"do_not_use_email": True})
    first = client.get("/readyz")
    assert first.status_code == 200 and 0 <= first.json["lag_seconds"] < 0.3  # behind, but only just
    time.sleep(0.4)
    r = client.get("/readyz")
    assert r.status_code == 503, r.json
    assert r.json["status"] == "lagging" and r.json["lag"] == 4 and r.json["lag_seconds"] >= 0.4  # two events a contact
    ViewFollower(app, batch_size=1).run_once()  # the views move: one event applied, the other waits on
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["lag"] == 3 and r.json["lag_seconds"] >= 0.4
    follower.catch_up()
    time.sleep(0.4)  # an idle journal is ready, however long it idles
    r = client.get("/readyz")
    assert r.status_code == 200
    assert {k: r.json[k] for k in ("status", "journal_position", "views_position", "lag")} == {
        "status": "ok",
        "journal_position": 4,
        "views_position": 4,
        "lag": 0,
    }
    assert (
        abs(r.json["lag_seconds"] - r.json["applied_lag"]["last_batch_ms"] / 1000) < 0.002 and r.json["lag_seconds"] >= 0.4
    )  # the last batch waited


def test_lag_seconds_count_from_when_an_event_was_stored_not_from_the_signals_received_at(make_client, app: ResponsesApp) -> None:
    """A re-matched signal keeps its original received_at (months ago here); it has waited only since it was journaled."""
    client = make_client(ready_max_lag_seconds=30)
    app.follower = None
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    signal = Signal(key="k", source="unione", fields={"status": "delivered"}, received_at=long_ago, occurred_at=long_ago)
    assert app.record_batch(ParsedBatch(events=[ProviderEvent(signal, Correlation("m", "c"))])).unmatched == 1
    r = client.get("/readyz")
    assert r.status_code == 200, r.json
    assert r.json["lag"] > 0 and r.json["lag_seconds"] < 30
