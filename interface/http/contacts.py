"""Contacts: flags, subscriptions, and their responses across mailings (CONTRACT §5, §7)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from application.erasure import BULK_MAX
from application.queries import MAX_PAGE
from interface.http.auth import caller, require_bearer
from interface.http.common import Blueprint, LangArgsSchema, ResponseObjectSchema
from interface.shared.contact_changes import ContactPatchSchema, SubscriptionSchema
from interface.shared.context import caught_up_views, fresh_views, service
from interface.shared.errors import ErrorSchema
from interface.shared.fields import Text

blp = Blueprint("contacts", __name__, url_prefix="/v1/contacts", description="Contacts: flags and responses across mailings")
blp.before_request(require_bearer)


class FlagsSchema(ma.Schema):
    do_not_use_email = ma.fields.Boolean(required=True)
    email_is_actual = ma.fields.Boolean(required=True)
    unsubscribed_types = ma.fields.List(ma.fields.String(), required=True)


class ContactResponseSchema(ma.Schema):
    mailing_id = ma.fields.String(required=True)
    category = ma.fields.String(required=True)
    response = ma.fields.Nested(ResponseObjectSchema, required=True)
    opens = ma.fields.Integer(required=True)
    clicks = ma.fields.Integer(required=True)


class ContactSchema(ma.Schema):
    contact_id = ma.fields.String(required=True)
    email = ma.fields.String(allow_none=True)
    erased_at = ma.fields.String(
        allow_none=True, metadata={"description": "when the contact was erased (CONTRACT §12); null while not"}
    )
    flags = ma.fields.Nested(FlagsSchema, required=True)
    responses = ma.fields.List(ma.fields.Nested(ContactResponseSchema), required=True)


class ContactSearchArgsSchema(LangArgsSchema):
    email = Text(
        required=True, validate=validate.Length(min=1, max=320), metadata={"description": "any case; surrounding spaces ignored"}
    )


class ContactListSchema(ma.Schema):
    items = ma.fields.List(
        ma.fields.Nested(ContactSchema), required=True, metadata={"description": f"at most {MAX_PAGE}, in contact id order"}
    )


@blp.route("", methods=["GET"])
@blp.doc(summary="Find contacts by email")
@blp.arguments(ContactSearchArgsSchema, location="query")
@blp.response(200, ContactListSchema)
def find_contacts(args: dict[str, Any]) -> dict[str, Any]:
    """The contacts whose email is the given one (compared without case), each as `GET /v1/contacts/{id}` answers it."""
    return {"items": fresh_views().contacts_by_email(args["email"], args["lang"])}


@blp.route("/<contact_id>", methods=["GET"])
@blp.doc(summary="A contact's flags and its responses across all mailings")
@blp.arguments(LangArgsSchema, location="query")
@blp.response(200, ContactSchema)
@blp.alt_response(404, schema=ErrorSchema)
def get_contact(args: dict[str, Any], contact_id: str) -> dict[str, Any]:
    return fresh_views().contact(contact_id, args["lang"])


@blp.route("/<contact_id>", methods=["PATCH"])
@blp.arguments(ContactPatchSchema)
@blp.arguments(LangArgsSchema, location="query")
@blp.response(200, ContactSchema)
def patch_contact(changes: dict[str, Any], args: dict[str, Any], contact_id: str) -> dict[str, Any]:
    """A manual change, journaled on the contact; an unknown contact is created."""
    service().change_contact(contact_id, changes)
    return caught_up_views().contact(contact_id, args["lang"])


@blp.route("/<contact_id>/subscriptions", methods=["POST"])
@blp.doc(summary="Subscribe or unsubscribe a contact from an email type (journaled)")
@blp.arguments(SubscriptionSchema)
@blp.arguments(LangArgsSchema, location="query")
@blp.response(200, ContactSchema)
def set_subscription(body: dict[str, Any], args: dict[str, Any], contact_id: str) -> dict[str, Any]:
    service().set_subscription(contact_id, body["email_type"], body["subscribed"])
    return caught_up_views().contact(contact_id, args["lang"])


# ---- erasure and access (CONTRACT §12) ----------------------------------------------------------


def not_only_spaces(value: str) -> None:
    """Linear in the text, whatever its length (no pattern: a long body cannot make it backtrack)."""
    if not value.strip():
        raise ma.ValidationError("give the basis: not only spaces")


class EraseSchema(ma.Schema):
    basis = Text(
        required=True,
        validate=[validate.Length(min=1, max=200), not_only_spaces],
        metadata={"description": "why: free text, e.g. 'GDPR art. 17 request 2026-12-01'"},
    )


class ErasureSchema(ma.Schema):
    contact_id = ma.fields.String(required=True)
    erased_at = ma.fields.String(required=True)
    basis = ma.fields.String(required=True)
    by = ma.fields.String(allow_none=True, metadata={"description": "a fingerprint of the token behind the erasure"})
    signals = ma.fields.Integer(
        required=True, metadata={"description": "signals of the contact's recipients, kept, their personal fields destroyed"}
    )
    mailings = ma.fields.List(ma.fields.String(), required=True)


@blp.route("/<contact_id>/erase", methods=["POST"])
@blp.doc(summary="Erase a contact: destroy its personal data, keep every count (idempotent)")
@blp.arguments(EraseSchema)
@blp.response(200, ErasureSchema)
@blp.alt_response(404, schema=ErrorSchema)
def erase_contact(body: dict[str, Any], contact_id: str) -> dict[str, Any]:
    return service().erasures.erase(contact_id, body["basis"], caller())


@blp.route("/<contact_id>/export", methods=["GET"])
@blp.doc(summary="Everything kept about a contact, its personal fields opened (GDPR art. 15 and 20)")
@blp.response(200)
@blp.alt_response(404, schema=ErrorSchema)
def export_contact(contact_id: str) -> dict[str, Any]:
    return service().erasures.export(contact_id)


erasures_blp = Blueprint("erasures", __name__, url_prefix="/v1/erasures", description="The records of erasure (CONTRACT §12)")
erasures_blp.before_request(require_bearer)


class ErasuresArgsSchema(ma.Schema):
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = Text(load_default=None, validate=validate.Length(max=200))


class ErasureListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ErasureSchema), required=True, metadata={"description": "newest first"})
    next = ma.fields.String(allow_none=True)


@erasures_blp.route("", methods=["GET"])
@erasures_blp.doc(summary="Erasures, newest first")
@erasures_blp.arguments(ErasuresArgsSchema, location="query")
@erasures_blp.response(200, ErasureListSchema)
def list_erasures(args: dict[str, Any]) -> dict[str, Any]:
    items, following = service().erasures.page(args["limit"], args["cursor"])
    return {"items": items, "next": following}


class BulkErasureSchema(ma.Schema):
    contact_ids = ma.fields.List(Text(validate=validate.Length(min=1, max=200)), load_default=list)
    emails = ma.fields.List(
        Text(validate=validate.Length(min=3, max=320)),
        load_default=list,
        metadata={"description": "addresses of people who never became contacts: the signals parked under them"},
    )
    basis = Text(
        required=True,
        validate=[validate.Length(min=1, max=200), not_only_spaces],
    )

    @ma.validates_schema
    def bounded(self, data: dict[str, Any], **_: Any) -> None:
        given = len(data.get("contact_ids") or []) + len(data.get("emails") or [])
        if given > BULK_MAX:
            raise ma.ValidationError(f"at most {BULK_MAX:,} contacts and addresses in all ({given:,} given)")
        if not given:
            raise ma.ValidationError("name at least one contact or address")


class BulkAcceptedSchema(ma.Schema):
    job = ma.fields.String(required=True, metadata={"description": "follow it at GET /v1/jobs/{job}"})


@erasures_blp.route("", methods=["POST"])
@erasures_blp.doc(summary="Erase many contacts and addresses: a job (one redaction pass for them all)")
@erasures_blp.arguments(BulkErasureSchema)
@erasures_blp.response(202, BulkAcceptedSchema)
def bulk_erasure(body: dict[str, Any]) -> dict[str, Any]:
    job = service().erasures.request_bulk(body["contact_ids"], body["emails"], body["basis"], caller())
    return {"job": job}
