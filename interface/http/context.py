"""What views reach: the application service, its queries and the settings of this app."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app

from application.config import Settings
from application.queries import Queries
from application.service import ResponsesApp

log = logging.getLogger("responses.http")

EXTENSION = "responses"
READ_WAIT_SECONDS = 2.0
WRITE_WAIT_SECONDS = 10.0  # well inside gunicorn's 30 s worker timeout: a 503, not a killed worker


@dataclass(frozen=True)
class Services:
    app: ResponsesApp
    queries: Queries
    settings: Settings


def services() -> Services:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def service() -> ResponsesApp:
    return services().app


def queries() -> Queries:
    return services().queries


def settings() -> Settings:
    return services().settings


def fresh_views() -> Queries:
    """Queries after the views caught up with the journal (read-your-writes), within a short wait.

    A write whose answer shows views waits for them (``ResponsesApp.wait_for_views``,
    503 when they never catch up). A plain read waits briefly, then answers from what
    the views hold: a lagging projection is visible in ``/readyz``, not as failed reads.
    """
    app = service()
    try:
        app.wait_for_views(timeout=READ_WAIT_SECONDS)
    except TimeoutError:
        log.warning("answering from views %d events behind the journal", app.journal_position() - app.views_position())
    return queries()


def caught_up_views() -> Queries:
    """Queries once the views include every write so far (503 if the projection does not catch up)."""
    service().wait_for_views(timeout=WRITE_WAIT_SECONDS)
    return queries()
