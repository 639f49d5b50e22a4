"""The pages' blueprint: sign-in guard, CSRF check, preferences, formatting helpers, HTML errors."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from application.config import Settings
from application.errors import Conflict, NotFound
from application.queries import BadCursor
from domain.catalogue import RESPONSES
from domain.signals import parse_iso
from interface.http.errors import ApiError
from interface.web import i18n
from interface.web.session import (
    configure_sessions,
    csrf_ok,
    csrf_token,
    current_lang,
    current_tz,
    remember_preferences,
    signed_in_as,
    tz_chosen,
    zones,
)

log = logging.getLogger("responses.web")

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/assets")

OPEN_ENDPOINTS = {"web.login", "web.login_submit", "web.static"}
SECURITY_HEADERS = {
    # no inline script or style anywhere: every asset is served from here (nothing from a CDN)
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    # X-Content-Type-Options: set on every answer by the app factory (interface.http.factory.no_sniffing)
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class PageError(Exception):
    """A page cannot be shown: answered as an HTML page with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def register_web(app: Flask, settings: Settings) -> None:
    configure_sessions(app, settings.secret_key)
    from interface.web import pages_auth, pages_contacts, pages_inbox, pages_mailings, pages_rules  # noqa: F401  (routes)

    app.register_blueprint(bp)


# ---- every request of the pages -------------------------------------------------------------------


@bp.before_request
def guard() -> Any:
    remember_preferences()
    if request.endpoint in OPEN_ENDPOINTS:
        if request.method == "POST" and not csrf_ok():
            return page("login.html", status=400, error=i18n.translate("The form expired (its security token did not match). Please try again.", current_lang()), next_path=safe_next(request.form.get("next")))
        return None
    if signed_in_as() is None:
        if request.method != "GET":
            return redirect(url_for("web.login"))
        return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
    if request.method == "POST" and not csrf_ok():
        return page("error.html", status=400, message=_("The form expired (its security token did not match). Please try again."))
    return None


@bp.after_request
def security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def safe_next(target: str | None) -> str | None:
    """Only a path of this site (never ``//host`` or a scheme): no open redirect after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    return target


# ---- errors as pages --------------------------------------------------------------------------------


@bp.errorhandler(NotFound)
def not_found(error: NotFound) -> tuple[str, int]:
    return render_template("error.html", message=f"{error.what} “{error.key}” — {_('not found')}", title=_("Not found")), 404


@bp.errorhandler(PageError)
def page_error(error: PageError) -> tuple[str, int]:
    return render_template("error.html", message=error.message, title=error.message), error.status


@bp.errorhandler(BadCursor)
def bad_cursor(error: BadCursor) -> tuple[str, int]:
    return render_template("error.html", message=str(error), title=str(error)), 400


@bp.errorhandler(Conflict)
def conflict(error: Conflict) -> tuple[str, int]:
    return render_template("error.html", message=str(error), title=str(error)), 409


@bp.errorhandler(ApiError)
def api_error(error: ApiError) -> tuple[str, int]:
    return render_template("error.html", message=error.message, title=error.message), error.status


@bp.errorhandler(HTTPException)
def http_exception(error: HTTPException) -> tuple[str, int]:
    return render_template("error.html", message=error.description or error.name, title=error.name), error.code or 500


@bp.errorhandler(TimeoutError)
def behind(error: TimeoutError) -> tuple[str, int]:
    log.warning("page answered 503: %s", error)
    return render_template("error.html", message="the projection is behind; is `responses project` running?", title="503"), 503


@bp.errorhandler(Exception)
def unexpected(error: Exception) -> tuple[str, int]:
    log.exception("page failed")
    return render_template("error.html", message=_("Something went wrong"), title=_("Something went wrong")), 500


# ---- what templates see -----------------------------------------------------------------------------


def _(text: str, **values: object) -> str:
    return i18n.translate(text, current_lang(), **values)


def page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    return render_template(template, **values), status


def url_with(**changes: Any) -> str:
    """The current page's URL with some query arguments changed (None drops one)."""
    args = {k: v for k, v in request.args.items()}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = str(value)
    query = urlencode(args)
    return request.path + (f"?{query}" if query else "")


def to_local(value: Any) -> datetime | None:
    when = value if isinstance(value, datetime) else parse_iso(value) if value else None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(ZoneInfo(current_tz()))


def localtime(value: Any, seconds: bool = True) -> str:
    when = to_local(value)
    if when is None:
        return "—"
    return when.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def pct(rate: float | None) -> str:
    if rate is None:
        return "—"
    text = f"{rate * 100:.1f} %"
    return text.replace(".", ",") if current_lang() == "ru" else text


def num(value: Any) -> str:
    if value is None:
        return "—"
    text = f"{int(value):,}"
    return text.replace(",", "\u00a0") if current_lang() == "ru" else text


def pretty(value: Any) -> str:
    """A payload as indented JSON text (plain text: the template escapes it, so markup in it stays text)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


@bp.app_context_processor
def template_values() -> dict[str, Any]:
    if request.blueprint != "web":
        return {}
    lang = current_lang()
    return {
        "_": _,
        "lang": lang,
        "tz": current_tz(),
        "tz_chosen": tz_chosen(),
        "zones": zones,
        "csrf_token": csrf_token,
        "who": signed_in_as(),
        "url_with": url_with,
        "localtime": localtime,
        "pct": pct,
        "num": num,
        "response_name": lambda code: i18n.response_name(code, lang),
        "reason_name": lambda reason: i18n.reason_name(reason, lang),
        "group_name": lambda group: i18n.group_name(group, lang),
        "why_sentence": lambda effect, why, after: i18n.why_sentence(effect, why, after, lang),
        "group_of": lambda code: RESPONSES[code].group if code in RESPONSES else "",
        "pretty": pretty,
    }
