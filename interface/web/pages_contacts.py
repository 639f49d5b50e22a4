"""``/contacts`` (search by id or email, or browse) and ``/contacts/<id>`` with the manual flag changes of CONTRACT §5."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint, flash, redirect, request, url_for

from application.errors import NotFound
from interface.shared.contact_changes import ContactPatchSchema, SubscriptionSchema
from interface.shared.context import caught_up_views, fresh_views, service
from interface.web.rendering import _, page
from interface.web.session import current_lang

bp = Blueprint("contacts", __name__)

PAGE = 50
TRI = {"": None, "yes": True, "no": False}


@bp.get("/contacts")
def contacts() -> Any:
    query = (request.args.get("q") or "").strip()[:320]
    views = fresh_views()
    lang = current_lang()
    found: list[dict[str, Any]] = []
    listing = None
    if query:
        if "@" in query:
            found = views.contacts_by_email(query, lang, limit=PAGE)
        try:
            found = found or [views.contact(query, lang)]
        except NotFound:
            pass
        if len(found) == 1 and found[0]["contact_id"] == query:
            return redirect(url_for("web.contacts.contact", contact_id=query))
    else:
        listing = views.contacts_page(request.args.get("after") or None, PAGE)
    return page("contacts.html", query=query, found=found, listing=listing, after=request.args.get("after"))


@bp.get("/contacts/<contact_id>")
def contact(contact_id: str, errors: dict[str, Any] | None = None, status: int = 200) -> Any:
    details = fresh_views().contact(contact_id, current_lang())
    return page("contact.html", status=status, c=details, errors=errors or {}, form=request.form if errors else {})


@bp.post("/contacts/<contact_id>/flags")
def contact_flags(contact_id: str) -> Any:
    changes: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for name in ("do_not_use_email", "email_is_actual"):
        choice = request.form.get(name, "")
        if choice not in TRI:
            errors[name] = ["yes, no or empty"]
        elif TRI[choice] is not None:
            changes[name] = TRI[choice]
    email = (request.form.get("email") or "").strip()
    if email:
        changes["email"] = email
    if not errors:
        try:
            changes = ContactPatchSchema().load(changes)
        except ma.ValidationError as exc:
            errors = exc.normalized_messages()  # type: ignore[assignment]
            if "_schema" in errors:
                errors["_schema"] = [_("Change nothing: choose a flag or give an email.")]
    if errors:
        return contact(contact_id, errors=errors, status=422)
    service().change_contact(contact_id, changes)
    caught_up_views()
    flash(_("Saved."))
    return redirect(url_for("web.contacts.contact", contact_id=contact_id))


@bp.post("/contacts/<contact_id>/subscriptions")
def contact_subscription(contact_id: str) -> Any:
    try:
        body = SubscriptionSchema().load(
            {"email_type": request.form.get("email_type", "").strip(), "subscribed": request.form.get("subscribed", "")}
        )
    except ma.ValidationError as exc:
        return contact(contact_id, errors={"subscription": exc.normalized_messages()}, status=422)
    service().set_subscription(contact_id, body["email_type"], body["subscribed"])
    caught_up_views()
    flash(_("Saved."))
    return redirect(url_for("web.contacts.contact", contact_id=contact_id))
