"""Fixtures for the pages: the Flask app over the ``app`` fixture (SQLite and PostgreSQL), a signed-in
browser-like client, and a simulated campaign (``tests/campaign.py``)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application.service import ResponsesApp
from interface.app import create_app
from interface.simulate import Report
from tests.campaign import simulate_campaign
from tests.http.conftest import TOKEN, UNIONE_KEY, http_settings

SECRET = "web-test-secret-key"
MAILING = "sim-spring"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


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


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has a form with a CSRF token"
    return match.group(1)


def sign_in(client: FlaskClient, token: str = TOKEN) -> Any:
    form = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"token": token, "csrf_token": csrf_of(form)})


@pytest.fixture
def browser(web: Flask) -> FlaskClient:
    """A signed-in session (cookies kept, no bearer header: only the session lets it in)."""
    client = web.test_client()
    assert sign_in(client).status_code == 302
    return client


def post_form(client: FlaskClient, page: str, action: str, data: dict[str, Any]) -> Any:
    """Submit a form as a browser does: the CSRF token read from the page it is on."""
    html = client.get(page).get_data(as_text=True)
    return client.post(action, data={**data, "csrf_token": csrf_of(html)})


@pytest.fixture
def campaign(app: ResponsesApp, api: FlaskClient) -> Report:
    """A simulated campaign of 60 recipients through the UniOne webhook (repeatable: seeded)."""
    return simulate_campaign(app, api, TOKEN, UNIONE_KEY, recipients=60, mailing_id=MAILING, seed=1)
