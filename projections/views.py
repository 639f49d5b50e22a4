"""View tables, written in batches atomically with the library's tracking records.

``ViewRecorder`` extends the ``eventsourcing`` tracking recorder of the store
in use (SQLite or PostgreSQL), so a batch of view writes and the position of
the last event it applied commit in one transaction: each event is applied
exactly once, even after a crash.

Views live in generations (``rv<N>_*`` tables). The active generation is the
one the API reads; a rebuild fills a fresh generation under new rules, then
the active pointer is swapped in one transaction.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from eventsourcing.persistence import OperationalError, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder

from domain.contacts import ContactState
from domain.fold import RecipientState, SeenKeys
from domain.signals import iso, parse_iso
from projections.projector import (
    EngagementKey,
    FoldCheckpoint,
    MailingRow,
    MemoryStore,
    RecipientRow,
    SideRow,
    WaveSendRow,
    minute_split,
    signal_term,
)

_TABLES = (
    "mailings",
    "recipients",
    "link_clicks",
    "contacts",
    "side",
    "wave_sends",
    "signal_terms",
    "mailing_stats",
    "checkpoints",
    "engagement",
)

# The shape of the view tables this code writes and reads. A change of their schema (a table or a column
# more, rows of another meaning) adds one; a generation built under an older shape is replaced at the start of
# the projection process by one built under this shape (``application.jobs``), and is read as it is meanwhile.
# 1: everything before the engagement buckets (including views from before fold checkpoints, whose recipient
#    rows carry no version); 2: the per-minute engagement buckets, and the mailings' ``first_sent_at``.
VIEW_SHAPE = 2
LEGACY_SHAPE = 1  # a generation whose shape was never written
ENGAGEMENT_SHAPE = 2  # the first shape with the engagement buckets


def shape_key(generation: int) -> str:
    """Meta key: the view shape a generation was built under (none: ``LEGACY_SHAPE``)."""
    return f"views-g{generation}-shape"


def shape_of(value: str | None) -> int:
    return int(value) if value else LEGACY_SHAPE


def terms_key(generation: int) -> str:
    """Meta key: this generation keeps the scope index (``signal_terms``) from its first event."""
    return f"views-g{generation}-terms"


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:32]


LEGACY_MAILING_COLUMNS = (
    "id",
    "name",
    "category",
    "email_type",
    "provider",
    "expires_at",
    "prevent_duplicates",
    "created_seq",
    "started_at",
)
MAILING_COLUMNS = (*LEGACY_MAILING_COLUMNS, "first_sent_at")


def mailing_columns(shape: int) -> tuple[str, ...]:
    return MAILING_COLUMNS if shape >= ENGAGEMENT_SHAPE else LEGACY_MAILING_COLUMNS


# Each mailing's first opens and first clicks by UTC minute, each minute split in two at its start's second
# (``projections.projector.engagement_key``): kept by the projector as first times happen or move earlier.
ENGAGEMENT_COLUMNS = ("mailing_id", "minute", "early", "first_opens", "first_clicks")
RECIPIENT_COLUMNS = (
    "rid",
    "mailing_id",
    "contact_id",
    "name",
    "email",
    "seq",
    "response",
    "reason",
    "sent",
    "opens",
    "clicks",
    "unique_open",
    "sent_at",
    "first_open_at",
    "first_click_at",
    "updated_at",
    "state",
)
# Each mailing's recipients in groups alike (CONTRACT §5 analytics without reading the audience): kept by the
# projector, batch by batch, with the other views; a row's ``reason`` is "" when the group has none.
MAILING_STATS_COLUMNS = ("mailing_id", "response", "reason", "sent", "unique_open", "clicked", "recipients", "opens", "clicks")
MAILING_STATS_DDL = (
    "CREATE TABLE IF NOT EXISTS {table} (mailing_id TEXT NOT NULL, response TEXT NOT NULL, reason TEXT NOT NULL, "
    "sent INTEGER NOT NULL, unique_open INTEGER NOT NULL, clicked INTEGER NOT NULL, recipients BIGINT NOT NULL, "
    "opens BIGINT NOT NULL, clicks BIGINT NOT NULL, PRIMARY KEY (mailing_id, response, reason, sent, unique_open, clicked))"
)
# A recipient's fold state every ``projections.projector.CHECKPOINT_SIGNALS`` of its journal events (its audit
# history pages fold from the nearest one): ``state`` without the dedup keys, ``seen`` only the keys added
# since the previous checkpoint (all of them: the concatenation of every earlier row's, in version order).
CHECKPOINT_COLUMNS = ("rid", "version", "seq", "state", "seen")
SIDE_COLUMNS = ("id", "kind", "source", "mailing_id", "received_at", "seq", "claimed", "payload")
WAVE_SEND_COLUMNS = ("mailing_id", "wave", "seq", "contact_id", "email")


@dataclass
class HistoryStart:
    """Where a page of one recipient's audit history starts (``ViewsMixin.history_start``)."""

    generation: int
    rules_version: str | None  # the active views' rules (None: the built-in default)
    state: RecipientState | None = None  # the row's response, reason, opens, clicks: None when the views do not hold it (yet)
    version: int | None = None  # the recipient's version the row is folded to; None: not counted (older views)
    checkpoint: RecipientState | None = None  # the fold state at the nearest checkpoint (None: from the start)
    checkpoint_version: int = 0


class StaleBatch(RuntimeError):
    """Another follower applied these events first; this batch is dropped and re-read."""


def tracking_name(generation: int) -> str:
    return f"views-g{generation}"


# ---- (de)serialising view state ------------------------------------------------------


def dump_recipient_state(s: RecipientState) -> bytes:
    return orjson.dumps(recipient_state_fields(s))


