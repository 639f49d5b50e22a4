"""The engagement buckets (issue 15, item 6): first opens and first clicks per mailing by UTC minute, each
minute split at the start's second, kept by the projector as first times happen or move earlier; the
timeline and any time zone's hours are sums of their rows, and the timeline reads no more rows for more
recipients (both stores)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.queries import Queries
from application.service import ResponsesApp
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key, parse_iso
from projections.projector import engagement_key, minute_split

START = datetime(2026, 3, 14, 9, 0, 22, 500000, tzinfo=UTC)
IST = timezone(timedelta(hours=5, minutes=30))
_mailings = itertools.count(1)
_keys = itertools.count(1)


def provider_event(mailing: str, contact: str, status: str, at: datetime, received: datetime) -> ProviderEvent:
    url = "https://x.example/a" if status == "clicked" else None
    signal = Signal(
        key=dedup_key("unione", mailing, contact, status, next(_keys)),
        source="unione",
        fields={"status": status},
        received_at=received,
        occurred_at=at,
        url=url,
        raw={"status": status},
    )
    return ProviderEvent(signal, Correlation(mailing, contact))


def new_mailing(app: ResponsesApp, contacts: list[str], start: datetime | None = START) -> str:
    mailing = f"eb{next(_mailings)}"
    app.create_mailing({"id": mailing, "name": "Buckets", "category": "bulk", "provider": "unione"})
    app.add_audience(mailing, [{"contact_id": c, "email": f"{c}@example.com"} for c in contacts])
    if start is not None:
        app.dispatch(mailing, now=start)
    return mailing


def bucket_rows(app: ResponsesApp, mailing: str) -> Counter[tuple[str, int, str]]:
    """The engagement view's rows of a mailing, as (minute, early, kind) → count (zeros left out)."""
    table = app.views.t(app.generation(), "engagement")
    found: Counter[tuple[str, int, str]] = Counter()
    for r in app.views.fetch(f"SELECT minute, early, first_opens, first_clicks FROM {table} WHERE mailing_id = ?", (mailing,)):
        found[(r["minute"], int(r["early"]), "open")] += int(r["first_opens"])
        found[(r["minute"], int(r["early"]), "click")] += int(r["first_clicks"])
    return +found


def recount(app: ResponsesApp, mailing: str) -> Counter[tuple[str, int, str]]:
    """The same, counted again from the recipients' first times (each recipient's whole fold state)."""
    g = app.generation()
    row = app.views.fetch(f"SELECT started_at, first_sent_at FROM {app.views.t(g, 'mailings')} WHERE id = ?", (mailing,))[0]
    split = minute_split(parse_iso(row["started_at"]) or parse_iso(row["first_sent_at"]))
    found: Counter[tuple[str, int, str]] = Counter()
    for r in app.views.fetch(f"SELECT state FROM {app.views.t(g, 'recipients')} WHERE mailing_id = ?", (mailing,)):
        state = orjson.loads(r["state"])
        for kind, column in (("open", "first_open_at"), ("click", "first_click_at")):
            at = parse_iso(state[column])
            if at is not None:
                _, minute, early = engagement_key(mailing, at, split)
                found[(minute, early, kind)] += 1
    return found


