"""Fixtures for the pages: the Flask app over the ``app`` fixture (SQLite and PostgreSQL), a signed-in
browser-like client, and a simulated campaign (``tests/campaign.py``)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application.service import ResponsesApp
from interface.app import create_app
from interface.simulate import Report
from tests.campaign import simulate_campaign
from tests.helpers.http import TOKEN, UNIONE_KEY, http_settings
from tests.helpers.web import MAILING, SECRET, sign_in


@pytest.fixture
def web(app: ResponsesApp) -> Flask:
    return create_app(app, http_settings(app.settings.database_url, secret_key=SECRET))


@pytest.fixture
def api(web: Flask) -> FlaskClient:
    client = web.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


@pytest.fixture
def client_raw(web: Flask) -> FlaskClient:
    """No credentials at all: a provider calling its webhook."""
    return web.test_client()


@pytest.fixture
def anonymous(web: Flask) -> FlaskClient:
    return web.test_client()


@pytest.fixture
def browser(web: Flask) -> FlaskClient:
    """A signed-in session (cookies kept, no bearer header: only the session lets it in)."""
    client = web.test_client()
    assert sign_in(client).status_code == 302
    return client


@pytest.fixture
def campaign(app: ResponsesApp, api: FlaskClient) -> Report:
    """A simulated campaign of 60 recipients through the UniOne webhook (repeatable: seeded)."""
    return simulate_campaign(app, api, TOKEN, UNIONE_KEY, recipients=60, mailing_id=MAILING, seed=1)
