"""The write path that never rebuilds a recipient, against the one that rebuilds every aggregate.

The reference app loads every aggregate from its whole journal and stores events through the
library's own event store (stdlib json, its insert). Fed the same batches (shuffled, repeated),
both must answer the same counts, write the same journal and show the same views, on SQLite
and on PostgreSQL; and the lean path must stay correct where its shortcuts could fail: a hot
recipient, digest collisions, a journal written before the digest table, concurrent writers.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import Transcoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import application.persistence.journal_index as journal_index
from application.config import Settings
from application.queries import Queries
from application.service import ResponsesApp
from domain.aggregates import Recipient, recipient_id
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key
from projections.follower import ViewFollower
from tests.integration import aggregate_ingest

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
STATUSES = ("delivered", "opened", "clicked", "soft_bounced", "hard_bounced", "unsubscribed", "spam")


class RebuildingApp(ResponsesApp):
    """The write path as it was: every batch through the aggregates (``aggregate_ingest``), each rebuilt
    whole, stored by the library's encoder and insert."""

    lean_loading = False

    def construct_transcoder(self) -> Transcoder:
        return Application.construct_transcoder(self)

    def write_events(self, events: Any) -> None:
        self.events.put(events)

    def record_batch(self, batch: ParsedBatch) -> Any:
        return aggregate_ingest.record_batch(self, batch)


def open_app(cls: type[ResponsesApp], url: str) -> ResponsesApp:
    app = cls(Settings(database_url=url))
    app.follower = ViewFollower(app)
    return app


@pytest.fixture(params=["sqlite", "postgres"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[ResponsesApp, ResponsesApp]]:
    """A lean app and a rebuilding app, each on its own fresh database of the same kind."""
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'lean.db'}", f"sqlite:///{tmp_path / 'rebuilding.db'}"]
    else:
        urls = [request.getfixturevalue("postgres_url"), _another_postgres(request)]
    lean, rebuilding = open_app(ResponsesApp, urls[0]), open_app(RebuildingApp, urls[1])
    try:
        yield lean, rebuilding
    finally:
        lean.close()
        rebuilding.close()


def _another_postgres(request: pytest.FixtureRequest) -> str:
    databases = request.getfixturevalue("fresh_databases")
    url: str = databases.take()
    request.addfinalizer(lambda: databases.give_back(url))
    return url


def provider_event(mailing: str, contact: int, status: str, i: int, email_only: bool) -> ProviderEvent:
    email = f"c{contact}@example.com"
    at = T0 + timedelta(hours=1, minutes=7 * i + contact)
    url = "https://shop.example.com/sale" if status == "clicked" else None
    signal = Signal(
        key=dedup_key("unione", mailing, email, status, i, url),
        source="unione",
        fields={"status": status, **({"delivery_status": "err_user_unknown"} if status == "hard_bounced" else {})},
        received_at=at,
        occurred_at=at,
        url=url,
        raw={"email": email, "status": status, "i": i},
    )
    correlation = Correlation(email=email) if email_only else Correlation(mailing, f"c{contact}", email=email)
    return ProviderEvent(signal, correlation)


def start_campaign(app: ResponsesApp, mailing: str, contacts: range) -> None:
    app.create_mailing({"id": mailing, "name": mailing, "category": "bulk", "provider": "unione"})
    app.add_audience(mailing, [{"contact_id": f"c{c}", "email": f"c{c}@example.com"} for c in contacts])
    while app.dispatch(mailing, now=T0)["remaining"]:
        pass


def journal(app: ResponsesApp) -> list[tuple[str, int, str, Any]]:
    """Every stored event, with what differs between two runs by the clock alone taken out."""
    rows = []
    for n in app.recorder.select_notifications(start=1, limit=1_000_000):
        state = orjson.loads(n.state)
        app.privacy.open_state(state)  # sealed or not, the same fields (CONTRACT §12)
        state.pop("subject", None)
        state.pop("timestamp", None)
        if isinstance(state.get("command"), dict):
            state["command"].pop("at", None)
        rows.append((n.originator_id.hex, n.originator_version, n.topic, state))
    return sorted(rows)


def audience(app: ResponsesApp, mailing: str) -> list[tuple[Any, ...]]:
    app.wait_for_views()
    items = Queries(app).audience(mailing, limit=1000)["items"]
    return [(i["contact_id"], i["response"]["code"], i["opens"], i["clicks"]) for i in items]


