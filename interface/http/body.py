"""Reading a request body under the configured limit (CONTRACT §7: 413 over ``MAX_BODY_BYTES``), and what it may hold.

What a provider event may hold is checked per event by its adapter (``interface.providers.common.unstorable``):
one bad event is quarantined alone, never its batch.
"""

from __future__ import annotations

from flask import request

from interface.providers.common import BodyTooLarge, read_body

CHUNK = 64 * 1024


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
