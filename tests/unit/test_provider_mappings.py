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

from domain.mappings import BUILTIN_MAPPINGS, LATER_PROVIDERS, without_builtin_later_mappings
from domain.mappings.target import Target
from domain.rules import DEFAULT_RULESET, Ruleset
from interface.providers import brevo, mailgun, postmark, ses

NOW = datetime(2026, 3, 14, 13, 0, tzinfo=UTC)
CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "CONTRACT.md"
SECTION_TITLES = {"mailgun": "**Mailgun**", "brevo": "**Brevo**", "postmark": "**Postmark**", "ses": "**Amazon SES**"}


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


# ---- Postmark ---------------------------------------------------------------------------------

POSTMARK_BOUNCES = [  # every bounce type Postmark documents, with its TypeCode
    ("HardBounce", 1, ("hard_bounce", "unknown_recipient", None)),
    ("Transient", 2, ("soft_bounce", "will_retry", None)),
    ("Unsubscribe", 16, ("unsubscribed", None, None)),
    ("Subscribe", 32, (None, None, None)),
    ("AutoResponder", 64, (None, None, None)),
    ("AddressChange", 128, (None, None, None)),
    ("DnsError", 256, ("soft_bounce", "domain_not_found", None)),
    ("SpamNotification", 512, ("soft_bounce", "spam_reject", None)),
    ("OpenRelayTest", 1024, (None, None, None)),
    ("Unknown", 2048, ("soft_bounce", "other", None)),
    ("SoftBounce", 4096, ("soft_bounce", "will_retry", None)),
    ("VirusNotification", 8192, ("soft_bounce", "content_rejected", None)),
    ("ChallengeVerification", 16384, (None, None, None)),
    ("BadEmailAddress", 100000, ("invalid_address", None, None)),
    ("SpamComplaint", 100001, ("spam_complaint", None, None)),
    ("ManuallyDeactivated", 100002, ("rejected", "recipient_blocked", None)),
    ("Unconfirmed", 100003, ("send_error", "technical", None)),
    ("Blocked", 100006, ("soft_bounce", "ip_reputation", None)),
    ("SMTPApiError", 100007, ("send_error", "technical", None)),
    ("InboundError", 100008, ("send_error", "technical", None)),
    ("DMARCPolicy", 100009, ("rejected", "sender_blocked", None)),
    ("TemplateRenderingFailed", 100010, ("send_error", "technical", None)),
    ("SomethingNew", 200000, ("soft_bounce", "other", None)),  # RecordType:Bounce
]


@pytest.mark.parametrize("type_, code, expected", POSTMARK_BOUNCES, ids=[t for t, _, _ in POSTMARK_BOUNCES])
def test_postmark_bounce_types(type_: str, code: int, expected: tuple[str | None, str | None, str | None]) -> None:
    record = {"RecordType": "Bounce", "Type": type_, "TypeCode": code, "MessageID": "m", "Email": "a@example.com"}
    body = json.dumps({**record, "BouncedAt": "2016-04-27T16:28:50.3963933-04:00"}).encode()
    assert mapped("postmark", postmark.parse(body, NOW).events) == expected


POSTMARK_RECORDS = [
    ({"RecordType": "Delivery", "DeliveredAt": "2014-08-01T13:28:10Z"}, ("delivered", None, None)),
    ({"RecordType": "Open", "ReceivedAt": "2016-04-27T16:21:41Z"}, ("opened", None, None)),
    (
        {"RecordType": "Click", "ReceivedAt": "2017-10-25T15:21:11Z", "OriginalLink": "https://x.example/"},
        ("clicked", None, None),
    ),
    (
        {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "BouncedAt": "2016-04-27T16:28:50Z"},
        ("spam_complaint", None, None),
    ),
    (
        {
            "RecordType": "SubscriptionChange",
            "ChangedAt": "2022-06-05T17:17:32Z",
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
        },
        ("unsubscribed", None, None),
    ),
    (
        {
            "RecordType": "SubscriptionChange",
            "ChangedAt": "2022-06-05T17:17:32Z",
            "SuppressSending": True,
            "SuppressionReason": "HardBounce",
        },
        ("hard_bounce", "unknown_recipient", None),
    ),
    (
        {
            "RecordType": "SubscriptionChange",
            "ChangedAt": "2022-06-05T17:17:32Z",
            "SuppressSending": True,
            "SuppressionReason": "SpamComplaint",
        },
        ("spam_complaint", None, None),
    ),
    ({"RecordType": "SubscriptionChange", "ChangedAt": "2022-06-05T17:17:32Z", "SuppressSending": False}, (None, None, None)),
]


@pytest.mark.parametrize("record, expected", POSTMARK_RECORDS, ids=[json.dumps(r) for r, _ in POSTMARK_RECORDS])
def test_postmark_records(record: dict[str, Any], expected: tuple[str | None, str | None, str | None]) -> None:
    body = json.dumps({"MessageID": "m", "Recipient": "a@example.com", "Email": "a@example.com", **record}).encode()
    assert mapped("postmark", postmark.parse(body, NOW).events) == expected


