"""Page tests' helpers: the session key, the simulated mailing, CSRF tokens, signing in, posting forms."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from flask.testing import FlaskClient

from tests.helpers.http import TOKEN

SECRET = "web-test-secret-key"


T = TypeVar("T", bound=Callable[..., Any])


def reads_campaign(test: T) -> T:
    """Marks a page test that only reads the simulated campaign: it gets its store's campaign, simulated once
    for the package (tests/web/conftest.py; under pytest-xdist once in each worker that runs such a test)."""
    return pytest.mark.reads_campaign(test)


MAILING = "sim-spring"


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has a form with a CSRF token"
    return match.group(1)


def sign_in(client: FlaskClient, token: str = TOKEN) -> Any:
    form = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"token": token, "csrf_token": csrf_of(form)})


def post_form(client: FlaskClient, page: str, action: str, data: dict[str, Any]) -> Any:
    """Submit a form as a browser does: the CSRF token read from the page it is on."""
    html = client.get(page).get_data(as_text=True)
    return client.post(action, data={**data, "csrf_token": csrf_of(html)})
