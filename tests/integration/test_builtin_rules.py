"""The built-in ruleset "builtin-2" (issue 17), on SQLite and PostgreSQL: a new database starts on it; an existing
one keeps its active rules, is offered builtin-2 and sees what it would change in its own history before adopting
it; the prefix "builtin-" is reserved; a version stored under that name before keeps its meaning there."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from application.queries import Queries
from application.service import ResponsesApp
from application.unit_of_work import UnitOfWork
from domain.aggregates import RulesBook, rules_book_id
from domain.rules import DEFAULT_RULESET, LATEST_BUILTIN, InvalidRuleset
from domain.signals import Correlation, ParsedBatch, ProviderEvent
from interface.providers import sendgrid, unione
from projections.follower import ViewFollower

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 14, 13, 0, tzinfo=UTC)


def reopened(app: ResponsesApp) -> ResponsesApp:
    """Another process starting on the same database (a restart after an upgrade)."""
    again = ResponsesApp(app.settings)
    again.follower = ViewFollower(again)
    return again


def as_a_database_from_before_builtin_2(app: ResponsesApp) -> ResponsesApp:
    """A database a release before builtin-2 made: its views record no rules (the built-in "1")."""
    app.views.delete_meta("rules_version")
    assert app.active_version() == "1"
    return app


def unione_history(app: ResponsesApp) -> None:
    """UniOne's machine and proxy opens and sender-side failures, and a SendGrid drop of an unsubscribed address."""
    contacts = ["c-1001", "c-1002", "c-1004", "c-1005", "c-2001"]
    app.create_mailing({"id": "spring-sale", "name": "Spring", "category": "bulk", "provider": "unione", "email_type": "news"})
    app.add_audience("spring-sale", [{"contact_id": c, "email": f"{c}@example.com"} for c in contacts])
    app.dispatch("spring-sale", now=T0)
    body = (FIXTURES / "unione" / "opened-traffic-types.json").read_bytes()
    app.record_batch(unione.parse(body, NOW))
    retry = body.replace(b"err_spam_skipped", b"err_will_retry").replace(b"c-1005", b"c-2001").replace(b"gleb@", b"c-2001@")
    app.record_batch(ParsedBatch(events=unione.parse(retry, NOW).events[-1:]))
    app.create_mailing({"id": "grid", "name": "Grid", "category": "bulk", "provider": "sendgrid", "email_type": "news"})
    app.add_audience("grid", [{"contact_id": "c-3001", "email": "unsubscribe@example.com"}])
    app.dispatch("grid", now=T0)
    [dropped] = [
        e
        for e in sendgrid.parse((FIXTURES / "sendgrid" / "anymail-events.json").read_bytes(), NOW).events
        if e.signal.fields.get("reason") == "Unsubscribed Address"
    ]
    dropped = ProviderEvent(dropped.signal, Correlation("grid", "c-3001"))  # its custom args, as dispatch attaches them
    app.record_batch(ParsedBatch(events=[dropped]))
    app.wait_for_views()


def responses(app: ResponsesApp, mailing: str = "spring-sale") -> dict[str, tuple[str, str | None]]:
    app.wait_for_views()
    items = Queries(app).audience(mailing, limit=1000)["items"]
    return {i["contact_id"]: (i["response"]["code"], i["response"]["reason"]) for i in items}


@pytest.fixture
def old(app: ResponsesApp) -> Iterator[ResponsesApp]:
    """An existing database with history folded under version 1, restarted by this release."""
    as_a_database_from_before_builtin_2(app)
    unione_history(app)
    restarted = reopened(app)
    try:
        yield restarted
    finally:
        restarted.close()


def test_a_new_database_starts_on_builtin_2_and_keeps_it(app: ResponsesApp) -> None:
    assert app.active_version() == "builtin-2"
    assert app.active_rules() == LATEST_BUILTIN
    listing = app.rules_versions()
    assert [v["version"] for v in listing["versions"]] == ["1", "builtin-2"]
    assert listing["offered"] is None
    unione_history(app)
    assert responses(app)["c-1001"] == ("opened_machine", None)  # a privacy proxy's open
    assert responses(app)["c-1005"] == ("rejected", "sender_blocked")
    assert responses(app)["c-2001"] == ("soft_bounce", "will_retry")
    assert responses(app, "grid")["c-3001"] == ("rejected", "recipient_blocked")
    assert Queries(app).contact("c-3001")["flags"]["do_not_use_email"] is True  # the drop's unsubscribe reached it
    assert Queries(app).contact("c-2001")["flags"] == {
        "do_not_use_email": False,
        "email_is_actual": True,
        "unsubscribed_types": [],
    }
    again = reopened(app)
    try:
        assert again.active_version() == "builtin-2"
    finally:
        again.close()


