"""A history page costs a page (issue 14): the views keep fold checkpoints per recipient, every K
signals, under the active rules; a page for now folds at most K + limit signals from the nearest one,
and answers exactly what a fold of the whole journal answers. Other rules or ``as_of`` fold the
journal, at most ``HISTORY_FOLDS_MAX`` at a time per process (others: 429). Both stores."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import application.rules as rules_module
import projections.projector as projector_module
import projections.replay as replay_module
from application.queries import encode_cursor
from application.service import ResponsesApp
from domain.aggregates import recipient_id
from domain.rules import Ruleset
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key, key_digest, parse_iso
from projections.replay import explain
from projections.views import dump_recipient_state, load_recipient_state
from tests.helpers.http import TOKEN, error_of

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
K = 50  # checkpoints every 50 signals here (1,000 in production)
URL = "/v1/mailings/long/recipients/c1/history"
FOLDS = ("fold", "fold_into")  # what the history folds a signal with (``fold`` before checkpoints, ``fold_into`` now)


@pytest.fixture(autouse=True)
def small_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(projector_module, "CHECKPOINT_SIGNALS", K, raising=False)


def provider_signal(i: int, at: datetime) -> Signal:
    """A delivery first, then opens (every fifth one a machine's), clicks and a soft bounce."""
    if i == 0:
        status, extra = "delivered", {}
    elif i % 9 == 4:
        status, extra = "clicked", {"url": f"https://example.com/p/{i % 4}"}
    elif i % 5 == 2:
        status, extra = "opened", {"machine": True}
    elif i == 333:
        status, extra = "soft_bounced", {}
    else:
        status, extra = "opened", {}
    return Signal(
        key=dedup_key("unione", "long", status, i),
        source="unione",
        fields={"status": status},
        received_at=at,
        occurred_at=at,
        raw={"i": i},
        **extra,
    )


def journal(app: ResponsesApp, signals: int, start: int = 0) -> None:
    """Recipient c1 of mailing "long": ``signals`` provider signals (after the dispatch decision)."""
    if start == 0:
        app.create_mailing({"id": "long", "name": "Long", "category": "bulk", "provider": "unione"})
        app.add_audience("long", [{"contact_id": "c1", "email": "c1@example.com"}])
        app.dispatch("long", now=T0)
    events = [
        ProviderEvent(provider_signal(i, T0 + timedelta(hours=2, seconds=i)), Correlation("long", "c1"))
        for i in range(start, start + signals)
    ]
    for i in range(0, len(events), 250):
        app.record_batch(ParsedBatch(events=events[i : i + 250]))


def full_fold(app: ResponsesApp, rules: Ruleset | None = None) -> dict[str, Any]:
    """The reference: every signal of the journal folded from the start (what the history answered before)."""
    records = app.journal_index.signals_of(recipient_id("long", "c1"))
    signals = ((seq, Signal.from_record(r)) for seq, r in records)
    started = parse_iso(app.get_mailing_aggregate("long").started_at)
    return explain(signals, rules or app.active_rules(), started)


class Counted:
    """Counts the signals the history folds (``projections.replay.fold``) and reads from the journal."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, app: ResponsesApp) -> None:
        self.folded = 0
        self.read = 0
        signals_of = app.journal_index.signals_of

        def counting_reader(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for item in signals_of(*args, **kwargs):
                self.read += 1
                yield item

        for name in FOLDS:
            if hasattr(replay_module, name):
                monkeypatch.setattr(replay_module, name, self.counting(getattr(replay_module, name)))
        monkeypatch.setattr(app.journal_index, "signals_of", counting_reader)

    def counting(self, fold: Callable[..., Any]) -> Callable[..., Any]:
        def counting_fold(*args: Any, **kwargs: Any) -> Any:
            self.folded += 1
            return fold(*args, **kwargs)

        return counting_fold

    def reset(self) -> None:
        self.folded = self.read = 0


def pages(api: FlaskClient, limit: int, counted: Counted, query: str = "") -> Iterator[tuple[dict[str, Any], int, int]]:
    """Every page of the history, with the signals folded and read for it."""
    cursor = None
    while True:
        counted.reset()
        r = api.get(f"{URL}?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.json
        yield r.json, counted.folded, counted.read
        cursor = r.json["next"]
        if cursor is None:
            return


def test_a_page_in_the_middle_of_500_signals_folds_at_most_k_plus_limit(
    app: ResponsesApp, api: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal(app, 499)  # with the dispatch decision: 500 signals
    reference = full_fold(app)
    assert len(reference["signals"]) == 500
    api.get(URL + "?limit=1")  # the views catch up (as any read waits for them)
    counted = Counted(monkeypatch, app)
    middle = reference["signals"][254]["seq"]
    r = api.get(f"{URL}?limit=10&cursor={encode_cursor(middle)}")
    assert r.status_code == 200, r.json
    assert counted.folded <= K + 10, counted.folded
    assert counted.read <= K + 10 + 1, counted.read
    assert r.json["signals"] == reference["signals"][255:265]
    assert {k: r.json[k] for k in ("response", "opens", "clicks", "rules")} == {
        k: reference[k] for k in ("response", "opens", "clicks", "rules")
    }


def test_every_page_answers_as_the_whole_journal_folded(
    app: ResponsesApp, api: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal(app, 420)
    reference = full_fold(app)
    counted = Counted(monkeypatch, app)
    steps: list[dict[str, Any]] = []
    for page, folded, read in pages(api, 37, counted):
        assert folded <= K + 37 and read <= K + 37 + 1, (folded, read)
        assert {k: page[k] for k in ("response", "opens", "clicks")} == {k: reference[k] for k in ("response", "opens", "clicks")}
        steps += page["signals"]
    assert steps == reference["signals"]
    assert steps[-1]["response_after"] == reference["response"]


def test_a_page_for_now_shows_the_journal_up_to_the_views_and_agrees_with_itself(
    app: ResponsesApp, api: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal(app, 120)
    api.get(URL + "?limit=1")  # the views are caught up with these 121 signals
    journal(app, 60, start=120)  # journaled, not projected yet: the projection is stopped
    monkeypatch.setattr(app, "follower", None)
    monkeypatch.setattr(rules_module, "HISTORY_VIEWS_WAIT_SECONDS", 0.0, raising=False)
    answer = app.history("long", "c1", limit=1000)
    projected = full_fold(app)["signals"][:121]
    assert answer["signals"] == projected and answer["next"] is None
    assert answer["response"] == answer["signals"][-1]["response_after"]
    assert answer["opens"] == sum(1 for s in projected if s["maps_to"] == "opened" and s["effect"] != "ignored")


def test_after_a_rule_activation_the_checkpoints_follow_the_new_rules(
    app: ResponsesApp, api: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal(app, 300)
    api.get(URL + "?limit=1")
    version = app.define_rules({"count_machine_opens": True, "responses": {"soft_bounce": {"final": True}}}).version
    assert api.post(f"/v1/rules/{version}/activate").status_code == 202
    app.jobs.run()  # what the projection process does: a rebuild, then the swap
    assert app.active_version() == version
    reference = full_fold(app, app.ruleset(version))
    before = full_fold(app, app.ruleset("1"))
    assert reference["opens"] != before["opens"]  # the rules matter here
    counted = Counted(monkeypatch, app)
    steps: list[dict[str, Any]] = []
    for page, folded, _ in pages(api, 25, counted):
        assert folded <= K + 25, folded
        assert page["rules"] == version
        assert {k: page[k] for k in ("response", "opens", "clicks")} == {k: reference[k] for k in ("response", "opens", "clicks")}
        steps += page["signals"]
    assert steps == reference["signals"]
    start = app.views.history_start(recipient_id("long", "c1").hex, 10**9)
    assert start.generation == app.generation() and start.rules_version == version
    assert start.version == 302 and start.checkpoint_version == 300  # joined (1), 301 signals: checkpoints at 50, 100, ...
    assert start.state is not None and start.state.response == reference["response"]["code"]
    keys = b"".join(key_digest(r["key"]) for v, r in app.journal_index.signals_of(recipient_id("long", "c1")) if v <= 300)
    assert start.checkpoint is not None and start.checkpoint.seen.blob == keys  # every signal's key up to it, from the deltas


def test_as_of_and_other_rules_fold_the_whole_journal_and_still_answer_the_same(
    app: ResponsesApp, api: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal(app, 150)
    other = app.define_rules({"count_machine_opens": True})
    as_of = T0 + timedelta(hours=2, seconds=100)
    counted = Counted(monkeypatch, app)
    r = api.get(f"{URL}?limit=10&rules={other.version}")
    assert r.status_code == 200 and r.json["rules"] == other.version
    assert counted.folded == 151  # every signal: the views' checkpoints are the active rules'
    reference = full_fold(app, other)
    assert r.json["signals"] == reference["signals"][:10] and r.json["opens"] == reference["opens"]
    r = api.get(f"{URL}?limit=10&as_of={as_of.isoformat().replace('+00:00', 'Z')}")
    assert r.status_code == 200
    assert r.json["opens"] < full_fold(app)["opens"]


@pytest.fixture
def held_folds(flask_app: Flask, app: ResponsesApp, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], list[int]]]:
    """``hold(query)``: two requests of the history with ``query`` left running inside their folds
    (a barrier proves both are folding); the statuses they answered once released."""
    entered = threading.Barrier(3, timeout=20)
    release = threading.Event()
    main = threading.get_ident()
    waited: set[int] = set()

    def holding(fold: Callable[..., Any]) -> Callable[..., Any]:
        def holding_fold(*args: Any, **kwargs: Any) -> Any:
            me = threading.get_ident()
            if me != main and me not in waited:
                waited.add(me)
                entered.wait()
                release.wait(timeout=20)
            return fold(*args, **kwargs)

        return holding_fold

    for name in FOLDS:
        if hasattr(replay_module, name):
            monkeypatch.setattr(replay_module, name, holding(getattr(replay_module, name)))
    statuses: list[int] = []
    threads: list[threading.Thread] = []

    def hold(query: str) -> list[int]:
        def one() -> None:
            client = flask_app.test_client()
            client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
            statuses.append(client.get(URL + query).status_code)

        threads.extend(threading.Thread(target=one) for _ in range(2))
        for t in threads:
            t.start()
        entered.wait()  # both are folding now
        return statuses

    try:
        yield hold
    finally:
        release.set()
        for t in threads:
            t.join(timeout=30)


def test_a_third_whole_journal_fold_is_a_429_while_two_run(
    app: ResponsesApp, api: FlaskClient, held_folds: Callable[[str], list[int]]
) -> None:
    journal(app, 5)
    api.get(URL + "?limit=1")
    as_of = "2030-01-01T00:00:00Z"
    statuses = held_folds(f"?as_of={as_of}")
    busy = api.get(f"{URL}?as_of={as_of}")
    assert busy.status_code == 429, busy.json
    assert int(busy.headers["Retry-After"]) >= 1
    assert error_of(busy)["code"] == "too_many_requests"
    assert api.get(f"{URL}?rules=1&as_of={as_of}").status_code == 429
    assert api.get(URL).status_code == 200  # a page for now under the active rules needs no whole fold
    other = app.define_rules({"count_machine_opens": True}).version
    assert api.get(f"{URL}?rules={other}").status_code == 429
    assert statuses == []  # the two held ones are still folding


def test_views_made_before_checkpoints_answer_from_a_whole_fold(
    app: ResponsesApp, api: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row projected before versions were counted (its state has none): the page folds the whole journal, right."""
    journal(app, 80)
    api.get(URL + "?limit=1")
    g, rid = app.generation(), recipient_id("long", "c1").hex
    [row] = app.views.fetch(f"SELECT state FROM {app.views.t(g, 'recipients')} WHERE rid = ?", (rid,))
    with app.views.cursor(commit=True) as c:  # as an older version wrote it
        c.execute(
            app.views._q(f"UPDATE {app.views.t(g, 'recipients')} SET state = ? WHERE rid = ?"),
            (dump_recipient_state(load_recipient_state(row["state"])), rid),
        )
    counted = Counted(monkeypatch, app)
    page = api.get(f"{URL}?limit=10&cursor={encode_cursor(60)}").json
    assert counted.folded == 81
    reference = full_fold(app)
    assert page["signals"] == [s for s in reference["signals"] if s["seq"] > 60][:10]
