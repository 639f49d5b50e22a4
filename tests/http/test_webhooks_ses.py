"""Amazon SES through SNS (issue 17, CONTRACT §6), on both stores: SNS messages signed by a test certificate
authority's certificate in SES_SNS_CERT_DIR (SignatureVersion 1 and 2) verify; forged, altered, wrongly signed
and other topics' messages are 401 with nothing stored; certificates are fetched only when allowed (https, SNS
hosts, once); a subscription confirmation is a notice with its SubscribeURL, confirmed only when allowed;
event publishing and identity notifications fold as the table says; a retry is a duplicate."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from application.service import ResponsesApp
from interface.app import create_app
from tests.helpers.http import SPRING, TOKEN, error_of, fixture_json, http_settings, sqlite_only, start_spring
from tests.helpers.sns import (
    CERT_NAME,
    CERT_URL,
    SUBSCRIBE_URL,
    TOPIC,
    FakeOpener,
    body,
    cert_dir,
    notification,
    signed,
    signer,
    subscription_confirmation,
)
from tests.helpers.web import sign_in

SES = "/v1/webhooks/ses"
NOTHING = {"accepted": 0, "duplicates": 0, "unmatched": 0, "quarantined": 0}


def answer(**counts: int) -> dict[str, int]:
    return {**NOTHING, **counts}


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def opener() -> FakeOpener:
    return FakeOpener()


@pytest.fixture
def ses_client(app: ResponsesApp, tmp_path: Path, opener: FakeOpener) -> Callable[..., tuple[FlaskClient, FlaskClient]]:
    """``ses_client(**settings)``: (webhook client, bearer client) of an app taking TOPIC, certificates in a tmp
    SES_SNS_CERT_DIR, the network played by ``opener``."""

    def make(**overrides: Any) -> tuple[FlaskClient, FlaskClient]:
        values = {"ses_sns_topic_arns": (TOPIC,), "ses_sns_cert_dir": str(cert_dir(tmp_path / "certs")), **overrides}
        flask_app = create_app(app, http_settings(app.settings.database_url, **values), sns_opener=opener)
        api = flask_app.test_client()
        api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        return flask_app.test_client(), api

    return make


def post(client: FlaskClient, envelope: dict[str, Any] | bytes) -> Any:
    data = envelope if isinstance(envelope, bytes) else body(envelope)
    return client.post(SES, data=data, content_type="text/plain; charset=UTF-8")


def audience(api: FlaskClient) -> dict[str, tuple[str, str | None]]:
    items = api.get(f"/v1/mailings/{SPRING}/audience").json["items"]
    return {i["contact_id"]: (i["response"]["code"], i["response"]["reason"]) for i in items}


def fixture_envelopes(version: str = "1") -> list[dict[str, Any]]:
    return [signed(notification(e["Message"], e["MessageId"]), version) for e in fixture_json("ses/events.json")]


@pytest.mark.parametrize("version", ["1", "2"])
def test_the_fixture_events_verify_fold_and_their_retries_are_duplicates(ses_client, version: str) -> None:
    client, api = ses_client()
    start_spring(api, "ses")
    envelopes = fixture_envelopes(version)
    for envelope in envelopes:
        assert post(client, envelope).json == answer(accepted=1)
    for envelope in envelopes:  # SNS retries with the same MessageId
        assert post(client, envelope).json == answer(duplicates=1)
    assert audience(api) == {
        "c-1001": ("clicked", None),
        "c-1002": ("soft_bounce", "mailbox_problem"),
        "c-1003": ("hard_bounce", "unknown_recipient"),
        "c-1004": ("rejected", "content_rejected"),
        "c-1005": ("spam_complaint", None),
        "c-1006": ("delivered", None),
    }
    links = api.get(f"/v1/mailings/{SPRING}/links").json["links"]
    assert [link["url"] for link in links] == ["https://docs.aws.amazon.com/ses/latest/DeveloperGuide/"]
    assert api.get("/v1/contacts/c-1004").json["flags"]["do_not_use_email"] is False  # SES refused a virus: not them


def test_an_identity_notification_has_no_tags_and_names_its_recipients_by_address(ses_client) -> None:
    client, api = ses_client()
    start_spring(api, "ses")
    message = {  # django-anymail's test_multiple_bounce_event, with the spring-sale addresses and the time of now
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": "nobody@example.net"}, {"emailAddress": "Gleb <gleb@example.com>"}],
            "timestamp": now_iso(),
        },
        "mail": {
            "messageId": "00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000",
            "destination": ["nobody@example.net", "vera@example.com", "gleb@example.com"],
            "commonHeaders": {"to": ["Nobody <nobody@example.net>, Vera <vera@example.com>, Gleb <gleb@example.com>"]},
        },
    }
    envelope = signed(notification(message))
    assert post(client, envelope).json == answer(accepted=2)  # the two bounced recipients, not the third
    assert post(client, envelope).json == answer(duplicates=2)
    responses = audience(api)
    assert responses["c-1003"] == responses["c-1005"] == ("hard_bounce", "other")
    assert responses["c-1004"] == ("sent_to_provider", None)
    history = api.get(f"/v1/mailings/{SPRING}/recipients/c-1003/history").json["signals"]
    [kept] = [s["raw"] for s in history if s["source"] == "ses"]
    assert "commonHeaders" not in kept["mail"] and kept["mail"]["destination"] == ["nobody@example.net"]  # no neighbour


def test_texts_and_other_messages_of_the_topic_are_notices(ses_client) -> None:
    client, api = ses_client()
    text = "Successfully validated SNS topic for Amazon SES event publishing."
    assert post(client, signed(notification(text, "7fbca0d9-eeab-5285-ae27-f3f57f2e84b0"))).json == answer(accepted=1)
    succeeded = {"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "You have successfully subscribed"}
    assert post(client, signed(notification(succeeded, "7fbca0d9-eeab-5285-ae27-f3f57f2e84b1"))).json == answer(accepted=1)
    inbound = {"notificationType": "Received", "mail": {"destination": ["us@example.com"]}, "content": "the whole mail"}
    assert post(client, signed(notification(inbound, "8f6dee70-c885-558a-be7d-bd48bbf5335e"))).json == answer(accepted=1)
    notices = api.get("/v1/notices").json["items"]
    assert sorted(n["kind"] for n in notices) == ["AmazonSnsSubscriptionSucceeded", "Notification", "Received"]
    assert "the whole mail" not in json.dumps(notices)  # an inbound mail is not kept


def test_a_subscription_confirmation_is_a_notice_showing_its_subscribe_url(ses_client, opener: FakeOpener) -> None:
    client, api = ses_client()
    envelope = signed(subscription_confirmation())
    assert post(client, envelope).json == answer(accepted=1)
    assert post(client, envelope).json == answer(duplicates=1)
    [notice] = api.get("/v1/notices").json["items"]
    assert notice["kind"] == "SubscriptionConfirmation" and notice["raw"]["SubscribeURL"] == SUBSCRIBE_URL
    assert "auto_confirm" not in notice["raw"] and opener.calls == []  # SES_SNS_AUTO_CONFIRM is off
    assert sign_in(client).status_code == 302
    page = client.get("/inbox?tab=notices").get_data(as_text=True)
    assert f'href="{SUBSCRIBE_URL.replace("&", "&amp;")}"' in page and "Confirm the subscription" in page


def test_with_auto_confirm_the_service_confirms_it_through_sns(ses_client, opener: FakeOpener) -> None:
    opener.answers[SUBSCRIBE_URL] = b"<ConfirmSubscriptionResponse/>"
    client, api = ses_client(ses_sns_auto_confirm=True)
    assert post(client, signed(subscription_confirmation())).json == answer(accepted=1)
    assert opener.calls == [(SUBSCRIBE_URL, 5.0)]
    assert api.get("/v1/notices").json["items"][0]["raw"]["auto_confirm"] == "confirmed"


@pytest.mark.parametrize(
    "url, said",
    [
        ("http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC, "not https on an SNS host"),
        ("https://sns.us-east-1.amazonaws.com.evil.example/?Action=ConfirmSubscription", "not https on an SNS host"),
        ("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC, "another region"),
        ("https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&TopicArn=" + TOPIC, "not this topic's"),
        (
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:1:other",
            "not this topic's",
        ),
    ],
)
def test_auto_confirm_visits_only_this_topics_sns_confirmation(ses_client, opener: FakeOpener, url: str, said: str) -> None:
    client, api = ses_client(ses_sns_auto_confirm=True)
    assert post(client, signed(subscription_confirmation(SubscribeURL=url))).json == answer(accepted=1)
    assert opener.calls == []
    assert said in api.get("/v1/notices").json["items"][0]["raw"]["auto_confirm"]


def test_a_failed_confirmation_is_said_and_the_notice_kept(ses_client, opener: FakeOpener) -> None:
    opener.answers[SUBSCRIBE_URL] = TimeoutError("timed out")
    client, api = ses_client(ses_sns_auto_confirm=True)
    assert post(client, signed(subscription_confirmation())).json == answer(accepted=1)
    assert api.get("/v1/notices").json["items"][0]["raw"]["auto_confirm"] == "not confirmed: TimeoutError: 'timed out'"


def test_a_certificate_is_fetched_once_only_when_allowed(ses_client, opener: FakeOpener, tmp_path: Path) -> None:
    empty = tmp_path / "no-certs"
    empty.mkdir()
    client, api = ses_client(ses_sns_cert_dir=str(empty))
    envelope = signed(subscription_confirmation())
    assert post(client, envelope).status_code == 401  # not in the folder, fetching off
    assert opener.calls == []
    opener.answers[CERT_URL] = signer().pem
    client, api = ses_client(ses_sns_cert_dir=None, ses_sns_fetch_certs=True)
    assert post(client, envelope).json == answer(accepted=1)
    message = fixture_json("ses/events.json")[0]
    assert post(client, signed(notification(message["Message"], message["MessageId"]))).json == answer(unmatched=1)
    assert opener.calls == [(CERT_URL, 5.0)]  # fetched once, then kept


@sqlite_only  # refused before anything reaches a store
@pytest.mark.parametrize(
    "case",
    [
        "unsigned",
        "forged",
        "altered-message",
        "altered-subject",
        "wrong-key",
        "wrong-topic",
        "unknown-version",
        "http-cert-url",
        "other-host",
        "lookalike-host",
        "other-region",
        "traversal",
        "not-pem-name",
        "cert-not-found",
        "not-json",
        "raw-delivery",
    ],
)
def test_what_sns_did_not_sign_is_401_and_stores_nothing(ses_client, app: ResponsesApp, opener: FakeOpener, case: str) -> None:
    client, _ = ses_client(ses_sns_fetch_certs=True)
    message = fixture_json("ses/events.json")[1]
    good = notification(message["Message"], message["MessageId"])
    envelope: dict[str, Any] | bytes
    if case == "unsigned":
        envelope = good
    elif case == "forged":
        envelope = {**signed(good), "Signature": "RVhBTVBMRS1TSUdOQVRVUkU9PQ=="}
    elif case == "altered-message":
        envelope = signed(good)
        envelope["Message"] = envelope["Message"].replace("anna@", "hanna@")
    elif case == "altered-subject":
        envelope = {**signed(good), "Subject": "Another subject"}
    elif case == "wrong-key":
        envelope = signed(good, who=signer("somebody else"))
    elif case == "wrong-topic":
        envelope = signed({**good, "TopicArn": "arn:aws:sns:us-east-1:123456789012:somebody-elses"})
    elif case == "unknown-version":
        envelope = {**signed(good), "SignatureVersion": "3"}
    else:
        urls = {
            "http-cert-url": CERT_URL.replace("https:", "http:"),
            "other-host": f"https://certs.example.com/{CERT_NAME}",
            "lookalike-host": f"https://sns.us-east-1.amazonaws.com.evil.example/{CERT_NAME}",
            "other-region": f"https://sns.eu-west-1.amazonaws.com/{CERT_NAME}",
            "traversal": "https://sns.us-east-1.amazonaws.com/..%2F..%2Fetc%2Fpasswd.pem",
            "not-pem-name": "https://sns.us-east-1.amazonaws.com/.hidden.pem",
            "cert-not-found": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
        }
        if case in urls:
            envelope = signed({**good, "SigningCertURL": urls[case]})
        elif case == "not-json":
            envelope = b"Type=Notification&Message=x"
        else:  # raw message delivery: the SES event itself, unsigned
            envelope = json.dumps(message["Message"]).encode()
    r = post(client, envelope)
    assert r.status_code == 401, r.json
    assert error_of(r)["code"] == "unauthorized"
    assert app.journal_position() == 0
    assert [url for url, _ in opener.calls if not url.endswith("SimpleNotificationService-0000.pem")] == []


@sqlite_only
def test_without_allowed_topics_every_message_is_401(ses_client, app: ResponsesApp) -> None:
    client, _ = ses_client(ses_sns_topic_arns=())
    assert post(client, signed(subscription_confirmation())).status_code == 401
    assert app.journal_position() == 0


def test_a_signed_message_that_is_no_ses_event_is_quarantined(ses_client) -> None:
    client, api = ses_client()
    no_recipient = {"eventType": "Delivery", "mail": {"timestamp": now_iso(), "messageId": "m"}, "delivery": {}}
    bad_time = {"eventType": "Open", "mail": {"destination": ["a@example.com"]}, "open": {"timestamp": "yesterday"}}
    for n, message in enumerate([no_recipient, bad_time, "[1, 2]"]):
        text = message if isinstance(message, str) else json.dumps(message)
        assert post(client, signed(notification(text, f"q-{n}"))).json == answer(quarantined=1)
    errors = [q["error"] for q in api.get("/v1/quarantine").json["items"]]
    assert len(errors) == 3 and any("no recipient" in e for e in errors) and any("timestamp" in e for e in errors)
