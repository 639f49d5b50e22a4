"""Schemas several areas share: a response object, ``?lang=``, paging, the ingest answer."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from application.queries import MAX_PAGE
from domain.catalogue import CODES, REASONS

LANGS = ("en", "ru")


class ResponseObjectSchema(ma.Schema):
    """A response as every answer shows it."""

    code = ma.fields.String(required=True, metadata={"enum": list(CODES)})
    name = ma.fields.String(required=True, metadata={"description": "English, or Russian with ?lang=ru"})
    reason = ma.fields.String(allow_none=True, metadata={"enum": list(REASONS)})


class LangArgsSchema(ma.Schema):
    lang = ma.fields.String(load_default="en", validate=validate.OneOf(LANGS), metadata={"description": "names of responses"})


class PageArgsSchema(ma.Schema):
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = ma.fields.String(load_default=None, metadata={"description": "opaque: the `next` of the previous page"})


class IngestAnswerSchema(ma.Schema):
    """What a webhook call did; the counters are disjoint (SPEC §7)."""

    accepted = ma.fields.Integer(required=True, metadata={"description": "stored for a recipient, or as a test send, notice or informational signal"})
    duplicates = ma.fields.Integer(required=True, metadata={"description": "already stored (provider retries)"})
    unmatched = ma.fields.Integer(required=True, metadata={"description": "matched no recipient yet: kept, listed by /v1/unmatched"})
    quarantined = ma.fields.Integer(required=True, metadata={"description": "malformed: kept with the error, listed by /v1/quarantine"})


def page_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """``{"items": [item], "next": cursor | null}``."""
    return ma.Schema.from_dict(
        {"items": ma.fields.List(ma.fields.Nested(item), required=True), "next": ma.fields.String(allow_none=True, required=True)},
        name=name,
    )
