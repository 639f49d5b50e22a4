"""What the areas share: their Blueprint class, a response object, ``?lang=``, paging, the ingest answer."""

from __future__ import annotations

import json
from typing import Any

import flask
import flask_smorest
import marshmallow as ma
import orjson
from marshmallow import validate
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request

from application.queries import MAX_PAGE
from domain.catalogue import CODES, REASONS
from interface.http.body import read_limited
from interface.shared.context import settings
from interface.shared.fields import Text

LANGS = ("en", "ru")
# Ids are path segments of the API (/v1/mailings/{id}/recipients/{contact_id}/...): no "/".
PATH_SAFE = validate.Regexp(r"^[^/]*$", error="must not contain '/': ids are part of the API's paths")


class JsonParser(FlaskParser):
    """webargs reading JSON bodies with orjson: faster, and a document nested too deeply
    is a JSON error (400 malformed_json) where the standard library raises ``RecursionError``."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            return missing
        # the body limit holds for chunked bodies too: past it, 413 (not a truncated document's 400)
        data = read_limited(settings().max_body_bytes)
        req._cached_data = data  # what ``get_data`` would have cached
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if data and not exc.doc:  # orjson leaves ``doc`` empty for bad UTF-8: webargs would read "no body"
                raise json.JSONDecodeError(str(exc), repr(data[:40]), 0) from None
            raise


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """Every area's blueprint: flask-smorest's, parsing request bodies with ``JsonParser``."""

    ARGUMENTS_PARSER = JsonParser()


class ResponseObjectSchema(ma.Schema):
    """A response as every answer shows it."""

    code = ma.fields.String(required=True, metadata={"enum": list(CODES)})
    name = ma.fields.String(required=True, metadata={"description": "English, or Russian with ?lang=ru"})
    reason = ma.fields.String(allow_none=True, metadata={"enum": list(REASONS)})


class LangArgsSchema(ma.Schema):
    lang = Text(load_default="en", validate=validate.OneOf(LANGS), metadata={"description": "names of responses"})


class PageArgsSchema(ma.Schema):
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = Text(load_default=None, metadata={"description": "opaque: the `next` of the previous page"})


class IngestAnswerSchema(ma.Schema):
    """What a webhook call did; the counters are disjoint (CONTRACT §7)."""

    accepted = ma.fields.Integer(
        required=True, metadata={"description": "stored for a recipient, or as a test send, notice or informational signal"}
    )
    duplicates = ma.fields.Integer(required=True, metadata={"description": "already stored (provider retries)"})
    unmatched = ma.fields.Integer(
        required=True, metadata={"description": "matched no recipient yet: kept, listed by /v1/unmatched"}
    )
    quarantined = ma.fields.Integer(
        required=True, metadata={"description": "malformed: kept with the error, listed by /v1/quarantine"}
    )


def page_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """``{"items": [item], "next": cursor | null}``."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item), required=True),
            "next": ma.fields.String(allow_none=True, required=True),
        },
        name=name,
    )
