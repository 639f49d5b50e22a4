"""Queries the API serves, read from the active views (CONTRACT §5, §7)."""

from __future__ import annotations

import base64
import logging
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from application.errors import NotFound
from domain.aggregates import Contact, contact_id_of
from domain.catalogue import response_object
from domain.contacts import ContactState, apply_command
from domain.signals import PROVIDERS, iso, normalise_email, parse_iso
from projections.summary import SummaryBuilder
from projections.views import load_contact, mailing_row

if TYPE_CHECKING:
    from application.service import ResponsesApp

log = logging.getLogger("responses.queries")

MAX_PAGE = 1000
# A mailing journaled but not in the views yet: how long a read waits for them before it answers from the journal.
MISSING_MAILING_WAIT_SECONDS = 2.0
MAX_SEQ = 2**63 - 1  # a view's seq is a 64-bit integer on both stores


class BadCursor(ValueError):
    pass


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if len(text) > 20 or not text.startswith("s") or not text[1:].isascii() or not text[1:].isdigit():
            raise ValueError
        seq = int(text[1:])
        if seq > MAX_SEQ:
            raise ValueError
        return seq
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("cursor is not one this API gave out") from None


LINK_CURSOR = re.compile(r"l(\d{1,19}):([0-9a-f]{32})")


def encode_link_cursor(clicks: int, key: str) -> str:
    """The click map's cursor: the last link's clicks and URL digest (a URL may be too long for a cursor)."""
    return base64.urlsafe_b64encode(f"l{clicks}:{key}".encode()).decode().rstrip("=")


