"""Opens and clicks per hour since the start: each first open or click in the hour it happened, exactly at the
boundaries (the start has a fraction of a second; the views group by minute in SQL, both stores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from application.queries import Queries
from application.service import ResponsesApp
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key

START = datetime(2026, 3, 14, 9, 0, 22, 500000, tzinfo=UTC)  # seconds 22.5: inside a minute
HOUR = timedelta(hours=1)


def provider_event(contact: str, status: str, at: datetime, url: str | None = None) -> ProviderEvent:
    signal = Signal(
        key=dedup_key("unione", contact, status, at.isoformat(), url),
        source="unione",
        fields={"status": status},
        # received after every provider time here (a provider time later than its receipt plus the clock-skew allowance
        # would be clamped, issue 14): the hour each falls in is its own
        received_at=START + 4 * HOUR,
        occurred_at=at,
        url=url,
        raw={"status": status},
    )
    return ProviderEvent(signal, Correlation("tl", contact))


def test_first_opens_and_clicks_fall_in_their_hour_at_the_boundaries(app: ResponsesApp) -> None:
    opens_at = {
        "before-start": START - timedelta(seconds=1),
        "at-start": START,
        "same-minute-earlier-second": START.replace(second=10) + HOUR,  # 09:00:10 + 1 h: 59:47.5 after the start, hour 0
        "just-before-hour-1": START + HOUR - timedelta(microseconds=1),
        "exactly-hour-1": START + HOUR,
        "hour-1-plus": START + HOUR + timedelta(seconds=0.3),
        "last-instant": START + 3 * HOUR - timedelta(microseconds=1),
        "beyond": START + 3 * HOUR,
        "whole-second": (START + 2 * HOUR).replace(microsecond=0) + timedelta(seconds=1),  # no fraction stored
    }
    contacts = list(opens_at) + ["clicker"]
    app.create_mailing({"id": "tl", "name": "Timeline", "category": "bulk", "provider": "unione"})
    app.add_audience("tl", [{"contact_id": c, "email": f"{c}@example.com"} for c in contacts])
    app.dispatch("tl", now=START)
    events = [provider_event(c, "opened", at) for c, at in opens_at.items()]
    events += [
        provider_event("clicker", "clicked", START + HOUR + timedelta(minutes=5), "https://x.example/a"),
        provider_event("clicker", "clicked", START + 2 * HOUR, "https://x.example/b"),
    ]  # only the first counts
    app.record_batch(ParsedBatch(events=events))
    app.wait_for_views()
    timeline = Queries(app).timeline("tl", hours=3)
    assert timeline["start"] == START.isoformat()
    assert [b["first_opens"] for b in timeline["buckets"]] == [3, 3, 2]
    # hour 0: at-start, same-minute-earlier-second, just-before-hour-1; hour 1: exactly-hour-1, hour-1-plus and the
    # clicker (a click without a tracked open implies one); hour 2: last-instant, whole-second
    assert [b["first_clicks"] for b in timeline["buckets"]] == [0, 1, 0]
    assert [b["at"] for b in timeline["buckets"]] == [(START + h * HOUR).isoformat() for h in range(3)]
