"""`responses what-if` and `responses rebuild`, in-process, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from application.config import Settings
from application.queries import Queries
from application.service import ResponsesApp
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Signal, dedup_key
from interface.cli import main
from projections.follower import ViewFollower
from tests.helpers.stores import use_database

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def journal(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A mailing whose recipients soft-bounced: one then delivered, one then opened twice, one only soft-bounced."""
    monkeypatch.chdir(tmp_path)
    use_database(monkeypatch, database_url)
    app = ResponsesApp(Settings(database_url=database_url))
    app.follower = ViewFollower(app)
    app.create_mailing({"id": "m", "name": "M", "category": "bulk", "provider": "sendgrid"})
    app.add_audience("m", [{"contact_id": c, "email": f"{c}@example.com"} for c in ("a", "b", "c")])
    app.dispatch("m", now=T0)
    events = []
    for contact, event, minutes in (
        ("a", "deferred", 1),
        ("a", "delivered", 9),
        ("b", "deferred", 1),
        ("b", "open", 20),
        ("b", "open", 30),
        ("c", "deferred", 2),
    ):
        at = T0 + timedelta(minutes=minutes)
        signal = Signal(
            key=dedup_key(contact, event, minutes), source="sendgrid", fields={"event": event}, received_at=at, occurred_at=at
        )
        events.append(ProviderEvent(signal, Correlation("m", contact)))
    app.record_batch(ParsedBatch(events=events))
    app.wait_for_views()
    app.close()
    return database_url


def audience(url: str) -> dict[str, str]:
    app = ResponsesApp(Settings(database_url=url))
    try:
        return {i["contact_id"]: i["response"]["code"] for i in Queries(app).audience("m")["items"]}
    finally:
        app.close()


def test_what_if_prints_the_transitions_and_leaves_the_views(
    journal: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "soft-final.json"
    rules.write_text(json.dumps({"responses": {"soft_bounce": {"final": True}}}))
    before = audience(journal)
    assert main(["what-if", str(rules)]) == 0
    out, err = capsys.readouterr()
    assert "3 recipients, 2 change response, 1 change counters" in out
    assert "delivered  →  soft_bounce" in out and "opened     →  soft_bounce" in out
    assert "total_opens 2 → 0" in " ".join(out.split())
    assert "replaying the journal" in err  # progress
    assert audience(journal) == before

    assert main(["what-if", str(rules), "--json", "--mailing", "m"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["changed"] == 2 and answer["mailings"]["m"]["after"]["responses"] == {"soft_bounce": 3}


def test_what_if_refuses_an_invalid_document(journal: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "bad.json"
    rules.write_text(json.dumps({"statistics_period_days": -1, "colour": "red"}))
    assert main(["what-if", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "statistics_period_days:" in err and "colour: unknown field" in err
    (tmp_path / "broken.json").write_text("{")
    assert main(["what-if", str(tmp_path / "broken.json")]) == 2


def test_rebuild_adopts_a_version_and_back(journal: str, capsys: pytest.CaptureFixture[str]) -> None:
    app = ResponsesApp(Settings(database_url=journal))
    version = app.define_rules({"responses": {"soft_bounce": {"final": True}}}).version
    app.close()
    assert main(["rebuild", "--rules", version]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "done"
    assert f"rebuild under rules {version}: 100% 30/30" in err  # the 30 journal events, one line off a terminal
    assert audience(journal) == {"a": "soft_bounce", "b": "soft_bounce", "c": "soft_bounce"}
    assert main(["rebuild", "--rules", "1"]) == 0
    assert audience(journal) == {"a": "delivered", "b": "opened", "c": "soft_bounce"}
    assert main(["rebuild", "--rules", "nope"]) == 2
