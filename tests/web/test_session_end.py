"""Sessions end (issue 14): signing out ends the session for every copy of its cookie, a session lives
``SESSION_MAX_HOURS`` from its sign-in however much it is used, and removing a token ends its sessions.
On both stores: the sessions are kept in the database every worker shares."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from application.config import Settings
from application.service import ResponsesApp
from interface.app import create_app
from interface.shared.guard import EXTENSION as GUARD
from interface.web.session import COOKIE_NAME
from tests.helpers.http import TOKEN, http_settings
from tests.helpers.web import SECRET, csrf_of, sign_in

HOUR = 3600.0
T0 = 1_800_000_000.0


class Clock:
    """The guard's clock, moved by the test (no sleeps)."""

    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def with_clock(flask_app: Flask, clock: Clock) -> Flask:
    flask_app.extensions[GUARD].clock = clock
    return flask_app


def worker(app: ResponsesApp, **overrides: Any) -> Flask:
    """Another worker over the same database, with the same session key."""
    return create_app(app, http_settings(app.settings.database_url, secret_key=SECRET, **overrides))


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE_NAME)
    assert cookie is not None
    return cookie.value


def client_with(flask_app: Flask, cookie: str) -> FlaskClient:
    client = flask_app.test_client()
    client.set_cookie(COOKIE_NAME, cookie)
    return client


def sign_out(client: FlaskClient) -> Any:
    html = client.get("/mailings").get_data(as_text=True)
    return client.post("/logout", data={"csrf_token": csrf_of(html)})


def is_sign_in_page(response: Any) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_a_cookie_kept_from_before_sign_out_opens_nothing(app: ResponsesApp, web: Flask, browser: FlaskClient) -> None:
    captured = cookie_of(browser)
    assert client_with(web, captured).get("/mailings").status_code == 200, "the copy works while the session lives"
    assert sign_out(browser).status_code == 302
    replay = client_with(web, captured)
    assert is_sign_in_page(replay.get("/mailings"))
    assert is_sign_in_page(replay.get("/rules"))
    html = replay.get("/login").get_data(as_text=True)  # the sign-in page, not a page of the service
    assert 'name="token"' in html
    assert is_sign_in_page(client_with(worker(app), captured).get("/mailings")), "another worker refuses it too"


def test_a_form_posted_with_a_cookie_kept_from_before_sign_out_changes_nothing(
    app: ResponsesApp, web: Flask, browser: FlaskClient
) -> None:
    captured = cookie_of(browser)
    form_token = csrf_of(browser.get("/mailings").get_data(as_text=True))
    assert sign_out(browser).status_code == 302
    before = app.journal_position()
    r = client_with(web, captured).post("/contacts/c-1/flags", data={"csrf_token": form_token, "do_not_use_email": "yes"})
    assert is_sign_in_page(r)
    assert app.journal_position() == before, "nothing journaled"


def test_a_session_ends_its_lifetime_after_sign_in_however_much_it_is_used(app: ResponsesApp) -> None:
    clock = Clock()
    web = with_clock(worker(app), clock)
    browser = web.test_client()
    assert sign_in(browser).status_code == 302
    for minutes in range(0, 12 * 60, 30):  # used every half hour: never idle
        clock.now = T0 + minutes * 60
        assert browser.get("/mailings").status_code == 200, minutes
    clock.now = T0 + 12 * HOUR
    assert is_sign_in_page(browser.get("/mailings"))
    assert is_sign_in_page(client_with(web, cookie_of(browser)).get("/mailings"))


def test_session_max_hours_sets_the_lifetime(app: ResponsesApp) -> None:
    clock = Clock()
    web = with_clock(worker(app, session_max_hours=2.0), clock)
    browser = web.test_client()
    assert sign_in(browser).status_code == 302
    header = next(v for v in browser.get("/mailings").headers.getlist("Set-Cookie") if v.startswith(COOKIE_NAME))
    assert "Expires=" in header
    clock.now = T0 + 2 * HOUR - 1
    assert browser.get("/mailings").status_code == 200
    clock.now = T0 + 2 * HOUR
    assert is_sign_in_page(browser.get("/mailings"))
    assert sign_in(browser).status_code == 302, "signing in again opens a new session"
    assert browser.get("/mailings").status_code == 200


def test_removing_a_token_ends_its_sessions(app: ResponsesApp) -> None:
    both = worker(app, api_tokens=(TOKEN, "second-token"))
    first, second = both.test_client(), both.test_client()
    assert sign_in(first, TOKEN).status_code == 302
    assert sign_in(second, "second-token").status_code == 302
    without_first = worker(app, api_tokens=("second-token",))  # the token removed from RESPONSES_API_TOKENS
    assert is_sign_in_page(client_with(without_first, cookie_of(first)).get("/mailings"))
    assert client_with(without_first, cookie_of(second)).get("/mailings").status_code == 200, "other tokens' sessions live on"


def test_sessions_past_their_lifetime_are_pruned(app: ResponsesApp) -> None:
    clock = Clock()
    web = with_clock(worker(app), clock)
    for _ in range(3):
        assert sign_in(web.test_client()).status_code == 302
    store = web.extensions[GUARD].store
    assert store.session_count() == 3
    clock.now = T0 + 12 * HOUR + 1
    assert sign_in(web.test_client()).status_code == 302
    assert store.session_count() == 1


def test_session_max_hours_from_the_environment() -> None:
    assert Settings.from_env({}).session_max_hours == 12.0
    assert Settings.from_env({"SESSION_MAX_HOURS": "0.5"}).session_max_hours == 0.5
    for bad in ("0", "-1", "inf", "soon"):
        try:
            Settings.from_env({"SESSION_MAX_HOURS": bad})
        except ValueError:
            continue
        raise AssertionError(f"SESSION_MAX_HOURS={bad} accepted")
