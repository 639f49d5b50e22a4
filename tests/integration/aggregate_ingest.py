"""The write path of issue 14, kept as the reference the signal writer is checked against: every batch
through the aggregates (``Recipient.record``, ``UnmatchedBucket.park``, ``AddressIndex``, claims) in a
``UnitOfWork``, saved through the application's ``write_events``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from application.ingest import IngestCounts
from application.service import ResponsesApp
from application.unit_of_work import UnitOfWork, in_transaction, now_utc
from domain.aggregates import (
    AddressIndex,
    Mailing,
    Recipient,
    SideRecord,
    UnmatchedBucket,
    address_id,
    email_bucket,
    mailing_id_of,
    provider_mismatch,
    recipient_bucket,
    recipient_id,
    side_record_id,
    unmatched_bucket_id,
)
from domain.signals import SYSTEM, ParsedBatch, ProviderEvent, Quarantined, Signal, iso, normalise_email


def record_batch(app: ResponsesApp, batch: ParsedBatch) -> IngestCounts:
    """Journal a provider batch in one transaction: correlate, deduplicate, park the unmatched."""
    skew = app.settings.max_clock_skew
    batch = ParsedBatch(
        [ProviderEvent(e.signal.stamped(skew), e.correlation) for e in batch.events], batch.notices, batch.quarantined
    )

    def work(uow: UnitOfWork) -> IngestCounts:
        counts = IngestCounts()
        whole, lean = _batch_ids(batch, app.privacy.hasher)
        uow.prefetch(whole)
        for event in batch.events:  # email-only events: the recipient the address index points at
            c = event.correlation
            if not c.test and not (c.mailing_id and c.contact_id) and (address := normalise_email(c.email)):
                index: AddressIndex | None = uow.get(address_id(event.signal.source, app.privacy.hasher(address)))
                match = index.match(c.mailing_id, event.signal.occurred_at, skew) if index is not None else None
                if match is not None:
                    lean.setdefault(recipient_id(*match), set()).add(event.signal.key)
        uow.prefetch_lean(lean)
        parked: dict[uuid.UUID, set[str]] = {}
        for event in batch.events:
            c = event.correlation
            if not c.test and c.mailing_id and c.contact_id and uow.get(recipient_id(c.mailing_id, c.contact_id)) is None:
                parked.setdefault(unmatched_bucket_id(recipient_bucket(c.mailing_id, c.contact_id)), set()).add(event.signal.key)
        uow.prefetch_lean(parked)
        for event in batch.events:
            outcome = _record_event(app, uow, event)
            setattr(counts, outcome, getattr(counts, outcome) + 1)
        for notice in batch.notices:
            if _keep_side(
                uow,
                f"notice:{notice.key}",
                "notice",
                notice.provider,
                iso(notice.received_at),
                {"kind": notice.kind, "raw": notice.raw},
            ):
                counts.accepted += 1
            else:
                counts.duplicates += 1
        for item in batch.quarantined:
            if _quarantine(uow, item):
                counts.quarantined += 1
            else:
                counts.duplicates += 1
        return counts

    return in_transaction(app, work)


def _batch_ids(batch: ParsedBatch, known_as: Callable[[str], str]) -> tuple[list[uuid.UUID], dict[uuid.UUID, set[str]]]:
    ids: list[uuid.UUID] = []
    lean: dict[uuid.UUID, set[str]] = {}
    for event in batch.events:
        c, key = event.correlation, event.signal.key
        if c.test:
            ids.append(side_record_id(f"test:{key}"))
        elif c.mailing_id and c.contact_id:
            ids.append(mailing_id_of(c.mailing_id))
            lean.setdefault(recipient_id(c.mailing_id, c.contact_id), set()).add(key)
        elif (address := normalise_email(c.email)) is not None:
            ids.append(address_id(event.signal.source, known_as(address)))
            lean.setdefault(unmatched_bucket_id(email_bucket(event.signal.source, known_as(address))), set()).add(key)
        else:
            lean.setdefault(unmatched_bucket_id("nowhere"), set()).add(key)
    ids.extend(side_record_id(f"notice:{n.key}") for n in batch.notices)
    ids.extend(side_record_id(f"quarantine:{q.key}") for q in batch.quarantined)
    return ids, lean


def _quarantine(uow: UnitOfWork, item: Quarantined) -> bool:
    return _keep_side(uow, f"quarantine:{item.key}", "quarantine", item.source, iso(now_utc()), item.kept())


def _keep_side(uow: UnitOfWork, key: str, kind: str, source: str, received_at: str | None, payload: dict[str, Any]) -> bool:
    if uow.get(side_record_id(key)) is not None:
        return False
    uow.add(SideRecord(key=key, kind=kind, source=source, received_at=received_at, payload=payload))
    return True


def _record_event(app: ResponsesApp, uow: UnitOfWork, event: ProviderEvent) -> str:
    signal, corr = event.signal, event.correlation
    if corr.test:
        stored = _keep_side(
            uow,
            f"test:{signal.key}",
            "test_send",
            signal.source,
            iso(signal.received_at),
            {"mailing_id": corr.mailing_id, "contact_id": corr.contact_id, "email": corr.email, "signal": signal.to_record()},
        )
        return "accepted" if stored else "duplicates"
    recipient, bucket_name = _correlate(app, uow, signal, corr.mailing_id, corr.contact_id, corr.email)
    if recipient is not None:
        if not recipient.record(signal):
            return "duplicates"
        if signal.source == SYSTEM and signal.fields.get("kind") == "sent_to_provider":
            _sent_by_sender(app, uow, recipient, signal)
        return "accepted"
    bucket: UnmatchedBucket = uow.get_or_create(unmatched_bucket_id(bucket_name), lambda: UnmatchedBucket(bucket=bucket_name))
    parked = bucket.park(signal, {"mailing_id": corr.mailing_id, "contact_id": corr.contact_id, "email": corr.email})
    return "unmatched" if parked else "duplicates"


def _correlate(
    app: ResponsesApp, uow: UnitOfWork, signal: Signal, mailing_id: str | None, contact_id: str | None, email: str | None
) -> tuple[Recipient | None, str]:
    if mailing_id and contact_id:
        mailing: Mailing | None = uow.get(mailing_id_of(mailing_id))
        if mailing is not None and provider_mismatch(signal, mailing.provider):
            return None, recipient_bucket(mailing_id, contact_id)
        return uow.get(recipient_id(mailing_id, contact_id)), recipient_bucket(mailing_id, contact_id)
    address = normalise_email(email)
    if address is None:
        return None, "nowhere"
    known_as = app.privacy.hasher(address)  # the keyed hash names an address's index and bucket (CONTRACT §12)
    index: AddressIndex | None = uow.get(address_id(signal.source, known_as))
    match = index.match(mailing_id, signal.occurred_at, app.settings.max_clock_skew) if index is not None else None
    if match is not None:
        return uow.get(recipient_id(*match)), email_bucket(signal.source, known_as)
    return None, email_bucket(signal.source, known_as)


def _sent_by_sender(app: ResponsesApp, uow: UnitOfWork, recipient: Recipient, signal: Signal) -> None:
    address = normalise_email(recipient.email)
    mailing: Mailing | None = uow.get(mailing_id_of(recipient.mailing_id))
    if address is not None and mailing is not None:
        _index_address(app, uow, mailing.provider, address, recipient, signal.effective_time)


def _index_address(app: ResponsesApp, uow: UnitOfWork, provider: str, address: str, recipient: Recipient, at: datetime) -> None:
    app._index_address(uow, provider, address, recipient, at)
