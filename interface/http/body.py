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


def nesting_depth_exceeds(document: Any, limit: int) -> bool:
    """True when containers nest deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def refuse_deep_json(body: bytes) -> None:
    """``ValueError`` for a JSON body nested deeper than any provider payload is (``MAX_JSON_DEPTH``).

    Such a document would be journaled, then break every later consumer of the
    signal (views, history, answers): it is quarantined (webhooks) or refused
    (``/v1/signals``) instead. A body that is not JSON is left to its adapter.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if nesting_depth_exceeds(document, MAX_JSON_DEPTH):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
