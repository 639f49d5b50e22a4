"""Guessing is slow (issue 14): failed sign-ins, bearer tokens and webhook credentials are counted per
client address in the database every worker shares; past 10 failures in a minute every attempt from
that address answers 429 with ``Retry-After`` (the right credential included) until the window ends."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application.config import ConfigError, Settings
from application.service import ResponsesApp
from interface.app import create_app
from interface.shared.guard import EXTENSION as GUARD
from tests.helpers.http import EE_TOKEN, TOKEN, error_of, http_settings, sqlite_only
from tests.helpers.web import csrf_of

T0 = 1_800_000_000.0
LIMIT = 10
ATTACKER = "198.51.100.7"
NEIGHBOUR = "198.51.100.8"
PROXY = "127.0.0.1"


class Clock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def instance(app: ResponsesApp, clock: Clock, **overrides: Any) -> Flask:
    flask_app = create_app(app, http_settings(app.settings.database_url, secret_key="throttle-test", **overrides))
    flask_app.extensions[GUARD].clock = clock
    return flask_app


@pytest.fixture
def service(app: ResponsesApp, clock: Clock) -> Flask:
    return instance(app, clock)


def from_address(flask_app: Flask, address: str, forwarded_for: str | None = None) -> FlaskClient:
    client = flask_app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if forwarded_for is not None:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client


def bearer(client: FlaskClient, token: str) -> Any:
    return client.get("/v1/mailings", headers={"Authorization": f"Bearer {token}"})


def assert_throttled(response: Any, retry_after: int) -> None:
    assert response.status_code == 429, (response.status_code, response.get_data(as_text=True)[:200])
    assert response.headers["Retry-After"] == str(retry_after)


def guess_bearer(client: FlaskClient, times: int = LIMIT) -> None:
    for i in range(times):
        r = bearer(client, f"guess-{i}")
        assert r.status_code == 401, i


def test_the_eleventh_wrong_token_and_the_right_one_after_it_answer_429_until_the_window_ends(
    service: Flask, clock: Clock
) -> None:
    attacker = from_address(service, ATTACKER)
    guess_bearer(attacker)
    clock.now = T0 + 15
    r = bearer(attacker, "guess-11")
    assert_throttled(r, 45)
    assert error_of(r)["code"] == "too_many_attempts"
    assert_throttled(bearer(attacker, TOKEN), 45)  # the right token included
    assert bearer(from_address(service, NEIGHBOUR), TOKEN).status_code == 200, "another address is unaffected"
    clock.now = T0 + 59
    assert_throttled(bearer(attacker, TOKEN), 1)
    clock.now = T0 + 60
    assert bearer(attacker, TOKEN).status_code == 200, "the window ended"


def test_wrong_sign_ins_are_counted_and_then_refused_with_429(service: Flask, clock: Clock) -> None:
    attacker = from_address(service, ATTACKER)
    csrf = csrf_of(attacker.get("/login").get_data(as_text=True))
    for i in range(LIMIT):
        assert attacker.post("/login", data={"token": f"guess-{i}", "csrf_token": csrf}).status_code == 401, i
    r = attacker.post("/login", data={"token": "guess-11", "csrf_token": csrf})
    assert_throttled(r, 60)
    assert "Too many failed sign-ins" in r.get_data(as_text=True)
    assert_throttled(attacker.post("/login", data={"token": TOKEN, "csrf_token": csrf}), 60)
    assert attacker.get("/mailings").status_code == 302, "the right token opened nothing"
    neighbour = from_address(service, NEIGHBOUR)
    csrf = csrf_of(neighbour.get("/login").get_data(as_text=True))
    assert neighbour.post("/login", data={"token": TOKEN, "csrf_token": csrf}).status_code == 302


def test_wrong_webhook_credentials_are_counted_and_then_refused_with_429(service: Flask, clock: Clock) -> None:
    attacker = from_address(service, ATTACKER)
    for i in range(LIMIT - 1):
        assert attacker.get(f"/v1/webhooks/elasticemail?token=guess-{i}").status_code == 401, i
    assert attacker.post("/v1/webhooks/unione", data=b'{"auth": "00", "events_by_user": []}').status_code == 401
    assert_throttled(attacker.get("/v1/webhooks/elasticemail?token=guess-11"), 60)
    assert_throttled(attacker.get(f"/v1/webhooks/elasticemail?token={EE_TOKEN}&transaction=t&to=x&status=Sent"), 60)
    r = from_address(service, NEIGHBOUR).get(f"/v1/webhooks/elasticemail?token={EE_TOKEN}")
    assert r.status_code == 200, r.get_data(as_text=True)


def test_failures_of_every_kind_add_up(service: Flask, clock: Clock) -> None:
    attacker = from_address(service, ATTACKER)
    guess_bearer(attacker, 4)
    for i in range(3):
        assert attacker.get(f"/v1/webhooks/elasticemail?token=guess-{i}").status_code == 401
    csrf = csrf_of(attacker.get("/login").get_data(as_text=True))
    for i in range(3):
        assert attacker.post("/login", data={"token": f"guess-{i}", "csrf_token": csrf}).status_code == 401
    assert_throttled(bearer(attacker, TOKEN), 60)


def test_x_forwarded_for_names_the_client_only_through_an_allowed_proxy(service: Flask, clock: Clock) -> None:
    guess_bearer(from_address(service, PROXY, forwarded_for=ATTACKER))  # through the proxy on this host
    assert_throttled(bearer(from_address(service, PROXY, forwarded_for=f"10.9.9.9, {ATTACKER}"), TOKEN), 60)
    assert bearer(from_address(service, PROXY, forwarded_for=NEIGHBOUR), TOKEN).status_code == 200
    assert bearer(from_address(service, PROXY, forwarded_for=f"{ATTACKER}, {NEIGHBOUR}"), TOKEN).status_code == 200, (
        "what the client wrote before the proxy's own entry is not believed"
    )
    # not through an allowed proxy: the header is the client's own word, the socket's address counts
    direct = "203.0.113.5"
    for i in range(LIMIT):
        assert bearer(from_address(service, direct, forwarded_for=f"192.0.2.{i}"), f"guess-{i}").status_code == 401
    assert_throttled(bearer(from_address(service, direct, forwarded_for="192.0.2.200"), TOKEN), 60)
    assert bearer(from_address(service, PROXY, forwarded_for="192.0.2.1"), TOKEN).status_code == 200


def test_forwarded_allow_ips_names_the_proxies(app: ResponsesApp, clock: Clock) -> None:
    behind = instance(app, clock, forwarded_allow_ips=("10.0.0.0/8",))
    guess_bearer(from_address(behind, "10.1.2.3", forwarded_for=ATTACKER))
    assert_throttled(bearer(from_address(behind, "10.4.5.6", forwarded_for=ATTACKER), TOKEN), 60)
    assert bearer(from_address(behind, PROXY, forwarded_for=ATTACKER), TOKEN).status_code == 200, "127.0.0.1 is no proxy here"


def test_every_worker_shares_the_count(app: ResponsesApp, clock: Clock) -> None:
    second_app = ResponsesApp(Settings(database_url=app.settings.database_url))  # another process's connections
    try:
        first, second = instance(app, clock), instance(second_app, clock)
        guess_bearer(from_address(first, ATTACKER), 5)
        guess_bearer(from_address(second, ATTACKER), 5)
        assert_throttled(bearer(from_address(first, ATTACKER), TOKEN), 60)
        assert_throttled(bearer(from_address(second, ATTACKER), TOKEN), 60)
        assert bearer(from_address(second, NEIGHBOUR), TOKEN).status_code == 200
    finally:
        second_app.close()


def test_ended_windows_are_pruned(service: Flask, clock: Clock) -> None:
    for n in range(20):
        assert bearer(from_address(service, f"192.0.2.{n}"), "wrong").status_code == 401
    store = service.extensions[GUARD].store
    assert store.failure_rows() == 20
    clock.now = T0 + 61
    assert bearer(from_address(service, ATTACKER), "wrong").status_code == 401
    assert store.failure_rows() == 1


def test_the_log_says_who_is_throttled_never_the_token(service: Flask, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    secret_guess = "my-secret-guess-token"
    with caplog.at_level(logging.INFO):
        for _ in range(LIMIT + 1):
            bearer(from_address(service, ATTACKER), secret_guess)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "responses.auth"]
    assert len(warnings) == 1 and ATTACKER in warnings[0].getMessage()
    assert all(secret_guess not in r.getMessage() for r in caplog.records)


@sqlite_only
def test_the_limit_and_the_proxies_from_the_environment(database_url: str) -> None:
    settings = Settings.from_env({})
    assert settings.forwarded_allow_ips == ("127.0.0.1",) and settings.auth_failures_per_minute == 10
    env = {"FORWARDED_ALLOW_IPS": "10.0.0.0/8, 192.168.1.1", "AUTH_FAILURES_PER_MINUTE": "3"}
    assert Settings.from_env(env).forwarded_allow_ips == ("10.0.0.0/8", "192.168.1.1")
    assert Settings.from_env({"FORWARDED_ALLOW_IPS": "*"}).forwarded_allow_ips == ("*",)
    for bad in ({"FORWARDED_ALLOW_IPS": "proxy.example"}, {"AUTH_FAILURES_PER_MINUTE": "0"}):
        with pytest.raises(ConfigError):
            Settings.from_env(bad)


def test_auth_failures_per_minute_sets_the_limit(app: ResponsesApp, clock: Clock) -> None:
    strict = instance(app, clock, auth_failures_per_minute=3)
    guess_bearer(from_address(strict, ATTACKER), 3)
    assert_throttled(bearer(from_address(strict, ATTACKER), TOKEN), 60)
