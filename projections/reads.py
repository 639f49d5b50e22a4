"""Named reads of the active views: every SQL statement that reads a view table for the application.

The application asks for what it needs by name (the planned recipients of a mailing, a page of its
audience, a contact's responses …) and shapes the answers; the tables, their columns and the SQL
that reads them are known here only, beside ``projections.views`` which defines and writes them.
Each read takes the active generation at the time it is made (CONTRACT §5, §7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.catalogue import PREPARING, RESPONSES
from domain.contacts import ContactState
from projections.views import ENGAGEMENT_SHAPE, ViewsMixin, load_contact, seconds_of_minute

Row = Mapping[str, Any]

# The recipients' columns an audience page answers, and those that name a recipient to a command.
AUDIENCE_COLUMNS = "contact_id, name, email, response, reason, opens, clicks, updated_at, seq"
TARGET_COLUMNS = "mailing_id, contact_id"
# A group of a mailing's recipients alike (``mailing_stats``), as the summaries add them up.
STATS_COLUMNS = "mailing_id, response, NULLIF(reason, '') AS reason, sent, unique_open, clicked, recipients AS n, opens, clicks"
# The recipients' times that the timeline counts a minute at a time.
FIRST_TIMES = ("first_open_at", "first_click_at")
# Responses that wait for the provider's confirmation (the sweep records a check for them).
AWAITING = tuple(code for code, response in RESPONSES.items() if response.group == PREPARING)
STOPPABLE = ("planned", "ready_to_send", "queued")


@dataclass(frozen=True)
class PlannedRecipient:
    """A recipient a dispatch decides: in audience order, with its contact as the views hold it."""

    contact_id: str
    name: str | None
    email: str | None
    contact: ContactState


class ViewReads:
    """The reads the application makes of the active views (a generation read per call)."""

    def __init__(self, views: ViewsMixin):
        self.views = views

    def _t(self, name: str) -> str:
        return self.views.t(self.views.active_generation(), name)

    def _fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        return self.views.fetch(sql, params)

    def _in(self, n: int) -> str:
        return ",".join("?" * n)

    # ---- what commands decide from (dispatch, stop, sweep) -------------------------------------

    def planned_recipients(self, mailing_id: str) -> list[PlannedRecipient]:
        """A mailing's recipients still ``planned``, in audience order, each with its contact's state."""
        g = self.views.active_generation()
        rows = self._fetch(
            f"SELECT r.contact_id, r.name, r.email, c.state AS contact_state FROM {self.views.t(g, 'recipients')} r "
            f"LEFT JOIN {self.views.t(g, 'contacts')} c ON c.contact_id = r.contact_id "
            "WHERE r.mailing_id = ? AND r.response = 'planned' ORDER BY r.seq",
            (mailing_id,),
        )
        return [
            PlannedRecipient(
                r["contact_id"], r["name"], r["email"], load_contact(r["contact_state"]) if r["contact_state"] else ContactState()
            )
            for r in rows
        ]

    def sent_addresses(self, mailing_id: str) -> list[str | None]:
        """The addresses of a mailing's recipients already sent to (as journaled, not normalised)."""
        rows = self._fetch(
            f"SELECT email FROM {self._t('recipients')} WHERE mailing_id = ? AND sent_at IS NOT NULL", (mailing_id,)
        )
        return [r["email"] for r in rows]

    def stoppable_recipients(self, mailing_id: str) -> list[tuple[str, str]]:
        """(mailing, contact) of the recipients a stop stops: planned, ready to send or queued."""
        rows = self._fetch(
            f"SELECT {TARGET_COLUMNS} FROM {self._t('recipients')} "
            f"WHERE mailing_id = ? AND response IN ({self._in(len(STOPPABLE))}) ORDER BY seq",
            (mailing_id, *STOPPABLE),
        )
        return [(r["mailing_id"], r["contact_id"]) for r in rows]

    def expired_planned(self, now: str) -> list[tuple[str, str]]:
        """(mailing, contact) of planned recipients of mailings that expired before ``now`` (ISO UTC)."""
        g = self.views.active_generation()
        rows = self._fetch(
            f"SELECT r.mailing_id, r.contact_id FROM {self.views.t(g, 'recipients')} r "
            f"JOIN {self.views.t(g, 'mailings')} m ON m.id = r.mailing_id "
            "WHERE r.response = 'planned' AND m.expires_at IS NOT NULL AND m.expires_at < ? ORDER BY r.seq",
            (now,),
        )
        return [(r["mailing_id"], r["contact_id"]) for r in rows]

    def awaiting_confirmation(self) -> list[tuple[str, str]]:
        """(mailing, contact) of recipients sent to whose response still waits for the provider."""
        rows = self._fetch(
            f"SELECT {TARGET_COLUMNS} FROM {self._t('recipients')} WHERE sent_at IS NOT NULL "
            f"AND response IN ({self._in(len(AWAITING))}) ORDER BY seq",
            AWAITING,
        )
        return [(r["mailing_id"], r["contact_id"]) for r in rows]

    # ---- mailings ------------------------------------------------------------------------------

    def mailing(self, mailing_id: str) -> Row | None:
        rows = self._fetch(f"SELECT * FROM {self._t('mailings')} WHERE id = ?", (mailing_id,))
        return rows[0] if rows else None

    def mailings(self) -> list[Row]:
        return self._fetch(f"SELECT * FROM {self._t('mailings')} ORDER BY created_seq")

    def mailing_page(self, before: int, category: str | None, search: str | None, limit: int) -> list[Row]:
        """Mailings created before ``before`` (their ``created_seq``), newest first, at most ``limit``;
        ``category`` filters, ``search`` finds a part of the name or id (any case)."""
        sql = f"SELECT * FROM {self._t('mailings')} WHERE created_seq < ?"
        params: tuple[Any, ...] = (before,)
        if category:
            sql += " AND category = ?"
            params += (category,)
        if search:
            like = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql += " AND (LOWER(name) LIKE ? ESCAPE '\\' OR LOWER(id) LIKE ? ESCAPE '\\')"
            params += (like, like)
        return self._fetch(sql + " ORDER BY created_seq DESC LIMIT ?", params + (limit,))

    def stats(self, mailing_id: str | None = None) -> list[Row]:
        """The groups of recipients alike (``mailing_stats``) of one mailing, or of all (no audience is read)."""
        if mailing_id is None:
            return self._fetch(f"SELECT {STATS_COLUMNS} FROM {self._t('mailing_stats')} WHERE recipients > 0")
        return self._fetch(
            f"SELECT {STATS_COLUMNS} FROM {self._t('mailing_stats')} WHERE mailing_id = ? AND recipients > 0", (mailing_id,)
        )

    def stats_of(self, mailing_ids: Sequence[str]) -> list[Row]:
        """``stats`` of these mailings, in one read."""
        if not mailing_ids:
            return []
        return self._fetch(
            f"SELECT {STATS_COLUMNS} FROM {self._t('mailing_stats')} "
            f"WHERE recipients > 0 AND mailing_id IN ({self._in(len(mailing_ids))})",
            tuple(mailing_ids),
        )

    # ---- a mailing's recipients -----------------------------------------------------------------

    def audience_page(self, mailing_id: str, after: int, limit: int, response: str | None = None) -> list[Row]:
        """Recipients after the ``seq`` ``after``, in audience order, at most ``limit`` (of one response)."""
        sql = f"SELECT {AUDIENCE_COLUMNS} FROM {self._t('recipients')} WHERE mailing_id = ? AND seq > ?"
        params: tuple[Any, ...] = (mailing_id, after)
        if response:
            sql += " AND response = ?"
            params += (response,)
        return self._fetch(sql + " ORDER BY seq LIMIT ?", params + (limit,))

    def wave_send_page(self, mailing_id: str, wave: int, after: int, limit: int) -> list[Row]:
        """The recipients one dispatch wave decided ``sent_to_provider``, in decision order, after ``after``."""
        return self._fetch(
            f"SELECT contact_id, email, seq FROM {self._t('wave_sends')} WHERE mailing_id = ? AND wave = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (mailing_id, wave, after, limit),
        )

    def first_sent_at(self, mailing_id: str) -> str | None:
        """When a mailing's first recipient was reported sent (a mailing its sender dispatched itself): kept in
        its row (views of an older shape: the earliest of its recipients')."""
        g, shape = self.views.active_shape()
        if shape >= ENGAGEMENT_SHAPE:
            rows = self._fetch(f"SELECT first_sent_at AS first FROM {self.views.t(g, 'mailings')} WHERE id = ?", (mailing_id,))
        else:
            rows = self._fetch(
                f"SELECT MIN(sent_at) AS first FROM {self.views.t(g, 'recipients')} WHERE mailing_id = ?", (mailing_id,)
            )
        return rows[0]["first"] if rows else None

    def engagement_minutes(self, mailing_id: str, second_of_start: str, first_minute: str, last_minute: str) -> list[Row]:
        """First opens and first clicks of a mailing by UTC minute from ``first_minute`` to ``last_minute``
        (``YYYY-MM-DDTHH:MM``), each minute split at ``second_of_start`` (the mailing's start's second of the
        minute, ``%S%f``): ``minute``, ``early`` (1: before it), ``first_opens``, ``first_clicks``.

        Read from the engagement buckets: at most two rows a minute of the range, however many recipients.
        Views of an older shape (served while their replacement is built) count the recipients' first times
        by SQL instead, the mailing's whole audience read."""
        g, shape = self.views.active_shape()
        if shape >= ENGAGEMENT_SHAPE:
            return self._fetch(
                f"SELECT minute, early, first_opens, first_clicks FROM {self.views.t(g, 'engagement')} "
                "WHERE mailing_id = ? AND minute >= ? AND minute <= ?",
                (mailing_id, first_minute, last_minute),
            )
        found: dict[tuple[str, int], dict[str, Any]] = {}
        for column, counted in (("first_open_at", "first_opens"), ("first_click_at", "first_clicks")):
            for r in self._first_times_by_minute(g, column, mailing_id, second_of_start):
                row = found.setdefault(
                    (r["minute"], int(r["early"])),
                    {"minute": r["minute"], "early": int(r["early"]), "first_opens": 0, "first_clicks": 0},
                )
                row[counted] = int(r["n"])
        return list(found.values())

    def first_times_by_minute(self, column: str, mailing_id: str, second_of_start: str) -> list[Row]:
        """``_first_times_by_minute`` of the active generation (kept for callers from before the engagement buckets)."""
        return self._first_times_by_minute(self.views.active_generation(), column, mailing_id, second_of_start)

    def _first_times_by_minute(self, g: int, column: str, mailing_id: str, second_of_start: str) -> list[Row]:
        """Recipients by the minute of their ``column`` (``FIRST_TIMES``, stored UTC ISO times), split in
        each minute at ``second_of_start`` (``%S%f``): ``minute``, ``early`` (1: before it) and ``n``,
        counted by SQL (views of an older shape, without the engagement buckets)."""
        if column not in FIRST_TIMES:
            raise ValueError(f"not a first time: {column!r}")
        return self._fetch(
            f"SELECT substr({column}, 1, 16) AS minute, CASE WHEN {seconds_of_minute(column)} < ? THEN 1 ELSE 0 END AS early, "
            f"COUNT(*) AS n FROM {self.views.t(g, 'recipients')} WHERE mailing_id = ? AND {column} IS NOT NULL GROUP BY 1, 2",
            (second_of_start, mailing_id),
        )

    # ---- the click map ----------------------------------------------------------------------------

    def links_page(self, mailing_id: str, after: tuple[int, str] | None, limit: int) -> list[Row]:
        """Links by clicks (most first), then URL (binary order on both stores): ``url_key``, ``url``,
        ``clicks``, ``unique_clicks``, after the link ``after`` (its clicks and URL), at most ``limit``.
        SQL totals each URL's rows and answers only the page's links."""
        url = 'url COLLATE "C"' if self.views.placeholder == "%s" else "url"
        totals = (
            f"SELECT url_key, MIN(url) AS url, SUM(clicks) AS clicks, COUNT(*) AS unique_clicks FROM {self._t('link_clicks')} "
            "WHERE mailing_id = ? GROUP BY url_key"
        )
        params: tuple[Any, ...] = (mailing_id,)
        where = ""
        if after is not None:
            clicks, after_url = after
            where = f" WHERE clicks < ? OR (clicks = ? AND {url} > ?)"
            params += (clicks, clicks, after_url)
        return self._fetch(
            f"SELECT url_key, url, clicks, unique_clicks FROM ({totals}) AS totals{where} ORDER BY clicks DESC, {url} LIMIT ?",
            params + (limit,),
        )

    def link_url(self, mailing_id: str, url_key: str) -> str | None:
        """The URL a digest stands for among a mailing's clicks (None: no click on it)."""
        rows = self._fetch(
            f"SELECT url FROM {self._t('link_clicks')} WHERE mailing_id = ? AND url_key = ? LIMIT 1", (mailing_id, url_key)
        )
        return str(rows[0]["url"]) if rows else None

    def link_clickers(self, mailing_id: str) -> int:
        """The recipients who clicked any link of the mailing (each once, however many links they clicked)."""
        rows = self._fetch(
            f"SELECT COUNT(DISTINCT contact_id) AS n FROM {self._t('link_clicks')} WHERE mailing_id = ?", (mailing_id,)
        )
        return int(rows[0]["n"]) if rows else 0

    # ---- contacts --------------------------------------------------------------------------------

    def contact(self, contact_id: str) -> ContactState | None:
        rows = self._fetch(f"SELECT state FROM {self._t('contacts')} WHERE contact_id = ?", (contact_id,))
        return load_contact(rows[0]["state"]) if rows else None

    def contact_responses(self, contact_id: str) -> list[Row]:
        """A contact's recipients in audience order, each with its mailing's category, name and start."""
        g = self.views.active_generation()
        return self._fetch(
            "SELECT r.mailing_id, m.category, m.name AS mailing_name, m.started_at, r.response, r.reason, r.opens, r.clicks, "
            f"r.updated_at FROM {self.views.t(g, 'recipients')} r "
            f"JOIN {self.views.t(g, 'mailings')} m ON m.id = r.mailing_id WHERE r.contact_id = ? ORDER BY r.seq",
            (contact_id,),
        )

    def contact_ids_by_email(self, address: str, limit: int) -> list[str]:
        """Contacts whose email, lower-cased, is ``address``, in id order."""
        rows = self._fetch(
            f"SELECT contact_id FROM {self._t('contacts')} WHERE LOWER(email) = ? ORDER BY contact_id LIMIT ?", (address, limit)
        )
        return [r["contact_id"] for r in rows]

    def contacts_page(self, after: str, limit: int) -> list[Row]:
        """Contacts after the id ``after``, in id order, at most ``limit``."""
        return self._fetch(
            f"SELECT contact_id, email, do_not_use_email, email_is_actual FROM {self._t('contacts')} "
            "WHERE contact_id > ? ORDER BY contact_id LIMIT ?",
            (after, limit),
        )

    # ---- kept inputs -------------------------------------------------------------------------------

    def side_page(self, kind: str, mailing_id: str | None, after: int, limit: int) -> list[Row]:
        """Kept inputs of one kind after ``after``, in journal order (unclaimed ones, for the unmatched),
        each with the provider of the mailing it names as the views know it now (``provider``)."""
        g = self.views.active_generation()
        sql = (
            f"SELECT s.id, s.source, s.mailing_id, s.received_at, s.seq, s.payload, m.provider FROM {self.views.t(g, 'side')} s "
            f"LEFT JOIN {self.views.t(g, 'mailings')} m ON m.id = s.mailing_id WHERE s.kind = ? AND s.seq > ?"
        )
        params: tuple[Any, ...] = (kind, after)
        if kind == "unmatched":
            sql += " AND s.claimed = 0"
        if mailing_id is not None:
            sql += " AND s.mailing_id = ?"
            params += (mailing_id,)
        return self._fetch(sql + " ORDER BY seq LIMIT ?", params + (limit,))
