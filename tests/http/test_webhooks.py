"""Provider webhooks and canonical signals: authenticity before parsing, limits, quarantine, answers."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
from flask.testing import FlaskClient

from application.service import ResponsesApp
from tests.helpers.http import (
    EE_TOKEN,
    MAX_BODY,
    SPRING,
    UNIONE_TEST_KEY,
    elastic_lines,
    error_of,
    fixture_bytes,
    sign_sendgrid,
    sign_unione,
    sqlite_only,
)

UNIONE = "/v1/webhooks/unione"
ELASTIC = "/v1/webhooks/elasticemail"
SENDGRID = "/v1/webhooks/sendgrid"
SIGNALS = "/v1/signals"
CHUNKED: dict[str, Any] = {"headers": {"Transfer-Encoding": "chunked"}, "environ_overrides": {"wsgi.input_terminated": True}}
NOTHING = {"accepted": 0, "duplicates": 0, "unmatched": 0, "quarantined": 0}


def answer(**counts: int) -> dict[str, int]:
    return {**NOTHING, **counts}


def responses(api: FlaskClient) -> dict[str, str]:
    items = api.get(f"/v1/mailings/{SPRING}/audience").json["items"]
    return {i["contact_id"]: i["response"]["code"] for i in items}


def unione_body(*event_data: dict[str, Any], raw_events: list[Any] | None = None) -> bytes:
    events = (
        raw_events
        if raw_events is not None
        else [{"event_name": "transactional_email_status", "event_data": d} for d in event_data]
    )
    return sign_unione(json.dumps({"auth": "AUTH_PLACEHOLDER", "events_by_user": [{"user_id": 1, "events": events}]}).encode())


def status_event(contact: str, status: str, email: str, at: str = "2026-03-14 10:04:11", **extra: Any) -> dict[str, Any]:
    return {
        "job_id": "j-1",
        "metadata": {"mailing_id": SPRING, "contact_id": contact},
        "email": email,
        "status": status,
        "event_time": at,
        **extra,
    }


def post_unione(client: FlaskClient, body: bytes, **headers: str) -> Any:
    return client.post(UNIONE, data=body, content_type="application/json", headers=headers)


# ---- UniOne -----------------------------------------------------------------------------------


def test_unione_get_answers_200_for_activation(client: FlaskClient) -> None:
    r = client.get(UNIONE)
    assert r.status_code == 200
    assert r.json == NOTHING


def test_the_real_signed_fixture_verifies_and_is_kept_unmatched(client: FlaskClient, api: FlaskClient) -> None:
    r = post_unione(client, fixture_bytes("unione/real-signed-clicked.json.raw"))
    assert r.status_code == 200, r.json
    assert r.json == answer(unmatched=1)
    items = api.get("/v1/unmatched").json["items"]
    assert len(items) == 1
    assert items[0]["source"] == "unione"
    assert items[0]["correlation"]["email"] == "unisendergo@anymail.dev"
    assert items[0]["signal"]["url"] == "https://example.com"


def test_the_seed_batch_then_its_retry(client: FlaskClient, api: FlaskClient, spring: dict[str, Any]) -> None:
    body = sign_unione(fixture_bytes("unione/batch-mixed.json"))
    r = post_unione(client, body)
    assert r.json == answer(accepted=8)  # 7 status events and the spam-block notice
    assert post_unione(client, body).json == answer(duplicates=8)
    assert responses(api)["c-1001"] == "clicked"
    notices = api.get("/v1/notices").json["items"]
    assert [(n["source"], n["kind"]) for n in notices] == [("unione", "transactional_spam_block")]
    assert notices[0]["raw"]["domain"] == "mail.example.com"


def test_out_of_order_events_fold_by_priority(client: FlaskClient, api: FlaskClient, spring: dict[str, Any]) -> None:
    clicked = status_event("c-1006", "clicked", "dina@example.com", "2026-03-14 10:40:00", url="https://shop.example.com/x")
    opened = status_event("c-1006", "opened", "dina@example.com", "2026-03-14 10:30:00")
    delivered = status_event("c-1006", "delivered", "dina@example.com", "2026-03-14 10:04:15")
    assert post_unione(client, unione_body(clicked)).json == answer(accepted=1)
    assert post_unione(client, unione_body(opened, delivered)).json == answer(accepted=2)
    row = api.get(f"/v1/mailings/{SPRING}/audience?response=clicked").json["items"][0]
    assert (row["contact_id"], row["opens"], row["clicks"]) == ("c-1006", 1, 1)


def test_the_single_event_form(client: FlaskClient, api: FlaskClient, spring: dict[str, Any]) -> None:
    r = post_unione(client, sign_unione(fixture_bytes("unione/single-event-delivered.json")))
    assert r.json == answer(accepted=1)
    assert responses(api)["c-1006"] == "delivered"


def test_a_gzip_body_is_accepted(client: FlaskClient, spring: dict[str, Any]) -> None:
    body = gzip.compress(sign_unione(fixture_bytes("unione/batch-mixed.json")))
    assert post_unione(client, body, **{"Content-Encoding": "gzip"}).json == answer(accepted=8)


def test_a_gzip_body_without_the_header_is_recognised(client: FlaskClient, spring: dict[str, Any]) -> None:
    body = gzip.compress(sign_unione(fixture_bytes("unione/single-event-delivered.json")))
    assert post_unione(client, body).json == answer(accepted=1)


def test_a_key_of_several_configured_verifies(client: FlaskClient, spring: dict[str, Any]) -> None:
    body = sign_unione(fixture_bytes("unione/single-event-delivered.json"), key=UNIONE_TEST_KEY)
    assert post_unione(client, body).json == answer(accepted=1)


@sqlite_only  # rejected before anything reaches a store
@pytest.mark.parametrize(
    "body",
    [
        sign_unione(fixture_bytes("unione/batch-mixed.json"), key="somebody-elses-key"),
        fixture_bytes("unione/batch-mixed.json"),  # unsigned placeholder
        fixture_bytes("unione/batch-mixed.json").replace(b'"AUTH_PLACEHOLDER",', b""),  # no auth at all
        sign_unione(fixture_bytes("unione/batch-mixed.json")).replace(b"anna@", b"hanna@"),  # tampered after signing
        b'{"auth":"0123456789abcdef0123456789abcdef","events_by_user":[',  # broken JSON, bad auth
        b"\x00\x01garbage",
        b"",
    ],
    ids=["wrong-key", "placeholder", "no-auth", "tampered", "broken-json", "garbage", "empty"],
)
def test_bad_unione_auth_is_401_and_stores_nothing(
    client: FlaskClient, app: ResponsesApp, spring: dict[str, Any], body: bytes
) -> None:
    before = app.journal_position()
    r = post_unione(client, body)
    assert r.status_code == 401
    assert error_of(r)["code"] == "unauthorized"
    assert app.journal_position() == before


@sqlite_only
def test_unione_without_configured_keys_is_401(make_client) -> None:
    client = make_client(unione_api_keys=())
    r = post_unione(client, sign_unione(fixture_bytes("unione/batch-mixed.json")))
    assert r.status_code == 401


def test_an_authenticated_body_that_cannot_be_parsed_is_quarantined_whole(
    client: FlaskClient, api: FlaskClient, app: ResponsesApp
) -> None:
    body = sign_unione(b'{"auth":"AUTH_PLACEHOLDER","events_by_user":[{"events":[')
    r = post_unione(client, body)
    assert r.status_code == 200
    assert r.json == answer(quarantined=1)
    items = api.get("/v1/quarantine").json["items"]
    assert len(items) == 1
    assert items[0]["source"] == "unione"
    assert items[0]["raw"] == body.decode()
    assert items[0]["error"]


def test_a_signed_body_nested_too_deeply_is_quarantined_and_the_views_go_on(
    client: FlaskClient, api: FlaskClient, app: ResponsesApp, spring: dict[str, Any]
) -> None:
    deep: Any = "bottom"
    for _ in range(300):
        deep = [deep]
    body = unione_body(status_event("c-1006", "delivered", "dina@example.com", extra=deep))
    assert post_unione(client, body).json == answer(quarantined=1)
    assert "nested deeper" in api.get("/v1/quarantine").json["items"][0]["error"]
    assert post_unione(client, unione_body(status_event("c-1006", "delivered", "dina@example.com"))).json == answer(accepted=1)
    assert responses(api)["c-1006"] == "delivered"
    assert client.get("/readyz").json["lag"] == 0


def test_a_batch_with_malformed_events_accepts_the_good_ones(
    client: FlaskClient, api: FlaskClient, spring: dict[str, Any]
) -> None:
    good = status_event("c-1006", "delivered", "dina@example.com")
    no_email = {k: v for k, v in status_event("c-1002", "opened", "x").items() if k != "email"}
    bad_time = status_event("c-1003", "opened", "nobody@example.net", at="the day after")
    body = unione_body(
        raw_events=[
            {"event_name": "transactional_email_status", "event_data": good},
            {"event_name": "transactional_email_status", "event_data": no_email},
            {"event_name": "transactional_email_status", "event_data": bad_time},
            "not an event",
        ]
    )
    assert post_unione(client, body).json == answer(accepted=1, quarantined=3)
    quarantined = api.get("/v1/quarantine").json["items"]
    assert len(quarantined) == 3
    assert all(q["error"] and q["raw"] for q in quarantined)
    assert any("the day after" in q["raw"] for q in quarantined)
    assert responses(api)["c-1006"] == "delivered"


def test_test_sends_are_kept_apart(client: FlaskClient, api: FlaskClient, spring: dict[str, Any]) -> None:
    event = status_event("qa-1", "delivered", "qa@example.com")
    event["metadata"]["test"] = 1
    assert post_unione(client, unione_body(event)).json == answer(accepted=1)
    items = api.get(f"/v1/mailings/{SPRING}/test-sends").json["items"]
    assert [(i["contact_id"], i["email"]) for i in items] == [("qa-1", "qa@example.com")]
    assert items[0]["signal"]["fields"] == {"status": "delivered"}
    summary = api.get(f"/v1/mailings/{SPRING}/summary").json
    assert summary["audience"] == 6 and summary["delivered"] == 0


# ---- limits -----------------------------------------------------------------------------------


@sqlite_only  # rejected before anything reaches a store
def test_a_body_over_the_limit_is_413(client: FlaskClient, app: ResponsesApp) -> None:
    r = post_unione(client, b"{" + b" " * MAX_BODY + b"}")
    assert r.status_code == 413
    assert error_of(r)["code"] == "payload_too_large"
    assert app.journal_position() == 0


@sqlite_only  # rejected before anything reaches a store
def test_a_chunked_body_over_the_limit_is_413(client: FlaskClient, app: ResponsesApp) -> None:
    stream = io.BytesIO(b"{" + b" " * (MAX_BODY * 2) + b"}")
    r = client.post(UNIONE, input_stream=stream, content_type="application/json", **CHUNKED)
    assert r.status_code == 413
    assert error_of(r)["code"] == "payload_too_large"
    assert app.journal_position() == 0


def test_a_chunked_body_under_the_limit_is_read(client: FlaskClient, spring: dict[str, Any]) -> None:
    stream = io.BytesIO(sign_unione(fixture_bytes("unione/batch-mixed.json")))
    r = client.post(UNIONE, input_stream=stream, content_type="application/json", **CHUNKED)
    assert r.json == answer(accepted=8)


@sqlite_only  # rejected before anything reaches a store
def test_a_gzip_bomb_is_413(client: FlaskClient, app: ResponsesApp) -> None:
    bomb = gzip.compress(b'{"auth":"' + b"0" * (MAX_BODY * 50) + b'"}')
    assert len(bomb) < MAX_BODY
    r = post_unione(client, bomb, **{"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert app.journal_position() == 0


@sqlite_only  # rejected before anything reaches a store
@pytest.mark.parametrize("headers", [{"Content-Encoding": "gzip"}, {"Content-Encoding": "br"}], ids=["corrupt-gzip", "brotli"])
def test_an_undecodable_body_is_400_and_stores_nothing(client: FlaskClient, app: ResponsesApp, headers: dict[str, str]) -> None:
    r = post_unione(client, b"\x1f\x8b\x08\x00 definitely not deflate", **headers)
    assert r.status_code == 400
    assert error_of(r)["code"] == "malformed_body"
    assert app.journal_position() == 0


# ---- Elastic Email ----------------------------------------------------------------------------


def test_elastic_email_notifications(client: FlaskClient, api: FlaskClient, spring_elastic: dict[str, Any]) -> None:
    for line in elastic_lines():
        r = client.get(f"{ELASTIC}?{line}&token={EE_TOKEN}")
        assert r.json == answer(accepted=1), line
    assert responses(api) == {
        "c-1001": "clicked",
        "c-1002": "soft_bounce",
        "c-1003": "invalid_address",
        "c-1004": "unsubscribed",
        "c-1005": "spam_complaint",
        "c-1006": "sent_to_provider",
    }
    line = elastic_lines()[0]
    assert client.get(f"{ELASTIC}?{line}&token={EE_TOKEN}").json == answer(duplicates=1)


def test_elastic_email_post_with_form_parameters(client: FlaskClient, api: FlaskClient, spring_elastic: dict[str, Any]) -> None:
    opened, clicked = elastic_lines()[1], elastic_lines()[2]
    r = client.post(f"{ELASTIC}?token={EE_TOKEN}", data=opened, content_type="application/x-www-form-urlencoded")
    assert r.json == answer(accepted=1)
    r = client.post(ELASTIC, data=f"{clicked}&token={EE_TOKEN}", content_type="application/x-www-form-urlencoded")
    assert r.json == answer(accepted=1)
    r = client.post(f"{ELASTIC}?token={EE_TOKEN}", json=dict(parse_qsl(elastic_lines()[3])))
    assert r.json == answer(accepted=1)
    assert responses(api)["c-1001"] == "clicked"
    assert responses(api)["c-1003"] == "invalid_address"


@sqlite_only  # rejected before anything reaches a store
@pytest.mark.parametrize(
    "query", ["", "&token=wrong", "&token=", f"&token={EE_TOKEN}x"], ids=["missing", "wrong", "empty", "longer"]
)
def test_elastic_email_bad_token_is_401(client: FlaskClient, app: ResponsesApp, query: str) -> None:
    r = client.get(f"{ELASTIC}?{elastic_lines()[0]}{query}")
    assert r.status_code == 401
    assert error_of(r)["code"] == "unauthorized"
    r = client.post(f"{ELASTIC}?{query.lstrip('&')}", data=elastic_lines()[0], content_type="application/x-www-form-urlencoded")
    assert r.status_code == 401
    assert app.journal_position() == 0


@sqlite_only
def test_elastic_email_without_a_configured_token_is_401(make_client) -> None:
    client = make_client(elasticemail_webhook_token=None)
    assert client.get(f"{ELASTIC}?{elastic_lines()[0]}&token=").status_code == 401


def test_elastic_email_bad_notifications_are_quarantined(client: FlaskClient, api: FlaskClient) -> None:
    assert client.get(f"{ELASTIC}?token={EE_TOKEN}&status=Sent&to=a%40example.com&date=yesterday").json == answer(quarantined=1)
    assert client.get(f"{ELASTIC}?token={EE_TOKEN}").json == answer(quarantined=1)  # no status, no recipient
    body = b"token=" + EE_TOKEN.encode() + b"&status=Sent&to=\xff\xfe"  # not UTF-8: quarantined whole
    r = client.post(f"{ELASTIC}?token={EE_TOKEN}", data=body, content_type="application/x-www-form-urlencoded")
    assert r.json == answer(quarantined=1)
    r = client.post(f"{ELASTIC}?token={EE_TOKEN}", data=b"\x1f\x8bnope", headers={"Content-Encoding": "gzip"})
    assert r.json == answer(quarantined=1)
    items = api.get("/v1/quarantine").json["items"]
    assert len(items) == 4
    assert all(i["source"] == "elasticemail" and i["error"] for i in items)
    assert not any(EE_TOKEN in i["raw"] for i in items)  # the secret is never kept


# ---- SendGrid ---------------------------------------------------------------------------------


def sendgrid_events(*overrides: dict[str, Any]) -> bytes:
    base = {"email": "anna@example.com", "timestamp": 1773482651, "mailing_id": SPRING, "contact_id": "c-1001"}
    return json.dumps([{**base, **o} for o in overrides]).encode()


def test_sendgrid_signed_events(client: FlaskClient, api: FlaskClient, spring_sendgrid: dict[str, Any]) -> None:
    body = sendgrid_events(
        {"event": "delivered", "sg_event_id": "d-1"},
        {"event": "open", "sg_event_id": "o-1", "sg_machine_open": True},
        {"event": "open", "sg_event_id": "o-2"},
        {"event": "bounce", "type": "bounce", "sg_event_id": "b-1", "email": "nobody@example.net", "contact_id": "c-1003"},
    )
    r = client.post(SENDGRID, data=body, content_type="application/json", headers=sign_sendgrid(body))
    assert r.json == answer(accepted=4)
    r = client.post(SENDGRID, data=body, content_type="application/json", headers=sign_sendgrid(body))
    assert r.json == answer(duplicates=4)
    assert responses(api)["c-1001"] == "opened"
    assert responses(api)["c-1003"] == "hard_bounce"


def test_sendgrid_under_builtin_2_drops_classifications_resubscribes_and_account_notices(
    client: FlaskClient, api: FlaskClient, spring_sendgrid: dict[str, Any]
) -> None:
    """A new database folds under builtin-2: a drop's reason and its contact effect, a bounce's classification, a group
    resubscribe that lifts only its group's unsubscribe, and an account status change kept as a notice."""
    body = sendgrid_events(
        {"event": "dropped", "reason": "Unsubscribed Address", "sg_event_id": "dr-1"},
        {
            "event": "dropped",
            "reason": "Spam Reporting Address",
            "sg_event_id": "dr-2",
            "contact_id": "c-1002",
            "email": "boris@example.org",
        },
        {
            "event": "bounce",
            "type": "blocked",
            "bounce_classification": "Reputation",
            "sg_event_id": "b-1",
            "contact_id": "c-1003",
        },
        {"event": "group_unsubscribe", "asm_group_id": 10, "sg_event_id": "gu-1", "contact_id": "c-1004"},
        {
            "event": "group_resubscribe",
            "asm_group_id": 10,
            "sg_event_id": "gr-1",
            "contact_id": "c-1004",
            "timestamp": 1773482700,
        },
        {"event": "account_status_change", "type": "compliance_suspend", "sg_event_id": "acct-1", "email": None},
    )
    body = body.replace(b', "email": null', b"").replace(b'"email": null, ', b"")
    r = client.post(SENDGRID, data=body, content_type="application/json", headers=sign_sendgrid(body))
    assert r.json == answer(accepted=6)  # the notice counts as accepted, as UniOne's do
    again = client.post(SENDGRID, data=body, content_type="application/json", headers=sign_sendgrid(body))
    assert again.json == answer(duplicates=6)
    [notice] = api.get("/v1/notices").json["items"]
    assert (notice["source"], notice["kind"], notice["raw"]["type"]) == (
        "sendgrid",
        "account_status_change",
        "compliance_suspend",
    )
    assert responses(api)["c-1001"] == "rejected" and responses(api)["c-1002"] == "rejected"
    assert responses(api)["c-1003"] == "soft_bounce" and responses(api)["c-1004"] == "unsubscribed"
    flags = {c: api.get(f"/v1/contacts/{c}").json["flags"] for c in ("c-1001", "c-1002", "c-1003", "c-1004")}
    assert flags["c-1001"]["do_not_use_email"] is True  # the drop's unsubscribe (from all: the default)
    assert flags["c-1002"] == {"do_not_use_email": True, "email_is_actual": True, "unsubscribed_types": []}
    assert flags["c-1003"] == {"do_not_use_email": False, "email_is_actual": True, "unsubscribed_types": []}  # a sender's block
    assert flags["c-1004"]["do_not_use_email"] is True  # an unsubscribe from all is not lifted by a group resubscribe
    history = api.get(f"/v1/mailings/{SPRING}/recipients/c-1004/history").json
    assert [(s["maps_to"], s["contact_effect"], s["why"]) for s in history["signals"]][1:] == [
        ("unsubscribed", None, None),
        (None, "resubscribe", "informational"),
    ]


