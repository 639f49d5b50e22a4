"""The cursors the API gives out for its pages: opaque to clients, decoded here for the views' reads.

A page cursor is the ``seq`` of the last row answered (a view's 64-bit position); the click map's is
the last link's clicks and URL digest. Both sides use them: the application answers pages with them,
the replay pages an audit history with them (CONTRACT §5)."""

from __future__ import annotations

import base64
import re

MAX_SEQ = 2**63 - 1  # a view's seq is a 64-bit integer on both stores


class BadCursor(ValueError):
    pass


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if len(text) > 20 or not text.startswith("s") or not text[1:].isascii() or not text[1:].isdigit():
            raise ValueError
        seq = int(text[1:])
        if seq > MAX_SEQ:
            raise ValueError
        return seq
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("cursor is not one this API gave out") from None


LINK_CURSOR = re.compile(r"l(\d{1,19}):([0-9a-f]{32})")


def encode_link_cursor(clicks: int, key: str) -> str:
    """The click map's cursor: the last link's clicks and URL digest (a URL may be too long for a cursor)."""
    return base64.urlsafe_b64encode(f"l{clicks}:{key}".encode()).decode().rstrip("=")


def decode_link_cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    try:
        if len(cursor) > 80:
            raise ValueError
        matched = LINK_CURSOR.fullmatch(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii"))
        if matched is None or int(matched.group(1)) > MAX_SEQ:
            raise ValueError
        return int(matched.group(1)), matched.group(2)
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        raise BadCursor("cursor is not one this API gave out") from None
