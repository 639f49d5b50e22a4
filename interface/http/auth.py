"""Bearer tokens for every ``/v1`` route except provider webhooks (CONTRACT §7, §9)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import replace
from pathlib import Path

from flask import Response, request

from application.config import Settings
from interface.http import context
from interface.http.errors import ApiError
from interface.http.guard import count_failure, refuse_if_throttled

TOKEN_FILE = Path("var") / "api-token"


def require_bearer() -> Response | None:
    """``before_request`` of the protected blueprints: 401 unless a configured token is presented.

    A wrong token counts against the client's address (``interface.http.guard``); while the address is
    throttled every call answers 429, whatever token it carries."""
    throttled = refuse_if_throttled()
    if throttled is not None:
        return throttled  # type: ignore[no-any-return]
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "missing bearer token (Authorization: Bearer <token>)")
    if not token_matches(given.strip(), context.settings().api_tokens):
        count_failure("bearer token")
        raise ApiError(401, "invalid bearer token")
    return None


def caller() -> str | None:
    """Who is calling, for audit records: a fingerprint of the bearer token, never the token."""
    _, _, given = request.headers.get("Authorization", "").partition(" ")
    return f"token:{hashlib.sha256(given.strip().encode()).hexdigest()[:10]}" if given.strip() else None


def token_matches(given: str, tokens: tuple[str, ...]) -> bool:
    """Constant-time comparison against every configured token."""
    candidate = given.encode("utf-8")
    found = False
    for token in tokens:
        found |= hmac.compare_digest(candidate, token.encode("utf-8"))
    return found


def read_token_file(path: Path = TOKEN_FILE) -> str | None:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return token or None


def ensure_token_file(path: Path = TOKEN_FILE) -> tuple[str, bool]:
    """The token kept in ``path``, created (mode 0600) when missing; returns (token, created)."""
    existing = read_token_file(path)
    if existing:
        return existing, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return token, True


def settings_with_token(settings: Settings, *, create: bool) -> tuple[Settings, str | None]:
    """Settings whose ``api_tokens`` fall back on the token kept under ``./var/``.

    With ``create`` (``responses serve``) the token is made when missing. Returns
    the settings and the token when it was just created (for the caller to show
    once on the terminal: never log it).
    """
    if settings.api_tokens:
        return settings, None
    if create:
        token, created = ensure_token_file()
    else:
        token, created = read_token_file(), False
    if token is None:
        return settings, None
    return replace(settings, api_tokens=(token,)), token if created else None
