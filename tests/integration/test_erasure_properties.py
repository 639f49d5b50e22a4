"""Erasure over random histories (issue 16): every answer about counts is the same before and after, whoever
is erased, with late retries, parked unmatched signals and quarantined bodies; an erasure interrupted
between its steps (a single one, or a bulk one a chunk at a time, crashed before any of its steps or in the
middle of a chunk's transaction) completes when called again; the fold never reads a personal field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.config import Settings
from application.queries import Queries
from application.service import ResponsesApp
from domain.personal import split_personal
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Quarantined, Signal, dedup_key
from projections.follower import ViewFollower
from tests.helpers.signals import fold_signals

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
STATUSES = ["delivered", "opened", "clicked", "soft_bounced", "hard_bounced", "spam", "unsubscribed"]
CONTACTS = [f"p{i}" for i in range(5)]


def address(contact: str) -> str:
    return f"Person.{contact}@Mail.Example.org"


def provider_event(contact: str, status: str, minute: int, email_only: bool, retry: int = 0) -> ProviderEvent:
    at = T0 + timedelta(minutes=minute)
    email = address(contact)
    url = f"https://shop.example.org/x?to={email.lower()}" if status == "clicked" else None
    fields = {"status": status, **({"delivery_status": "err_user_unknown"} if status == "hard_bounced" else {})}
    signal = Signal(
        key=dedup_key("prop", contact, status, minute),
        source="unione",
        fields=fields,
        received_at=at + timedelta(seconds=retry),
        occurred_at=at,
        url=url,
        raw={"email": email, "status": status, "ip": "198.51.100.9"},
    )
    return ProviderEvent(signal, Correlation(email=email) if email_only else Correlation("prop", contact, email=email))


def build(app: ResponsesApp, history: list[tuple[int, str, int, bool]]) -> None:
    app.create_mailing({"id": "prop", "name": "Prop", "category": "bulk", "email_type": "news", "provider": "unione"})
    app.add_audience("prop", [{"contact_id": c, "email": address(c), "name": f"Name {c}"} for c in CONTACTS[:4]])
    app.dispatch("prop", now=T0)
    events = [provider_event(CONTACTS[c], s, m, e) for c, s, m, e in history]
    app.record_batch(ParsedBatch(events=events))
    app.record_batch(ParsedBatch(events=events[: len(events) // 2]))  # retries: duplicates
    app.quarantine([Quarantined("unione", f'{{"email": "{address(CONTACTS[0]).lower()}", ', "truncated")])
    # a body naming everyone: a bulk erasure's chunks redact it in turn, each from the text the one before left
    everyone = ", ".join(f'"{address(c)}"' for c in CONTACTS)
    app.quarantine([Quarantined("unione", f'{{"to": [{everyone}], ', "truncated")])
    app.wait_for_views()


def answers(app: ResponsesApp) -> dict[str, Any]:
    q = Queries(app)
    app.wait_for_views()
    audience = q.audience("prop", limit=100)["items"]
    return {
        "summary": q.summary("prop"),
        "audience": [(i["contact_id"], i["response"], i["opens"], i["clicks"]) for i in audience],
        "timeline": q.timeline("prop"),
        "links": q.links("prop"),
        "flags": {c: q.contact(c)["flags"] for c in CONTACTS[:4]},
        "unmatched": len(app.views.fetch(f"SELECT id FROM {app.views.t(app.generation(), 'side')} WHERE kind = 'unmatched'")),
    }


history_strategy = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from(STATUSES), st.integers(1, 300), st.booleans()), min_size=1, max_size=25
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=history_strategy, erased=st.sets(st.sampled_from(CONTACTS[:4]), min_size=1, max_size=3))
def test_whoever_is_erased_every_count_stays(tmp_path_factory: pytest.TempPathFactory, history: Any, erased: set[str]) -> None:
    path = tmp_path_factory.mktemp("prop") / "r.db"
    app = ResponsesApp(Settings(database_url=f"sqlite:///{path}"))
    app.follower = ViewFollower(app)
    try:
        build(app, history)
        before = answers(app)
        for contact in sorted(erased):
            app.erasures.erase(contact, "property test", None)
        assert answers(app) == before
        late = [provider_event(c, "opened", 400, False) for c in sorted(erased)]  # late events: matched, counted
        app.record_batch(ParsedBatch(events=late))
        after = answers(app)
        assert sum(i[2] for i in after["audience"]) >= sum(i[2] for i in before["audience"])
    finally:
        app.close()
    stored = b"".join(p.read_bytes() for p in path.parent.glob("r.db*") if p.is_file()).lower()
    for contact in erased:
        assert address(contact).lower().encode() not in stored
        assert address(contact).lower().replace("@", "%40").encode() not in stored


def test_an_erasure_interrupted_after_its_keys_are_destroyed_completes_when_called_again(app: ResponsesApp) -> None:
    build(app, [(0, "delivered", 1, False), (0, "opened", 5, False)])
    before = answers(app)
    journal = app._in_transaction

    def crash(work: Any) -> Any:
        raise SystemExit("killed between the erasure's transaction and its journal record")

    app._in_transaction = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        app.erasures.erase("p0", "GDPR art. 17", None)
    app._in_transaction = journal  # type: ignore[method-assign]
    record = app.erasures.erase("p0", "GDPR art. 17", None)  # the retry
    contact_events = [
        n.topic for n in app.recorder.select_notifications(start=1, limit=10_000) if n.topic.endswith("Contact.Erased")
    ]
    assert contact_events == ["domain.aggregates:Contact.Erased"]
    assert record["signals"] == 3 and answers(app) == before  # sent_to_provider, delivered, opened


BULK_STEPS = ("_erase_chunk", "_journal", "_erase_addresses", "_scrub_files")


def crash_at(app: ResponsesApp, n: int) -> list[str]:
    """From now on, the ``n``th step of an erasure raises (as a kill would stop it there): a chunk, its
    journal record, the addresses' pass, the scrub, and the journal's redaction, which runs inside a chunk's
    transaction (a crash there rolls back keys, views and records together). Returns the steps seen."""
    seen: list[str] = []

    def wrap(owner: Any, name: str) -> None:
        original = getattr(owner, name)

        def step(*args: Any, **kwargs: Any) -> Any:
            seen.append(name)
            if len(seen) == n:
                raise SystemExit(f"killed at {name}")
            return original(*args, **kwargs)

        setattr(owner, name, step)

    for name in BULK_STEPS:
        wrap(app.erasures, name)
    wrap(app.erasures.redaction, "rewrite")
    return seen


def erased_events(app: ResponsesApp) -> list[str]:
    """The ids of the contacts each ``Contact.Erased`` event in the journal is about, one per event."""
    return sorted(
        app.repository.get(n.originator_id).contact_id
        for n in app.recorder.select_notifications(start=1, limit=10_000)
        if n.topic.endswith("Contact.Erased")
    )


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=history_strategy,
    erased=st.sets(st.sampled_from(CONTACTS[:4]), min_size=1, max_size=4),
    crash=st.integers(1, 14),
)
def test_a_bulk_erasure_crashed_at_any_step_completes_when_run_again(
    tmp_path_factory: pytest.TempPathFactory, history: Any, erased: set[str], crash: int
) -> None:
    """Chunks of two contacts; the crash comes at the ``crash``th step (past the last: none); the job run
    again erases every contact once, journals one ``Contact.Erased`` each, and leaves no address behind."""
    path = tmp_path_factory.mktemp("bulk") / "r.db"
    app = ResponsesApp(Settings(database_url=f"sqlite:///{path}"))
    app.follower = ViewFollower(app)
    wanted = [*sorted(erased), "nobody"]
    parked = address(CONTACTS[4])  # sent nothing: its signals are parked (a click's URL names the address)
    try:
        build(app, history + [(4, "opened", 2, True), (4, "clicked", 3, False)])
        before = answers(app)
        app.erasures.chunk = 2
        seen = crash_at(app, crash)
        try:
            app.erasures.erase_many(wanted, [parked], "GDPR art. 17 batch", None)
        except SystemExit:
            assert len(seen) == crash
        else:
            assert len(seen) < crash
        app.erasures = type(app.erasures)(app)  # as a restarted process builds it
        app.erasures.chunk = 2
        result = app.erasures.erase_many(wanted, [parked], "GDPR art. 17 batch", None)
        assert result == {"erased": len(erased), "unknown": ["nobody"], "addresses": 1}
        assert erased_events(app) == sorted(erased)  # one record each, whatever ran before the crash
        assert [i["contact_id"] for i in app.erasures.page(10, None)[0]] == sorted(erased, reverse=True)
        assert answers(app) == before
    finally:
        app.close()
    stored = b"".join(p.read_bytes() for p in path.parent.glob("r.db*") if p.is_file()).lower()
    for contact in [*erased, CONTACTS[4]]:
        assert address(contact).lower().encode() not in stored, contact
        assert address(contact).lower().replace("@", "%40").encode() not in stored, contact


def test_the_fold_never_reads_a_personal_field() -> None:
    """Folding records with every personal field removed gives the same state, signal by signal."""
    signals = [provider_event("p1", s, i * 3, False).signal for i, s in enumerate(STATUSES)]
    records = [s.to_record() for s in signals]
    stripped = [Signal.from_record(split_personal({"signal": r})[0]["signal"]) for r in records]
    assert [s.raw for s in stripped] == [None] * len(stripped)
    (whole, whole_steps), (bare, bare_steps) = fold_signals(signals), fold_signals(stripped)
    assert [(s.maps_to, s.effect, s.why) for s in whole_steps] == [(s.maps_to, s.effect, s.why) for s in bare_steps]
    assert (whole.response, whole.reason, whole.opens, whole.clicks, whole.first_open_at) == (
        bare.response,
        bare.reason,
        bare.opens,
        bare.clicks,
        bare.first_open_at,
    )
