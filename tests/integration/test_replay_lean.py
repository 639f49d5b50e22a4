"""The lean replay (issue 8, item 4) on SQLite and PostgreSQL: the direct reader, the partitions
over worker processes and the scoped what-if all answer exactly what the library-read,
single-process, full replay answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from application.service import ResponsesApp
from bench.journal import provider_events
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key
from projections.replay import contact_plan, scope_plan, what_if

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
RECIPIENTS = 120

# The rulesets the what-if tests use, each patched over the active (default) rules.
RULESETS: dict[str, dict[str, Any]] = {
    "soft bounces final": {"responses": {"soft_bounce": {"final": True}}},
    "statistics period of 0 days": {"statistics_period_days": 0},
    "machine opens counted": {"count_machine_opens": True},
    "one soft bounce makes an address not actual": {"soft_bounce_limit": 1},
    "a soft bounce mapped as a hard bounce": {"provider_mappings": {"unione": {"status:soft_bounced": "hard_bounce"}}},
    "unsubscribe from one type only": {"unsubscribe_from_all": False},
    "clicks right after delivery are machines": {"machine_click_window_seconds": 10_000},
    "opened ranks above clicked": {"responses": {"opened": {"priority": 99}}},
    # a mapping that changes only the contact effect: the scope must see it (the code and reason stay)
    "a soft bounce also unsubscribes": {
        "provider_mappings": {
            "unione": {"status:soft_bounced": {"code": "soft_bounce", "reason": "will_retry", "contact_effect": "unsubscribe"}}
        }
    },
    "a complaint is informational but still suppresses": {
        "provider_mappings": {"unione": {"status:spam": {"code": None, "contact_effect": "suppress"}}}
    },
}
SCOPED = {name for name in RULESETS if name != "statistics period of 0 days"}


def campaign(app: ResponsesApp) -> None:
    """Two UniOne mailings to the same contacts (contact effects cross mailings), a SendGrid one,
    a manual contact change and a duplicate re-sent batch."""
    contacts = [{"contact_id": f"c{i}", "email": f"c{i}@example.com"} for i in range(RECIPIENTS)]
    for mailing in ("spring", "summer"):
        app.create_mailing({"id": mailing, "name": mailing, "category": "bulk", "provider": "unione", "email_type": "news"})
        app.add_audience(mailing, contacts)
        while app.dispatch(mailing, now=T0)["remaining"]:
            pass
    for mailing, seed, start in (("spring", 3, T0), ("summer", 5, T0 + timedelta(days=2))):
        events = provider_events(mailing, RECIPIENTS, RECIPIENTS * 5, start, seed=seed)
        for i in range(0, len(events), 100):
            app.record_batch(ParsedBatch(events=events[i : i + 100]))
        app.record_batch(ParsedBatch(events=events[:50]))  # a re-sent batch: duplicates
    # A soft bounce for several contacts in the second mailing, then a delivery in the first: streaks across mailings.
    late = [
        ProviderEvent(
            Signal(
                key=dedup_key("late", c),
                source="unione",
                fields={"status": "soft_bounced"},
                received_at=T0 + timedelta(days=3),
                occurred_at=T0 + timedelta(days=3),
            ),
            Correlation("summer", f"c{c}"),
        )
        for c in range(0, RECIPIENTS, 7)
    ]
    app.record_batch(ParsedBatch(events=late))
    app.change_contact("c3", {"do_not_use_email": True})
    app.wait_for_views()


@pytest.fixture
def journal(app: ResponsesApp) -> ResponsesApp:
    campaign(app)
    return app


@pytest.mark.parametrize("name", sorted(RULESETS))
def test_lean_partitioned_and_scoped_what_ifs_answer_what_the_library_read_replay_answers(
    journal: ResponsesApp, name: str
) -> None:
    app = journal
    current = app.active_rules()
    candidate = current.patched(RULESETS[name], version="what-if")
    reference = what_if(app, current, candidate, sample=5, scoped=False, light=False)  # the library's signal objects
    assert reference["recipients"] == 2 * RECIPIENTS
    assert what_if(app, current, candidate, sample=5, scoped=False) == reference  # the direct reader, light values
    assert what_if(app, current, candidate, sample=5, scoped=False, workers=2) == reference  # two processes
    assert what_if(app, current, candidate, sample=5, workers=2) == reference  # scoped where it can be
    assert what_if(app, current, candidate, mailing_ids=["summer"], sample=3, workers=2) == what_if(
        app, current, candidate, mailing_ids=["summer"], sample=3, scoped=False, light=False
    )
    plan = scope_plan(app, current, candidate, None)
    assert (plan is not None) == (name in SCOPED)


def test_the_rulesets_change_answers_so_equality_means_something(journal: ResponsesApp) -> None:
    app = journal
    current = app.active_rules()
    answers = {
        name: what_if(app, current, current.patched(doc, version="what-if"), scoped=False) for name, doc in RULESETS.items()
    }
    assert answers["soft bounces final"]["changed"] > 0
    assert answers["statistics period of 0 days"]["changed"] > 0
    assert answers["a soft bounce mapped as a hard bounce"]["contacts"]["newly_suppressed"]["count"] > 0
    assert answers["one soft bounce makes an address not actual"]["contacts"]["newly_suppressed"]["count"] > 0
    assert answers["opened ranks above clicked"]["changed"] > 0
    assert answers["a soft bounce also unsubscribes"]["changed"] == 0
    assert answers["a soft bounce also unsubscribes"]["contacts"]["newly_suppressed"]["count"] > 0


def test_a_scoped_what_if_folds_only_the_contacts_the_change_can_touch(journal: ResponsesApp) -> None:
    app = journal
    current = app.active_rules()
    plan = scope_plan(app, current, current.patched(RULESETS["soft bounces final"], version="what-if"), None)
    assert plan is not None
    assert 0 < plan.contacts < RECIPIENTS  # only contacts whose journals hold a soft bounce
    assert plan.considered == 2 * RECIPIENTS  # everyone is counted, from the views
    # A statistics period is measured against every signal: every contact is folded (group by group).
    everyone = current.patched({"statistics_period_days": 1}, version="what-if")
    assert scope_plan(app, current, everyone, None) is None
    whole = contact_plan(app, current, everyone, None)
    assert whole is not None and whole.contacts == RECIPIENTS and whole.summaries is None
    assert len(whole.groups) >= 1


def test_views_behind_the_journal_mean_the_journal_is_streamed(journal: ResponsesApp) -> None:
    app = journal
    current = app.active_rules()
    candidate = current.patched(RULESETS["soft bounces final"], version="what-if")
    expected = what_if(app, current, candidate, sample=3, scoped=False)
    app.follower = None  # nobody catches the views up
    app.change_contact("c5", {"email": "c5@example.org"})
    assert app.views_position() < app.journal_position()
    assert contact_plan(app, current, candidate, None) is None
    assert what_if(app, current, candidate, sample=3) == expected  # an email change moves no response


def test_after_an_activation_the_rebuilt_views_keep_the_scope_index(journal: ResponsesApp) -> None:
    app = journal
    version = app.define_rules({"soft_bounce_limit": 2}).version
    job = app.request_activation(version)["id"]
    app.jobs.run()
    assert app.job(job)["status"] == "done" and app.active_version() == version
    app.wait_for_views()  # past the job's own events (a scoped what-if reads views that are current)
    current = app.active_rules()
    candidate = current.patched(RULESETS["soft bounces final"], version="what-if")
    assert scope_plan(app, current, candidate, None) is not None
    assert what_if(app, current, candidate, sample=5) == what_if(app, current, candidate, sample=5, scoped=False, light=False)


def test_a_change_of_unsubscribe_from_all_reaches_the_mappings_that_unsubscribe(journal: ResponsesApp) -> None:
    """Under rules whose soft bounce unsubscribes, unsubscribing from one type only moves those contacts too:
    the scoped what-if folds them (their terms map to no unsubscribed code, only to the effect)."""
    app = journal
    version = app.define_rules(RULESETS["a soft bounce also unsubscribes"]).version
    app.request_activation(version)
    app.jobs.run()
    assert app.active_version() == version
    app.wait_for_views()
    current = app.active_rules()
    candidate = current.patched({"unsubscribe_from_all": False}, version="what-if")
    scoped = what_if(app, current, candidate, sample=5)
    assert scoped == what_if(app, current, candidate, sample=5, scoped=False, light=False)
    assert scoped["contacts"]["no_longer_suppressed"]["count"] > 0
