"""Sealing a journal written before personal data was sealed (CONTRACT §12): once, resumable, with progress.

Every event that holds personal fields gets its subject and has them sealed in place, aggregate by
aggregate in primary-key order (a recipient's ``Joined`` names the contact whose key seals its later
events; a bucket's ``Opened`` names its address), a page per transaction; the position reached is kept
in ``data_keys_meta`` so a restart goes on from there. SQLite is vacuumed at the end (no free page keeps
an old copy); PostgreSQL's dead row versions are vacuumed too.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from application.persistence.journal_index import JournalIndex, _uuid, key_digest
from application.persistence.schema import scrub_files
from domain.aggregates import address_id, email_bucket, unmatched_bucket_id
from domain.personal import SEALED, SUBJECT, address_subject, contact_subject
from projections.erasure import rekey_side
from projections.views import ViewsMixin

log = logging.getLogger("responses.sealing")

PAGE = 2000
META = "data_keys_meta"
DONE = "sealed"

ADDRESS_OPENED = "domain.aggregates:AddressIndex.Opened"
BUCKET_OPENED = "domain.aggregates:UnmatchedBucket.Opened"
PARKED = "domain.aggregates:UnmatchedBucket.Parked"

PERSONAL_TOPICS = (
    "domain.aggregates:Recipient.Joined",
    "domain.aggregates:Recipient.DetailsChanged",
    "domain.aggregates:Recipient.SignalRecorded",
    "domain.aggregates:Contact.CommandRecorded",
    "domain.aggregates:AddressIndex.Opened",
    "domain.aggregates:UnmatchedBucket.Opened",
    "domain.aggregates:UnmatchedBucket.Parked",
)


class JournalSealing:
    """Seals the personal fields of events stored before sealing existed."""

    def __init__(
        self,
        index: JournalIndex,
        seal: Callable[[dict[str, Any]], dict[str, Any]],
        prepare: Callable[[set[str]], None],
        hash_address: Callable[[str], str],
        views: ViewsMixin | None = None,
    ):
        self.index = index
        self.views = views
        self.seal = seal
        self.prepare = prepare
        self.hash_address = hash_address
        self.mark = "%s" if index.is_postgres else "?"

    def create_table(self, c: Any) -> None:
        c.execute(f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def state(self) -> str | None:
        rows = self.index._fetch(f"SELECT value FROM {META} WHERE key = {self.mark}", [DONE])
        return str(rows[0]["value"]) if rows else None

    def start(self, c: Any) -> None:
        """The first start of this version marks what there is to do: nothing on a new journal ("done"), from
        the start on an older one (""). One statement that writes first, so it never reads before it
        writes beside a busy writer (SQLite would refuse the upgrade of its read lock at once)."""
        c.execute(
            f"INSERT INTO {META} (key, value) SELECT {self.mark}, CASE WHEN EXISTS (SELECT 1 FROM {self.index.table}) "
            "THEN '' ELSE 'done' END ON CONFLICT (key) DO NOTHING",
            (DONE,),
        )

    def run(self) -> int:
        """Seal what is left; the number of events sealed."""
        after = self.state()
        if after is None or after == "done":
            return 0
        mark = self.mark
        topics = ", ".join(f"'{t}'" for t in PERSONAL_TOPICS)
        started, sealed, seen = time.monotonic(), 0, 0
        subject_of: dict[uuid.UUID, str | None] = {}  # the aggregate being walked: its subject (aggregates come whole, in order)
        position: tuple[str, int] | None = None
        if after:
            oid_text, _, version = after.partition("/")
            position = (oid_text, int(version))
        log.warning("sealing the personal data of a journal written before it was sealed (once; resumable)")
        if not after:  # first, the address indexes and buckets named by clear addresses take their keyed names
            self.rekey()
        while True:
            where = ""
            params: list[Any] = []
            if position is not None:
                oid = uuid.UUID(position[0])
                where = f"AND (originator_id, originator_version) > ({mark}, {mark})"
                params = [oid if self.index.is_postgres else oid.hex, position[1]]
            rows = self.index._fetch(
                f"SELECT originator_id, originator_version, topic, state FROM {self.index.table} WHERE topic IN ({topics}) {where} "
                f"ORDER BY originator_id, originator_version LIMIT {PAGE}",
                params,
            )
            if not rows:
                break
            states = []
            for row in rows:
                oid = _uuid(row["originator_id"])
                state = orjson.loads(bytes(row["state"]))
                if oid not in subject_of:
                    subject_of.clear()
                    subject_of[oid] = self._subject_of(oid, state)
                    if subject_of[oid] is None and row["originator_version"] > 1:  # resumed mid-aggregate: read its first event
                        subject_of[oid] = self._subject_of(oid, self._first_state(oid))
                subject = subject_of[oid]
                if subject is not None and SEALED not in state and SUBJECT not in state:
                    states.append((oid, int(row["originator_version"]), {**state, SUBJECT: subject}))
            self.prepare({s[SUBJECT] for _, _, s in states})
            rewritten = [(oid, version, orjson.dumps(self.seal(state))) for oid, version, state in states]
            last = rows[-1]
            position = (_uuid(last["originator_id"]).hex, int(last["originator_version"]))
            with self.index.recorder.datastore.transaction(commit=True) as c:
                c.executemany(
                    f"UPDATE {self.index.table} SET state = {mark} WHERE originator_id = {mark} AND originator_version = {mark}",
                    [(state, oid if self.index.is_postgres else oid.hex, version) for oid, version, state in rewritten],
                )
                c.execute(f"UPDATE {META} SET value = {mark} WHERE key = {mark}", (f"{position[0]}/{position[1]}", DONE))
            sealed += len(rewritten)
            seen += len(rows)
            log.info("sealed %d of %d events read (%.0f s)", sealed, seen, time.monotonic() - started)
        with self.index.recorder.datastore.transaction(commit=True) as c:
            c.execute(f"UPDATE {META} SET value = 'done' WHERE key = {mark}", (DONE,))
        self._vacuum()
        log.warning("sealed the personal data of %d events in %.1f s", sealed, time.monotonic() - started)
        return sealed

    def rekey(self) -> int:
        """Address indexes and address buckets named by the clear address (their ids a UUIDv5 of it) renamed by
        its keyed hash, rows moved in place (notification ids kept), their dedup digests and the views' parked
        rows with them. Idempotent: what is named by a hash already is left alone."""
        mark = self.mark
        rows = self.index._fetch(
            f"SELECT originator_id, topic, state FROM {self.index.table} WHERE topic IN ({mark}, {mark}) AND originator_version = 1",
            [ADDRESS_OPENED, BUCKET_OPENED],
        )
        moved = 0
        for row in rows:
            old = _uuid(row["originator_id"])
            state = orjson.loads(bytes(row["state"]))
            renamed = self._renamed(row["topic"], state)
            if renamed is None:
                continue
            new, state = renamed
            if new == old:
                continue
            self._move(old, new, orjson.dumps(state))
            moved += 1
        if moved:
            log.warning("renamed %d address indexes and buckets by their keyed hash", moved)
        return moved

    def _renamed(self, topic: str, state: dict[str, Any]) -> tuple[uuid.UUID, dict[str, Any]] | None:
        if topic == ADDRESS_OPENED and "@" in str(state.get("email") or "") and not state.get("known_as"):
            known = self.hash_address(str(state["email"]))
            return address_id(str(state["provider"]), known), {**state, "known_as": known}
        bucket = str(state.get("bucket") or "")
        if topic == BUCKET_OPENED and bucket.startswith("email:") and "@" in bucket:
            _, provider, address = bucket.split(":", 2)
            name = email_bucket(provider, self.hash_address(address))
            return unmatched_bucket_id(name), {**state, "bucket": name}
        return None

    def _move(self, old: uuid.UUID, new: uuid.UUID, opened: bytes) -> None:
        pg = self.index.is_postgres
        mark = self.mark
        parked = self.index._fetch(
            f"SELECT originator_version, state FROM {self.index.table} WHERE originator_id = {mark} AND topic = {mark}",
            [old if pg else old.hex, PARKED],
        )
        keys = [(int(r["originator_version"]), orjson.loads(bytes(r["state"]))["signal"]["key"]) for r in parked]
        with self.index.recorder.datastore.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {self.index.table} SET originator_id = {mark} WHERE originator_id = {mark}",
                (new if pg else new.hex, old if pg else old.hex),
            )
            c.execute(
                f"UPDATE {self.index.table} SET state = {mark} WHERE originator_id = {mark} AND originator_version = 1",
                (opened, new if pg else new.hex),
            )
            if keys:
                c.executemany(f"DELETE FROM signal_digests WHERE digest = {mark}", [(key_digest(old, k),) for _, k in keys])
                self.index.insert_digests(c, [(new, v, k) for v, k in keys])
            if self.views is not None:
                rekey_side(self.views, c, old.hex, new.hex)

    def _first_state(self, oid: uuid.UUID) -> dict[str, Any]:
        rows = self.index._fetch(
            f"SELECT state FROM {self.index.table} WHERE originator_id = {self.mark} AND originator_version = 1",
            [oid if self.index.is_postgres else oid.hex],
        )
        return orjson.loads(bytes(rows[0]["state"])) if rows else {}

    def _subject_of(self, oid: uuid.UUID, first: dict[str, Any]) -> str | None:
        """Whose key seals an aggregate's events, from its first event: a recipient's contact, an address
        index's address, an address bucket's address, a recipient bucket's contact."""
        topic = str(first.get("originator_topic", ""))
        if topic.endswith(":Recipient") and first.get("contact_id"):
            return contact_subject(str(first["contact_id"]))
        if topic.endswith(":AddressIndex") and first.get("email"):
            return address_subject(self.hash_address(str(first["email"])))
        if topic.endswith(":AddressIndex") and first.get("known_as"):
            return address_subject(str(first["known_as"]))
        bucket = str(first.get("bucket") or "")
        if bucket.startswith("email:"):
            named = bucket.split(":", 2)[2]
            return address_subject(self.hash_address(named) if "@" in named else named)
        if bucket.startswith("recipient:"):
            return contact_subject(bucket.split(":", 2)[2])
        command = first.get("command")
        if isinstance(command, dict) and command.get("contact_id"):  # a contact's events: each names it
            return contact_subject(str(command["contact_id"]))
        return None

    def _vacuum(self) -> None:
        """No free page or dead row version keeps a copy of what was rewritten."""
        scrub_files(self.index.recorder.datastore, self.index.is_postgres, [self.index.table], vacuum_sqlite=True)
