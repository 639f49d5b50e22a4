"""Sessions of the pages: sign-in with an API token, the cookie, CSRF, sign-out, the session key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application.service import ResponsesApp
from interface.app import create_app
from interface.web.session import COOKIE_NAME, ensure_secret_file
from tests.helpers.http import TOKEN, http_settings
from tests.helpers.web import SECRET, csrf_of, sign_in

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE_NAME)
    assert cookie is not None
    return cookie.value


def test_a_page_without_a_session_sends_to_sign_in_and_back(anonymous: FlaskClient) -> None:
    r = anonymous.get("/mailings?category=bulk")
    assert r.status_code == 302 and r.headers["Location"] == "/login?next=/mailings?category%3Dbulk"
    assert anonymous.get("/").headers["Location"] == "/login?next=/"
    form = anonymous.get("/login?next=/mailings?category%3Dbulk").get_data(as_text=True)
    r = anonymous.post("/login", data={"token": TOKEN, "csrf_token": csrf_of(form), "next": "/mailings?category=bulk"})
    assert r.status_code == 302 and r.headers["Location"] == "/mailings?category=bulk"
    assert anonymous.get("/mailings").status_code == 200
    assert anonymous.get("/").headers["Location"] == "/mailings"


@sqlite_only
def test_the_bearer_token_alone_opens_no_page(api: FlaskClient) -> None:
    assert api.get("/mailings").status_code == 302


@sqlite_only
def test_a_wrong_token_is_refused_and_opens_nothing(anonymous: FlaskClient) -> None:
    r = sign_in(anonymous, "not-the-token")
    assert r.status_code == 401
    assert "That token is not one this service accepts." in r.get_data(as_text=True)
    assert anonymous.get("/mailings").status_code == 302


@sqlite_only
def test_sign_in_needs_the_forms_csrf_token(anonymous: FlaskClient) -> None:
    anonymous.get("/login")
    r = anonymous.post("/login", data={"token": TOKEN})
    assert r.status_code == 400
    assert anonymous.get("/mailings").status_code == 302
    r = anonymous.post("/login", data={"token": TOKEN, "csrf_token": "forged"})
    assert r.status_code == 400


@sqlite_only
def test_the_cookie_holds_a_fingerprint_never_the_token(web: Flask, browser: FlaskClient) -> None:
    raw = session_cookie(browser)
    assert TOKEN not in raw
    with web.test_request_context():
        data = web.session_interface.get_signing_serializer(web).loads(raw)  # type: ignore[attr-defined]
    assert set(data) >= {"fp", "at", "csrf_token"}
    assert TOKEN not in repr(data) and len(data["fp"]) == 64


@sqlite_only
def test_the_cookie_is_httponly_samesite_lax_and_secure_over_https(web: Flask) -> None:
    plain = web.test_client()
    r = sign_in(plain)
    header = next(v for v in r.headers.getlist("Set-Cookie") if v.startswith(COOKIE_NAME))
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" not in header
    assert "Expires=" in header  # a session of hours, not forever
    tls = web.test_client()
    html = tls.get("/login", base_url="https://responses.example").get_data(as_text=True)
    r = tls.post("/login", data={"token": TOKEN, "csrf_token": csrf_of(html)}, base_url="https://responses.example")
    header = next(v for v in r.headers.getlist("Set-Cookie") if v.startswith(COOKIE_NAME))
    assert "Secure" in header and "HttpOnly" in header


@sqlite_only
def test_a_revoked_token_ends_its_sessions(app: ResponsesApp, browser: FlaskClient) -> None:
    cookie = session_cookie(browser)
    other = create_app(
        app, http_settings(app.settings.database_url, secret_key=SECRET, api_tokens=("another-token",))
    ).test_client()
    other.set_cookie(COOKIE_NAME, cookie)
    assert other.get("/mailings").status_code == 302
    same = create_app(app, http_settings(app.settings.database_url, secret_key=SECRET)).test_client()
    same.set_cookie(COOKIE_NAME, cookie)
    assert same.get("/mailings").status_code == 200, "another worker with the same key and token accepts it"


@sqlite_only
def test_a_cookie_signed_with_another_key_is_no_session(app: ResponsesApp, browser: FlaskClient) -> None:
    other = create_app(app, http_settings(app.settings.database_url, secret_key="another-key")).test_client()
    other.set_cookie(COOKIE_NAME, session_cookie(browser))
    assert other.get("/mailings").status_code == 302


@sqlite_only
@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_sign_in_never_redirects_off_site(anonymous: FlaskClient, target: str) -> None:
    form = anonymous.get("/login").get_data(as_text=True)
    r = anonymous.post("/login", data={"token": TOKEN, "csrf_token": csrf_of(form), "next": target})
    assert r.status_code == 302 and r.headers["Location"] == "/mailings"


def test_sign_out_needs_csrf_then_ends_the_session(browser: FlaskClient) -> None:
    assert browser.post("/logout").status_code == 400
    assert browser.get("/mailings").status_code == 200
    html = browser.get("/mailings").get_data(as_text=True)
    r = browser.post("/logout", data={"csrf_token": csrf_of(html)})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert browser.get("/mailings").status_code == 302


@sqlite_only
def test_api_calls_make_no_session_and_no_key(app: ResponsesApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    client = create_app(app, http_settings(app.settings.database_url)).test_client()  # no RESPONSES_SECRET_KEY
    r = client.get("/v1/mailings", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and "Set-Cookie" not in r.headers
    assert not (tmp_path / "var" / "secret-key").exists()
    assert sign_in(client).status_code == 302  # the first page that needs a session makes the key
    key = tmp_path / "var" / "secret-key"
    assert key.read_text().strip() and stat.S_IMODE(os.stat(key).st_mode) == 0o600
    again = create_app(app, http_settings(app.settings.database_url)).test_client()  # another worker, same directory
    again.set_cookie(COOKIE_NAME, client.get_cookie(COOKIE_NAME).value)  # type: ignore[union-attr]
    assert again.get("/mailings").status_code == 200


def test_workers_creating_the_key_together_agree(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret-key"
    first = ensure_secret_file(path)
    assert ensure_secret_file(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret-key"], "no candidate files left behind"


@sqlite_only
def test_pages_answer_with_security_headers(browser: FlaskClient) -> None:
    r = browser.get("/mailings")
    assert (
        "script-src 'self'" in r.headers["Content-Security-Policy"]
        and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    )
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["Cache-Control"] == "no-store"
