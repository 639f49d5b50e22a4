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

    After the short wait, the answer is from what the views hold: a lagging projection is
    visible in ``/readyz``, not as failed reads.
    """
    app = service()
    try:
        app.wait_for_views(timeout=READ_WAIT_SECONDS)
    except TimeoutError:
        log.warning("answering from views %d events behind the journal", app.journal_position() - app.views_position())
    return queries()


def caught_up_views() -> Queries:
    """Queries to show a write just journaled: read-your-writes within the same short wait as reads.

    The write is durable already, so its answer never waits for a stalled projection nor says
    503: it shows the views as they are (a mailing or contact they lack yet comes from the journal).
    """
    return fresh_views()
