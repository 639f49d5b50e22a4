"""The API token kept under ``./var/`` when ``RESPONSES_API_TOKENS`` is unset (CONTRACT §9).

``responses serve`` makes it once (mode 0600) and shows it once; gunicorn workers and the pages read it.
The pages' session key (``interface.web.session``) is kept the same way.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from pathlib import Path

from application.config import Settings

TOKEN_FILE = Path("var") / "api-token"


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
