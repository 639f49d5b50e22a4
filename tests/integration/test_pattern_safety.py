"""Ruleset patterns run on RE2: no pattern a ruleset may hold can stall a replay or the live projection."""

from __future__ import annotations

import pytest

from application.service import ResponsesApp
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key
from tests.integration.test_rules_replay import T0, audience, campaign, say

NESTED_QUANTIFIER_AGENT = r"^(\w+\s?)*$"  # exponential on a backtracking engine
CRAFTED_AGENT = "aaaa " * 12 + "!"


def open_with_agent(app: ResponsesApp, contact: str, user_agent: str) -> None:
    signal = Signal(
        key=dedup_key("m", contact, "open", "agent"),
        source="sendgrid",
        fields={"event": "open"},
        received_at=T0,
        occurred_at=T0,
        user_agent=user_agent,
    )
    app.record_batch(ParsedBatch(events=[ProviderEvent(signal, Correlation("m", contact))]))


@pytest.mark.timeout(20)
def test_a_crafted_user_agent_does_not_stop_the_projection_under_an_activated_ruleset(app: ResponsesApp) -> None:
    campaign(app, ["r"])
    say(app, "r", "delivered", 1)
    version = app.define_rules({"machine_open_user_agents": [NESTED_QUANTIFIER_AGENT]}).version
    app.request_activation(version)
    app.jobs.run()
    assert app.active_version() == version

    open_with_agent(app, "r", CRAFTED_AGENT)
    assert audience(app) == {"r": ("opened", 1)}  # the pattern does not match: a human open
    assert app.views_position() == app.journal_position()


@pytest.mark.timeout(20)
def test_what_if_with_a_nested_quantifier_over_a_crafted_url_answers(app: ResponsesApp) -> None:
    campaign(app, ["r"])
    say(app, "r", "click", 1, url="https://x/" + "a" * 40 + "!")
    result = app.what_if({"unsubscribe_url_patterns": ["(a+)+$"]})
    assert result["changed"] == 0 and result["recipients"] == 1


@pytest.mark.timeout(20)
def test_a_follower_that_cannot_apply_its_generation_is_recovered_by_activating_another_ruleset(
    app: ResponsesApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign(app, ["r"])
    say(app, "r", "delivered", 1)
    say(app, "r", "open", 2)
    follower = app.follower
    live_run_once = follower.run_once

    def poisoned() -> int:  # the active generation cannot move past its next event
        raise RuntimeError("the active generation cannot apply its next event")

    monkeypatch.setattr(follower, "run_once", poisoned)
    version = app.define_rules({"responses": {"opened": {"priority": 5}}}).version
    job = app.request_activation(version)["id"]
    app.jobs.run(follower)
    assert app.job(job)["status"] == "done", app.job(job)
    assert app.active_version() == version
    monkeypatch.setattr(follower, "run_once", live_run_once)
    assert audience(app) == {"r": ("delivered", 1)}  # rebuilt under the new rules: an open ranks below delivered
