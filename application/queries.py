"""Queries the API serves, read from the active views (CONTRACT §5, §7)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol
from uuid import UUID

import orjson
from eventsourcing.application import Repository

from application.erasure import Erasures
from application.errors import NotFound
from domain.aggregates import Contact, Mailing, contact_id_of
from domain.catalogue import response_object
from domain.contacts import ContactState, apply_command
from domain.signals import PROVIDERS, iso, normalise_email, parse_iso
from projections.cursors import (
    LINK_CURSOR,
    MAX_SEQ,
    BadCursor,
    decode_cursor,
    decode_link_cursor,
    encode_cursor,
    encode_link_cursor,
)
from projections.reads import Row, ViewReads
from projections.summary import SummaryBuilder
from projections.views import mailing_row

__all__ = [
    "LINK_CURSOR",
    "MAX_PAGE",
    "MAX_SEQ",
    "BadCursor",
    "Queries",
    "decode_cursor",
    "decode_link_cursor",
    "encode_cursor",
    "encode_link_cursor",
    "unmatched_reason",
]

log = logging.getLogger("responses.queries")

MAX_PAGE = 1000
# A mailing journaled but not in the views yet: how long a read waits for them before it answers from the journal.
MISSING_MAILING_WAIT_SECONDS = 2.0


class QueriedApp(Protocol):
    """What the queries use of the application: its views' reads, and the journal for what they lack."""

    reads: ViewReads
    repository: Repository[UUID]
    erasures: Erasures

    def get_mailing_aggregate(self, mailing_id: str) -> Mailing: ...
    def wait_for_views(self, timeout: float | None = None) -> None: ...


