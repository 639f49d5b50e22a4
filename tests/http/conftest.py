"""Fixtures for the HTTP tests: the Flask app over the ``app`` fixture (SQLite and PostgreSQL).

``client`` calls without credentials (webhooks), ``api`` with the bearer token.
Provider secrets are configured: UniOne keys (the fixture's published test key
among them), an Elastic Email token and a SendGrid key pair."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application.service import ResponsesApp
from interface.app import create_app
from tests.helpers.http import (
    TOKEN,
    http_settings,
    start_spring,
)


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
