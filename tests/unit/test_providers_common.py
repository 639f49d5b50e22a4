"""Shared provider helpers: bounded body decoding and lenient times."""

from __future__ import annotations

import gzip
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from domain.signals import Notice, ParsedBatch
from interface.providers.common import BodyTooLarge, Malformed, collect, parse_utc, read_body, truthy

MB = 1024 * 1024


def test_plain_body_is_returned_as_is():
    assert read_body(b'{"a":1}', None, 100) == b'{"a":1}'
    assert read_body(b'{"a":1}', "identity", 100) == b'{"a":1}'


def test_oversize_raw_body():
    with pytest.raises(BodyTooLarge):
        read_body(b"x" * 101, None, 100)
    assert read_body(b"x" * 100, None, 100) == b"x" * 100


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", " x-gzip ", None])
def test_gzip_by_header_or_magic(encoding):
    body = b'{"events":[1,2,3]}' * 10
    assert read_body(gzip.compress(body), encoding, 10_000) == body


def test_zlib_deflate():
    body = b"hello " * 100
    assert read_body(zlib.compress(body), "deflate", 10_000) == body


def test_concatenated_gzip_members():
    assert read_body(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 100) == b"abcd"


def test_decompressed_exactly_at_limit_passes():
    body = b"y" * 1000
    assert read_body(gzip.compress(body), "gzip", 1000) == body
    with pytest.raises(BodyTooLarge):
        read_body(gzip.compress(body), "gzip", 999)


def test_gzip_bomb_is_refused_without_inflating_it():
    bomb = gzip.compress(b"\x00" * (50 * MB), compresslevel=9)
    assert len(bomb) < MB
    with pytest.raises(BodyTooLarge):
        read_body(bomb, "gzip", MB)
    with pytest.raises(BodyTooLarge):  # detected by magic bytes too
        read_body(bomb, None, MB)


@pytest.mark.parametrize(
    "body",
    [
        b"\x1f\x8bnot really gzip",
        gzip.compress(b"some json body", mtime=0)[:-6],  # truncated (mtime=0: the same test id in every process)
        b"",
    ],
)
def test_corrupt_gzip_is_a_value_error(body):
    with pytest.raises(ValueError):
        read_body(body, "gzip", MB)


def test_trailing_garbage_after_gzip_is_a_value_error():
    with pytest.raises(ValueError):
        read_body(gzip.compress(b"ok") + b"garbage", "gzip", MB)


def test_unsupported_encoding_is_a_value_error():
    with pytest.raises(ValueError):
        read_body(b"...", "br", MB)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-03-14 10:04:11", datetime(2026, 3, 14, 10, 4, 11, tzinfo=UTC)),
        ("2026-03-14T10:04:11Z", datetime(2026, 3, 14, 10, 4, 11, tzinfo=UTC)),
        ("2026-03-14T10:04:11.250Z", datetime(2026, 3, 14, 10, 4, 11, 250000, tzinfo=UTC)),
        ("2026-03-14T13:04:11+03:00", datetime(2026, 3, 14, 10, 4, 11, tzinfo=UTC)),
        (" 2026-03-14T10:04:11 ", datetime(2026, 3, 14, 10, 4, 11, tzinfo=UTC)),
        ("3/14/2026 10:04:11 AM", datetime(2026, 3, 14, 10, 4, 11, tzinfo=UTC)),
        ("3/14/2026 12:00:00 PM", datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)),
        ("3/14/2026 12:30:00 AM", datetime(2026, 3, 14, 0, 30, 0, tzinfo=UTC)),
        ("12/1/2026 1:05:09 pm", datetime(2026, 12, 1, 13, 5, 9, tzinfo=UTC)),
        ("03/04/2026 09:07 PM", datetime(2026, 3, 4, 21, 7, 0, tzinfo=UTC)),
    ],
)
def test_parse_utc(text, expected):
    parsed = parse_utc(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "   ", "yesterday", "2026-13-40 10:00:00", "3/14/2026 13:00:00 PM", None, 12])
def test_parse_utc_rejects_junk(text):
    with pytest.raises(ValueError):
        parse_utc(text)


@pytest.mark.parametrize(
    "value, expected",
    [
        (True, True),
        (False, False),
        (None, False),
        (1, True),
        (0, False),
        ("true", True),
        ("1", True),
        ("false", False),
        ("0", False),
        ("", False),
        ("FALSE", False),
        ("yes", True),
    ],
)
def test_truthy(value, expected):
    assert truthy(value) is expected


def test_collect_sorts_results_and_quarantines_value_errors():
    batch = ParsedBatch()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    notice = Notice(provider="p", key="k", kind="x", received_at=now, raw={})

    def bad():
        raise Malformed("missing 'status'")

    collect(batch, "p", {"kind": "x"}, lambda: notice, lambda: "never used")
    collect(batch, "p", {"raw": 1}, bad, lambda: "raw=1")
    collect(batch, "p", {"raw": 2}, bad)  # without raw_text: the event's JSON
    collect(batch, "p", {"raw": "\x00"}, lambda: notice)  # never built: it cannot be stored
    assert batch.notices == [notice]
    assert batch.events == []
    assert [(q.source, q.raw_text, q.error) for q in batch.quarantined] == [
        ("p", "raw=1", "missing 'status'"),
        ("p", '{"raw":2}', "missing 'status'"),
        ("p", '{"raw":"\\u0000"}', "a NUL character in a string"),
    ]
