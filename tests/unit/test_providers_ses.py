"""Amazon SES through SNS, the adapter alone: the canonical string, the certificate URL and its file name, the
signature (versions 1 and 2), the certificate store, confirmation, and parsing SES's events into signals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.personal import split_personal
from domain.signals import dedup_key
from interface.providers import ses
from tests.helpers import sns

NOW = datetime(2026, 3, 14, 13, 0, tzinfo=UTC)


def certificates(tmp_path: Path, fetch: bool = False, opener: sns.FakeOpener | None = None) -> ses.Certificates:
    return ses.Certificates(sns.cert_dir(tmp_path / "certs"), fetch, opener or sns.FakeOpener())


# ---- the canonical string and the signature --------------------------------------------------------


@pytest.mark.parametrize(
    "envelope",
    [
        sns.notification({"eventType": "Send"}),
        {k: v for k, v in sns.notification("text").items() if k != "Subject"},  # a Notification without a Subject
        sns.subscription_confirmation(),
        {**sns.subscription_confirmation(), "Type": "UnsubscribeConfirmation"},
    ],
    ids=["notification", "no-subject", "subscription", "unsubscribe"],
)
def test_the_canonical_string_is_snss(envelope: dict[str, object]) -> None:
    assert ses.canonical_string(envelope) == sns.canonical_string(envelope)


def test_unsigned_or_extra_fields_are_not_in_the_canonical_string() -> None:
    envelope = sns.notification("text")
    again = {**envelope, "UnsubscribeURL": "https://elsewhere.example/", "Signature": "x", "Extra": "y"}
    assert ses.canonical_string(envelope) == ses.canonical_string(again)
    assert ses.canonical_string({**envelope, "Message": 7}) is None
    assert ses.canonical_string({**envelope, "Type": "Other"}) is None


@pytest.mark.parametrize("version", ["1", "2"])
def test_both_signature_versions_verify(tmp_path: Path, version: str) -> None:
    envelope = sns.signed(sns.notification({"eventType": "Send"}), version)
    assert ses.refusal(envelope, [sns.TOPIC], certificates(tmp_path)) is None
    other = "2" if version == "1" else "1"  # signed with one digest, said to be the other
    assert "does not verify" in (ses.refusal({**envelope, "SignatureVersion": other}, [sns.TOPIC], certificates(tmp_path)) or "")


@pytest.mark.parametrize(
    "url, region, why",
    [
        (sns.CERT_URL, "us-east-1", None),
        ("https://sns.cn-north-1.amazonaws.com.cn/x.pem", "cn-north-1", None),
        ("https://sns.us-east-1.amazonaws.com:443/x.pem", "us-east-1", None),
        ("https://sns.us-east-1.amazonaws.com:8443/x.pem", "us-east-1", "not https on an SNS host"),
        ("http://sns.us-east-1.amazonaws.com/x.pem", "us-east-1", "not https on an SNS host"),
        ("https://user@sns.us-east-1.amazonaws.com/x.pem", "us-east-1", "not https on an SNS host"),
        ("https://sns.us-east-1.amazonaws.com.evil.example/x.pem", "us-east-1", "not https on an SNS host"),
        ("https://evilsns.us-east-1.amazonaws.com/x.pem", "us-east-1", "not https on an SNS host"),
        ("https://sns.eu-west-1.amazonaws.com/x.pem", "us-east-1", "another region"),
        ("https://[::1/x.pem", "us-east-1", "not a URL"),
        (None, "us-east-1", "no URL"),
    ],
)
def test_only_https_urls_of_the_topics_sns_endpoint(url: object, region: str, why: str | None) -> None:
    said = ses.sns_url(url, region)
    assert (said is None) if why is None else (said is not None and why in said)


@pytest.mark.parametrize(
    "name", ["..", "..%2Fetc%2Fpasswd.pem", ".hidden.pem", "a.pem.exe", "a b.pem", "dir%2Fa.pem", "", "a.crt"]
)
def test_the_certificate_file_is_a_plain_pem_name(tmp_path: Path, name: str) -> None:
    opener = sns.FakeOpener()
    store = certificates(tmp_path, fetch=True, opener=opener)
    certificate, why = store.get(f"https://sns.us-east-1.amazonaws.com/{name}")
    assert certificate is None and "plain .pem file name" in why and opener.calls == []


def test_the_store_reads_the_folder_then_fetches_once_and_keeps(tmp_path: Path) -> None:
    opener = sns.FakeOpener({"https://sns.us-east-1.amazonaws.com/Fetched.pem": sns.signer().pem})
    store = certificates(tmp_path, fetch=True, opener=opener)
    assert store.get(sns.CERT_URL)[0] is not None and opener.calls == []  # from the folder
    for _ in range(3):
        assert store.get("https://sns.us-east-1.amazonaws.com/Fetched.pem")[0] is not None
    assert opener.calls == [("https://sns.us-east-1.amazonaws.com/Fetched.pem", 5.0)]
    opener.answers["https://sns.us-east-1.amazonaws.com/Garbage.pem"] = b"not a certificate"
    assert "not a PEM certificate" in store.get("https://sns.us-east-1.amazonaws.com/Garbage.pem")[1]
    off = certificates(tmp_path, fetch=False, opener=opener)
    assert "fetching is off" in off.get("https://sns.us-east-1.amazonaws.com/Other.pem")[1]


def test_the_default_opener_refuses_anything_but_https() -> None:
    with pytest.raises(ValueError):
        ses.https_get("http://sns.us-east-1.amazonaws.com/x.pem", 5.0)
    with pytest.raises(ValueError):
        ses.https_get("file:///etc/passwd", 5.0)


@pytest.mark.parametrize(
    "change, why",
    [
        ({"TopicArn": "arn:aws:sns:us-east-1:123456789012:other"}, "SES_SNS_TOPIC_ARNS"),
        ({"Type": "Something"}, "not an SNS"),
        ({"SignatureVersion": "0"}, "SignatureVersion"),
        ({"Signature": "%%%"}, "does not verify"),
        ({"MessageId": None}, "missing or not text"),
    ],
)
def test_refusals(tmp_path: Path, change: dict[str, object], why: str) -> None:
    envelope = {**sns.signed(sns.notification({"eventType": "Send"})), **change}
    assert why in (ses.refusal(envelope, [sns.TOPIC], certificates(tmp_path)) or "")


def test_a_topic_that_is_no_arn_is_refused_even_when_allowed(tmp_path: Path) -> None:
    envelope = sns.signed({**sns.notification("x"), "TopicArn": "my-topic"})
    assert "not an SNS topic ARN" in (ses.refusal(envelope, ["my-topic"], certificates(tmp_path)) or "")


def test_confirm_visits_the_subscribe_url_only() -> None:
    opener = sns.FakeOpener({sns.SUBSCRIBE_URL: b"<ok/>"})
    assert ses.confirm(sns.subscription_confirmation(), opener) == "confirmed"
    assert opener.calls == [(sns.SUBSCRIBE_URL, 5.0)]


# ---- parsing -----------------------------------------------------------------------------------------


def parse(message: dict[str, object] | str, message_id: str = "sns-1") -> ses.ParsedBatch:
    return ses.parse(sns.body(sns.notification(message, message_id)), NOW)


def test_an_event_names_its_recipient_by_its_tags_first_values() -> None:
    [event] = parse(json.loads(Path("tests/fixtures/ses/events.json").read_text())[3]["Message"]).events
    assert event.signal.fields == {"eventType": "Click"}
    assert event.signal.url == "https://docs.aws.amazon.com/ses/latest/DeveloperGuide/"
    assert event.signal.user_agent.startswith("Mozilla/5.0 (Windows")
    assert event.signal.occurred_at == datetime(2017, 8, 9, 23, 51, 25, 570000, tzinfo=UTC)
    c = event.correlation
    assert (c.mailing_id, c.contact_id, c.email) == ("spring-sale", "c-1001", "anna@example.com")
    assert event.signal.key == dedup_key("ses", "sns-1", "anna@example.com")


def test_a_bounce_carries_its_type_and_subtype_and_each_recipients_diagnostic() -> None:
    message = {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "Suppressed",
            "bouncedRecipients": [
                {"emailAddress": "a@example.com", "diagnosticCode": "Amazon SES has suppressed sending to this address"},
                {"emailAddress": "b@example.com"},
                {"emailAddress": "A@Example.com"},  # the same recipient twice: one signal
            ],
            "timestamp": "2017-08-05T00:41:02.669Z",
        },
        "mail": {"timestamp": "2017-08-05T00:40:02.012Z", "destination": ["a@example.com", "b@example.com", "c@example.com"]},
    }
    events = parse(message).events
    assert [e.correlation.email for e in events] == ["a@example.com", "b@example.com"]
    assert events[0].signal.fields == {"eventType": "Bounce", "bounceType": "Permanent", "bounceSubType": "Suppressed"}
    assert events[0].signal.detail.startswith("Amazon SES has suppressed") and events[1].signal.detail is None
    assert events[0].correlation.contact_id is None  # an identity notification has no tags: the address decides
    raw = events[1].signal.raw
    assert raw["mail"]["destination"] == ["b@example.com"] and [
        r["emailAddress"] for r in raw["bounce"]["bouncedRecipients"]
    ] == ["b@example.com"]


def test_times_the_events_own_then_the_mails_then_snss() -> None:
    mail = {"timestamp": "2016-10-14T17:38:15.211Z", "destination": ["a@example.com"]}
    [reject] = parse({"eventType": "Reject", "mail": mail, "reject": {"reason": "Bad content"}}).events
    assert reject.signal.occurred_at == datetime(2016, 10, 14, 17, 38, 15, 211000, tzinfo=UTC)
    assert reject.signal.detail == "Bad content"
    [send] = parse({"eventType": "Send", "mail": {"destination": ["a@example.com"]}, "send": {}}).events
    assert send.signal.occurred_at is not None  # SNS's Timestamp


def test_personal_fields_of_an_ses_event_are_only_in_what_is_sealed() -> None:
    message = json.loads(Path("tests/fixtures/ses/events.json").read_text())[0]["Message"]  # headers and all
    message["mail"]["commonHeaders"]["to"] = ["Anna Secret <anna@example.com>"]
    [event] = parse(
        {**message, "eventType": "Open", "open": {"ipAddress": "192.0.2.77", "timestamp": "2017-08-09T22:00:19Z"}}
    ).events
    clear, personal = split_personal({"signal": event.signal.to_record(), "correlation": {"email": event.correlation.email}})
    text = json.dumps(clear)
    assert "anna@example.com" not in text and "Anna Secret" not in text and "192.0.2.77" not in text
    assert personal["signal.raw"]["open"]["ipAddress"] == "192.0.2.77"


@pytest.mark.parametrize(
    "message, error",
    [
        ({"eventType": "Delivery", "mail": {"timestamp": "2016-01-27T14:59:38.237Z"}}, "no recipient"),
        (
            {"eventType": "Bounce", "mail": {"destination": ["a@example.com"]}, "bounce": {"bouncedRecipients": []}},
            "no recipient",
        ),
        ({"eventType": "Send", "mail": {"destination": ["not an address"]}}, "not an address"),
        ({"eventType": "Open", "mail": {"destination": ["a@example.com"]}, "open": {"timestamp": "soon"}}, "timestamp"),
        ({"eventType": "Open", "mail": {"destination": ["a@example.com"]}, "open": "x"}, "'open' is not an object"),
        ({"eventType": "Send", "mail": {"destination": ["a@example.com"], "tags": {"contact_id": [{"x": 1}]}}}, "contact_id"),
        ("[1, 2]", "not an object"),
    ],
)
def test_a_message_that_cannot_be_understood_is_quarantined_whole(message: dict[str, object] | str, error: str) -> None:
    batch = parse(message if isinstance(message, str) else message)
    assert batch.events == [] and batch.notices == [] and len(batch.quarantined) == 1
    assert error in batch.quarantined[0].error


@pytest.mark.parametrize("raw", [b"", b"[]", b'{"Type": "Notification"}', b'{"Type": "Other", "MessageId": "m", "Message": "x"}'])
def test_what_is_no_sns_message_raises_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        ses.parse(raw, NOW)
