"""Audit history, ruleset versions, what-if replays and activation, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.queries import Queries
from application.service import Conflict, ResponsesApp
from domain.rules import InvalidRuleset
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key, system_signal

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
SOFT_FINAL = {"responses": {"soft_bounce": {"final": True}}}


def say(
    app: ResponsesApp, contact: str, event: str, minutes: float, *, url: str | None = None, mailing: str = "m", **extra: str
) -> None:
    """A SendGrid signal for one recipient, received ``minutes`` after T0."""
    at = T0 + timedelta(minutes=minutes)
    fields = {"event": event, **extra}
    signal = Signal(
        key=dedup_key(mailing, contact, event, minutes, url),
        source="sendgrid",
        fields=fields,
        received_at=at,
        occurred_at=at,
        url=url,
    )
    app.record_batch(ParsedBatch(events=[ProviderEvent(signal, Correlation(mailing, contact))]))


def campaign(app: ResponsesApp, contacts: list[str], mailing: str = "m") -> None:
    app.create_mailing({"id": mailing, "name": mailing, "category": "bulk", "provider": "sendgrid"})
    app.add_audience(mailing, [{"contact_id": c, "email": f"{c}@example.com"} for c in contacts])
    app.dispatch(mailing, now=T0)


def audience(app: ResponsesApp, mailing: str = "m") -> dict[str, tuple[str, int]]:
    app.wait_for_views()
    return {i["contact_id"]: (i["response"]["code"], i["opens"]) for i in Queries(app).audience(mailing, limit=1000)["items"]}


@pytest.fixture
def soft_bounce_cases(app: ResponsesApp) -> ResponsesApp:
    """The four cases a "soft bounce is final" rule is about."""
    campaign(app, ["soft-then-delivered", "delivered-then-soft", "soft-then-hard", "opens-after-soft"])
    say(app, "soft-then-delivered", "deferred", 1)
    say(app, "soft-then-delivered", "delivered", 30)
    say(app, "delivered-then-soft", "delivered", 1)
    say(app, "delivered-then-soft", "deferred", 30)
    say(app, "soft-then-hard", "deferred", 1)
    say(app, "soft-then-hard", "bounce", 30, type="bounce")
    say(app, "opens-after-soft", "deferred", 1)
    say(app, "opens-after-soft", "open", 40)
    say(app, "opens-after-soft", "open", 50)
    return app


def test_history_explains_every_signal_and_reproduces_the_past(app: ResponsesApp) -> None:
    campaign(app, ["r"])
    say(app, "r", "processed", 0.5)  # queued: lower than sent_to_provider
    say(app, "r", "delivered", 1)
    say(app, "r", "open", 2)
    say(app, "r", "click", 3, url="https://shop.example.com/x")
    say(app, "r", "click", 4, url="https://shop.example.com/unsubscribe?u=1")
    say(app, "r", "open", 5)
    say(app, "r", "group_resubscribe", 6)
    say(app, "r", "spamreport", 7)
    say(app, "r", "unsubscribe", 8)
    say(app, "r", "open", 60 * 24 * 31)  # after the 30-day statistics period
    history = app.history("m", "r")
    steps = [(s["maps_to"], s["effect"], s["why"], s["response_after"]["code"]) for s in history["signals"]]
    assert steps == [
        ("sent_to_provider", "set", None, "sent_to_provider"),
        ("queued", "ignored", "lower_priority", "sent_to_provider"),
        ("delivered", "set", None, "delivered"),
        ("opened", "set", None, "opened"),
        ("clicked", "set", None, "clicked"),
        ("clicked", "ignored", "unsubscribe_link", "clicked"),
        ("opened", "counted", "lower_priority", "clicked"),
        (None, "ignored", "informational", "clicked"),
        ("spam_complaint", "set", None, "spam_complaint"),
        ("unsubscribed", "ignored", "final", "spam_complaint"),
        ("opened", "ignored", "period_closed", "spam_complaint"),
    ]
    assert history["response"]["code"] == "spam_complaint" and history["opens"] == 2 and history["clicks"] == 1
    assert history["signals"][2]["raw"] is None or isinstance(history["signals"][2]["raw"], dict)
    assert [s["seq"] for s in history["signals"]] == sorted(s["seq"] for s in history["signals"])

    # What was it on the way? as_of folds only what had been received by then.
    assert app.history("m", "r", as_of=T0 + timedelta(minutes=2, seconds=30))["response"]["code"] == "opened"
    assert app.history("m", "r", as_of=T0 + timedelta(minutes=3))["response"]["code"] == "clicked"
    assert app.history("m", "r", as_of=T0 - timedelta(minutes=1))["signals"] == []

    # The same journal explained under another ruleset version.
    v = app.define_rules({"statistics_period_days": 60, "unsubscribe_url_patterns": []})
    other = app.history("m", "r", rules=v)
    assert [s["why"] for s in other["signals"]][5] == "lower_priority"  # the unsubscribe link now counts as a click
    assert other["signals"][-1]["effect"] == "counted"  # inside a 60-day period
    assert other["clicks"] == 2


def test_history_of_non_delivery_machine_signals_and_confirmations(app: ResponsesApp) -> None:
    campaign(app, ["bounced", "robot", "waiting"])
    say(app, "bounced", "bounce", 1, type="bounce")
    say(app, "bounced", "open", 2)
    say(app, "robot", "delivered", 1)
    app.record_batch(
        ParsedBatch(
            events=[
                ProviderEvent(
                    Signal(
                        key="mpp",
                        source="sendgrid",
                        fields={"event": "open"},
                        received_at=T0 + timedelta(minutes=2),
                        occurred_at=T0 + timedelta(minutes=2),
                        machine=True,
                    ),
                    Correlation("m", "robot"),
                )
            ]
        )
    )
    app.sweep(now=T0 + timedelta(hours=1))
    app.sweep(now=T0 + timedelta(hours=50))
    assert [s["why"] for s in app.history("m", "bounced")["signals"]][-1] == "not_delivered"
    assert app.history("m", "robot")["signals"][-1]["why"] is None  # opened_machine is set over delivered, not counted
    assert app.history("m", "robot")["opens"] == 0
    robot = app.history("m", "robot")["signals"]
    assert robot[2]["maps_to"] == "opened_machine"
    waiting = [(s["why"], s["response_after"]["code"]) for s in app.history("m", "waiting")["signals"]]
    assert waiting == [(None, "sent_to_provider"), ("not_due", "sent_to_provider"), (None, "unknown_response")]
    # Once delivered, a later confirmation check (here reported by the sender) is superseded.
    check = system_signal("confirmation_checked", key="check-robot", at=T0 + timedelta(hours=60))
    app.record_batch(ParsedBatch(events=[ProviderEvent(check, Correlation("m", "robot"))]))
    assert [s["why"] for s in app.history("m", "robot")["signals"]][-1] == "superseded"


def test_what_if_soft_bounce_final_moves_exactly_the_expected_recipients(soft_bounce_cases: ResponsesApp) -> None:
    app = soft_bounce_cases
    live_before = audience(app)
    result = app.what_if(SOFT_FINAL)
    assert result["recipients"] == 4
    # A final replaces any non-final and is never replaced: every case ends a soft bounce.
    assert result["changed"] == 4
    assert result["transitions"] == [
        {"from": "delivered", "to": "soft_bounce", "count": 2},  # soft → delivered, and delivered → late soft
        {"from": "hard_bounce", "to": "soft_bounce", "count": 1},  # the hard bounce comes after a final
        {"from": "opened", "to": "soft_bounce", "count": 1},
    ]
    assert result["counters_changed"] == 1  # the two opens after a soft bounce no longer count
    m = result["mailings"]["m"]
    assert (m["before"]["delivered"], m["after"]["delivered"]) == (3, 0)
    assert (m["before"]["total_opens"], m["after"]["total_opens"]) == (2, 0)
    assert m["after"]["responses"] == {"soft_bounce": 4}
    assert len(result["examples"]) == 4
    example = next(e for e in result["examples"] if e["contact_id"] == "opens-after-soft")
    assert example["before"]["response"]["code"] == "opened" and example["after"]["opens"] == 0
    assert [s["why"] for s in example["explanation"]][-2:] == ["not_delivered", "not_delivered"]
    # The hard-bounced contact would no longer be suppressed: its hard bounce no longer sets the response.
    assert result["contacts"]["no_longer_suppressed"] == {"count": 1, "sample": ["soft-then-hard"]}
    assert audience(app) == live_before  # the live views did not move


def test_what_if_period_of_zero_days_reverts_everything_after_dispatch(soft_bounce_cases: ResponsesApp) -> None:
    app = soft_bounce_cases
    result = app.what_if({"statistics_period_days": 0})
    m = result["mailings"]["m"]
    assert m["after"]["responses"] == {"sent_to_provider": 4}
    assert result["changed"] == 4
    # The hard-bounced contact is no longer suppressed under those rules.
    assert result["contacts"]["no_longer_suppressed"] == {"count": 1, "sample": ["soft-then-hard"]}
    assert result["contacts"]["newly_suppressed"]["count"] == 0


def test_what_if_confirmation_timeout_hours(app: ResponsesApp) -> None:
    campaign(app, ["confirmed", "silent"])
    say(app, "confirmed", "delivered", 5)
    app.sweep(now=T0 + timedelta(hours=10))
    assert audience(app) == {"confirmed": ("delivered", 0), "silent": ("sent_to_provider", 0)}
    result = app.what_if({"confirmation_timeout_hours": 6})
    assert [(t["from"], t["to"]) for t in result["transitions"]] == [("sent_to_provider", "unknown_response")]
    assert app.what_if({"confirmation_timeout_hours": 12})["changed"] == 0


def test_what_if_scoped_to_mailings_and_contact_suppression(app: ResponsesApp) -> None:
    campaign(app, ["a", "b"], mailing="m")
    campaign(app, ["a"], mailing="n")
    say(app, "a", "deferred", 1, mailing="m")
    say(app, "a", "deferred", 2, mailing="n")
    say(app, "b", "deferred", 3, mailing="m")
    result = app.what_if({"soft_bounce_limit": 2})
    assert result["contacts"]["newly_suppressed"] == {"count": 1, "sample": ["a"]}
    scoped = app.what_if({"soft_bounce_limit": 2}, mailing_ids=["n"])
    assert scoped["recipients"] == 1 and list(scoped["mailings"]) == ["n"]


def test_activation_rebuilds_then_swaps_and_the_old_version_restores_the_old_view(soft_bounce_cases: ResponsesApp) -> None:
    app = soft_bounce_cases
    original = audience(app)
    v2 = app.define_rules(SOFT_FINAL)
    assert v2.version == "2"
    job = app.request_activation("2")
    assert job["status"] == "running"
    assert audience(app) == original  # nothing moves until the job ran
    assert app.jobs.run() == 1
    assert app.job(job["id"])["status"] == "done" and app.job(job["id"])["progress"] == 1.0
    assert app.rules_versions()["active"] == "2"
    assert audience(app)["soft-then-delivered"] == ("soft_bounce", 0)
    assert audience(app)["opens-after-soft"] == ("soft_bounce", 0)
    # New signals keep folding under the active rules: an open after a final soft bounce does not count.
    say(app, "delivered-then-soft", "open", 90)
    assert audience(app)["delivered-then-soft"] == ("soft_bounce", 0)
    # Back to the rules a new database starts on: exactly the old view (plus the new open).
    app.request_activation("builtin-2")
    app.jobs.run()
    assert app.rules_versions()["active"] == "builtin-2"
    expected = dict(original, **{"delivered-then-soft": ("opened", 1)})
    assert audience(app) == expected
    assert app.jobs.run() == 0  # finished jobs do not run again


def test_rule_versions_are_journaled_and_validated(app: ResponsesApp) -> None:
    v = app.define_rules({"statistics_period_days": 7})
    listing = app.rules_versions()
    assert listing["active"] == "builtin-2"
    assert [x["version"] for x in listing["versions"]] == ["1", "builtin-2", "2"]
    assert listing["versions"][2]["changes"] == {"statistics_period_days": 7}
    assert app.ruleset(v.version).statistics_period_days == 7
    with pytest.raises(InvalidRuleset) as bad:
        app.define_rules(
            {
                "responses": {"soft_bounce": {"final": True, "priority": 3}, "nope": {"final": True}},
                "statistics_period_days": -1,
                "provider_mappings": {"mailchimp": {}, "unione": {"colour:red": "delivered"}},
            }
        )
    assert set(bad.value.errors) == {
        "responses.soft_bounce.priority",
        "responses.nope",
        "statistics_period_days",
        "provider_mappings.mailchimp",
        "provider_mappings.unione.colour:red",
    }
    with pytest.raises(Conflict):
        app.define_rules({"version": "2"})
    assert [x["version"] for x in app.rules_versions()["versions"]] == ["1", "builtin-2", "2"]
