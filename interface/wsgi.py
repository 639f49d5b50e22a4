"""WSGI entry point for production: ``gunicorn 'interface.wsgi:app'`` beside ``responses project``.

Starts no projection follower (``responses project`` runs it). Configuration
comes from the environment (SPEC §9); without ``RESPONSES_API_TOKENS`` the token
``responses serve`` keeps under ``./var/`` is used, if there is one.
"""

from __future__ import annotations

import logging

from application.config import Settings
from interface.http import create_app
from interface.http.auth import settings_with_token

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

app = create_app(settings=settings_with_token(Settings.from_env(), create=False)[0])
