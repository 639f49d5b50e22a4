"""Liveness and readiness (SPEC §7, §8): ``/healthz``, ``/readyz`` with the projection lag."""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma

from interface.http.common import Blueprint
from interface.http.context import service

log = logging.getLogger("responses.http")

blp = Blueprint("ops", __name__, url_prefix="", description="Health and readiness")

NO_BEARER: list[dict[str, list[str]]] = []
MAX_READY_LAG = 10_000  # journal events the views may trail by before the service reports not ready


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"enum": ["ok"]})


class ReadySchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"enum": ["ok", "lagging", "unavailable"]})
    journal_position = ma.fields.Integer(allow_none=True)
    views_position = ma.fields.Integer(allow_none=True)
    lag = ma.fields.Integer(allow_none=True, metadata={"description": "journal events the views have not applied yet"})


@blp.route("/healthz", methods=["GET"])
@blp.doc(security=NO_BEARER)
@blp.response(200, HealthSchema)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.doc(security=NO_BEARER)
@blp.response(200, ReadySchema)
@blp.alt_response(503, schema=ReadySchema, description="the database is unreachable or the views trail by more than 10000 events")
def readyz() -> tuple[dict[str, Any], int]:
    app = service()
    try:
        journal, views = app.journal_position(), app.views_position()
    except Exception as exc:  # the store is down: not ready, and say so without a 500
        log.warning("readiness check failed: %s", type(exc).__name__)
        return {"status": "unavailable", "journal_position": None, "views_position": None, "lag": None}, 503
    lag = max(0, journal - views)
    status = "ok" if lag <= MAX_READY_LAG else "lagging"
    return {"status": status, "journal_position": journal, "views_position": views, "lag": lag}, 200 if status == "ok" else 503
