"""Forget a contact reached through the providers added by issue 17 (CONTRACT §12), on both stores: each
provider's personal fields (SES ``mail.destination``, ``mail.headers``, ``mail.commonHeaders``, the event's
recipients, ``ipAddress``; Mailgun ``recipient``, ``message.headers``, ``ip``, ``geolocation``; Postmark
``Recipient``, ``Geo``, ``OriginalLink``, ``Details``; Brevo ``email``, its IP) are kept
only sealed under the contact's key, and once the contact is erased neither their address nor anything else
of theirs the provider sent is in the store's bytes (the SQLite file and its WAL, or a ``pg_dump``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from application.service import ResponsesApp
from interface.app import create_app
from tests.helpers import sns
from tests.helpers.http import BREVO_TOKEN, POSTMARK_TOKEN, TOKEN, http_settings, sign_mailgun
from tests.http.test_erasure import stored_bytes

ADDRESS = "Gleb.Secret@Mail.Example.com"
IP = "203.0.113.77"
CITY = "Tainyi Gorod"
PERSONAL = [ADDRESS.lower(), quote(ADDRESS.lower(), safe=""), IP, CITY]
CLICKED = f"https://shop.example.com/sale?u={quote(ADDRESS.lower(), safe='')}"


def mailgun_events(client: FlaskClient) -> None:
    base = {"recipient": ADDRESS, "user-variables": {"mailing_id": "spring", "contact_id": "gleb"}, "ip": IP}
    headers = {"message": {"headers": {"to": f"Gleb <{ADDRESS}>", "message-id": "m-1@example.org"}}}
    for n, event in enumerate(
        [
            {"event": "delivered", **headers},
            {"event": "opened", "geolocation": {"country": "RU", "city": CITY}, "client-info": {"user-agent": "Mozilla/5.0"}},
            {"event": "clicked", "url": CLICKED},
        ]
    ):
        body = sign_mailgun({"event-data": {**base, **event, "id": f"e-{n}", "timestamp": time.time()}})
        assert client.post("/v1/webhooks/mailgun", data=body, content_type="application/json").json["accepted"] == 1


def brevo_events(client: FlaskClient) -> None:
    custom = '{"mailing_id": "spring", "contact_id": "gleb"}'
    now = int(time.time())
    base = {"email": ADDRESS, "message-id": "<m-1@relay>", "X-Mailin-custom": custom, "sending_ip": IP, "city": CITY}
    events = [
        {**base, "event": "delivered", "ts_event": now},
        {**base, "event": "unique_opened", "ts_event": now + 1},
        {**base, "event": "click", "ts_event": now + 2, "link": CLICKED},
    ]
    r = client.post(f"/v1/webhooks/brevo?token={BREVO_TOKEN}", json=events)
    assert r.json["accepted"] == 3, r.json


def postmark_events(client: FlaskClient) -> None:
    now = datetime.now(UTC).isoformat()
    base = {"MessageID": "m-1", "Recipient": ADDRESS, "Metadata": {"mailing_id": "spring", "contact_id": "gleb"}}
    geo = {"Geo": {"City": CITY, "IP": IP}, "UserAgent": "Mozilla/5.0"}
    for record in [
        {**base, "RecordType": "Delivery", "DeliveredAt": now, "Details": f"250 OK <{ADDRESS}>"},
        {**base, **geo, "RecordType": "Open", "ReceivedAt": now},
        {**base, **geo, "RecordType": "Click", "ReceivedAt": now, "OriginalLink": CLICKED},
    ]:
        r = client.post(f"/v1/webhooks/postmark?token={POSTMARK_TOKEN}", json=record)
        assert r.json["accepted"] == 1, r.json


def ses_events(client: FlaskClient) -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    mail = {
        "timestamp": now,
        "messageId": "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000",
        "destination": [ADDRESS],
        "headers": [{"name": "To", "value": f"{CITY} <{ADDRESS}>"}],
        "commonHeaders": {"to": [f"{CITY} <{ADDRESS}>"], "subject": "Spring"},
        "tags": {"mailing_id": ["spring"], "contact_id": ["gleb"]},
    }
    for n, message in enumerate(
        [
            {"eventType": "Delivery", "mail": mail, "delivery": {"timestamp": now, "recipients": [ADDRESS], "remoteMtaIp": IP}},
            {"eventType": "Open", "mail": mail, "open": {"timestamp": now, "ipAddress": IP, "userAgent": "Mozilla/5.0"}},
            {"eventType": "Click", "mail": mail, "click": {"timestamp": now, "ipAddress": IP, "link": CLICKED}},
        ]
    ):
        r = client.post("/v1/webhooks/ses", data=sns.body(sns.signed(sns.notification(message, f"sns-{n}"))))
        assert r.json["accepted"] == 1, r.json


PROVIDERS: dict[str, Callable[[FlaskClient], None]] = {
    "mailgun": mailgun_events,
    "brevo": brevo_events,
    "postmark": postmark_events,
    "ses": ses_events,
}


def hits(data: bytes) -> list[str]:
    lowered = data.lower()
    return [needle for needle in PERSONAL if needle.lower().encode() in lowered]


@pytest.fixture
def clients(app: ResponsesApp, tmp_path: Path) -> tuple[FlaskClient, FlaskClient]:
    """(webhooks, bearer) of an app that also takes the tests' SNS topic, its certificate in a tmp folder."""
    settings = http_settings(
        app.settings.database_url, ses_sns_topic_arns=(sns.TOPIC,), ses_sns_cert_dir=str(sns.cert_dir(tmp_path))
    )
    flask_app = create_app(app, settings)
    api = flask_app.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return flask_app.test_client(), api


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_providers_personal_fields_are_sealed_and_erased(
    app: ResponsesApp, clients: tuple[FlaskClient, FlaskClient], provider: str
) -> None:
    client, api = clients
    r = api.post("/v1/mailings", json={"id": "spring", "name": "Spring", "category": "bulk", "provider": provider})
    assert r.status_code == 201
    api.post("/v1/mailings/spring/audience", json={"recipients": [{"contact_id": "gleb", "email": ADDRESS, "name": "Gleb"}]})
    assert api.post("/v1/mailings/spring/dispatch").status_code == 200
    PROVIDERS[provider](client)
    app.wait_for_views()
    before = api.get("/v1/mailings/spring/summary").json
    assert before["delivered"] == 1 and before["unique_clicks"] == 1

    notifications = app.recorder.select_notifications(start=1, limit=10_000)
    journal = b"".join(bytes(n.state) for n in notifications)
    assert hits(journal) == []  # nothing the provider sent of them is in the journal in clear
    assert b"u={email}" in journal  # the click URL's identity, the address replaced
    history = api.get("/v1/mailings/spring/recipients/gleb/history").json["signals"]
    assert any(IP in str(s["raw"]) for s in history if s["source"] == provider)  # sealed, not lost

    assert api.post("/v1/contacts/gleb/erase", json={"basis": "GDPR art. 17"}).status_code == 200
    assert hits(stored_bytes(app)) == []
    assert api.get("/v1/mailings/spring/summary").json == before
    history = api.get("/v1/mailings/spring/recipients/gleb/history").json["signals"]
    assert all(s["raw"] is None for s in history if s["source"] == provider)