def test_an_existing_database_keeps_its_rules_and_is_offered_builtin_2(old: ResponsesApp) -> None:
    app = old
    assert app.active_version() == "1"  # its journal is not empty: it keeps the rules its history was folded under
    assert responses(app)["c-1001"] == ("opened", None)
    assert responses(app)["c-2001"] == ("hard_bounce", "other")
    assert Queries(app).contact("c-2001")["flags"]["do_not_use_email"] is True
    listing = app.rules_versions()
    assert listing["offered"] == "builtin-2"
    assert [(v["version"], v["builtin"], v["based_on"]) for v in listing["versions"]] == [
        ("1", True, None),
        ("builtin-2", True, "1"),
    ]

    # the what-if against its own history, before adoption
    result = app.what_if("builtin-2", sample=10)
    assert result["rules"]["current"] == "1" and result["rules"]["candidate"] == "builtin-2"
    transitions = {(t["from"], t["to"]): t["count"] for t in result["transitions"]}
    assert transitions == {("opened", "opened_machine"): 2, ("hard_bounce", "soft_bounce"): 1}
    assert result["contacts"]["no_longer_suppressed"] == {"count": 1, "sample": ["c-2001"]}
    assert result["contacts"]["newly_suppressed"] == {"count": 1, "sample": ["c-3001"]}
    assert responses(app)["c-2001"] == ("hard_bounce", "other")  # nothing live moved

    # adoption: a rebuild under builtin-2, then nothing more to offer
    job = app.request_activation("builtin-2")["id"]
    app.jobs.run()
    assert app.job(job)["status"] == "done"
    assert app.active_version() == "builtin-2" and app.rules_versions()["offered"] is None
    assert responses(app)["c-2001"] == ("soft_bounce", "will_retry")
    assert responses(app)["c-1005"] == ("rejected", "sender_blocked")
    assert Queries(app).contact("c-2001")["flags"]["do_not_use_email"] is False
    assert Queries(app).contact("c-3001")["flags"]["do_not_use_email"] is True
    # the history under the rules it was folded under before stays what it was
    old_history = app.history("spring-sale", "c-2001", rules=app.ruleset("1"))
    assert old_history["rules"] == "1" and old_history["response"]["code"] == "hard_bounce"
    steps = app.history("grid", "c-3001")["signals"]
    assert [(s["maps_to"], s["contact_effect"]) for s in steps][-1] == ("rejected", "unsubscribe")


def test_a_version_made_from_version_1_is_still_offered_builtin_2(old: ResponsesApp) -> None:
    app = old
    version = app.define_rules({"statistics_period_days": 60}).version
    assert version == "2"
    app.request_activation(version)
    app.jobs.run()
    listing = app.rules_versions()
    assert listing["active"] == "2" and listing["offered"] == "builtin-2"
    mine = app.define_rules({"count_machine_opens": True}).version  # made from "2", made from "1"
    assert mine == "3" and app.rules_versions()["offered"] == "builtin-2"


def test_the_builtin_prefix_is_reserved_and_numbering_never_collides(app: ResponsesApp) -> None:
    for name in ("builtin-2", "builtin-3", "Builtin-9", "BUILTIN-x"):
        with pytest.raises(InvalidRuleset) as refused:
            app.define_rules({"version": name})
        assert "reserved" in refused.value.errors["version"]
    assert [app.define_rules({}).version for _ in range(2)] == ["2", "3"]
    assert app.rules_versions()["versions"][2]["based_on"] == "builtin-2"


def test_a_version_stored_under_a_builtin_name_before_the_reservation_keeps_its_meaning(app: ResponsesApp) -> None:
    document = {**DEFAULT_RULESET.patched({"statistics_period_days": 7}).to_document(), "version": "builtin-2"}

    def work(uow: UnitOfWork) -> None:  # as an older release stored it
        book: RulesBook = uow.get_or_create(rules_book_id(), RulesBook)
        book.define(
            version="builtin-2",
            document=document,
            changes={},
            based_on="1",
            created_at="2026-01-01T00:00:00+00:00",
            created_by=None,
        )

    app._in_transaction(work)
    app.rules._rulesets.clear()
    assert app.ruleset("builtin-2").statistics_period_days == 7
    listing = app.rules_versions()
    assert [(v["version"], v["builtin"]) for v in listing["versions"]] == [("1", True), ("builtin-2", False)]
    assert listing["offered"] is None


def test_a_stored_document_lacking_a_providers_mapping_uses_the_built_in_one(app: ResponsesApp) -> None:
    """A version stored before a provider existed (its document names only the providers of its day): that provider
    maps as the built-in rules map it, whatever version is active, and a replay under it works."""
    stored = DEFAULT_RULESET.to_document()
    del stored["provider_mappings"]["sendgrid"]
    stored["version"] = "old"

    def work(uow: UnitOfWork) -> None:
        book: RulesBook = uow.get_or_create(rules_book_id(), RulesBook)
        book.define(
            version="old", document=stored, changes={}, based_on="1", created_at="2026-01-01T00:00:00+00:00", created_by=None
        )

    app._in_transaction(work)
    unione_history(app)
    rules = app.ruleset("old")
    assert rules.provider_mappings["sendgrid"] == DEFAULT_RULESET.provider_mappings["sendgrid"]
    history = app.history("grid", "c-3001", rules=rules)
    assert history["response"]["code"] == "rejected"
    assert [s["contact_effect"] for s in history["signals"]] == [None, None]  # version 1's drop has none
    result = app.what_if("old")
    assert result["rules"]["candidate"] == "old" and result["recipients"] == 6


def test_dedup_keys_are_the_same_under_every_version(app: ResponsesApp) -> None:
    """A retry is a duplicate whichever rules folded the first copy (the key never depends on the mapping)."""
    unione_history(app)
    body = (FIXTURES / "unione" / "opened-traffic-types.json").read_bytes()
    counts = app.record_batch(unione.parse(body, NOW + timedelta(hours=1)))
    assert (counts.accepted, counts.duplicates) == (0, 5)
