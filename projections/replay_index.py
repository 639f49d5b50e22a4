"""The replay index: what a what-if needs to know about the journal before it reads it.

Kept by the projector beside the other views of a generation (created, applied and
rebuilt with them, in the same transactions), in two tables:

- ``rv<N>_replay_members``: every recipient and contact aggregate, with its contact and
  the contact's *part* (a stable hash, 0..1023). A replay worker reads the journals of the
  parts it owns, contact by contact, each aggregate's journal contiguously; and a bitmask
  of the *signal classes* a recipient's journal holds.
- ``rv<N>_replay_classes``: the distinct signal classes of the journal and their bit (the
  first 62 classes have a bit each; the rest share bit 62, which only widens a scope).

A signal class is what of a signal any ruleset can look at: its source, the status fields a
mapping reads, and four flags (a machine open, a user agent, a URL, a reason of its own).
Two rulesets that fold every class of a contact's signals alike fold the contact alike (its
recipients' responses, counters and its flags: see ``affected_bits``), so a what-if whose
change touches few classes folds only the contacts holding them.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from domain.fold import ENGAGEMENT
from domain.rules import MAPPING_FIELDS, Ruleset
from domain.signals import SYSTEM

PARTS = 1024  # contacts hash into this many parts; a worker takes the parts ≡ its number (mod workers)
CLASS_BITS = 62  # classes with a bit of their own; the others share OVERFLOW_BIT
OVERFLOW_BIT = 62

ClassKey = tuple[Any, ...]  # (source, mapping field values…, flags)

# Ruleset fields whose change can touch every recipient: the replay folds everyone.
EVERYONE = ("statistics_period_days",)
# Fields whose change ``affected_bits`` can narrow to the classes it touches.
NARROWED = (
    "responses", "provider_mappings", "count_machine_opens", "unsubscribe_from_all", "unsubscribe_url_patterns",
    "soft_bounce_limit", "machine_open_user_agents", "machine_open_window_seconds", "machine_click_window_seconds",
    "confirmation_timeout_hours", "confirmation_timeout_response",
)


def part_of(contact_id: str) -> int:
    """A contact's part: the same in every process and on every run (``hash()`` is not)."""
    return zlib.crc32(contact_id.encode("utf-8", "surrogatepass")) % PARTS


def _fields_of(source: str) -> tuple[str, ...]:
    return ("kind",) if source == SYSTEM else MAPPING_FIELDS.get(source, ())


def class_key(signal: Any) -> ClassKey:
    """The class of a signal (a ``Signal`` or a replay's light signal): a hashable tuple."""
    source = signal.source
    fields = signal.fields
    flags = (
        ("m" if signal.machine else "")
        + ("a" if signal.user_agent else "")
        + ("l" if signal.url else "")
        + ("r" if signal.reason else "")
    )
    return (source, *(fields.get(f) for f in _fields_of(source)), flags)


def class_text(key: ClassKey) -> str:
    """How a class is stored (``rv<N>_replay_classes.class``): JSON, read back by ``SignalClass.parse``."""
    return orjson.dumps(list(key)).decode()


@dataclass(frozen=True)
class SignalClass:
    """A stored class, as the planner asks rulesets about it."""

    source: str
    fields: dict[str, str]
    machine: bool
    user_agent: bool
    url: bool
    reason: bool

    @classmethod
    def parse(cls, text: str) -> "SignalClass":
        items = orjson.loads(text)
        source, values, flags = items[0], items[1:-1], items[-1]
        fields = {f: v for f, v in zip(_fields_of(source), values) if v is not None}
        return cls(source, fields, "m" in flags, "a" in flags, "l" in flags, "r" in flags)

    def target(self, rules: Ruleset) -> tuple[str | None, str | None]:
        """What the fold maps a signal of this class to under ``rules`` (the reason: its own, when it has one)."""
        if self.source == SYSTEM and self.fields.get("kind") == "confirmation_checked":
            return None, None
        target = rules.map(self.source, self.fields)
        return target.code, ("own" if self.reason else target.reason)

    def codes(self, rules: Ruleset) -> set[str]:
        """The response codes a signal of this class can fold as, or set, under ``rules``."""
        if self.source == SYSTEM and self.fields.get("kind") == "confirmation_checked":
            return {rules.confirmation_timeout_response}
        code = self.target(rules)[0]
        if code is None:
            return set()
        codes = {code}
        if code == "opened" and (self.machine or self.user_agent):
            codes.add("opened_machine")
        return codes


def affected_bits(current: Ruleset, candidate: Ruleset, classes: dict[str, int]) -> int | None:
    """The class bits of the signals whose fold can differ between the rulesets, or None when the
    difference can touch every recipient (then the replay folds everyone).

    By induction over a recipient's journal: while no signal so far is of an affected class, both
    folds hold the same state, whose response is "planned" or a code an earlier signal set (so its
    rule did not change); a signal of an unaffected class then meets the same rules (its mapping,
    the rules of every code involved, the options its path reads) and folds alike, and does the
    same to its contact. ``classes``: stored class text → bit.
    """
    changes = candidate.changes_from(current)
    if any(name in changes for name in EVERYONE) or any(name not in NARROWED for name in changes):
        return None
    codes = set(changes.get("responses", {}))
    if "planned" in codes:  # every recipient starts planned
        return None
    if current.confirmation_timeout_response != candidate.confirmation_timeout_response or (
        current.confirmation_timeout_hours != candidate.confirmation_timeout_hours
    ):
        codes_of_checks = True
    else:
        codes_of_checks = False
    machine_agents = current.machine_open_user_agents != candidate.machine_open_user_agents or (
        current.machine_open_window_seconds != candidate.machine_open_window_seconds
    )
    bits = 0
    for text, bit in classes.items():
        c = SignalClass.parse(text)
        if _affected(c, current, candidate, codes, codes_of_checks, machine_agents):
            bits |= 1 << bit
    return bits


