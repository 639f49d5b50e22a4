"""WSGI entry point for production: ``gunicorn -c gunicorn.conf.py 'interface.wsgi:app'`` beside ``responses project``.

Starts no projection follower (``responses project`` runs it, and the sweep).
Configuration comes from the environment (CONTRACT §9); without ``RESPONSES_API_TOKENS``
the token ``responses serve`` keeps under ``./var/`` is used, if there is one. A
database that cannot be reached is one line in the log and the worker exits with
gunicorn's "worker failed to boot" code, so the master stops instead of
restarting workers in a loop.
"""

from __future__ import annotations

import logging
import sys

from application.config import ConfigError, Settings
from interface.app import create_app
from interface.runner import DATABASE_ERRORS, database_error_message
from interface.shared.token_file import settings_with_token

WORKER_BOOT_ERROR = 3  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR: the master halts

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("responses.wsgi")


def load() -> object:
    try:
        settings = settings_with_token(Settings.from_env(), create=False)[0]
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        sys.exit(WORKER_BOOT_ERROR)
    try:
        return create_app(settings=settings)
    except DATABASE_ERRORS as exc:
        log.error("%s", database_error_message(settings, exc))
        sys.exit(WORKER_BOOT_ERROR)


app = load()
