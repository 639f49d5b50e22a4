"""The pages as one site: a parent blueprint ``web`` holding one blueprint per page area, with what every
page shares: the sign-in guard, the CSRF check, preferences, security headers, HTML errors and the values
templates see.

Endpoints are ``web.<area>.<view>`` (``web.mailings.mailing``); the assets are ``web.static`` (``/assets``).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from application.config import Settings
from application.errors import Conflict, NotFound
from application.queries import BadCursor
from domain.catalogue import RESPONSES
from interface.shared.errors import ApiError
from interface.web import i18n, pages_auth, pages_contacts, pages_inbox, pages_mailings, pages_rules
from interface.web.rendering import (
    PageError,
    _,
    address_breaks,
    code_spans,
    localtime,
    num,
    page,
    pct,
    pp,
    pretty,
    safe_next,
    url_with,
)
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

AREAS = (pages_auth.bp, pages_mailings.bp, pages_contacts.bp, pages_rules.bp, pages_inbox.bp)
SITE = "web"
LOGIN = f"{SITE}.{pages_auth.bp.name}.login"
OPEN_ENDPOINTS = {LOGIN, f"{SITE}.{pages_auth.bp.name}.login_submit", f"{SITE}.static"}
SECURITY_HEADERS = {
    # no inline script or style anywhere: every asset is served from here (nothing from a CDN)
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    # X-Content-Type-Options: set on every answer by the root (interface.app.no_sniffing)
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def site_blueprint() -> Blueprint:
    """A fresh parent blueprint over the areas (every app gets its own: the areas' hooks stay per app)."""
    site = Blueprint(SITE, __name__, template_folder="templates", static_folder="static", static_url_path="/assets")
    site.before_request(guard)
    site.after_request(security_headers)
    for error, handler in ERROR_PAGES:
        site.register_error_handler(error, handler)
    site.app_context_processor(template_values)
    site.add_app_template_filter(code_spans, "code_spans")
    site.add_app_template_filter(address_breaks, "address_breaks")
    for area in AREAS:
        site.register_blueprint(area)
    return site


def register_web(app: Flask, settings: Settings) -> None:
    configure_sessions(app, settings.secret_key)
    app.register_blueprint(site_blueprint())


# ---- every request of the pages -------------------------------------------------------------------


def guard() -> Any:
    remember_preferences()
    if request.endpoint in OPEN_ENDPOINTS:
        if request.method == "POST" and not csrf_ok():
            return page(
                "login.html",
                status=400,
                error=i18n.translate("The form expired (its security token did not match). Please try again.", current_lang()),
                next_path=safe_next(request.form.get("next")),
            )
        return None
    if signed_in_as() is None:
        if request.method != "GET":
            return redirect(url_for(LOGIN))
        return redirect(url_for(LOGIN, next=request.full_path.rstrip("?")))
    if request.method == "POST" and not csrf_ok():
        return page("error.html", status=400, message=_("The form expired (its security token did not match). Please try again."))
    return None


def security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


# ---- errors as pages --------------------------------------------------------------------------------


def not_found(error: NotFound) -> tuple[str, int]:
    message = i18n.not_found_sentence(error.what, str(error.key), current_lang())
    return render_template("error.html", message=message, title=_("Not found")), 404


def page_error(error: PageError) -> tuple[str, int]:
    return render_template("error.html", message=error.message, title=error.message), error.status


def bad_cursor(error: BadCursor) -> tuple[str, int]:
    return render_template("error.html", message=str(error), title=str(error)), 400


def conflict(error: Conflict) -> tuple[str, int]:
    return render_template("error.html", message=str(error), title=str(error)), 409


def api_error(error: ApiError) -> tuple[str, int]:
    return render_template("error.html", message=error.message, title=error.message), error.status


def http_exception(error: HTTPException) -> tuple[str, int]:
    return render_template("error.html", message=error.description or error.name, title=error.name), error.code or 500


def behind(error: TimeoutError) -> tuple[str, int]:
    log.warning("page answered 503: %s", error)
    return render_template("error.html", message="the projection is behind; is `responses project` running?", title="503"), 503


def unexpected(error: Exception) -> tuple[str, int]:
    log.exception("page failed")
    return render_template("error.html", message=_("Something went wrong"), title=_("Something went wrong")), 500


ERROR_PAGES: tuple[tuple[type[Exception], Any], ...] = (
    (NotFound, not_found),
    (PageError, page_error),
    (BadCursor, bad_cursor),
    (Conflict, conflict),
    (ApiError, api_error),
    (HTTPException, http_exception),
    (TimeoutError, behind),
    (Exception, unexpected),
)


# ---- what templates see -----------------------------------------------------------------------------


def template_values() -> dict[str, Any]:
    if SITE not in request.blueprints:
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
        "rate_name": lambda rate: i18n.rate_name(rate, lang),
        "pp": pp,
        "contact_effect_name": lambda effect: i18n.contact_effect_name(effect, lang),
        "group_name": lambda group: i18n.group_name(group, lang),
        "why_sentence": lambda effect, why, after: i18n.why_sentence(effect, why, after, lang),
        "group_of": lambda code: RESPONSES[code].group if code in RESPONSES else "",
        "pretty": pretty,
    }
