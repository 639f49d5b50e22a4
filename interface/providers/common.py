"""Shared parsing helpers for provider adapters (pure: no database, no Flask).

Adapters turn a provider payload into a ``ParsedBatch``. A body that is not of
a recognised form raises ``ValueError`` (the caller quarantines it whole, or
answers 400 on ``/v1/signals``); a single malformed event inside a good body
raises ``Malformed`` while being built and is quarantined by ``collect`` with
its raw text, so the other events of the batch are still parsed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import orjson

from domain.signals import Correlation, Notice, ParsedBatch, ProviderEvent, Quarantined, normalise_email, utc

GZIP_MAGIC = b"\x1f\x8b"
_COMPRESSED = {"gzip", "x-gzip", "deflate"}
_IDENTITY = {"", "identity"}
_FALSE_WORDS = {"", "0", "false", "no", "off", "none", "null"}
# Elastic Email writes US-style times; fromisoformat covers the rest.
_US_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
)


class BodyTooLarge(Exception):
    """The body, raw or decompressed, exceeds the configured limit (HTTP 413)."""


class Malformed(ValueError):
    """One event of a batch cannot be understood; it is quarantined alone."""


# --- bodies -----------------------------------------------------------------


def read_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Return the request body, gunzipped when needed, never over ``max_bytes``.

    Decompresses when ``Content-Encoding`` is gzip/x-gzip/deflate or the body
    starts with the gzip magic bytes. Decompression is incremental and bounded,
    so a gzip bomb never allocates more than ``max_bytes + 1`` bytes of output.
    Raises ``BodyTooLarge`` over the limit and ``ValueError`` for a corrupt or
    truncated stream or an unsupported encoding (e.g. ``br``).
    """
    if len(body) > max_bytes:
        raise BodyTooLarge(f"body of {len(body)} bytes exceeds {max_bytes}")
    encoding = (content_encoding or "").strip().lower()
    if encoding not in _COMPRESSED | _IDENTITY:
        raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")
    if encoding in _COMPRESSED or body.startswith(GZIP_MAGIC):
        return _inflate(body, max_bytes)
    return body


def _inflate(data: bytes, max_bytes: int) -> bytes:
    """Inflate gzip or zlib data (concatenated gzip members too), bounded."""
    out = bytearray()
    try:
        while True:
            inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header
            pending = data
            while pending:
                # max_length >= 1 here: 0 would mean "unlimited".
                out += inflater.decompress(pending, max_bytes + 1 - len(out))
                if len(out) > max_bytes:
                    raise BodyTooLarge(f"decompressed body exceeds {max_bytes} bytes")
                pending = inflater.unconsumed_tail
                if inflater.eof:
                    break
            if not inflater.eof:
                raise ValueError("truncated compressed body")
            data = inflater.unused_data
            if not data.strip(b"\x00"):  # allow zero padding after the last member
                return bytes(out)
    except zlib.error as exc:
        raise ValueError(f"corrupt compressed body: {exc}") from None


# --- values -----------------------------------------------------------------


def parse_utc(text: str) -> datetime:
    """Parse a provider time leniently into an aware UTC datetime.

    ISO 8601 (``T`` or space, ``Z`` or an offset; naive means UTC, which also
    covers UniOne's ``YYYY-MM-DD hh:mm:ss``) or Elastic Email's
    ``M/d/yyyy h:mm:ss AM/PM`` (also without seconds, or 24-hour).
    Raises ``ValueError`` on anything else.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"not a time: {text!r}")
    value = text.strip()
    try:
        return utc(datetime.fromisoformat(value))
    except ValueError:
        pass
    for fmt in _US_FORMATS:
        try:
            return utc(datetime.strptime(value, fmt))
        except ValueError:
            continue
    raise ValueError(f"not a time: {text!r}")


def opt_str(value: Any) -> str | None:
    """``None`` stays ``None``; anything else becomes its text."""
    return None if value is None else str(value)


def opt_id(value: Any) -> str | None:
    """An identifier as text; missing or blank means none."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def truthy(value: Any) -> bool:
    """A flag that may arrive as a bool, a number or text ("true", "1", "false", "0")."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_WORDS
    return bool(value)


def correlation(fields: Mapping[str, Any], email: str | None) -> Correlation:
    """How a provider event names its recipient: ids and the test flag as attached at send time."""
    return Correlation(
        mailing_id=opt_id(fields.get("mailing_id")),
        contact_id=opt_id(fields.get("contact_id")),
        email=normalise_email(email),
        test=truthy(fields.get("test")),
    )


def require_str(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"missing or empty {name!r}")
    return value


def require_time(obj: Mapping[str, Any], name: str) -> datetime:
    text = require_str(obj, name)
    try:
        return parse_utc(text)
    except ValueError:
        raise Malformed(f"unparsable {name!r}: {text!r}") from None


def optional_object(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A nested object that may be absent (``{}``) but, if present, must be one."""
    value = obj.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{name!r} is not an object")
    return value


def require_object(value: Any, what: str = "event") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} is not an object")
    return value


# --- JSON and batches ---------------------------------------------------------


def load_json(body: bytes) -> Any:
    """Decode a JSON body; ``ValueError`` when it is not JSON."""
    return orjson.loads(body)


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def sorted_json(value: Any) -> str:
    """Canonical JSON (sorted keys): stable input for a dedup key."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def collect(
    batch: ParsedBatch,
    source: str,
    build: Callable[[], ProviderEvent | Notice],
    raw_text: Callable[[], str],
) -> None:
    """Add what ``build`` makes to ``batch``; quarantine it when malformed."""
    try:
        item = build()
    except ValueError as exc:  # Malformed, and any value error of a bad field
        batch.quarantined.append(Quarantined(source=source, raw_text=raw_text(), error=str(exc)))
        return
    if isinstance(item, Notice):
        batch.notices.append(item)
    else:
        batch.events.append(item)
