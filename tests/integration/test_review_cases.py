"""Cases a marketing-ops engineer hits, found in review: each once broke, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.queries import Queries
from application.service import ResponsesApp
from domain.rules import InvalidRuleset
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key, system_signal

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def provider_event(source: str, fields: dict[str, str], at: datetime, corr: Correlation, url: str | None = None) -> ProviderEvent:
    key = dedup_key(source, fields, at, corr)
    return ProviderEvent(
        Signal(key=key, source=source, fields=fields, received_at=T0 + timedelta(days=1), occurred_at=at, url=url), corr
    )


def codes(app: ResponsesApp, mailing: str) -> dict[str, str]:
    app.wait_for_views()
    return {i["contact_id"]: i["response"]["code"] for i in Queries(app).audience(mailing)["items"]}


def test_a_ruleset_version_must_be_a_string_and_bad_ones_store_nothing(app: ResponsesApp) -> None:
    for bad in (5, "  ", ["2"]):
        with pytest.raises(InvalidRuleset) as error:
            app.define_rules({"version": bad, "count_machine_opens": True})
        assert set(error.value.errors) == {"version"}
    assert app.define_rules({"count_machine_opens": True}).version == "2"


def test_email_only_events_match_recipients_the_sender_dispatched_itself(app: ResponsesApp) -> None:
    app.create_mailing({"id": "m", "name": "M", "category": "trigger", "provider": "elasticemail"})
    app.add_audience("m", [{"contact_id": "k1", "email": "k1@example.com"}])
    opened = provider_event("elasticemail", {"status": "Opened"}, T0 + timedelta(hours=1), Correlation(email="K1@example.com"))
    assert app.record_batch(ParsedBatch(events=[opened])).unmatched == 1  # nobody was sent to it yet: kept
    sent = ProviderEvent(system_signal("sent_to_provider", key="s1", at=T0), Correlation("m", "k1"))
    assert app.record_batch(ParsedBatch(events=[sent])).accepted == 1
    assert codes(app, "m") == {"k1": "opened"}  # the parked open is claimed
    delivered = provider_event("elasticemail", {"status": "Sent"}, T0 + timedelta(minutes=1), Correlation(email="k1@example.com"))
    assert app.record_batch(ParsedBatch(events=[delivered])).accepted == 1
    assert Queries(app).side("unmatched")["items"] == []


def test_email_fallback_stays_in_the_named_mailing_and_before_the_event(app: ResponsesApp) -> None:
    for mailing, day in (("mon", 0), ("tue", 1)):
        app.create_mailing({"id": mailing, "name": mailing, "category": "bulk", "provider": "unione"})
        app.add_audience(mailing, [{"contact_id": "c", "email": "same@example.com"}])
        app.dispatch(mailing, now=T0 + timedelta(days=day))
    # An open that happened before Tuesday's sending is Monday's.
    app.record_batch(
        ParsedBatch(
            events=[
                provider_event("unione", {"status": "opened"}, T0 + timedelta(hours=5), Correlation(email="same@example.com"))
            ]
        )
    )
    assert (codes(app, "mon"), codes(app, "tue")) == ({"c": "opened"}, {"c": "sent_to_provider"})
    # An event naming its mailing but not its contact stays in that mailing.
    app.record_batch(
        ParsedBatch(
            events=[
                provider_event(
                    "unione",
                    {"status": "clicked"},
                    T0 + timedelta(days=2),
                    Correlation(mailing_id="mon", email="same@example.com"),
                    url="https://x.example/",
                )
            ]
        )
    )
    assert (codes(app, "mon"), codes(app, "tue")) == ({"c": "clicked"}, {"c": "sent_to_provider"})


def test_first_opens_are_charted_by_the_earliest_provider_time_and_include_implied_opens(app: ResponsesApp) -> None:
    app.create_mailing({"id": "m", "name": "M", "category": "bulk", "provider": "unione"})
    app.add_audience("m", [{"contact_id": c, "email": f"{c}@example.com"} for c in ("late", "clicker")])
    app.dispatch("m", now=T0)
    events = [
        provider_event("unione", {"status": "opened"}, T0 + timedelta(hours=5, minutes=1), Correlation("m", "late")),
        provider_event(
            "unione", {"status": "opened"}, T0 + timedelta(hours=1, minutes=1), Correlation("m", "late")
        ),  # arrives second
        provider_event(
            "unione",
            {"status": "clicked"},
            T0 + timedelta(hours=2, minutes=1),
            Correlation("m", "clicker"),
            url="https://x.example/",
        ),
    ]
    app.record_batch(ParsedBatch(events=events))
    app.wait_for_views()
    buckets = Queries(app).timeline("m", hours=6)["buckets"]
    assert [b["first_opens"] for b in buckets] == [0, 1, 1, 0, 0, 0]  # the click implies an open
    assert sum(b["first_opens"] for b in buckets) == Queries(app).summary("m")["unique_opens"]


def test_the_same_address_in_other_letters_does_not_revive_a_hard_bounced_email(app: ResponsesApp) -> None:
    app.create_mailing({"id": "m1", "name": "M1", "category": "bulk", "provider": "unione"})
    app.add_audience("m1", [{"contact_id": "k", "email": "kate@example.com"}])
    app.dispatch("m1", now=T0)
    bounce = provider_event(
        "unione", {"status": "hard_bounced", "delivery_status": "err_mailbox_full"}, T0, Correlation("m1", "k")
    )
    app.record_batch(ParsedBatch(events=[bounce]))
    app.change_contact("k", {"do_not_use_email": False})
    app.create_mailing({"id": "m2", "name": "M2", "category": "bulk", "provider": "unione"})
    app.add_audience("m2", [{"contact_id": "k", "email": "Kate@Example.com"}])
    assert app.dispatch("m2", now=T0)["outcomes"] == {"canceled_invalid_email": 1}
    assert Queries(app).contact("k")["flags"]["email_is_actual"] is False


def test_a_stopped_mailing_sends_nobody_added_later(app: ResponsesApp) -> None:
    app.create_mailing({"id": "s", "name": "S", "category": "bulk", "provider": "unione"})
    app.add_audience("s", [{"contact_id": "a", "email": "a@example.com"}])
    assert app.stop("s", now=T0) == 1
    app.add_audience("s", [{"contact_id": "b", "email": "b@example.com"}])
    assert app.dispatch("s", now=T0) == {"send": [], "outcomes": {"stopped_manually": 1}, "wave": 1, "remaining": 0}
    assert codes(app, "s") == {"a": "stopped_manually", "b": "stopped_manually"}


# ---- correlation keeps apart what is not one recipient's (issue 7, failure 11) ----------------------


def unmatched_reasons(app: ResponsesApp) -> list[tuple[str | None, str]]:
    app.wait_for_views()
    return [(i["correlation"]["contact_id"], i["reason"]) for i in Queries(app).side("unmatched")["items"]]


def test_an_event_from_another_provider_than_the_mailings_is_unmatched_and_never_claimed(app: ResponsesApp) -> None:
    app.create_mailing({"id": "u", "name": "U", "category": "bulk", "provider": "unione"})
    app.add_audience("u", [{"contact_id": "a", "email": "a@example.com"}])
    app.dispatch("u", now=T0)
    clicked = provider_event(
        "elasticemail", {"status": "Clicked"}, T0 + timedelta(hours=1), Correlation("u", "a"), url="https://x.example/"
    )
    counts = app.record_batch(ParsedBatch(events=[clicked]))
    assert (counts.accepted, counts.unmatched) == (0, 1)
    stranger = provider_event("unione", {"status": "opened"}, T0 + timedelta(hours=1), Correlation("u", "zed"))
    app.record_batch(ParsedBatch(events=[stranger]))
    assert unmatched_reasons(app) == [("a", "provider_mismatch"), ("zed", "no_recipient")]
    app.add_audience("u", [{"contact_id": "a", "email": "a@example.com"}])  # re-matching claims what was parked for "a"
    assert codes(app, "u") == {"a": "sent_to_provider"}
    assert Queries(app).summary("u")["unique_clicks"] == 0
    assert unmatched_reasons(app) == [("a", "provider_mismatch"), ("zed", "no_recipient")]


def test_an_event_parked_before_its_mailing_existed_is_not_claimed_by_another_providers_mailing(app: ResponsesApp) -> None:
    early = provider_event("elasticemail", {"status": "Opened"}, T0 + timedelta(hours=1), Correlation("later", "a"))
    assert app.record_batch(ParsedBatch(events=[early])).unmatched == 1
    assert unmatched_reasons(app) == [("a", "no_recipient")]
    app.create_mailing({"id": "later", "name": "L", "category": "bulk", "provider": "unione"})
    app.add_audience("later", [{"contact_id": "a", "email": "a@example.com"}])
    assert codes(app, "later") == {"a": "planned"}
    assert unmatched_reasons(app) == [("a", "provider_mismatch")]


def test_system_signals_of_the_sender_are_not_checked_against_the_provider(app: ResponsesApp) -> None:
    app.create_mailing({"id": "u", "name": "U", "category": "trigger", "provider": "unione"})
    app.add_audience("u", [{"contact_id": "a", "email": "a@example.com"}])
    sent = ProviderEvent(system_signal("sent_to_provider", key="s-a", at=T0), Correlation("u", "a"))
    assert app.record_batch(ParsedBatch(events=[sent])).accepted == 1
    assert codes(app, "u") == {"a": "sent_to_provider"}


def test_an_email_only_event_from_before_any_sending_matches_nobody(app: ResponsesApp) -> None:
    app.create_mailing({"id": "m", "name": "M", "category": "bulk", "provider": "unione"})
    app.add_audience("m", [{"contact_id": "a", "email": "a@example.com"}, {"contact_id": "b", "email": "b@example.com"}])
    old = datetime(2024, 5, 1, tzinfo=UTC)
    parked = provider_event("unione", {"status": "opened"}, old, Correlation(email="b@example.com"))
    assert app.record_batch(ParsedBatch(events=[parked])).unmatched == 1  # nobody sent to b yet: parked
    app.dispatch("m", now=T0)  # 2026: sending to b must not claim the 2024 open
    stale = provider_event("unione", {"status": "clicked"}, old, Correlation(email="a@example.com"), url="https://x.example/")
    assert app.record_batch(ParsedBatch(events=[stale])).unmatched == 1
    skewed = provider_event("unione", {"status": "delivered"}, T0 - timedelta(minutes=9), Correlation(email="a@example.com"))
    assert app.record_batch(ParsedBatch(events=[skewed])).accepted == 1  # within the allowed clock skew
    assert codes(app, "m") == {"a": "delivered", "b": "sent_to_provider"}
    assert sorted(r for _, r in unmatched_reasons(app)) == ["no_recipient", "no_recipient"]
