"""Sessions of the marketer pages: sign-in with an API token, CSRF tokens, language and time zone.

The cookie is signed with ``RESPONSES_SECRET_KEY`` (else a key kept in ``./var/secret-key``, made once
and shared by every worker that runs in the same directory). It holds an HMAC fingerprint of the token
the marketer signed in with, never the token, and the session's id. A signed-in session is one whose
id is still recorded in the database (``projections.auth_store``, shared by every worker), begun less
than ``SESSION_MAX_HOURS`` ago (use does not extend it), whose token is still configured: signing out
deletes the record, so a cookie kept from before opens nothing.
HttpOnly, SameSite=Lax, and Secure whenever the request came over HTTPS.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from application.persistence.keys import ensure_key_file
from interface.shared import context
from interface.shared.context import EXTENSION
from interface.shared.guard import guard

log = logging.getLogger("responses.web")

SECRET_FILE = Path("var") / "secret-key"
COOKIE_NAME = "responses_session"
SESSION_HOURS = 12  # when the app's settings are not at hand; else SESSION_MAX_HOURS
SESSION_ID = "sid"
LANGS = ("en", "ru")
DEFAULT_TZ = "UTC"
CSRF_FIELD = "csrf_token"


def ensure_secret_file(path: Path = SECRET_FILE) -> str:
    """The session key kept in ``path``; made (mode 0600) when missing, workers starting together agreeing on
    one (``ensure_key_file``, as the data keys' files)."""
    return ensure_key_file(path, make=lambda: secrets.token_urlsafe(48))


class WebSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, with the key read only when a page needs a session (API calls never make
    one), and ``Secure`` decided per request."""

    def __init__(self, secret: Callable[[], str]):
        self._secret = secret
        self._key: str | None = None

    def key(self) -> str:
        if self._key is None:
            self._key = self._secret()
        return self._key

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self.key(),
            salt=self.salt,
            serializer=self.serializer,
            signer_kwargs={"key_derivation": self.key_derivation, "digest_method": self.digest_method},
        )

    def open_session(self, app: Flask, request: Any) -> Any:
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()  # nothing to verify: no key needed yet
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure)

    def get_expiration_time(self, app: Flask, session: Any) -> datetime | None:
        """A signed-in session's cookie expires when the session does (its sign-in plus the lifetime),
        however often it is sent back."""
        began = session.get("at") if session.permanent else None
        if isinstance(began, int):
            return datetime.fromtimestamp(began, UTC) + app.permanent_session_lifetime
        return super().get_expiration_time(app, session)


def configure_sessions(app: Flask, secret_key: str | None) -> WebSessionInterface:
    interface = WebSessionInterface((lambda: secret_key) if secret_key else ensure_secret_file)
    app.session_interface = interface
    services = app.extensions.get(EXTENSION)
    hours = services.settings.session_max_hours if services is not None else SESSION_HOURS
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=hours),
    )
    return interface


# ---- who is signed in ---------------------------------------------------------------------------


def _interface() -> WebSessionInterface:
    return current_app.session_interface  # type: ignore[return-value]


def token_fingerprint(token: str) -> str:
    """What the cookie holds of a token: an HMAC under the session key (not reversible, not guessable offline)."""
    return hmac.new(_interface().key().encode(), token.encode("utf-8"), hashlib.sha256).hexdigest()


def who_of(token: str) -> str:
    """The same fingerprint the API's audit records use for a bearer token (interface.http.auth.caller)."""
    return f"token:{hashlib.sha256(token.encode()).hexdigest()[:10]}"


def session_key(session_id: str) -> str:
    """What the database keeps of a session id: a digest (a copy of the table opens no session)."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def max_age_seconds() -> float:
    return context.settings().session_max_hours * 3600


def sign_in(token: str) -> bool:
    """Open a session for ``token`` when it is a configured API token (constant-time comparison)."""
    given = token.strip().encode("utf-8")
    matched = None
    for configured in context.settings().api_tokens:
        if hmac.compare_digest(given, configured.encode("utf-8")):
            matched = configured
    if matched is None:
        return False
    previous = session.get(SESSION_ID)
    if isinstance(previous, str):  # signing in again: the session it replaces ends
        guard().store.end_session(session_key(previous))
    now = guard().now()
    session_id = secrets.token_urlsafe(32)
    guard().store.open_session(session_key(session_id), who_of(matched), now, forget_before=now - max_age_seconds())
    keep = {k: session[k] for k in ("lang", "tz") if k in session}
    session.clear()
    session.update(keep)
    session.permanent = True
    session["fp"] = token_fingerprint(matched)
    session["at"] = int(now)
    session[SESSION_ID] = session_id
    session[CSRF_FIELD] = secrets.token_urlsafe(32)  # a new one once signed in
    g._signed_in_as = who_of(matched)
    return True


def signed_in_as() -> str | None:
    """Who the session belongs to (a token fingerprint), or None: not signed in, signed out, past its
    lifetime, or its token was removed. Read once a request."""
    if "_signed_in_as" not in g:
        g._signed_in_as = _session_owner()
    return g._signed_in_as  # type: ignore[no-any-return]


def _session_owner() -> str | None:
    fingerprint = session.get("fp")
    session_id = session.get(SESSION_ID)
    if not isinstance(fingerprint, str) or not isinstance(session_id, str):
        return None
    owner = None
    for configured in context.settings().api_tokens:
        if hmac.compare_digest(fingerprint, token_fingerprint(configured)):
            owner = who_of(configured)
    if owner is None:
        return None  # its token is no longer configured
    began = guard().store.session_started(session_key(session_id))
    if began is None or guard().now() - began >= max_age_seconds():
        return None  # signed out (or pruned), or past its lifetime
    return owner


def sign_out() -> None:
    """End the session for good: its record goes, so the cookie (or a copy of it) opens nothing."""
    session_id = session.get(SESSION_ID)
    if isinstance(session_id, str):
        guard().store.end_session(session_key(session_id))
    keep = {k: session[k] for k in ("lang", "tz") if k in session}
    session.clear()
    session.update(keep)
    g._signed_in_as = None


# ---- CSRF -------------------------------------------------------------------------------------------


def csrf_token() -> str:
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def csrf_ok() -> bool:
    expected = session.get(CSRF_FIELD)
    given = request.form.get(CSRF_FIELD, "")
    return isinstance(expected, str) and hmac.compare_digest(expected.encode(), given.encode())


# ---- preferences ------------------------------------------------------------------------------------


def remember_preferences() -> None:
    """``?lang=`` and ``?tz=`` on any page: kept in the session (a preference changes no data)."""
    lang = request.args.get("lang")
    if lang in LANGS and session.get("lang") != lang:
        session["lang"] = lang
    tz = request.args.get("tz")
    if tz and tz != session.get("tz") and valid_zone(tz):
        session["tz"] = tz


def current_lang() -> str:
    lang = session.get("lang")
    if lang in LANGS:
        return lang  # type: ignore[return-value]
    return request.accept_languages.best_match(LANGS, default="en") or "en"


def current_tz() -> str:
    tz = session.get("tz")
    return tz if isinstance(tz, str) and valid_zone(tz) else DEFAULT_TZ


def tz_chosen() -> bool:
    return isinstance(session.get("tz"), str)


_ZONES: list[str] | None = None


def zones() -> list[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = sorted(
            z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/"))
        )
        _ZONES.insert(0, "UTC")
    return _ZONES


def valid_zone(name: str) -> bool:
    if len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
