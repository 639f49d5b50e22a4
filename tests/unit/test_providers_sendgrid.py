"""SendGrid Event Webhook adapter: ECDSA signature and parsing."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from domain.signals import dedup_key
from interface.providers import sendgrid

NOW = datetime(2026, 3, 14, 13, 0, 0, tzinfo=UTC)
TIMESTAMP = "1773482651"


def _public_b64(private_key: ec.EllipticCurvePrivateKey) -> str:
    der = private_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sign(body: bytes, timestamp: str, private_key: ec.EllipticCurvePrivateKey) -> str:
    return base64.b64encode(private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def public_key(private_key) -> str:
    return _public_b64(private_key)


def event(**fields):
    base = {
        "email": "anna@example.com",
        "timestamp": 1773482651,
        "event": "delivered",
        "sg_event_id": "ZGVsaXZlcmVkLTAtMjQ",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "mailing_id": "spring-sale",
        "contact_id": "c-1001",
    }
    return {**base, **fields}


BODY = orjson.dumps([event(), event(event="open", sg_event_id="b3Blbi0x")])


# --- verify ------------------------------------------------------------------------


def test_valid_signature(private_key, public_key):
    assert sendgrid.verify(BODY, sign(BODY, TIMESTAMP, private_key), TIMESTAMP, public_key)


def test_tampered_body_or_timestamp_fails(private_key, public_key):
    signature = sign(BODY, TIMESTAMP, private_key)
    assert not sendgrid.verify(BODY.replace(b"anna", b"anne"), signature, TIMESTAMP, public_key)
    assert not sendgrid.verify(BODY, signature, "1773482652", public_key)


def test_other_key_fails(private_key):
    other = _public_b64(ec.generate_private_key(ec.SECP256R1()))
    assert not sendgrid.verify(BODY, sign(BODY, TIMESTAMP, private_key), TIMESTAMP, other)


@pytest.mark.parametrize(
    "signature, timestamp, key",
    [
        (None, TIMESTAMP, "key"),
        ("", TIMESTAMP, "key"),
        ("sig", None, "key"),
        ("sig", TIMESTAMP, None),
        ("!!! not base64 !!!", TIMESTAMP, "key"),
        (base64.b64encode(b"not DER").decode(), TIMESTAMP, "key"),
    ],
)
def test_missing_or_garbage_inputs_fail(signature, timestamp, key, public_key):
    assert not sendgrid.verify(BODY, signature, timestamp, public_key if key == "key" else key)


def test_garbage_or_wrong_curve_public_key_fails(private_key):
    signature = sign(BODY, TIMESTAMP, private_key)
    assert not sendgrid.verify(BODY, signature, TIMESTAMP, "bm90IGEga2V5")
    assert not sendgrid.verify(BODY, signature, TIMESTAMP, "%%%")
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert not sendgrid.verify(BODY, sign(BODY, TIMESTAMP, p384), TIMESTAMP, _public_b64(p384))


# --- parse ---------------------------------------------------------------------------


def test_parse_events():
    body = orjson.dumps(
        [
            event(event="processed", sg_event_id="p"),
            event(sg_event_id="d", response="250 OK"),
            event(event="open", sg_event_id="o1", useragent="Mozilla/5.0", sg_machine_open=False),
            event(event="open", sg_event_id="o2", useragent="Apple MPP", sg_machine_open=True),
            event(event="click", sg_event_id="c", url="https://shop.example.com/sale"),
            event(event="bounce", sg_event_id="b", type="bounce", reason="550 5.1.1 User unknown"),
            event(event="bounce", sg_event_id="bl", type="blocked", reason="IP blocked"),
            event(event="deferred", sg_event_id="df", response="451 try later"),
        ]
    )
    batch = sendgrid.parse(body, NOW)
    assert batch.quarantined == [] and batch.notices == []
    processed, delivered, open1, open2, click, bounce, blocked, deferred = (e.signal for e in batch.events)
    assert processed.fields == {"event": "processed"}
    assert processed.source == "sendgrid" and processed.received_at == NOW
    assert processed.occurred_at == datetime(2026, 3, 14, 10, 4, 11, tzinfo=UTC)
    assert processed.key == dedup_key("sendgrid", "p")
    assert delivered.detail == "250 OK"
    assert not open1.machine and open1.user_agent == "Mozilla/5.0"
    assert open2.machine and open2.fields == {"event": "open"}
    assert click.url == "https://shop.example.com/sale"
    assert bounce.fields == {"event": "bounce", "type": "bounce"}
    assert bounce.detail == "550 5.1.1 User unknown" and bounce.reason is None
    assert blocked.fields == {"event": "bounce", "type": "blocked"}
    assert deferred.fields == {"event": "deferred"}
    assert deferred.raw["response"] == "451 try later"
    correlation = batch.events[0].correlation
    assert (correlation.mailing_id, correlation.contact_id, correlation.email, correlation.test) == (
        "spring-sale",
        "c-1001",
        "anna@example.com",
        False,
    )


def test_type_is_kept_only_on_bounces():
    [dropped] = sendgrid.parse(orjson.dumps([event(event="dropped", type="bounce")]), NOW).events
    assert dropped.signal.fields == {"event": "dropped"}


def test_a_bounce_keeps_its_classification_and_a_drop_its_reason():
    body = orjson.dumps(
        [
            event(event="bounce", sg_event_id="b", type="blocked", bounce_classification="Reputation", reason="554 blocked"),
            event(event="dropped", sg_event_id="d", reason="Bounced Address", bounce_classification="Reputation"),
            event(event="deferred", sg_event_id="f", reason="later", bounce_classification="Technical"),
        ]
    )
    bounce, dropped, deferred = (e.signal for e in sendgrid.parse(body, NOW).events)
    assert bounce.fields == {"event": "bounce", "bounce_classification": "Reputation", "type": "blocked"}
    assert bounce.detail == "554 blocked"
    assert dropped.fields == {"event": "dropped", "reason": "Bounced Address"}
    assert dropped.detail == "Bounced Address"
    assert deferred.fields == {"event": "deferred"}


def test_an_account_status_change_is_a_notice_not_a_malformed_event():
    change = {
        "event": "account_status_change",
        "sg_event_id": "YWNjb3VudA",
        "timestamp": 1709142428,
        "type": "compliance_suspend",
    }
    batch = sendgrid.parse(orjson.dumps([event(), change]), NOW)
    assert batch.quarantined == [] and len(batch.events) == 1
    [notice] = batch.notices
    assert (notice.provider, notice.kind, notice.raw, notice.received_at) == ("sendgrid", "account_status_change", change, NOW)
    assert notice.key == dedup_key("sendgrid-notice", "account_status_change", "YWNjb3VudA")


def test_key_without_sg_event_id():
    item = event(event="click", url="https://x.example")
    del item["sg_event_id"]
    [e] = sendgrid.parse(orjson.dumps([item]), NOW).events
    assert e.signal.key == dedup_key(
        "sendgrid", item["sg_message_id"], "click", 1773482651, "anna@example.com", "https://x.example"
    )


def test_correlation_without_custom_args_and_test_flag():
    item = event(test="true", email="Boris@Example.ORG")
    del item["mailing_id"], item["contact_id"]
    [e] = sendgrid.parse(orjson.dumps([item, event(contact_id=1002)]), NOW).events[:1]
    assert e.correlation.mailing_id is None and e.correlation.contact_id is None
    assert e.correlation.email == "boris@example.org"
    assert e.correlation.test
    second = sendgrid.parse(orjson.dumps([event(contact_id=1002)]), NOW).events[0]
    assert second.correlation.contact_id == "1002"


@pytest.mark.parametrize(
    "bad, error",
    [
        ("text", "not an object"),
        ({k: v for k, v in event().items() if k != "event"}, "event"),
        ({k: v for k, v in event().items() if k != "email"}, "email"),
        ({k: v for k, v in event().items() if k != "timestamp"}, "timestamp"),
        (event(timestamp="yesterday"), "timestamp"),
        (event(timestamp=True), "timestamp"),
        (event(timestamp=10**18), "timestamp"),
        (event(timestamp=float("1e30")), "timestamp"),
    ],
)
def test_malformed_event_is_quarantined_alone(bad, error):
    batch = sendgrid.parse(orjson.dumps([event(), bad, event(event="open")]), NOW)
    assert [e.signal.fields["event"] for e in batch.events] == ["delivered", "open"]
    [q] = batch.quarantined
    assert q.source == "sendgrid" and error in q.error
    assert orjson.loads(q.raw_text) == bad


@pytest.mark.parametrize("body", [b"not json", b"", b'{"event":"open"}', b'"x"'])
def test_not_an_array_is_a_value_error(body):
    with pytest.raises(ValueError):
        sendgrid.parse(body, NOW)
