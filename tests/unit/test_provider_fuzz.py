"""Property tests of the provider parsers (issue 7: "any bytes give a batch or a clear error").

For each parser: any bytes give a ``ParsedBatch`` or a ``ValueError``, never another
exception; any JSON-ish structure in the provider's envelope gives a batch in which every
input event is exactly once an event, a notice or a quarantined item; and every event
parsed can be stored and read back (its record encodes, its times survive the arithmetic
the fold and correlation do on them). Bounded examples: the file runs in a few seconds.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.aggregates import CLOCK_SKEW
from domain.signals import ParsedBatch, Signal
from interface.providers import canonical, elasticemail, sendgrid, unione

NOW = datetime(2026, 3, 14, 13, 0, 0, tzinfo=UTC)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TIMES = st.sampled_from(
    [
        "2026-03-14 10:04:11",
        "2026-03-14T10:04:11Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59Z",
        "3/14/2026 10:04:11 AM",
        "12/31/9999 11:59:59 PM",
        "1969-12-31T23:59:59Z",
        "soon",
        "",
    ]
)
TEXT = st.text(max_size=12) | st.sampled_from(["\x00", "a\x00b", "<script>alert(1)</script>", "\ud7ff", "é"]) | TIMES
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSONISH = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=12
)


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


ANY = JSONISH | st.integers(min_value=30, max_value=60).map(deep)


def fields(names: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A provider object: its known fields, each plausible or JSON-ish, some absent, plus strangers."""
    known = st.fixed_dictionaries({}, optional={name: strategy | ANY for name, strategy in names.items()})
    return st.tuples(known, st.dictionaries(TEXT, ANY, max_size=2)).map(lambda pair: {**pair[1], **pair[0]})


UNIONE_DATA = fields(
    {
        "job_id": TEXT,
        "email": st.sampled_from(["a@example.com", "B@Example.org"]),
        "event_time": TIMES,
        "status": st.sampled_from(["delivered", "opened", "clicked", "hard_bounced", "soft_bounced", "spam"]),
        "url": TEXT,
        "metadata": fields({"mailing_id": TEXT, "contact_id": TEXT, "test": SCALARS}),
        "delivery_info": fields(
            {
                "delivery_status": TEXT,
                "destination_response": TEXT,
                "user_agent": TEXT,
                "traffic_type": st.sampled_from(["machine", "protected", "human"]) | TEXT,
            }
        ),
    }
)
UNIONE_EVENT = (
    fields(
        {
            "event_name": st.sampled_from([unione.STATUS_EVENT, unione.SPAM_BLOCK, "something_new"]),
            "event_data": UNIONE_DATA,
        }
    )
    | ANY
)
UNIONE_USER = fields({"user_id": SCALARS, "events": st.lists(UNIONE_EVENT, max_size=4)}) | ANY
SENDGRID_EVENT = (
    fields(
        {
            "event": st.sampled_from(["delivered", "open", "click", "bounce", "dropped", "account_status_change"]),
            "email": TEXT | st.just("a@example.com"),
            "timestamp": st.sampled_from([1773482651, "1773482651", 1e20, -1e20, "1e20", 253402300799, -1, 10**30]) | SCALARS,
            "sg_event_id": TEXT,
            "url": TEXT,
            "type": TEXT,
            "useragent": TEXT,
            "sg_machine_open": SCALARS,
            "mailing_id": TEXT,
            "contact_id": TEXT,
            "reason": TEXT,
            "bounce_classification": st.sampled_from(["Invalid Address", "Reputation", "Unclassified"]) | TEXT,
        }
    )
    | ANY
)
CANONICAL_ITEM = (
    fields(
        {
            "event_id": TEXT,
            "mailing_id": TEXT,
            "contact_id": TEXT,
            "occurred_at": TIMES,
            "kind": st.sampled_from(["delivered", "opened", "confirmation_checked", "teleported"]),
            "url": TEXT,
            "reason": st.sampled_from(["will_retry", "because"]) | TEXT,
            "detail": TEXT,
        }
    )
    | ANY
)
ELASTIC_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "transaction": TEXT,
        "to": TEXT | st.just("a@example.com"),
        "status": st.sampled_from(["Sent", "Opened", "Error"]) | TEXT,
        "category": TEXT,
        "date": TIMES | TEXT,
        "target": TEXT,
        "postback": TEXT,
        "token": TEXT,
    },
).flatmap(
    lambda known: st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2).map(lambda extra: {**extra, **known})
)


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()  # json, not orjson: it writes any depth


def parsed_or_value_error(parse: Any, body: bytes) -> ParsedBatch | None:
    try:
        batch = parse(body, NOW)
    except ValueError:
        return None
    assert isinstance(batch, ParsedBatch)
    check_storable(batch)
    return batch


def check_storable(batch: ParsedBatch) -> None:
    """Every event journals and reads back; its times survive what the fold and correlation add."""
    for event in batch.events:
        record = orjson.loads(orjson.dumps(event.signal.to_record()))
        again = Signal.from_record(record)
        assert again.occurred_at == event.signal.occurred_at
        if again.occurred_at is not None:
            assert again.occurred_at + CLOCK_SKEW > again.occurred_at
    for notice in batch.notices:
        orjson.dumps(notice.raw)
    for item in batch.quarantined:
        assert item.error and isinstance(item.raw_text, str)
        item.kept()