events_strategy = st.lists(
    st.tuples(st.integers(0, 6), st.sampled_from(STATUSES), st.integers(0, 2), st.booleans()), min_size=1, max_size=40
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy, seed=st.integers(0, 2**16))
def test_the_lean_path_writes_the_journal_and_views_the_rebuilding_path_writes(
    two_stores: tuple[ResponsesApp, ResponsesApp], events: list[tuple[int, str, int, bool]], seed: int
) -> None:
    lean, rebuilding = two_stores
    mailing = f"m{uuid.uuid4().hex[:8]}"
    rng = random.Random(seed)
    provider = [provider_event(mailing, c, s, i, e) for c, s, i, e in events]
    batches = [provider[i : i + rng.randint(1, 8)] for i in range(0, len(provider), 5)]
    batches += rng.sample(batches, k=len(batches) // 2)  # providers retry
    rng.shuffle(batches)
    half = len(batches) // 2
    answers: dict[str, list[dict[str, int]]] = {"lean": [], "rebuilding": []}
    for name, app in (("lean", lean), ("rebuilding", rebuilding)):
        start_campaign(app, mailing, range(5))  # c5 and c6 join later: their signals are parked, then claimed
        for batch in batches[:half]:
            answers[name].append(app.record_batch(ParsedBatch(events=list(batch))).as_dict())
        app.add_audience(mailing, [{"contact_id": "c5", "email": "c5@example.com"}])
        for batch in batches[half:]:
            answers[name].append(app.record_batch(ParsedBatch(events=list(batch))).as_dict())
    assert answers["lean"] == answers["rebuilding"]
    assert journal(lean) == journal(rebuilding)
    assert audience(lean, mailing) == audience(rebuilding, mailing)


def test_the_librarys_own_repository_reads_what_the_lean_path_wrote(app: ResponsesApp) -> None:
    start_campaign(app, "spring", range(2))
    events = [provider_event("spring", 0, s, 0, False) for s in ("delivered", "opened", "clicked")]
    assert app.record_batch(ParsedBatch(events=events)).accepted == 3
    recipient: Recipient = app.repository.get(recipient_id("spring", "c0"))  # type: ignore[assignment]
    assert recipient.keys == {e.signal.key for e in events} | {dedup_key("dispatch", "spring", "c0")}
    assert recipient.version == 1 + 1 + 3  # joined, dispatched, three signals


def test_a_hot_recipient_is_never_rebuilt_from_its_signals(app: ResponsesApp, monkeypatch: pytest.MonkeyPatch) -> None:
    start_campaign(app, "hot", range(1))
    history = [provider_event("hot", 0, "opened", i, False) for i in range(3)]
    for i in range(40):  # 40 batches of opens with distinct keys: a long journal
        batch = [ProviderEvent(replace(e.signal, key=f"{e.signal.key}:{i}"), e.correlation) for e in history]
        app.record_batch(ParsedBatch(events=batch))
    decoded: list[str] = []
    original = app.mapper.to_domain_event

    def counting(stored: Any) -> Any:
        decoded.append(stored.topic)
        return original(stored)

    monkeypatch.setattr(app.mapper, "to_domain_event", counting)
    old = ProviderEvent(replace(history[0].signal, key=f"{history[0].signal.key}:7"), history[0].correlation)
    new = provider_event("hot", 0, "clicked", 0, False)
    counts = app.record_batch(ParsedBatch(events=[old, new]))
    assert (counts.accepted, counts.duplicates) == (1, 1)
    assert not any(t.endswith("SignalRecorded") for t in decoded), decoded  # only its facts were read
    assert audience(app, "hot")[0][1] == "clicked"


def test_a_digest_collision_never_makes_a_new_signal_a_duplicate(app: ResponsesApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_index, "key_digest", lambda oid, key: 42)  # every key collides with every other
    start_campaign(app, "clash", range(3))
    first = [provider_event("clash", c, "delivered", 0, False) for c in range(3)]
    assert app.record_batch(ParsedBatch(events=first)).accepted == 3
    then = [provider_event("clash", c, "opened", 0, False) for c in range(3)]
    assert app.record_batch(ParsedBatch(events=then + first)).as_dict() == {
        "accepted": 3,
        "duplicates": 3,
        "unmatched": 0,
        "quarantined": 0,
    }
    assert [r[1] for r in audience(app, "clash")] == ["opened"] * 3


def test_a_journal_written_before_the_digest_table_is_indexed_on_start(database_url: str) -> None:
    app = open_app(ResponsesApp, database_url)
    start_campaign(app, "old", range(2))
    events = [provider_event("old", c, "delivered", 0, False) for c in range(2)]
    app.record_batch(ParsedBatch(events=events))
    with app.recorder.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
        c.execute("DELETE FROM signal_digests")
    app.close()
    again = open_app(ResponsesApp, database_url)
    try:
        assert again.record_batch(ParsedBatch(events=events)).duplicates == 2
    finally:
        again.close()


def test_concurrent_writers_on_postgres_leave_no_notification_behind(postgres_url: str) -> None:
    """Eight writers append at once while the follower reads: the table lock keeps notification ids
    in commit order, so the views apply every journaled signal exactly once."""
    setup = open_app(ResponsesApp, postgres_url)
    start_campaign(setup, "rush", range(40))
    writers = [ResponsesApp(Settings(database_url=postgres_url)) for _ in range(8)]
    follower = ViewFollower(setup)
    stop = threading.Event()

    def follow() -> None:
        while not stop.is_set():
            follower.run_once()

    def write(w: int) -> None:
        rng = random.Random(w)
        for b in range(10):
            contacts = rng.sample(range(40), 10)
            batch = [provider_event("rush", c, "opened", 100 * w + b, False) for c in contacts]
            writers[w].record_batch(ParsedBatch(events=batch))

    reader = threading.Thread(target=follow)
    reader.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    reader.join()
    try:
        follower.catch_up()
        items = Queries(setup).audience("rush", limit=1000)["items"]
        assert sum(i["opens"] for i in items) == 8 * 10 * 10
        assert setup.views_position() == setup.journal_position()
    finally:
        for w in writers:
            w.close()
        setup.close()