def decode_link_cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    try:
        if len(cursor) > 80:
            raise ValueError
        matched = LINK_CURSOR.fullmatch(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii"))
        if matched is None or int(matched.group(1)) > MAX_SEQ:
            raise ValueError
        return int(matched.group(1)), matched.group(2)
    except (ValueError, UnicodeError):  # binascii.Error is a ValueError
        raise BadCursor("cursor is not one this API gave out") from None


class Queries:
    def __init__(self, app: "ResponsesApp"):
        self.app = app

    @property
    def _g(self) -> int:
        return self.app.generation()

    def _t(self, name: str) -> str:
        return self.app.views.t(self._g, name)

    def _fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self.app.views.fetch(sql, params)

    def _page(self, sql: str, params: tuple[Any, ...], limit: int) -> tuple[list[Any], str | None]:
        """One page of rows in ``seq`` order, and the cursor of the next page (None on the last)."""
        rows = self._fetch(sql + " ORDER BY seq LIMIT ?", params + (limit + 1,))
        more = len(rows) > limit and limit > 0
        return rows[:limit], encode_cursor(rows[limit - 1]["seq"]) if more else None

    # ---- mailings ----------------------------------------------------------------------

    def _mailing_fields(self, r: Any) -> dict[str, Any]:
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
        rows = self._fetch(f"SELECT * FROM {self._t('mailings')} WHERE id = ?", (mailing_id,))
        if not rows:
            mailing = self.app.get_mailing_aggregate(mailing_id)  # NotFound when it was never created
            self._wait_briefly()
            rows = self._fetch(f"SELECT * FROM {self._t('mailings')} WHERE id = ?", (mailing_id,))
            if not rows:
                return {**mailing.fields(), "started_at": mailing.started_at}
        return self._mailing_fields(rows[0])

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
        rows = self._fetch(f"SELECT * FROM {self._t('mailings')} ORDER BY created_seq")
        counts: dict[str, SummaryBuilder] = {}
        for r in self._grouped(None):
            counts.setdefault(r["mailing_id"], SummaryBuilder()).add(**_group_args(r))
        out = []
        for r in rows:
            s = counts.get(r["id"], SummaryBuilder()).result()
            out.append({**self._mailing_fields(r), "summary": {k: s[k] for k in ("audience", "sent", "delivered", "responses")}})
        return out

    # ---- analytics ---------------------------------------------------------------------

    def _grouped(self, mailing_id: str | None) -> list[Any]:
        """The recipients in groups alike, from the ``mailing_stats`` view (the projector keeps it: no audience is read)."""
        where, params = ("WHERE mailing_id = ? AND recipients > 0", (mailing_id,)) if mailing_id is not None else ("WHERE recipients > 0", ())
        return self._fetch(
            "SELECT mailing_id, response, NULLIF(reason, '') AS reason, sent, unique_open, clicked, recipients AS n, opens, clicks "
            f"FROM {self._t('mailing_stats')} {where}",
            params,
        )

    def summary(self, mailing_id: str) -> dict[str, Any]:
        builder = SummaryBuilder()
        for r in self._grouped(mailing_id):
            builder.add(**_group_args(r))
        return builder.result()

    def audience(
        self, mailing_id: str, response: str | None = None, limit: int = 100, cursor: str | None = None, lang: str = "en"
    ) -> dict[str, Any]:
        self.require_mailing(mailing_id)
        after = decode_cursor(cursor)
        sql = (
            f"SELECT contact_id, name, email, response, reason, opens, clicks, updated_at, seq FROM {self._t('recipients')} "
            "WHERE mailing_id = ? AND seq > ?"
        )
        params: tuple[Any, ...] = (mailing_id, after)
        if response:
            sql += " AND response = ?"
            params += (response,)
        rows, next_cursor = self._page(sql, params, limit)
        items = [
            {
                "contact_id": r["contact_id"],
                "name": r["name"],
                "email": r["email"],
                "response": response_object(r["response"], r["reason"], lang),
                "opens": r["opens"],
                "clicks": r["clicks"],
                "updated_at": r["updated_at"],
            }
            for r in rows
        ]
        return {"items": items, "next": next_cursor}

    def wave_send(self, mailing_id: str, wave: int, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        """The recipients one dispatch wave decided ``sent_to_provider``, in decision order: its send list again."""
        self.require_mailing(mailing_id)
        if not 1 <= wave <= self.app.get_mailing_aggregate(mailing_id).waves:  # the journal numbers the waves
            raise NotFound("wave", f"{mailing_id}/{wave}")
        sql = f"SELECT contact_id, email, seq FROM {self._t('wave_sends')} WHERE mailing_id = ? AND wave = ? AND seq > ?"
        rows, next_cursor = self._page(sql, (mailing_id, wave, decode_cursor(cursor)), limit)
        items = [
            {"contact_id": r["contact_id"], "email": r["email"], "metadata": {"mailing_id": mailing_id, "contact_id": r["contact_id"]}}
            for r in rows
        ]
        return {"items": items, "next": next_cursor}

    def timeline(self, mailing_id: str, hours: int = 48) -> dict[str, Any]:
        mailing = self.require_mailing(mailing_id)
        start = parse_iso(mailing["started_at"])
        if start is None:  # dispatched by the sender itself: its first reported sending
            first = self._fetch(f"SELECT MIN(sent_at) AS first FROM {self._t('recipients')} WHERE mailing_id = ?", (mailing_id,))
            start = parse_iso(first[0]["first"]) if first else None
        if start is None:
            return {"start": None, "buckets": []}
        opens = self._first_per_hour("first_open_at", mailing_id, start, hours)
        clicks = self._first_per_hour("first_click_at", mailing_id, start, hours)
        return {
            "start": iso(start),
            "buckets": [
                {"hour": h, "at": iso(start + timedelta(hours=h)), "first_opens": opens[h], "first_clicks": clicks[h]}
                for h in range(hours)
            ],
        }

    def _first_per_hour(self, column: str, mailing_id: str, start: datetime, hours: int) -> list[int]:
        """Recipients whose ``column`` (a stored UTC ISO time) falls in each hour since ``start``, counted by SQL a
        minute at a time (no row of the audience reaches Python). Each minute is split at the start's second of
        the minute, so every group lies in one hour: exact, fractions of a second included."""
        seconds = f"substr({column}, 18, 2) || CASE WHEN substr({column}, 20, 1) = '.' THEN substr({column}, 21, 6) ELSE '000000' END"
        rows = self._fetch(
            f"SELECT substr({column}, 1, 16) AS minute, CASE WHEN {seconds} < ? THEN 1 ELSE 0 END AS early, COUNT(*) AS n "
            f"FROM {self._t('recipients')} WHERE mailing_id = ? AND {column} IS NOT NULL GROUP BY 1, 2",
            (start.strftime("%S%f"), mailing_id),
        )
        counts = [0] * hours
        start_minute = start.replace(second=0, microsecond=0)
        for r in rows:
            minute = datetime.fromisoformat(r["minute"]).replace(tzinfo=start.tzinfo)
            # minutes from the start's minute, one less when this minute's time is before the start's second
            elapsed = int((minute - start_minute).total_seconds() // 60) - int(r["early"])
            hour = elapsed // 60
            if 0 <= hour < hours:
                counts[hour] += int(r["n"])
        return counts

    def links(self, mailing_id: str, limit: int = MAX_PAGE, cursor: str | None = None) -> dict[str, Any]:
        """The click map, a page at a time: links by clicks (most first), then URL (binary order on both
        stores), ``next`` the cursor of the following page (None on the last). SQL totals each URL's
        rows (the table's key: mailing, URL digest, contact) and answers only the page's links."""
        self.require_mailing(mailing_id)
        after = decode_link_cursor(cursor)
        url = 'url COLLATE "C"' if self.app.settings.is_postgres else "url"
        totals = (
            f"SELECT url_key, MIN(url) AS url, SUM(clicks) AS clicks, COUNT(*) AS unique_clicks FROM {self._t('link_clicks')} "
            "WHERE mailing_id = ? GROUP BY url_key"
        )
        params: tuple[Any, ...] = (mailing_id,)
        where = ""
        if after is not None:
            clicks, key = after
            where = f" WHERE clicks < ? OR (clicks = ? AND {url} > ?)"
            params += (clicks, clicks, self._link_url(mailing_id, key))
        rows = self._fetch(f"SELECT url_key, url, clicks, unique_clicks FROM ({totals}) AS totals{where} ORDER BY clicks DESC, {url} LIMIT ?",
                           params + (limit + 1,))
        page = rows[:limit]
        more = len(rows) > limit and limit > 0
        return {
            "links": [{"url": r["url"], "clicks": int(r["clicks"]), "unique_clicks": int(r["unique_clicks"])} for r in page],
            "next": encode_link_cursor(int(page[-1]["clicks"]), page[-1]["url_key"]) if more else None,
        }

    def _link_url(self, mailing_id: str, key: str) -> str:
        """The URL a cursor's digest stands for: BadCursor when this mailing counts no clicks on it."""
        rows = self._fetch(f"SELECT url FROM {self._t('link_clicks')} WHERE mailing_id = ? AND url_key = ? LIMIT 1", (mailing_id, key))
        if not rows:
            raise BadCursor("cursor is not one this API gave out for this mailing")
        return str(rows[0]["url"])

    def link_clickers(self, mailing_id: str) -> int:
        """Unique clickers summed over every link of the mailing (the click map's shares are of this)."""
        rows = self._fetch(f"SELECT COUNT(*) AS n FROM {self._t('link_clicks')} WHERE mailing_id = ?", (mailing_id,))
        return int(rows[0]["n"]) if rows else 0

    # ---- contacts ------------------------------------------------------------------------

    def contact(self, contact_id: str, lang: str = "en") -> dict[str, Any]:
        rows = self._fetch(f"SELECT state FROM {self._t('contacts')} WHERE contact_id = ?", (contact_id,))
        state = load_contact(rows[0]["state"]) if rows else self._journaled_contact(contact_id)
        responses = self._fetch(
            f"SELECT r.mailing_id, m.category, m.name AS mailing_name, m.started_at, r.response, r.reason, r.opens, r.clicks, "
            f"r.updated_at FROM {self._t('recipients')} r "
            f"JOIN {self._t('mailings')} m ON m.id = r.mailing_id WHERE r.contact_id = ? ORDER BY r.seq",
            (contact_id,),
        )
        return {
            "contact_id": contact_id,
            "email": state.email,
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
                for r in responses
            ],
        }

    def _journaled_contact(self, contact_id: str) -> ContactState:
        """A contact not in the views (yet): its manual commands from the journal, folded as the views
        will (signal effects come with the views). NotFound when nothing was ever journaled for it."""
        self._wait_briefly()
        rows = self._fetch(f"SELECT state FROM {self._t('contacts')} WHERE contact_id = ?", (contact_id,))
        if rows:
            return load_contact(rows[0]["state"])
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
        rows = self._fetch(
            f"SELECT contact_id FROM {self._t('contacts')} WHERE LOWER(email) = ? ORDER BY contact_id LIMIT ?", (wanted, limit)
        )
        return [self.contact(r["contact_id"], lang) for r in rows]

    def contacts_page(self, after: str | None = None, limit: int = 50) -> dict[str, Any]:
        """Contacts in id order, a page at a time (``next``: the last id of a full page)."""
        rows = self._fetch(
            f"SELECT contact_id, email, do_not_use_email, email_is_actual FROM {self._t('contacts')} "
            "WHERE contact_id > ? ORDER BY contact_id LIMIT ?",
            (after or "", limit + 1),
        )
        items = [
            {"contact_id": r["contact_id"], "email": r["email"], "do_not_use_email": bool(r["do_not_use_email"]),
             "email_is_actual": bool(r["email_is_actual"])}
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
        sql = f"SELECT * FROM {self._t('mailings')} WHERE created_seq < ?"
        params: tuple[Any, ...] = (before,)
        if category:
            sql += " AND category = ?"
            params += (category,)
        if search:
            like = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql += " AND (LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(id) LIKE ? ESCAPE '\\')"
            params += (like, like)
        rows = self._fetch(sql + " ORDER BY created_seq DESC LIMIT ?", params + (limit + 1,))
        page = rows[:limit]
        builders: dict[str, SummaryBuilder] = {r["id"]: SummaryBuilder() for r in page}
        if builders:
            ids = list(builders)
            stats = self._fetch(
                "SELECT mailing_id, response, NULLIF(reason, '') AS reason, sent, unique_open, clicked, recipients AS n, opens, clicks "
                f"FROM {self._t('mailing_stats')} WHERE recipients > 0 AND mailing_id IN ({','.join('?' * len(ids))})",
                tuple(ids),
            )
            for r in stats:
                builders[r["mailing_id"]].add(**_group_args(r))
        items = [{**self._mailing_fields(r), "summary": builders[r["id"]].result()} for r in page]
        return {"items": items, "next": encode_cursor(page[-1]["created_seq"]) if len(rows) > limit else None}

    # ---- kept inputs ------------------------------------------------------------------------

    def side(self, kind: str, mailing_id: str | None = None, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        """Kept inputs of one kind; an unmatched item says why it matched nobody (``unmatched_reason``)."""
        after = decode_cursor(cursor)
        # the provider of the mailing an unmatched signal names, as the views know it now
        sql = (
            f"SELECT s.id, s.source, s.mailing_id, s.received_at, s.seq, s.payload, m.provider FROM {self._t('side')} s "
            f"LEFT JOIN {self._t('mailings')} m ON m.id = s.mailing_id WHERE s.kind = ? AND s.seq > ?"
        )
        params: tuple[Any, ...] = (kind, after)
        if kind == "unmatched":
            sql += " AND s.claimed = 0"
        if mailing_id is not None:
            sql += " AND s.mailing_id = ?"
            params += (mailing_id,)
        rows, next_cursor = self._page(sql, params, limit)
        items = []
        for r in rows:
            item = {"id": r["id"], "source": r["source"], "received_at": r["received_at"], **orjson.loads(r["payload"])}
            if kind == "unmatched":
                item["reason"] = unmatched_reason(r["source"], r["provider"])
            items.append(item)
        return {"items": items, "next": next_cursor}


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

