"""Liveness and readiness (CONTRACT §7, §8): ``/healthz``, ``/readyz`` with the projection lag."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma

from application.jobs import upgrade_progress
from domain.signals import parse_iso
from interface.http.common import Blueprint
from interface.shared.context import service, settings
from projections.follower import applied_lag, measure_lag
from projections.lag import LagHistogram

log = logging.getLogger("responses.http")

blp = Blueprint("ops", __name__, url_prefix="", description="Health and readiness")

NO_BEARER: list[dict[str, list[str]]] = []


class HealthSchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"enum": ["ok"]})


class AppliedLagSchema(ma.Schema):
    events = ma.fields.Integer(required=True)
    p50_ms = ma.fields.Float(allow_none=True, metadata={"description": "bucket bound (5 ms steps below 50, 50 ms below 2 s)"})
    p99_ms = ma.fields.Float(allow_none=True)
    last_batch_ms = ma.fields.Float(required=True)


class ReadySchema(ma.Schema):
    status = ma.fields.String(required=True, metadata={"enum": ["ok", "lagging", "unavailable"]})
    journal_position = ma.fields.Integer(allow_none=True)
    views_position = ma.fields.Integer(allow_none=True)
    lag = ma.fields.Integer(allow_none=True, metadata={"description": "journal events the views have not applied yet"})
    lag_seconds = ma.fields.Float(
        allow_none=True,
        metadata={
            "description": "behind: how long the oldest journal event the views have not applied has waited since it was stored; "
            "caught up: the largest lag the follower measured in the batch it applied last (now minus each event's stored time), "
            "0 when that batch is over a minute old"
        },
    )
    applied_lag = ma.fields.Nested(
        AppliedLagSchema,
        allow_none=True,
        metadata={"description": "every event the active views applied: the follower's own measure"},
    )
    upgrading = ma.fields.Dict(
        metadata={"description": 'only while views of an older shape serve: their replacement\'s build, {"progress": 0..1}'}
    )


@blp.route("/healthz", methods=["GET"])
@blp.doc(security=NO_BEARER, summary="Liveness: the process answers")
@blp.response(200, HealthSchema)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def recent_batch_lag(applied: LagHistogram, within_seconds: float = 60.0) -> float:
    at = parse_iso(applied.last_batch_at)
    if at is None or (datetime.now(UTC) - at).total_seconds() > within_seconds:
        return 0.0
    return applied.last_batch_ms / 1000


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
        applied = applied_lag(app)
        upgrading = upgrade_progress(app.views)
    except Exception as exc:  # the store is down: not ready, and say so without a 500
        log.warning("readiness check failed: %s", type(exc).__name__)
        return {
            "status": "unavailable",
            "journal_position": None,
            "views_position": None,
            "lag": None,
            "lag_seconds": None,
            "applied_lag": None,
        }, 503
    limit = settings().ready_max_lag_seconds
    status = "lagging" if lag.stalled(limit) else "ok"
    if status == "lagging":
        log.warning("not ready: views %d events behind, the oldest waiting %.1f s", lag.events, lag.seconds)
    seconds = lag.seconds if lag.events else recent_batch_lag(applied)
    answer = {
        "status": status,
        "journal_position": journal,
        "views_position": views,
        "lag": max(0, journal - views),
        "lag_seconds": round(seconds, 3),
        "applied_lag": applied.summary(),
        **upgrading,
    }
    return answer, 200 if status == "ok" else 503
