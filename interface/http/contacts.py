"""Contacts: flags, subscriptions, and their responses across mailings (CONTRACT §5, §7)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from application.queries import MAX_PAGE
from interface.http.auth import require_bearer
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
