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
from tests.helpers.http import sign_unione
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
    timeline = api.get(f"/v1/mailings/{MAILING}/timeline?hours=72").json
    html = text(browser.get(f"/mailings/{MAILING}?tab=engagement&hours=72&tz=Asia/Kolkata"))
    opens = [int(v) for v in re.findall(r'class="bar opens" data-hour="\d+" data-value="(\d+)"', html)]
    clicks = [int(v) for v in re.findall(r'class="bar clicks" data-hour="\d+" data-value="(\d+)"', html)]
    assert opens == [b["first_opens"] for b in timeline["buckets"]] and len(opens) == 72 and sum(opens) > 0
    assert clicks == [b["first_clicks"] for b in timeline["buckets"]] and sum(clicks) > 0
    start = datetime.fromisoformat(timeline["start"]) + timedelta(hours=5, minutes=30)
    assert f'<tr data-hour="0"><td class="num">0</td><td>{start:%Y-%m-%d %H:%M}</td>' in html
    assert "Times are shown in Asia/Kolkata." in html
    assert "Asia/Kolkata" in text(browser.get("/mailings")), "the zone is kept in the session"
    assert browser.get(f"/mailings/{MAILING}?tab=engagement&hours=0").status_code == 400


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
    assert api.get("/v1/rules").json["active"] == "1" and app.pending_jobs()[0] == []
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
    assert re.search(r'id="active-version">1<', html)
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
