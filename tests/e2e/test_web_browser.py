"""The marketer's pages in a real browser: Debian's Chromium driven by Playwright, no network.

On a simulated campaign (``responses simulate`` against a running ``responses serve``): sign in,
walk every page, check what a marketer sees against the API's answers (response names in both
languages, counts, the chart's bars, the click map, a history's whys), export the CSV and compare
it with the API's, run a what-if and adopt it, and keep a screenshot of each page in
``var/screenshots/``.
"""

from __future__ import annotations

import csv
import io
import subprocess
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from interface.simulate import sign_unione_body
from interface.web.i18n import why_sentence
from tests.e2e.test_docs_browser import LOCAL_HOSTS, launch, require_chromium
from tests.helpers.e2e import API_TOKEN, UNIONE_KEY, Http, Process, free_port, responses_command, service_env, start

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
MAILING = "sim-browser"
SCRIPT = "<script>window.__pwned = 1</script>"


def api_text(port: int, path: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()


def all_audience(http: Http, lang: str = "en") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = http.ok("GET", f"/v1/mailings/{MAILING}/audience?limit=1000&lang={lang}" + (f"&cursor={cursor}" if cursor else ""))
        items += page["items"]
        cursor = page["next"]
        if not cursor:
            return items


def int_text(text: str) -> int:
    return int("".join(ch for ch in text if ch.isdigit()))


@pytest.fixture
def served(tmp_path: Path, processes: list[Process]) -> dict[str, Any]:
    port = free_port()
    env = service_env(f"sqlite:///{tmp_path / 'r.db'}")  # no RESPONSES_SECRET_KEY: serve keeps one in ./var/
    server = start(processes, "serve", responses_command("serve", "--port", str(port)), env, tmp_path)
    http = Http(port)
    http.wait_until_up(server)
    simulated = subprocess.run(
        responses_command("simulate", "--recipients", "240", "--url", http.base, "--mailing", MAILING, "--seed", "11"),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert simulated.returncode == 0, simulated.stderr
    # hostile input kept aside: a quarantined body and an unmatched signal, both carrying markup
    body = sign_unione_body(('{"auth":"AUTH_PLACEHOLDER","events_by_user":[{"events":[' + SCRIPT).encode(), UNIONE_KEY)
    assert (
        http.call("POST", "/v1/webhooks/unione", data=body, headers={"Content-Type": "application/json"}, auth=False)[1][
            "quarantined"
        ]
        == 1
    )
    http.wait_caught_up()
    return {"port": port, "http": http, "tmp": tmp_path}


@pytest.mark.timeout(300)
def test_a_marketer_walks_every_page_in_chromium(served: dict[str, Any]) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    port, http = served["port"], served["http"]
    base = f"http://127.0.0.1:{port}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    summary = http.ok("GET", f"/v1/mailings/{MAILING}/summary")
    audience_en = all_audience(http, "en")
    audience_ru = {i["contact_id"]: i["response"]["name"] for i in all_audience(http, "ru")}
    leaving: list[str] = []
    failed: list[str] = []
    dialogs: list[str] = []

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(
                viewport={"width": 1360, "height": 900}, accept_downloads=True, timezone_id="Europe/Moscow", locale="en-US"
            )
            page = context.new_page()

            def only_this_machine(route: Any) -> None:
                if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
                    route.continue_()
                else:
                    leaving.append(route.request.url)
                    route.abort()

            page.route("**/*", only_this_machine)
            page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 500 else None)
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

            def shot(name: str) -> None:
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

            # ---- sign in: a page needs a session; the wrong token is refused
            page.goto(f"{base}/mailings/{MAILING}", wait_until="load")
            assert urlsplit(page.url).path == "/login"
            page.fill("#token", "not-the-token")
            page.click("button[type=submit]")
            assert page.locator(".error[role=alert]").is_visible()
            page.fill("#token", API_TOKEN)
            shot("01-login")
            page.click("form[action='/login'] button[type=submit]")
            assert urlsplit(page.url).path == f"/mailings/{MAILING}", "back to the page asked for"
            cookie = next(c for c in context.cookies() if c["name"] == "responses_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and API_TOKEN not in cookie["value"]

            # ---- the mailings list: the counts are the API's
            page.goto(f"{base}/mailings", wait_until="load")
            row = page.locator(f"tr[data-mailing='{MAILING}']")
            assert int_text(row.locator("td[data-col=audience]").inner_text()) == summary["audience"] == 240
            assert int_text(row.locator("td[data-col=sent]").inner_text()) == summary["sent"]
            shot("02-mailings")

            # ---- the mailing: KPI tiles and the audience in English, then Russian
            page.goto(f"{base}/mailings/{MAILING}", wait_until="load")
            for key in ("audience", "sent", "delivered"):
                assert int_text(page.locator(f"[data-kpi={key}] .tile-value").inner_text()) == summary[key]
            assert "of sent" in page.locator("[data-kpi=delivery] .tile-rate").inner_text()
            rows = page.locator("#audience-table tbody tr")
            assert rows.count() == 50
            first_page = {i["contact_id"]: i for i in audience_en[:50]}
            for i in range(rows.count()):
                cid = rows.nth(i).get_attribute("data-contact")
                shown = rows.nth(i).locator(".response").inner_text()
                assert shown == first_page[cid]["response"]["name"]
            shot("03-mailing-audience")
            page.goto(f"{base}/mailings/{MAILING}?lang=ru", wait_until="load")
            assert page.locator("html").get_attribute("lang") == "ru"
            for i in range(rows.count()):
                cid = rows.nth(i).get_attribute("data-contact")
                assert rows.nth(i).locator(".response").inner_text() == audience_ru[cid]
            assert page.locator("nav.tabs a").first.inner_text() == "Аудитория"
            shot("04-mailing-audience-ru")
            page.goto(f"{base}/mailings/{MAILING}?lang=en", wait_until="load")

            # filter by a response: every row has it, and the count is the API's
            code = max(summary["responses"], key=lambda c: summary["responses"][c])
            page.select_option("#response", code)
            page.click("form.filters button[type=submit]")
            shown_codes = set(page.locator("#audience-table .response").evaluate_all("els => els.map(e => e.dataset.code)"))
            assert shown_codes == {code}
            assert min(50, summary["responses"][code]) == page.locator("#audience-table tbody tr").count()

            # ---- the CSV export equals the API's, and the audience
            with page.expect_download() as download_info:
                page.click("a[download]")
            exported = Path(download_info.value.path()).read_bytes().decode("utf-8")
            assert exported == api_text(port, f"/v1/mailings/{MAILING}/audience.csv?response={code}")
            page.goto(f"{base}/mailings/{MAILING}", wait_until="load")
            with page.expect_download() as download_info:
                page.click("a[download]")
            rows_csv = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text(encoding="utf-8"))))
            assert [(r["contact_id"], r["response"], int(r["opens"]), int(r["clicks"])) for r in rows_csv] == [
                (i["contact_id"], i["response"]["code"], i["opens"], i["clicks"]) for i in audience_en
            ]

            # ---- results: one bar per error response, the funnel's bars are the summary's numbers
            page.goto(f"{base}/mailings/{MAILING}?tab=results", wait_until="load")
            errors = {**summary["errors"]["not_sent"], **summary["errors"]["not_delivered"]}
            labels = set(page.locator("#errors-chart rect.bar").evaluate_all("els => els.map(e => e.dataset.label)"))
            assert len(labels) == len(errors) > 0
            assert page.locator("#errors-table tbody tr").count() == len(errors)
            funnel = page.locator("#funnel-chart rect.bar").evaluate_all("els => els.map(e => Number(e.dataset.value))")
            assert funnel == [
                summary["audience"],
                summary["sent"],
                summary["delivered"],
                summary["unique_opens"],
                summary["unique_clicks"],
            ]
            assert page.locator("#funnel-chart > title").text_content() == "Delivery funnel"
            shot("05-mailing-results")

            # ---- opens and clicks per hour, in the viewer's zone (the browser's one preselected by script)
            page.goto(f"{base}/mailings/{MAILING}?tab=engagement", wait_until="load")
            assert page.locator("#chart-tz").input_value() == "Europe/Moscow"
            page.click("form.filters button[type=submit]")
            timeline = http.ok("GET", f"/v1/mailings/{MAILING}/timeline?hours=24")  # the page's default range
            opens = page.locator("#hourly-chart rect.bar.opens").evaluate_all("els => els.map(e => Number(e.dataset.value))")
            clicks = page.locator("#hourly-chart rect.bar.clicks").evaluate_all("els => els.map(e => Number(e.dataset.value))")
            assert sum(opens) == sum(b["first_opens"] for b in timeline["buckets"]) > 0
            assert sum(clicks) == sum(b["first_clicks"] for b in timeline["buckets"]) > 0
            assert len(opens) in (24, 25), "the clock hours of the default 24 hours"
            plot = page.locator("#hourly-chart").bounding_box()
            card = page.locator("figure.wide").first.bounding_box()
            assert plot and card and plot["width"] >= card["width"] - 40, "the chart fills its card"
            assert "Europe/Moscow" in page.locator("footer").inner_text()
            shot("06-mailing-engagement")

            # ---- the click map: a row per URL with the API's counts
            page.goto(f"{base}/mailings/{MAILING}?tab=links", wait_until="load")
            links = http.ok("GET", f"/v1/mailings/{MAILING}/links")["links"]
            table = page.locator("#links-table tbody tr")
            assert table.count() == len(links) > 0
            for i, link in enumerate(links):
                assert table.nth(i).get_attribute("data-url") == link["url"]
                cells = table.nth(i).locator("td")
                assert (
                    int_text(cells.nth(1).inner_text()) == link["clicks"]
                    and int_text(cells.nth(2).inner_text()) == link["unique_clicks"]
                )
            shot("07-mailing-links")

            # ---- a recipient's history: its whys, as sentences, in both languages
            clicked = next(i for i in audience_en if i["opens"] > 1)
            history = http.ok("GET", f"/v1/mailings/{MAILING}/recipients/{clicked['contact_id']}/history")
            page.goto(f"{base}/mailings/{MAILING}/recipients/{quote(clicked['contact_id'])}", wait_until="load")
            steps = page.locator("#history li.step")
            assert steps.count() == len(history["signals"])
            for i, step in enumerate(history["signals"]):
                expected = why_sentence(step["effect"], step["why"], step["response_after"]["code"], "en")
                assert steps.nth(i).locator(".why").inner_text() == expected
            assert any(s["why"] for s in history["signals"]), "a history with a why to read"
            assert page.locator("[data-kpi=response] .response").inner_text() == history["response"]["name"]
            raw = page.locator("#history details").last
            assert not raw.locator("pre").is_visible(), "the provider's payload is folded away"
            raw.locator("summary").click()
            assert '"status"' in raw.locator("pre").inner_text()
            shot("08-recipient-history")
            page.goto(page.url + "?lang=ru", wait_until="load")
            step = history["signals"][-1]
            assert steps.last.locator(".why").inner_text() == why_sentence(
                step["effect"], step["why"], step["response_after"]["code"], "ru"
            )
            page.goto(page.url.replace("?lang=ru", "?lang=en"), wait_until="load")

            # ---- contacts: found by email, flags changed by the form (journaled, as PATCH would)
            page.goto(f"{base}/contacts", wait_until="load")
            shot("09-contacts")
            page.fill("#q", clicked["email"].upper())
            page.click("form[role=search] button[type=submit]")
            assert (
                page.locator("#contacts-table tbody tr").count()
                == len(http.ok("GET", f"/v1/contacts?email={quote(clicked['email'])}")["items"])
                == 1
            )
            page.click("#contacts-table a")
            assert page.locator("#contact-responses tbody tr").count() == 1
            page.select_option("#do_not_use_email", "yes")
            page.click("#flags-form button[type=submit]")
            assert page.locator(".flash").inner_text() == "Saved."
            assert http.ok("GET", f"/v1/contacts/{quote(clicked['contact_id'])}")["flags"]["do_not_use_email"] is True
            shot("10-contact")
            # the Erase button is red, white on it, never Save's look; what it describes it by names the consequence
            erase = page.locator("#erase-form button[type=submit]")
            look = "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]"
            assert erase.evaluate(look) == ["rgb(179, 38, 30)", "rgb(255, 255, 255)"]
            assert page.locator("#flags-form button[type=submit]").evaluate(look) != erase.evaluate(look)
            assert "for good" in page.locator(f"#{erase.get_attribute('aria-describedby')}").inner_text()
            page.locator("#privacy").screenshot(path=str(SCREENSHOTS / "10b-contact-erase.png"))

            # ---- rules: the state diagram drawn from the active ruleset
            page.goto(f"{base}/rules", wait_until="load")
            active = http.ok("GET", "/v1/rules")["active"]
            document = http.ok("GET", f"/v1/rules/{active}")
            finals = {c for c, r in document["responses"].items() if r["final"]}
            assert page.locator("#state-diagram g.state").count() == len(document["responses"])
            assert set(page.locator("#state-diagram g.state.final").evaluate_all("els => els.map(e => e.dataset.code)")) == finals
            shot("11-rules")

            # ---- what-if: soft bounces final; the result is the API's; then adopt and watch the job
            page.goto(f"{base}/what-if", wait_until="load")
            page.fill("#statistics_period_days", "seven")
            page.click("#what-if-form button[type=submit]")
            assert page.locator("#statistics_period_days-error").is_visible(), "an error beside its field"
            page.fill("#statistics_period_days", "30")
            page.select_option("#soft_bounce_final", "yes")
            page.click("#what-if-form button[type=submit]")
            if urlsplit(page.url).path.startswith("/jobs/"):  # not answered within WHAT_IF_WAIT_SECONDS: the page follows the job
                page.wait_for_selector("#job[data-status=done]", timeout=60_000)
            expected = http.ok("POST", "/v1/what-if", {"rules": {"responses": {"soft_bounce": {"final": True}}}, "sample": 20})
            assert int_text(page.locator("[data-kpi=changed] .tile-value").inner_text()) == expected["changed"]
            shown_transitions = page.locator("#transitions-table tbody tr").evaluate_all(
                "els => els.map(e => [e.dataset.from, e.dataset.to])"
            )
            assert shown_transitions == [[t["from"], t["to"]] for t in expected["transitions"]]
            shot("12-what-if")
            versions_before = len(http.ok("GET", "/v1/rules")["versions"])
            page.click("#adopt-form button[type=submit]")
            assert urlsplit(page.url).path.startswith("/jobs/")
            page.wait_for_selector("#job[data-status=done]", timeout=60_000)  # the page refreshes itself
            shot("13-job-done")
            rules_now = http.ok("GET", "/v1/rules")
            assert len(rules_now["versions"]) == versions_before + 1
            assert rules_now["active"] == rules_now["versions"][-1]["version"]
            assert http.ok("GET", f"/v1/rules/{rules_now['active']}")["responses"]["soft_bounce"] == {"final": True}

            # ---- the inbox: quarantined markup stays text
            page.goto(f"{base}/inbox?tab=quarantine", wait_until="load")
            page.locator("#inbox-table details summary").first.click()
            assert SCRIPT in page.locator("#inbox-table pre.raw").first.inner_text()
            assert page.evaluate("() => window.__pwned") is None
            shot("14-inbox-quarantine")
            page.goto(f"{base}/inbox", wait_until="load")
            shot("15-inbox-unmatched")

            # ---- signing out ends the session
            page.click("form.logout button[type=submit]")
            assert urlsplit(page.url).path == "/login"
            page.goto(f"{base}/contacts", wait_until="load")
            assert urlsplit(page.url).path == "/login"
        finally:
            browser.close()

    assert leaving == [], "a page tried to reach the network"
    assert failed == []
    assert dialogs == []
    assert (served["tmp"] / "var" / "secret-key").read_text().strip(), "serve kept a session key under ./var/"
