"""``/rules`` (versions, the built-in version offered, and the state diagram), ``/what-if`` (preview a change or a
version, then adopt it) and ``/jobs/<id>`` (progress)."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, redirect, request, session, url_for

from application.rules import WhatIfQueueFull
from domain.catalogue import RESPONSES
from domain.rules import InvalidRuleset, Ruleset
from interface.shared.context import fresh_views, service
from interface.web import charts
from interface.web.rendering import PageError, _, page
from interface.web.session import current_lang, signed_in_as

log = logging.getLogger("responses.web")

bp = Blueprint("rules", __name__)

MAX_SAMPLE = 100
SESSION_DOC_CHARS = 2500  # a what-if's document kept for its Adopt button (the cookie stays small)
MAILING_CHOICES = 200

# The common options as form fields: (field, kind); kinds: int? (empty: off), number (empty: keep), bool, lines
OPTION_FIELDS: tuple[tuple[str, str], ...] = (
    ("statistics_period_days", "int?"),
    ("count_machine_opens", "bool"),
    ("unsubscribe_from_all", "bool"),
    ("soft_bounce_limit", "int?"),
    ("machine_click_window_seconds", "int?"),
    ("machine_open_window_seconds", "int?"),
    ("confirmation_timeout_hours", "number"),
    ("unsubscribe_url_patterns", "lines"),
    ("machine_open_user_agents", "lines"),
)
LABELS = {
    "statistics_period_days": "Statistics period (days)",
    "count_machine_opens": "Count machine opens",
    "unsubscribe_from_all": "Unsubscribe from all mailings",
    "soft_bounce_limit": "Soft bounces before the address is not actual (empty: off)",
    "machine_click_window_seconds": "Scanner click window, seconds (empty: off)",
    "machine_open_window_seconds": "Machine open window, seconds (empty: off)",
    "confirmation_timeout_hours": "Confirmation timeout, hours",
    "unsubscribe_url_patterns": "Unsubscribe URL patterns (one a line, RE2)",
    "machine_open_user_agents": "Machine user agents (one a line, RE2)",
}


# ---- /rules ----------------------------------------------------------------------------------------------


@bp.get("/rules")
def rules() -> Any:
    app = service()
    versions = app.rules_versions()
    shown = request.args.get("version") or versions["active"]
    ruleset = app.ruleset(shown)  # an unknown version: an HTML 404
    lang = current_lang()
    responses = sorted(
        (
            {"code": code, "final": rule.final, "priority": rule.priority, "group": RESPONSES[code].group}
            for code, rule in ruleset.responses.items()
        ),
        key=lambda r: (r["final"], r["priority"] or 0, list(RESPONSES).index(r["code"])),
    )
    return page(
        "rules.html",
        versions=versions,
        shown=shown,
        ruleset=ruleset,
        responses=responses,
        diagram=charts.state_diagram(ruleset, lang),
        changes_text=changes_text,
    )


def changes_text(changes: dict[str, Any]) -> list[str]:
    out = []
    for key, value in changes.items():
        out.append(f"{key}: {json.dumps(value, ensure_ascii=False, sort_keys=True)}")
    return out


@bp.post("/rules/<version>/activate")
def rules_activate(version: str) -> Any:
    try:
        job = service().request_activation(version)
    except InvalidRuleset as exc:
        raise PageError(422, "; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
    return redirect(url_for("web.rules.job", job_id=job["id"]))


# ---- /what-if ---------------------------------------------------------------------------------------------


def form_defaults(active: Ruleset) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, kind in OPTION_FIELDS:
        value = getattr(active, name)
        if kind == "bool":
            values[name] = "on" if value else ""
        elif kind == "lines":
            values[name] = "\n".join(value)
        else:
            values[name] = "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
    values["soft_bounce_final"] = "yes" if active.responses["soft_bounce"].final else "no"
    values["confirmation_timeout_response"] = active.confirmation_timeout_response
    values["document"] = ""
    values["sample"] = "20"
    return values


def document_from_form(form: Any, active: Ruleset) -> tuple[dict[str, Any], dict[str, str]]:
    """The ruleset patch the form asks for (only what differs from the active rules), and field errors.

    A field the form does not send keeps the active value; a checkbox comes with a hidden "off" before it,
    so an unticked box is sent too (as "off" alone)."""
    doc: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, kind in OPTION_FIELDS:
        if name not in form:
            continue
        raw = (form.get(name) or "").strip()
        current = getattr(active, name)
        value: Any
        if kind == "bool":
            value = "on" in form.getlist(name)
        elif kind == "lines":
            value = [line.strip() for line in raw.splitlines() if line.strip()]
            current = list(current)
        elif kind == "int?":
            if not raw:
                value = None
            else:
                try:
                    value = int(raw)
                except ValueError:
                    errors[name] = _("must be a whole number")
                    continue
        else:  # number: empty keeps the active value
            if not raw:
                continue
            try:
                value = float(raw)
                value = int(value) if value.is_integer() else value
            except ValueError:
                errors[name] = _("must be a number")
                continue
        if value != current:
            doc[name] = value
    final = form.get("soft_bounce_final")
    if final in ("yes", "no") and (final == "yes") != active.responses["soft_bounce"].final:
        default = RESPONSES["soft_bounce"].priority
        doc["responses"] = {"soft_bounce": {"final": True} if final == "yes" else {"final": False, "priority": default}}
    timeout_response = form.get("confirmation_timeout_response")
    if timeout_response and timeout_response != active.confirmation_timeout_response:
        doc["confirmation_timeout_response"] = timeout_response
    text = (form.get("document") or "").strip()
    if text:
        try:
            extra = json.loads(text)
        except ValueError as exc:
            errors["document"] = f"{_('not valid JSON')}: {exc}"
            extra = None
        if extra is not None and not isinstance(extra, dict):
            errors["document"] = _("a JSON object")
        elif isinstance(extra, dict):
            for key, value in extra.items():
                if key in ("responses", "provider_mappings") and isinstance(value, dict) and isinstance(doc.get(key), dict):
                    doc[key] = {**doc[key], **value}
                else:
                    doc[key] = value
    return doc, errors


def field_of(error_key: str) -> str:
    """Which form field a domain error belongs beside (the JSON document for any other)."""
    head = error_key.split(".")[0]
    if head in dict(OPTION_FIELDS):
        return head
    if error_key.startswith("responses.soft_bounce"):
        return "soft_bounce_final"
    if head == "confirmation_timeout_response":
        return head
    return "document"


def what_if_page(
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    result: dict[str, Any] | None = None,
    document: dict[str, Any] | None = None,
    status: int = 200,
    selected: list[str] | None = None,
    refused: WhatIfQueueFull | None = None,
    adopt_version: str | None = None,
) -> Any:
    app = service()
    active = app.active_rules()
    finals = [code for code, rule in active.responses.items() if rule.final]
    choices = fresh_views().mailing_list(limit=MAILING_CHOICES)["items"]
    return page(
        "what_if.html",
        status=status,
        values=values,
        errors=errors or {},
        result=result,
        document=document,
        active=active,
        finals=finals,
        option_fields=OPTION_FIELDS,
        labels=LABELS,
        mailing_choices=choices,
        selected=selected or [],
        document_json=json.dumps(document, ensure_ascii=False) if document is not None else "",
        refused=refused,
        adopt_version=adopt_version,
    )


@bp.get("/what-if")
def what_if() -> Any:
    return what_if_page(form_defaults(service().active_rules()))


@bp.post("/what-if")
def what_if_run() -> Any:
    app = service()
    active = app.active_rules()
    form = request.form
    if form.get("version"):
        return what_if_version(form["version"])
    values = {**form_defaults(active), **{k: v for k, v in form.items() if k != "csrf_token"}}
    for name, kind in OPTION_FIELDS:
        if kind == "bool" and name in form:
            values[name] = "on" if "on" in form.getlist(name) else ""
    selected = [m for m in form.getlist("mailings") if m]
    document, errors = document_from_form(form, active)
    try:
        sample = int(form.get("sample") or 20)
        if not 0 <= sample <= MAX_SAMPLE:
            raise ValueError
    except ValueError:
        errors["sample"] = f"0 … {MAX_SAMPLE}"
        sample = 20
    if errors:
        return what_if_page(values, errors, status=422, selected=selected)
    try:  # the projection process runs it; the page waits as the API does, then follows the job
        wait = app.settings.what_if_wait_seconds
        result, job_id = app.start_what_if(document, mailings=selected or None, sample=sample, wait_seconds=wait)
    except InvalidRuleset as exc:
        return what_if_page(values, {field_of(k): v for k, v in exc.errors.items()}, status=422, selected=selected)
    except WhatIfQueueFull as exc:
        html, status = what_if_page(values, status=429, selected=selected, refused=exc)
        return html, status, {"Retry-After": str(exc.retry_after)}
    if job_id is not None:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        session["what_if"] = {"job": job_id, "doc": text if len(text) <= SESSION_DOC_CHARS else None}
        return redirect(url_for("web.rules.job", job_id=job_id))
    return what_if_page(values, result=result, document=document, selected=selected)


def what_if_version(version: str) -> Any:
    """A stored or built-in version tried against all history (the /rules page's Preview): adopting it is its
    activation, nothing new is stored."""
    app = service()
    values = form_defaults(app.active_rules())
    try:
        app.ruleset(version)  # an unknown version: an HTML 404
        result, job_id = app.start_what_if(version, sample=20, wait_seconds=app.settings.what_if_wait_seconds)
    except WhatIfQueueFull as exc:
        html, status = what_if_page(values, status=429, refused=exc)
        return html, status, {"Retry-After": str(exc.retry_after)}
    if job_id is not None:
        session["what_if"] = {"job": job_id, "version": version}
        return redirect(url_for("web.rules.job", job_id=job_id))
    return what_if_page(values, result=result, adopt_version=version)


@bp.post("/what-if/adopt")
def what_if_adopt() -> Any:
    app = service()
    try:
        document = json.loads(request.form.get("document") or "")
        if not isinstance(document, dict):
            raise ValueError
    except ValueError:
        raise PageError(400, "document: the ruleset patch of a what-if, as JSON") from None
    try:
        rules = app.define_rules(document, created_by=signed_in_as())
        job = app.request_activation(rules.version)
    except InvalidRuleset as exc:
        values = form_defaults(app.active_rules())
        values["document"] = json.dumps(document, ensure_ascii=False, indent=2)
        return what_if_page(values, {field_of(k): v for k, v in exc.errors.items()}, status=422)
    return redirect(url_for("web.rules.job", job_id=job["id"]))


# ---- /jobs/<id> -----------------------------------------------------------------------------------------------


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Any:
    app = service()
    state = app.job(job_id)  # NotFound: an HTML 404
    result = state.get("result") if state.get("status") == "done" else None
    document = None
    adopt_version = None
    kept = session.get("what_if")
    if isinstance(kept, dict) and kept.get("job") == job_id and kept.get("doc"):
        try:
            document = json.loads(kept["doc"])
        except ValueError:
            document = None
    elif isinstance(kept, dict) and kept.get("job") == job_id and isinstance(kept.get("version"), str):
        adopt_version = kept["version"]
    return page(
        "job.html",
        job=state,
        result=result,
        document=document,
        adopt_version=adopt_version if adopt_version != app.active_version() else None,
        active=app.active_version(),
        document_json=json.dumps(document, ensure_ascii=False) if document is not None else "",
    )
