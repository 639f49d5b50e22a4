"""``/login``, ``/logout`` and ``/``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for

from interface.shared import context
from interface.shared.guard import count_failure, retry_after
from interface.web.rendering import _, page, safe_next
from interface.web.session import sign_in, sign_out, signed_in_as

log = logging.getLogger("responses.web")

bp = Blueprint("auth", __name__)
MAILINGS = "web.mailings.mailings"


@bp.get("/")
def home() -> Any:
    return redirect(url_for(MAILINGS))


@bp.get("/login")
def login() -> Any:
    if signed_in_as() is not None:
        return redirect(safe_next(request.args.get("next")) or url_for(MAILINGS))
    return page("login.html", next_path=safe_next(request.args.get("next")), configured=bool(context.settings().api_tokens))


@bp.post("/login")
def login_submit() -> Any:
    next_path = safe_next(request.form.get("next"))
    configured = bool(context.settings().api_tokens)
    wait = retry_after()
    if wait is not None:  # too many failures from this address: not even the right token is tried
        html, status = page(
            "login.html",
            status=429,
            next_path=next_path,
            configured=configured,
            error=_("Too many failed sign-ins from your address. Try again in %(seconds)d s.", seconds=wait),
        )
        return html, status, {"Retry-After": str(wait)}
    if sign_in(request.form.get("token", "")):
        return redirect(next_path or url_for(MAILINGS))
    log.warning("sign-in refused: not a configured token")  # never the token itself
    count_failure("sign-in")
    return page(
        "login.html",
        status=401,
        error=_("That token is not one this service accepts."),
        next_path=next_path,
        configured=configured,
    )


@bp.post("/logout")
def logout() -> Any:
    sign_out()
    flash(_("Signed out."))
    return redirect(url_for("web.auth.login"))


@bp.get("/preferences")
def preferences() -> Any:
    """The language and the time zone pages show times in (kept in the session; ``?lang=`` / ``?tz=`` set them)."""
    return page("preferences.html", next_path=safe_next(request.args.get("next")) or url_for(MAILINGS))
