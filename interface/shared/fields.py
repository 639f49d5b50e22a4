"""Request fields the API's schemas and the pages' forms read alike: text without NUL, a lenient UTC time,
and the length an id may have."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma

MAX_ID_LENGTH = 200  # mailing and contact ids: also indexed keys of the views

# "2026-03-14T10:00:00 03:00": a "+" sent unescaped in a query string arrives as a space.
SPACE_FOR_PLUS = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?) (\d{2}(?::?\d{2})?)$")
TIME_FORMAT = "ISO 8601, e.g. 2026-03-14T10:00:00+03:00 (in a URL write + as %2B); without an offset it is UTC"


def plus_restored(text: str) -> str:
    """``text`` with the offset's ``+`` back where a query string turned it into a space."""
    return SPACE_FOR_PLUS.sub(r"\1+\2", text)


class Text(ma.fields.String):
    """A request string: no NUL characters (PostgreSQL text cannot hold them; they would stall the views)."""

    default_error_messages = {"nul": "Must not contain NUL characters."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        return text


class UtcTime(ma.fields.Field):
    """A request time: ISO 8601 read leniently (a space where ``+`` was meant), naive means UTC,
    answered as an aware UTC datetime; a time that cannot be held in UTC is invalid, not a 500."""

    default_error_messages = {
        "invalid": f"Not a valid time: use {TIME_FORMAT}.",
        "range": "Out of range: the time cannot be expressed in UTC (years 1 to 9999).",
    }

    def __init__(self, **kwargs: Any):
        metadata = {"type": "string", "format": "date-time", "description": TIME_FORMAT, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str) or len(value) > 64:
            raise self.make_error("invalid")
        text = plus_restored(value.strip())
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise self.make_error("invalid") from None
        try:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise self.make_error("range") from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.isoformat()
