"""Mailings: create, audience, dispatch, stop, and their analytics (SPEC §5, §7)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from application.errors import Conflict
from application.service import CATEGORIES
from domain.catalogue import CODES
from domain.signals import PROVIDERS
from interface.http.auth import require_bearer
from interface.http.common import MAX_ID_LENGTH, PATH_SAFE, Blueprint, UtcTime, LangArgsSchema, PageArgsSchema, ResponseObjectSchema, Text, page_schema
from interface.http.context import caught_up_views, fresh_views, service
from interface.http.errors import ApiError, ErrorSchema

blp = Blueprint("mailings", __name__, url_prefix="/v1/mailings", description="Mailings, their audience and analytics")
blp.before_request(require_bearer)

TIME = {"format": "date-time"}
MAX_HOURS = 24 * 366


# ---- schemas ---------------------------------------------------------------------------------


class MailingCreateSchema(ma.Schema):
    id = Text(required=True, validate=[validate.Length(min=1, max=MAX_ID_LENGTH), PATH_SAFE])
    name = Text(required=True, validate=validate.Length(min=1, max=1000))
    category = Text(required=True, validate=validate.OneOf(CATEGORIES))
    email_type = Text(allow_none=True, load_default=None, validate=validate.Length(min=1, max=200))
    provider = Text(required=True, validate=validate.OneOf(PROVIDERS))
    expires_at = UtcTime(allow_none=True, load_default=None)
    prevent_duplicates = ma.fields.Boolean(load_default=False)


class SummaryCountsSchema(ma.Schema):
    audience = ma.fields.Integer(required=True)
    sent = ma.fields.Integer(required=True)
    delivered = ma.fields.Integer(required=True)
    responses = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True, metadata={"description": "non-zero counts by response code"})


class MailingSchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    category = ma.fields.String(required=True, metadata={"enum": list(CATEGORIES)})
    email_type = ma.fields.String(allow_none=True)
    provider = ma.fields.String(required=True, metadata={"enum": list(PROVIDERS)})
    expires_at = ma.fields.String(allow_none=True, metadata=TIME)
    prevent_duplicates = ma.fields.Boolean(required=True)
    started_at = ma.fields.String(allow_none=True, metadata={**TIME, "description": "first dispatch"})
    summary = ma.fields.Nested(SummaryCountsSchema, required=True)


class MailingListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(MailingSchema), required=True)


class RecipientInSchema(ma.Schema):
    contact_id = Text(required=True, validate=[validate.Length(min=1, max=MAX_ID_LENGTH), PATH_SAFE])
    name = Text(allow_none=True, load_default=None)
    email = Text(allow_none=True, load_default=None, validate=validate.Length(max=320))


class AudienceAddSchema(ma.Schema):
    recipients = ma.fields.List(ma.fields.Nested(RecipientInSchema), required=True)


class AudienceAddedSchema(ma.Schema):
    added = ma.fields.Integer(required=True)
    already_present = ma.fields.Integer(required=True)


class AudienceArgsSchema(PageArgsSchema, LangArgsSchema):
    response = Text(load_default=None, validate=validate.OneOf(CODES), metadata={"description": "only recipients with this response code"})


class AudienceItemSchema(ma.Schema):
    contact_id = ma.fields.String(required=True)
    name = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)
    response = ma.fields.Nested(ResponseObjectSchema, required=True)
    opens = ma.fields.Integer(required=True)
    clicks = ma.fields.Integer(required=True)
    updated_at = ma.fields.String(allow_none=True, metadata=TIME)


AudiencePageSchema = page_schema(AudienceItemSchema, "AudiencePage")


class SendMetadataSchema(ma.Schema):
    mailing_id = ma.fields.String(required=True)
    contact_id = ma.fields.String(required=True)


class SendItemSchema(ma.Schema):
    contact_id = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    metadata = ma.fields.Nested(SendMetadataSchema, required=True, metadata={"description": "attach to the provider message"})


class DispatchSchema(ma.Schema):
    send = ma.fields.List(ma.fields.Nested(SendItemSchema), required=True)
    outcomes = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)


class StoppedSchema(ma.Schema):
    stopped = ma.fields.Integer(required=True)


class RatesSchema(ma.Schema):
    delivery = ma.fields.Float(allow_none=True)
    bounce = ma.fields.Float(allow_none=True)
    open = ma.fields.Float(allow_none=True)
    click = ma.fields.Float(allow_none=True)
    click_to_open = ma.fields.Float(allow_none=True)
    unsubscribe = ma.fields.Float(allow_none=True)
    spam_complaint = ma.fields.Float(allow_none=True)


class ErrorCountSchema(ma.Schema):
    count = ma.fields.Integer(required=True)
    reasons = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)


def _error_group() -> ma.fields.Dict:
    return ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(ErrorCountSchema), required=True)


class ErrorDiagramSchema(ma.Schema):
    not_sent = _error_group()
    not_delivered = _error_group()


class SummarySchema(SummaryCountsSchema):
    unique_opens = ma.fields.Integer(required=True)
    total_opens = ma.fields.Integer(required=True)
    unique_clicks = ma.fields.Integer(required=True)
    total_clicks = ma.fields.Integer(required=True)
    rates = ma.fields.Nested(RatesSchema, required=True, metadata={"description": "null when the denominator is zero"})
    errors = ma.fields.Nested(ErrorDiagramSchema, required=True)


class TimelineArgsSchema(ma.Schema):
    hours = ma.fields.Integer(load_default=48, validate=validate.Range(min=1, max=MAX_HOURS))


class BucketSchema(ma.Schema):
    hour = ma.fields.Integer(required=True)
    at = ma.fields.String(required=True, metadata=TIME)
    first_opens = ma.fields.Integer(required=True)
    first_clicks = ma.fields.Integer(required=True)


class TimelineSchema(ma.Schema):
    start = ma.fields.String(allow_none=True, metadata={**TIME, "description": "the mailing's first dispatch; null before it"})
    buckets = ma.fields.List(ma.fields.Nested(BucketSchema), required=True)


class LinkSchema(ma.Schema):
    url = ma.fields.String(required=True)
    clicks = ma.fields.Integer(required=True)
    unique_clicks = ma.fields.Integer(required=True)


class LinksSchema(ma.Schema):
    links = ma.fields.List(ma.fields.Nested(LinkSchema), required=True)



# ---- routes ------------------------------------------------------------------------------------


@blp.route("", methods=["POST"])
@blp.arguments(MailingCreateSchema)
@blp.response(201, MailingSchema)
@blp.alt_response(200, schema=MailingSchema, description="the same mailing was already created with identical fields", success=True)
@blp.alt_response(409, schema=ErrorSchema, description="the id exists with other fields")
def create_mailing(fields: dict[str, Any]) -> tuple[dict[str, Any], int]:
    try:
        _, created = service().create_mailing(fields)
    except Conflict:
        raise
    except ValueError as exc:  # the schema checks the same; kept for a rule the service may add
        raise ApiError(422, str(exc)) from None
    return caught_up_views().mailing(fields["id"]), 201 if created else 200


@blp.route("", methods=["GET"])
@blp.response(200, MailingListSchema)
def list_mailings() -> dict[str, Any]:
    return {"items": fresh_views().mailings()}


@blp.route("/<mailing_id>", methods=["GET"])
@blp.response(200, MailingSchema)
@blp.alt_response(404, schema=ErrorSchema)
def get_mailing(mailing_id: str) -> dict[str, Any]:
    return fresh_views().mailing(mailing_id)


@blp.route("/<mailing_id>/audience", methods=["POST"])
@blp.arguments(AudienceAddSchema)
@blp.response(200, AudienceAddedSchema)
@blp.alt_response(404, schema=ErrorSchema)
def add_audience(body: dict[str, Any], mailing_id: str) -> dict[str, int]:
    return service().add_audience(mailing_id, body["recipients"])


@blp.route("/<mailing_id>/audience", methods=["GET"])
@blp.arguments(AudienceArgsSchema, location="query")
@blp.response(200, AudiencePageSchema)
@blp.alt_response(404, schema=ErrorSchema)
def audience(args: dict[str, Any], mailing_id: str) -> dict[str, Any]:
    return fresh_views().audience(mailing_id, args["response"], args["limit"], args["cursor"], args["lang"])


@blp.route("/<mailing_id>/dispatch", methods=["POST"])
@blp.response(200, DispatchSchema)
@blp.alt_response(404, schema=ErrorSchema)
def dispatch(mailing_id: str) -> dict[str, Any]:
    return service().dispatch(mailing_id)


@blp.route("/<mailing_id>/stop", methods=["POST"])
@blp.response(200, StoppedSchema)
@blp.alt_response(404, schema=ErrorSchema)
def stop(mailing_id: str) -> dict[str, int]:
    return {"stopped": service().stop(mailing_id)}


@blp.route("/<mailing_id>/summary", methods=["GET"])
@blp.response(200, SummarySchema)
@blp.alt_response(404, schema=ErrorSchema)
def summary(mailing_id: str) -> dict[str, Any]:
    views = fresh_views()
    views.require_mailing(mailing_id)
    return views.summary(mailing_id)


@blp.route("/<mailing_id>/timeline", methods=["GET"])
@blp.arguments(TimelineArgsSchema, location="query")
@blp.response(200, TimelineSchema)
@blp.alt_response(404, schema=ErrorSchema)
def timeline(args: dict[str, Any], mailing_id: str) -> dict[str, Any]:
    return fresh_views().timeline(mailing_id, args["hours"])


@blp.route("/<mailing_id>/links", methods=["GET"])
@blp.response(200, LinksSchema)
@blp.alt_response(404, schema=ErrorSchema)
def links(mailing_id: str) -> dict[str, Any]:
    return fresh_views().links(mailing_id)