def test_a_group_resubscribe_lifts_its_groups_unsubscribe_under_rules_that_unsubscribe_by_type(
    client: FlaskClient, api: FlaskClient, app: ResponsesApp, spring_sendgrid: dict[str, Any]
) -> None:
    version = api.post("/v1/rules", json={"unsubscribe_from_all": False}).json["version"]
    api.post(f"/v1/rules/{version}/activate")
    app.jobs.run()
    api.post("/v1/contacts/c-1004/subscriptions", json={"email_type": "promo", "subscribed": False})
    unsubscribe = sendgrid_events(
        {"event": "group_unsubscribe", "asm_group_id": 10, "sg_event_id": "gu-1", "contact_id": "c-1004"}
    )
    client.post(SENDGRID, data=unsubscribe, content_type="application/json", headers=sign_sendgrid(unsubscribe))
    assert api.get("/v1/contacts/c-1004").json["flags"]["unsubscribed_types"] == ["news", "promo"]
    resubscribe = sendgrid_events(
        {"event": "group_resubscribe", "asm_group_id": 10, "sg_event_id": "gr-1", "contact_id": "c-1004"}
    )
    client.post(SENDGRID, data=resubscribe, content_type="application/json", headers=sign_sendgrid(resubscribe))
    contact = api.get("/v1/contacts/c-1004").json
    assert contact["flags"] == {"do_not_use_email": False, "email_is_actual": True, "unsubscribed_types": ["promo"]}
    assert responses(api)["c-1004"] == "unsubscribed"  # the recipient's response stays


