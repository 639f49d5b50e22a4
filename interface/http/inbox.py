"""Inputs kept aside (CONTRACT §6, §7): unmatched signals, quarantined input, provider notices, test sends."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from interface.http.auth import require_bearer
from interface.http.common import Blueprint, PageArgsSchema, page_schema
from interface.shared.context import fresh_views
from interface.shared.errors import ErrorSchema
from interface.shared.fields import Text

blp = Blueprint("inbox", __name__, url_prefix="/v1", description="Unmatched signals, quarantine, provider notices, test sends")
blp.before_request(require_bearer)

UNMATCHED_REASONS = ("no_recipient", "provider_mismatch")
SIGNAL = {"description": "the signal as stored: key, source, fields, received_at, occurred_at, url, raw..."}


class KeptSchema(ma.Schema):
    id = ma.fields.String(required=True)
    source = ma.fields.String(required=True, metadata={"description": "unione, elasticemail, sendgrid, canonical or system"})
    received_at = ma.fields.String(allow_none=True, metadata={"format": "date-time"})


class CorrelationSchema(ma.Schema):
    mailing_id = ma.fields.String(allow_none=True)
    contact_id = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)


class UnmatchedSchema(KeptSchema):
    signal = ma.fields.Raw(required=True, metadata=SIGNAL)
    correlation = ma.fields.Nested(
        CorrelationSchema, required=True, metadata={"description": "how the signal named its recipient"}
    )
    reason = ma.fields.String(
        required=True,
        metadata={
            "enum": list(UNMATCHED_REASONS),
            "description": "provider_mismatch: a provider's event about a mailing sent through another provider (never "
            "matched, never counted); no_recipient: nobody it names was sent to (yet)",
        },
    )


class QuarantinedSchema(KeptSchema):
    raw = ma.fields.String(required=True, metadata={"description": "the raw text as received"})
    error = ma.fields.String(required=True)


class NoticeSchema(KeptSchema):
    kind = ma.fields.String(
        required=True, metadata={"description": "e.g. transactional_spam_block (UniOne), account_status_change (SendGrid)"}
    )
    raw = ma.fields.Raw(required=True)


class TestSendSchema(KeptSchema):
    mailing_id = ma.fields.String(allow_none=True)
    contact_id = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)
    signal = ma.fields.Raw(required=True, metadata=SIGNAL)


class UnmatchedArgsSchema(PageArgsSchema):
    mailing_id = Text(load_default=None, metadata={"description": "only signals naming this mailing"})


@blp.route("/unmatched", methods=["GET"])
@blp.arguments(UnmatchedArgsSchema, location="query")
@blp.response(200, page_schema(UnmatchedSchema, "UnmatchedPage"))
def unmatched(args: dict[str, Any]) -> dict[str, Any]:
    """Signals that matched no recipient (yet): re-matched when the recipient appears.

    An event from another provider than its mailing's (``reason: provider_mismatch``) stays here: it is
    never that mailing's recipient's, and never counted."""
    return fresh_views().side("unmatched", args["mailing_id"], args["limit"], args["cursor"])


@blp.route("/quarantine", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, page_schema(QuarantinedSchema, "QuarantinePage"))
def quarantine(args: dict[str, Any]) -> dict[str, Any]:
    """Input that could not be understood, kept whole with the error."""
    return fresh_views().side("quarantine", None, args["limit"], args["cursor"])


@blp.route("/notices", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, page_schema(NoticeSchema, "NoticePage"))
def notices(args: dict[str, Any]) -> dict[str, Any]:
    """Provider notices about sending in general (UniOne spam blocks, SendGrid account status changes)."""
    return fresh_views().side("notice", None, args["limit"], args["cursor"])


@blp.route("/mailings/<mailing_id>/test-sends", methods=["GET"])
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, page_schema(TestSendSchema, "TestSendPage"))
@blp.alt_response(404, schema=ErrorSchema)
def test_sends(args: dict[str, Any], mailing_id: str) -> dict[str, Any]:
    """Signals of test sends: never in the audience, never counted."""
    views = fresh_views()
    views.require_mailing(mailing_id)
    return views.side("test_send", mailing_id, args["limit"], args["cursor"])
