"""Guessing is slow: failed credentials counted per client address, shared by every worker.

A failed sign-in (``/login``), a wrong bearer token and a webhook credential that does not verify each
count one failure against the client's address, in the database (``projections.auth_store``). Once an
address has ``AUTH_FAILURES_PER_MINUTE`` failures (default 10) in the window its first one opened
(a minute), every attempt from it is refused with 429 and ``Retry-After`` (the seconds left in the window),
the right credential included; other addresses are unaffected.

The client's address is the socket's peer, unless that peer is a trusted proxy (``FORWARDED_ALLOW_IPS``,
default 127.0.0.1, as gunicorn reads it): then the nearest address in ``X-Forwarded-For`` that is not a
trusted proxy itself (what a client writes there itself comes before what the proxies append).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, Response, current_app, g, request

from application.config import Settings
from application.service import ResponsesApp
from application.unit_of_work import schema_lock
from interface.shared.errors import error_response
from projections.auth_store import AuthStore

log = logging.getLogger("responses.auth")

EXTENSION = "responses.guard"
WINDOW_SECONDS = 60.0
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Guard:
    """What the sessions and the throttle share: the store, the settings, and the clock (tests move it)."""

    store: AuthStore
    settings: Settings
    clock: Callable[[], float] = time.time
    trusted: tuple[Network, ...] | None = field(default=None)  # None: every peer is trusted ("*")

    def now(self) -> float:
        return self.clock()


def install_guard(flask_app: Flask, responses_app: ResponsesApp, settings: Settings) -> Guard:
    """At start-up: the guard's tables (created once, under the schema lock), and the guard on ``flask_app``."""
    store = AuthStore(responses_app.views)
    with schema_lock(responses_app.settings):
        store.create_tables()
    guard = Guard(store, settings, trusted=trusted_networks(settings.forwarded_allow_ips))
    flask_app.extensions[EXTENSION] = guard
    return guard


def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...] | None:
    if "*" in entries:
        return None
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def guard() -> Guard:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


# ---- the client's address -------------------------------------------------------------------


def _is_trusted(address: str, trusted: tuple[Network, ...] | None) -> bool:
    if trusted is None:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address() -> str:
    """Who is knocking: ``X-Forwarded-For`` is believed only from a trusted proxy (``FORWARDED_ALLOW_IPS``)."""
    peer = request.remote_addr or "unknown"
    trusted = guard().trusted
    if not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
    for hop in reversed(hops):  # the proxies append: the last hop no trusted proxy wrote is the client
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


# ---- counting and refusing ----------------------------------------------------------------------


def retry_after() -> int | None:
    """Seconds until this client may try again, or None when it is not throttled."""
    cached = g.get("_guard_retry_after", False)
    if cached is not False:
        return cached  # type: ignore[no-any-return]
    guard_ = guard()
    now = guard_.now()
    window = guard_.store.failures(client_address(), now, WINDOW_SECONDS)
    wait = None
    if window is not None and window.failures >= guard_.settings.auth_failures_per_minute:
        wait = max(1, math.ceil(window.window_start + WINDOW_SECONDS - now))
    g._guard_retry_after = wait
    return wait


def count_failure(what: str) -> None:
    """One failed credential (``what``: "sign-in", "bearer token", a provider's name) from this client.
    Logged at warning when the address reaches the limit; never the credential itself."""
    guard_ = guard()
    address = client_address()
    window = guard_.store.count_failure(address, guard_.now(), WINDOW_SECONDS)
    g.pop("_guard_retry_after", None)
    limit = guard_.settings.auth_failures_per_minute
    if window.failures == limit:
        log.warning(
            "%d failed credentials from %s within %d s (the last a %s): its attempts are refused until the window ends",
            window.failures,
            address,
            int(WINDOW_SECONDS),
            what,
        )


def throttled_answer(seconds: int) -> Response:
    """429 in the API's error shape, with ``Retry-After``."""
    response, status = error_response(
        429,
        f"too many failed credentials from this address; try again in {seconds} s",
        "too_many_attempts",
        {"retry_after": seconds},
    )
    response.status_code = status
    response.headers["Retry-After"] = str(seconds)
    return response


def refuse_if_throttled() -> Response | None:
    """``before_request`` of routes that check a credential: 429 while this client is throttled."""
    seconds = retry_after()
    if seconds is None:
        return None
    log.info("refused an attempt from throttled %s (%s)", client_address(), request.endpoint)
    return throttled_answer(seconds)