def test_a_unione_body_whose_metadata_holds_an_auth_field_first_is_accepted(
    client: FlaskClient, api: FlaskClient, spring: dict[str, Any]
) -> None:
    event = {
        "job_id": "j-1",
        "metadata": {"auth": "0123456789abcdef0123456789abcdef", "mailing_id": SPRING, "contact_id": "c-1001"},
        "email": "anna@example.com",
        "status": "delivered",
        "event_time": "2026-03-14 10:04:11",
    }
    document = {
        "events_by_user": [{"events": [{"event_name": "transactional_email_status", "event_data": event}]}],
        "auth": "AUTH_PLACEHOLDER",
    }
    r = client.post(UNIONE, data=sign_unione(json.dumps(document).encode()), content_type="application/json")
    assert r.status_code == 200 and r.json == answer(accepted=1)
    assert responses(api)["c-1001"] == "delivered"


@sqlite_only  # rejected before anything reaches a store
@pytest.mark.parametrize("case", ["no-headers", "wrong-timestamp", "tampered", "broken-json", "bad-base64"])
def test_sendgrid_bad_signature_is_401(client: FlaskClient, app: ResponsesApp, case: str) -> None:
    body = sendgrid_events({"event": "delivered", "sg_event_id": "d-1"})
    headers = sign_sendgrid(body)
    if case == "no-headers":
        headers = {}
    elif case == "wrong-timestamp":
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = "1773482652"
    elif case == "tampered":
        body = body.replace(b"delivered", b"open")
    elif case == "broken-json":
        body = body[:-3]
    else:
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "%%%"
    r = client.post(SENDGRID, data=body, content_type="application/json", headers=headers)
    assert r.status_code == 401
    assert app.journal_position() == 0


