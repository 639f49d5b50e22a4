"""The stored format does not change: a database written by the code of issue 14 reads the same today, and
the same inputs fed to today's code write the same journal rows and the same views, on both stores.

``tests/fixtures/legacy/make_legacy.py`` wrote ``v14.db`` and the dumps with that code (see its docstring);
its ``build`` is replayed here under the same frozen clock and id source, so no field needs ignoring
but the follower's own wall-clock readings (which ``dump`` already blanks).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from application.service import ResponsesApp
from domain.aggregates import address_id, email_bucket, unmatched_bucket_id

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


def _legacy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_legacy", LEGACY / "make_legacy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_legacy"] = module
    spec.loader.exec_module(module)
    return module


legacy = _legacy()


def expected(store: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((LEGACY / f"v14-{store}.json").read_bytes())
    return data


def as_json(value: Any) -> Any:
    """What the dump's JSON makes of a value (tuples become lists, datetimes text)."""
    return orjson.loads(orjson.dumps(value, default=str))


def test_the_fixture_is_small_and_complete() -> None:
    assert (LEGACY / "v14.db").stat().st_size < 1_000_000
    topics = {row[2] for row in expected("sqlite")["journal"]}
    for topic in (
        "Recipient.SignalRecorded",
        "UnmatchedBucket.Parked",
        "UnmatchedBucket.Claimed",
        "SideRecord.Recorded",
        "AddressIndex.RecipientSent",
        "Contact.CommandRecorded",
        "Mailing.Stopped",
        "RulesBook.VersionDefined",
        "Job.Answered",
        "Job.Finished",
    ):
        assert f"domain.aggregates:{topic}" in topics, topic


SHAPE_2_ADDITIONS = {"engagement"}  # the per-minute buckets' table (a new shape of views: CONTRACT §8)
SHAPE_2_COLUMNS = {"mailings": {"first_sent_at"}}
PRIVACY_TABLES = {"data_keys", "erasures", "data_keys_meta"}  # the data keys and the records of erasure (CONTRACT §12)


def test_todays_code_reads_a_database_written_by_issue_14(tmp_path: Path) -> None:
    """The journal reads as it was written; views of the older shape upgrade themselves (one journaled job,
    run here at once), and the new generation holds every row of the old one, plus the new shape's."""
    path = tmp_path / "v14.db"
    shutil.copyfile(LEGACY / "v14.db", path)
    app = legacy.open_app(f"sqlite:///{path}")
    try:
        app.wait_for_views()
        app.jobs.run()  # the upgrade (the follower's owner would run it in the background)
        app.wait_for_views()
        read, generation = legacy.dump(app), app.generation()
        journal = [opened(app, row) for row in read["journal"]]
        want_journal, renamed = keyed_names(app, expected("sqlite")["journal"])
    finally:
        app.close()
    want = expected("sqlite")
    old, added = journal[: len(want["journal"])], read["journal"][len(want["journal"]) :]
    assert renamed, "the fixture has address indexes and buckets named by clear addresses"
    assert old == want_journal  # sealed at the first start, indexes and buckets renamed by keyed hashes: the same once opened
    assert added and {row[0] for row in added} == {added[0][0]}, "one job: the upgrade"
    assert all(row[2].startswith("domain.aggregates:Job.") for row in added) and '"kind":"upgrade"' in added[0][3]
    assert generation == 3  # the fixture's active generation was 2
    upgraded = {name.split("_", 1)[1]: rows for name, rows in read["views"].items() if name.startswith(f"rv{generation}_")}
    before = {
        name.split("_", 1)[1]: rows for name, rows in renamed_side(want["views"], renamed).items() if name.startswith("rv2_")
    }
    assert set(upgraded) - set(before) == SHAPE_2_ADDITIONS and set(before) <= set(upgraded)
    for table, rows in before.items():
        extra = SHAPE_2_COLUMNS.get(table, set())
        assert [[cell for cell in row if cell[0] not in extra] for row in upgraded[table]] == rows, table


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_the_same_inputs_write_the_same_journal_and_views(store: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(f"{store}_url")
    with legacy.frozen():
        app: ResponsesApp = legacy.open_app(url)
        # issue 14's code started a new database on the built-in rules "1"; today's starts it on "builtin-2"
        # (CONTRACT §7 "Built-in rulesets"): the same start, so the same inputs meet the same rules
        app.views.delete_meta("rules_version")
        try:
            answers = legacy.build(app)
            written = legacy.dump(app)
            journal = [opened(app, row) for row in written["journal"]]
            want_journal, renamed = keyed_names(app, expected(store)["journal"])
        finally:
            app.close()
    want = expected(store)
    assert as_json(answers) == want["answers"]
    assert len(journal) == len(want_journal)
    for got, old in zip(journal, want_journal):
        assert got == old
    assert without_shape_2(written["views"]) == without_shape_2(renamed_side(want["views"], renamed))


def keyed_names(app: ResponsesApp, rows: list[list[Any]]) -> tuple[list[list[Any]], dict[str, str]]:
    """Issue 14's journal as this version names it: an address index and an address bucket are named by the
    address's keyed hash (CONTRACT §12: their ids no longer derive from the clear address). The rows'
    states parsed; the renaming (old id → new id, hex) beside them."""
    parsed = [[*row[:3], orjson.loads(row[3])] for row in rows]
    moves: dict[str, tuple[str, dict[str, Any]]] = {}
    for oid, version, topic, state in parsed:
        if version != 1:
            continue
        if topic.endswith("AddressIndex.Opened"):
            known = app.privacy.hasher(state["email"])
            moves[oid] = (address_id(state["provider"], known).hex, {"known_as": known})
        elif topic.endswith("UnmatchedBucket.Opened") and state["bucket"].startswith("email:"):
            _, provider, address = state["bucket"].split(":", 2)
            name = email_bucket(provider, app.privacy.hasher(address))
            moves[oid] = (unmatched_bucket_id(name).hex, {"bucket": name})
    out = []
    for oid, version, topic, state in parsed:
        if oid in moves:
            oid, changes = moves[oid][0], moves[oid][1] if version == 1 else {}
            state = {**state, **changes}
        out.append([oid, version, topic, state])
    return out, {old: new for old, (new, _) in moves.items()}


def renamed_side(views: dict[str, Any], renamed: dict[str, str]) -> dict[str, Any]:
    """The views' parked rows (``<bucket id>:<key>``) under their buckets' new ids."""
    out: dict[str, Any] = {}
    for name, rows in views.items():
        if name.endswith("_side"):
            rows = [
                [[k, (renamed.get(v[:32], v[:32]) + v[32:]) if k == "id" and isinstance(v, str) else v] for k, v in row]
                for row in rows
            ]
            rows = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))  # as the dump sorts them
        out[name] = rows
    return out


