"""Hostile input on the ingest routes (issue 7, failures 1-4), on both stores.

- One bad event (a time out of range, a NUL, nesting, a huge field, a wrong type) is
  quarantined alone, with its raw text and the error; its neighbours are journaled.
- The quarantine is idempotent: the same input again is one entry, counted as a duplicate.
- A quarantined raw text is bounded, readable (no NUL) and inert data (JSON).
- UniOne's ``auth`` is MD5(body with the key in place of ``auth``): from one genuine body,
  anyone can compute a valid ``auth`` for body + MD5 padding + any text (a length extension).
  A genuine UniOne body is one JSON document, so bytes after it are refused: 400, nothing stored.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from typing import Any

import pytest
from flask.testing import FlaskClient

from application.service import ResponsesApp
from interface.providers import unione
from tests.helpers.http import (
    SPRING,
    SPRING_AUDIENCE,
    UNIONE_TEST_KEY,
    error_of,
    fixture_bytes,
    sign_sendgrid,
    sign_unione,
    sqlite_only,
)

UNIONE = "/v1/webhooks/unione"
SENDGRID = "/v1/webhooks/sendgrid"
SIGNALS = "/v1/signals"
NOTHING = {"accepted": 0, "duplicates": 0, "unmatched": 0, "quarantined": 0}
BIG_BODY = 1024 * 1024  # room for a field over 64 KiB
RAW_LIMIT = 64 * 1024  # what a quarantine item keeps of a raw text


def answer(**counts: int) -> dict[str, int]:
    return {**NOTHING, **counts}


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth - 1):
        value = [value]
    return value


def responses(api: FlaskClient) -> dict[str, str]:
    items = api.get(f"/v1/mailings/{SPRING}/audience").json["items"]
    return {i["contact_id"]: i["response"]["code"] for i in items}


def quarantine(api: FlaskClient) -> list[dict[str, Any]]:
    r = api.get("/v1/quarantine?limit=1000")
    assert r.status_code == 200
    return r.json["items"]


def post_unione(client: FlaskClient, body: bytes) -> Any:
    return client.post(UNIONE, data=body, content_type="application/json")


def unione_body(*events: Any) -> bytes:
    document = {"auth": "AUTH_PLACEHOLDER", "events_by_user": [{"user_id": 1, "events": list(events)}]}
    return sign_unione(json.dumps(document).encode())


def status(contact: str, code: str, email: str, **extra: Any) -> dict[str, Any]:
    data = {
        "job_id": "j-1",
        "metadata": {"mailing_id": SPRING, "contact_id": contact},
        "email": email,
        "status": code,
        "event_time": "2026-03-14 10:04:11",
        **extra,
    }
    return {"event_name": "transactional_email_status", "event_data": data}


# The hostile events a batch carries beside good ones: each names itself in its raw text.
def hostile_unione_events() -> list[dict[str, Any]]:
    return [
        status("c-1002", "opened", "boris@example.org", event_time="0001-01-01T00:00:00+14:00"),
        status("c-1002", "clicked", "boris@example.org", event_time="9999-12-31T23:59:59-14:00"),
        status("c-1003", "opened", "nobody@example.net", marker="nul", url="https://x.example/\x00"),
        status("c-1004", "opened", "vera@example.com", marker="deep", extra=nested(40)),
        status("c-1005", "clicked", "gleb@example.com", marker="wrong-type", url={"href": "https://x.example/"}),
        status("c-1005", "opened", "gleb@example.com", marker="huge", detail="x" * (RAW_LIMIT + 1)),
    ]


# ---- failures 1 and 2: one bad event never takes its neighbours with it ------------------------


def test_unione_hostile_events_are_quarantined_alone_and_their_neighbours_journaled(
    make_client, app: ResponsesApp, spring: dict[str, Any]
) -> None:
    client = make_client(max_body_bytes=BIG_BODY)
    bad = hostile_unione_events()
    body = unione_body(status("c-1006", "delivered", "dina@example.com"), *bad, status("c-1001", "opened", "anna@example.com"))
    r = post_unione(client, body)
    assert r.status_code == 200, r.get_data()
    assert r.json == answer(accepted=2, quarantined=len(bad))
    assert responses(client)["c-1006"] == "delivered" and responses(client)["c-1001"] == "opened"
    items = quarantine(client)
    assert len(items) == len(bad)
    assert all(i["source"] == "unione" and i["error"] and i["raw"] for i in items)
    errors = " | ".join(i["error"] for i in items)
    for expected in ("event_time", "NUL", "nested deeper", "'url' is not text", "64 KiB"):
        assert expected in errors
    assert client.get("/readyz").json["lag"] == 0


def sendgrid_event(**fields: Any) -> dict[str, Any]:
    return {"email": "anna@example.com", "timestamp": 1773482651, "mailing_id": SPRING, "contact_id": "c-1001", **fields}


def post_sendgrid(client: FlaskClient, events: list[dict[str, Any]]) -> Any:
    body = json.dumps(events).encode()
    return client.post(SENDGRID, data=body, content_type="application/json", headers=sign_sendgrid(body))


def test_sendgrid_hostile_events_are_quarantined_alone_and_their_neighbours_journaled(
    client: FlaskClient, api: FlaskClient
) -> None:
    r = api.post("/v1/mailings", json={"id": SPRING, "name": "Spring", "category": "bulk", "provider": "sendgrid"})
    assert r.status_code == 201
    api.post(f"/v1/mailings/{SPRING}/audience", json={"recipients": SPRING_AUDIENCE[:1]})
    assert api.post(f"/v1/mailings/{SPRING}/dispatch").status_code == 200
    bad = [
        sendgrid_event(event="open", sg_event_id="t-1", timestamp=1e20),
        sendgrid_event(event="open", sg_event_id="t-2", timestamp=-1e20),
        sendgrid_event(event="open", sg_event_id="t-3", timestamp=253402300799),  # 9999-12-31T23:59:59Z
        sendgrid_event(event="open", sg_event_id="n-1", useragent="Mozilla\x00"),
        sendgrid_event(event="open", sg_event_id="d-1", extra=nested(40)),
    ]
    good = [sendgrid_event(event="delivered", sg_event_id="g-1"), sendgrid_event(event="open", sg_event_id="g-2")]
    r = post_sendgrid(client, [good[0], *bad, good[1]])
    assert r.status_code == 200
    assert r.json == answer(accepted=2, quarantined=len(bad))
    assert responses(api)["c-1001"] == "opened"
    assert sorted(json.loads(i["raw"])["sg_event_id"] for i in quarantine(api)) == ["d-1", "n-1", "t-1", "t-2", "t-3"]


def canonical_item(**fields: Any) -> dict[str, Any]:
    return {
        "event_id": "e-1",
        "mailing_id": SPRING,
        "contact_id": "c-1006",
        "kind": "delivered",
        "occurred_at": "2026-03-14T10:00:00Z",
        **fields,
    }


def test_canonical_hostile_items_are_quarantined_alone_and_their_neighbours_journaled(
    api: FlaskClient, spring: dict[str, Any]
) -> None:
    bad = [
        canonical_item(event_id="t-1", occurred_at="0001-01-01T00:00:00+14:00"),
        canonical_item(event_id="t-2", occurred_at="9999-12-31T23:59:59-14:00"),
        canonical_item(event_id="n-1", detail="451\x00"),
        canonical_item(event_id="d-1", extra=nested(40)),
    ]
    good = [canonical_item(), canonical_item(event_id="e-2", kind="opened")]
    r = api.post(SIGNALS, json={"signals": [good[0], *bad, good[1]]})
    assert r.status_code == 200, r.get_data()
    assert r.json == answer(accepted=2, quarantined=len(bad))
    assert responses(api)["c-1006"] == "opened"
    assert sorted(json.loads(i["raw"])["event_id"] for i in quarantine(api)) == ["d-1", "n-1", "t-1", "t-2"]


def test_an_event_whose_time_overflows_later_is_refused_when_it_arrives(client: FlaskClient, api: FlaskClient) -> None:
    """9999-12-31T23:59:59Z parses, but correlation adds a clock skew to it: parked for an address, it made
    every later dispatch to that address a 500."""
    edge = {
        "event_name": "transactional_email_status",
        "event_data": {"job_id": "j", "email": "anna@example.com", "status": "opened", "event_time": "9999-12-31T23:59:59Z"},
    }
    assert post_unione(client, unione_body(edge)).status_code == 200
    r = api.post("/v1/mailings", json={"id": SPRING, "name": "Spring", "category": "bulk", "provider": "unione"})
    assert r.status_code == 201
    api.post(f"/v1/mailings/{SPRING}/audience", json={"recipients": SPRING_AUDIENCE[:1]})
    r = api.post(f"/v1/mailings/{SPRING}/dispatch")
    assert r.status_code == 200, r.get_data()  # was a 500: OverflowError claiming the parked event
    assert r.json["outcomes"] == {"sent_to_provider": 1}
    [item] = quarantine(api)
    assert "event_time" in item["error"] and "9999-12-31T23:59:59Z" in item["raw"]


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_one_time_out_of_range_does_not_lose_its_batch(
    client: FlaskClient, api: FlaskClient, spring: dict[str, Any], at: str
) -> None:
    body = unione_body(
        status("c-1006", "delivered", "dina@example.com"), status("c-1002", "opened", "boris@example.org", event_time=at)
    )
    r = post_unione(client, body)
    assert r.status_code == 200, r.get_data()  # was a 500: the good event never journaled, UniOne retrying for 24 h
    assert r.json == answer(accepted=1, quarantined=1)
    r = api.post(SIGNALS, json={"signals": [canonical_item(), canonical_item(event_id="e-2", occurred_at=at)]})
    assert r.status_code == 200, r.get_data()
    assert r.json == answer(accepted=1, quarantined=1)
    assert responses(api)["c-1006"] == "delivered"
    assert {i["source"] for i in quarantine(api)} == {"unione", "canonical"}


# ---- failure 3: the quarantine is idempotent --------------------------------------------------


def test_a_retried_batch_leaves_one_quarantine_entry_and_counts_duplicates(
    client: FlaskClient, api: FlaskClient, spring: dict[str, Any]
) -> None:
    bad = status("c-1002", "opened", "boris@example.org", event_time="the day after")
    body = unione_body(status("c-1006", "delivered", "dina@example.com"), bad)
    assert post_unione(client, body).json == answer(accepted=1, quarantined=1)
    for _ in range(2):
        assert post_unione(client, body).json == answer(duplicates=2)
    [item] = quarantine(api)
    assert json.loads(item["raw"]) == bad and "event_time" in item["error"]
    other_batch = unione_body(bad, status("c-1001", "opened", "anna@example.com"))  # the same bad event elsewhere
    assert post_unione(client, other_batch).json == answer(accepted=1, duplicates=1)
    assert len(quarantine(api)) == 1


def test_a_retried_unparsable_body_leaves_one_quarantine_entry(client: FlaskClient, api: FlaskClient, app: ResponsesApp) -> None:
    body = sign_unione(b'{"auth":"AUTH_PLACEHOLDER","events_by_user":[{"events":[')
    assert post_unione(client, body).json == answer(quarantined=1)
    position = app.journal_position()
    for _ in range(2):
        assert post_unione(client, body).json == answer(duplicates=1)
    assert app.journal_position() == position  # nothing appended by the retries
    assert len(quarantine(api)) == 1
    other = sign_unione(b'{"auth":"AUTH_PLACEHOLDER","events_by_user":[{"events":[{')
    assert post_unione(client, other).json == answer(quarantined=1)
    assert len(quarantine(api)) == 2


def test_elastic_email_retried_bad_notification_is_one_entry(client: FlaskClient, api: FlaskClient) -> None:
    from tests.helpers.http import EE_TOKEN

    url = f"/v1/webhooks/elasticemail?token={EE_TOKEN}&status=Sent&to=a%40example.com&date=yesterday"
    assert client.get(url).json == answer(quarantined=1)
    assert client.get(url).json == answer(duplicates=1)
    assert len(quarantine(api)) == 1


# ---- what a quarantine item keeps ---------------------------------------------------------------


def test_a_quarantined_raw_text_is_bounded_and_says_it_was_cut(make_client) -> None:
    client = make_client(max_body_bytes=BIG_BODY)
    body = sign_unione(b'{"auth":"AUTH_PLACEHOLDER","events_by_user":[' + b'"' + b"x" * (3 * RAW_LIMIT))
    assert post_unione(client, body).json == answer(quarantined=1)
    [item] = quarantine(client)
    assert item["raw"] == body[:RAW_LIMIT].decode()
    assert "truncated" in item["error"] and str(len(body)) in item["error"]
    assert post_unione(client, body).json == answer(duplicates=1)  # keyed by the whole body, not the part kept


def test_nul_and_script_in_a_quarantined_body_are_kept_as_inert_readable_json(client: FlaskClient, api: FlaskClient) -> None:
    body = sign_unione(b'{"auth":"AUTH_PLACEHOLDER","events_by_user":[\x00<script>alert(1)</script>\xff')
    assert post_unione(client, body).json == answer(quarantined=1)
    r = api.get("/v1/quarantine")
    assert r.status_code == 200 and r.mimetype == "application/json"
    [item] = r.json["items"]
    assert "\x00" not in item["raw"] and "\\u0000<script>alert(1)</script>\ufffd" in item["raw"]
    assert b"<script>" in r.get_data()  # data inside a JSON string: never HTML
    assert client.get("/readyz").json["lag"] == 0


# ---- failure 4: UniOne's MD5 length extension ------------------------------------------------------
# A pure-Python MD5 whose state can be set: from MD5(m) and len(m) alone it computes
# MD5(m + padding(len(m)) + suffix), as an attacker would.

_MASK = 0xFFFFFFFF
_SHIFTS = [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4
_SINES = [int(abs(math.sin(i + 1)) * 2**32) & _MASK for i in range(64)]
_INITIAL = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)


def _compress(state: tuple[int, ...], block: bytes) -> tuple[int, ...]:
    a, b, c, d = state
    words = struct.unpack("<16I", block)
    for i in range(64):
        if i < 16:
            f, g = (b & c) | (~b & d), i
        elif i < 32:
            f, g = (d & b) | (~d & c), (5 * i + 1) % 16
        elif i < 48:
            f, g = b ^ c ^ d, (3 * i + 5) % 16
        else:
            f, g = c ^ (b | ~d), (7 * i) % 16
        f = (f + a + _SINES[i] + words[g]) & _MASK
        a, d, c = d, c, b
        b = (b + ((f << _SHIFTS[i]) | (f >> (32 - _SHIFTS[i])))) & _MASK
    return tuple((x + y) & _MASK for x, y in zip(state, (a, b, c, d)))


def md5_padding(length: int) -> bytes:
    """What MD5 appends to a message of ``length`` bytes before its last block."""
    return b"\x80" + b"\x00" * ((55 - length) % 64) + struct.pack("<Q", (8 * length) & 0xFFFFFFFFFFFFFFFF)


def md5_from_state(state: tuple[int, ...], hashed: int, data: bytes) -> str:
    """Go on hashing ``data`` from ``state``, ``hashed`` bytes (a multiple of 64) already in it."""
    data += md5_padding(hashed + len(data))
    for at in range(0, len(data), 64):
        state = _compress(state, data[at : at + 64])
    return struct.pack("<4I", *state).hex()


def md5_extend(digest: str, length: int, suffix: bytes) -> str:
    """MD5(m + md5_padding(len(m)) + suffix), knowing only MD5(m) and len(m): never m."""
    state = struct.unpack("<4I", bytes.fromhex(digest))
    return md5_from_state(state, length + len(md5_padding(length)), suffix)


def test_the_pure_md5_is_md5() -> None:
    for message in (b"", b"a", b"x" * 55, b"y" * 56, b"z" * 64, bytes(range(256)) * 3):
        assert md5_from_state(_INITIAL, 0, message) == hashlib.md5(message).hexdigest()
    secret, suffix = b"k" * 40 + b"tail", b"more"
    extended = md5_extend(hashlib.md5(secret).hexdigest(), len(secret), suffix)
    assert extended == hashlib.md5(secret + md5_padding(len(secret)) + suffix).hexdigest()


def length_extended(body: bytes, key_length: int, suffix: bytes) -> bytes:
    """The genuine ``body`` + MD5 padding + ``suffix``, with an ``auth`` valid for it, made without the key.

    UniOne hashes ``head + key + tail`` (the body with its ``auth`` value replaced by the key), so the
    hashed message is ``len(body) - 32 + len(key)`` bytes long: API keys are 40 characters, not secret.
    The padding and the suffix extend ``tail``; ``head`` keeps its place, so the ``auth`` found is ours.
    """
    auth = json.loads(body)["auth"]
    at = body.index(auth.encode())
    hashed_length = len(body) - len(auth) + key_length
    forged = md5_extend(auth, hashed_length, suffix)
    return body[:at] + forged.encode() + body[at + len(auth) :] + md5_padding(hashed_length) + suffix


ATTACK = (
    b'{"events_by_user":[{"events":[{"event_name":"transactional_email_status","event_data":{"job_id":"x",'
    b'"email":"victim@example.com\x00","status":"unsubscribed","event_time":"2026-03-14 10:00:00",'
    b'"url":"<script>alert(1)</script>"}}]}]}'
)


def test_a_length_extended_unione_body_verifies_but_is_refused_with_400(
    client: FlaskClient, api: FlaskClient, app: ResponsesApp
) -> None:
    genuine = fixture_bytes("unione/real-signed-clicked.json.raw")
    forged = length_extended(genuine, len(UNIONE_TEST_KEY), ATTACK)
    assert unione.verify(forged, [UNIONE_TEST_KEY])  # the scheme's limit: forged without the key
    r = post_unione(client, forged)
    assert r.status_code == 400
    assert error_of(r)["code"] == "trailing_bytes"
    assert app.journal_position() == 0
    assert quarantine(api) == []
    assert post_unione(client, genuine).json == answer(unmatched=1)  # the genuine body is still fine


@sqlite_only
@pytest.mark.parametrize("after", [b"x", b"{}", b"\x00", b" ]", b'"'], ids=["text", "document", "nul", "bracket", "quote"])
def test_a_signed_unione_body_with_bytes_after_its_document_is_400(client: FlaskClient, app: ResponsesApp, after: bytes) -> None:
    body = sign_unione(b'{"auth":"AUTH_PLACEHOLDER","events_by_user":[{"events":[]}]}\n' + after)
    r = post_unione(client, body)
    assert r.status_code == 400 and error_of(r)["code"] == "trailing_bytes"
    assert app.journal_position() == 0


@sqlite_only
def test_whitespace_after_a_signed_unione_document_is_fine(client: FlaskClient) -> None:
    body = sign_unione(b'{"auth":"AUTH_PLACEHOLDER","events_by_user":[{"events":[]}]}\r\n \t')
    assert post_unione(client, body).json == NOTHING