@pytest.mark.parametrize("body", [b'[{"event":', b'{"event": "delivered"}'], ids=["broken", "not-an-array"])
def test_sendgrid_signed_but_unparseable_is_quarantined(client: FlaskClient, api: FlaskClient, body: bytes) -> None:
    r = client.post(SENDGRID, data=body, content_type="application/json", headers=sign_sendgrid(body))
    assert r.status_code == 200
    assert r.json == answer(quarantined=1)
    assert api.get("/v1/quarantine").json["items"][0]["raw"] == body.decode()


# ---- canonical signals ------------------------------------------------------------------------


def canonical(*signals: dict[str, Any]) -> dict[str, Any]:
    base = {"mailing_id": SPRING, "contact_id": "c-1006", "occurred_at": "2026-03-14T10:00:00Z"}
    return {"signals": [{**base, **s} for s in signals]}


def test_canonical_signals(api: FlaskClient, spring: dict[str, Any]) -> None:
    body = canonical({"event_id": "e-1", "kind": "delivered"}, {"event_id": "e-2", "kind": "opened"})
    assert api.post(SIGNALS, json=body).json == answer(accepted=2)
    assert api.post(SIGNALS, json=body).json == answer(duplicates=2)
    assert responses(api)["c-1006"] == "opened"


def test_canonical_signals_for_an_unknown_recipient_are_unmatched(api: FlaskClient) -> None:
    body = canonical({"event_id": "e-1", "kind": "delivered", "mailing_id": "later"})
    assert api.post(SIGNALS, json=body).json == answer(unmatched=1)


