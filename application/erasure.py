"""Forget a contact (CONTRACT §12): erase a person from an immutable journal, keep every count right.

Erasure destroys the data keys of the contact and of every address it had (crypto-shredding: every
personal field the journal sealed under them is gone, in every copy), overwrites the views' clear copies
in the same transaction, keeps a record of destruction (the ``erasures`` table and a ``Contact.Erased``
event, neither holding personal data), and leaves the store's files without the old bytes (SQLite:
``secure_delete`` and a WAL checkpoint; PostgreSQL: ``VACUUM`` of the tables it touched).

A retry after a crash completes it: the keys and the views are erased before the record is journaled,
and each step is idempotent. The same call again answers the same.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from application.errors import NotFound
from application.persistence.journal_index import JournalRedaction
from application.persistence.schema import scrub_files, sqlite_file_holds
from application.unit_of_work import UnitOfWork, now_utc
from domain.aggregates import Contact, Job, contact_id_of, recipient_id
from domain.personal import contact_subject, json_escaped, person_patterns, redact_text
from domain.signals import iso
from projections.erasure import erase_from_views, people_in_views, person_in_views

if TYPE_CHECKING:
    from application.service import ResponsesApp

log = logging.getLogger("responses.erasure")

BASIS_MAX_CHARS = 200
BULK_MAX = 10_000  # contacts and addresses of one bulk erasure
ERASE = "erase"  # the bulk erasure's job kind (application.jobs runs it)
ERASURES = "erasures"
CHUNK = 250  # contacts a bulk erasure erases in one transaction (10,000: 40 of them)


def check_basis(basis: Any) -> str:
    """The legal basis an operator gives: free text, 1 to 200 characters."""
    if not isinstance(basis, str) or not basis.strip():
        raise ValueError("basis is required: why this contact is erased (e.g. 'GDPR art. 17 request 2026-12-01')")
    if len(basis) > BASIS_MAX_CHARS:
        raise ValueError(f"basis is at most {BASIS_MAX_CHARS} characters ({len(basis)} given)")
    return basis.strip()


class Erasures:
    """Erase contacts; list and export."""

    def __init__(self, app: ResponsesApp):
        self.app = app
        self.is_postgres = app.settings.is_postgres
        self.mark = "%s" if self.is_postgres else "?"
        self.redaction = JournalRedaction(app.journal_index)
        self.chunk = CHUNK

    @staticmethod
    def create_table(views: Any) -> None:
        """The records of erasures (under the schema lock, with the other tables)."""
        with views.cursor(commit=True) as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {ERASURES} (contact_id TEXT PRIMARY KEY, erased_at TEXT NOT NULL, "
                "basis TEXT NOT NULL, erased_by TEXT, signals INTEGER NOT NULL, mailings TEXT NOT NULL)"
            )

    # ---- reads ----------------------------------------------------------------------------------

    def record(self, contact_id: str) -> dict[str, Any] | None:
        """The record of an erasure, or None when the contact was not erased."""
        rows = self.app.views.fetch(
            f"SELECT contact_id, erased_at, basis, erased_by, signals, mailings FROM {ERASURES} WHERE contact_id = {self.mark}",
            (contact_id,),
        )
        return _answer(rows[0]) if rows else None

    def erased_at(self, contact_ids: list[str]) -> dict[str, str]:
        """When each of these contacts was erased (absent: not erased)."""
        found: dict[str, str] = {}
        for i in range(0, len(contact_ids), 500):
            part = contact_ids[i : i + 500]
            rows = self.app.views.fetch(
                f"SELECT contact_id, erased_at FROM {ERASURES} WHERE contact_id IN ({', '.join([self.mark] * len(part))})", part
            )
            found.update((r["contact_id"], r["erased_at"]) for r in rows)
        return found

    def page(self, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Erasures, most recent first, ``limit`` a page; ``after``: the page's cursor (erased_at, contact)."""
        where, params = "", []
        if after:
            at, _, cid = after.partition("|")
            where = f"WHERE (erased_at < {self.mark} OR (erased_at = {self.mark} AND contact_id < {self.mark}))"
            params = [at, at, cid]
        rows = self.app.views.fetch(
            f"SELECT contact_id, erased_at, basis, erased_by, signals, mailings FROM {ERASURES} {where} "
            f"ORDER BY erased_at DESC, contact_id DESC LIMIT {int(limit) + 1}",
            params,
        )
        items = [_answer(r) for r in rows[:limit]]
        more = len(rows) > limit
        return items, (f"{items[-1]['erased_at']}|{items[-1]['contact_id']}" if more and items else None)

    # ---- erase ----------------------------------------------------------------------------------

    def erase(self, contact_id: str, basis: str, by: str | None, now: datetime | None = None) -> dict[str, Any]:
        """Erase one contact: its keys destroyed, its clear copies overwritten, text naming it redacted, the
        store's files scrubbed; idempotent (the same record again); ``NotFound`` for an unknown contact."""
        basis = check_basis(basis)
        done = self.record(contact_id)
        if done is not None:  # erased: journaled too, unless a crash came between the two (then journaled now)
            self._journal({contact_id: done})
            return done
        self.app.wait_for_views()  # every recipient row of the contact is in the views
        started = time.monotonic()
        persons: set[str] = set()
        records, unknown = self._erase_chunk([contact_id], basis, by, iso(now or now_utc()), SideText(self.redaction), persons)
        if unknown:
            raise NotFound("contact", contact_id)
        self._scrub_files()
        if not self.is_postgres and sqlite_file_holds(self.app.views.datastore, stored_forms(persons)):
            # a stale copy of a rewritten cell in a page's unused space (1 erasure in about 300 on a 75 MB file):
            # found by reading the file, so the rare erasure that needs it pays for the rebuild, not every one
            log.info("erased contact %s: a stale copy left in the file, rebuilding it", contact_id)
            self._scrub_files(vacuum=True)
        log.info(
            "erased contact %s: %d signals in %d mailings, %.2f s",
            contact_id,
            records[contact_id]["signals"],
            len(records[contact_id]["mailings"]),
            time.monotonic() - started,
        )
        return self.record(contact_id) or {"contact_id": contact_id, **records[contact_id]}

    def erase_many(
        self,
        contact_ids: list[str],
        emails: list[str],
        basis: str,
        by: str | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """The bulk erasure a job runs: its contacts a chunk at a time (``chunk`` of them: one transaction for
        their keys, views, redaction and records, then their ``Contact.Erased`` events saved together), then
        the addresses it names (people who never became contacts: the signals parked under them and the text
        naming them), then one scrub of the store's files. Run again after a crash, it completes: an erased
        contact's record is found and only its event journaled if it is missing.

        On SQLite the scrub ends with a ``VACUUM`` (writers wait for it: about 1 s for a 75 MB file on the bench
        machine): ``secure_delete`` zeroes freed cells, not the copies of cells that rebalancing a page leaves
        in its unused space, and over thousands of contacts some address is all but sure to be in one (a
        single erasure, which does not vacuum, leaves one about every few hundred contacts on a big file)."""
        basis = check_basis(basis)
        self.app.wait_for_views()
        started = time.monotonic()
        at = iso(now_utc())
        wanted = list(dict.fromkeys(contact_ids))
        erased, unknown, total = 0, [], len(wanted) + 1
        side = SideText(self.redaction)  # the journal scanned once for the text no key covers, not once a chunk
        for start in range(0, len(wanted), self.chunk):
            records, missing = self._erase_chunk(wanted[start : start + self.chunk], basis, by, at, side)
            erased += len(records)
            unknown.extend(missing)
            if progress is not None:
                progress(min(start + self.chunk, len(wanted)), total)
        addresses = {e.strip().lower() for e in emails if e.strip()}
        self._erase_addresses(addresses, at, side)
        scrubbing = time.monotonic()
        self._scrub_files(vacuum=True)
        log.info(
            "bulk erasure: %d contacts erased, %d unknown, %d addresses, %.1f s (the files' scrub %.1f s of it)",
            erased,
            len(unknown),
            len(addresses),
            time.monotonic() - started,
            time.monotonic() - scrubbing,
        )
        if progress is not None:
            progress(total, total)
        return {"erased": erased, "unknown": unknown, "addresses": len(addresses)}

    def request_bulk(self, contact_ids: list[str], emails: list[str], basis: str, by: str | None) -> str:
        """Journal a bulk erasure as a job (the projection process runs it); its addresses sealed under the
        job's own key, destroyed once it has run. At most ``BULK_MAX`` contacts and addresses in all."""
        basis = check_basis(basis)
        if len(contact_ids) + len(emails) > BULK_MAX:
            raise ValueError(f"at most {BULK_MAX:,} contacts and addresses in all ({len(contact_ids) + len(emails):,} given)")
        if not contact_ids and not emails:
            raise ValueError("name at least one contact or address")
        job = uuid.uuid4().hex
        self.app.save(
            Job(
                job=job,
                kind=ERASE,
                rules_version=self.app.active_version(),
                requested_at=iso(now_utc()),
                request={"contact_ids": contact_ids, "emails": emails, "basis": basis, "by": by},
                subject=f"job:{job}",
            )
        )
        return job

    def forget_request(self, subject: str) -> None:
        """Destroy a bulk erasure job's own key: the addresses its request held can no longer be read."""
        with self.app.views.cursor(commit=True) as c:
            self.app.privacy.keys.destroy(c, [subject], iso(now_utc()))
        self.app.privacy.keys.forget_cached([subject])

    def _erase_chunk(
        self,
        contact_ids: list[str],
        basis: str,
        by: str | None,
        at: str,
        side: SideText,
        persons: set[str] | None = None,
    ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Erase a chunk of contacts: (the record of each erased, now or before; the unknown ones); ``persons``
        collects the addresses and names erased (as stored and lower-cased), for the check of the files.

        Reads first (the write below holds the store's writer), then one transaction: every key of theirs
        destroyed, the views' clear copies overwritten, the journal's side text naming them redacted, their
        records of erasure written; then their ``Contact.Erased`` events, saved together. A crash between the
        two leaves records without events: the next call finds the records and journals what is missing."""
        app = self.app
        records = self._records(contact_ids)
        pending = [cid for cid in contact_ids if cid not in records]
        present = app.journal_index.versions([contact_id_of(cid) for cid in pending]) if pending else {}
        unknown = [cid for cid in pending if contact_id_of(cid) not in present]
        pending = [cid for cid in pending if contact_id_of(cid) in present]
        contacts: dict[Any, Any] = {}
        if pending:
            contacts = app.load_many([contact_id_of(cid) for cid in pending])
            views = app.views
            with views.cursor(commit=False) as c:
                found = people_in_views(views, c, views.active_generation(), pending)
            addresses: set[str] = set()
            names: set[str] = set()
            for cid in pending:
                contact = contacts.get(contact_id_of(cid))
                if isinstance(contact, Contact) and contact.email:
                    found[cid].addresses.add(contact.email.strip().lower())
                    if persons is not None:
                        persons.add(contact.email.strip())
                addresses |= found[cid].addresses
                names |= found[cid].names
            if persons is not None:
                persons |= addresses | names
            subjects = [contact_subject(cid) for cid in pending] + [app.privacy.address_subject(a) for a in sorted(addresses)]
            address_pattern, name_pattern = _lazy(person_patterns, addresses), _lazy(person_patterns, names)
            redacted = self._redacted_side_records(side, addresses, address_pattern, name_pattern)
            signals = self._signals({cid: found[cid].mailings for cid in pending})
            fresh: dict[str, dict[str, Any]] = {
                cid: {"erased_at": at, "basis": basis, "by": by, "signals": signals[cid], "mailings": found[cid].mailings}
                for cid in pending
            }
            with views.cursor(commit=True) as c:  # one transaction: the keys destroyed, the clear copies overwritten, the records
                app.privacy.keys.destroy(c, subjects, at)
                erase_from_views(views, c, pending, addresses, address_pattern, name_pattern)
                self.redaction.rewrite(c, redacted)
                c.executemany(
                    f"INSERT INTO {ERASURES} (contact_id, erased_at, basis, erased_by, signals, mailings) VALUES "
                    f"({', '.join([self.mark] * 6)}) ON CONFLICT (contact_id) DO NOTHING",
                    [(cid, r["erased_at"], basis, by, r["signals"], ",".join(r["mailings"])) for cid, r in fresh.items()],
                )
            app.privacy.keys.forget_cached(subjects)
            records.update(fresh)
        self._journal(records, contacts)
        return records, unknown

    def _records(self, contact_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The records of erasure of those of these contacts that were erased, each without its id."""
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(contact_ids), 500):
            part = contact_ids[i : i + 500]
            rows = self.app.views.fetch(
                f"SELECT contact_id, erased_at, basis, erased_by, signals, mailings FROM {ERASURES} "
                f"WHERE contact_id IN ({', '.join([self.mark] * len(part))})",
                part,
            )
            for row in rows:
                answer = _answer(row)
                found[answer.pop("contact_id")] = answer
        return found

    def _signals(self, mailings: dict[str, list[str]]) -> dict[str, int]:
        """How many signals each contact's recipients hold (their journals' length less their facts)."""
        rids = {cid: [recipient_id(m, cid) for m in ms] for cid, ms in mailings.items()}
        every = [rid for ids in rids.values() for rid in ids]
        versions = self.app.journal_index.versions(every) if every else {}
        facts = self.app.journal_index.facts(every) if every else {}
        return {cid: sum(versions.get(r, 0) - len(facts.get(r, [])) for r in ids if r in versions) for cid, ids in rids.items()}

    def _erase_addresses(self, addresses: set[str], at: str, side: SideText) -> None:
        """Addresses' keys destroyed (what was parked under them), the views' copies overwritten, and the text
        no key covers redacted of every address: one pass, one transaction."""
        if not addresses:
            return
        app = self.app
        subjects = [app.privacy.address_subject(a) for a in sorted(addresses)]
        pattern = _lazy(person_patterns, addresses)
        redacted = self._redacted_side_records(side, addresses, pattern, None)
        with app.views.cursor(commit=True) as c:
            app.privacy.keys.destroy(c, subjects, at)
            erase_from_views(app.views, c, [], addresses, pattern)
            self.redaction.rewrite(c, redacted)
        app.privacy.keys.forget_cached(subjects)

    def export(self, contact_id: str) -> dict[str, Any]:
        """Everything kept about the contact, its personal fields opened (GDPR art. 15 and 20): the contact,
        every mailing it was in with its name and address there, and every signal as received. After
        erasure: only when it was erased."""
        done = self.record(contact_id)
        if done is not None:
            return {"contact_id": contact_id, "erased_at": done["erased_at"]}
        if not self._contact_exists(contact_id):
            raise NotFound("contact", contact_id)
        app = self.app
        app.wait_for_views()
        contact: Contact = app.repository.get(contact_id_of(contact_id))
        views = app.views
        with views.cursor(commit=False) as c:
            found = person_in_views(views, c, views.active_generation(), contact_id)
        rids = {m: recipient_id(m, contact_id) for m in found.mailings}
        facts = app.journal_index.facts(list(rids.values()))
        mailings = []
        for mailing_id, rid in rids.items():
            states = [app.mapper.transcoder.decode(e.state) for e in facts.get(rid, [])]
            joined: dict[str, Any] = next((s for s in states if "mailing_id" in s and "contact_id" in s), {})
            name, email = joined.get("name"), joined.get("email")
            for state in states:
                if "name" in state and "email" in state and "mailing_id" not in state:  # a details change
                    name, email = state["name"], state["email"]
            signals = []
            for _, record in app.journal_index.signals_of(rid):
                if record.get("original_url"):
                    record = {**record, "url": record["original_url"]}
                    del record["original_url"]
                signals.append(record)
            mailings.append({"mailing_id": mailing_id, "name": name, "email": email, "signals": signals})
        return {
            "contact_id": contact_id,
            "erased_at": None,
            "email": contact.email,
            "exported_at": iso(now_utc()),
            "mailings": mailings,
        }

    def _redacted_side_records(
        self,
        side: SideText,
        texts: set[str],
        addresses: Callable[[], re.Pattern[str] | None],
        names: Callable[[], re.Pattern[str] | None] | None,
    ) -> list[tuple[uuid.UUID, int, bytes]]:
        """The journal's quarantined input and notices that hold one of the people's addresses, those and
        (in them only: a name alone identifies no one) their names redacted; one pass. The patterns are made
        at the first record (a chunk's take a while to compile; most journals keep few such records)."""
        out = []
        for oid, version, state in side.records(texts):
            pattern = addresses()
            if pattern is None:
                return []
            text = state.decode("utf-8", "replace")
            redacted = redact_text(text, pattern, names() if names is not None else None)
            if redacted != text:
                out.append((oid, version, redacted.encode("utf-8")))
        return out

    def _journal(self, records: dict[str, dict[str, Any]], loaded: dict[Any, Any] | None = None) -> None:
        """The records of destruction as ``Contact.Erased`` events, once each: those missing saved together.
        ``loaded``: contacts just loaded (the first attempt uses them; one after a conflict loads afresh)."""
        if not records:
            return
        attempts: list[int] = []

        def journal(uow: UnitOfWork) -> None:
            if loaded and not attempts:
                for aggregate in loaded.values():
                    uow.add(aggregate)
            attempts.append(1)
            uow.prefetch([contact_id_of(cid) for cid in records])
            for cid, record in records.items():
                kept: Contact | None = uow.get(contact_id_of(cid))
                if kept is not None and kept.erased is None:
                    kept.erase(
                        erased_at=record["erased_at"],
                        basis=record["basis"],
                        by=record["by"],
                        signals=record["signals"],
                        mailings=record["mailings"],
                    )

        self.app._in_transaction(journal)

    def _contact_exists(self, contact_id: str) -> bool:
        return bool(self.app.journal_index.versions([contact_id_of(contact_id)]))

    def _scrub_files(self, vacuum: bool = False) -> None:
        """No old copy left in the store's files (``schema.scrub_files``), of the tables an erasure rewrites;
        ``vacuum``: on SQLite, the whole file rebuilt too (a bulk erasure: see ``erase_many``)."""
        views = self.app.views
        tables = ["data_keys", ERASURES] + [
            views.t(views.active_generation(), t) for t in ("recipients", "contacts", "wave_sends", "side", "checkpoints")
        ]
        scrub_files(views.datastore, self.is_postgres, tables, vacuum_sqlite=vacuum)


def stored_forms(persons: set[str]) -> list[bytes]:
    """What a stale copy of a person's row would hold, to look for in the files: the local part of each
    address as given and lower-cased (a view's row holds the first, an index on the lower-cased address the
    second; a row with the name holds the address too), or, for a person known only by name, the name as stored
    and JSON-escaped. Parts under three characters are not looked for (they would be found anywhere)."""
    addresses = {p.strip().rpartition("@")[0] for p in persons if "@" in p}
    forms = {form for local in addresses if len(local) >= 3 for form in (local, local.lower())}
    if not addresses:
        for name in (p.strip() for p in persons):
            if len(name) >= 3:
                forms.update({name, json_escaped(name)})
    return sorted((f.encode("utf-8") for f in forms), key=len, reverse=True)


class SideText:
    """The journal's text no key covers (quarantined input, notices) that an erasure may have to redact, read
    with one scan of the journal a bulk erasure, not one a chunk: the first read keeps the records that could
    name someone (every form of an address the patterns match holds "@" or "%40"), and later reads fetch
    those again by key, as they are now. An address without "@" (nothing vouches for the filter): a scan."""

    def __init__(self, redaction: JournalRedaction):
        self.redaction = redaction
        self.kept: list[tuple[uuid.UUID, int]] | None = None

    def records(self, addresses: set[str]) -> Iterable[tuple[uuid.UUID, int, bytes]]:
        if not addresses:
            return []
        if any("@" not in a for a in addresses):
            return self.redaction.side_records()
        if self.kept is None:
            found = [r for r in self.redaction.side_records() if b"@" in r[2] or b"%40" in r[2]]
            self.kept = [(oid, version) for oid, version, _ in found]
            return found
        return self.redaction.read(self.kept) if self.kept else []


def _lazy(make: Callable[[set[str]], re.Pattern[str] | None], texts: set[str]) -> Callable[[], re.Pattern[str] | None]:
    """``make(texts)`` made at the first call, then kept."""
    made: list[re.Pattern[str] | None] = []

    def pattern() -> re.Pattern[str] | None:
        if not made:
            made.append(make(texts))
        return made[0]

    return pattern


def _answer(row: Any) -> dict[str, Any]:
    return {
        "contact_id": row["contact_id"],
        "erased_at": row["erased_at"],
        "basis": row["basis"],
        "by": row["erased_by"],
        "signals": int(row["signals"]),
        "mailings": [m for m in str(row["mailings"]).split(",") if m],
    }
