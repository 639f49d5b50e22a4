"""Reading a request body under the configured limit (SPEC §7: 413 over ``MAX_BODY_BYTES``), and what it may hold."""

from __future__ import annotations

from typing import Any

import orjson
from flask import request

from interface.providers.common import BodyTooLarge, read_body

CHUNK = 64 * 1024
MAX_JSON_DEPTH = 32  # provider payloads nest about 6 levels


def read_limited(max_bytes: int) -> bytes:
    """The raw body, never more than ``max_bytes``: a declared length over it is refused
    before reading; a chunked (or lying) body is read up to the limit and refused past it."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge(f"body of {declared} bytes exceeds {max_bytes}")
    stream = request.stream
    parts: list[bytes] = []
    total = 0
    while True:
        part = stream.read(min(CHUNK, max_bytes + 1 - total))
        if not part:
            return b"".join(parts)
        total += len(part)
        if total > max_bytes:
            raise BodyTooLarge(f"body exceeds {max_bytes} bytes")
        parts.append(part)


def read_decoded(max_bytes: int) -> bytes:
    """The body as sent, then decompressed when gzip/deflate; the limit holds after decompression too.

    ``ValueError`` for a corrupt compressed body or an unsupported ``Content-Encoding``.
    """
    return read_body(read_limited(max_bytes), request.headers.get("Content-Encoding"), max_bytes)


def unstorable(document: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a decoded document cannot be journaled safely, or None.

    Containers nested deeper than any provider payload (``max_depth``), and NUL
    characters (PostgreSQL text cannot hold them), would be journaled and then
    break every later consumer of the signal: the views, the history, the
    answers. Checked iteratively: no recursion on hostile input.
    """
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return "a NUL character in a string"
            continue
        if isinstance(value, dict):
            stack.extend((key, depth) for key in value)
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            return f"JSON nested deeper than {max_depth} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


def refuse_unstorable(document: Any) -> None:
    """``ValueError`` for a document ``unstorable`` names a reason for (webhooks quarantine it)."""
    reason = unstorable(document)
    if reason is not None:
        raise ValueError(reason)


def refuse_unstorable_json(body: bytes) -> None:
    """As ``refuse_unstorable`` for a JSON body; a body that is not JSON is left to its adapter."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    refuse_unstorable(document)
