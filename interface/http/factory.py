"""The Flask application: blueprints, OpenAPI (``/openapi.json``, ``/docs``), errors, auth."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from application.config import Settings
from application.queries import Queries
from application.service import ResponsesApp
from interface.http import contacts, inbox, mailings, ops, rules, webhooks
from interface.http.common import MAX_ID_LENGTH
from interface.http.context import EXTENSION, Services
from interface.http.errors import ApiError, ErrorSchema, http_error, register_error_handlers
from interface.http.guard import install_guard
from interface.web import register_web

log = logging.getLogger("responses.http")

SWAGGER_UI_URL = "static/swagger-ui/"  # relative to /docs, so it also works under a path prefix

BLUEPRINTS = (ops.blp, webhooks.blp, webhooks.signals_blp, mailings.blp, contacts.blp, inbox.blp, rules.blp)


class ResponsesApi(Api):  # type: ignore[misc]
    """flask-smorest, answering its errors (404, 405, 422, malformed JSON...) in the contract's format."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        return http_error(error)


def openapi_config(max_body_bytes: int) -> dict[str, Any]:
    return {
        "API_TITLE": "Recipient responses",
        "API_VERSION": "1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        # vendored, pinned assets (interface/http/static/swagger-ui/VERSION.md): /docs works offline
        "OPENAPI_SWAGGER_UI_URL": SWAGGER_UI_URL,
        "API_SPEC_OPTIONS": {
            "info": {"description": "Event-sourced recipient responses for email campaigns (CONTRACT §7)."},
            "security": [{"bearer": []}],
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        },
        "MAX_CONTENT_LENGTH": max_body_bytes,
    }


def create_app(app: ResponsesApp | None = None, settings: Settings | None = None) -> Flask:
    """The HTTP service over ``app`` (built from ``settings``, else the environment, when not given).

    ``settings`` also supplies what only HTTP uses (tokens, webhook secrets, the
    body limit); by default the application's own. The factory starts no
    projection follower: ``responses serve`` runs one in-process, gunicorn
    deployments run ``responses project`` beside the workers.
    """
    settings = settings or (app.settings if app is not None else Settings.from_env())
    responses_app = app if app is not None else ResponsesApp(settings)
    if not settings.api_tokens:
        log.warning("no API token configured (RESPONSES_API_TOKENS): every bearer route answers 401")

    flask_app = Flask("interface.http")
    flask_app.config.update(openapi_config(settings.max_body_bytes))
    flask_app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Russian names as text
    flask_app.json.sort_keys = False  # type: ignore[attr-defined]
    flask_app.extensions[EXTENSION] = Services(responses_app, Queries(responses_app), settings)
    install_guard(flask_app, responses_app, settings)  # page sessions and the count of failed credentials

    api = ResponsesApi(flask_app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    register_error_handlers(flask_app)  # after the Api: ours replace flask-smorest's
    register_web(flask_app, settings)  # the marketer's pages (/login, /mailings, ...): HTML over the same queries
    flask_app.url_value_preprocessor(refuse_impossible_ids)
    flask_app.after_request(no_sniffing)
    return flask_app


def no_sniffing(response: Any) -> Any:
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
