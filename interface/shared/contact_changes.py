"""The changes a marketer makes to a contact (CONTRACT §5): the body of ``PATCH /v1/contacts/{id}`` and
``PUT …/subscriptions``, and the contact page's forms, validated alike."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import validate

from interface.shared.fields import Text


class ContactPatchSchema(ma.Schema):
    do_not_use_email = ma.fields.Boolean()
    email_is_actual = ma.fields.Boolean()
    email = ma.fields.Email(
        validate=validate.Length(max=320),
        metadata={"description": "a new email resets email_is_actual and the soft-bounce streak unless this patch sets them"},
    )

    @ma.validates_schema
    def changes_something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:  # an empty patch would journal nothing and create the contact
            raise ma.ValidationError("give at least one of do_not_use_email, email_is_actual, email", "_schema")


class SubscriptionSchema(ma.Schema):
    email_type = Text(required=True, validate=validate.Length(min=1, max=200))
    subscribed = ma.fields.Boolean(required=True)
