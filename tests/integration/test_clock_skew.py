"""Skew is recorded, not trusted (issue 14, item 7), on both stores: a UniOne open dated 2027 takes effect at its
receipt plus the allowance, the history shows both times and the skew, the timeline never draws it in the future;
a signal stored before the effective time existed folds as one stored with it (live, in the history, rebuilt and
in a what-if); correlation reads the same allowance from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from application.config import Settings
from application.service import ResponsesApp
from application.unit_of_work import UnitOfWork
from domain.aggregates import Recipient, recipient_id
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, parse_iso
from interface.app import create_app
from interface.simulate import UNIONE_TIME, unione_batch
from projections.follower import ViewFollower
from projections.replay import rebuild, what_if
from tests.helpers.http import TOKEN, UNIONE_KEY, http_settings

ALLOWANCE = timedelta(seconds=600)
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
IN_2027 = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def api(app: ResponsesApp) -> FlaskClient:
    client = create_app(app, http_settings(app.settings.database_url)).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


def unione_event(contact: str, status: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": f"job-{contact}",
        "email": f"{contact}@example.com",
        "status": status,
        "event_time": at.strftime(UNIONE_TIME),
        "metadata": {"mailing_id": "skew", "contact_id": contact},
        **extra,
    }


def test_a_future_unione_open_takes_effect_at_receipt_plus_the_allowance(app: ResponsesApp, api: FlaskClient) -> None:
    assert (
        api.post("/v1/mailings", json={"id": "skew", "name": "Skew", "category": "bulk", "provider": "unione"}).status_code == 201
    )
    api.post("/v1/mailings/skew/audience", json={"recipients": [{"contact_id": "c1", "email": "c1@example.com"}]})
    assert api.post("/v1/mailings/skew/dispatch").status_code == 200
    now = datetime.now(UTC)
    events = [
        unione_event("c1", "delivered", now - timedelta(seconds=5)),
        unione_event("c1", "opened", IN_2027, delivery_info={"user_agent": "Mozilla/5.0"}),
        unione_event("c1", "clicked", now + timedelta(hours=5), url="https://shop.example.com/sale"),
    ]
    answer = api.post("/v1/webhooks/unione", data=unione_batch(events, UNIONE_KEY), content_type="application/json")
    assert answer.status_code == 200 and answer.json["accepted"] == 3, answer.json
    app.wait_for_views()

    history = api.get("/v1/mailings/skew/recipients/c1/history").json
    steps = {s["maps_to"]: s for s in history["signals"]}
    opened, clicked, delivered = steps["opened"], steps["clicked"], steps["delivered"]
    received = parse_iso(opened["received_at"])
    assert parse_iso(opened["occurred_at"]) == IN_2027  # the provider's own time is kept
    assert parse_iso(opened["effective_at"]) == received + ALLOWANCE  # type: ignore[operator]
    assert opened["skew_seconds"] == (IN_2027 - received - ALLOWANCE).total_seconds() > 0  # type: ignore[operator]
    assert parse_iso(clicked["effective_at"]) == parse_iso(clicked["received_at"]) + ALLOWANCE  # type: ignore[operator]
    assert clicked["skew_seconds"] > 0
    assert delivered["effective_at"] == delivered["occurred_at"] and delivered["skew_seconds"] == 0

    timeline = api.get("/v1/mailings/skew/timeline?hours=72").json
    drawn = [b for b in timeline["buckets"] if b["first_opens"] or b["first_clicks"]]
    assert sum(b["first_opens"] for b in drawn) == 1 and sum(b["first_clicks"] for b in drawn) == 1
    assert all(parse_iso(b["at"]) <= now + ALLOWANCE for b in drawn), drawn  # type: ignore[operator]
    assert (parse_iso(history["signals"][-1]["effective_at"]) or now) <= datetime.now(UTC) + ALLOWANCE


def journal(contact: str) -> list[Signal]:
    """Delivered, then an open dated 2027 from a machine agent, then a click dated an hour ahead of its receipt."""

    def signal(status: str, received: datetime, occurred: datetime, **kw: Any) -> Signal:
        return Signal(
            key=f"{contact}-{status}",
            source="unione",
            fields={"status": status},
            received_at=received,
            occurred_at=occurred,
            raw={"status": status},
            **kw,
        )

    return [
        signal("delivered", T0 + timedelta(minutes=1), T0 + timedelta(minutes=1)),
        signal("opened", T0 + timedelta(minutes=2), IN_2027, user_agent="Bot/1.0"),
        signal("clicked", T0 + timedelta(minutes=3), T0 + timedelta(hours=1), url="https://a.example/"),
    ]


def record_old_format(app: ResponsesApp, mailing_id: str, contact: str, signals: list[Signal]) -> None:
    """As the journal held them before the effective time existed: records without ``effective_at``."""
    oid = recipient_id(mailing_id, contact)

    def work(uow: UnitOfWork) -> None:
        uow.prefetch_lean({oid: {s.key for s in signals}})
        recipient: Recipient = uow.get(oid)
        for s in signals:
            assert recipient.record(s)

    app._in_transaction(work)


def folded(app: ResponsesApp, contact: str) -> tuple[Any, ...]:
    g = app.generation()
    row = app.views.fetch(
        f"SELECT response, opens, clicks, first_open_at, first_click_at FROM {app.views.t(g, 'recipients')} "
        "WHERE mailing_id = 'old' AND contact_id = ?",
        (contact,),
    )[0]
    return tuple(row[k] for k in row.keys())  # noqa: SIM118 (a sqlite3.Row iterates values)


def steps(app: ResponsesApp, contact: str) -> list[tuple[Any, ...]]:
    history = app.history("old", contact)
    return [
        (s["occurred_at"], s["effective_at"], s["skew_seconds"], s["maps_to"], s["effect"], s["why"]) for s in history["signals"]
    ]


def test_a_signal_stored_without_an_effective_time_folds_as_one_stored_with_it(app: ResponsesApp) -> None:
    app.create_mailing({"id": "old", "name": "Old", "category": "bulk", "provider": "unione"})
    app.add_audience(
        "old", [{"contact_id": "c-old", "email": "o@example.com"}, {"contact_id": "c-new", "email": "n@example.com"}]
    )
    app.dispatch("old", now=T0)
    record_old_format(app, "old", "c-old", journal("c-old"))
    new = [ProviderEvent(s, Correlation("old", "c-new")) for s in journal("c-new")]
    assert app.record_batch(ParsedBatch(events=new)).accepted == 3
    app.wait_for_views()

    stored = {
        c: [r for _, r in app.journal_index.signals_of(recipient_id("old", c)) if r["source"] == "unione"]
        for c in ("c-old", "c-new")
    }
    assert len(stored["c-old"]) == len(stored["c-new"]) == 3
    assert all("effective_at" not in r for r in stored["c-old"])
    assert all("effective_at" in r for r in stored["c-new"])  # stamped at ingest, beside the provider's time

    assert folded(app, "c-old") == folded(app, "c-new")
    assert parse_iso(folded(app, "c-new")[3]) == T0 + timedelta(minutes=2) + ALLOWANCE  # the 2027 open, clamped
    assert steps(app, "c-old") == steps(app, "c-new")
    assert steps(app, "c-new")[2][2] > 0 and steps(app, "c-new")[3][2] > 0  # the open's and the click's skew

    machine = app.define_rules({"machine_open_user_agents": ["Bot"], "machine_open_window_seconds": 900})
    rebuild(app, machine)
    assert folded(app, "c-old") == folded(app, "c-new")
    assert folded(app, "c-new")[:2] == ("clicked", 0)  # the open, 11 effective minutes after the delivery: a machine's

    current = app.ruleset(machine.version)
    candidate = current.patched({"machine_open_user_agents": []}, version="what-if")
    for light in (True, False):
        answer = what_if(app, current, candidate, ["old"], scoped=False, light=light)
        assert answer["changed"] == 0 and answer["counters_changed"] == 2  # each open counted again: the same for both


@pytest.fixture
def strict_app(database_url: str) -> Iterator[ResponsesApp]:
    application = ResponsesApp(Settings(database_url=database_url, max_clock_skew_seconds=60))
    application.follower = ViewFollower(application)
    try:
        yield application
    finally:
        application.close()


def test_correlation_and_the_effective_time_read_one_setting(strict_app: ResponsesApp) -> None:
    app = strict_app
    app.create_mailing({"id": "m", "name": "M", "category": "bulk", "provider": "unione"})
    app.add_audience("m", [{"contact_id": "a", "email": "a@example.com"}])
    app.dispatch("m", now=T0)

    def event(status: str, occurred: datetime) -> ProviderEvent:
        s = Signal(
            key=f"k-{status}",
            source="unione",
            fields={"status": status},
            received_at=T0 + timedelta(minutes=1),
            occurred_at=occurred,
        )
        return ProviderEvent(s, Correlation(email="a@example.com"))

    assert app.record_batch(ParsedBatch(events=[event("delivered", T0 - timedelta(minutes=5))])).unmatched == 1  # beyond 60 s
    assert app.record_batch(ParsedBatch(events=[event("opened", IN_2027)])).accepted == 1
    stored = [r for _, r in app.journal_index.signals_of(recipient_id("m", "a"))]
    assert parse_iso(stored[-1]["effective_at"]) == T0 + timedelta(minutes=2)  # received + 60 s
