"""The recipient's history page shows a clamped provider time (issue 14, item 7): the effective time and the skew,
only where there was one, in both languages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from interface.simulate import UNIONE_TIME, unione_batch
from tests.helpers.http import UNIONE_KEY

IN_2027 = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
SKEW = re.compile(r'<div class="skew" data-skew-seconds="([0-9.]+)">')


def test_the_history_page_shows_the_effective_time_and_the_skew_where_there_was_one(
    browser: FlaskClient, api: FlaskClient, client_raw: FlaskClient
) -> None:
    assert (
        api.post("/v1/mailings", json={"id": "skew", "name": "Skew", "category": "bulk", "provider": "unione"}).status_code == 201
    )
    api.post("/v1/mailings/skew/audience", json={"recipients": [{"contact_id": "c1", "email": "c1@example.com"}]})
    api.post("/v1/mailings/skew/dispatch")
    now = datetime.now(UTC)
    events = [
        {
            "job_id": "j",
            "email": "c1@example.com",
            "status": status,
            "event_time": at.strftime(UNIONE_TIME),
            "metadata": {"mailing_id": "skew", "contact_id": "c1"},
        }
        for status, at in (("delivered", now - timedelta(seconds=5)), ("opened", IN_2027))
    ]
    assert (
        client_raw.post("/v1/webhooks/unione", data=unione_batch(events, UNIONE_KEY), content_type="application/json").status_code
        == 200
    )
    history = api.get("/v1/mailings/skew/recipients/c1/history").json["signals"]
    opened = next(s for s in history if s["maps_to"] == "opened")

    html = browser.get("/mailings/skew/recipients/c1?tz=UTC").get_data(as_text=True)
    assert [float(v) for v in SKEW.findall(html)] == [opened["skew_seconds"]]  # the open only, not the delivery
    effective = datetime.fromisoformat(opened["effective_at"]).strftime("%Y-%m-%d %H:%M:%S")
    assert f'<span class="muted small">Effective time</span> {effective}' in html
    assert f"provider clock ahead by {opened['skew_seconds']:.0f} s beyond the allowance" in html
    assert "часы провайдера спешат на" in browser.get("/mailings/skew/recipients/c1?lang=ru").get_data(as_text=True)
