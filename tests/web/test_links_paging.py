"""The click map is paged (issue 14: 20,000 tracked URLs gave 12.4 MB of HTML and a 5.3 MB API answer).

``GET /v1/mailings/{id}/links`` answers at most ``limit`` links (default and maximum 1000) ordered by
clicks (most first), then URL, with ``next``: the opaque cursor of the following page. The links tab
shows the top 100 with a link to the next page. Both stores (the ``app`` fixture)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from application.service import ResponsesApp
from tests.helpers.http import error_of, sign_unione

MAILING = "many-links"
CONTACTS = [f"c-{n}" for n in range(1, 6)]
EVENTS_PER_BATCH = 150


def url_of(i: int) -> str:
    return f"https://shop.example.com/item/{i:05d}?utm_campaign=spring"


def planned_clicks(urls: int) -> list[tuple[str, str]]:
    """(url, contact) per click: URL i is clicked 1 + i % 3 times, by as many recipients, except every
    fifth URL, clicked each time by the same one (clicks and unique clicks differ)."""
    clicks = []
    for i in range(urls):
        for j in range(1 + i % 3):
            contact = CONTACTS[i % 5] if i % 5 == 0 else CONTACTS[(i + j) % 5]
            clicks.append((url_of(i), contact))
    return clicks


def expected_links(urls: int) -> list[dict[str, Any]]:
    totals: dict[str, tuple[int, set[str]]] = {}
    for url, contact in planned_clicks(urls):
        clicks, who = totals.get(url, (0, set()))
        totals[url] = (clicks + 1, who | {contact})
    links = [{"url": u, "clicks": c, "unique_clicks": len(who)} for u, (c, who) in totals.items()]
    return sorted(links, key=lambda link: (-link["clicks"], link["url"]))


def unione_click(contact: str, url: str, second: int) -> dict[str, Any]:
    return {
        "event_name": "transactional_email_status",
        "event_data": {
            "job_id": "links-job",
            "metadata": {"mailing_id": MAILING, "contact_id": contact},
            "email": f"{contact}@example.com",
            "status": "clicked",
            "event_time": f"2026-11-14 {10 + second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}",
            "url": url,
        },
    }


def seed_links(app: ResponsesApp, api: FlaskClient, webhook: FlaskClient, urls: int) -> None:
    """A mailing to five recipients whose clicks reach ``urls`` distinct URLs, through the UniOne webhook."""
    assert (
        api.post("/v1/mailings", json={"id": MAILING, "name": "Links", "category": "bulk", "provider": "unione"}).status_code
        == 201
    )
    audience = [{"contact_id": c, "email": f"{c}@example.com"} for c in CONTACTS]
    assert api.post(f"/v1/mailings/{MAILING}/audience", json={"recipients": audience}).status_code == 200
    assert api.post(f"/v1/mailings/{MAILING}/dispatch").status_code == 200
    events = [unione_click(contact, url, n) for n, (url, contact) in enumerate(planned_clicks(urls))]
    for start in range(0, len(events), EVENTS_PER_BATCH):
        body = json.dumps(
            {"auth": "AUTH_PLACEHOLDER", "events_by_user": [{"user_id": 1, "events": events[start : start + EVENTS_PER_BATCH]}]}
        )
        r = webhook.post("/v1/webhooks/unione", data=sign_unione(body.encode()), content_type="application/json")
        assert r.status_code == 200 and r.json["accepted"] == len(events[start : start + EVENTS_PER_BATCH]), r.json
    app.wait_for_views()


def test_the_click_map_pages_by_clicks_then_url_without_duplicates_or_omissions(
    app: ResponsesApp, api: FlaskClient, client_raw: FlaskClient
) -> None:
    seed_links(app, api, client_raw, 2500)
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        r = api.get(f"/v1/mailings/{MAILING}/links", query_string={"cursor": cursor} if cursor else {})
        assert r.status_code == 200, r.json
        assert set(r.json) == {"links", "next"}
        pages.append(r.json["links"])
        cursor = r.json["next"]
        if cursor is None:
            break
        assert len(pages) < 10
    assert [len(p) for p in pages] == [1000, 1000, 500]
    assert [link for page in pages for link in page] == expected_links(2500)


def test_a_smaller_limit_pages_the_same_order(app: ResponsesApp, api: FlaskClient, client_raw: FlaskClient) -> None:
    seed_links(app, api, client_raw, 40)
    seen: list[dict[str, Any]] = []
    r = api.get(f"/v1/mailings/{MAILING}/links?limit=7").json
    while True:
        seen += r["links"]
        if r["next"] is None:
            break
        assert len(r["links"]) == 7
        r = api.get(f"/v1/mailings/{MAILING}/links?limit=7&cursor={r['next']}").json
    assert seen == expected_links(40)


def test_a_page_reads_a_page_of_rows_not_every_link(
    app: ResponsesApp, api: FlaskClient, client_raw: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_links(app, api, client_raw, 300)
    fetched: list[int] = []
    fetch = app.views.fetch

    def counting(sql: str, params: Any = ()) -> list[Any]:
        rows = fetch(sql, params)
        fetched.append(len(rows))
        return rows

    monkeypatch.setattr(app.views, "fetch", counting)
    first = api.get(f"/v1/mailings/{MAILING}/links?limit=10").json
    second = api.get(f"/v1/mailings/{MAILING}/links?limit=10&cursor={first['next']}").json
    assert first["links"] + second["links"] == expected_links(300)[:20]
    assert sum(fetched) <= 2 * (10 + 1) + 8, fetched  # each page: its rows, one more (is there a next?), and a few lookups


def test_the_links_tab_shows_the_top_100_and_a_next_link(
    app: ResponsesApp, api: FlaskClient, client_raw: FlaskClient, browser: FlaskClient
) -> None:
    seed_links(app, api, client_raw, 150)
    expected = expected_links(150)
    html = browser.get(f"/mailings/{MAILING}?tab=links").get_data(as_text=True)
    rows = re.findall(r'<tr data-url="([^"]+)">', html)
    assert rows == [link["url"] for link in expected[:100]]
    found = re.search(r'<a rel="next" href="([^"]+)"', html)
    assert found, "a link to the next page"
    following = browser.get(found.group(1).replace("&amp;", "&"))
    assert following.status_code == 200
    assert re.findall(r'<tr data-url="([^"]+)">', following.get_data(as_text=True)) == [link["url"] for link in expected[100:]]
    assert '<a rel="next"' not in following.get_data(as_text=True)
    # Issue 18: the shares were of recipient-link pairs (here 300) beside a tile of 5 unique clickers.
    share_total = re.search(r"Share of the recipients who clicked any link \(([^)]*)\)", html)
    clickers = len({contact for _url, contact in planned_clicks(150)})
    assert share_total and int(re.sub(r"\D", "", share_total.group(1))) == clickers == 5
    assert api.get(f"/v1/mailings/{MAILING}/summary").json["unique_clicks"] == clickers, "the page agrees with the summary"
    first = expected[0]
    assert re.search(r'<tr data-url="' + re.escape(first["url"]) + r'">.*?<meter[^>]*value="([0-9.]+)"', html, re.S).group(1) == (
        f"{first['unique_clicks'] / clickers:.4f}"
    )


def test_a_limit_outside_1_to_1000_is_refused(app: ResponsesApp, api: FlaskClient, client_raw: FlaskClient) -> None:
    seed_links(app, api, client_raw, 3)
    for limit in ("0", "1001", "-1", "many", "99999999999999999999"):
        r = api.get(f"/v1/mailings/{MAILING}/links?limit={limit}")
        assert r.status_code == 422, (limit, r.json)
        assert "limit" in error_of(r)["details"]
    assert len(api.get(f"/v1/mailings/{MAILING}/links?limit=1000").json["links"]) == 3


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("latin-1")).decode().rstrip("=")


HOSTILE_CURSORS = [
    "x",
    "%%%",
    "====",
    _b64("s12"),
    _b64("l1:" + "0" * 32),
    _b64("l99999999999999999999999:" + "a" * 32),
    _b64("l-1:" + "a" * 32),
    _b64("l1:' OR 1=1 --"),
    "A" * 5000,
    _b64("l1:" + "g" * 32),
    _b64("\x00\xff"),
    "\u00e9\u00e9",
]


def test_a_cursor_the_api_did_not_give_out_is_refused_in_the_error_shape(
    app: ResponsesApp, api: FlaskClient, client_raw: FlaskClient, browser: FlaskClient
) -> None:
    seed_links(app, api, client_raw, 3)
    for cursor in HOSTILE_CURSORS:
        r = api.get(f"/v1/mailings/{MAILING}/links", query_string={"cursor": cursor})
        assert r.status_code == 422, (cursor, r.status_code, r.get_data(as_text=True)[:300])
        assert "cursor" in error_of(r)["details"]
        assert browser.get(f"/mailings/{MAILING}", query_string={"tab": "links", "cursor": cursor}).status_code == 400