def outcomes(batch: ParsedBatch) -> int:
    return len(batch.events) + len(batch.notices) + len(batch.quarantined)


# ---- any bytes ---------------------------------------------------------------------------------


@FUZZ
@given(body=st.binary(max_size=200) | JSONISH.map(encode))
def test_any_bytes_give_a_batch_or_a_value_error(body: bytes) -> None:
    for parse in (unione.parse, sendgrid.parse, canonical.parse):
        parsed_or_value_error(parse, body)
    assert isinstance(unione.verify(body, ["key"]), bool)
    assert isinstance(unione.trailing_bytes(body), bool)


# ---- every event exactly once ---------------------------------------------------------------------


@FUZZ
@given(users=st.lists(UNIONE_USER, max_size=3))
def test_unione_envelope_every_event_once(users: list[Any]) -> None:
    batch = parsed_or_value_error(unione.parse, encode({"auth": "0" * 32, "events_by_user": users}))
    assert batch is not None
    for event in batch.events:  # the status fields: a hard bounce's delivery status, an open's traffic type
        status = event.signal.fields["status"]
        allowed = {"status"} | (
            {"delivery_status"} if status == "hard_bounced" else {"traffic_type"} if status == "opened" else set()
        )
        assert set(event.signal.fields) <= allowed
    expected = sum(
        len(user["events"]) if isinstance(user, dict) and isinstance(user.get("events"), list) else 1 for user in users
    )
    assert outcomes(batch) == expected


@FUZZ
@given(event=UNIONE_DATA, name=st.sampled_from([unione.STATUS_EVENT, unione.SPAM_BLOCK]))
def test_unione_flat_form_one_event_once(event: dict[str, Any], name: str) -> None:
    document = {**{k: v for k, v in event.items() if k != "events_by_user"}, "event_name": name, "auth": "0" * 32}
    batch = parsed_or_value_error(unione.parse, encode(document))
    assert batch is not None and outcomes(batch) == 1


@FUZZ
@given(events=st.lists(SENDGRID_EVENT, max_size=5))
def test_sendgrid_every_event_once(events: list[Any]) -> None:
    batch = parsed_or_value_error(sendgrid.parse, encode(events))
    assert batch is not None
    assert outcomes(batch) == len(events)
    assert all(n.kind == "account_status_change" for n in batch.notices)  # the one event about the account
    for event in batch.events:  # the status fields: a bounce's classification and type, a drop's reason
        name = event.signal.fields["event"]
        allowed = {"event"} | (
            {"type", "bounce_classification"} if name == "bounce" else {"reason"} if name == "dropped" else set()
        )
        assert set(event.signal.fields) <= allowed


@FUZZ
@given(items=st.lists(CANONICAL_ITEM, max_size=5))
def test_canonical_every_item_once(items: list[Any]) -> None:
    batch = parsed_or_value_error(canonical.parse, encode({"signals": items}))
    assert batch is not None and batch.notices == []
    assert outcomes(batch) == len(items)


@FUZZ
@given(params=ELASTIC_PARAMS)
def test_elastic_email_one_notification_once(params: dict[str, str]) -> None:
    batch = elasticemail.parse(params, NOW)
    check_storable(batch)
    assert outcomes(batch) == 1 and batch.notices == []
    for item in batch.quarantined:  # the secret is never kept
        assert "token" not in parse_qs(item.raw_text, keep_blank_values=True)


# ---- the UniOne signature: the top-level auth, wherever it stands ----------------------------------------

NESTED_AUTH = st.fixed_dictionaries({"auth": st.sampled_from(["0123456789abcdef0123456789abcdef", "AUTH", ""]) | SCALARS})
MEMBERS = st.dictionaries(
    TEXT.filter(lambda k: k != "auth"), JSONISH | NESTED_AUTH | st.lists(NESTED_AUTH, max_size=2), max_size=4
)


@FUZZ
@given(
    members=MEMBERS,
    at=st.integers(min_value=0, max_value=4),
    spaced=st.booleans(),
    key=st.text(min_size=1, max_size=20).filter(lambda k: "\x00" not in k),
)
def test_unione_signature_is_the_top_level_auth(members: dict[str, Any], at: int, spaced: bool, key: str) -> None:
    """Any object, with ``auth`` fields nested anywhere in it and the top-level one at any position, signed as
    UniOne signs (MD5 of the raw body with the key in place of the top-level value), verifies with that key
    and no other; and changing one byte outside the signature refuses it."""
    items = list(members.items())
    items.insert(min(at, len(items)), ("auth", "AUTH_PLACEHOLDER"))
    separators = (", ", ": ") if spaced else (",", ":")
    template = json.dumps(dict(items), separators=separators, ensure_ascii=False).encode("utf-8", "surrogatepass")
    digest = hashlib.md5(template.replace(b'"AUTH_PLACEHOLDER"', b'"' + key.encode("utf-8", "surrogatepass") + b'"')).hexdigest()
    body = template.replace(b'"AUTH_PLACEHOLDER"', b'"' + digest.encode() + b'"')
    assert unione.verify(body, [key])
    assert not unione.verify(body, [key + "x"])
    signature = body.index(digest.encode())
    changed = 0 if signature > 0 else len(body) - 1  # the opening brace, or the closing one
    tampered = body[:changed] + b" " + body[changed + 1 :]
    assert not unione.verify(tampered, [key])
