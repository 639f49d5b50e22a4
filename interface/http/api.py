"""The API's part of the service: its blueprints under ``/v1``, ``/openapi.json`` and ``/docs`` (CONTRACT §7).

The root (``interface.app``) builds the Flask app and calls ``register_api`` on it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from interface.http import contacts, inbox, mailings, ops, rules, webhooks
from interface.shared.errors import ErrorSchema, http_error

SWAGGER_UI_URL = "static/swagger-ui/"  # relative to /docs, so it also works under a path prefix

BLUEPRINTS = (
    ops.blp,
    webhooks.blp,
    webhooks.signals_blp,
    mailings.blp,
    contacts.blp,
    contacts.erasures_blp,
    inbox.blp,
    rules.blp,
)


class ResponsesApi(Api):  # type: ignore[misc]  # flask-smorest ships no type hints
    """flask-smorest, answering its errors (404, 405, 422, malformed JSON...) in the contract's format."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        return http_error(error)


def openapi_config() -> dict[str, Any]:
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
    }


def register_api(flask_app: Flask) -> ResponsesApi:
    """The API's blueprints and its OpenAPI document on ``flask_app``."""
    flask_app.config.update(openapi_config())
    api = ResponsesApi(flask_app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    return api
