"""The built-in mappings of the providers added by issue 17 (CONTRACT §6): every documented event type and
bounce class, parsed from a provider payload, maps to the response and reason the contract's table says; and
the contract's table of each provider is its built-in mapping, row for row."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.mappings import BUILTIN_MAPPINGS
from domain.mappings.target import Target
from domain.rules import DEFAULT_RULESET
from interface.providers import brevo, mailgun

NOW = datetime(2026, 3, 14, 13, 0, tzinfo=UTC)
CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "CONTRACT.md"
SECTION_TITLES = {"mailgun": "**Mailgun**", "brevo": "**Brevo**"}


def contract_table(provider: str) -> dict[str, Target]:
    """The mapping table under the provider's paragraph in CONTRACT §6, as targets by key."""
    text = CONTRACT.read_text(encoding="utf-8")
    start = text.index("\n" + SECTION_TITLES[provider]) + 1
    lines = text[start:].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| key |"))
    table: dict[str, Target] = {}
    for line in lines[first + 2 :]:
        if not line.startswith("|"):
            break
        keys, code, reason, effect = (cell.strip() for cell in line.strip("|").split("|"))
        target = (
            Target(None)
            if code == "informational"
            else Target(code.strip("`"), reason.strip("`") or None, effect.strip("`") or None)
        )
        for key in re.findall(r"`([^`]+)`", keys):
            table[key] = target
    return table


@pytest.mark.parametrize("provider", sorted(SECTION_TITLES))
def test_the_contract_table_is_the_built_in_mapping(provider: str) -> None:
    assert contract_table(provider) == BUILTIN_MAPPINGS[provider]


def mapped(source: str, events: list[Any]) -> tuple[str | None, str | None, str | None]:
    [event] = events
    target = DEFAULT_RULESET.map(source, event.signal.fields)
    return target.code, target.reason, target.contact_effect


# ---- Mailgun ----------------------------------------------------------------------------------

MAILGUN_EVENTS = [
    ({"event": "accepted"}, ("queued", None, None)),
    ({"event": "delivered"}, ("delivered", None, None)),
    ({"event": "opened"}, ("opened", None, None)),
    ({"event": "clicked", "url": "https://example.com/test"}, ("clicked", None, None)),
    ({"event": "unsubscribed"}, ("unsubscribed", None, None)),
    ({"event": "complained"}, ("spam_complaint", None, None)),
    ({"event": "stored"}, (None, None, None)),
    ({"event": "rejected"}, ("send_error", "technical", None)),
    ({"event": "failed", "severity": "permanent", "reason": "bounce"}, ("hard_bounce", "other", None)),
    ({"event": "failed", "severity": "permanent", "reason": "generic"}, ("hard_bounce", "other", None)),
    ({"event": "failed", "severity": "permanent", "reason": "delayed-bounce"}, ("hard_bounce", "other", None)),
    ({"event": "failed", "severity": "permanent", "reason": "suppress-bounce"}, ("rejected", "previously_bounced", None)),
    (
        {"event": "failed", "severity": "permanent", "reason": "suppress-unsubscribe"},
        ("rejected", "recipient_blocked", "unsubscribe"),
    ),
    ({"event": "failed", "severity": "permanent", "reason": "suppress-complaint"}, ("rejected", "recipient_blocked", "suppress")),
    ({"event": "failed", "severity": "permanent", "reason": "old"}, ("soft_bounce", "other", None)),
    ({"event": "failed", "severity": "temporary", "reason": "generic"}, ("soft_bounce", "will_retry", None)),
    ({"event": "failed", "severity": "temporary", "reason": "greylisted"}, ("soft_bounce", "will_retry", None)),
    ({"event": "failed", "severity": "temporary", "reason": "espblock"}, ("soft_bounce", "ip_reputation", None)),
    ({"event": "failed"}, ("soft_bounce", "other", None)),
    ({"event": "list_member_uploaded"}, (None, None, None)),
    ({"event": "something_new"}, (None, None, None)),  # kept, informational: a later ruleset may map it
]


@pytest.mark.parametrize("event, expected", MAILGUN_EVENTS, ids=[json.dumps(e) for e, _ in MAILGUN_EVENTS])
def test_mailgun_events(event: dict[str, Any], expected: tuple[str | None, str | None, str | None]) -> None:
    data = {"id": "e-1", "timestamp": 1534110422.389832, "recipient": "a@example.com", **event}
    body = json.dumps({"signature": {}, "event-data": data}).encode()
    assert mapped("mailgun", mailgun.parse(body, NOW).events) == expected


# ---- Brevo ------------------------------------------------------------------------------------

BREVO_EVENTS = [
    ("request", ("queued", None, None)),
    ("sent", ("queued", None, None)),
    ("delivered", ("delivered", None, None)),
    ("opened", ("opened", None, None)),
    ("unique_opened", ("opened", None, None)),
    ("proxy_open", ("opened_machine", None, None)),
    ("unique_proxy_open", ("opened_machine", None, None)),
    ("click", ("clicked", None, None)),
    ("unsubscribed", ("unsubscribed", None, None)),
    ("unsubscribe", ("unsubscribed", None, None)),
    ("spam", ("spam_complaint", None, None)),
    ("complaint", ("spam_complaint", None, None)),
    ("hard_bounce", ("hard_bounce", "other", None)),
    ("soft_bounce", ("soft_bounce", "other", None)),
    ("deferred", ("soft_bounce", "will_retry", None)),
    ("blocked", ("rejected", "recipient_blocked", None)),
    ("invalid_email", ("invalid_address", None, None)),
    ("error", ("send_error", "technical", None)),
    ("something_new", (None, None, None)),
]


@pytest.mark.parametrize("name, expected", BREVO_EVENTS, ids=[name for name, _ in BREVO_EVENTS])
def test_brevo_events(name: str, expected: tuple[str | None, str | None, str | None]) -> None:
    body = json.dumps({"event": name, "email": "a@example.com", "message-id": "<m@relay>", "ts_epoch": 1520363423000}).encode()
    assert mapped("brevo", brevo.parse(body, NOW).events) == expected
