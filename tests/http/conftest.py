"""Fixtures for the HTTP tests: the Flask app over the ``app`` fixture (SQLite and PostgreSQL).

``client`` calls without credentials (webhooks), ``api`` with the bearer token.
Provider secrets are configured: UniOne keys (the fixture's published test key
among them), an Elastic Email token and a SendGrid key pair.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from application.config import Settings
from application.service import ResponsesApp
from interface.app import create_app
from tests.conftest import FIXTURES

TOKEN = "test-api-token"
UNIONE_TEST_KEY = "6mjstx9gwi7qj8eni6m77hfiiw6aifmss154y4ze"  # the fixture's disabled, published key
UNIONE_KEY = "our-own-unione-project-key"
EE_TOKEN = "elastic-secret-token"
MAX_BODY = 64 * 1024
SENDGRID_PRIVATE = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_PRIVATE.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()

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
        "max_body_bytes": MAX_BODY,
    }
    return Settings(**{**values, **overrides})


@pytest.fixture
def flask_app(app: ResponsesApp) -> Flask:
    return create_app(app, http_settings(app.settings.database_url))


@pytest.fixture
def make_client(app: ResponsesApp) -> Callable[..., FlaskClient]:
    """``make_client(**settings overrides)``: a client of an app configured otherwise (bearer token set)."""

    def make(**overrides: Any) -> FlaskClient:
        client = create_app(app, http_settings(app.settings.database_url, **overrides)).test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        return client

    return make


@pytest.fixture
def client(flask_app: Flask) -> FlaskClient:
    """No credentials: for webhooks and the 401s."""
    return flask_app.test_client()


@pytest.fixture
def api(flask_app: Flask) -> FlaskClient:
    """With ``Authorization: Bearer <token>``."""
    test_client = flask_app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return test_client


def start_spring(api: FlaskClient, provider: str) -> dict[str, Any]:
    """The fixtures' mailing through ``provider``: created, six recipients, dispatched; returns the dispatch answer."""
    r = api.post("/v1/mailings", json={"id": SPRING, "name": "Spring sale", "category": "bulk", "email_type": "news", "provider": provider})
    assert r.status_code == 201, r.json
    r = api.post(f"/v1/mailings/{SPRING}/audience", json={"recipients": SPRING_AUDIENCE})
    assert r.json == {"added": 6, "already_present": 0}
    r = api.post(f"/v1/mailings/{SPRING}/dispatch")
    assert r.status_code == 200, r.json
    return r.json


@pytest.fixture
def spring(api: FlaskClient) -> dict[str, Any]:
    """The fixtures' mailing, sent through UniOne."""
    return start_spring(api, "unione")


@pytest.fixture
def spring_elastic(api: FlaskClient) -> dict[str, Any]:
    """The fixtures' mailing, sent through Elastic Email (another provider's events about it are not counted)."""
    return start_spring(api, "elasticemail")


@pytest.fixture
def spring_sendgrid(api: FlaskClient) -> dict[str, Any]:
    """The fixtures' mailing, sent through SendGrid."""
    return start_spring(api, "sendgrid")


def error_of(response: Any) -> dict[str, Any]:
    """The contract's error envelope, checked: returns its inner object."""
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    return body["error"]


# Input validation happens before the store is touched: such tests run on SQLite only (keeps the suite fast).
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