def _affected(
    c: SignalClass, current: Ruleset, candidate: Ruleset, codes: set[str], checks: bool, machine_agents: bool
) -> bool:
    if c.target(current) != c.target(candidate):
        return True
    reachable = c.codes(current) | c.codes(candidate)
    if reachable & codes:
        return True
    if c.source == SYSTEM and c.fields.get("kind") == "confirmation_checked":
        return checks
    code = c.target(current)[0]
    if code is None:
        return False
    if code == "opened" and c.user_agent and not c.machine and machine_agents:
        return True
    if "opened_machine" in reachable and current.count_machine_opens != candidate.count_machine_opens:
        return True
    if code == "clicked":
        if current.machine_click_window_seconds != candidate.machine_click_window_seconds:
            return True
        if c.url and current.unsubscribe_url_patterns != candidate.unsubscribe_url_patterns:
            return True
    if code == "unsubscribed" and current.unsubscribe_from_all != candidate.unsubscribe_from_all:
        return True
    if code == "soft_bounce" and current.soft_bounce_limit != candidate.soft_bounce_limit:
        return True
    return False


assert set(ENGAGEMENT) == {"opened", "opened_machine", "clicked"}  # the engagement codes _affected reasons about


# ---- the tables ----------------------------------------------------------------------------------


def members_table(generation: int) -> str:
    return f"rv{generation}_replay_members"


def classes_table(generation: int) -> str:
    return f"rv{generation}_replay_classes"


def complete_key(generation: int) -> str:
    """Meta key: the generation's index was created before it applied anything (so it covers it all)."""
    return f"views-g{generation}-replay-index"


def index_ddl(generation: int) -> list[str]:
    members, classes = members_table(generation), classes_table(generation)
    return [
        f"CREATE TABLE IF NOT EXISTS {members} (oid TEXT PRIMARY KEY, contact_id TEXT NOT NULL, kind TEXT NOT NULL, "
        "part INTEGER NOT NULL, classes BIGINT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {members}_order ON {members} (part, contact_id, kind, oid)",
        f"CREATE TABLE IF NOT EXISTS {classes} (class TEXT PRIMARY KEY, bit INTEGER NOT NULL)",
    ]


class IndexBatch:
    """One projection batch's changes to the replay index: new members, recipients' new class bits,
    new classes. Loaded lazily, written by ``flush`` in the batch's transaction."""

    def __init__(self, recorder: Any, cursor: Any, generation: int):
        self.recorder = recorder
        self.cursor = cursor
        self.generation = generation
        self.members: dict[str, tuple[str, str, int]] = {}  # oid → (contact id, kind, class bits)
        self.dirty: set[str] = set()
        self.known: dict[str, int] | None = None  # oid → stored bits, for the recipients preloaded
        self.classes: dict[ClassKey, int] | None = None
        self.new_classes: list[tuple[str, int]] = []

    def preload(self, oids: Iterable[str]) -> None:
        self.known = dict(self._select_bits(list(oids)))

    def member(self, oid: str, contact_id: str, kind: str) -> None:
        if oid not in self.members:
            bits = self._stored_bits(oid)
            self.members[oid] = (contact_id, kind, bits or 0)
            if bits is None:  # not stored yet
                self.dirty.add(oid)

    def signal(self, oid: str, contact_id: str, signal: Any) -> None:
        bit = 1 << self._bit(class_key(signal))
        self.member(oid, contact_id, "r")
        cid, kind, bits = self.members[oid]
        if not bits & bit:
            self.members[oid] = (cid, kind, bits | bit)
            self.dirty.add(oid)

    def _stored_bits(self, oid: str) -> int | None:
        if self.known is not None and oid in self.known:
            return self.known[oid]
        found = dict(self._select_bits([oid]))
        if self.known is not None:
            self.known.update(found)
        return found.get(oid)

    def _select_bits(self, oids: list[str]) -> list[tuple[str, int]]:
        rec = self.recorder
        out: list[tuple[str, int]] = []
        for i in range(0, len(oids), 500):
            chunk = oids[i : i + 500]
            self.cursor.execute(
                rec._q(f"SELECT oid, classes FROM {members_table(self.generation)} WHERE oid IN ({rec._in(len(chunk))})"), chunk
            )
            out.extend((r["oid"], int(r["classes"])) for r in self.cursor.fetchall())
        return out

    def _bit(self, key: ClassKey) -> int:
        if self.classes is None:
            self.cursor.execute(f"SELECT class, bit FROM {classes_table(self.generation)}")
            self.classes = {tuple(orjson.loads(r["class"])): int(r["bit"]) for r in self.cursor.fetchall()}
        bit = self.classes.get(key)
        if bit is None:
            bit = min(len(self.classes), OVERFLOW_BIT)
            self.classes[key] = bit
            self.new_classes.append((class_text(key), bit))
        return bit

    def flush(self) -> None:
        rec, c, g = self.recorder, self.cursor, self.generation
        if self.new_classes:
            c.executemany(rec._q(f"INSERT INTO {classes_table(g)} (class, bit) VALUES (?, ?) ON CONFLICT (class) DO NOTHING"), self.new_classes)
        if self.dirty:
            rows = [(oid, *self.members[oid][:2], part_of(self.members[oid][0]), self.members[oid][2]) for oid in sorted(self.dirty)]
            c.executemany(
                rec._q(
                    f"INSERT INTO {members_table(g)} (oid, contact_id, kind, part, classes) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (oid) DO UPDATE SET classes = excluded.classes"
                ),
                rows,
            )
