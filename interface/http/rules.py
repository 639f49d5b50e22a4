"""Rules, what-if, activation jobs and the audit history (CONTRACT §4, §7 rules rows)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, jsonify, request
from marshmallow import validate

from application.history_folds import HistoryBusy
from application.rules import HISTORY_PAGE, WhatIfQueueFull
from domain.mappings.target import CONTACT_EFFECTS
from domain.rules import DOCUMENT_FIELDS, InvalidRuleset
from domain.signals import utc
from interface.http.auth import caller, require_bearer
from interface.http.common import Blueprint, LangArgsSchema, ResponseObjectSchema
from interface.shared.context import service
from interface.shared.errors import ApiError, ErrorSchema, error_response
from interface.shared.fields import TIME_FORMAT, Text, UtcTime

blp = Blueprint(
    "rules", __name__, url_prefix="/v1", description="Versioned rules, what-if replays, activation jobs, audit history"
)
blp.before_request(require_bearer)

MAX_SAMPLE = 1000


# ---- schemas ---------------------------------------------------------------------------------


class RulesetDocumentSchema(ma.Schema):
    """A ruleset document: every field optional, merged over the active version (a patch).

    Values are checked by the domain (422 with one message per offending field).
    """

    class Meta:
        unknown = ma.INCLUDE  # unknown fields reach the domain's validation, which names them

    version = ma.fields.Raw(
        metadata={"type": "string", "description": 'optional; default: the next number; "builtin-…" is reserved'}
    )
    responses = ma.fields.Raw(metadata={"type": "object", "description": 'code → {"final": bool, "priority": int}'})
    statistics_period_days = ma.fields.Raw(
        allow_none=True, metadata={"type": "integer", "nullable": True, "description": "null: off"}
    )
    count_machine_opens = ma.fields.Raw(metadata={"type": "boolean"})
    unsubscribe_from_all = ma.fields.Raw(metadata={"type": "boolean"})
    unsubscribe_url_patterns = ma.fields.Raw(metadata={"type": "array", "items": {"type": "string"}})
    soft_bounce_limit = ma.fields.Raw(allow_none=True, metadata={"type": "integer", "nullable": True, "description": "null: off"})
    machine_open_user_agents = ma.fields.Raw(metadata={"type": "array", "items": {"type": "string"}})
    machine_open_window_seconds = ma.fields.Raw(
        allow_none=True, metadata={"type": "integer", "nullable": True, "description": "null: off"}
    )
    machine_click_window_seconds = ma.fields.Raw(
        allow_none=True, metadata={"type": "integer", "nullable": True, "description": "null: off"}
    )
    confirmation_timeout_hours = ma.fields.Raw(metadata={"type": "number"})
    confirmation_timeout_response = ma.fields.Raw(metadata={"type": "string"})
    provider_mappings = ma.fields.Raw(
        metadata={
            "type": "object",
            "description": 'provider → {"field:value": code | {"code","reason","contact_effect"?} | null}',
        }
    )


assert set(RulesetDocumentSchema().fields) == set(DOCUMENT_FIELDS)


class VersionSchema(ma.Schema):
    version = ma.fields.String(required=True)


class VersionEntrySchema(ma.Schema):
    version = ma.fields.String(required=True)
    created_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})
    created_by = ma.fields.String(
        allow_none=True, metadata={"description": "who: a fingerprint of the bearer token that created it"}
    )
    changes = ma.fields.Dict(required=True, metadata={"description": "what differs from the version it was based on"})
    based_on = ma.fields.String(allow_none=True)
    builtin = ma.fields.Boolean(
        required=True, metadata={"description": 'a built-in ruleset ("1", "builtin-2"): never stored, never edited'}
    )


class RulesListSchema(ma.Schema):
    active = ma.fields.String(required=True)
    versions = ma.fields.List(ma.fields.Nested(VersionEntrySchema), required=True)
    offered = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "the latest built-in ruleset, offered for adoption when the active rules neither are it nor "
            'were made from it (null otherwise): preview it with POST /v1/what-if {"rules": "<offered>"}, adopt it with '
            "POST /v1/rules/<offered>/activate"
        },
    )


class JobSchema(ma.Schema):
    id = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    version = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=validate.OneOf(["running", "done", "failed"]))
    progress = ma.fields.Float(required=True)
    error = ma.fields.String(allow_none=True)
    result = ma.fields.Method(
        "dump_result",
        metadata={
            "type": "object",
            "description": 'once status is "done" (absent until then): a what-if\'s answer (kind "what-if", as POST '
            '/v1/what-if answers it) or a bulk erasure\'s (kind "erase": {"erased", "unknown", "addresses"})',
        },
    )

    def dump_result(self, job: dict[str, Any]) -> Any:
        result = job.get("result")
        if result is None:
            return ma.missing
        return WhatIfSchema().dump(result) if job.get("kind") == "what-if" else result


class JobAcceptedSchema(ma.Schema):
    job = ma.fields.String(required=True)


class WhatIfRequestSchema(ma.Schema):
    rules = ma.fields.Raw(
        required=True, metadata={"description": "a ruleset document (patch over the active version) or a version string"}
    )
    mailings = ma.fields.List(ma.fields.String(), load_default=None)
    sample = ma.fields.Integer(load_default=20, validate=validate.Range(min=0, max=MAX_SAMPLE))


TransitionSchema = ma.Schema.from_dict(
    {"from": ma.fields.String(required=True), "to": ma.fields.String(required=True), "count": ma.fields.Integer(required=True)},
    name="Transition",
)


class SuppressionSchema(ma.Schema):
    count = ma.fields.Integer(required=True)
    sample = ma.fields.List(ma.fields.String(), required=True)


class SuppressionDiffSchema(ma.Schema):
    newly_suppressed = ma.fields.Nested(SuppressionSchema, required=True)
    no_longer_suppressed = ma.fields.Nested(SuppressionSchema, required=True)


class HistoryStepSchema(ma.Schema):
    seq = ma.fields.Integer(
        required=True,
        metadata={"description": "position in the recipient's journal (1 is joining the audience, so signals start at 2)"},
    )
    received_at = ma.fields.String(required=True, metadata={"format": "date-time"})
    occurred_at = ma.fields.String(
        allow_none=True, metadata={"format": "date-time", "description": "the provider's own time, as it said"}
    )
    effective_at = ma.fields.String(
        required=True,
        metadata={
            "format": "date-time",
            "description": "when the signal counts as having happened (windows, first opens, the timeline): the provider's "
            "time, never later than received_at plus MAX_CLOCK_SKEW_SECONDS",
        },
    )
    skew_seconds = ma.fields.Float(
        required=True,
        metadata={
            "description": "seconds by which the provider's time was ahead of the allowance and clamped (0: trusted as given)"
        },
    )
    source = ma.fields.String(required=True)
    raw = ma.fields.Raw(allow_none=True, metadata={"description": "the provider's payload, as received"})
    erased = ma.fields.Boolean(
        required=True,
        metadata={
            "description": "true: the contact was erased; the signal's personal fields (raw included) are null (CONTRACT §12)"
        },
    )
    maps_to = ma.fields.String(allow_none=True)
    contact_effect = ma.fields.String(
        allow_none=True,
        validate=validate.OneOf(CONTACT_EFFECTS),
        metadata={
            "description": "what the signal's mapping does to the contact beyond its response (unsubscribe, suppress, "
            "resubscribe), applied whatever the response did, unless the signal is a duplicate; null: none"
        },
    )
    effect = ma.fields.String(required=True, validate=validate.OneOf(["set", "counted", "ignored"]))
    why = ma.fields.String(allow_none=True)
    response_after = ma.fields.Nested(ResponseObjectSchema, required=True)


class RecipientStateSchema(ma.Schema):
    response = ma.fields.Nested(ResponseObjectSchema, required=True)
    opens = ma.fields.Integer(required=True)
    clicks = ma.fields.Integer(required=True)


class ExampleSchema(ma.Schema):
    mailing_id = ma.fields.String(required=True)
    contact_id = ma.fields.String(required=True)
    before = ma.fields.Nested(RecipientStateSchema, required=True)
    after = ma.fields.Nested(RecipientStateSchema, required=True)
    explanation = ma.fields.List(ma.fields.Nested(HistoryStepSchema), required=True)


class WhatIfSchema(ma.Schema):
    rules = ma.fields.Dict(required=True)
    recipients = ma.fields.Integer(required=True)
    changed = ma.fields.Integer(required=True)
    counters_changed = ma.fields.Integer(required=True)
    transitions = ma.fields.List(ma.fields.Nested(TransitionSchema), required=True)
    mailings = ma.fields.Dict(required=True, metadata={"description": 'mailing id → {"before", "after"} summaries'})
    contacts = ma.fields.Nested(SuppressionDiffSchema, required=True)
    examples = ma.fields.List(ma.fields.Nested(ExampleSchema), required=True)


class HistoryArgsSchema(LangArgsSchema):
    limit = ma.fields.Integer(
        load_default=HISTORY_PAGE,
        validate=validate.Range(min=1, max=HISTORY_PAGE),
        metadata={"description": "signals in this page"},
    )
    cursor = Text(load_default=None, metadata={"description": "opaque: the `next` of the previous page"})
    as_of = UtcTime(load_default=None, metadata={"description": f"fold signals received at or before: {TIME_FORMAT}"})
    rules = ma.fields.String(
        load_default=None, metadata={"description": "explain under this ruleset version (default: the active one)"}
    )


class HistorySchema(RecipientStateSchema):
    rules = ma.fields.String(required=True)
    signals = ma.fields.List(ma.fields.Nested(HistoryStepSchema), required=True)
    next = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "cursor of the next page of signals; null on the last (response, opens, clicks: the whole journal's)"
        },
    )


def _require_json_body() -> None:
    """A ruleset is a JSON document: no body, or another media type, creates nothing."""
    if not request.is_json or not request.get_data(cache=True).strip():
        raise ApiError(400, "the body is a ruleset document: a JSON object sent as application/json")


def _invalid(exc: InvalidRuleset) -> ApiError:
    return ApiError(422, "the ruleset is not valid", details=exc.errors)


# ---- routes ------------------------------------------------------------------------------------


@blp.route("/rules", methods=["GET"])
@blp.doc(summary="List ruleset versions and the active one")
@blp.response(200, RulesListSchema)
def list_rules() -> dict[str, Any]:
    return service().rules_versions()


@blp.route("/rules/<version>", methods=["GET"])
@blp.doc(summary="One ruleset version, as a full document")
@blp.response(200, RulesetDocumentSchema)
@blp.alt_response(404, schema=ErrorSchema)
def get_rules(version: str) -> dict[str, Any]:
    return service().ruleset(version).to_document()


@blp.route("/rules", methods=["POST"])
@blp.doc(summary="Store a new ruleset version (a patch over the active rules)")
@blp.arguments(RulesetDocumentSchema)
@blp.response(201, VersionSchema)
@blp.alt_response(422, schema=ErrorSchema, description="invalid fields, one message each")
@blp.alt_response(409, schema=ErrorSchema, description="that version exists")
@blp.alt_response(400, schema=ErrorSchema, description="no body, or not application/json")
def define_rules(document: dict[str, Any]) -> dict[str, Any]:
    _require_json_body()
    try:
        return {"version": service().define_rules(document, created_by=caller()).version}
    except InvalidRuleset as exc:
        raise _invalid(exc) from None


@blp.route("/rules/<version>/activate", methods=["POST"])
@blp.doc(summary="Activate a ruleset version: a rebuild job, then an atomic swap")
@blp.response(202, JobAcceptedSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(422, schema=ErrorSchema, description="a pattern of that (older) version cannot run on RE2")
def activate(version: str) -> dict[str, Any]:
    try:
        return {"job": service().request_activation(version)["id"]}
    except InvalidRuleset as exc:
        raise ApiError(422, "the ruleset cannot be activated", details=exc.errors) from None


@blp.route("/jobs/<job>", methods=["GET"])
@blp.doc(summary="A job's status and progress (an activation, a what-if: with its result once done)")
@blp.response(200, JobSchema)
@blp.alt_response(404, schema=ErrorSchema)
def get_job(job: str) -> dict[str, Any]:
    return service().job(job)


@blp.route("/what-if", methods=["POST"])
@blp.doc(
    summary="Preview a rule change against all history (the views do not move)",
    description="The projection process runs the replay, never the web worker: answered 200 when it is done within "
    'WHAT_IF_WAIT_SECONDS (1 s by default, at most 2); otherwise 202 {"job": id}, and GET /v1/jobs/{id} carries the '
    "`result` once done. Identical requests (same candidate rules, mailings and sample, under the same active rules, "
    "at the same journal position) share one job and its answer. Beyond WHAT_IF_MAX_PENDING what-ifs queued or "
    "running (4 by default, counted across processes): 429 with Retry-After.",
)
@blp.arguments(WhatIfRequestSchema)
@blp.response(200, WhatIfSchema)
@blp.alt_response(202, schema=JobAcceptedSchema, description="still running: follow GET /v1/jobs/{job}")
@blp.alt_response(404, schema=ErrorSchema, description="an unknown ruleset version or mailing")
@blp.alt_response(422, schema=ErrorSchema)
@blp.alt_response(
    429,
    schema=ErrorSchema,
    description="too many what-ifs queued or running: ask again after Retry-After seconds",
    headers={"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
)
def what_if(body: dict[str, Any]) -> Any:
    rules = body["rules"]
    if not isinstance(rules, (dict, str)):
        raise ApiError(
            422, "rules is a ruleset document or a version", details={"rules": ["a ruleset object or a version string"]}
        )
    app = service()
    try:
        result, job = app.start_what_if(
            rules, mailings=body["mailings"], sample=body["sample"], wait_seconds=app.settings.what_if_wait_seconds
        )
    except InvalidRuleset as exc:
        raise _invalid(exc) from None
    except WhatIfQueueFull as exc:
        return _queue_full(exc)
    if result is not None:
        return result
    accepted: Response = jsonify(JobAcceptedSchema().dump({"job": job}))
    accepted.status_code = 202
    return accepted


def _queue_full(exc: WhatIfQueueFull) -> Response:
    refused, status = error_response(
        429,
        str(exc),
        code="too_many_what_ifs",
        details={"pending": exc.pending, "limit": exc.limit, "retry_after": exc.retry_after},
    )
    refused.status_code = status
    refused.headers["Retry-After"] = str(exc.retry_after)
    return refused


@blp.route("/mailings/<mailing_id>/recipients/<contact_id>/history", methods=["GET"])
@blp.doc(
    summary="Audit history: every signal of a recipient, what it did and why",
    description="For now under the active rules, a page is folded from the views' nearest checkpoint and shows the "
    "journal as far as the views have applied it (after a short wait for them): `response`, `opens` and `clicks` are "
    "the views', the last step's `response_after` on the last page. `as_of` or another `rules` version fold the "
    "whole journal: at most HISTORY_FOLDS_MAX at a time per process, others 429 with Retry-After.",
)
@blp.arguments(HistoryArgsSchema, location="query")
@blp.response(200, HistorySchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(429, schema=ErrorSchema, description="as_of or another rules version: every whole-journal fold slot is taken")
def history(args: dict[str, Any], mailing_id: str, contact_id: str) -> Any:
    app = service()
    rules = app.ruleset(args["rules"]) if args["rules"] else None
    as_of = utc(args["as_of"]) if args["as_of"] is not None else None
    try:
        return app.history(
            mailing_id, contact_id, as_of=as_of, rules=rules, lang=args["lang"], limit=args["limit"], cursor=args["cursor"]
        )
    except HistoryBusy as busy:
        refused, status = error_response(429, str(busy), "too_many_requests")
        refused.headers["Retry-After"] = str(busy.retry_after)
        return refused, status