def test_canonical_bad_items_are_quarantined(api: FlaskClient, spring: dict[str, Any]) -> None:
    body = canonical({"event_id": "e-1", "kind": "delivered"}, {"event_id": "e-2", "kind": "teleported"}, {"kind": "opened"})
    assert api.post(SIGNALS, json=body).json == answer(accepted=1, quarantined=2)
    errors = [i["error"] for i in api.get("/v1/quarantine").json["items"]]
    assert any("teleported" in e for e in errors)


@sqlite_only
@pytest.mark.parametrize(
    "data, code",
    [
        (b'{"signals": [', "malformed_json"),
        (b"", "malformed_json"),
        (b"[]", "malformed_body"),
        (b'{"signals": {}}', "malformed_body"),
    ],
)
def test_canonical_unparseable_body_is_400(api: FlaskClient, app: ResponsesApp, data: bytes, code: str) -> None:
    r = api.post(SIGNALS, data=data, content_type="application/json")
    assert r.status_code == 400
    assert error_of(r)["code"] == code
    assert app.journal_position() == 0


@sqlite_only
def test_canonical_needs_the_bearer_token(client: FlaskClient, app: ResponsesApp) -> None:
    r = client.post(SIGNALS, json=canonical({"event_id": "e-1", "kind": "delivered"}))
    assert r.status_code == 401
    assert app.journal_position() == 0


