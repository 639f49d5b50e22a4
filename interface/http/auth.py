"""Bearer tokens for every ``/v1`` route except provider webhooks (CONTRACT §7, §9)."""

from __future__ import annotations

import hashlib
import hmac

from flask import Response, request

from interface.shared import context
from interface.shared.errors import ApiError
from interface.shared.guard import count_failure, refuse_if_throttled


def require_bearer() -> Response | None:
    """``before_request`` of the protected blueprints: 401 unless a configured token is presented.

    A wrong token counts against the client's address (``interface.shared.guard``); while the address is
    throttled every call answers 429, whatever token it carries."""
    throttled = refuse_if_throttled()
    if throttled is not None:
        return throttled
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
