"""The audit history, paged: one recipient can never produce an unbounded answer (both stores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from application.service import ResponsesApp
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def long_journal(app: ResponsesApp, opens: int) -> None:
    app.create_mailing({"id": "long", "name": "Long", "category": "bulk", "provider": "unione"})
    app.add_audience("long", [{"contact_id": "c1", "email": "c1@example.com"}])
    app.dispatch("long", now=T0)
    events = []
    for i in range(opens):
        at = T0 + timedelta(hours=2, seconds=i)
        status = "delivered" if i == 0 else "opened"
        signal = Signal(
            key=dedup_key("unione", "long", status, i),
            source="unione",
            fields={"status": status},
            received_at=at,
            occurred_at=at,
            raw={"i": i},
        )
        events.append(ProviderEvent(signal, Correlation("long", "c1")))
    for i in range(0, len(events), 500):
        app.record_batch(ParsedBatch(events=events[i : i + 500]))


def test_a_long_history_comes_in_pages_of_at_most_1000_with_the_whole_journals_counters(
    app: ResponsesApp, api: FlaskClient
) -> None:
    long_journal(app, 2501)  # a delivery and 2,500 opens
    url = "/v1/mailings/long/recipients/c1/history"
    pages, cursor = [], None
    while True:
        r = api.get(url + (f"?cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.json
        pages.append(r.json)
        cursor = r.json["next"]
        if cursor is None:
            break
    assert [len(p["signals"]) for p in pages] == [1000, 1000, 502]  # the dispatch decision, the delivery, 2,500 opens
    seqs = [s["seq"] for p in pages for s in p["signals"]]
    assert seqs == sorted(set(seqs)) and seqs[0] == 2  # no signal twice, none skipped (seq 1 is joining)
    assert len(seqs) == 2502
    assert all(p["opens"] == 2500 and p["response"]["code"] == "opened" for p in pages)  # every page: the whole journal


def test_a_small_limit_pages_too_and_a_limit_over_1000_or_a_foreign_cursor_is_a_422(app: ResponsesApp, api: FlaskClient) -> None:
    long_journal(app, 5)
    url = "/v1/mailings/long/recipients/c1/history"
    first = api.get(url + "?limit=2").json
    assert [s["seq"] for s in first["signals"]] == [2, 3] and first["next"]
    second = api.get(url + f"?limit=2&cursor={first['next']}").json
    assert [s["seq"] for s in second["signals"]] == [4, 5]
    assert api.get(url + "?limit=1001").status_code == 422
    bad = api.get(url + "?cursor=not-ours")
    assert bad.status_code == 422 and "cursor" in bad.json["error"]["details"]
    assert api.get(url).json["next"] is None
    assert api.get("/v1/mailings/long/recipients/nobody/history").status_code == 404