# ---- Amazon SES -------------------------------------------------------------------------------

SES_BOUNCES = [  # every bounce type and subtype SES documents
    ("Undetermined", "Undetermined", ("soft_bounce", "other", None)),
    ("Permanent", "General", ("hard_bounce", "other", None)),
    ("Permanent", "NoEmail", ("hard_bounce", "unknown_recipient", None)),
    ("Permanent", "Suppressed", ("rejected", "previously_bounced", None)),
    ("Permanent", "OnAccountSuppressionList", ("rejected", "previously_bounced", None)),
    ("Transient", "General", ("soft_bounce", "other", None)),
    ("Transient", "MailboxFull", ("soft_bounce", "mailbox_problem", None)),
    ("Transient", "MessageTooLarge", ("soft_bounce", "content_rejected", None)),
    ("Transient", "ContentRejected", ("soft_bounce", "content_rejected", None)),
    ("Transient", "AttachmentRejected", ("soft_bounce", "content_rejected", None)),
]


def ses_events(message: dict[str, Any]) -> list[Any]:
    mail = {"timestamp": "2016-10-14T05:02:16.645Z", "destination": ["a@example.com"], **message.pop("mail", {})}
    envelope = {"Type": "Notification", "MessageId": "m-1", "Message": json.dumps({**message, "mail": mail}), "TopicArn": "t"}
    return ses.parse(json.dumps(envelope).encode(), NOW).events


@pytest.mark.parametrize("kind", ["eventType", "notificationType"])  # event publishing and identity notifications
@pytest.mark.parametrize("bounce_type, subtype, expected", SES_BOUNCES, ids=[f"{t}/{s}" for t, s, _ in SES_BOUNCES])
def test_ses_bounces(kind: str, bounce_type: str, subtype: str, expected: tuple[str | None, str | None, str | None]) -> None:
    bounce = {"bounceType": bounce_type, "bounceSubType": subtype, "bouncedRecipients": [{"emailAddress": "a@example.com"}]}
    assert mapped("ses", ses_events({kind: "Bounce", "bounce": bounce})) == expected


SES_EVENTS = [
    ({"eventType": "Send", "send": {}}, ("queued", None, None)),
    ({"eventType": "Delivery", "delivery": {"recipients": ["a@example.com"]}}, ("delivered", None, None)),
    ({"notificationType": "Delivery", "delivery": {"recipients": ["a@example.com"]}}, ("delivered", None, None)),
    ({"eventType": "Open", "open": {"timestamp": "2017-08-09T22:00:19.652Z"}}, ("opened", None, None)),
    ({"eventType": "Click", "click": {"link": "https://x.example/"}}, ("clicked", None, None)),
    (
        {"eventType": "Complaint", "complaint": {"complainedRecipients": [{"emailAddress": "a@example.com"}]}},
        ("spam_complaint", None, None),
    ),
    ({"notificationType": "Complaint", "complaint": {"complaintFeedbackType": "abuse"}}, ("spam_complaint", None, None)),
    ({"eventType": "Bounce", "bounce": {}}, ("soft_bounce", "other", None)),
    ({"eventType": "Reject", "reject": {"reason": "Bad content"}}, ("rejected", "content_rejected", None)),
    ({"eventType": "Rendering Failure", "failure": {"errorMessage": "no attribute"}}, ("send_error", "technical", None)),
    ({"eventType": "DeliveryDelay", "deliveryDelay": {"delayType": "MailboxFull"}}, ("soft_bounce", "will_retry", None)),
    ({"eventType": "Subscription", "subscription": {"source": "UnsubscribeHeader"}}, (None, None, None)),
    ({"eventType": "SomethingNew"}, (None, None, None)),
]


@pytest.mark.parametrize("message, expected", SES_EVENTS, ids=[json.dumps(m)[:60] for m, _ in SES_EVENTS])
def test_ses_events(message: dict[str, Any], expected: tuple[str | None, str | None, str | None]) -> None:
    assert mapped("ses", ses_events(dict(message))) == expected


# ---- documents --------------------------------------------------------------------------------


def test_a_ruleset_document_states_a_later_providers_mapping_only_where_it_differs() -> None:
    compact = without_builtin_later_mappings(DEFAULT_RULESET.to_document())
    assert set(compact["provider_mappings"]) == set(BUILTIN_MAPPINGS) - set(LATER_PROVIDERS)
    assert Ruleset.from_document(compact).provider_mappings == DEFAULT_RULESET.provider_mappings  # read back: built in
    patched = DEFAULT_RULESET.patched({"provider_mappings": {"mailgun": {"event:opened": "clicked"}}}, version="7")
    stated = without_builtin_later_mappings(patched.to_document())["provider_mappings"]
    assert stated["mailgun"]["event:opened"] == "clicked" and "ses" not in stated
    again = Ruleset.from_document(without_builtin_later_mappings(patched.to_document()))
    assert again.map("mailgun", {"event": "opened"}).code == "clicked"
    assert again.map("ses", {"eventType": "Open"}).code == "opened"
