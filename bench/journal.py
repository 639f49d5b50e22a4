"""Synthetic but realistic campaign signals, for the benchmark and `responses simulate`."""

from __future__ import annotations

import random
import sqlite3
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from application.config import Settings
from application.service import ResponsesApp
from domain.aggregates import Mailing, Recipient
from domain.signals import Correlation, ProviderEvent, Signal, dedup_key, iso, system_signal

# A campaign's shape: most mail is delivered, some opened, fewer clicked, a few bounce or complain.
_TAIL = [("opened", 0.45), ("clicked", 0.15), ("opened", 0.2), ("unsubscribed", 0.01), ("spam", 0.003)]


def recipient_statuses(rng: random.Random, n: int) -> list[str]:
    """``n`` UniOne statuses for one recipient, in a plausible order."""
    roll = rng.random()
    if roll < 0.02:
        first = ["hard_bounced"]
    elif roll < 0.06:
        first = ["soft_bounced", "delivered"]
    else:
        first = ["delivered"]
    statuses = first[:n]
    while len(statuses) < n:
        status = "opened"
        for candidate, p in _TAIL:
            if rng.random() < p:
                status = candidate
                break
        statuses.append(status)
    return statuses


def _signal(mailing: str, contact: str, status: str, i: int, at: datetime) -> Signal:
    fields = {"status": status}
    if status == "hard_bounced":
        fields["delivery_status"] = "err_user_unknown"
    url = "https://shop.example.com/sale" if status == "clicked" else None
    email = f"{contact}@example.com"
    return Signal(
        key=dedup_key("unione", "job", email, status, i, url),
        source="unione",
        fields=fields,
        received_at=at,
        occurred_at=at,
        url=url,
        raw={"job_id": "1smi9f-00057m-86zr", "email": email, "status": status, "event_time": at.strftime("%Y-%m-%d %H:%M:%S")},
    )


def provider_events(mailing: str, recipients: int, signals: int, start: datetime, seed: int = 7) -> list[ProviderEvent]:
    """``signals`` provider events spread over ``recipients`` recipients (ids ``c0`` …)."""
    rng = random.Random(seed)
    per = max(1, signals // recipients)
    events: list[ProviderEvent] = []
    for r in range(recipients):
        contact = f"c{r}"
        for i, status in enumerate(recipient_statuses(rng, per)):
            at = start + timedelta(minutes=5 + 7 * i + r % 50)
            events.append(ProviderEvent(_signal(mailing, contact, status, i, at), Correlation(mailing, contact)))
            if len(events) >= signals:
                return events
    return events


def build_journal(path: Path, recipients: int, signals: int, start: datetime, progress: bool = False) -> None:
    """Write a journal of ``signals`` recipient signals straight into a SQLite event store.

    The events are made by the real aggregates and encoded by the application's
    own mapper; only the insert is raw, so building a large journal is fast.
    """
    app = ResponsesApp(Settings(database_url=f"sqlite:///{path}"))
    mapper = app.mapper
    con = sqlite3.connect(path, isolation_level=None)
    rows: list[tuple[str, int, str, bytes]] = []
    written = 0

    def flush() -> None:
        nonlocal rows
        con.execute("BEGIN")
        con.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", rows)
        con.execute("COMMIT")
        rows = []

    def add(aggregate: object) -> None:
        for event in aggregate.collect_events():  # type: ignore[attr-defined]
            stored = mapper.to_stored_event(event)
            rows.append((stored.originator_id.hex, stored.originator_version, stored.topic, stored.state))

    mailing = Mailing(
        mailing_id="bench",
        name="Bench",
        category="bulk",
        email_type="news",
        provider="unione",
        expires_at=None,
        prevent_duplicates=False,
    )
    mailing.start_dispatch_wave(iso(start))  # type: ignore[arg-type]
    add(mailing)
    rng = random.Random(11)
    per = max(1, signals // recipients)
    for r in range(recipients):
        contact = f"c{r}"
        recipient = Recipient(mailing_id="bench", contact_id=contact, name=None, email=f"{contact}@example.com")
        recipient.record(system_signal("sent_to_provider", key=dedup_key("dispatch", "bench", contact), at=start))
        for i, status in enumerate(recipient_statuses(rng, per - 1)):
            recipient.record(_signal("bench", contact, status, i, start + timedelta(minutes=5 + 7 * i)))
        written += per
        add(recipient)
        if len(rows) >= 20_000:
            flush()
            if progress:
                print(f"\r  {written:,}/{signals:,} signals written", end="", file=sys.stderr, flush=True)
        if written >= signals:
            break
    flush()
    if progress:
        print(f"\r  {written:,}/{signals:,} signals written", file=sys.stderr)
    con.close()
    app.close()


def iter_batches(events: list[ProviderEvent], size: int) -> Iterator[list[ProviderEvent]]:
    for i in range(0, len(events), size):
        yield events[i : i + size]
