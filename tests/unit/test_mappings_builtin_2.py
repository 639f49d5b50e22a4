"""The built-in ruleset "builtin-2" (issue 17): UniOne and SendGrid read as their own tools read them.

Table tests of the mappings (CONTRACT §6), the same rows under version 1 (which never changes), and real or
documented payloads (tests/fixtures/README.md names each source) parsed and folded under both versions.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from domain.contacts import ContactState, apply_signal_effect
from domain.fold import RecipientState, fold
from domain.mappings import BUILTIN_MAPPINGS, BUILTIN_MAPPINGS_2, MAPPING_FIELDS
from domain.mappings.target import Target
from domain.rules import BUILTIN_RULESETS, DEFAULT_RULESET, LATEST_BUILTIN, Ruleset
from domain.signals import system_signal
from interface.providers import sendgrid, unione

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2026, 3, 14, 13, 0, 0, tzinfo=UTC)
V1, V2 = DEFAULT_RULESET, LATEST_BUILTIN

# ---- UniOne ----------------------------------------------------------------------------------------------

# (delivery_status of a hard_bounced event, builtin-2's target, version 1's target)
UNIONE_HARD_BOUNCED = [
    ("err_spam_skipped", ("rejected", "sender_blocked", None), ("rejected", "recipient_blocked", None)),
    ("err_will_retry", ("soft_bounce", "will_retry", None), ("hard_bounce", "other", None)),
    ("err_resend", ("soft_bounce", "will_retry", None), ("hard_bounce", "other", None)),
    ("err_retry_letter", ("soft_bounce", "will_retry", None), ("hard_bounce", "other", None)),
    ("err_giveup", ("soft_bounce", "other", None), ("hard_bounce", "other", None)),
    ("err_unreachable", ("soft_bounce", "other", None), ("hard_bounce", "other", None)),
    ("err_destination_misconfigured", ("soft_bounce", "other", None), ("hard_bounce", "other", None)),
    ("err_no_smtp", ("hard_bounce", "domain_not_found", None), ("hard_bounce", "other", None)),
    ("not_sent", ("send_error", "technical", None), ("hard_bounce", "other", None)),
    # unchanged rows
    ("err_user_unknown", ("hard_bounce", "unknown_recipient", None), ("hard_bounce", "unknown_recipient", None)),
    ("err_no_dns", ("hard_bounce", "domain_not_found", None), ("hard_bounce", "domain_not_found", None)),
    ("err_mailbox_full", ("hard_bounce", "mailbox_problem", None), ("hard_bounce", "mailbox_problem", None)),
    ("err_blacklisted", ("rejected", "recipient_blocked", None), ("rejected", "recipient_blocked", None)),
    ("err_lost", ("send_error", None, None), ("send_error", None, None)),
    ("err_something_new", ("hard_bounce", "other", None), ("hard_bounce", "other", None)),
]


def target(rules: Ruleset, source: str, fields: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    t = rules.map(source, fields)
    return t.code, t.reason, t.contact_effect


@pytest.mark.parametrize("delivery_status, v2, v1", UNIONE_HARD_BOUNCED)
def test_unione_hard_bounced_by_delivery_status(delivery_status, v2, v1):
    fields = {"status": "hard_bounced", "delivery_status": delivery_status}
    assert target(V2, "unione", fields) == v2
    assert target(V1, "unione", fields) == v1


@pytest.mark.parametrize("delivery_status", [row[0] for row in UNIONE_HARD_BOUNCED])
def test_unione_sender_or_provider_side_failures_never_suppress_a_contact(delivery_status):
    """Only a failure of the address itself (unknown, its domain gone, its mailbox) may suppress the contact."""
    code, reason, effect = target(V2, "unione", {"status": "hard_bounced", "delivery_status": delivery_status})
    if code == "hard_bounce":
        assert reason in ("unknown_recipient", "domain_not_found", "mailbox_problem", "spam_reject", "other")
        assert delivery_status.startswith("err_") and delivery_status not in (
            "err_spam_skipped",
            "err_will_retry",
            "err_resend",
            "err_retry_letter",
            "err_giveup",
            "err_unreachable",
            "err_destination_misconfigured",
        )
    assert effect is None


@pytest.mark.parametrize(
    "traffic_type, v2",
    [("machine", "opened_machine"), ("protected", "opened_machine"), ("human", "opened"), ("MACHINE", "opened_machine")],
)
def test_unione_open_by_traffic_type(traffic_type, v2):
    fields = {"status": "opened", "traffic_type": traffic_type}
    assert target(V2, "unione", fields) == (v2, None, None)
    assert target(V1, "unione", fields) == ("opened", None, None)
    assert target(V2, "unione", {"status": "opened"}) == ("opened", None, None)


# ---- SendGrid --------------------------------------------------------------------------------------------

# (status fields, builtin-2's target, version 1's target)
SENDGRID = [
    ({"event": "dropped", "reason": "Invalid"}, ("invalid_address", None, None), ("rejected", "recipient_blocked", None)),
    (
        {"event": "dropped", "reason": "Bounced Address"},
        ("rejected", "previously_bounced", None),
        ("rejected", "recipient_blocked", None),
    ),
    (
        {"event": "dropped", "reason": "Unsubscribed Address"},
        ("rejected", "recipient_blocked", "unsubscribe"),
        ("rejected", "recipient_blocked", None),
    ),
    (
        {"event": "dropped", "reason": "Spam Reporting Address"},
        ("rejected", "recipient_blocked", "suppress"),
        ("rejected", "recipient_blocked", None),
    ),
    (
        {"event": "dropped", "reason": "Spam Content (if spam checker app enabled)"},
        ("rejected", "content_rejected", None),
        ("rejected", "recipient_blocked", None),
    ),
    (
        {"event": "dropped", "reason": "Invalid SMTPAPI header"},
        ("send_error", "technical", None),
        ("rejected", "recipient_blocked", None),
    ),
    (
        {"event": "dropped", "reason": "Recipient List over Package Quota"},
        ("send_error", "technical", None),
        ("rejected", "recipient_blocked", None),
    ),
    (
        {"event": "dropped", "reason": "Something else"},
        ("rejected", "recipient_blocked", None),
        ("rejected", "recipient_blocked", None),
    ),
    ({"event": "dropped"}, ("rejected", "recipient_blocked", None), ("rejected", "recipient_blocked", None)),
]
CLASSIFICATIONS = [
    ("Invalid Address", ("hard_bounce", "unknown_recipient"), ("hard_bounce", "unknown_recipient")),
    ("Mailbox Unavailable", ("hard_bounce", "mailbox_problem"), ("hard_bounce", "mailbox_problem")),
    ("Reputation", ("soft_bounce", "ip_reputation"), ("soft_bounce", "ip_reputation")),
    ("Content", ("soft_bounce", "content_rejected"), ("soft_bounce", "content_rejected")),
    ("Technical", ("soft_bounce", "technical"), ("soft_bounce", "technical")),
    ("Frequency or Volume Too High", ("soft_bounce", "rate_limited"), ("soft_bounce", "rate_limited")),
    ("Unclassified", ("hard_bounce", "other"), ("soft_bounce", "other")),  # the type decides
    (None, ("hard_bounce", "other"), ("soft_bounce", "other")),
]
for classification, bounce, blocked in CLASSIFICATIONS:
    for bounce_type, expected in (("bounce", bounce), ("blocked", blocked)):
        fields = {"event": "bounce", "type": bounce_type}
        if classification is not None:
            fields["bounce_classification"] = classification
        SENDGRID.append((fields, (*expected, None), ("hard_bounce" if bounce_type == "bounce" else "soft_bounce", "other", None)))
SENDGRID += [
    ({"event": "group_resubscribe"}, (None, None, "resubscribe"), (None, None, None)),
    ({"event": "group_unsubscribe"}, ("unsubscribed", None, None), ("unsubscribed", None, None)),
    ({"event": "deferred"}, ("soft_bounce", "will_retry", None), ("soft_bounce", "will_retry", None)),
]


@pytest.mark.parametrize("fields, v2, v1", SENDGRID)
def test_sendgrid_mapping(fields, v2, v1):
    assert target(V2, "sendgrid", fields) == v2
    assert target(V1, "sendgrid", fields) == v1


@pytest.mark.parametrize("classification", ["Reputation", "Content", "Technical", "Frequency or Volume Too High"])
def test_sendgrid_sender_side_bounces_never_suppress_for_good(classification):
    for bounce_type in ("bounce", "blocked"):
        code, _, effect = target(
            V2, "sendgrid", {"event": "bounce", "type": bounce_type, "bounce_classification": classification}
        )
        assert code == "soft_bounce" and effect is None


# ---- version 1 stays, builtin-2 keeps it ------------------------------------------------------------------


def test_version_1_is_the_built_in_mapping_it_always_was():
    assert V1.version == "1" and V1 is BUILTIN_RULESETS["1"]
    assert {p: dict(m) for p, m in V1.provider_mappings.items()} == BUILTIN_MAPPINGS
    assert V1.map("unione", {"status": "hard_bounced", "delivery_status": "err_spam_skipped"}) == Target(
        "rejected", "recipient_blocked"
    )


def test_builtin_2_keeps_every_key_of_version_1_and_differs_only_in_mappings():
    for provider, mapping in BUILTIN_MAPPINGS.items():
        assert set(mapping) <= set(BUILTIN_MAPPINGS_2[provider])
        for key in mapping:
            field_name = key.partition(":")[0]
            assert field_name in MAPPING_FIELDS[provider]
    assert set(V2.changes_from(V1)) == {"provider_mappings"}
    assert V2.version == "builtin-2"
    assert Ruleset.from_document(V2.to_document()) == V2


def test_a_stored_version_1_document_without_a_providers_mapping_uses_the_built_in_one():
    """A version stored before a provider existed lists no mapping for it: merged over the built-in default,
    that provider maps as version 1 maps it (and a provider it does list keeps what it says)."""
    document = V1.patched({"provider_mappings": {"unione": {"status:spam": "hard_bounce"}}}, version="2").to_document()
    del document["provider_mappings"]["sendgrid"]
    stored = Ruleset.from_document(document)
    assert stored.map("sendgrid", {"event": "dropped", "reason": "Invalid"}) == V1.map("sendgrid", {"event": "dropped"})
    assert stored.provider_mappings["sendgrid"] == V1.provider_mappings["sendgrid"]
    assert stored.map("unione", {"status": "spam"}).code == "hard_bounce"
    # a stored document from before the key fields of builtin-2 loads, and maps new signals as version 1 did
    assert stored.map("unione", {"status": "opened", "traffic_type": "machine"}).code == "opened"


# ---- real and documented payloads, parsed and folded --------------------------------------------------------


def signed(body: bytes, key: str = "k") -> bytes:
    digest = hashlib.md5(body.replace(b"AUTH_PLACEHOLDER", key.encode())).hexdigest()
    return body.replace(b"AUTH_PLACEHOLDER", digest.encode())


def fold_one(signal, rules):
    state, _ = fold(RecipientState(), system_signal("sent_to_provider", key="d", at=signal.received_at), rules)
    return fold(state, signal, rules)


def test_unione_traffic_types_fixture():
    body = signed((FIXTURES / "unione" / "opened-traffic-types.json").read_bytes())
    assert unione.verify(body, ["k"])
    batch = unione.parse(body, NOW)
    protected, machine, human, click, skipped = (e.signal for e in batch.events)
    assert protected.fields == {"status": "opened", "traffic_type": "protected"}
    assert machine.fields == {"status": "opened", "traffic_type": "machine"}
    assert click.fields == {"status": "clicked"}  # a click's traffic type is not a status field
    expected = [
        (protected, "opened_machine", "opened"),
        (machine, "opened_machine", "opened"),
        (human, "opened", "opened"),
        (click, "clicked", "clicked"),
        (skipped, "rejected", "rejected"),
    ]
    for signal, under_v2, under_v1 in expected:
        assert fold_one(signal, V2)[1].maps_to == under_v2
        assert fold_one(signal, V1)[1].maps_to == under_v1
    state, step = fold_one(protected, V2)
    assert (state.response, state.opens) == ("opened_machine", 0)  # not counted unless count_machine_opens
    assert fold_one(skipped, V2)[1].reason == "sender_blocked"


def sendgrid_batch(name: str):
    return sendgrid.parse((FIXTURES / "sendgrid" / name).read_bytes(), NOW)


def test_sendgrid_anymail_events():
    batch = sendgrid_batch("anymail-events.json")
    assert batch.quarantined == [] and batch.notices == []
    by_id = {e.signal.raw["sg_event_id"]: e.signal for e in batch.events}
    invalid, unsubscribed = by_id["3NPOePGOTkeM_U3fgWApfg"], by_id["oxy9OLwMTAy5EsuZn1qhIg"]
    assert invalid.fields == {"event": "dropped", "reason": "Invalid"}
    assert unsubscribed.fields == {"event": "dropped", "reason": "Unsubscribed Address"}
    assert fold_one(invalid, V2)[1].maps_to == "invalid_address"
    _, step = fold_one(unsubscribed, V2)
    assert (step.maps_to, step.contact_effect) == ("rejected", "unsubscribe")
    assert apply_signal_effect(ContactState(), step, "news", V2).do_not_use_email is True
    bounce = by_id["lC0Rc-FuQmKbnxCWxX1jRQ"]
    assert bounce.fields == {"event": "bounce", "type": "bounce"}  # no classification in this older payload
    assert fold_one(bounce, V2)[1].maps_to == "hard_bounce"


def test_sendgrid_discourse_unclassified_block_is_a_soft_bounce():
    [event] = sendgrid_batch("discourse-unclassified-blocked.json").events
    assert event.signal.fields == {"event": "bounce", "bounce_classification": "Unclassified", "type": "blocked"}
    _, step = fold_one(event.signal, V2)
    assert (step.maps_to, step.reason) == ("soft_bounce", "other")


def test_sendgrid_documented_events():
    batch = sendgrid_batch("documented-events.json")
    assert batch.quarantined == []
    [notice] = batch.notices
    assert (notice.provider, notice.kind) == ("sendgrid", "account_status_change")
    assert notice.raw["type"] == "compliance_suspend"
    maps = {}
    for e in batch.events:
        _, step = fold_one(e.signal, V2)
        maps[e.signal.raw["sg_event_id"]] = (step.maps_to, step.reason, step.contact_effect)
    assert list(maps.values()) == [
        ("hard_bounce", "unknown_recipient", None),
        ("hard_bounce", "mailbox_problem", None),
        ("soft_bounce", "ip_reputation", None),
        ("soft_bounce", "content_rejected", None),
        ("soft_bounce", "technical", None),
        ("soft_bounce", "rate_limited", None),
        ("rejected", "previously_bounced", None),
        ("rejected", "recipient_blocked", "suppress"),
        ("unsubscribed", None, None),
        (None, None, "resubscribe"),
    ]


def test_sendgrid_account_status_change_is_a_notice_keyed_by_its_event_id():
    event = orjson.loads((FIXTURES / "sendgrid" / "documented-events.json").read_bytes())[-1]
    first = sendgrid.parse(orjson.dumps([event]), NOW).notices[0]
    again = sendgrid.parse(orjson.dumps([event]), NOW).notices[0]
    assert first.key == again.key
    other = sendgrid.parse(orjson.dumps([{**event, "sg_event_id": "another"}]), NOW).notices[0]
    assert other.key != first.key
    without_id = {k: v for k, v in event.items() if k != "sg_event_id"}
    assert sendgrid.parse(orjson.dumps([without_id]), NOW).notices[0].kind == "account_status_change"
