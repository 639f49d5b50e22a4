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
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from application.errors import NotFound
from application.persistence.journal_index import JournalRedaction
from application.persistence.schema import scrub_files
from application.unit_of_work import UnitOfWork, now_utc
from domain.aggregates import Contact, Job, contact_id_of, recipient_id
from domain.personal import contact_subject, person_patterns, redact_text
from domain.signals import iso
from projections.erasure import ViewsErased, erase_from_views, person_in_views

if TYPE_CHECKING:
    from application.service import ResponsesApp

log = logging.getLogger("responses.erasure")

BASIS_MAX_CHARS = 200
BULK_MAX = 10_000  # contacts and addresses of one bulk erasure
ERASE = "erase"  # the bulk erasure's job kind (application.jobs runs it)
ERASURES = "erasures"


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
            self._journal(contact_id, done)
            return done
        self.app.wait_for_views()  # every recipient row of the contact is in the views
        started = time.monotonic()
        record, found = self._erase_one(contact_id, basis, by, iso(now or now_utc()), redact=True)
        self._scrub_files()
        log.info(
            "erased contact %s: %d signals in %d mailings, %.2f s",
            contact_id,
            record["signals"],
            len(found.mailings),
            time.monotonic() - started,
        )
        return self.record(contact_id) or record

    def erase_many(
        self,
        contact_ids: list[str],
        emails: list[str],
        basis: str,
        by: str | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """The bulk erasure a job runs: every contact as ``erase`` does, every address (people who never became
        contacts: the signals parked under it), then one redaction pass over the text no key covers for all
        of them, and one scrub of the store's files."""
        basis = check_basis(basis)
        self.app.wait_for_views()
        at = iso(now_utc())
        addresses: set[str] = {e.strip().lower() for e in emails if e.strip()}
        names: set[str] = set()
        erased, unknown, total = 0, [], len(contact_ids) + 1
        for n, contact_id in enumerate(dict.fromkeys(contact_ids)):
            done = self.record(contact_id)
            if done is not None:
                self._journal(contact_id, done)
                erased += 1
            else:
                try:
                    _, found = self._erase_one(contact_id, basis, by, at, redact=False)
                except NotFound:
                    unknown.append(contact_id)
                else:
                    erased += 1
                    addresses |= found.addresses
                    names |= found.names
            if progress is not None:
                progress(n + 1, total)
        self._erase_addresses(addresses, names, at)
        self._scrub_files()
        if progress is not None:
            progress(total, total)
        return {"erased": erased, "unknown": unknown, "addresses": len({e.strip().lower() for e in emails if e.strip()})}

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

    def _erase_one(
        self, contact_id: str, basis: str, by: str | None, at: str, redact: bool
    ) -> tuple[dict[str, Any], ViewsErased]:
        app = self.app
        if not self._contact_exists(contact_id):
            raise NotFound("contact", contact_id)
        contact: Contact = app.repository.get(contact_id_of(contact_id))
        views = app.views
        with views.cursor(commit=False) as c:  # read first: the write below holds the store's writer
            found = person_in_views(views, c, views.active_generation(), contact_id)
        if contact.email:
            found.addresses.add(contact.email.strip().lower())
        subjects = [contact_subject(contact_id)] + [app.privacy.address_subject(a) for a in sorted(found.addresses)]
        patterns = (person_patterns(found.addresses), person_patterns(found.names)) if redact else (None, None)
        redacted = self._redacted_side_records(*patterns)
        rids = [recipient_id(m, contact_id) for m in found.mailings]
        versions = app.journal_index.versions(rids)
        facts = app.journal_index.facts(rids)
        signals = sum(v - len(facts.get(rid, [])) for rid, v in versions.items())
        with views.cursor(commit=True) as c:  # one transaction: the keys destroyed, the clear copies overwritten, the record
            app.privacy.keys.destroy(c, subjects, at)
            erase_from_views(views, c, contact_id, found.addresses, *patterns)
            self.redaction.rewrite(c, redacted)
            c.execute(
                f"INSERT INTO {ERASURES} (contact_id, erased_at, basis, erased_by, signals, mailings) VALUES "
                f"({', '.join([self.mark] * 6)}) ON CONFLICT (contact_id) DO NOTHING",
                (contact_id, at, basis, by, signals, ",".join(found.mailings)),
            )
        app.privacy.keys.forget_cached(subjects)
        record = {"erased_at": at, "basis": basis, "by": by, "signals": signals, "mailings": found.mailings}
        self._journal(contact_id, record)
        return {"contact_id": contact_id, **record}, found

    def _erase_addresses(self, addresses: set[str], names: set[str], at: str) -> None:
        """Addresses' keys destroyed (what was parked under them), the views' copies overwritten, and the text
        no key covers redacted of every address (and, in text holding one, every name): one pass."""
        if not addresses:
            return
        app = self.app
        subjects = [app.privacy.address_subject(a) for a in sorted(addresses)]
        patterns = person_patterns(addresses), person_patterns(names)
        redacted = self._redacted_side_records(*patterns)
        with app.views.cursor(commit=True) as c:
            app.privacy.keys.destroy(c, subjects, at)
            erase_from_views(app.views, c, None, addresses, *patterns)
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
        self, addresses: re.Pattern[str] | None, names: re.Pattern[str] | None
    ) -> list[tuple[uuid.UUID, int, bytes]]:
        """The journal's quarantined input and notices that hold one of the person's addresses, those and
        (in them only: a name alone identifies no one) their names redacted; one pass."""
        if addresses is None:
            return []
        out = []
        for oid, version, state in self.redaction.side_records():
            text = state.decode("utf-8", "replace")
            redacted = redact_text(text, addresses, names)
            if redacted != text:
                out.append((oid, version, redacted.encode("utf-8")))
        return out

    def _journal(self, contact_id: str, record: dict[str, Any]) -> None:
        """The record of destruction as a ``Contact.Erased`` event, once."""

        def journal(uow: UnitOfWork) -> None:
            kept: Contact = uow.get(contact_id_of(contact_id))
            if kept.erased is None:
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

    def _scrub_files(self) -> None:
        """No old copy left in the store's files (``schema.scrub_files``), of the tables an erasure rewrites."""
        views = self.app.views
        tables = ["data_keys", ERASURES] + [
            views.t(views.active_generation(), t) for t in ("recipients", "contacts", "wave_sends", "side", "checkpoints")
        ]
        scrub_files(views.datastore, self.is_postgres, tables)


def _answer(row: Any) -> dict[str, Any]:
    return {
        "contact_id": row["contact_id"],
        "erased_at": row["erased_at"],
        "basis": row["basis"],
        "by": row["erased_by"],
        "signals": int(row["signals"]),
        "mailings": [m for m in str(row["mailings"]).split(",") if m],
    }
