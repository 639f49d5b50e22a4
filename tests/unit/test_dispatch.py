"""Dispatch outcomes (CONTRACT §6 "Dispatch"): every rule, in the order the contract gives, and its edges.

``dispatch_outcome`` decides what a planned recipient becomes when its mailing is sent; the
first rule that applies wins, so each test also shows which rules it beats.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.contacts import ContactState
from domain.dispatch import MailingTerms, dispatch_outcome

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PLAIN = MailingTerms(email_type=None, prevent_duplicates=False, expires_at=None)
NEWS = MailingTerms(email_type="news", prevent_duplicates=True, expires_at=NOW + timedelta(days=1))


def outcome(
    email: str | None = "ann@example.test",
    contact: ContactState | None = None,
    terms: MailingTerms = PLAIN,
    taken: set[str] | None = None,
    now: datetime = NOW,
) -> str:
    return dispatch_outcome(email, contact or ContactState(), terms, set() if taken is None else taken, now)


def every_rule_applies() -> ContactState:
    """A contact for whom every cancel rule after "no email" would apply."""
    return ContactState(do_not_use_email=True, email_is_actual=False, unsubscribed_types=frozenset({"news"}))


# ---- the happy path ------------------------------------------------------------------------------


def test_a_reachable_contact_is_sent_to_the_provider_and_its_address_is_taken():
    taken: set[str] = set()
    assert outcome("ann@example.test", terms=NEWS, taken=taken) == "sent_to_provider"
    assert taken == {"ann@example.test"}


def test_the_taken_address_is_normalised():
    taken: set[str] = set()
    assert outcome("  Ann@Example.TEST ", taken=taken) == "sent_to_provider"
    assert taken == {"ann@example.test"}


# ---- 1. no email -----------------------------------------------------------------------------------


@pytest.mark.parametrize("email", [None, "", "   ", "\t\n"])
def test_no_email_is_canceled_no_email(email):
    assert outcome(email) == "canceled_no_email"


@pytest.mark.parametrize("email", [None, ""])
def test_no_email_comes_before_every_other_rule(email):
    expired = MailingTerms("news", True, NOW - timedelta(days=1))
    assert outcome(email, every_rule_applies(), expired) == "canceled_no_email"


# ---- 2. do_not_use_email ----------------------------------------------------------------------------


def test_do_not_use_email_is_canceled_unsubscribed_all():
    assert outcome(contact=ContactState(do_not_use_email=True)) == "canceled_unsubscribed_all"


def test_do_not_use_email_comes_before_invalid_type_duplicate_and_expiry():
    expired = MailingTerms("news", True, NOW - timedelta(days=1))
    taken = {"not an address"}
    assert outcome("not an address", every_rule_applies(), expired, taken) == "canceled_unsubscribed_all"
    assert taken == {"not an address"}


# ---- 3. email not actual / not an address -----------------------------------------------------------


def test_an_email_not_actual_is_canceled_invalid_email():
    assert outcome(contact=ContactState(email_is_actual=False)) == "canceled_invalid_email"


@pytest.mark.parametrize(
    "email",
    [
        "ann",
        "ann@",
        "@example.test",
        "ann@example",
        "ann@@example.test",
        "ann@exa@mple.test",
        "ann smith@example.test",
        "ann@example .test",
        "ann@example.",
        "ann@.test",
        "ann@example.test\nbob@example.test",
    ],
)
def test_a_malformed_address_is_canceled_invalid_email(email):
    assert outcome(email) == "canceled_invalid_email"


@pytest.mark.parametrize("email", ["a@b.c", "ann.smith+news@mail.example.test", "ANN@EXAMPLE.TEST", " ann@example.test "])
def test_well_formed_addresses_are_sent(email):
    assert outcome(email) == "sent_to_provider"


def test_invalid_email_comes_before_type_duplicate_and_expiry():
    expired = MailingTerms("news", True, NOW - timedelta(days=1))
    contact = ContactState(email_is_actual=False, unsubscribed_types=frozenset({"news"}))
    assert outcome("ann@example.test", contact, expired, {"ann@example.test"}) == "canceled_invalid_email"
    assert outcome("ann", ContactState(unsubscribed_types=frozenset({"news"})), expired, {"ann"}) == "canceled_invalid_email"


# ---- 4. email type unsubscribed ---------------------------------------------------------------------


def test_an_unsubscribed_email_type_is_canceled_unsubscribed_type():
    contact = ContactState(unsubscribed_types=frozenset({"promo", "news"}))
    assert outcome(contact=contact, terms=MailingTerms("news", False, None)) == "canceled_unsubscribed_type"


def test_other_unsubscribed_types_do_not_cancel():
    contact = ContactState(unsubscribed_types=frozenset({"promo"}))
    assert outcome(contact=contact, terms=MailingTerms("news", False, None)) == "sent_to_provider"


@pytest.mark.parametrize("email_type", [None, ""])
def test_a_mailing_without_email_type_ignores_type_unsubscribes(email_type):
    contact = ContactState(unsubscribed_types=frozenset({"news", ""}))
    assert outcome(contact=contact, terms=MailingTerms(email_type, False, None)) == "sent_to_provider"


def test_type_unsubscribe_comes_before_duplicate_and_expiry():
    expired = MailingTerms("news", True, NOW - timedelta(days=1))
    contact = ContactState(unsubscribed_types=frozenset({"news"}))
    assert outcome("ann@example.test", contact, expired, {"ann@example.test"}) == "canceled_unsubscribed_type"


# ---- 5. duplicate -----------------------------------------------------------------------------------


def test_an_address_already_taken_is_canceled_duplicate_email():
    taken = {"ann@example.test"}
    assert outcome("ann@example.test", terms=NEWS, taken=taken) == "canceled_duplicate_email"
    assert taken == {"ann@example.test"}


def test_duplicates_are_found_after_normalisation():
    taken: set[str] = set()
    assert outcome("ann@example.test", terms=NEWS, taken=taken) == "sent_to_provider"
    assert outcome(" ANN@example.test", terms=NEWS, taken=taken) == "canceled_duplicate_email"


def test_duplicates_are_sent_when_the_mailing_allows_them():
    taken = {"ann@example.test"}
    assert outcome("ann@example.test", terms=PLAIN, taken=taken) == "sent_to_provider"


def test_another_address_is_not_a_duplicate():
    taken = {"bob@example.test"}
    assert outcome("ann@example.test", terms=NEWS, taken=taken) == "sent_to_provider"
    assert taken == {"bob@example.test", "ann@example.test"}


def test_duplicate_comes_before_expiry():
    expired = MailingTerms(None, True, NOW - timedelta(days=1))
    assert outcome("ann@example.test", terms=expired, taken={"ann@example.test"}) == "canceled_duplicate_email"


def test_a_canceled_recipient_does_not_take_its_address():
    """Only a sent recipient makes a later one a duplicate."""
    taken: set[str] = set()
    for contact in (ContactState(do_not_use_email=True), ContactState(email_is_actual=False)):
        outcome("ann@example.test", contact, NEWS, taken)
    outcome("ann@example.test", ContactState(unsubscribed_types=frozenset({"news"})), NEWS, taken)
    assert taken == set()
    assert outcome("ann@example.test", terms=NEWS, taken=taken) == "sent_to_provider"


# ---- 6. expired -------------------------------------------------------------------------------------


def test_a_mailing_past_its_expiry_is_stopped_expired():
    expired = MailingTerms(None, False, NOW - timedelta(seconds=1))
    taken: set[str] = set()
    assert outcome(terms=expired, taken=taken) == "stopped_expired"
    assert taken == set()  # an expired recipient is not sent, so it takes nothing


def test_expiry_is_exclusive_the_moment_itself_still_sends():
    assert outcome(terms=MailingTerms(None, False, NOW)) == "sent_to_provider"
    assert outcome(terms=MailingTerms(None, False, NOW), now=NOW + timedelta(microseconds=1)) == "stopped_expired"


def test_a_future_expiry_or_none_sends():
    assert outcome(terms=MailingTerms(None, False, NOW + timedelta(seconds=1))) == "sent_to_provider"
    assert outcome(terms=MailingTerms(None, False, None), now=datetime.max.replace(tzinfo=UTC)) == "sent_to_provider"


# ---- an audience in order ---------------------------------------------------------------------------


def test_an_audience_in_order():
    terms = MailingTerms("news", True, NOW + timedelta(hours=1))
    audience = [
        ("ann@example.test", ContactState()),
        (None, ContactState()),
        ("bob@example.test", ContactState(do_not_use_email=True)),
        ("bob@example.test", ContactState()),
        ("ANN@example.test", ContactState()),
        ("cat@example", ContactState()),
        ("dan@example.test", ContactState(unsubscribed_types=frozenset({"news"}))),
        ("dan@example.test", ContactState(unsubscribed_types=frozenset({"promo"}))),
    ]
    taken: set[str] = set()
    codes = [dispatch_outcome(email, contact, terms, taken, NOW) for email, contact in audience]
    assert codes == [
        "sent_to_provider",
        "canceled_no_email",
        "canceled_unsubscribed_all",
        "sent_to_provider",
        "canceled_duplicate_email",
        "canceled_invalid_email",
        "canceled_unsubscribed_type",
        "sent_to_provider",
    ]
    assert taken == {"ann@example.test", "bob@example.test", "dan@example.test"}
