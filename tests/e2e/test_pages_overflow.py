"""Russian as good as English (issue 18): Chromium walks every page in both languages and fails when
a text overflows or is clipped by its box: an HTML element whose content is wider than it (outside a
scrolling table), an SVG label outside its chart or its state box, or a page wider than the window.
Screenshots of every page in both languages go to ``var/screenshots/walk-*.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.e2e.test_docs_browser import launch, require_chromium
from tests.e2e.test_web_browser import MAILING, SCREENSHOTS, served  # noqa: F401  (the fixture)
from tests.helpers.e2e import API_TOKEN

OVERFLOWS = """() => {
  const found = [];
  const where = (el) => (el.id ? '#' + el.id : el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : ''));
  const scrolls = (el) => { for (let p = el; p; p = p.parentElement) { const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; } return false; };
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') || el.closest('pre') || el.closest('details:not([open])')) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'inline' || cs.display === 'none' || cs.display === 'contents' || cs.visibility === 'hidden') continue;
    if (['SELECT', 'OPTION', 'INPUT', 'TEXTAREA', 'TABLE', 'TBODY', 'THEAD', 'TR', 'SCRIPT', 'STYLE'].includes(el.tagName)) continue;
    if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0 && !scrolls(el.parentElement || el)) {
      found.push(where(el) + ' is ' + el.scrollWidth + 'px of content in ' + el.clientWidth + 'px: ' + el.innerText.slice(0, 60));
    }
  }
  for (const t of document.querySelectorAll('svg.chart text')) {
    const svg = t.ownerSVGElement, b = t.getBBox(), vb = svg.viewBox.baseVal;
    if (b.width === 0) continue;
    if (b.x < vb.x - 1 || b.x + b.width > vb.x + vb.width + 1) found.push('#' + svg.id + ' label outside the chart: ' + t.textContent);
    const box = t.closest('g.state');
    if (box) {
      const r = box.querySelector('rect').getBBox();
      if (b.x < r.x - 0.5 || b.x + b.width > r.x + r.width + 0.5) found.push('#' + svg.id + ' label outside its box: ' + t.textContent);
    }
  }
  const overlap = (a, b) => Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x) > 2 && Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y) > 2;
  for (const svg of document.querySelectorAll('svg.chart')) {
    const loose = [...svg.querySelectorAll('text')].filter((t) => !t.closest('g.state') && t.getBBox().width > 0);
    const boxes = [...svg.querySelectorAll('g.state > rect:first-of-type')].map((r) => r.getBBox());
    for (const t of loose) {
      const b = t.getBBox();
      if (boxes.some((r) => overlap(b, r))) found.push('#' + svg.id + ' label runs into a box: ' + t.textContent);
      for (const u of loose) if (u !== t && t.compareDocumentPosition(u) & Node.DOCUMENT_POSITION_FOLLOWING && overlap(b, u.getBBox())) found.push('#' + svg.id + ' labels overlap: ' + t.textContent + ' / ' + u.textContent);
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) found.push('the page is ' + document.documentElement.scrollWidth + 'px wide in a ' + window.innerWidth + 'px window');
  return found;
}"""


@pytest.mark.timeout(300)
def test_no_text_overflows_on_any_page_in_either_language(served: dict[str, Any]) -> None:  # noqa: F811
    require_chromium()
    from playwright.sync_api import sync_playwright

    port, http = served["port"], served["http"]
    base = f"http://127.0.0.1:{port}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    audience = http.ok("GET", f"/v1/mailings/{MAILING}/audience?limit=1000")["items"]
    someone = next(i for i in audience if i["email"])
    pages = {
        "mailings": "/mailings",
        "mailings-sorted": "/mailings?sort=open&order=asc",
        "audience": f"/mailings/{MAILING}?tab=audience",
        "results": f"/mailings/{MAILING}?tab=results",
        "engagement": f"/mailings/{MAILING}?tab=engagement",
        "engagement-720h": f"/mailings/{MAILING}?tab=engagement&hours=720",
        "links": f"/mailings/{MAILING}?tab=links",
        "history": f"/mailings/{MAILING}/recipients/{quote(someone['contact_id'], safe='')}",
        "contacts": "/contacts",
        "contact": f"/contacts/{quote(someone['contact_id'], safe='')}",
        "rules": "/rules",
        "what-if": "/what-if",
        "inbox": "/inbox",
        "not-found": "/mailings/nope",
    }
    problems: dict[str, list[str]] = {}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(viewport={"width": 1360, "height": 900}, timezone_id="Europe/Moscow")
            page = context.new_page()
            page.goto(f"{base}/login", wait_until="load")
            for lang in ("en", "ru"):
                page.goto(f"{base}/login?lang={lang}", wait_until="load")
                problems[f"login {lang}"] = page.evaluate(OVERFLOWS)
            page.fill("#token", API_TOKEN)
            page.click("form[action='/login'] button[type=submit]")
            for lang in ("en", "ru"):
                for name, path in pages.items():
                    page.goto(f"{base}{path}{'&' if '?' in path else '?'}lang={lang}", wait_until="load")
                    assert urlsplit(page.url).path != "/login", name
                    page.screenshot(path=str(SCREENSHOTS / f"walk-{lang}-{name}.png"), full_page=True)
                    problems[f"{name} {lang}"] = page.evaluate(OVERFLOWS)
        finally:
            browser.close()
    found = {where: p for where, p in problems.items() if p}
    assert not found, "\n".join(f"{where}: {p}" for where, ps in found.items() for p in ps)
    assert Path(SCREENSHOTS / "walk-ru-rules.png").exists()
