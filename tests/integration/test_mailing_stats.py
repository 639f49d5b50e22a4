"""The ``mailing_stats`` view (recipients grouped for a mailing's analytics) always equals its recipients grouped.

The projector keeps it batch by batch (the /mailings list and every summary read it instead of
the audience): after a simulated campaign with retries and disorder, after a rebuild under other
rules, and after views made before the table existed (filled once from the recipients).
"""

from __future__ import annotations

from typing import Any

from application.queries import Queries
from application.service import ResponsesApp
from interface.app import create_app
from projections.replay import rebuild
from tests.campaign import simulate_campaign
from tests.helpers.http import TOKEN, UNIONE_KEY, http_settings


def stats_rows(app: ResponsesApp, generation: int) -> list[tuple[Any, ...]]:
    rows = app.views.fetch(
        f"SELECT mailing_id, response, reason, sent, unique_open, clicked, recipients, opens, clicks "
        f"FROM {app.views.t(generation, 'mailing_stats')} WHERE recipients > 0"
    )
    return sorted(tuple(int(v) if isinstance(v, int) else v for v in (r[k] for k in r.keys())) for r in rows)  # noqa: SIM118 (a sqlite3.Row iterates values)


def grouped_recipients(app: ResponsesApp, generation: int) -> list[tuple[Any, ...]]:
    clicked = "CASE WHEN clicks > 0 THEN 1 ELSE 0 END"
    rows = app.views.fetch(
        f"SELECT mailing_id, response, COALESCE(reason, '') AS reason, sent, unique_open, {clicked} AS clicked, "
        f"COUNT(*) AS n, SUM(opens) AS opens, SUM(clicks) AS clicks FROM {app.views.t(generation, 'recipients')} "
        f"GROUP BY mailing_id, response, COALESCE(reason, ''), sent, unique_open, {clicked}"
    )
    return sorted(tuple(int(v) if isinstance(v, int) else v for v in (r[k] for k in r.keys())) for r in rows)  # noqa: SIM118 (a sqlite3.Row iterates values)


def test_stats_equal_the_recipients_grouped_live_after_a_rebuild_and_when_filled_late(app: ResponsesApp) -> None:
    client = create_app(app, http_settings(app.settings.database_url)).test_client()
    report = simulate_campaign(app, client, TOKEN, UNIONE_KEY, recipients=150, mailing_id="stats-a", seed=3)
    simulate_campaign(app, client, TOKEN, UNIONE_KEY, recipients=40, mailing_id="stats-b", seed=4)
    g = app.generation()
    live = stats_rows(app, g)
    assert live == grouped_recipients(app, g)
    assert {r[0] for r in live} == {"stats-a", "stats-b"}
    summary = Queries(app).summary("stats-a")
    assert summary["audience"] == 150 and summary == report.summary
    assert summary["unique_opens"] > 0 and summary["total_clicks"] > 0  # the campaign engaged: the sums are real

    rebuilt = rebuild(app, app.define_rules({"responses": {"soft_bounce": {"final": True}}, "count_machine_opens": True}))
    assert stats_rows(app, rebuilt) == grouped_recipients(app, rebuilt)

    # views made before the table existed: filled once from the recipients, then kept as before
    with app.views.cursor(commit=True) as c:
        c.execute(f"DROP TABLE {app.views.t(rebuilt, 'mailing_stats')}")
    app.views.create_views(rebuilt)
    assert stats_rows(app, rebuilt) == grouped_recipients(app, rebuilt)
    simulate_campaign(app, client, TOKEN, UNIONE_KEY, recipients=30, mailing_id="stats-c", seed=5)
    assert stats_rows(app, rebuilt) == grouped_recipients(app, rebuilt)
    assert Queries(app).summary("stats-c")["audience"] == 30
