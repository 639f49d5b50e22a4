"""Shared parsing helpers for provider adapters (pure: no database, no Flask).

Adapters turn a provider payload into a ``ParsedBatch``. A body that is not of
a recognised form raises ``ValueError`` (the caller quarantines it whole, or
answers 400 on ``/v1/signals``); a single malformed event inside a good body
raises ``Malformed`` while being built and is quarantined by ``collect`` with
its raw text, so the other events of the batch are still parsed. An event that
could not be stored and read back safely (``require_storable``: NUL characters,
nesting, huge strings) is malformed too, as is a time out of range.
"""

from __future__ import annotations

import hmac
import json
import zlib
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from domain.signals import Correlation, Notice, ParsedBatch, ProviderEvent, Quarantined, normalise_email, plausible_time

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
MAX_EVENT_DEPTH = 32  # containers nested in one event; provider payloads nest about 6 levels
MAX_FIELD_BYTES = 64 * 1024  # one string (value or key) of an event, in UTF-8
_SHOWN_CHARS = 60  # of a hostile value quoted in an error


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
    Raises ``ValueError`` on anything else, and for a time out of range
    (``domain.signals.plausible_time``): never ``OverflowError``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"not a time: {shown(text)}")
    return plausible_time(_read_time(text.strip()))


def _read_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        pass
    for fmt in _US_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ValueError(f"not a time: {shown(value)}")


def shown(value: Any) -> str:
    """A value as an error quotes it: its repr, cut short (hostile values can be megabytes)."""
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "…"


def opt_str(value: Any, name: str = "field") -> str | None:
    """``None`` stays ``None``; text, or a number as its text; anything else is ``Malformed``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise Malformed(f"{name!r} is not text: {shown(value)}")


def opt_id(value: Any, name: str = "id") -> str | None:
    """An identifier as text; missing or blank means none; an object or a list is ``Malformed``."""
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise Malformed(f"{name!r} is not an identifier: {shown(value)}")
    text = str(value).strip()
    return text or None


def truthy(value: Any) -> bool:
    """A flag that may arrive as a bool, a number or text ("true", "1", "false", "0")."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_WORDS
    return bool(value)


def secret_matches(given: str | None, configured: str | None) -> bool:
    """A shared secret presented with a webhook call, compared with the configured one in constant time."""
    if not given or not configured:
        return False
    return hmac.compare_digest(given.encode("utf-8"), configured.encode("utf-8"))


def correlation(fields: Mapping[str, Any], email: str | None) -> Correlation:
    """How a provider event names its recipient: ids and the test flag as attached at send time."""
    return Correlation(
        mailing_id=opt_id(fields.get("mailing_id"), "mailing_id"),
        contact_id=opt_id(fields.get("contact_id"), "contact_id"),
        email=normalise_email(email),
        test=truthy(fields.get("test")),
    )


def require_str(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise Malformed(f"{name!r} is not text: {shown(value)}")
    if not value or not value.strip():
        raise Malformed(f"missing or empty {name!r}")
    return value


def require_time(obj: Mapping[str, Any], name: str) -> datetime:
    text = require_str(obj, name)
    try:
        return parse_utc(text)
    except ValueError as exc:
        raise Malformed(f"unparsable {name!r}: {exc}") from None


def unix_time(value: Any, name: str = "timestamp") -> datetime:
    """Unix seconds (a number, or digits as text) as UTC, within ``plausible_time``'s range."""
    if value is None or isinstance(value, bool):
        raise Malformed(f"missing {name!r}")
    try:
        return plausible_time(datetime.fromtimestamp(float(value), tz=UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        raise Malformed(f"unparsable {name!r}: {shown(value)}") from None


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
    """The JSON text of a decoded value, however deep (orjson stops at 254 levels)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return "".join(_json_parts(value))


class _Punctuation(str):
    """JSON syntax between the values ``_json_parts`` writes (a plain ``str`` is a value)."""


def _json_parts(value: Any) -> Iterator[str]:
    """JSON text in pieces, without recursion: hostile input may nest thousands of levels."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Punctuation):
            yield item
        elif isinstance(item, dict):
            members: list[Any] = []
            for i, (name, member) in enumerate(item.items()):
                members += [_Punctuation(("," if i else "") + json.dumps(str(name), ensure_ascii=False) + ":"), member]
            stack += [_Punctuation("}"), *reversed(members), _Punctuation("{")]
        elif isinstance(item, list):
            elements: list[Any] = []
            for i, element in enumerate(item):
                elements += [_Punctuation(","), element] if i else [element]
            stack += [_Punctuation("]"), *reversed(elements), _Punctuation("[")]
        else:
            yield json.dumps(item, ensure_ascii=False, default=repr)


def sorted_json(value: Any) -> str:
    """Canonical JSON (sorted keys): stable input for a dedup key."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def unstorable(event: Any, max_depth: int = MAX_EVENT_DEPTH, max_bytes: int = MAX_FIELD_BYTES) -> str | None:
    """Why a decoded event cannot be journaled safely, or None.

    Containers nested deeper than any provider payload (``max_depth``), NUL
    characters (PostgreSQL text cannot hold them), strings over ``max_bytes``
    and text that is not Unicode (lone surrogates) would be journaled and then
    break every later consumer of the signal: the views, the history, the
    answers. Checked iteratively: no recursion on hostile input.
    """
    stack: list[tuple[Any, int]] = [(event, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            reason = _unstorable_text(value, max_bytes)
            if reason is not None:
                return reason
            continue
        if isinstance(value, dict):
            stack.extend((name, depth) for name in value)
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return f"JSON nested deeper than {max_depth} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


def _unstorable_text(value: str, max_bytes: int) -> str | None:
    if "\x00" in value:
        return "a NUL character in a string"
    if value.isascii() and len(value) <= max_bytes:
        return None
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "a string that is not Unicode text (a lone surrogate)"
    return f"a string over {max_bytes // 1024} KiB" if size > max_bytes else None


def require_storable(event: Any) -> None:
    """``Malformed`` for an event ``unstorable`` names a reason for."""
    reason = unstorable(event)
    if reason is not None:
        raise Malformed(reason)


def collect(
    batch: ParsedBatch,
    source: str,
    event: Any,
    build: Callable[[], ProviderEvent | Notice],
    raw_text: Callable[[], str] | None = None,
) -> None:
    """Add what ``build`` makes of ``event`` (as decoded) to ``batch``; quarantine it alone when it
    cannot be stored safely or is malformed, with its raw text (``raw_text()``, else its JSON)."""
    try:
        require_storable(event)
        item = build()
    except ValueError as exc:  # Malformed, and any value error of a bad field
        text = raw_text() if raw_text is not None else json_text(event)
        batch.quarantined.append(Quarantined(source=source, raw_text=text, error=str(exc)))
        return
    if isinstance(item, Notice):
        batch.notices.append(item)
    else:
        batch.events.append(item)
