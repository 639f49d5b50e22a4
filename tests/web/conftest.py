"""Fixtures for the pages: the Flask app over the ``app`` fixture (SQLite and PostgreSQL), a signed-in
browser-like client, and a simulated campaign (``tests/campaign.py``).

A test marked ``reads_campaign`` (``tests.helpers.web.reads_campaign``) only reads the campaign: it gets its
store's campaign, simulated once for the package (the simulation is most of a page test's time; under
pytest-xdist once in each worker that runs such a test), and fails if it journals anything
(any write would change what the next test reads). Every other test gets a fresh store and, when it
asks for one, its own campaign."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from application.service import ResponsesApp
from interface.app import create_app
from interface.simulate import Report
from tests.campaign import simulate_campaign
from tests.helpers.http import TOKEN, UNIONE_KEY, http_settings
from tests.helpers.stores import FreshDatabases, app_over
from tests.helpers.web import MAILING, SECRET, sign_in

READS_CAMPAIGN = "reads_campaign"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{READS_CAMPAIGN}: the test only reads the simulated campaign: one is shared per store (tests/web)"
    )


def _reads_campaign(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker(READS_CAMPAIGN) is not None


def make_campaign(app: ResponsesApp, web: Flask) -> Report:
    """A simulated campaign of 60 recipients through the UniOne webhook (repeatable: seeded)."""
    client = web.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return simulate_campaign(app, client, TOKEN, UNIONE_KEY, recipients=60, mailing_id=MAILING, seed=1)


@dataclass
class Shared:
    app: ResponsesApp
    web: Flask
    report: Report


class SharedCampaigns:
    """The campaign of each store, simulated when a test first reads it, closed (and dropped) with the package."""

    def __init__(self, stack: ExitStack, tmp: pytest.TempPathFactory, databases: FreshDatabases):
        self.stack, self.tmp, self.databases = stack, tmp, databases
        self.made: dict[str, Shared] = {}

    def of(self, store: str) -> Shared:
        if store not in self.made:
            if store == "postgres":
                url = self.databases.take()
                self.stack.callback(self.databases.give_back, url)
            else:
                url = f"sqlite:///{self.tmp.mktemp('campaign') / 'responses.db'}"
            app = self.stack.enter_context(app_over(url))
            web = create_app(app, http_settings(url, secret_key=SECRET))
            self.made[store] = Shared(app, web, make_campaign(app, web))
        return self.made[store]


@pytest.fixture(scope="package")
def shared_campaigns(tmp_path_factory: pytest.TempPathFactory, fresh_databases: FreshDatabases) -> Iterator[SharedCampaigns]:
    with ExitStack() as stack:
        yield SharedCampaigns(stack, tmp_path_factory, fresh_databases)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Both stores (as everywhere): a fresh database, or the shared campaign's for a ``reads_campaign`` test."""
    if _reads_campaign(request):
        return request.getfixturevalue("shared_campaigns").of(request.param).app.settings.database_url
    return request.getfixturevalue(f"{request.param}_url")


def _shared(request: pytest.FixtureRequest, database_url: str) -> Shared:
    return request.getfixturevalue("shared_campaigns").of("postgres" if database_url.startswith("postgresql") else "sqlite")


@pytest.fixture
def app(request: pytest.FixtureRequest, database_url: str) -> Iterator[ResponsesApp]:
    if not _reads_campaign(request):
        with app_over(database_url) as application:
            yield application
        return
    shared = _shared(request, database_url).app
    before = shared.journal_position()
    yield shared
    assert shared.journal_position() == before, "a test marked reads_campaign journaled something: give it its own campaign"


@pytest.fixture
def web(request: pytest.FixtureRequest, app: ResponsesApp) -> Flask:
    if _reads_campaign(request):
        return _shared(request, app.settings.database_url).web
    return create_app(app, http_settings(app.settings.database_url, secret_key=SECRET))


@pytest.fixture
def api(web: Flask) -> FlaskClient:
    client = web.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


@pytest.fixture
def client_raw(web: Flask) -> FlaskClient:
    """No credentials at all: a provider calling its webhook."""
    return web.test_client()


@pytest.fixture
def anonymous(web: Flask) -> FlaskClient:
    return web.test_client()


@pytest.fixture
def browser(web: Flask) -> FlaskClient:
    """A signed-in session (cookies kept, no bearer header: only the session lets it in)."""
    client = web.test_client()
    assert sign_in(client).status_code == 302
    return client


@pytest.fixture
def campaign(request: pytest.FixtureRequest, app: ResponsesApp, web: Flask) -> Report:
    """A simulated campaign of 60 recipients through the UniOne webhook (repeatable: seeded): the test's own,
    or the shared one of its store for a ``reads_campaign`` test."""
    if _reads_campaign(request):
        return _shared(request, app.settings.database_url).report
    return make_campaign(app, web)