def recipient_state_fields(s: RecipientState, seen: bool = True) -> dict[str, Any]:
    return {
        "response": s.response,
        "reason": s.reason,
        "detail": s.detail,
        "opens": s.opens,
        "clicks": s.clicks,
        "clicked_urls": s.clicked_urls,
        "sent": s.sent,
        "sent_at": iso(s.sent_at),
        "delivered_at": iso(s.delivered_at),
        "first_open_at": iso(s.first_open_at),
        "first_click_at": iso(s.first_click_at),
        "updated_at": iso(s.updated_at),
        "seen": s.seen.hex() if seen else "",
    }


def dump_recipient_row_state(r: RecipientRow) -> bytes:
    """A view row's ``state``: the fold state, and (since fold checkpoints) the version it is folded to,
    first: ``row_version`` reads it from the row's first bytes (a long journal's state is large)."""
    if r.version is None:
        return dump_recipient_state(r.state)
    return orjson.dumps({"v": r.version, "cv": r.checkpointed, "ck": r.checkpointed_keys, **recipient_state_fields(r.state)})


VERSION_HEAD = re.compile(rb'^\{"v":(\d+),')
HEAD_BYTES = 32


def row_version(head: bytes) -> int | None:
    """The version a view row's state is folded to, from its first ``HEAD_BYTES``; None: not counted."""
    found = VERSION_HEAD.match(head)
    return int(found.group(1)) if found else None


def load_recipient_row_state(raw: bytes | str) -> tuple[RecipientState, int | None, int, int]:
    """(state, version or None, version of the last checkpoint, its dedup keys) of a view row's ``state``."""
    d = orjson.loads(raw)
    return recipient_state_of(d), d.get("v"), d.get("cv", 0), d.get("ck", 0)


def dump_checkpoint(c: FoldCheckpoint) -> tuple[Any, ...]:
    """A checkpoint's row: the state without its dedup keys, and the keys added since the previous one."""
    fields = recipient_state_fields(c.state, seen=False)
    return (c.rid, c.version, c.seq, orjson.dumps(fields), c.state.seen.blob[8 * c.keys_before :])


def load_recipient_state(raw: bytes | str) -> RecipientState:
    return recipient_state_of(orjson.loads(raw))


def recipient_state_of(d: dict[str, Any]) -> RecipientState:
    return RecipientState(
        response=d["response"],
        reason=d["reason"],
        detail=d["detail"],
        opens=d["opens"],
        clicks=d["clicks"],
        clicked_urls=d["clicked_urls"],
        sent=d["sent"],
        sent_at=parse_iso(d["sent_at"]),
        delivered_at=parse_iso(d["delivered_at"]),
        first_open_at=parse_iso(d["first_open_at"]),
        first_click_at=parse_iso(d["first_click_at"]),
        updated_at=parse_iso(d["updated_at"]),
        seen=SeenKeys.fromhex(d["seen"]),
    )


def dump_contact(c: ContactState) -> bytes:
    return orjson.dumps(
        {
            "email": c.email,
            "do_not_use_email": c.do_not_use_email,
            "email_is_actual": c.email_is_actual,
            "unsubscribed_types": sorted(c.unsubscribed_types),
            "soft_bounce_streak": c.soft_bounce_streak,
        }
    )


def load_contact(raw: bytes | str) -> ContactState:
    d = orjson.loads(raw)
    return ContactState(
        d["email"], d["do_not_use_email"], d["email_is_actual"], frozenset(d["unsubscribed_types"]), d["soft_bounce_streak"]
    )


