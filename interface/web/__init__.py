"""The marketer's pages: server-rendered HTML over the same application queries and use cases as the API."""

from interface.web.blueprint import register_web

__all__ = ["register_web"]
