"""Brevo adapter: one event or a batch, X-Mailin-custom, times, proxy opens, dedup, what is kept sealed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from domain.personal import split_personal
from domain.signals import dedup_key
from interface.providers import brevo
from interface.providers.common import secret_matches

NOW = datetime(2026, 3, 14, 13, 0, tzinfo=UTC)


def event(**fields: object) -> dict[str, object]:
    base = {"event": "delivered", "email": "a@example.com", "message-id": "<m-1@relay>", "ts_event": 1604933654}
    return {**base, **fields}


def parse(*events: object) -> list:
    body = json.dumps(events[0] if len(events) == 1 else list(events)).encode()
    return brevo.parse(body, NOW).events


def test_the_secret_is_compared_whole() -> None:
    assert secret_matches("s3cret", "s3cret")
    assert not any(secret_matches(given, "s3cret") for given in ("s3cre", "s3cret ", "S3CRET", "", None))
    assert not secret_matches("s3cret", None) and not secret_matches("", "")


def test_one_event_or_a_batch() -> None:
    assert len(parse(event())) == 1
    assert len(parse(event(), event(event="opened"), event(event="click", link="https://x.example/"))) == 3
    assert brevo.parse(b"[]", NOW).events == []
    for raw in (b'"x"', b"7", b"{"):
        with pytest.raises(ValueError):
            brevo.parse(raw, NOW)


def test_x_mailin_custom_names_the_recipient_and_brevos_ids_do_not() -> None:
    custom = json.dumps({"mailing_id": "spring-sale", "contact_id": "c-1"})
    [named] = parse(event(**{"X-Mailin-custom": custom, "contact_id": 42, "id": 99}))
    assert (named.correlation.mailing_id, named.correlation.contact_id) == ("spring-sale", "c-1")
    for header in (None, "some_custom_header", "[1, 2]", '{"meta": "data"}'):
        [plain] = parse(event(**{"X-Mailin-custom": header, "contact_id": 42}))
        assert (plain.correlation.contact_id, plain.correlation.email) == (None, "a@example.com")
    [as_object] = parse(event(**{"X-Mailin-custom": {"mailing_id": "m", "contact_id": "c"}}))
    assert as_object.correlation.contact_id == "c"


@pytest.mark.parametrize(
    "times, expected",
    [
        ({"ts_epoch": 1520363423000, "ts_event": 1}, datetime(2018, 3, 6, 19, 10, 23, tzinfo=UTC)),  # milliseconds first
        ({"ts_epoch": 1604933623}, datetime(2020, 11, 9, 14, 53, 43, tzinfo=UTC)),  # seconds, as in some events
        ({"ts_event": 1604933654}, datetime(2020, 11, 9, 14, 54, 14, tzinfo=UTC)),
        ({"ts": "1604933619"}, datetime(2020, 11, 9, 14, 53, 39, tzinfo=UTC)),
        ({"date": "2020-10-09 00:00:00"}, None),  # the account's time zone: unknown, so the receipt's time
    ],
)
def test_the_time_of_an_event(times: dict[str, object], expected: datetime | None) -> None:
    raw = {k: v for k, v in event().items() if k != "ts_event"}
    [parsed] = parse({**raw, **times})
    assert parsed.signal.occurred_at == expected


def test_a_proxy_open_is_a_machines_and_a_click_keys_its_link() -> None:
    [proxy] = parse(event(event="proxy_open"))
    assert proxy.signal.machine and proxy.signal.fields == {"event": "proxy_open"}
    [click] = parse(event(event="click", link="https://example.com/click/me"))
    assert click.signal.url == "https://example.com/click/me" and not click.signal.machine
    assert click.signal.key == dedup_key(
        "brevo", "<m-1@relay>", "click", 1604933654, "a@example.com", "https://example.com/click/me"
    )
    [again] = parse(event(event="click", link="https://example.com/other"))
    assert again.signal.key != click.signal.key  # two links clicked at the same second are two clicks
    [opened] = parse(event(event="opened", link="https://ignored.example/"))
    assert opened.signal.url is None


def test_personal_fields_are_only_in_what_is_sealed() -> None:
    [parsed] = parse(event(event="hard_bounce", reason="550 <a@example.com>: user unknown", sending_ip="198.51.100.4"))
    record = parsed.signal.to_record()
    clear, personal = split_personal({"signal": record, "correlation": {"email": parsed.correlation.email}})
    assert "a@example.com" not in json.dumps(clear) and "198.51.100.4" not in json.dumps(clear)
    assert personal["signal.detail"].startswith("550") and personal["signal.raw"]["email"] == "a@example.com"


@pytest.mark.parametrize(
    "change, error",
    [({"event": None}, "event"), ({"email": ""}, "email"), ({"ts_event": "soon"}, "ts_event"), ({"ts_epoch": [1]}, "ts_epoch")],
)
def test_a_malformed_event_is_quarantined_alone(change: dict[str, object], error: str) -> None:
    body = json.dumps([event(), event(**change)]).encode()
    batch = brevo.parse(body, NOW)
    assert len(batch.events) == 1 and len(batch.quarantined) == 1 and error in batch.quarantined[0].error