class BatchStore(MemoryStore):
    """The write-back cache of one live batch: loads rows on first use, remembers what changed."""

    keeps_stats = True  # the batch adds the projector's mailing_stats changes to the view table
    keeps_checkpoints = True  # and keeps the recipients' fold checkpoints
    keeps_sends = True  # and the send lists and the scope index

    def __init__(self, recorder: ViewsMixin, cursor: Any, generation: int, shape: int = VIEW_SHAPE):
        super().__init__()
        self.recorder = recorder
        self.cursor = cursor
        self.generation = generation
        self.shape = shape  # the generation's view shape: an older one is followed as it is, until replaced
        self.keeps_engagement = shape >= ENGAGEMENT_SHAPE
        self.engagement: dict[EngagementKey, list[int]] = {}  # first opens, first clicks added to each bucket
        self.resplits: set[str] = set()  # mailings whose start moved: their buckets counted again at the flush
        self.dirty_mailings: set[str] = set()
        self.dirty_recipients: set[str] = set()
        self.dirty_contacts: set[str] = set()
        self.dirty_sides: set[str] = set()
        self.wave_sends: list[WaveSendRow] = []
        self.terms: set[tuple[str, str]] = set()
        self.checkpoints: list[tuple[Any, ...]] = []
        self._missing: set[tuple[str, str]] = set()
        self.position = 0  # where the batch starts (``ViewsMixin.next_batch``)
        self.meta_read: str | None = None  # the meta value read with the position
        self.meta: dict[str, str] = {}  # meta values written with the batch
        self.last_notification_id: int | None = None  # the last journal event the batch applies

    def preload(self, rids: Iterable[str], contact_ids: Iterable[str], mailing_ids: Iterable[str] = ()) -> None:
        """Read every row the batch may touch at once: the recipients ``rids``, the mailings and contacts
        named, and those of the recipients (their ids read by the same statement, in the database).
        What is asked for and not found is remembered as missing: it is not looked for again."""
        rec, c, g = self.recorder, self.cursor, self.generation
        rid_list, cids, mids = sorted(set(rids)), sorted(set(contact_ids)), sorted(set(mailing_ids))
        for row, mailing, contact in rec._select_recipients_with(c, g, rid_list, self.shape):
            self.recipients[row.rid] = row
            if mailing is not None:
                self.mailings[mailing.id] = mailing
            if contact is not None:
                self.contacts[row.contact_id] = contact
        mids = [m for m in mids if m not in self.mailings]
        cids = [i for i in cids if i not in self.contacts]
        if mids:
            for m in rec._select_mailings(c, g, mids):
                self.mailings[m.id] = m
        if cids:
            for cid, state in rec._select_contacts(c, g, cids):
                self.contacts[cid] = state
        self._missing.update(("r", rid) for rid in rid_list if rid not in self.recipients)
        self._missing.update(("m", mid) for mid in mids if mid not in self.mailings)
        self._missing.update(("c", cid) for cid in cids if cid not in self.contacts)
        self._missing.update(("c", r.contact_id) for r in self.recipients.values() if r.contact_id not in self.contacts)
        self._missing.update(("m", r.mailing_id) for r in self.recipients.values() if r.mailing_id not in self.mailings)

    def _load_once(self, kind: str, key: str) -> bool:
        if (kind, key) in self._missing:
            return False
        self._missing.add((kind, key))
        return True

    def mailing(self, mailing_id: str) -> MailingRow | None:
        if mailing_id not in self.mailings and self._load_once("m", mailing_id):
            for m in self.recorder._select_mailings(self.cursor, self.generation, [mailing_id]):
                self.mailings[m.id] = m
        return self.mailings.get(mailing_id)

    def recipient(self, rid: str) -> RecipientRow | None:
        if rid not in self.recipients and self._load_once("r", rid):
            for r in self.recorder._select_recipients(self.cursor, self.generation, [rid]):
                self.recipients[r.rid] = r
        return self.recipients.get(rid)

    def contact(self, contact_id: str) -> ContactState | None:
        if contact_id not in self.contacts and self._load_once("c", contact_id):
            for cid, state in self.recorder._select_contacts(self.cursor, self.generation, [contact_id]):
                self.contacts[cid] = state
        return self.contacts.get(contact_id)

    def put_mailing(self, row: MailingRow) -> None:
        super().put_mailing(row)
        self.dirty_mailings.add(row.id)

    def put_recipient(self, row: RecipientRow) -> None:
        super().put_recipient(row)
        self.dirty_recipients.add(row.rid)

    def put_contact(self, contact_id: str, state: ContactState) -> None:
        super().put_contact(contact_id, state)
        self.dirty_contacts.add(contact_id)

    def put_side(self, row: SideRow) -> None:
        super().put_side(row)
        self.dirty_sides.add(row.id)

    def put_wave_send(self, row: WaveSendRow) -> None:
        self.wave_sends.append(row)

    def put_term(self, source: str, fields: dict[str, str], contact_id: str) -> None:
        self.terms.add((signal_term(source, fields), contact_id))

    def put_checkpoint(self, checkpoint: FoldCheckpoint) -> None:
        self.checkpoints.append(dump_checkpoint(checkpoint))  # now: the state folds on in this batch

    def add_engagement(self, key: EngagementKey, first_opens: int, first_clicks: int) -> None:
        totals = self.engagement.get(key)
        if totals is None:
            self.engagement[key] = [first_opens, first_clicks]
        else:
            totals[0] += first_opens
            totals[1] += first_clicks

    def resplit(self, mailing_id: str) -> None:
        self.resplits.add(mailing_id)


