"""The sweep run again and again (``responses serve``/``project`` run it every SWEEP_INTERVAL_SECONDS):
at most one confirmation check per waiting recipient per hour, so the journal does not fill with them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from application.queries import Queries
from application.service import ResponsesApp
from domain.aggregates import recipient_id
from domain.signals import CONFIRMATION_CHECKED, SYSTEM, Signal
from interface.runner import PeriodicSweep

T0 = datetime(2026, 3, 14, 9, 5, tzinfo=UTC)


def waiting_mailing(app: ResponsesApp, now: datetime = T0) -> None:
    app.create_mailing({"id": "m1", "name": "M1", "category": "bulk", "provider": "unione"})
    app.add_audience("m1", [{"contact_id": "a", "email": "a@example.com"}, {"contact_id": "b", "email": "b@example.com"}])
    app.dispatch("m1", now=now)  # sent to the provider, nothing heard back: waiting for a confirmation


def checks(app: ResponsesApp, contact: str) -> int:
    """Confirmation checks in the recipient's journal."""
    events = app.repository.event_store.get(recipient_id("m1", contact))
    signals = [Signal.from_record(e.signal) for e in events if hasattr(e, "signal")]
    return sum(1 for s in signals if s.source == SYSTEM and s.fields.get("kind") == CONFIRMATION_CHECKED)


def test_one_confirmation_check_per_recipient_per_hour(app: ResponsesApp) -> None:
    waiting_mailing(app)
    assert app.sweep(now=T0 + timedelta(minutes=1))["checked"] == 2
    for minutes in (5, 10, 40, 54):  # the same hour (09:00-09:59): nothing new
        assert app.sweep(now=T0 + timedelta(minutes=minutes))["checked"] == 0
    assert app.sweep(now=T0 + timedelta(minutes=56))["checked"] == 2  # 10:01: the next hour
    assert app.sweep(now=T0 + timedelta(minutes=57))["checked"] == 0
    assert app.sweep(now=T0 + timedelta(hours=49))["checked"] == 2  # the 48-hour rule still applies
    assert checks(app, "a") == checks(app, "b") == 3
    app.wait_for_views()
    assert {i["response"]["code"] for i in Queries(app).audience("m1", limit=10)["items"]} == {"unknown_response"}


@pytest.mark.timeout(30)
def test_the_periodic_sweep_runs_every_interval_without_filling_the_journal(app: ResponsesApp) -> None:
    waiting_mailing(app, now=datetime.now(UTC))
    runs: list[dict[str, int]] = []
    sweeper = PeriodicSweep(app, interval=0.05, on_result=runs.append).start()
    try:
        deadline = time.monotonic() + 10
        while len(runs) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sweeper.stop()
    assert len(runs) >= 5
    assert sum(r["checked"] for r in runs) in (2, 4)  # 4 only if the clock crossed an hour meanwhile
    assert checks(app, "a") in (1, 2)
