"""Every page over HTTP (Flask's test client) on both stores: what a marketer sees is what the API answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application.service import ResponsesApp
from interface.simulate import Report
from interface.web.i18n import why_sentence
from tests.helpers.http import fixture_bytes, sign_unione
from tests.helpers.web import MAILING, csrf_of, post_form, reads_campaign

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SCRIPT = "<script>alert(1)</script>"


def text(response: Any) -> str:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True)[:500])
    return response.get_data(as_text=True)


def cell(html: str, data_col: str) -> str:
    match = re.search(rf'data-col="{data_col}">([^<]*)<', html)
    assert match, data_col
    return match.group(1)


def kpi(html: str, key: str) -> str:
    match = re.search(rf'data-kpi="{key}">.*?<div class="tile-value[^"]*">([^<]*)<', html, re.S)
    assert match, key
    return match.group(1).strip()


def digits(value: str) -> int:
    return int(re.sub(r"\D", "", value))


@reads_campaign
def test_the_mailings_list_shows_the_apis_counts(browser: FlaskClient, api: FlaskClient, campaign: Report) -> None:
    html = text(browser.get("/mailings"))
    summary = api.get(f"/v1/mailings/{MAILING}/summary").json
    assert f'data-mailing="{MAILING}"' in html
    assert digits(cell(html, "audience")) == summary["audience"] == 60
    assert digits(cell(html, "sent")) == summary["sent"]
    assert cell(html, "delivery") == f"{summary['rates']['delivery'] * 100:.1f} %"
    assert cell(html, "bounce") == f"{summary['rates']['bounce'] * 100:.1f} %"


def test_the_mailings_list_filters_searches_and_pages(browser: FlaskClient, api: FlaskClient) -> None:
    for i in range(55):
        category = "trigger" if i % 5 == 0 else "bulk"
        assert (
            api.post(
                "/v1/mailings",
                json={"id": f"m-{i:02d}", "name": f"Campaign {i:02d} 100%_off", "category": category, "provider": "unione"},
            ).status_code
            == 201
        )
    first = text(browser.get("/mailings"))
    assert first.count("data-mailing=") == 50
    assert first.index('data-mailing="m-54"') < first.index('data-mailing="m-53"'), "newest first"
    next_link = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = text(browser.get(next_link))
    assert re.findall(r'data-mailing="([^"]+)"', second) == ["m-04", "m-03", "m-02", "m-01", "m-00"]
    trigger = text(browser.get("/mailings?category=trigger"))
    assert sorted(re.findall(r'data-mailing="([^"]+)"', trigger)) == [f"m-{i:02d}" for i in range(0, 55, 5)]
    assert re.findall(r'data-mailing="([^"]+)"', text(browser.get("/mailings?q=CAMPAIGN 07"))) == ["m-07"]
    assert re.findall(r'data-mailing="([^"]+)"', text(browser.get("/mailings?q=m-1"))) == [f"m-{i}" for i in range(19, 9, -1)]
    assert re.findall(r'data-mailing="', text(browser.get("/mailings?q=1_0"))) == [], "_ is searched as text, not as a wildcard"
    assert len(re.findall(r'data-mailing="', text(browser.get(f"/mailings?q={quote('0%_o')}&category=trigger")))) == 11
    assert browser.get("/mailings?category=weekly").status_code == 400
    assert browser.get("/mailings?cursor=not-ours").status_code == 400


@reads_campaign
def test_a_mailings_tiles_state_the_apis_numbers_and_denominators(
    browser: FlaskClient, api: FlaskClient, campaign: Report
) -> None:
    html = text(browser.get(f"/mailings/{MAILING}"))
    s = api.get(f"/v1/mailings/{MAILING}/summary").json
    assert digits(kpi(html, "audience")) == s["audience"]
    assert digits(kpi(html, "sent")) == s["sent"]
    assert digits(kpi(html, "delivered")) == s["delivered"]
    assert kpi(html, "opens") == f"{s['unique_opens']} / {s['total_opens']}"
    assert kpi(html, "clicks") == f"{s['unique_clicks']} / {s['total_clicks']}"
    assert f"{s['delivered']} / {s['sent']} of sent" in html
    assert f"{s['unique_opens']} / {s['delivered']} of delivered" in html
    assert f"{s['unique_clicks']} / {s['unique_opens']} of unique opens" in html


@reads_campaign
def test_the_audience_tab_pages_filters_and_links_to_histories(browser: FlaskClient, api: FlaskClient, campaign: Report) -> None:
    items = api.get(f"/v1/mailings/{MAILING}/audience?limit=1000").json["items"]
    html = text(browser.get(f"/mailings/{MAILING}"))
    shown = re.findall(r'<tr data-contact="([^"]+)">', html)
    assert shown == [i["contact_id"] for i in items[:50]]
    first = items[0]
    assert f'href="/mailings/{MAILING}/recipients/{first["contact_id"]}"' in html
    assert f'data-code="{first["response"]["code"]}">{first["response"]["name"]}<' in html
    nxt = re.search(r'rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert re.findall(r'<tr data-contact="([^"]+)">', text(browser.get(nxt))) == [i["contact_id"] for i in items[50:]]
    code = "opened"
    filtered = text(browser.get(f"/mailings/{MAILING}?response={code}"))
    assert re.findall(r'<tr data-contact="([^"]+)">', filtered) == [
        i["contact_id"] for i in items if i["response"]["code"] == code
    ]
    assert browser.get(f"/mailings/{MAILING}?response=bogus").status_code == 400
    assert browser.get(f"/mailings/{MAILING}?tab=bogus").status_code == 400


@reads_campaign
def test_the_results_tab_draws_the_error_diagram_and_the_funnel_with_tables(
    browser: FlaskClient, api: FlaskClient, campaign: Report
) -> None:
    s = api.get(f"/v1/mailings/{MAILING}/summary").json
    html = text(browser.get(f"/mailings/{MAILING}?tab=results"))
    errors = {**s["errors"]["not_sent"], **s["errors"]["not_delivered"]}
    assert errors, "the simulated campaign has delivery errors"
    for code, entry in errors.items():
        assert f'<tr data-code="{code}">' in html
        for reason, n in entry["reasons"].items():
            assert f'data-segment="{reason}" data-value="{n}"' in html
    funnel = [int(v) for v in re.findall(r'<rect class="bar" data-label="[^"]+" data-value="(\d+)" x="170"', html)]
    assert funnel == [s["audience"], s["sent"], s["delivered"], s["unique_opens"], s["unique_clicks"]]
    assert '<title id="funnel-chart-title">Delivery funnel</title>' in html and '<desc id="funnel-chart-desc">' in html
    assert 'id="funnel-table"' in html and 'id="errors-table"' in html


@reads_campaign
def test_the_opens_and_clicks_tab_buckets_per_hour_in_the_viewers_zone(
    browser: FlaskClient, api: FlaskClient, campaign: Report
) -> None:
    # Issue 18: buckets started at the send's minute ("10:57 / 22:57" ticks, no dates); now clock hours of
    # the viewer's zone, a half-hour zone included, summed from the same per-minute rows as the API.
    timeline = api.get(f"/v1/mailings/{MAILING}/timeline?hours=72").json
    html = text(browser.get(f"/mailings/{MAILING}?tab=engagement&hours=72&tz=Asia/Kolkata"))
    opens = [int(v) for v in re.findall(r'class="bar opens" data-hour="\d+" data-value="(\d+)"', html)]
    clicks = [int(v) for v in re.findall(r'class="bar clicks" data-hour="\d+" data-value="(\d+)"', html)]
    assert sum(opens) == sum(b["first_opens"] for b in timeline["buckets"]) > 0
    assert sum(clicks) == sum(b["first_clicks"] for b in timeline["buckets"]) > 0
    slots = [datetime.fromisoformat(at) for at in re.findall(r'<tr data-slot="\d+" data-at="([^"]+)">', html)]
    assert len(slots) == len(opens) in (72, 73), "every clock hour the 72 hours touch"
    assert all(s.minute == 0 and s.utcoffset() == timedelta(hours=5, minutes=30) for s in slots)
    assert all(b - a == timedelta(hours=1) for a, b in zip(slots, slots[1:], strict=False))
    start = datetime.fromisoformat(timeline["start"]) + timedelta(hours=5, minutes=30)
    assert slots[0].replace(tzinfo=None) == start.replace(tzinfo=None, minute=0, second=0, microsecond=0)
    ticks = re.findall(r'<text x="[\d.]+" y="\d+" text-anchor="middle">([^<]+)</text>', html)
    assert ticks and all(re.fullmatch(r"(\d{1,2} [A-Z][a-z]{2} )?\d\d:00", t) for t in ticks), ticks
    assert ticks[0][0].isdigit() and " " in ticks[0], "the first tick carries its date"
    assert "Times are shown in Asia/Kolkata." in html
    assert "Asia/Kolkata" in text(browser.get("/mailings")), "the zone is kept in the session"
    assert browser.get(f"/mailings/{MAILING}?tab=engagement&hours=0").status_code == 400


@reads_campaign
def test_the_opens_and_clicks_tab_shows_days_beyond_72_hours_and_a_day_by_default(
    browser: FlaskClient, api: FlaskClient, campaign: Report
) -> None:
    week = api.get(f"/v1/mailings/{MAILING}/timeline?hours=168").json
    html = text(browser.get(f"/mailings/{MAILING}?tab=engagement&hours=168&tz=Europe/Moscow&lang=ru"))
    days = [datetime.fromisoformat(at) for at in re.findall(r'<tr data-slot="\d+" data-at="([^"]+)">', html)]
    assert len(days) in (7, 8) and all(d.hour == 0 and d.minute == 0 for d in days), "local days, midnight to midnight"
    opens = [int(v) for v in re.findall(r'class="bar opens" data-hour="\d+" data-value="(\d+)"', html)]
    assert sum(opens) == sum(b["first_opens"] for b in week["buckets"])
    ticks = re.findall(r'<text x="[\d.]+" y="\d+" text-anchor="middle">([^<]+)</text>', html)
    assert ticks and all(re.fullmatch(r"\d{1,2} [а-я]{3}", t) for t in ticks), ticks
    assert "Первые открытия и переходы по дням" in html
    default = text(browser.get(f"/mailings/{MAILING}?tab=engagement&tz=UTC"))
    assert len(re.findall(r"<tr data-slot=", default)) in (24, 25), "24 hours by default"


@reads_campaign
def test_the_links_tab_is_the_click_map(browser: FlaskClient, api: FlaskClient, campaign: Report) -> None:
    links = api.get(f"/v1/mailings/{MAILING}/links").json["links"]
    html = text(browser.get(f"/mailings/{MAILING}?tab=links"))
    rows = re.findall(
        r'<tr data-url="([^"]+)"><td class="url">[^<]*</td><td class="num">(\d+)</td><td class="num">(\d+)</td>', html
    )
    assert [(u, int(c), int(n)) for u, c, n in rows] == [(link["url"], link["clicks"], link["unique_clicks"]) for link in links]
    assert links, "the simulated campaign has clicks"


@reads_campaign
def test_a_recipients_history_says_why_as_sentences(browser: FlaskClient, api: FlaskClient, campaign: Report) -> None:
    items = api.get(f"/v1/mailings/{MAILING}/audience?limit=1000").json["items"]
    busy = next(i for i in items if i["opens"] > 1)
    path = f"/mailings/{MAILING}/recipients/{busy['contact_id']}"
    history = api.get(f"/v1{path.replace('/mailings', '/mailings', 1)}/history").json
    html = text(browser.get(path))
    sentences = re.findall(r'<p class="why">([^<]*)</p>', html)
    assert sentences == [
        why_sentence(s["effect"], s["why"], s["response_after"]["code"], "en").replace("“", "“") for s in history["signals"]
    ]
    assert any("the response stayed" in s for s in sentences)
    assert "<details><summary>What the provider said</summary>" in html
    ru = text(browser.get(path + "?lang=ru"))
    assert why_sentence(history["signals"][0]["effect"], None, history["signals"][0]["response_after"]["code"], "ru") in ru


def test_history_as_of_and_under_another_rules_version(
    browser: FlaskClient, api: FlaskClient, app: ResponsesApp, campaign: Report
) -> None:
    items = api.get(f"/v1/mailings/{MAILING}/audience?limit=1000").json["items"]
    busy = next(i for i in items if i["opens"] > 1)
    path = f"/mailings/{MAILING}/recipients/{busy['contact_id']}"
    joined = api.get(f"/v1{path}/history").json["signals"][0]["received_at"]
    before = (datetime.fromisoformat(joined) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    html = text(browser.get(f"{path}?as_of={before}"))
    assert "No signals." in html and f'value="{before}"' in html
    version = app.define_rules({"count_machine_opens": True}).version
    html = text(browser.get(f"{path}?rules={version}"))
    assert f"Under rules version {version}." in html
    assert browser.get(f"{path}?rules=no-such").status_code == 404
    assert browser.get(f"{path}?as_of=yesterday").status_code == 400
    assert browser.get(f"/mailings/{MAILING}/recipients/nobody").status_code == 404


def test_a_name_or_payload_with_markup_stays_text(browser: FlaskClient, api: FlaskClient, client_raw: FlaskClient) -> None:
    assert (
        api.post("/v1/mailings", json={"id": "xss", "name": SCRIPT, "category": "bulk", "provider": "unione"}).status_code == 201
    )
    api.post("/v1/mailings/xss/audience", json={"recipients": [{"contact_id": "c-x", "name": SCRIPT, "email": "x@example.com"}]})
    body = sign_unione(('{"auth":"AUTH_PLACEHOLDER","events_by_user":[{"events":[' + SCRIPT).encode())
    assert client_raw.post("/v1/webhooks/unione", data=body, content_type="application/json").json["quarantined"] == 1
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for path in ("/mailings", "/mailings/xss", "/inbox?tab=quarantine", "/contacts/c-x"):
        html = text(browser.get(path))
        assert SCRIPT not in html, path
        assert escaped in html, path


@reads_campaign
def test_contacts_search_by_id_or_email_and_browse(browser: FlaskClient, api: FlaskClient, campaign: Report) -> None:
    item = api.get(f"/v1/mailings/{MAILING}/audience?limit=1").json["items"][0]
    r = browser.get(f"/contacts?q={item['contact_id']}")
    assert r.status_code == 302 and r.headers["Location"] == f"/contacts/{item['contact_id']}"
    html = text(browser.get(f"/contacts?q={quote(item['email'].upper())}"))
    assert re.findall(r'<tr data-contact="([^"]+)">', html) == [item["contact_id"]]
    assert "No contact matches." in text(browser.get("/contacts?q=nobody@example.com"))
    listing = text(browser.get("/contacts"))
    assert len(re.findall(r'<tr data-contact="', listing)) == 50
    nxt = re.search(r'rel="next" href="([^"]+)"', listing).group(1).replace("&amp;", "&")
    assert len(re.findall(r'<tr data-contact="', text(browser.get(nxt)))) == 10


@reads_campaign
def test_find_contacts_by_email_in_the_api(api: FlaskClient, campaign: Report) -> None:
    item = api.get(f"/v1/mailings/{MAILING}/audience?limit=1").json["items"][0]
    found = api.get(f"/v1/contacts?email={quote(' ' + item['email'].upper() + ' ')}")
    assert found.status_code == 200
    assert found.json == {"items": [api.get(f"/v1/contacts/{item['contact_id']}").json]}
    assert api.get("/v1/contacts?email=nobody@example.com").json == {"items": []}
    assert api.get("/v1/contacts").status_code == 422
    assert api.get(f"/v1/contacts?email={quote(item['email'])}&lang=ru").json["items"][0]["responses"][0]["response"]["name"] == {
        "delivered": "Доставлено",
        "opened": "Открыто",
        "clicked": "Переход по ссылке",
    }.get(
        item["response"]["code"], api.get(f"/v1/contacts/{item['contact_id']}?lang=ru").json["responses"][0]["response"]["name"]
    )


def test_a_contact_page_shows_flags_and_responses_across_mailings(browser: FlaskClient, api: FlaskClient) -> None:
    api.post(
        "/v1/mailings",
        json={"id": "bulk-1", "name": "Spring bulk", "category": "bulk", "provider": "unione", "email_type": "news"},
    )
    api.post("/v1/mailings", json={"id": "trig-1", "name": "Welcome trigger", "category": "trigger", "provider": "unione"})
    for m in ("bulk-1", "trig-1"):
        api.post(f"/v1/mailings/{m}/audience", json={"recipients": [{"contact_id": "c-7", "email": "seven@example.com"}]})
    api.post("/v1/mailings/bulk-1/dispatch")
    api.post("/v1/contacts/c-7/subscriptions", json={"email_type": "promo", "subscribed": False})
    html = text(browser.get("/contacts/c-7"))
    assert re.findall(r'<tr data-mailing="([^"]+)">', html) == ["bulk-1", "trig-1"]
    assert ">Spring bulk</a>" in html and ">Welcome trigger</a>" in html and ">trigger</td>" in html
    assert 'data-code="sent_to_provider">Sent to provider<' in html and 'data-code="planned">Planned<' in html
    assert re.search(r'data-kpi="unsubscribed_types">.*?promo', html, re.S)
    assert browser.get("/contacts/nobody").status_code == 404


def test_the_flag_form_journals_a_manual_change(browser: FlaskClient, api: FlaskClient) -> None:
    api.patch("/v1/contacts/c-9", json={"email": "nine@example.com"})
    r = post_form(browser, "/contacts/c-9", "/contacts/c-9/flags", {"do_not_use_email": "yes", "email_is_actual": ""})
    assert r.status_code == 302
    assert "Saved." in text(browser.get("/contacts/c-9"))
    assert api.get("/v1/contacts/c-9").json["flags"] == {
        "do_not_use_email": True,
        "email_is_actual": True,
        "unsubscribed_types": [],
    }
    r = post_form(browser, "/contacts/c-9", "/contacts/c-9/flags", {"email": "not an email"})
    assert r.status_code == 422 and "Not a valid email address." in r.get_data(as_text=True)
    r = post_form(browser, "/contacts/c-9", "/contacts/c-9/flags", {})
    assert r.status_code == 422 and "Change nothing" in r.get_data(as_text=True)
    r = post_form(browser, "/contacts/c-9", "/contacts/c-9/subscriptions", {"email_type": "news", "subscribed": "false"})
    assert r.status_code == 302
    assert api.get("/v1/contacts/c-9").json["flags"]["unsubscribed_types"] == ["news"]


def test_every_form_that_changes_something_needs_its_csrf_token(
    web: Flask, browser: FlaskClient, api: FlaskClient, app: ResponsesApp
) -> None:
    api.patch("/v1/contacts/c-1", json={"email": "one@example.com"})
    version = app.define_rules({"count_machine_opens": True}).version
    posts = sorted(r.rule for r in web.url_map.iter_rules() if r.endpoint.startswith("web.") and "POST" in (r.methods or ()))
    assert posts == [
        "/contacts/<contact_id>/erase",
        "/contacts/<contact_id>/flags",
        "/contacts/<contact_id>/subscriptions",
        "/login",
        "/logout",
        "/rules/<version>/activate",
        "/what-if",
        "/what-if/adopt",
    ]
    targets = [
        "/contacts/c-1/erase",
        "/contacts/c-1/flags",
        "/contacts/c-1/subscriptions",
        "/logout",
        f"/rules/{version}/activate",
        "/what-if",
        "/what-if/adopt",
    ]
    for path in targets:
        r = browser.post(path, data={"do_not_use_email": "yes", "email_type": "news", "subscribed": "false", "document": "{}"})
        assert r.status_code == 400, path
        assert "The form expired" in r.get_data(as_text=True)
    assert api.get("/v1/contacts/c-1").json["flags"] == {
        "do_not_use_email": False,
        "email_is_actual": True,
        "unsubscribed_types": [],
    }
    assert api.get("/v1/rules").json["active"] == "builtin-2" and app.pending_jobs()[0] == []
    assert browser.get("/mailings").status_code == 200, "still signed in"


@reads_campaign
def test_the_language_switch_covers_ui_strings_and_response_names(browser: FlaskClient, campaign: Report) -> None:
    ru = text(browser.get(f"/mailings/{MAILING}?lang=ru"))
    assert '<html lang="ru">' in ru and ">Аудитория<" in ru and "Доставлено" in ru and "Время указано в поясе UTC." in ru
    again = text(browser.get(f"/mailings/{MAILING}?tab=results"))
    assert "Диаграмма ошибок отправки" in again and "Воронка доставки" in again, "kept in the session"
    en = text(browser.get("/mailings?lang=en"))
    assert '<html lang="en">' in en and "Delivery rate" in en


def test_the_rules_page_lists_versions_and_draws_the_state_diagram(browser: FlaskClient, app: ResponsesApp) -> None:
    version = app.define_rules({"responses": {"soft_bounce": {"final": True}}}, created_by="token:abc").version
    html = text(browser.get("/rules"))
    assert f'<tr data-version="{version}"' in html and "token:abc" in html and "soft_bounce" in html
    assert re.search(r'id="active-version">builtin-2<', html)
    assert 'id="builtin-offer"' not in html  # a new database starts on the latest built-in rules
    diagram = text(browser.get(f"/rules?version={version}"))
    finals = set(re.findall(r'<g class="state final" data-code="([^"]+)"', diagram))
    non_finals = set(re.findall(r'<g class="state" data-code="([^"]+)"', diagram))
    rules = app.ruleset(version)
    assert finals == {c for c, r in rules.responses.items() if r.final} and "soft_bounce" in finals
    assert non_finals == {c for c, r in rules.responses.items() if not r.final}
    assert '<title id="state-diagram-title">State diagram of rules version' in diagram and 'class="timeout"' in diagram
    assert browser.get("/rules?version=nope").status_code == 404


def test_what_if_shows_the_apis_result_then_adopt_activates_it(
    browser: FlaskClient, api: FlaskClient, app: ResponsesApp, campaign: Report
) -> None:
    html = text(browser.get("/what-if"))
    form = {
        "csrf_token": csrf_of(html),
        "soft_bounce_final": "no",
        "statistics_period_days": "0",
        "unsubscribe_from_all": ["off", "on"],
        "confirmation_timeout_hours": "48",
        "unsubscribe_url_patterns": "/unsubscribe",
        "confirmation_timeout_response": "unknown_response",
        "sample": "5",
    }
    page = text(browser.post("/what-if", data=form))
    expected = api.post("/v1/what-if", json={"rules": {"statistics_period_days": 0}, "sample": 5}).json
    assert digits(kpi(page, "changed")) == expected["changed"] > 0
    assert re.findall(r'<tr data-from="([^"]+)" data-to="([^"]+)">', page) == [
        (t["from"], t["to"]) for t in expected["transitions"]
    ]
    assert f'data-mailing="{MAILING}"' in page and 'id="adopt-form"' in page
    document = re.search(r'name="document" value="([^"]+)"', page).group(1).replace("&#34;", '"')
    assert document == '{"statistics_period_days": 0}'
    r = browser.post("/what-if/adopt", data={"csrf_token": csrf_of(page), "document": document})
    assert r.status_code == 302 and r.headers["Location"].startswith("/jobs/")
    job_page = text(browser.get(r.headers["Location"]))
    assert '<meta http-equiv="refresh" content="2">' in job_page and 'data-status="running"' in job_page
    app.jobs.run()
    done = text(browser.get(r.headers["Location"]))
    assert 'data-status="done"' in done and "refresh" not in done
    rules = api.get("/v1/rules").json
    assert rules["active"] == rules["versions"][-1]["version"] != "1"
    assert rules["versions"][-1]["created_by"].startswith("token:")


def test_what_if_errors_are_shown_beside_their_fields(browser: FlaskClient) -> None:
    html = text(browser.get("/what-if"))
    r = browser.post(
        "/what-if",
        data={"csrf_token": csrf_of(html), "statistics_period_days": "seven", "soft_bounce_final": "no", "sample": "5"},
    )
    assert r.status_code == 422
    assert re.search(r'id="statistics_period_days"[^>]*aria-invalid="true"', r.get_data(as_text=True))
    assert 'id="statistics_period_days-error" role="alert">must be a whole number<' in r.get_data(as_text=True)
    r = browser.post(
        "/what-if", data={"csrf_token": csrf_of(html), "statistics_period_days": "-3", "soft_bounce_final": "no", "sample": "5"}
    )
    assert r.status_code == 422 and 'id="statistics_period_days-error"' in r.get_data(as_text=True)
    r = browser.post(
        "/what-if",
        data={"csrf_token": csrf_of(html), "document": '{"responses": {"nope": {"final": true}}}', "soft_bounce_final": "no"},
    )
    assert r.status_code == 422 and 'id="document-error"' in r.get_data(as_text=True)
    r = browser.post("/what-if", data={"csrf_token": csrf_of(html), "document": "{not json", "soft_bounce_final": "no"})
    assert r.status_code == 422 and "not valid JSON" in r.get_data(as_text=True)


@sqlite_only
def test_what_if_shows_a_jobs_progress_when_the_app_answers_with_one(
    browser: FlaskClient, app: ResponsesApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = app.request_activation("1")["id"]  # any journaled job: the page only follows it
    calls: list[dict[str, Any]] = []

    def start_what_if(rules: Any, mailings: Any = None, sample: int = 20, wait_seconds: float = 15.0) -> tuple[None, str]:
        calls.append({"rules": rules, "mailings": mailings, "sample": sample})
        return None, job

    monkeypatch.setattr(app, "start_what_if", start_what_if, raising=False)
    html = text(browser.get("/what-if"))
    r = browser.post("/what-if", data={"csrf_token": csrf_of(html), "soft_bounce_final": "yes", "sample": "3"})
    assert r.status_code == 302 and r.headers["Location"] == f"/jobs/{job}"
    assert calls == [{"rules": {"responses": {"soft_bounce": {"final": True}}}, "mailings": None, "sample": 3}]
    assert "progress" in text(browser.get(r.headers["Location"]))


def test_the_inbox_lists_unmatched_quarantine_and_notices(browser: FlaskClient, client_raw: FlaskClient) -> None:
    event = {
        "job_id": "j",
        "email": "who@example.com",
        "status": "delivered",
        "event_time": "2026-03-14 10:00:00",
        "metadata": {"mailing_id": "unknown-mailing", "contact_id": "c-404"},
    }
    import json

    body = sign_unione(
        json.dumps(
            {
                "auth": "AUTH_PLACEHOLDER",
                "events_by_user": [{"events": [{"event_name": "transactional_email_status", "event_data": event}]}],
            }
        ).encode()
    )
    assert client_raw.post("/v1/webhooks/unione", data=body, content_type="application/json").json["unmatched"] == 1
    html = text(browser.get("/inbox"))
    assert ">no_recipient<" in html and "unknown-mailing" in html and "who@example.com" in html
    assert "Nothing here." in text(browser.get("/inbox?tab=notices"))
    assert "Nothing here." in text(browser.get("/inbox?tab=quarantine"))
    assert browser.get("/inbox?tab=spam").status_code == 400


def test_unknown_things_are_html_pages_not_json(browser: FlaskClient) -> None:
    for path in ("/mailings/nope", "/contacts/nope", "/jobs/nope", "/rules?version=nope"):
        r = browser.get(path)
        assert r.status_code == 404 and r.mimetype == "text/html", path
        assert "Back to mailings" in r.get_data(as_text=True)


def test_the_preferences_page_sets_zone_and_language(browser: FlaskClient) -> None:
    html = text(browser.get("/preferences?next=/contacts"))
    assert '<option value="Europe/Moscow" >' in html or 'value="Europe/Moscow"' in html
    text(browser.get("/preferences?tz=Europe/Moscow&lang=ru&next=/contacts"))
    assert "Время указано в поясе Europe/Moscow." in text(browser.get("/contacts"))
    text(browser.get("/contacts?tz=Not/AZone"))
    assert "Europe/Moscow" in text(browser.get("/contacts")), "an unknown zone changes nothing"


def test_a_long_history_is_paged(browser: FlaskClient, app: ResponsesApp) -> None:

    from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key

    start = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
    app.create_mailing({"id": "long", "name": "Long", "category": "bulk", "provider": "unione"})
    app.add_audience("long", [{"contact_id": "c-long", "email": "long@example.com"}])
    app.dispatch("long", now=start)
    events = [
        ProviderEvent(
            Signal(
                key=dedup_key("unione", "long", i),
                source="unione",
                fields={"status": "opened"},
                received_at=start + timedelta(minutes=i + 1),
                occurred_at=start + timedelta(minutes=i + 1),
                raw={"status": "opened", "n": i},
            ),
            Correlation("long", "c-long"),
        )
        for i in range(120)
    ]
    app.record_batch(ParsedBatch(events=events))
    html = text(browser.get("/mailings/long/recipients/c-long"))
    assert html.count('<li class="step') == 100
    assert re.search(r'data-kpi="opens">.*?<div class="tile-value">120<', html, re.S), "the whole journal's counters"
    later = re.search(r'rel="next" href="([^"]+)">Later signals', html).group(1).replace("&amp;", "&")
    rest = text(browser.get(later))
    assert rest.count('<li class="step') == 21 and "Later signals" not in rest


def test_an_older_version_is_adopted_from_the_rules_page(browser: FlaskClient, api: FlaskClient, app: ResponsesApp) -> None:
    version = app.define_rules({"statistics_period_days": 7}).version
    r = post_form(browser, "/rules", f"/rules/{version}/activate", {})
    assert r.status_code == 302 and r.headers["Location"].startswith("/jobs/")
    app.jobs.run()
    assert f"Rules version {version} is active." in text(browser.get(r.headers["Location"]))
    assert api.get("/v1/rules").json["active"] == version
    assert re.search(rf'<tr data-version="{version}" class="active-row">', text(browser.get("/rules")))


def _campaign_with_rates(api: FlaskClient, mailing_id: str, category: str, delivered: int, opened: int) -> None:
    """A mailing of ten recipients, ``delivered`` delivered of which ``opened`` opened (canonical signals)."""
    assert api.post(
        "/v1/mailings", json={"id": mailing_id, "name": f"Name {mailing_id}", "category": category, "provider": "unione"}
    ).status_code in (200, 201)
    audience = [{"contact_id": f"{mailing_id}-c{i}", "email": f"{mailing_id}.{i}@example.com"} for i in range(10)]
    assert api.post(f"/v1/mailings/{mailing_id}/audience", json={"recipients": audience}).status_code == 200
    assert api.post(f"/v1/mailings/{mailing_id}/dispatch").status_code == 200
    now = datetime.now(UTC).isoformat()
    signals = [
        {
            "event_id": f"{mailing_id}-d{i}",
            "mailing_id": mailing_id,
            "contact_id": f"{mailing_id}-c{i}",
            "kind": "delivered",
            "occurred_at": now,
        }
        for i in range(delivered)
    ] + [
        {
            "event_id": f"{mailing_id}-o{i}",
            "mailing_id": mailing_id,
            "contact_id": f"{mailing_id}-c{i}",
            "kind": "opened",
            "occurred_at": now,
        }
        for i in range(opened)
    ]
    r = api.post("/v1/signals", json={"signals": signals})
    assert r.status_code == 200 and r.json["accepted"] == len(signals), r.json


def test_mailings_sort_by_a_rate_and_compare_side_by_side_with_the_apis_numbers(
    browser: FlaskClient, api: FlaskClient, app: ResponsesApp
) -> None:
    # issue 18 item 5: /mailings sorted only by creation; nothing compared two campaigns
    for mailing_id, delivered, opened in (("m-a", 10, 2), ("m-b", 10, 7), ("m-c", 8, 5), ("m-d", 10, 5)):
        _campaign_with_rates(api, mailing_id, "bulk", delivered, opened)
    app.wait_for_views()
    by_open = re.findall(r'data-mailing="([^"]+)"', text(browser.get("/mailings?sort=open&order=desc")))
    rates = {m: api.get(f"/v1/mailings/{m}/summary").json["rates"]["open"] for m in ("m-a", "m-b", "m-c", "m-d")}
    assert by_open == sorted(rates, key=lambda m: -rates[m]) == ["m-b", "m-c", "m-d", "m-a"]
    ascending = re.findall(r'data-mailing="([^"]+)"', text(browser.get("/mailings?sort=open&order=asc")))
    assert ascending == list(reversed(by_open))
    html = text(browser.get("/mailings?sort=audience"))
    assert "Page 1 of 1" in html and 'name="ids" value="m-a"' in html
    today = datetime.now(UTC).date()
    assert len(re.findall(r"data-mailing=", text(browser.get(f"/mailings?from={today}&to={today}&tz=UTC")))) == 4
    assert re.findall(r"data-mailing=", text(browser.get(f"/mailings?from={today + timedelta(days=2)}"))) == []
    assert browser.get("/mailings?sort=nope").status_code == 400 and browser.get("/mailings?from=3.12.2026").status_code == 400

    compared = text(browser.get("/mailings/compare?ids=m-a&ids=m-b&ids=m-c"))
    assert re.findall(r'<th scope="col" class="num" data-mailing="([^"]+)"', compared) == ["m-a", "m-b", "m-c"]
    row = re.search(r'<tr data-rate="open">(.*?)</tr>', compared, re.S).group(1)
    shown = [float(v) for v in re.findall(r'data-value="([0-9.]+)"', row)]
    assert shown == [rates["m-a"], rates["m-b"], rates["m-c"]]
    diffs = [float(v) for v in re.findall(r'data-diff="(-?[0-9.]+)"', row)]
    assert diffs == pytest.approx([rates["m-b"] - rates["m-a"], rates["m-c"] - rates["m-a"]])
    assert "+50.0\u00a0pp" in row, "0.2 → 0.7 is fifty percentage points"
    assert browser.get("/mailings/compare?ids=m-a").status_code == 400
    assert browser.get("/mailings/compare?ids=m-a&ids=ghost").status_code == 404


def test_a_rate_tile_shows_the_median_of_the_last_mailings_of_its_category(
    browser: FlaskClient, api: FlaskClient, app: ResponsesApp
) -> None:
    for mailing_id, opened in (("old-1", 1), ("old-2", 3), ("old-3", 6)):
        _campaign_with_rates(api, mailing_id, "bulk", 10, opened)
    _campaign_with_rates(api, "other", "trigger", 10, 9)
    _campaign_with_rates(api, "new", "bulk", 10, 5)
    app.wait_for_views()
    html = text(browser.get("/mailings/new"))
    median = re.search(r'data-kpi="open">.*?<div class="tile-median"[^>]*>([^<]*)<', html, re.S)
    assert median and median.group(1).strip() == "median of last 3: 30.0 %", "of 10 %, 30 %, 60 %; the trigger mailing left out"
    first = text(browser.get("/mailings/old-1"))
    assert 'class="tile-median"' not in first, "nothing before the first mailing of its category"


def test_an_existing_database_is_offered_builtin_2_previews_it_and_adopts_it(
    browser: FlaskClient, api: FlaskClient, app: ResponsesApp, client_raw: FlaskClient
) -> None:
    app.views.delete_meta("rules_version")  # as a database from before builtin-2: its views were folded under "1"
    contacts = {
        "c-1001": "anna@example.com",
        "c-1002": "boris@example.org",
        "c-1004": "vera@example.com",
        "c-1005": "gleb@example.com",
    }
    assert (
        api.post(
            "/v1/mailings",
            json={"id": "spring-sale", "name": "Spring", "category": "bulk", "email_type": "news", "provider": "unione"},
        ).status_code
        == 201
    )
    api.post(
        "/v1/mailings/spring-sale/audience", json={"recipients": [{"contact_id": c, "email": e} for c, e in contacts.items()]}
    )
    api.post("/v1/mailings/spring-sale/dispatch")
    body = sign_unione(fixture_bytes("unione/opened-traffic-types.json"))
    assert client_raw.post("/v1/webhooks/unione", data=body, content_type="application/json").json["accepted"] == 5

    html = text(browser.get("/rules"))
    assert re.search(r'id="active-version">1<', html)
    assert 'id="builtin-offer" data-offered="builtin-2"' in html and "Preview against your history" in html
    assert "Новые встроенные правила: builtin-2" in text(browser.get("/rules?lang=ru"))
    text(browser.get("/rules?lang=en"))
    r = post_form(browser, "/rules", "/what-if", {"version": "builtin-2"})
    assert r.status_code == 200
    page = text(r)
    expected = api.post("/v1/what-if", json={"rules": "builtin-2"}).json
    assert ("opened", "opened_machine") in {(t["from"], t["to"]) for t in expected["transitions"]}
    assert re.findall(r'<tr data-from="([^"]+)" data-to="([^"]+)">', page) == [
        (t["from"], t["to"]) for t in expected["transitions"]
    ]
    assert 'id="adopt-version-form"' in page and 'action="/rules/builtin-2/activate"' in page and 'id="adopt-form"' not in page
    assert api.get("/v1/rules").json["active"] == "1"  # nothing adopted yet

    r = browser.post("/rules/builtin-2/activate", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 302 and r.headers["Location"].startswith("/jobs/")
    app.jobs.run()
    assert "Rules version builtin-2 is active." in text(browser.get(r.headers["Location"]))
    assert api.get("/v1/rules").json == {**api.get("/v1/rules").json, "active": "builtin-2", "offered": None}
    assert 'id="builtin-offer"' not in text(browser.get("/rules"))
    history = text(browser.get("/mailings/spring-sale/recipients/c-1001"))
    assert "Open (machine)" in history
    assert browser.post("/what-if", data={"csrf_token": csrf_of(history), "version": "nope"}).status_code == 404


@sqlite_only
def test_a_version_preview_answered_by_a_job_offers_that_versions_adoption_on_the_job_page(
    browser: FlaskClient, app: ResponsesApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.views.delete_meta("rules_version")  # on "1": builtin-2 is offered
    job = app.rules.request_what_if("builtin-2")  # the job a slow answer leaves to follow, answered meanwhile
    app.jobs.run()
    assert app.job(job)["status"] == "done"
    calls: list[Any] = []

    def start_what_if(rules: Any, mailings: Any = None, sample: int = 20, wait_seconds: float = 15.0) -> tuple[None, str]:
        calls.append(rules)
        return None, job

    monkeypatch.setattr(app, "start_what_if", start_what_if, raising=False)
    r = post_form(browser, "/rules", "/what-if", {"version": "builtin-2"})
    assert r.status_code == 302 and r.headers["Location"] == f"/jobs/{job}" and calls == ["builtin-2"]
    assert 'action="/rules/builtin-2/activate"' in text(browser.get(r.headers["Location"]))


def test_the_history_page_shows_a_signals_contact_effect(browser: FlaskClient, app: ResponsesApp) -> None:
    from domain.signals import Correlation, ParsedBatch, ProviderEvent
    from interface.providers import sendgrid

    app.create_mailing({"id": "grid", "name": "Grid", "category": "bulk", "provider": "sendgrid", "email_type": "news"})
    app.add_audience("grid", [{"contact_id": "c-3001", "email": "unsubscribe@example.com"}])
    app.dispatch("grid")
    [dropped] = [
        e
        for e in sendgrid.parse(fixture_bytes("sendgrid/anymail-events.json"), datetime.now(UTC)).events
        if e.signal.fields.get("reason") == "Unsubscribed Address"
    ]
    app.record_batch(ParsedBatch(events=[ProviderEvent(dropped.signal, Correlation("grid", "c-3001"))]))
    html = text(browser.get("/mailings/grid/recipients/c-3001"))
    assert 'data-contact-effect="unsubscribe"' in html and "unsubscribes the contact" in html
    assert "отписывает контакт" in text(browser.get("/mailings/grid/recipients/c-3001?lang=ru"))
