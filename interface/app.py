"""The interface's root: ``create_app`` builds the one Flask service, the API and the pages over the same
services (CONTRACT §7).

It imports both parts, the API (``interface.http``) and the marketer's pages (``interface.web``), and what
they share (``interface.shared``); neither part imports the other, nor this module.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response

from application.config import Settings
from application.queries import Queries
from application.service import ResponsesApp
from interface.http.api import register_api
from interface.http.webhooks import install_sns
from interface.providers.ses import Opener
from interface.shared.context import EXTENSION, Services
from interface.shared.errors import ApiError, register_error_handlers
from interface.shared.fields import MAX_ID_LENGTH
from interface.shared.guard import install_guard
from interface.web import register_web

log = logging.getLogger("responses.http")


def create_app(app: ResponsesApp | None = None, settings: Settings | None = None, sns_opener: Opener | None = None) -> Flask:
    """The HTTP service over ``app`` (built from ``settings``, else the environment, when not given).

    ``settings`` also supplies what only HTTP uses (tokens, webhook secrets, the
    body limit); by default the application's own. The factory starts no
    projection follower: ``responses serve`` runs one in-process, gunicorn
    deployments run ``responses project`` beside the workers. ``sns_opener``: how the SES webhook reaches
    SNS (certificates, subscription confirmations), by default over https (tests inject their own).
    """
    settings = settings or (app.settings if app is not None else Settings.from_env())
    responses_app = app if app is not None else ResponsesApp(settings)
    if not settings.api_tokens:
        log.warning("no API token configured (RESPONSES_API_TOKENS): every bearer route answers 401")

    flask_app = Flask("interface.http")  # its static folder: the vendored Swagger UI of /docs (interface/http/static)
    flask_app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    flask_app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Russian names as text
    flask_app.json.sort_keys = False  # type: ignore[attr-defined]
    flask_app.extensions[EXTENSION] = Services(responses_app, Queries(responses_app), settings)
    install_guard(flask_app, responses_app, settings)  # page sessions and the count of failed credentials
    install_sns(flask_app, settings, sns_opener)  # SNS certificates and confirmations of the SES webhook

    register_api(flask_app)
    register_error_handlers(flask_app)  # after the Api: ours replace flask-smorest's
    register_web(flask_app, settings)  # the marketer's pages (/login, /mailings, ...): HTML over the same queries
    flask_app.url_value_preprocessor(refuse_impossible_ids)
    flask_app.after_request(no_sniffing)
    return flask_app


def no_sniffing(response: Response) -> Response:
    """A browser never guesses another type than the one stated (a stored payload served as JSON stays JSON)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def refuse_impossible_ids(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Ids are at most ``MAX_ID_LENGTH`` characters, without NUL (PostgreSQL text and indexes cannot hold
    what is beyond): a path holding another names nothing, and must not create a contact."""
    for value in (values or {}).values():
        text = str(value)
        if len(text) > MAX_ID_LENGTH or "\x00" in text:
            raise ApiError(404, f"no such resource: ids are 1 to {MAX_ID_LENGTH} characters, without NUL")
