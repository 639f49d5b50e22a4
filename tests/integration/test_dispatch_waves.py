"""Bounded dispatch (issue 7, failure 9): waves that never lose a decision, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import application.service as service_module
from application.errors import NotFound
from application.queries import Queries
from application.service import ResponsesApp

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
AUDIENCE = [{"contact_id": f"c{i:02d}", "email": f"c{i:02d}@example.com"} for i in range(10)] + [
    {"contact_id": "no-email"},
    {"contact_id": "unsubscribed", "email": "u@example.com"},
]


def mailing(app: ResponsesApp, mailing_id: str = "m") -> None:
    app.create_mailing({"id": mailing_id, "name": "M", "category": "bulk", "email_type": "news", "provider": "unione"})
    app.set_subscription("unsubscribed", "news", False)
    app.add_audience(mailing_id, AUDIENCE)


def wave_list(app: ResponsesApp, mailing_id: str, wave: int, limit: int = 4) -> list[dict[str, Any]]:
    """Every item of a wave's send list, read page by page from the views."""
    app.wait_for_views()
    q, items, cursor = Queries(app), [], None
    while True:
        page = q.wave_send(mailing_id, wave, limit=limit, cursor=cursor)
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items


def sent_in_views(app: ResponsesApp, mailing_id: str) -> set[str]:
    app.wait_for_views()
    return {
        i["contact_id"]
        for i in Queries(app).audience(mailing_id, limit=1000)["items"]
        if i["response"]["code"] == "sent_to_provider"
    }


def test_a_bounded_dispatch_is_repeated_until_everyone_is_decided_exactly_once(
    app: ResponsesApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "DISPATCH_CHUNK", 3)
    mailing(app)
    answers = [app.dispatch("m", now=T0, deadline_seconds=0)]  # the deadline passes after every chunk
    assert answers[0]["wave"] == 1 and answers[0]["remaining"] > 0
    while answers[-1]["remaining"] > 0:
        answers.append(app.dispatch("m", now=T0, deadline_seconds=0))
    assert [a["wave"] for a in answers] == list(range(1, len(answers) + 1))
    assert len(answers) == 4  # 12 planned recipients, 3 a call
    decided = sum(sum(a["outcomes"].values()) for a in answers)
    assert decided == len(AUDIENCE)
    sent = [s["contact_id"] for a in answers for s in a["send"]]
    assert len(sent) == len(set(sent)) == 10
    assert set(sent) == sent_in_views(app, "m")
    # each wave's list is that call's send list; together they are exactly the recipients sent to
    for a in answers:
        assert wave_list(app, "m", a["wave"]) == a["send"]
    # a later call decides nobody: everyone was decided once
    last = app.dispatch("m", now=T0)
    assert (last["send"], last["outcomes"], last["remaining"]) == ([], {}, 0)


def test_a_limit_bounds_the_wave_and_the_decision_records_its_wave(app: ResponsesApp) -> None:
    mailing(app)
    first = app.dispatch("m", now=T0, limit=4)
    assert (sum(first["outcomes"].values()), first["remaining"], first["wave"]) == (4, 8, 1)
    second = app.dispatch("m", now=T0)
    assert (second["remaining"], second["wave"]) == (0, 2)
    assert app.history("m", "c00")["signals"][0]["raw"] == {"decided_by": "dispatch", "provider": "unione", "wave": 1}
    assert app.history("m", "c05")["signals"][0]["raw"]["wave"] == 2


def test_an_audience_that_fits_needs_one_call(app: ResponsesApp) -> None:
    mailing(app)
    answer = app.dispatch("m", now=T0)
    assert (answer["wave"], answer["remaining"], len(answer["send"])) == (1, 0, 10)


def test_a_dispatch_that_fails_midway_loses_no_decision(app: ResponsesApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer is lost (here: an exception in the fourth chunk); the wave's list recovers what was decided."""
    monkeypatch.setattr(service_module, "DISPATCH_CHUNK", 3)
    mailing(app)
    real = service_module.dispatch_outcome
    calls = [0]

    def failing(*args: Any) -> str:
        calls[0] += 1
        if calls[0] == 10:
            raise RuntimeError("the worker died")
        return real(*args)

    monkeypatch.setattr(service_module, "dispatch_outcome", failing)
    with pytest.raises(RuntimeError):
        app.dispatch("m", now=T0)
    monkeypatch.setattr(service_module, "dispatch_outcome", real)
    recovered = wave_list(app, "m", 1)
    assert [s["contact_id"] for s in recovered] == [f"c{i:02d}" for i in range(9)]  # three chunks were journaled
    rest = app.dispatch("m", now=T0)
    assert rest["wave"] == 2 and [s["contact_id"] for s in rest["send"]] == ["c09"]
    assert {s["contact_id"] for s in recovered + rest["send"]} == sent_in_views(app, "m")


def test_an_unknown_wave_is_not_found(app: ResponsesApp) -> None:
    mailing(app)
    app.dispatch("m", now=T0)
    for wave in (0, 2):
        with pytest.raises(NotFound):
            Queries(app).wave_send("m", wave)
    with pytest.raises(NotFound):
        Queries(app).wave_send("nope", 1)


def test_a_rebuild_keeps_the_waves_send_lists(app: ResponsesApp) -> None:
    from projections.replay import rebuild

    mailing(app)
    first, second = app.dispatch("m", now=T0, limit=5), app.dispatch("m", now=T0)
    rebuild(app, app.active_rules())
    assert [wave_list(app, "m", 1), wave_list(app, "m", 2)] == [first["send"], second["send"]]