@sqlite_only
def test_canonical_body_over_the_limit_is_413(api: FlaskClient) -> None:
    r = api.post(SIGNALS, data=b" " * (MAX_BODY + 1), content_type="application/json")
    assert r.status_code == 413


# ---- NUL characters (PostgreSQL text cannot hold them: never journaled) ---------------------


def test_nul_characters_never_reach_the_journal(
    client: FlaskClient, api: FlaskClient, app: ResponsesApp, spring: dict[str, Any]
) -> None:
    event = status_event("c-1006", "delivered", "dina@example.com")
    event["metadata"]["mailing_id"] = "spring\u0000sale"
    assert post_unione(client, unione_body(event)).json == answer(quarantined=1)
    line = elastic_lines()[0].replace("postback=spring-sale", "postback=spring%00sale")
    assert client.get(f"{ELASTIC}?{line}&token={EE_TOKEN}").json == answer(quarantined=1)
    r = api.post(SIGNALS, json=canonical({"event_id": "e\u0000", "kind": "delivered"}, {"event_id": "e-2", "kind": "delivered"}))
    assert r.json == answer(accepted=1, quarantined=1)  # the bad item alone, like the webhooks
    r = api.post("/v1/mailings", json={"id": "m\u0000", "name": "n", "category": "bulk", "provider": "unione"})
    assert r.status_code == 422 and "id" in error_of(r)["details"]
    r = api.post(f"/v1/mailings/{SPRING}/audience", json={"recipients": [{"contact_id": "c\u0000"}]})
    assert r.status_code == 422
    assert api.patch("/v1/contacts/c%00", json={"do_not_use_email": True}).status_code == 404
    assert api.get("/v1/unmatched?mailing_id=%00").status_code == 422
    quarantined = api.get("/v1/quarantine").json["items"]
    assert len(quarantined) == 3 and all("NUL" in q["error"] for q in quarantined)
    assert EE_TOKEN not in quarantined[1]["raw"] and "postback=spring%00sale" in quarantined[1]["raw"]
    assert [q["source"] for q in quarantined] == ["unione", "elasticemail", "canonical"]
    assert client.get("/readyz").json["lag"] == 0
