"""HTTP tests' helpers: tokens and keys, provider signers, the spring-sale campaign, the error shape."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient

from application.config import Settings
from tests.helpers.stores import FIXTURES

TOKEN = "test-api-token"


UNIONE_TEST_KEY = "6mjstx9gwi7qj8eni6m77hfiiw6aifmss154y4ze"  # the fixture's disabled, published key


UNIONE_KEY = "our-own-unione-project-key"


EE_TOKEN = "elastic-secret-token"


MAX_BODY = 64 * 1024


SENDGRID_PRIVATE = ec.generate_private_key(ec.SECP256R1())


SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_PRIVATE.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


MAILGUN_KEY = "key-mailgun-webhook-signing-test"


BREVO_TOKEN = "brevo-webhook-secret"


POSTMARK_TOKEN = "postmark-webhook-secret"


SPRING = "spring-sale"


SPRING_AUDIENCE = [
    {"contact_id": "c-1001", "name": "Anna", "email": "anna@example.com"},
    {"contact_id": "c-1002", "name": "Boris", "email": "boris@example.org"},
    {"contact_id": "c-1003", "name": "Nobody", "email": "nobody@example.net"},
    {"contact_id": "c-1004", "name": "Vera", "email": "vera@example.com"},
    {"contact_id": "c-1005", "name": "Gleb", "email": "gleb@example.com"},
    {"contact_id": "c-1006", "name": "Dina", "email": "dina@example.com"},
]


def sign_unione(body: bytes, key: str = UNIONE_KEY) -> bytes:
    """tests/fixtures/README.md: MD5 of the body with the placeholder replaced by the key, then the MD5 in its place."""
    digest = hashlib.md5(body.replace(b"AUTH_PLACEHOLDER", key.encode())).hexdigest()
    return body.replace(b"AUTH_PLACEHOLDER", digest.encode())


def sign_sendgrid(body: bytes, timestamp: str = "1773482651") -> dict[str, str]:
    signature = SENDGRID_PRIVATE.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def sign_mailgun(body: dict[str, Any], key: str = MAILGUN_KEY, at: float | None = None) -> bytes:
    """A Mailgun webhook body signed now (or ``at``, Unix seconds): its signature block's timestamp, token and
    signature (tests/fixtures/README.md)."""
    block = dict(body["signature"]) if isinstance(body.get("signature"), dict) else {}
    block["timestamp"] = str(int(time.time() if at is None else at))
    if not isinstance(block.get("token"), str) or not block["token"]:
        block["token"] = "1234567890abcdef1234567890abcdef1234567890abcdef12"
    block["signature"] = hmac.new(key.encode(), (block["timestamp"] + block["token"]).encode(), hashlib.sha256).hexdigest()
    return json.dumps({**body, "signature": block}).encode()


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def elastic_lines() -> list[str]:
    text = (FIXTURES / "elasticemail" / "notifications.txt").read_text()
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def http_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "api_tokens": (TOKEN,),
        "unione_api_keys": (UNIONE_KEY, UNIONE_TEST_KEY),
        "elasticemail_webhook_token": EE_TOKEN,
        "sendgrid_webhook_public_key": SENDGRID_PUBLIC,
        "mailgun_webhook_signing_keys": ("an-old-signing-key", MAILGUN_KEY),
        "brevo_webhook_token": BREVO_TOKEN,
        "postmark_webhook_token": POSTMARK_TOKEN,
        "max_body_bytes": MAX_BODY,
    }
    return Settings(**{**values, **overrides})


def start_spring(api: FlaskClient, provider: str) -> dict[str, Any]:
    """The fixtures' mailing through ``provider``: created, six recipients, dispatched; returns the dispatch answer."""
    r = api.post(
        "/v1/mailings", json={"id": SPRING, "name": "Spring sale", "category": "bulk", "email_type": "news", "provider": provider}
    )
    assert r.status_code == 201, r.json
    r = api.post(f"/v1/mailings/{SPRING}/audience", json={"recipients": SPRING_AUDIENCE})
    assert r.json == {"added": 6, "already_present": 0}
    r = api.post(f"/v1/mailings/{SPRING}/dispatch")
    assert r.status_code == 200, r.json
    return r.json


def error_of(response: Any) -> dict[str, Any]:
    """The contract's error envelope, checked: returns its inner object."""
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    return body["error"]


# Input validation happens before the store is touched: such tests run on SQLite only (keeps the suite fast).
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
