"""``/docs`` in a real browser with no network: Debian's Chromium (``make test`` installs it), driven by Playwright.

Every request that leaves the machine is aborted, so the page only renders if the
app serves Swagger UI itself (it used to load it from a CDN: a blank page offline).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.helpers.e2e import Http, Process, free_port, responses_command, service_env, start

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking"]


def launch(playwright: Any) -> Any:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing (make test installs Debian's chromium)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.mark.timeout(90)
def test_docs_render_offline_in_chromium(tmp_path: Path, processes: list[Process]) -> None:
    require_chromium()
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = start(
        processes,
        "serve",
        responses_command("serve", "--port", str(port)),
        service_env(f"sqlite:///{tmp_path / 'r.db'}"),
        tmp_path,
    )
    Http(port).wait_until_up(server)

    leaving: list[str] = []
    failed: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()

            def only_this_machine(route: object) -> None:
                url = route.request.url  # type: ignore[attr-defined]
                if urlsplit(url).hostname in LOCAL_HOSTS:
                    route.continue_()  # type: ignore[attr-defined]
                else:
                    leaving.append(url)
                    route.abort()  # type: ignore[attr-defined]

            page.route("**/*", only_this_machine)
            page.on(
                "response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 and "favicon" not in r.url else None
            )
            page.goto(f"http://127.0.0.1:{port}/docs", wait_until="load")
            page.wait_for_selector(".opblock", timeout=20_000)
            operations = page.locator(".opblock-summary-path").all_inner_texts()
            summaries = page.locator(".opblock-summary-description").all_inner_texts()
            title = page.locator(".info .title").inner_text()
        finally:
            browser.close()

    assert leaving == [], "the page tried to reach the network"
    assert failed == []
    assert "Recipient responses" in title
    paths = {p.replace("\u200b", "").strip() for p in operations}
    assert {"/v1/webhooks/unione", "/v1/mailings", "/v1/mailings/{mailing_id}/summary", "/readyz"} <= paths
    assert len(operations) >= 25
    assert len(summaries) == len(operations) and all(s.strip() for s in summaries), "every operation shows its summary"


def test_every_operation_has_a_summary() -> None:
    from application.config import Settings
    from interface.app import create_app

    app = create_app(settings=Settings(database_url="sqlite:///:memory:", api_tokens=("t",)))
    spec = app.test_client().get("/openapi.json").get_json()
    operations = [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert len(operations) >= 25
    assert [f"{m} {p}" for m, p, op in operations if not op.get("summary", "").strip()] == []
