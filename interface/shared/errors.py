"""One error format everywhere (CONTRACT §7): ``{"error": {"code", "message", "details"}}``.

Every failure of the HTTP layer ends here: Flask's and werkzeug's HTTP errors
(404, 405, 413...), flask-smorest/webargs validation errors (422, malformed
JSON 400), the application's ``NotFound``/``Conflict``, and anything
unexpected (500, logged, never the exception text).
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from application.errors import Conflict, NotFound
from application.queries import BadCursor
from interface.providers.common import BodyTooLarge

log = logging.getLogger("responses.http")

# HTTP status -> the stable error code clients switch on.
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    500: "internal",
    503: "unavailable",
}


class ErrorBodySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "stable machine-readable code, e.g. not_found"})
    message = ma.fields.String(required=True)
    details = ma.fields.Raw(allow_none=True, metadata={"description": "per-field messages for 422, else null"})


class ErrorSchema(ma.Schema):
    error = ma.fields.Nested(ErrorBodySchema, required=True)


class ApiError(Exception):
    """Raise from a view to answer ``status`` with the error format."""

    def __init__(self, status: int, message: str, code: str | None = None, details: Any = None):
        super().__init__(message)
        self.status, self.message, self.code, self.details = status, message, code or CODES.get(status, "error"), details


def error_response(status: int, message: str, code: str | None = None, details: Any = None) -> tuple[Response, int]:
    """The single place an error answer is built."""
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message, "details": details}}
    return jsonify(body), status


def _validation_details(messages: Any) -> Any:
    """webargs groups messages by location ({"json": {...}, "query": {...}}); clients want them by field."""
    if not isinstance(messages, dict):
        return messages
    details: dict[str, Any] = {}
    for location, errors in messages.items():
        if isinstance(errors, dict):
            details.update(errors)
        else:
            details[location] = errors
    return details


def http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("errors") or data.get("messages")
    if status == 400 and messages == {"json": ["Invalid JSON body."]}:
        return error_response(400, "the request body is not valid JSON", "malformed_json")
    if status == 422:
        return error_response(422, data.get("message") or "invalid input", details=_validation_details(messages))
    if status == 500:
        log.error(
            "internal error: %s", getattr(error, "original_exception", error), exc_info=getattr(error, "original_exception", None)
        )
        return error_response(500, "internal error")
    message = data.get("message") or error.description or error.name
    response, status = error_response(status, str(message))
    allowed = getattr(error, "valid_methods", None)
    if status == 405 and allowed:  # RFC 9110: a 405 says which methods the resource allows
        response.headers["Allow"] = ", ".join(sorted(allowed))
    return response, status


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(ApiError, lambda e: error_response(e.status, e.message, e.code, e.details))
    app.register_error_handler(NotFound, lambda e: error_response(404, f"{e.what} {e.key!r} not found"))
    app.register_error_handler(Conflict, lambda e: error_response(409, str(e)))
    app.register_error_handler(BadCursor, lambda e: error_response(422, str(e), details={"cursor": [str(e)]}))
    app.register_error_handler(BodyTooLarge, lambda e: error_response(413, str(e)))
    app.register_error_handler(TimeoutError, _behind)
    app.register_error_handler(Exception, _unexpected)


def _behind(error: TimeoutError) -> tuple[Response, int]:
    log.warning("views behind the journal: %s", error)
    return error_response(503, "the projection is behind; is `responses project` running?")


def _unexpected(error: Exception) -> tuple[Response, int]:
    log.exception("unhandled error")
    return error_response(500, "internal error")
