"""Mailings: create, audience, dispatch, stop, and their analytics (CONTRACT §5, §7)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from application.errors import Conflict, NotFound
from application.queries import MAX_PAGE
from application.service import CATEGORIES
from domain.catalogue import CODES
from domain.signals import PROVIDERS
from interface.http.auth import require_bearer
from interface.http.common import PATH_SAFE, Blueprint, LangArgsSchema, PageArgsSchema, ResponseObjectSchema, page_schema
from interface.shared.audience_csv import COLUMNS as CSV_COLUMNS
from interface.shared.audience_csv import audience_csv_response
from interface.shared.context import caught_up_views, fresh_views, queries, service
from interface.shared.errors import ApiError, ErrorSchema
from interface.shared.fields import MAX_ID_LENGTH, Text, UtcTime

blp = Blueprint("mailings", __name__, url_prefix="/v1/mailings", description="Mailings, their audience and analytics")
blp.before_request(require_bearer)

TIME = {"format": "date-time"}
MAX_HOURS = 24 * 366
MAX_DISPATCH_LIMIT = 1_000_000
# A wave's send list must be complete to be acted on: it waits this long for the views, then answers 503.
WAVE_WAIT_SECONDS = 5.0
BEHIND = "the views are behind the journal (is `responses project` running?); nothing was changed"


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
    responses = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        required=True,
        metadata={"description": "non-zero counts by response code"},
    )


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
    response = Text(
        load_default=None, validate=validate.OneOf(CODES), metadata={"description": "only recipients with this response code"}
    )


class AudienceCsvArgsSchema(LangArgsSchema):
    response = Text(
        load_default=None, validate=validate.OneOf(CODES), metadata={"description": "only recipients with this response code"}
    )
    excel = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "for spreadsheets: UTF-8 with a BOM, `;` between cells, headers in `lang`"},
    )


class AudienceItemSchema(ma.Schema):
    contact_id = ma.fields.String(required=True)
    name = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)
    response = ma.fields.Nested(ResponseObjectSchema, required=True)
    opens = ma.fields.Integer(required=True)
    clicks = ma.fields.Integer(required=True)
    updated_at = ma.fields.String(allow_none=True, metadata=TIME)
    erased_at = ma.fields.String(
        allow_none=True, metadata={"description": "when the contact was erased (CONTRACT §12); null while not"}
    )


AudiencePageSchema = page_schema(AudienceItemSchema, "AudiencePage")


class SendMetadataSchema(ma.Schema):
    mailing_id = ma.fields.String(required=True)
    contact_id = ma.fields.String(required=True)


class SendItemSchema(ma.Schema):
    contact_id = ma.fields.String(required=True)
    email = ma.fields.String(required=True)
    metadata = ma.fields.Nested(SendMetadataSchema, required=True, metadata={"description": "attach to the provider message"})


class DispatchArgsSchema(ma.Schema):
    limit = ma.fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=MAX_DISPATCH_LIMIT),
        metadata={"description": "decide at most this many planned recipients in this call (default: as many as fit in ~15 s)"},
    )


class DispatchSchema(ma.Schema):
    send = ma.fields.List(
        ma.fields.Nested(SendItemSchema),
        required=True,
        metadata={"description": "this wave's recipients to hand to the provider"},
    )
    outcomes = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        required=True,
        metadata={"description": "this wave's decisions by response code"},
    )
    wave = ma.fields.Integer(
        required=True, metadata={"description": "this call's number among the mailing's dispatch calls (1, 2, ...)"}
    )
    remaining = ma.fields.Integer(
        required=True, metadata={"description": "planned recipients left undecided: call again while > 0"}
    )


WaveSendPageSchema = page_schema(SendItemSchema, "WaveSendPage")


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


class LinksArgsSchema(ma.Schema):
    limit = ma.fields.Integer(
        load_default=MAX_PAGE,
        validate=validate.Range(min=1, max=MAX_PAGE),
        metadata={"description": f"links on the page (default and maximum {MAX_PAGE})"},
    )
    cursor = Text(load_default=None, metadata={"description": "opaque: the `next` of the previous page"})


class LinksSchema(ma.Schema):
    links = ma.fields.List(
        ma.fields.Nested(LinkSchema), required=True, metadata={"description": "by clicks (most first), then URL"}
    )
    next = ma.fields.String(
        allow_none=True, required=True, metadata={"description": "the cursor of the next page; null on the last"}
    )


# ---- routes ------------------------------------------------------------------------------------


@blp.route("", methods=["POST"])
@blp.doc(summary="Create a mailing (idempotent: the same fields again answer 200)")
@blp.arguments(MailingCreateSchema)
@blp.response(201, MailingSchema)
@blp.alt_response(
    200, schema=MailingSchema, description="the same mailing was already created with identical fields", success=True
)
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
@blp.doc(summary="List mailings with their counts")
@blp.response(200, MailingListSchema)
def list_mailings() -> dict[str, Any]:
    return {"items": fresh_views().mailings()}


@blp.route("/<mailing_id>", methods=["GET"])
@blp.doc(summary="One mailing with its counts")
@blp.response(200, MailingSchema)
@blp.alt_response(404, schema=ErrorSchema)
def get_mailing(mailing_id: str) -> dict[str, Any]:
    return fresh_views().mailing(mailing_id)


@blp.route("/<mailing_id>/audience", methods=["POST"])
@blp.doc(summary="Add recipients to the audience (idempotent)")
@blp.arguments(AudienceAddSchema)
@blp.response(200, AudienceAddedSchema)
@blp.alt_response(404, schema=ErrorSchema)
def add_audience(body: dict[str, Any], mailing_id: str) -> dict[str, int]:
    return service().add_audience(mailing_id, body["recipients"])


@blp.route("/<mailing_id>/audience", methods=["GET"])
@blp.doc(summary="The audience: each recipient's response, opens and clicks (paged, filter by response)")
@blp.arguments(AudienceArgsSchema, location="query")
@blp.response(200, AudiencePageSchema)
@blp.alt_response(404, schema=ErrorSchema)
def audience(args: dict[str, Any], mailing_id: str) -> dict[str, Any]:
    return fresh_views().audience(mailing_id, args["response"], args["limit"], args["cursor"], args["lang"])


@blp.route("/<mailing_id>/audience.csv", methods=["GET"])
@blp.doc(
    summary="The audience as CSV (filter by response; cells that a spreadsheet would run as a formula are defused)",
    responses={
        "200": {
            "description": "columns "
            + ",".join(CSV_COLUMNS)
            + "; a cell starting with = + - @ (or a tab or CR) gets a leading '",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
@blp.arguments(AudienceCsvArgsSchema, location="query")
@blp.alt_response(404, schema=ErrorSchema)
def audience_csv(args: dict[str, Any], mailing_id: str) -> Any:
    return audience_csv_response(fresh_views(), mailing_id, args["response"], args["lang"], args["excel"])


@blp.route("/<mailing_id>/dispatch", methods=["POST"])
@blp.arguments(DispatchArgsSchema, location="query")
@blp.response(200, DispatchSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(422, schema=ErrorSchema, description="`limit` is not a whole number from 1 to 1000000")
@blp.alt_response(503, schema=ErrorSchema, description=BEHIND)
def dispatch(args: dict[str, Any], mailing_id: str) -> dict[str, Any]:
    """Decide planned recipients, one wave a call: repeat while `remaining` > 0.

    Each call decides the pre-send outcome of planned recipients in audience order for about 15 s
    (or at most `limit` of them), journals every decision before it answers, and numbers its
    decisions as one **wave** (1, 2, ... per mailing). Hand `send` to the provider, then call again
    while `remaining` > 0; an audience that fits in one call needs one call, answered with
    `remaining: 0`. Nobody is decided twice: a recipient once decided is no longer planned.

    If an answer is lost (a timeout, a dropped connection, a 5xx), nothing is lost with it: the
    decisions of that wave were journaled, and `GET /v1/mailings/{id}/waves/{wave}/send` lists the
    recipients it decided `sent_to_provider` (the lost wave is the one after the last answer you
    received; an unknown wave is 404). Send those, then go on dispatching.

    503 when the views are behind the journal: answered before anything is decided.
    """
    return service().dispatch(mailing_id, limit=args["limit"])


@blp.route("/<mailing_id>/waves/<int:wave>/send", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, WaveSendPageSchema)
@blp.alt_response(404, schema=ErrorSchema, description="no such mailing, or no such wave of it")
@blp.alt_response(422, schema=ErrorSchema)
@blp.alt_response(
    503, schema=ErrorSchema, description="the views are behind the journal: the list might be incomplete, so it is not answered"
)
def wave_send(args: dict[str, Any], mailing_id: str, wave: int) -> dict[str, Any]:
    """A dispatch wave's send list, again: every recipient that wave decided `sent_to_provider`.

    The same items, in the same order, as the `send` of the dispatch call that made the wave, paged
    (`limit`, `cursor`, `next`). For recovering an answer that was lost: send exactly these, and
    nobody is sent twice or forgotten. Answered only once the views hold everything journaled
    before the request (else 503, retry): a partial list is never given.
    """
    app = service()
    if not 1 <= wave <= app.get_mailing_aggregate(mailing_id).waves:  # 404 first: the journal numbers the waves
        raise NotFound("wave", f"{mailing_id}/{wave}")
    try:
        app.wait_for_views(timeout=WAVE_WAIT_SECONDS)
    except TimeoutError:
        raise ApiError(503, "the views are behind the journal: this wave's list may be incomplete; try again") from None
    return queries().wave_send(mailing_id, wave, args["limit"], args["cursor"])


@blp.route("/<mailing_id>/stop", methods=["POST"])
@blp.doc(summary="Stop a mailing: planned, ready and queued recipients become stopped_manually")
@blp.response(200, StoppedSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(503, schema=ErrorSchema, description=BEHIND)
def stop(mailing_id: str) -> dict[str, int]:
    return {"stopped": service().stop(mailing_id)}


@blp.route("/<mailing_id>/summary", methods=["GET"])
@blp.doc(summary="Analytics: counts, unique and total opens and clicks, rates, error diagram")
@blp.response(200, SummarySchema)
@blp.alt_response(404, schema=ErrorSchema)
def summary(mailing_id: str) -> dict[str, Any]:
    views = fresh_views()
    views.require_mailing(mailing_id)
    return views.summary(mailing_id)


@blp.route("/<mailing_id>/timeline", methods=["GET"])
@blp.doc(summary="First opens and first clicks per hour since the mailing's start")
@blp.arguments(TimelineArgsSchema, location="query")
@blp.response(200, TimelineSchema)
@blp.alt_response(404, schema=ErrorSchema)
def timeline(args: dict[str, Any], mailing_id: str) -> dict[str, Any]:
    return fresh_views().timeline(mailing_id, args["hours"])


@blp.route("/<mailing_id>/links", methods=["GET"])
@blp.doc(summary="Click map: clicks and unique clickers per URL, by clicks then URL (paged)")
@blp.arguments(LinksArgsSchema, location="query")
@blp.response(200, LinksSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(
    422,
    schema=ErrorSchema,
    description=f"`limit` is not a whole number from 1 to {MAX_PAGE}, or `cursor` is not one this API gave out",
)
def links(args: dict[str, Any], mailing_id: str) -> dict[str, Any]:
    return fresh_views().links(mailing_id, args["limit"], args["cursor"])
