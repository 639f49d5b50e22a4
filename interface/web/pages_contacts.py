"""``/contacts`` (search by id or email, or browse) and ``/contacts/<id>`` with the manual flag changes of CONTRACT §5."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import orjson
from flask import Blueprint, Response, flash, redirect, request, url_for

from application.erasure import BASIS_MAX_CHARS
from application.errors import NotFound
from interface.shared.contact_changes import ContactPatchSchema, SubscriptionSchema
from interface.shared.context import caught_up_views, fresh_views, service
from interface.web.rendering import _, page
from interface.web.session import current_lang, signed_in_as

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
    elif request.args.get("erased"):  # the records of erasure, newest first
        items, following = service().erasures.page(PAGE, request.args.get("after") or None)
        return page(
            "contacts.html",
            query="",
            found=[],
            listing=None,
            erasures={"items": items, "next": following},
            after=request.args.get("after"),
        )
    else:
        listing = views.contacts_page(request.args.get("after") or None, PAGE)
    return page("contacts.html", query=query, found=found, listing=listing, erasures=None, after=request.args.get("after"))


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


@bp.get("/contacts/<contact_id>/export")
def contact_export(contact_id: str) -> Any:
    """Everything kept about the contact, as the API's export answers it, as a JSON file (GDPR art. 15 and 20)."""
    exported = service().erasures.export(contact_id)
    body = orjson.dumps(exported, option=orjson.OPT_INDENT_2)
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in contact_id)[:80] or "contact"
    return Response(
        body, mimetype="application/json", headers={"Content-Disposition": f'attachment; filename="contact-{safe}.json"'}
    )


@bp.post("/contacts/<contact_id>/erase")
def contact_erase(contact_id: str) -> Any:
    """Erase the contact (the confirmation and the basis are required), recorded with the session's token fingerprint."""
    basis = (request.form.get("basis") or "").strip()
    errors: dict[str, Any] = {}
    if not basis or len(basis) > BASIS_MAX_CHARS:
        errors["basis"] = [_("Give the basis of the erasure, at most 200 characters.")]
    if request.form.get("confirm") != "yes":
        errors["confirm"] = [_("Confirm that this cannot be undone.")]
    if errors:
        return contact(contact_id, errors=errors, status=422)
    service().erasures.erase(contact_id, basis, signed_in_as())
    flash(_("Erased: the contact's personal data is destroyed; its counts stay."))
    return redirect(url_for("web.contacts.contact", contact_id=contact_id))
