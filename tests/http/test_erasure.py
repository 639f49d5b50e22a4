"""Forget a contact (issue 16, CONTRACT §12): erase a person from the journal, keep every count, leave nothing of them.

Both stores: the person's address (plain, lower-cased, URL-encoded in a click URL, JSON-escaped in a raw
body) and name are nowhere in the SQLite file and its WAL, nor in a ``pg_dump``, once ``erase`` returns;
every answer about counts is what it was."""

from __future__ import annotations

import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import orjson
import pytest
from flask.testing import FlaskClient

from application.service import ResponsesApp
from domain.aggregates import address_id, email_bucket, unmatched_bucket_id
from domain.signals import Correlation, ParsedBatch, ProviderEvent, Quarantined, Signal, dedup_key
from tests.helpers.http import error_of

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ADDRESS = "Gleb.Secret@Mail.Example.com"
NAME = "Глеб Тайный"
OTHER = "other.person@example.com"
NEEDLES = [
    ADDRESS,
    ADDRESS.lower(),
    quote(ADDRESS.lower(), safe=""),
    "gleb.secret%40",
    NAME,
    orjson.dumps(NAME).decode().strip('"'),  # as JSON writes it
    NAME.encode("unicode_escape").decode(),  # \\u escapes
]


def event(key: str, status: str, email: str, contact: str, minutes: int, url: str | None = None) -> ProviderEvent:
    at = T0 + timedelta(minutes=minutes)
    signal = Signal(
        key=dedup_key("test", key),
        source="unione",
        fields={"status": status},
        received_at=at,
        occurred_at=at,
        url=url,
        user_agent="Mozilla/5.0",
        raw={"email": email, "status": status, "ip": "203.0.113.7", "name": NAME if contact == "gleb" else "Other"},
    )
    return ProviderEvent(signal, Correlation(mailing_id="spring", contact_id=contact, email=email))


def campaign(app: ResponsesApp) -> None:
    app.create_mailing({"id": "spring", "name": "Spring", "category": "bulk", "email_type": "news", "provider": "unione"})
    app.add_audience(
        "spring",
        [{"contact_id": "gleb", "email": ADDRESS, "name": NAME}, {"contact_id": "other", "email": OTHER, "name": "Other"}],
    )
    app.dispatch("spring", now=T0)
    click = f"https://shop.example.com/sale?u={quote(ADDRESS.lower(), safe='')}"
    app.record_batch(
        ParsedBatch(
            events=[
                event("d1", "delivered", ADDRESS, "gleb", 1),
                event("o1", "opened", ADDRESS, "gleb", 5),
                event("c1", "clicked", ADDRESS, "gleb", 6, url=click),
                event("d2", "delivered", OTHER, "other", 1),
                event("o2", "opened", OTHER, "other", 9),
            ]
        )
    )
    # an email-only event for an address nobody was sent to: parked under the address
    app.record_batch(
        ParsedBatch(
            events=[
                ProviderEvent(
                    Signal(dedup_key("x"), "unione", {"status": "opened"}, T0, T0, raw={"email": "gleb.other@mail.example.com"}),
                    Correlation(email="gleb.other@mail.example.com"),
                ),
                # a click: the views keep the URL as clicked (``original_url``) beside the redacted one
                ProviderEvent(
                    Signal(
                        dedup_key("y"),
                        "unione",
                        {"status": "clicked"},
                        T0,
                        T0,
                        url="https://shop.example.com/?to=gleb.other@mail.example.com",
                        raw={"email": "gleb.other@mail.example.com"},
                    ),
                    Correlation(email="gleb.other@mail.example.com"),
                ),
            ]
        )
    )
    # a body nobody could parse, naming them: no key covers it, erasure redacts it
    app.quarantine([Quarantined("unione", f'{{"email": "{ADDRESS.lower()}", "name": "{NAME}", "status": ', "truncated JSON")])
    app.wait_for_views()