class Queries:
    """The API's answers, shaped from the named reads of the active views (``projections.reads``)."""

    def __init__(self, app: QueriedApp):
        self.app = app
        self.reads = app.reads

    @staticmethod
    def _next(rows: list[Row], limit: int, key: str = "seq") -> str | None:
        """The cursor of the page after ``rows`` (read one past ``limit``), None on the last."""
        return encode_cursor(rows[limit - 1][key]) if len(rows) > limit and limit > 0 else None

    # ---- mailings ----------------------------------------------------------------------

    def _mailing_fields(self, r: Row) -> dict[str, Any]:
        m = mailing_row(r)
        return {
            "id": m.id,
            "name": m.name,
            "category": m.category,
            "email_type": m.email_type,
            "provider": m.provider,
            "expires_at": m.expires_at,
            "prevent_duplicates": m.prevent_duplicates,
            "started_at": iso(m.started_at),
        }

    def require_mailing(self, mailing_id: str) -> dict[str, Any]:
        """The mailing's fields from the views; one journaled but not projected yet (the projection is
        behind) is waited for briefly, then answered from the journal: it exists, whatever the views say."""
        row = self.reads.mailing(mailing_id)
        if row is None:
            mailing = self.app.get_mailing_aggregate(mailing_id)  # NotFound when it was never created
            self._wait_briefly()
            row = self.reads.mailing(mailing_id)
            if row is None:
                return {**mailing.fields(), "started_at": mailing.started_at}
        return self._mailing_fields(row)

    def _wait_briefly(self) -> None:
        try:
            self.app.wait_for_views(timeout=MISSING_MAILING_WAIT_SECONDS)
        except TimeoutError:
            log.warning("answering from the journal: the views are behind")

    def mailing(self, mailing_id: str) -> dict[str, Any]:
        fields = self.require_mailing(mailing_id)
        summary = self.summary(mailing_id)
        return {**fields, "summary": {k: summary[k] for k in ("audience", "sent", "delivered", "responses")}}

    def mailings(self) -> list[dict[str, Any]]:
        rows = self.reads.mailings()
        counts: dict[str, SummaryBuilder] = {}
        for r in self.reads.stats():
            counts.setdefault(r["mailing_id"], SummaryBuilder()).add(**_group_args(r))
        out = []
        for r in rows:
            s = counts.get(r["id"], SummaryBuilder()).result()
            out.append({**self._mailing_fields(r), "summary": {k: s[k] for k in ("audience", "sent", "delivered", "responses")}})
        return out

    # ---- analytics ---------------------------------------------------------------------

    def summary(self, mailing_id: str) -> dict[str, Any]:
        builder = SummaryBuilder()
        for r in self.reads.stats(mailing_id):
            builder.add(**_group_args(r))
        return builder.result()

    def audience(
        self, mailing_id: str, response: str | None = None, limit: int = 100, cursor: str | None = None, lang: str = "en"
    ) -> dict[str, Any]:
        self.require_mailing(mailing_id)
        rows = self.reads.audience_page(mailing_id, decode_cursor(cursor), limit + 1, response)
        erased = self.app.erasures.erased_at([r["contact_id"] for r in rows[:limit]])
        items = [
            {
                "contact_id": r["contact_id"],
                "name": r["name"],
                "email": r["email"],
                "response": response_object(r["response"], r["reason"], lang),
                "opens": r["opens"],
                "clicks": r["clicks"],
                "updated_at": r["updated_at"],
                "erased_at": erased.get(r["contact_id"]),
            }
            for r in rows[:limit]
        ]
        return {"items": items, "next": self._next(rows, limit)}

    def wave_send(self, mailing_id: str, wave: int, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        """The recipients one dispatch wave decided ``sent_to_provider``, in decision order: its send list again."""
        self.require_mailing(mailing_id)
        if not 1 <= wave <= self.app.get_mailing_aggregate(mailing_id).waves:  # the journal numbers the waves
            raise NotFound("wave", f"{mailing_id}/{wave}")
        rows = self.reads.wave_send_page(mailing_id, wave, decode_cursor(cursor), limit + 1)
        items = [
            {
                "contact_id": r["contact_id"],
                "email": r["email"],
                "metadata": {"mailing_id": mailing_id, "contact_id": r["contact_id"]},
            }
            for r in rows[:limit]
        ]
        return {"items": items, "next": self._next(rows, limit)}

    def timeline(self, mailing_id: str, hours: int = 48) -> dict[str, Any]:
        start = self._start(mailing_id)
        if start is None:
            return {"start": None, "buckets": []}
        opens, clicks = self._first_per_hour(mailing_id, start, hours)
        return {
            "start": iso(start),
            "buckets": [
                {"hour": h, "at": iso(start + timedelta(hours=h)), "first_opens": opens[h], "first_clicks": clicks[h]}
                for h in range(hours)
            ],
        }

    def _start(self, mailing_id: str) -> datetime | None:
        """When the mailing started: its dispatch, or, dispatched by the sender itself, its first reported sending."""
        start = parse_iso(self.require_mailing(mailing_id)["started_at"])
        return start if start is not None else parse_iso(self.reads.first_sent_at(mailing_id))

    def clock_timeline(self, mailing_id: str, hours: int, zone: tzinfo) -> dict[str, Any]:
        """First opens and first clicks on the clock of ``zone`` (CONTRACT §5): from the start of the hour
        (or, over 72 hours, of the day) the mailing started in, to ``hours`` after its start. Each bucket
        is a sum of the per-minute engagement rows; a time zone a quarter of an hour off UTC (+05:30,
        +05:45) splits hours at its own boundaries. ``unit`` is ``hour`` or ``day``; ``at`` is the
        bucket's local start."""
        start = self._start(mailing_id)
        unit = "day" if hours > CLOCK_HOURS_UP_TO else "hour"
        if start is None:
            return {"start": None, "unit": unit, "buckets": []}
        start, end = start.astimezone(UTC), start.astimezone(UTC) + timedelta(hours=hours)
        slots = clock_slots(start, end, zone, unit)
        index = {local: i for i, local in enumerate(slots)}
        opens, clicks = [0] * len(slots), [0] * len(slots)
        first = slots[0].astimezone(UTC)
        rows = self.reads.engagement_minutes(mailing_id, "00000000", minute_text(first), minute_text(end - timedelta(minutes=1)))
        for r in rows:
            at = datetime.fromisoformat(r["minute"]).replace(tzinfo=UTC)
            i = index.get(slot_of(at, zone, unit))
            if i is not None and first <= at < end:
                opens[i] += int(r["first_opens"])
                clicks[i] += int(r["first_clicks"])
        return {
            "start": iso(start),
            "unit": unit,
            "buckets": [
                {"at": local.isoformat(), "first_opens": opens[i], "first_clicks": clicks[i]} for i, local in enumerate(slots)
            ],
        }

    def _first_per_hour(self, mailing_id: str, start: datetime, hours: int) -> tuple[list[int], list[int]]:
        """Recipients whose first open and first click fall in each hour since ``start``, summed from the
        per-minute engagement buckets of the range (``ViewReads.engagement_minutes``). Each minute is split at
        the start's second of the minute, so every part lies in one hour: exact, fractions of a second included."""
        opens, clicks = [0] * hours, [0] * hours
        start = start.astimezone(UTC)
        start_minute = start.replace(second=0, microsecond=0)
        last_minute = start_minute + timedelta(hours=hours)
        rows = self.reads.engagement_minutes(
            mailing_id, start.strftime("%S%f"), minute_text(start_minute), minute_text(last_minute)
        )
        for r in rows:
            minute = datetime.fromisoformat(r["minute"]).replace(tzinfo=UTC)
            # minutes from the start's minute, one less when this part of the minute is before the start's second
            elapsed = int((minute - start_minute).total_seconds() // 60) - int(r["early"])
            hour = elapsed // 60
            if 0 <= hour < hours:
                opens[hour] += int(r["first_opens"])
                clicks[hour] += int(r["first_clicks"])
        return opens, clicks

    def links(self, mailing_id: str, limit: int = MAX_PAGE, cursor: str | None = None) -> dict[str, Any]:
        """The click map, a page at a time: links by clicks (most first), then URL (binary order on both
        stores), ``next`` the cursor of the following page (None on the last)."""
        self.require_mailing(mailing_id)
        after = decode_link_cursor(cursor)
        if after is not None:
            clicks, key = after
            after = (clicks, self._link_url(mailing_id, key))
        rows = self.reads.links_page(mailing_id, after, limit + 1)
        page = rows[:limit]
        more = len(rows) > limit and limit > 0
        return {
            "links": [{"url": r["url"], "clicks": int(r["clicks"]), "unique_clicks": int(r["unique_clicks"])} for r in page],
            "next": encode_link_cursor(int(page[-1]["clicks"]), page[-1]["url_key"]) if more else None,
        }

    def _link_url(self, mailing_id: str, key: str) -> str:
        """The URL a cursor's digest stands for: BadCursor when this mailing counts no clicks on it."""
        url = self.reads.link_url(mailing_id, key)
        if url is None:
            raise BadCursor("cursor is not one this API gave out for this mailing")
        return url

    def link_clickers(self, mailing_id: str) -> int:
        """The recipients who clicked any link of the mailing (the click map's shares are of this)."""
        return self.reads.link_clickers(mailing_id)

    # ---- contacts ------------------------------------------------------------------------

    def contact(self, contact_id: str, lang: str = "en") -> dict[str, Any]:
        state = self.reads.contact(contact_id) or self._journaled_contact(contact_id)
        return {
            "contact_id": contact_id,
            "email": state.email,
            "erased_at": self.app.erasures.erased_at([contact_id]).get(contact_id),
            "flags": state.flags(),
            "responses": [
                {
                    "mailing_id": r["mailing_id"],
                    "category": r["category"],
                    "response": response_object(r["response"], r["reason"], lang),
                    "opens": r["opens"],
                    "clicks": r["clicks"],
                    "mailing_name": r["mailing_name"],  # for the contact page (the API's schema answers what it documents)
                    "started_at": r["started_at"],
                    "updated_at": r["updated_at"],
                }
                for r in self.reads.contact_responses(contact_id)
            ],
        }

    def _journaled_contact(self, contact_id: str) -> ContactState:
        """A contact not in the views (yet): its manual commands from the journal, folded as the views
        will (signal effects come with the views). NotFound when nothing was ever journaled for it."""
        self._wait_briefly()
        state = self.reads.contact(contact_id)
        if state is not None:
            return state
        events = list(self.app.repository.event_store.get(contact_id_of(contact_id)))
        if not events:
            raise NotFound("contact", contact_id)
        state = ContactState()
        for e in events:
            if isinstance(e, Contact.CommandRecorded):  # type: ignore[attr-defined]
                state = apply_command(state, e.command)
        return state

    def contacts_by_email(self, email: str, lang: str = "en", limit: int = MAX_PAGE) -> list[dict[str, Any]]:
        """The contacts whose email is ``email`` (case and surrounding spaces aside), as ``contact`` answers them."""
        wanted = normalise_email(email)
        if wanted is None:
            return []
        return [self.contact(cid, lang) for cid in self.reads.contact_ids_by_email(wanted, limit)]

    def contacts_page(self, after: str | None = None, limit: int = 50) -> dict[str, Any]:
        """Contacts in id order, a page at a time (``next``: the last id of a full page)."""
        rows = self.reads.contacts_page(after or "", limit + 1)
        items = [
            {
                "contact_id": r["contact_id"],
                "email": r["email"],
                "do_not_use_email": bool(r["do_not_use_email"]),
                "email_is_actual": bool(r["email_is_actual"]),
            }
            for r in rows[:limit]
        ]
        return {"items": items, "next": items[-1]["contact_id"] if len(rows) > limit else None}

    # ---- the mailings list, paged -------------------------------------------------------------

    def mailing_list(
        self, category: str | None = None, search: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        """Mailings, newest first, with each one's summary (from ``mailing_stats``: no audience is read);
        ``category`` filters, ``search`` finds a part of the name or id (any case)."""
        before = decode_cursor(cursor) if cursor else MAX_SEQ
        rows = self.reads.mailing_page(before, category, search, limit + 1)
        return {"items": self._with_summaries(rows[:limit]), "next": self._next(rows, limit, "created_seq")}

    def mailing_table(
        self,
        category: str | None = None,
        search: str | None = None,
        sort: str = "date",
        descending: bool = True,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Every mailing that matches (at most ``MAX_TABLE``, newest first before sorting), each with its
        summary, sorted by ``sort`` (``date``, ``audience`` or a rate of ``RATES``; a mailing without that
        rate last either way); ``since``/``until`` bound the start (a mailing not started is outside a range)."""
        rows = self.reads.mailing_page(MAX_SEQ, category, search, MAX_TABLE)
        if since is not None or until is not None:
            rows = [r for r in rows if _started_within(r["started_at"], since, until)]
        items = self._with_summaries(rows)
        if sort == "date":
            items.sort(key=lambda m: (m["started_at"] or "", m["id"]), reverse=descending)
        elif sort == "audience":
            items.sort(key=lambda m: (m["summary"]["audience"], m["id"]), reverse=descending)
        else:
            known = [m for m in items if m["summary"]["rates"][sort] is not None]
            known.sort(key=lambda m: (m["summary"]["rates"][sort], m["id"]), reverse=descending)
            items = known + [m for m in items if m["summary"]["rates"][sort] is None]
        return items

    def compare(self, mailing_ids: list[str]) -> list[dict[str, Any]]:
        """The mailings asked for, in that order, each with its summary (``NotFound`` for an unknown one)."""
        rows = [self.reads.mailing(m) for m in mailing_ids]
        for mailing_id, row in zip(mailing_ids, rows, strict=True):
            if row is None:
                self.require_mailing(mailing_id)  # NotFound, or journaled and not projected yet: left out
        return self._with_summaries([r for r in rows if r is not None])

    def recent_medians(self, mailing_id: str, last: int = 10) -> dict[str, Any]:
        """Each rate's median over the ``last`` mailings of this one's category created before it (those
        with that rate), with how many there were: what a tile compares itself with."""
        row = self.reads.mailing(mailing_id)
        if row is None:
            return {"count": 0, "category": None, "rates": {}}
        before = self.reads.mailing_page(int(row["created_seq"]), row["category"], None, last)
        items = self._with_summaries(before)
        rates: dict[str, float | None] = {}
        for rate in RATES:
            values = sorted(m["summary"]["rates"][rate] for m in items if m["summary"]["rates"][rate] is not None)
            rates[rate] = _median(values)
        return {"count": len(items), "category": row["category"], "rates": rates}

    def _with_summaries(self, rows: list[Row]) -> list[dict[str, Any]]:
        builders: dict[str, SummaryBuilder] = {r["id"]: SummaryBuilder() for r in rows}
        ids = list(builders)
        for start in range(0, len(ids), 500):
            for r in self.reads.stats_of(ids[start : start + 500]):
                builders[r["mailing_id"]].add(**_group_args(r))
        return [{**self._mailing_fields(r), "summary": builders[r["id"]].result()} for r in rows]

    # ---- kept inputs ------------------------------------------------------------------------

    def side(self, kind: str, mailing_id: str | None = None, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        """Kept inputs of one kind; an unmatched item says why it matched nobody (``unmatched_reason``)."""
        rows = self.reads.side_page(kind, mailing_id, decode_cursor(cursor), limit + 1)
        items = []
        for r in rows[:limit]:
            item = {"id": r["id"], "source": r["source"], "received_at": r["received_at"], **orjson.loads(r["payload"])}
            if kind == "unmatched":
                item["reason"] = unmatched_reason(r["source"], r["provider"])
            items.append(item)
        return {"items": items, "next": self._next(rows, limit)}


MAX_TABLE = 5_000  # mailings a sorted table or a comparison reads at most
RATES = ("delivery", "open", "click", "click_to_open", "bounce", "unsubscribe", "spam_complaint")


def _started_within(started_at: Any, since: datetime | None, until: datetime | None) -> bool:
    started = parse_iso(started_at) if started_at else None
    if started is None:
        return False
    return (since is None or started >= since) and (until is None or started < until)


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


CLOCK_HOURS_UP_TO = 72  # a longer range is bucketed by day
_QUARTER = timedelta(minutes=15)  # every UTC offset in use is a multiple of a quarter of an hour


def slot_of(at: datetime, zone: tzinfo, unit: str) -> datetime:
    """The local start of the clock hour (or day) ``at`` falls in."""
    local = at.astimezone(zone)
    if unit == "day":
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.replace(minute=0, second=0, microsecond=0)


def clock_slots(start: datetime, end: datetime, zone: tzinfo, unit: str) -> list[datetime]:
    """Every local hour (or day) from the one ``start`` falls in to the one before ``end``, in order."""
    slots: list[datetime] = []
    at = start.replace(second=0, microsecond=0) - timedelta(minutes=start.minute % 15)
    floor = slot_of(start, zone, unit).astimezone(UTC)
    at = min(at, floor)
    while at < end:
        slot = slot_of(at, zone, unit)
        if not slots or slot != slots[-1]:
            slots.append(slot)
        at += _QUARTER
    return slots


def minute_text(at: datetime) -> str:
    """A UTC minute as the engagement buckets name it: ``YYYY-MM-DDTHH:MM``."""
    return at.isoformat()[:16]


def unmatched_reason(source: str, mailing_provider: str | None) -> str:
    """``provider_mismatch``: a provider's event about a mailing sent through another provider (it never
    matches); ``no_recipient``: nobody it names was sent to (yet)."""
    return "provider_mismatch" if source in PROVIDERS and mailing_provider not in (None, source) else "no_recipient"


def _group_args(r: Any) -> dict[str, Any]:
    return {
        "response": r["response"],
        "reason": r["reason"],
        "sent": bool(r["sent"]),
        "unique_open": bool(r["unique_open"]),
        "opens": int(r["opens"] or 0),
        "clicks": int(r["clicks"] or 0),
        "unique_click": bool(r["clicked"]),
        "count": int(r["n"]),
    }
