"""Errors the use cases raise (the HTTP layer turns them into 404 and 409)."""

from __future__ import annotations


class NotFound(LookupError):
    def __init__(self, what: str, key: str):
        super().__init__(f"{what} {key!r} not found")
        self.what, self.key = what, key


class Conflict(ValueError):
    pass