def opened(app: ResponsesApp, row: list[Any]) -> list[Any]:
    """A journal row as issue 14's code wrote it: its sealed personal fields opened (CONTRACT §12), less the
    subject that names whose key sealed them; what else the row holds is byte for byte the same data."""
    state = orjson.loads(row[3])
    if "sealed" in state:
        assert not {"name", "email"} & {k for k, v in state.items() if v is not None}, "sealed fields are not in clear"
    app.privacy.open_state(state)
    state.pop("subject", None)
    for example in (state.get("result") or {}).get("examples", []):  # a what-if's answer: its history steps
        for step in example.get("explanation", []) if isinstance(example, dict) else []:  # now say whether they were erased
            if step.get("erased") is False:
                del step["erased"]
            if "contact_effect" in step and step["contact_effect"] is None:  # and their mapping's contact effect (issue 17)
                del step["contact_effect"]
    return [*row[:3], state]


def without_shape_2(views: dict[str, Any]) -> dict[str, Any]:
    """The views less what shape 2 added (the buckets' table, a mailing's first send, the shape in meta)."""
    kept: dict[str, Any] = {}
    for name, rows in views.items():
        table = name.split("_", 1)[1] if name.startswith("rv") and "_" in name and name[2:3].isdigit() else name
        if table in SHAPE_2_ADDITIONS or table in PRIVACY_TABLES:
            continue
        extra = SHAPE_2_COLUMNS.get(table, set())
        rows = [[cell for cell in row if cell[0] not in extra] for row in rows]
        if name == "rv_meta":
            rows = [row for row in rows if not str(dict(row).get("key", "")).endswith("-shape")]
        kept[name] = rows
    return kept


@pytest.mark.parametrize("contact,address", [("u1", "u1@example.com"), ("u4", "u4@example.com")])
def test_a_journal_written_before_sealing_is_sealed_then_a_contact_erased_leaves_nothing(
    tmp_path: Path, contact: str, address: str
) -> None:
    """Issue 14's database: sealed at the first start (no address left in the journal's events but where no key
    covers it), then a contact erased: its address is nowhere in the file, its counts are what they were."""
    path = tmp_path / "v14.db"
    shutil.copyfile(LEGACY / "v14.db", path)
    app = legacy.open_app(f"sqlite:///{path}")
    try:
        app.wait_for_views()
        app.jobs.run()
        app.wait_for_views()
        notifications = app.recorder.select_notifications(start=1, limit=100_000)
        kept_whole = ("SideRecord.Recorded",)  # notices and quarantined input: redacted by an erasure, not sealed
        journal = b"".join(bytes(n.state) for n in notifications if not n.topic.endswith(kept_whole))
        assert address.encode() not in journal
        before = app.reads.contact(contact)
        responses = [dict(r) for r in app.reads.contact_responses(contact)]
        app.erasures.erase(contact, "GDPR art. 17", None)
        assert [dict(r) for r in app.reads.contact_responses(contact)] == responses
        after = app.reads.contact(contact)
        assert before is not None and after is not None and after.flags() == before.flags()
    finally:
        app.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("v14.db*") if p.is_file())
    assert address.encode() not in stored and address.replace("@", "%40").encode() not in stored
