"""Liveness and readiness (SPEC §7, §8): ``/healthz``, ``/readyz`` with the projection lag."""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma

from interface.http.common import Blueprint
from interface.http.context import service, settings
from projections.follower import measure_lag

log = logging.getLogger("responses.http")

blp = Blueprint("ops", __name__, url_prefix="", description="Health and readiness")

NO_BEARER: list[dict[str, list[str]]] = []


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"enum": ["ok"]})


class ReadySchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"enum": ["ok", "lagging", "unavailable"]})
    journal_position = ma.fields.Integer(allow_none=True)
    views_position = ma.fields.Integer(allow_none=True)
    lag = ma.fields.Integer(allow_none=True, metadata={"description": "journal events the views have not applied yet"})
    lag_seconds = ma.fields.Float(
        allow_none=True,
        metadata={"description": "how long the oldest journal event the views have not applied has waited since it was stored; 0 when none"},
    )


@blp.route("/healthz", methods=["GET"])
@blp.doc(security=NO_BEARER, summary="Liveness: the process answers")
@blp.response(200, HealthSchema)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.doc(security=NO_BEARER)
@blp.response(200, ReadySchema)
@blp.alt_response(
    503,
    schema=ReadySchema,
    description="the database is unreachable, or the views are behind and have not moved for longer than READY_MAX_LAG_SECONDS",
)
def readyz() -> tuple[dict[str, Any], int]:
    """Ready unless the store is unreachable or the projection is stalled.

    Stalled: the views are behind the journal, the oldest event they have not applied has waited
    longer than `READY_MAX_LAG_SECONDS` (30 by default), and they have not moved for as long. A
    projection working through a backlog is ready; an idle journal is ready however long it idles.
    """
    app = service()
    try:
        journal, views = app.journal_position(), app.views_position()
        lag = measure_lag(app)
    except Exception as exc:  # the store is down: not ready, and say so without a 500
        log.warning("readiness check failed: %s", type(exc).__name__)
        return {"status": "unavailable", "journal_position": None, "views_position": None, "lag": None, "lag_seconds": None}, 503
    limit = settings().ready_max_lag_seconds
    status = "lagging" if lag.stalled(limit) else "ok"
    if status == "lagging":
        log.warning("not ready: views %d events behind, the oldest waiting %.1f s", lag.events, lag.seconds)
    answer = {"status": status, "journal_position": journal, "views_position": views, "lag": max(0, journal - views),
              "lag_seconds": round(lag.seconds, 3)}
    return answer, 200 if status == "ok" else 503