class ViewsMixin:
    """View SQL shared by both stores; ``?`` placeholders become ``%s`` on PostgreSQL."""

    placeholder = "?"
    datastore: Any

    def _q(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", "%s")

    def _in(self, n: int) -> str:
        return ",".join([self.placeholder] * n)

    @staticmethod
    def t(generation: int, name: str) -> str:
        return f"rv{generation}_{name}"

    @contextmanager
    def cursor(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as c:
            yield c

    # ---- schema ------------------------------------------------------------------

    def view_ddl(self, g: int) -> list[str]:
        def t(name: str) -> str:
            return self.t(g, name)

        blob = "BYTEA" if self.placeholder == "%s" else "BLOB"
        return [
            f"CREATE TABLE IF NOT EXISTS {t('mailings')} (id TEXT PRIMARY KEY, name TEXT, category TEXT, "
            "email_type TEXT, provider TEXT, expires_at TEXT, prevent_duplicates INTEGER, created_seq BIGINT, started_at TEXT, "
            "first_sent_at TEXT)",
            f"CREATE TABLE IF NOT EXISTS {t('recipients')} (rid TEXT PRIMARY KEY, mailing_id TEXT NOT NULL, "
            "contact_id TEXT NOT NULL, name TEXT, email TEXT, seq BIGINT NOT NULL, response TEXT NOT NULL, reason TEXT, "
            "sent INTEGER NOT NULL, opens INTEGER NOT NULL, clicks INTEGER NOT NULL, unique_open INTEGER NOT NULL, "
            "sent_at TEXT, first_open_at TEXT, first_click_at TEXT, updated_at TEXT, state " + blob + " NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {t('recipients_mailing')} ON {t('recipients')} (mailing_id, seq)",
            f"CREATE INDEX IF NOT EXISTS {t('recipients_response')} ON {t('recipients')} (mailing_id, response, seq)",
            f"CREATE INDEX IF NOT EXISTS {t('recipients_contact')} ON {t('recipients')} (contact_id)",
            # keyed by a digest of the URL: tracking URLs can be longer than an index entry may be
            f"CREATE TABLE IF NOT EXISTS {t('link_clicks')} (mailing_id TEXT NOT NULL, url_key TEXT NOT NULL, "
            "contact_id TEXT NOT NULL, url TEXT NOT NULL, clicks INTEGER NOT NULL, PRIMARY KEY (mailing_id, url_key, contact_id))",
            f"CREATE TABLE IF NOT EXISTS {t('contacts')} (contact_id TEXT PRIMARY KEY, email TEXT, "
            "do_not_use_email INTEGER NOT NULL, email_is_actual INTEGER NOT NULL, state " + blob + " NOT NULL)",
            # GET /v1/contacts?email= and the contacts page: found by the address, whatever its case
            f"CREATE INDEX IF NOT EXISTS {t('contacts_email')} ON {t('contacts')} (LOWER(email))",
            f"CREATE TABLE IF NOT EXISTS {t('side')} (id TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT, "
            "mailing_id TEXT, received_at TEXT, seq BIGINT NOT NULL, claimed INTEGER NOT NULL, payload " + blob + " NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {t('side_kind')} ON {t('side')} (kind, seq)",
            # each dispatch wave's sent_to_provider decisions, in decision order: its send list, read again
            f"CREATE TABLE IF NOT EXISTS {t('wave_sends')} (mailing_id TEXT NOT NULL, wave INTEGER NOT NULL, "
            "seq BIGINT NOT NULL, contact_id TEXT NOT NULL, email TEXT, PRIMARY KEY (mailing_id, wave, seq))",
            # the scope index: which contacts' journals hold signals of each (source, status fields)
            f"CREATE TABLE IF NOT EXISTS {t('signal_terms')} (term TEXT NOT NULL, contact_id TEXT NOT NULL, "
            "PRIMARY KEY (term, contact_id))",
            MAILING_STATS_DDL.format(table=t("mailing_stats")),
            f"CREATE TABLE IF NOT EXISTS {t('checkpoints')} (rid TEXT NOT NULL, version INTEGER NOT NULL, seq BIGINT NOT NULL, "
            "state " + blob + " NOT NULL, seen " + blob + " NOT NULL, PRIMARY KEY (rid, version))",
            f"CREATE TABLE IF NOT EXISTS {t('engagement')} (mailing_id TEXT NOT NULL, minute TEXT NOT NULL, early INTEGER NOT NULL, "
            "first_opens BIGINT NOT NULL, first_clicks BIGINT NOT NULL, PRIMARY KEY (mailing_id, minute, early))",
        ]

    def meta_ddl(self) -> list[str]:
        return ["CREATE TABLE IF NOT EXISTS rv_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"]

    def create_table(self) -> None:
        """The library's tracking table, then the views' own meta table."""
        super().create_table()  # type: ignore[misc]
        with self.cursor(commit=True) as c:
            for statement in self.meta_ddl():
                c.execute(statement)

    def create_views(self, generation: int, attempts: int = 20) -> None:
        """Create a generation's tables if missing (idempotent), retried while another process writes.

        On SQLite, this transaction reads before it writes; had another connection (a running
        follower) committed in between, SQLite would refuse the upgrade at once ("database is
        locked", without waiting for the busy timeout). So it takes the write lock first
        (``BEGIN IMMEDIATE``, which waits), and is run again whole if it still meets a lock."""
        for attempt in range(attempts):
            try:
                self._create_views(generation)
                return
            except OperationalError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _create_views(self, generation: int) -> None:
        with self.cursor(commit=True) as c:
            if self.placeholder == "?":  # SQLite: take the write lock first (waiting for it), then read
                c.execute("ROLLBACK")
                c.execute("BEGIN IMMEDIATE")
            fresh = self._position_in(c, generation) == 0
            for statement in self.meta_ddl():
                c.execute(statement)
            if fresh and self.generation_shape(generation, cursor=c) < VIEW_SHAPE:  # empty tables of an older shape
                for name in _TABLES:
                    c.execute(f"DROP TABLE IF EXISTS {self.t(generation, name)}")
            stats_were_there = self._table_exists(c, self.t(generation, "mailing_stats"))
            for statement in self.view_ddl(generation):
                c.execute(statement)
            if fresh:  # indexed from its first event: complete (an older generation lacks it until rebuilt)
                self.set_meta({terms_key(generation): "1", shape_key(generation): str(VIEW_SHAPE)}, cursor=c)
            # The generation's tracking row exists from the start, so every batch can lock it.
            c.execute(
                self._q(
                    f"INSERT INTO {self.tracking_table()} (application_name, notification_id) VALUES (?, 0) ON CONFLICT DO NOTHING"
                ),
                (tracking_name(generation),),
            )
            if not stats_were_there:
                self._backfill_stats(c, generation)

    def _table_exists(self, c: Any, name: str) -> bool:
        if self.placeholder == "?":
            c.execute("SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
            return c.fetchone() is not None
        c.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (name,))
        return bool(c.fetchone()["found"])

    def _backfill_stats(self, c: Any, g: int) -> None:
        """Views made before ``mailing_stats`` existed: its rows counted once from the recipients, while
        the generation's tracking row is locked (no batch moves it meanwhile; a new generation has none)."""
        if self.placeholder == "%s":
            c.execute(
                f"SELECT notification_id FROM {self.tracking_table()} WHERE application_name = %s FOR UPDATE", (tracking_name(g),)
            )
        clicked = "CASE WHEN clicks > 0 THEN 1 ELSE 0 END"
        c.execute(
            f"INSERT INTO {self.t(g, 'mailing_stats')} ({', '.join(MAILING_STATS_COLUMNS)}) "
            f"SELECT mailing_id, response, COALESCE(reason, ''), sent, unique_open, {clicked}, COUNT(*), SUM(opens), SUM(clicks) "
            f"FROM {self.t(g, 'recipients')} GROUP BY mailing_id, response, COALESCE(reason, ''), sent, unique_open, {clicked}"
        )

    def _position_in(self, c: Any, generation: int) -> int:
        c.execute(
            self._q(f"SELECT notification_id FROM {self.tracking_table()} WHERE application_name = ?"),
            (tracking_name(generation),),
        )
        row = c.fetchone()
        return int(row["notification_id"]) if row else 0

    def tracking_table(self) -> str:
        name = getattr(self, "tracking_table_name", "tracking")
        schema = getattr(getattr(self, "datastore", None), "schema", "")
        return f'"{schema}"."{name}"' if schema else f'"{name}"'

    def drop_views(self, generation: int) -> None:
        with self.cursor(commit=True) as c:
            for name in _TABLES:
                c.execute(f"DROP TABLE IF EXISTS {self.t(generation, name)}")

    def active(self) -> tuple[int, str | None]:
        """The active generation and the rules version it was folded under (None: the built-in default), in one read."""
        with self.cursor(commit=False) as c:
            c.execute("SELECT key, value FROM rv_meta WHERE key IN ('generation', 'rules_version')")
            values = {r["key"]: r["value"] for r in c.fetchall()}
        return int(values.get("generation") or 1), values.get("rules_version")

    def active_generation(self) -> int:
        """The generation of views the API reads (swapped in by an activation)."""
        return int(self.get_meta("generation", "1") or 1)

    def active_shape(self, cursor: Any = None) -> tuple[int, int]:
        """The active generation and the view shape it was built under, in one read."""
        sql = (
            "SELECT g.value AS generation, s.value AS shape FROM (SELECT COALESCE(MAX(value), '1') AS value FROM rv_meta "
            "WHERE key = 'generation') g LEFT JOIN rv_meta s ON s.key = 'views-g' || g.value || '-shape'"
        )
        if cursor is not None:
            cursor.execute(sql)
            row = cursor.fetchone()
        else:
            with self.cursor(commit=False) as c:
                c.execute(sql)
                row = c.fetchone()
        return int(row["generation"]), shape_of(row["shape"])

    def generation_shape(self, generation: int, cursor: Any = None) -> int:
        """The view shape a generation was built under (``VIEW_SHAPE`` for one built by this code)."""
        return shape_of(self.get_meta(shape_key(generation), cursor=cursor))

    def start_rules(self, version: str) -> None:
        """A new database's rules: ``version`` recorded as the active rules unless some were recorded before (a
        database whose views were ever activated, or started by this code). The caller knows the journal is empty
        and holds the schema lock (``create_views`` made the meta table)."""
        with self.cursor(commit=True) as c:
            c.execute(
                self._q("INSERT INTO rv_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"), ("rules_version", version)
            )

    def active_rules_version(self) -> str | None:
        """The rules version the active generation was folded under (None: the built-in default)."""
        return self.get_meta("rules_version")

    def get_meta(self, key: str, default: str | None = None, cursor: Any = None) -> str | None:
        if cursor is not None:
            cursor.execute(self._q("SELECT value FROM rv_meta WHERE key = ?"), (key,))
            row = cursor.fetchone()
            return row["value"] if row else default
        with self.cursor(commit=False) as c:
            c.execute(self._q("SELECT value FROM rv_meta WHERE key = ?"), (key,))
            row = c.fetchone()
        return row["value"] if row else default

    def delete_meta(self, key: str) -> None:
        with self.cursor(commit=True) as c:
            c.execute(self._q("DELETE FROM rv_meta WHERE key = ?"), (key,))

    def set_meta(self, values: dict[str, str], cursor: Any = None) -> None:
        sql = self._q("INSERT INTO rv_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        if cursor is not None:
            for k, v in values.items():
                cursor.execute(sql, (k, v))
            return
        with self.cursor(commit=True) as c:
            for k, v in values.items():
                c.execute(sql, (k, v))

    # ---- batch writes ---------------------------------------------------------------

    def position(self, generation: int) -> int:
        return self.max_tracking_id(tracking_name(generation)) or 0  # type: ignore[attr-defined]

    @contextmanager
    def batch(self, generation: int, after: int, last_notification_id: int) -> Iterator[BatchStore]:
        """A batch store whose changes commit with the tracking record, or not at all.

        ``after`` is the position the batch was read from: if another follower moved
        the generation on meanwhile, the batch is refused (``StaleBatch``) rather
        than applied twice.
        """
        with self.cursor(commit=True) as c:
            lock = " FOR UPDATE" if self.placeholder == "%s" else ""
            c.execute(
                self._q(f"SELECT notification_id FROM {self.tracking_table()} WHERE application_name = ?{lock}"),
                (tracking_name(generation),),
            )
            row = c.fetchone()
            if (row["notification_id"] if row else 0) != after:
                raise StaleBatch(f"views generation {generation} moved past {after} meanwhile")
            store = BatchStore(self, c, generation, self.generation_shape(generation, cursor=c))
            yield store
            self._flush(c, store, generation)
            self._insert_tracking(c, Tracking(tracking_name(generation), last_notification_id))  # type: ignore[attr-defined]

    @contextmanager
    def next_batch(self, generation: int, meta_key: str) -> Iterator[BatchStore]:
        """The generation's next batch, from its position, locked for this transaction: the tracking row
        and the meta value ``meta_key`` are read by one statement (``store.position``, ``store.meta_read``).
        The caller reads the journal from there and sets ``store.last_notification_id``; the changes,
        ``store.meta`` and the tracking record then commit together (one statement a table). With no
        ``last_notification_id`` (nothing new), nothing is written."""
        with self.cursor(commit=True) as c:
            lock = " FOR UPDATE OF t" if self.placeholder == "%s" else ""
            c.execute(
                self._q(
                    f"SELECT t.notification_id, (SELECT value FROM rv_meta WHERE key = ?) AS meta, "
                    f"(SELECT value FROM rv_meta WHERE key = ?) AS shape FROM {self.tracking_table()} t "
                    f"WHERE t.application_name = ?{lock}"
                ),
                (meta_key, shape_key(generation), tracking_name(generation)),
            )
            row = c.fetchone()
            shape = shape_of(row["shape"]) if row else self.generation_shape(generation, cursor=c)
            store = BatchStore(self, c, generation, shape)
            store.position = int(row["notification_id"]) if row else 0
            store.meta_read = row["meta"] if row else None
            yield store
            if store.last_notification_id is None:
                return
            self._flush(c, store, generation)
            self._write_meta(c, store.meta)
            self._insert_tracking(c, Tracking(tracking_name(generation), store.last_notification_id))  # type: ignore[attr-defined]

    def _write_meta(self, c: Any, values: dict[str, str]) -> None:
        """Meta values in one statement."""
        if not values:
            return
        rows = ", ".join(f"({self.placeholder}, {self.placeholder})" for _ in values)
        c.execute(
            f"INSERT INTO rv_meta (key, value) VALUES {rows} ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [part for item in values.items() for part in item],
        )

    def _flush(self, c: Any, store: BatchStore, g: int) -> None:
        columns = mailing_columns(store.shape)
        self._upsert(
            c,
            g,
            "mailings",
            columns,
            ("id",),
            [mailing_values(store.mailings[i])[: len(columns)] for i in store.dirty_mailings],
            keep=("created_seq",),
        )
        recipients = [store.recipients[r] for r in store.dirty_recipients]
        self._upsert(
            c,
            g,
            "recipients",
            RECIPIENT_COLUMNS,
            ("rid",),
            [self._recipient_values(r) for r in recipients],
            keep=("mailing_id", "contact_id", "seq"),
        )
        if store.keeps_engagement:
            self._add_engagement(c, g, store)
        self._upsert(
            c,
            g,
            "link_clicks",
            ("mailing_id", "url_key", "contact_id", "url", "clicks"),
            ("mailing_id", "url_key", "contact_id"),
            [(r.mailing_id, url_key(url), r.contact_id, url, n) for r in recipients for url, n in r.state.clicked_urls.items()],
        )
        self._upsert(
            c,
            g,
            "contacts",
            ("contact_id", "email", "do_not_use_email", "email_is_actual", "state"),
            ("contact_id",),
            [
                (cid, s.email, int(s.do_not_use_email), int(s.email_is_actual), dump_contact(s))
                for cid, s in ((i, store.contacts[i]) for i in store.dirty_contacts)
            ],
        )
        self._upsert(
            c,
            g,
            "side",
            SIDE_COLUMNS,
            ("id",),
            [
                (s.id, s.kind, s.source, s.mailing_id, s.received_at, s.seq, int(s.claimed), orjson.dumps(s.payload))
                for s in (store.sides[i] for i in store.dirty_sides)
            ],
            update=False,
        )
        self._upsert(
            c,
            g,
            "wave_sends",
            WAVE_SEND_COLUMNS,
            ("mailing_id", "wave", "seq"),
            [(w.mailing_id, w.wave, w.seq, w.contact_id, w.email) for w in store.wave_sends],
            update=False,
        )
        self._upsert(c, g, "signal_terms", ("term", "contact_id"), ("term", "contact_id"), sorted(store.terms), update=False)
        self._upsert(c, g, "checkpoints", CHECKPOINT_COLUMNS, ("rid", "version"), store.checkpoints, update=False)
        if store.claimed:
            c.executemany(self._q(f"UPDATE {self.t(g, 'side')} SET claimed = 1 WHERE id = ?"), [(i,) for i in store.claimed])
        self._add_stats(c, g, store.stats)

    def _add_engagement(self, c: Any, g: int, store: BatchStore) -> None:
        """Add a batch's first-open and first-click changes to the engagement buckets (one statement); the
        buckets of a mailing whose start moved are counted again from its recipients instead (their rows are
        written first), split where its start splits the minutes now."""
        table = self.t(g, "engagement")
        for mailing_id in sorted(store.resplits):
            mailing = store.mailing(mailing_id)
            self._recount_engagement(c, g, mailing_id, minute_split(mailing.start if mailing is not None else None))
        rows = sorted(
            key + tuple(totals) for key, totals in store.engagement.items() if any(totals) and key[0] not in store.resplits
        )
        if not rows:
            return
        one = "(" + ",".join([self.placeholder] * len(ENGAGEMENT_COLUMNS)) + ")"
        c.executemany(
            f"INSERT INTO {table} ({', '.join(ENGAGEMENT_COLUMNS)}) VALUES {one} ON CONFLICT (mailing_id, minute, early) DO UPDATE SET "
            f"first_opens = {table}.first_opens + excluded.first_opens, first_clicks = {table}.first_clicks + excluded.first_clicks",
            rows,
        )

    def _recount_engagement(self, c: Any, g: int, mailing_id: str, split: str) -> None:
        """A mailing's engagement buckets counted again from its recipients' first times (SQL: no row reaches Python)."""
        table = self.t(g, "engagement")
        c.execute(self._q(f"DELETE FROM {table} WHERE mailing_id = ?"), (mailing_id,))
        parts = []
        for column, opens, clicks in (("first_open_at", 1, 0), ("first_click_at", 0, 1)):
            parts.append(
                f"SELECT substr({column}, 1, 16) AS minute, CASE WHEN {seconds_of_minute(column)} < ? THEN 1 ELSE 0 END AS early, "
                f"{opens} AS o, {clicks} AS k FROM {self.t(g, 'recipients')} WHERE mailing_id = ? AND {column} IS NOT NULL"
            )
        c.execute(
            self._q(
                f"INSERT INTO {table} ({', '.join(ENGAGEMENT_COLUMNS)}) SELECT ?, minute, early, SUM(o), SUM(k) "
                f"FROM ({' UNION ALL '.join(parts)}) AS firsts GROUP BY minute, early"
            ),
            (mailing_id, split, mailing_id, split, mailing_id),
        )

    def _add_stats(self, c: Any, g: int, stats: dict[tuple[str, str, str, int, int, int], list[int]]) -> None:
        """Add a batch's changes to ``mailing_stats`` (groups of recipients alike: their count, opens, clicks)."""
        rows = sorted(key + tuple(totals) for key, totals in stats.items() if any(totals))
        if not rows:
            return
        table = self.t(g, "mailing_stats")
        one = "(" + ",".join([self.placeholder] * len(MAILING_STATS_COLUMNS)) + ")"
        c.executemany(
            f"INSERT INTO {table} ({', '.join(MAILING_STATS_COLUMNS)}) VALUES {one} "
            f"ON CONFLICT ({', '.join(MAILING_STATS_COLUMNS[:6])}) DO UPDATE SET "
            + ", ".join(f"{col} = {table}.{col} + excluded.{col}" for col in MAILING_STATS_COLUMNS[6:]),
            rows,
        )

    def _upsert(
        self,
        c: Any,
        g: int,
        table: str,
        columns: tuple[str, ...],
        key: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        keep: tuple[str, ...] = (),
        update: bool = True,
    ) -> None:
        """Insert rows, or update the existing ones (but the ``key`` and ``keep`` columns).

        ``executemany``: in-process on SQLite, pipelined by psycopg on PostgreSQL (measured
        faster there than one long multi-row statement, which psycopg must parse).
        """
        if not rows:
            return
        settable = [col for col in columns if col not in key and col not in keep]
        conflict = (
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET " + ", ".join(f"{col}=excluded.{col}" for col in settable)
            if update
            else f"ON CONFLICT ({', '.join(key)}) DO NOTHING"
        )
        head = f"INSERT INTO {self.t(g, table)} ({', '.join(columns)}) VALUES "
        one = "(" + ",".join([self.placeholder] * len(columns)) + ")"
        c.executemany(f"{head}{one} {conflict}", rows)

    @staticmethod
    def _recipient_values(r: RecipientRow) -> tuple[Any, ...]:
        s = r.state
        return (
            r.rid,
            r.mailing_id,
            r.contact_id,
            r.name,
            r.email,
            r.seq,
            s.response,
            s.reason,
            int(s.sent),
            s.opens,
            s.clicks,
            int(s.unique_open),
            iso(s.sent_at),
            iso(s.first_open_at),
            iso(s.first_click_at),
            iso(s.updated_at),
            dump_recipient_row_state(r),
        )

    # ---- batch reads -------------------------------------------------------------------

    def _id_chunks(self, ids: list[str]) -> Iterator[list[str]]:
        """The ids in as few statements as the store allows: one array on PostgreSQL, 500 a statement on SQLite."""
        if self.placeholder == "%s":
            if ids:
                yield ids
            return
        yield from _chunks(ids, 500)

    def _id_in(self, column: str, n: int) -> str:
        """``column`` among a chunk of ``n`` ids (``_id_chunks``): ``= ANY(%s)`` or ``IN (?, …)``."""
        return f"{column} = ANY(%s)" if self.placeholder == "%s" else f"{column} IN ({self._in(n)})"

    def _id_params(self, chunk: list[str]) -> list[Any]:
        return [chunk] if self.placeholder == "%s" else list(chunk)

    def _select_recipients_with(
        self, c: Any, g: int, rids: list[str], shape: int
    ) -> list[tuple[RecipientRow, MailingRow | None, ContactState | None]]:
        """The recipients ``rids``, each with its mailing and its contact (None: not in the views), read by one
        statement on PostgreSQL (one per 500 ids on SQLite)."""
        mailing = ", ".join(f"m.{col} AS m_{col}" for col in mailing_columns(shape))
        out: list[tuple[RecipientRow, MailingRow | None, ContactState | None]] = []
        for chunk in self._id_chunks(rids):
            c.execute(
                self._q(
                    f"SELECT r.rid, r.mailing_id, r.contact_id, r.name, r.email, r.seq, r.state, c.contact_id AS c_id, "
                    f"c.state AS c_state, {mailing} FROM {self.t(g, 'recipients')} r "
                    f"LEFT JOIN {self.t(g, 'contacts')} c ON c.contact_id = r.contact_id "
                    f"LEFT JOIN {self.t(g, 'mailings')} m ON m.id = r.mailing_id WHERE {self._id_in('r.rid', len(chunk))}"
                ),
                self._id_params(chunk),
            )
            for r in c.fetchall():
                out.append(
                    (
                        recipient_row(r),
                        mailing_row(r, prefix="m_") if r["m_id"] is not None else None,
                        load_contact(r["c_state"]) if r["c_id"] is not None else None,
                    )
                )
        return out

    def _select_recipients(self, c: Any, g: int, rids: list[str]) -> list[RecipientRow]:
        out: list[RecipientRow] = []
        for chunk in self._id_chunks(rids):
            c.execute(
                self._q(
                    f"SELECT rid, mailing_id, contact_id, name, email, seq, state FROM {self.t(g, 'recipients')} "
                    f"WHERE {self._id_in('rid', len(chunk))}"
                ),
                self._id_params(chunk),
            )
            out.extend(recipient_row(r) for r in c.fetchall())
        return out

    def _select_of_recipients(
        self, c: Any, g: int, table: str, key: str, column: str, ids: Sequence[str], rids: Sequence[str], columns: str = "*"
    ) -> list[Any]:
        """Rows of ``table`` whose ``key`` is among ``ids`` or is the ``column`` of one of the recipients
        ``rids`` (looked up in the same statement): one statement on PostgreSQL, one per 500 ids on SQLite."""
        found: dict[str, Any] = {}
        id_chunks, rid_chunks = list(self._id_chunks(list(ids))), list(self._id_chunks(list(rids)))
        for k in range(max(len(id_chunks), len(rid_chunks))):
            where: list[str] = []
            params: list[Any] = []
            if k < len(id_chunks):
                where.append(self._id_in(key, len(id_chunks[k])))
                params += self._id_params(id_chunks[k])
            if k < len(rid_chunks):
                where.append(
                    f"{key} IN (SELECT {column} FROM {self.t(g, 'recipients')} WHERE {self._id_in('rid', len(rid_chunks[k]))})"
                )
                params += self._id_params(rid_chunks[k])
            c.execute(self._q(f"SELECT {columns} FROM {self.t(g, table)} WHERE {' OR '.join(where)}"), params)
            found.update((r[key], r) for r in c.fetchall())
        return list(found.values())

    def _select_mailings(self, c: Any, g: int, ids: Sequence[str], of_recipients: Sequence[str] = ()) -> list[MailingRow]:
        return [mailing_row(r) for r in self._select_of_recipients(c, g, "mailings", "id", "mailing_id", ids, of_recipients)]

    def _select_contacts(
        self, c: Any, g: int, ids: Sequence[str], of_recipients: Sequence[str] = ()
    ) -> list[tuple[str, ContactState]]:
        rows = self._select_of_recipients(c, g, "contacts", "contact_id", "contact_id", ids, of_recipients, "contact_id, state")
        return [(r["contact_id"], load_contact(r["state"])) for r in rows]

    # ---- queries for the API -------------------------------------------------------------

    def history_start(self, rid: str, after: int) -> HistoryStart:
        """Where a page of a recipient's audit history starts, from one snapshot of the active views: their
        generation and rules, the recipient's row (its response, counters and version) and its fold state at the nearest
        checkpoint at or before version ``after`` (the dedup keys gathered from every earlier checkpoint)."""
        with self.cursor(commit=False) as c:
            if self.placeholder == "%s":  # one snapshot: the generation, the row and the checkpoints agree
                c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            g = int(self.get_meta("generation", "1", cursor=c) or 1)
            start = HistoryStart(generation=g, rules_version=self.get_meta("rules_version", cursor=c))
            c.execute(
                self._q(
                    f"SELECT response, reason, opens, clicks, substr(state, 1, {HEAD_BYTES}) AS head FROM {self.t(g, 'recipients')} WHERE rid = ?"
                ),
                (rid,),
            )
            found = c.fetchone()
            if found is None:
                return start
            start.state = RecipientState(
                response=found["response"], reason=found["reason"], opens=found["opens"], clicks=found["clicks"]
            )
            start.version = row_version(bytes(found["head"]))
            if start.version is None:
                return start
            table = self.t(g, "checkpoints")
            c.execute(
                self._q(f"SELECT version, seen FROM {table} WHERE rid = ? AND version <= ? ORDER BY version"),
                (rid, min(after, start.version)),
            )
            keys = c.fetchall()
            if not keys:
                return start
            start.checkpoint_version = int(keys[-1]["version"])
            c.execute(self._q(f"SELECT state FROM {table} WHERE rid = ? AND version = ?"), (rid, start.checkpoint_version))
            start.checkpoint = load_recipient_state(c.fetchone()["state"])
        start.checkpoint.seen = SeenKeys(b"".join(bytes(r["seen"]) for r in keys))
        return start

    def fetch(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self.cursor(commit=False) as c:
            c.execute(self._q(sql), tuple(params))
            return list(c.fetchall())


def recipient_row(r: Any) -> RecipientRow:
    state, version, checkpointed, keys = load_recipient_row_state(r["state"])
    return RecipientRow(
        r["rid"], r["mailing_id"], r["contact_id"], r["name"], r["email"], r["seq"], state, version, checkpointed, keys
    )


def mailing_row(r: Any, prefix: str = "") -> MailingRow:
    """A mailing of the views from its row (its columns named ``prefix`` + column; one of an older shape
    lacks ``first_sent_at``)."""
    first_sent = prefix + "first_sent_at"
    return MailingRow(
        id=r[prefix + "id"],
        name=r[prefix + "name"],
        category=r[prefix + "category"],
        email_type=r[prefix + "email_type"],
        provider=r[prefix + "provider"],
        expires_at=r[prefix + "expires_at"],
        prevent_duplicates=bool(r[prefix + "prevent_duplicates"]),
        created_seq=r[prefix + "created_seq"],
        started_at=parse_iso(r[prefix + "started_at"]),
        first_sent_at=parse_iso(r[first_sent]) if first_sent in r.keys() else None,  # noqa: SIM118 (a sqlite3.Row's `in` looks at values)
    )


def mailing_values(m: MailingRow) -> tuple[Any, ...]:
    """A mailing's row, in ``MAILING_COLUMNS`` order (an older shape's: the first of them)."""
    return (
        m.id,
        m.name,
        m.category,
        m.email_type,
        m.provider,
        m.expires_at,
        int(m.prevent_duplicates),
        m.created_seq,
        iso(m.started_at),
        iso(m.first_sent_at),
    )


def seconds_of_minute(column: str) -> str:
    """SQL: a stored UTC ISO time's second of the minute with its fraction, ``SSffffff`` (as ``minute_split``)."""
    return f"substr({column}, 18, 2) || CASE WHEN substr({column}, 20, 1) = '.' THEN substr({column}, 21, 6) ELSE '000000' END"


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class SQLiteViewRecorder(ViewsMixin, SQLiteTrackingRecorder):
    placeholder = "?"


class PostgresViewRecorder(ViewsMixin, PostgresTrackingRecorder):
    placeholder = "%s"
