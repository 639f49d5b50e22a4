"""Bearer tokens on every /v1 route except the provider webhooks."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from application.config import Settings
from application.service import ResponsesApp
from interface.app import create_app
from interface.http.auth import token_matches
from interface.shared.token_file import ensure_token_file, read_token_file, settings_with_token
from tests.helpers.http import TOKEN, error_of, http_settings, sqlite_only

PROTECTED = [
    ("get", "/v1/mailings"),
    ("post", "/v1/mailings"),
    ("get", "/v1/mailings/m"),
    ("get", "/v1/mailings/m/audience"),
    ("post", "/v1/mailings/m/audience"),
    ("post", "/v1/mailings/m/dispatch"),
    ("post", "/v1/mailings/m/stop"),
    ("get", "/v1/mailings/m/summary"),
    ("get", "/v1/mailings/m/timeline"),
    ("get", "/v1/mailings/m/links"),
    ("get", "/v1/mailings/m/test-sends"),
    ("get", "/v1/contacts/c"),
    ("patch", "/v1/contacts/c"),
    ("post", "/v1/contacts/c/subscriptions"),
    ("post", "/v1/signals"),
    ("get", "/v1/unmatched"),
    ("get", "/v1/quarantine"),
    ("get", "/v1/notices"),
]


@sqlite_only
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer тест"},
    ],
    ids=["none", "wrong", "basic", "empty", "non-ascii"],
)
def test_protected_routes_answer_401_without_a_valid_token(app: ResponsesApp, headers: dict[str, str]) -> None:
    # 18 wrong tokens from one address: above the default throttle (tests/http/test_throttle.py), so raised here
    client = create_app(app, http_settings(app.settings.database_url, auth_failures_per_minute=len(PROTECTED))).test_client()
    for method, path in PROTECTED:
        r = getattr(client, method)(path, headers=headers, json={})
        assert r.status_code == 401, (method, path, r.json)
        assert error_of(r)["code"] == "unauthorized"
    assert app.journal_position() == 0  # nothing stored


def test_a_configured_token_is_accepted(api: FlaskClient, make_client) -> None:
    assert api.get("/v1/mailings").status_code == 200
    other = make_client(api_tokens=("first", "second"))
    assert other.get("/v1/mailings", headers={"Authorization": "Bearer second"}).status_code == 200
    assert other.get("/v1/mailings", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401


def test_without_configured_tokens_every_protected_route_is_401(make_client) -> None:
    client = make_client(api_tokens=())
    assert client.get("/v1/mailings").status_code == 401


def test_webhooks_and_probes_need_no_bearer_token(client: FlaskClient) -> None:
    assert client.get("/v1/webhooks/unione").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_token_matching_is_exact() -> None:
    assert token_matches("abc", ("x", "abc"))
    assert not token_matches("ab", ("abc",))
    assert not token_matches("abc", ())


def test_serve_creates_a_private_token_once(tmp_path) -> None:
    path = tmp_path / "var" / "api-token"
    token, created = ensure_token_file(path)
    assert created and len(token) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_token_file(path) == (token, False)
    assert read_token_file(path) == token


def test_configured_tokens_win_over_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    configured = Settings(api_tokens=("env-token",))
    assert settings_with_token(configured, create=True) == (configured, None)
    assert not (tmp_path / "var").exists()
    bare = Settings()
    assert settings_with_token(bare, create=False) == (bare, None)  # gunicorn never creates one
    created, shown = settings_with_token(bare, create=True)
    assert created.api_tokens == (shown,)
    again, shown_again = settings_with_token(bare, create=False)
    assert again.api_tokens == (shown,) and shown_again is None