def hours_from_first_times(app: ResponsesApp, mailing: str, start: datetime, hours: int) -> list[tuple[int, int]]:
    """(first opens, first clicks) in each hour since ``start``, from the recipients' first times, one by one."""
    out = [[0, 0] for _ in range(hours)]
    for r in app.views.fetch(f"SELECT state FROM {app.views.t(app.generation(), 'recipients')} WHERE mailing_id = ?", (mailing,)):
        state = orjson.loads(r["state"])
        for k, column in enumerate(("first_open_at", "first_click_at")):
            at = parse_iso(state[column])
            if at is not None and start <= at < start + timedelta(hours=hours):
                out[int((at - start) // timedelta(hours=1))][k] += 1
    return [(o, c) for o, c in out]


# ---- buckets equal a recount, whatever the order the opens and clicks arrive in ------------------------------------


history = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=5),  # the contact
        st.sampled_from(["opened", "clicked", "delivered"]),
        st.integers(min_value=-120, max_value=3 * 3600),  # seconds from the start (some before it)
        st.integers(min_value=0, max_value=999_999),  # the fraction of its second
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=history, chunks=st.integers(min_value=1, max_value=3), dispatched_first=st.booleans())
def test_buckets_equal_a_recount_from_first_times_for_any_history(
    app: ResponsesApp, events: list[tuple[int, str, int, int]], chunks: int, dispatched_first: bool
) -> None:
    """Random histories in random order (out-of-order earlier opens move a first time earlier, across batches
    too); with the dispatch first, or after some signals (the start then moves, and the minutes are split anew)."""
    contacts = [f"c{i}" for i in range(6)]
    mailing = new_mailing(app, contacts, START if dispatched_first else None)
    received = START + timedelta(hours=4)
    parsed = [
        provider_event(mailing, contacts[c], status, START + timedelta(seconds=s, microseconds=f), received)
        for c, status, s, f in events
    ]
    size = max(1, len(parsed) // chunks)
    for i in range(0, len(parsed), size):
        app.record_batch(ParsedBatch(events=parsed[i : i + size]))
        app.wait_for_views()
        if i == 0 and not dispatched_first:
            app.dispatch(mailing, now=START)
            app.wait_for_views()
    if not dispatched_first and len(parsed) <= size:
        app.dispatch(mailing, now=START)
        app.wait_for_views()
    assert bucket_rows(app, mailing) == recount(app, mailing)
    timeline = Queries(app).timeline(mailing, hours=4)
    assert [(b["first_opens"], b["first_clicks"]) for b in timeline["buckets"]] == hours_from_first_times(app, mailing, START, 4)


def test_an_earlier_open_arriving_later_moves_the_first_open_to_its_minute(app: ResponsesApp) -> None:
    mailing = new_mailing(app, ["a"])
    received = START + timedelta(hours=4)
    app.record_batch(ParsedBatch(events=[provider_event(mailing, "a", "opened", START + timedelta(minutes=90), received)]))
    app.wait_for_views()
    late = (START + timedelta(minutes=90)).isoformat()[:16]
    assert bucket_rows(app, mailing) == Counter({(late, 0, "open"): 1})
    app.record_batch(ParsedBatch(events=[provider_event(mailing, "a", "opened", START + timedelta(minutes=10), received)]))
    app.wait_for_views()
    early = (START + timedelta(minutes=10)).isoformat()[:16]
    assert bucket_rows(app, mailing) == Counter({(early, 0, "open"): 1})  # one less at 10:30, one more at 09:10
    assert [b["first_opens"] for b in Queries(app).timeline(mailing, hours=2)["buckets"]] == [1, 0]


# ---- any time zone's hours are a sum of rows ---------------------------------------------------------------------


def test_hours_in_india_are_sums_of_the_minute_buckets(app: ResponsesApp) -> None:
    """A mailing started at 09:00 in +05:30 (03:30 UTC): each hour of its timeline is the sum of the bucket rows
    whose minute falls in that local hour; and the hours of any other range (here UTC's) are sums of rows too."""
    start = datetime(2026, 3, 14, 9, 0, tzinfo=IST)
    contacts = [f"c{i}" for i in range(30)]
    mailing = new_mailing(app, contacts, start)
    received = start + timedelta(hours=5)
    events = [
        provider_event(mailing, c, "opened", start + timedelta(minutes=7 * i + 3, seconds=i), received)
        for i, c in enumerate(contacts)
    ]
    events += [
        provider_event(mailing, c, "clicked", start + timedelta(minutes=11 * i + 1), received)
        for i, c in enumerate(contacts[:12])
    ]
    app.record_batch(ParsedBatch(events=events))
    app.wait_for_views()
    rows = bucket_rows(app, mailing)
    timeline = Queries(app).timeline(mailing, hours=4)
    assert timeline["start"] == start.astimezone(UTC).isoformat()
    for b in timeline["buckets"]:
        local_hour = (start + timedelta(hours=b["hour"])).astimezone(IST).strftime("%Y-%m-%dT%H")
        in_hour = {key: n for key, n in rows.items() if local_minute(key[0], IST).startswith(local_hour)}
        assert b["first_opens"] == sum(n for (_, _, kind), n in in_hour.items() if kind == "open")
        assert b["first_clicks"] == sum(n for (_, _, kind), n in in_hour.items() if kind == "click")
    assert sum(b["first_opens"] for b in timeline["buckets"]) == 30
    utc_hours = Counter(minute[:13] for (minute, _, kind), n in rows.items() if kind == "open" for _ in range(n))
    first_times = Counter(
        parse_iso(orjson.loads(r["state"])["first_open_at"]).isoformat()[:13]  # type: ignore[union-attr]
        for r in app.views.fetch(
            f"SELECT state FROM {app.views.t(app.generation(), 'recipients')} WHERE mailing_id = ?", (mailing,)
        )
    )
    assert utc_hours == first_times


def local_minute(utc_minute: str, tz: timezone) -> str:
    return datetime.fromisoformat(utc_minute).replace(tzinfo=UTC).astimezone(tz).isoformat()[:16]


# ---- the timeline reads no more rows for more recipients ------------------------------------------------------------


@contextmanager
def statements_sent(app: ResponsesApp) -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """The read statements the views are asked (``ViewsMixin.fetch``), with their parameters."""
    sent: list[tuple[str, tuple[Any, ...]]] = []
    views = app.views
    fetch = views.fetch

    def counted(sql: str, params: Any = ()) -> list[Any]:
        sent.append((views._q(sql), tuple(params)))
        return fetch(sql, params)

    views.fetch = counted  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        del views.fetch


def rows_read(app: ResponsesApp, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
    """What the database reads to answer these statements, counted by the database: on PostgreSQL the rows every
    scan of a table or index returns (``EXPLAIN ANALYZE``); on SQLite its virtual machine's steps (a progress
    handler called at each), which grow with every row a statement visits."""
    total = 0
    with app.views.cursor(commit=False) as c:
        if app.settings.is_postgres:
            for sql, params in statements:
                c.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                plan = c.fetchone()
                total += scanned(plan[next(iter(plan))][0]["Plan"] if isinstance(plan, dict) else plan[0][0]["Plan"])
            return total
        connection = c.sqlite_cursor.connection
        steps = [0]

        def step() -> int:
            steps[0] += 1
            return 0

        connection.set_progress_handler(step, 1)
        try:
            for sql, params in statements:
                c.execute(sql, params)
                c.fetchall()
        finally:
            connection.set_progress_handler(None, 1)
        return steps[0]


def scanned(node: dict[str, Any]) -> int:
    own = int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1)) if "Scan" in node.get("Node Type", "") else 0
    return own + sum(scanned(child) for child in node.get("Plans", []))


def timeline_reads(app: ResponsesApp, recipients: int) -> int:
    contacts = [f"r{recipients}-{i}" for i in range(recipients)]
    mailing = new_mailing(app, contacts)
    received = START + timedelta(hours=4)
    # every recipient opens, in the same 20 minutes whatever their number: the buckets are as many
    events = [
        provider_event(mailing, c, "opened", START + timedelta(minutes=5 + i % 20, seconds=30), received)
        for i, c in enumerate(contacts)
    ]
    app.record_batch(ParsedBatch(events=events))
    app.wait_for_views()
    with statements_sent(app) as sent:
        timeline = Queries(app).timeline(mailing, hours=48)
    assert sum(b["first_opens"] for b in timeline["buckets"]) == recipients
    return rows_read(app, sent)


def test_the_timeline_reads_no_more_rows_for_more_recipients(app: ResponsesApp) -> None:
    few = timeline_reads(app, 40)
    many = timeline_reads(app, 800)  # 20 times the recipients, in the same minutes
    assert many <= few * 1.1 + 10, (few, many)