def counts(api: FlaskClient) -> dict[str, Any]:
    """Every answer about counts a marketer reads."""
    summary = api.get("/v1/mailings/spring/summary").json
    audience = api.get("/v1/mailings/spring/audience").json["items"]
    return {
        "summary": summary,
        "audience": [(i["contact_id"], i["response"], i["opens"], i["clicks"]) for i in audience],
        "timeline": api.get("/v1/mailings/spring/timeline").json,
        "links": api.get("/v1/mailings/spring/links").json,
        "flags": api.get("/v1/contacts/gleb").json["flags"],
    }


def stored_bytes(app: ResponsesApp) -> bytes:
    """Everything the store holds, as bytes: the SQLite file and its WAL, or a pg_dump."""
    url = app.settings.database_url
    if url.startswith("postgresql"):
        parsed = urlparse(url)
        dump = subprocess.run(
            [
                "pg_dump",
                "-h",
                parsed.hostname or "127.0.0.1",
                "-p",
                str(parsed.port or 5432),
                "-U",
                parsed.username or "postgres",
                parsed.path.lstrip("/"),
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        return dump.stdout
    path = Path(app.settings.eventsourcing_env()["SQLITE_DBNAME"])
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")) if p.is_file())


def hits(data: bytes) -> list[str]:
    lowered = data.lower()
    return [n for n in NEEDLES if n.encode().lower() in lowered]


def test_the_journal_holds_no_personal_field_in_clear(app: ResponsesApp) -> None:
    campaign(app)
    notifications = app.recorder.select_notifications(start=1, limit=10_000)
    # quarantined input is kept whole until an erasure redacts it (no key covers what could not be parsed)
    journal = b"".join(bytes(n.state) for n in notifications if not n.topic.endswith("SideRecord.Recorded"))
    assert hits(journal) == []
    assert b"gleb.other@mail.example.com" not in journal  # an address only an unmatched signal named
    assert b"203.0.113.7" not in journal  # the raw body's IP
    assert b"Mozilla/5.0" in journal  # the user agent stays in clear: machine-open rules read it
    assert b"u={email}" in journal  # the click URL's identity, the address replaced
    # an address's index and bucket are named by its keyed hash: nobody can recompute them from the address
    ids = {n.originator_id for n in notifications}
    for address in (ADDRESS, "gleb.other@mail.example.com"):
        assert address_id("unione", address.lower()) not in ids
        assert unmatched_bucket_id(email_bucket("unione", address.lower())) not in ids
    assert address_id("unione", app.privacy.hasher(ADDRESS)) in ids
    assert unmatched_bucket_id(email_bucket("unione", app.privacy.hasher("gleb.other@mail.example.com"))) in ids


def test_erase_destroys_every_copy_and_keeps_every_count(app: ResponsesApp, api: FlaskClient) -> None:
    campaign(app)
    before = counts(api)
    history_before = api.get("/v1/mailings/spring/recipients/gleb/history").json
    exported = api.get("/v1/contacts/gleb/export").json
    assert exported["erased_at"] is None and exported["email"] == ADDRESS
    [mailing] = exported["mailings"]
    assert (mailing["name"], mailing["email"]) == (NAME, ADDRESS)
    assert [s["raw"].get("ip") for s in mailing["signals"] if s["source"] == "unione"] == ["203.0.113.7"] * 3
    assert any(s.get("url", "").endswith(quote(ADDRESS.lower(), safe="")) for s in mailing["signals"])  # the original URL
    assert hits(stored_bytes(app)) != []  # the views keep clear copies until erasure

    r = api.post("/v1/contacts/gleb/erase", json={"basis": "GDPR art. 17 request 2026-12-01"})
    assert r.status_code == 200, r.json
    record = r.json
    assert record["contact_id"] == "gleb" and record["mailings"] == ["spring"] and record["signals"] == 4
    assert record["by"].startswith("token:")

    assert hits(stored_bytes(app)) == []
    assert counts(api) == before
    [kept] = api.get("/v1/quarantine").json["items"]
    assert "[erased]" in str(kept) and '"status": ' in str(kept)  # the rest of the body stays
    history = api.get("/v1/mailings/spring/recipients/gleb/history").json
    assert [(s["maps_to"], s["effect"], s["why"]) for s in history["signals"]] == [
        (s["maps_to"], s["effect"], s["why"]) for s in history_before["signals"]
    ]
    provider = [s for s in history["signals"] if s["source"] == "unione"]
    assert provider and all(s["raw"] is None and s.get("erased") is True for s in provider), provider
    contact = api.get("/v1/contacts/gleb").json
    assert contact["email"] is None and contact["erased_at"] == record["erased_at"]
    items = {i["contact_id"]: i for i in api.get("/v1/mailings/spring/audience").json["items"]}
    assert (items["gleb"]["email"], items["gleb"]["name"]) == (None, None) and items["gleb"]["erased_at"] == record["erased_at"]
    assert items["other"]["email"] == OTHER and items["other"]["erased_at"] is None  # a neighbour keeps everything
    assert api.get("/v1/contacts/gleb/export").json == {"contact_id": "gleb", "erased_at": record["erased_at"]}
    assert api.get("/v1/contacts", query_string={"email": ADDRESS}).json["items"] == []
    csv_rows = api.get("/v1/mailings/spring/audience.csv").get_data(as_text=True).splitlines()
    assert csv_rows[0].endswith(",erased_at")
    [gleb_row] = [r for r in csv_rows if r.startswith("gleb,")]
    assert gleb_row.startswith("gleb,,,") and gleb_row.endswith("," + record["erased_at"])

    again = api.post("/v1/contacts/gleb/erase", json={"basis": "GDPR art. 17 request 2026-12-01"})
    assert again.status_code == 200 and again.json == record  # idempotent
    listed = api.get("/v1/erasures").json
    assert listed["items"] == [record] and listed["next"] is None


def test_a_late_event_after_erasure_is_counted_and_keeps_nothing_personal(app: ResponsesApp, api: FlaskClient) -> None:
    campaign(app)
    assert api.post("/v1/contacts/gleb/erase", json={"basis": "152-FZ art. 21"}).status_code == 200
    opens = api.get("/v1/mailings/spring/audience").json["items"][0]["opens"]
    app.record_batch(ParsedBatch(events=[event("o9", "opened", ADDRESS, "gleb", 30)]))
    app.wait_for_views()
    after = {i["contact_id"]: i for i in api.get("/v1/mailings/spring/audience").json["items"]}["gleb"]
    assert after["opens"] == opens + 1
    assert hits(stored_bytes(app)) == []


def test_a_rebuild_after_erasure_folds_the_same_counts(app: ResponsesApp, api: FlaskClient) -> None:
    campaign(app)
    assert api.post("/v1/contacts/gleb/erase", json={"basis": "GDPR art. 17"}).status_code == 200
    before = counts(api)
    version = app.active_version()
    job = app.request_activation(version)
    app.jobs.execute(job["id"], version, follower=app.follower)
    assert app.job(job["id"])["status"] == "done"
    assert counts(api) == before
    assert hits(stored_bytes(app)) == []  # the rebuilt views hold nothing of them either


def test_a_suppression_survives_erasure(app: ResponsesApp, api: FlaskClient) -> None:
    campaign(app)
    app.record_batch(ParsedBatch(events=[event("u1", "unsubscribed", ADDRESS, "gleb", 40)]))
    app.wait_for_views()
    assert api.post("/v1/contacts/gleb/erase", json={"basis": "GDPR art. 17"}).status_code == 200
    app.create_mailing({"id": "summer", "name": "Summer", "category": "bulk", "email_type": "news", "provider": "unione"})
    app.add_audience("summer", [{"contact_id": "gleb", "email": ADDRESS}])
    outcome = app.dispatch("summer", now=T0 + timedelta(days=30))
    assert outcome["send"] == [] and "sent_to_provider" not in outcome["outcomes"]


def test_erase_refuses_what_it_cannot_do(app: ResponsesApp, api: FlaskClient) -> None:
    campaign(app)
    assert error_of(api.post("/v1/contacts/nobody/erase", json={"basis": "x"}))["code"]
    assert api.post("/v1/contacts/nobody/erase", json={"basis": "x"}).status_code == 404
    for body in ({}, {"basis": ""}, {"basis": "x" * 201}, {"basis": "\u000b "}):
        r = api.post("/v1/contacts/gleb/erase", json=body)
        assert r.status_code == 422, body
        error_of(r)
    assert api.get("/v1/contacts/gleb").json["erased_at"] is None  # nothing was erased
    assert api.get("/v1/contacts/nobody/export").status_code == 404


def test_a_bulk_erasure_is_a_job_with_one_pass_for_all(app: ResponsesApp, api: FlaskClient) -> None:
    campaign(app)
    before = counts(api)
    r = api.post(
        "/v1/erasures",
        json={"contact_ids": ["gleb", "nobody"], "emails": ["gleb.other@mail.example.com"], "basis": "GDPR art. 17 batch"},
    )
    assert r.status_code == 202, r.json
    app.jobs.run()
    job = api.get(f"/v1/jobs/{r.json['job']}").json
    assert job["status"] == "done" and job["result"] == {"erased": 1, "unknown": ["nobody"], "addresses": 1}
    assert hits(stored_bytes(app)) == []
    assert b"gleb.other@mail.example.com" not in stored_bytes(app)  # parked under an address nobody was sent to
    assert counts(api) == before
    assert [i["contact_id"] for i in api.get("/v1/erasures").json["items"]] == ["gleb"]
    for body in ({"basis": "x"}, {"contact_ids": ["a"] * 10_001, "basis": "x"}, {"contact_ids": ["a"]}):
        assert api.post("/v1/erasures", json=body).status_code == 422, body


def test_a_bulk_erasure_redacts_text_naming_people_of_different_chunks(app: ResponsesApp, api: FlaskClient) -> None:
    """A chunk at a time (here one contact a chunk): the quarantined body naming both people is redacted by
    the first chunk, then read again by the second (as the first left it) and redacted of the other."""
    campaign(app)
    app.quarantine([Quarantined("unione", f'{{"to": ["{ADDRESS}", "{OTHER}"], "status": ', "truncated JSON")])
    app.wait_for_views()
    before = counts(api)
    app.erasures.chunk = 1
    result = app.erasures.erase_many(["gleb", "other"], [], "GDPR art. 17 batch", None)
    assert result == {"erased": 2, "unknown": [], "addresses": 0}
    assert counts(api) == before
    stored = stored_bytes(app)
    assert hits(stored) == [] and OTHER.encode() not in stored
    bodies = [str(i) for i in api.get("/v1/quarantine").json["items"]]
    assert any('"to": ["[erased]", "[erased]"]' in b for b in bodies), bodies


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_stale_copy_a_page_keeps_in_its_unused_space_is_found_and_rebuilt_away(app: ResponsesApp, api: FlaskClient) -> None:
    # Found by the kill -9 test and measured on the bench's 75 MB file (1 single erasure in about 300 left the
    # address in the file): SQLite's secure_delete zeroes freed cells, not the stale copies of cells that a
    # page's rebalancing leaves in its unused space. Such a copy is made here by hand: written and deleted with
    # secure_delete off, so its bytes stay in a free part of the file.
    campaign(app)
    path = Path(app.settings.eventsourcing_env()["SQLITE_DBNAME"])
    raw = sqlite3.connect(path)
    try:
        raw.execute("PRAGMA secure_delete = OFF")
        raw.execute("CREATE TABLE IF NOT EXISTS scratch (t TEXT)")
        raw.execute("INSERT INTO scratch VALUES (?)", (f"a leftover of {ADDRESS.lower()} " * 20,))
        raw.commit()
        raw.execute("DELETE FROM scratch")
        raw.commit()
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    assert ADDRESS.lower().encode() in stored_bytes(app).lower()
    assert api.post("/v1/contacts/gleb/erase", json={"basis": "GDPR art. 17"}).status_code == 200
    assert hits(stored_bytes(app)) == [], "the file was read after the erasure, found holding a copy, and rebuilt"
