"""The HTTP API (CONTRACT §7): its blueprints under ``/v1`` (``interface.http.api.register_api``).

The service is built by the interface's root, ``interface.app.create_app``. ``create_app`` here is a thin
alias kept for callers of the old name until they import the root; it is the one import from the API to
the root, and [tool.importlinter] ignores it by name (remove both together).
"""

from __future__ import annotations

from flask import Flask

import interface.app as root
from application.config import Settings
from application.service import ResponsesApp


def create_app(app: ResponsesApp | None = None, settings: Settings | None = None) -> Flask:
    """``interface.app.create_app`` (the old name of the service's factory)."""
    return root.create_app(app, settings)
