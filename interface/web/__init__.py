"""The marketer's pages: server-rendered HTML over the same application queries and use cases as the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from application.config import Settings


def register_web(app: "Flask", settings: "Settings") -> None:
    """Register the pages' blueprint on ``app`` (imported here: the pages build on ``interface.http``)."""
    from interface.web.blueprint import register_web as register

    register(app, settings)
