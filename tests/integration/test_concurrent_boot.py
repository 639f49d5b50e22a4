"""Several processes (gunicorn workers) starting on one new database at once all come up."""

from __future__ import annotations

import multiprocessing

from application.config import Settings
from application.service import ResponsesApp


def _boot(url: str) -> str:
    app = ResponsesApp(Settings(database_url=url))
    try:
        return app.active_version()
    finally:
        app.close()


def test_workers_booting_together_on_a_new_database(database_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        assert pool.map(_boot, [database_url] * 6) == ["builtin-2"] * 6  # a new database starts on the latest built-in rules
