"""Replays of the stored journal through the same fold: rebuild, what-if, audit history.

A replay streams the journal page by page; what it keeps in memory grows with
the recipients and contacts in scope, never with the number of signals read.
"""

from __future__ import annotations

import random
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.aggregates import contact_id_of, mailing_id_of
from domain.catalogue import response_object
from domain.fold import RecipientState, SeenKeys, Step, fold_into
from domain.rules import Ruleset
from domain.signals import Signal, iso
from projections.cursors import encode_cursor
from projections.follower import apply_batch
from projections.lean_replay import JournalSource, Partial, PartitionTask, combine, merge, run_partitions
from projections.ports import Progress, ReplaySource
from projections.scope import touched_terms
from projections.summary import SummaryBuilder
from projections.views import terms_key

NATIVE = sys.byteorder


# ---- rebuild ------------------------------------------------------------------------------------


def rebuild(
    app: ReplaySource,
    rules: Ruleset,
    progress: Progress | None = None,
    between_batches: Callable[[], None] | None = None,
    batch_size: int = 1000,
) -> int:
    """Fold all history into a fresh generation of views under ``rules``, then swap it in atomically.

    The old generation keeps serving (and, through ``between_batches``, keeps
    following) until the swap. Returns the new generation.
    """
    old = app.generation()
    new = int(app.views.get_meta("next_generation", str(old + 1)) or old + 1)
    new = max(new, old + 1)
    app.views.set_meta({"next_generation": str(new + 1)})
    app.views.drop_views(new)
    app.views.create_views(new)
    while True:
        end = app.journal_position()
        done = app.views.position(new)
        if progress is not None:
            progress(done, end)
        if done >= end:
            break
        apply_batch(app, new, rules, batch_size, measure=False)
        if between_batches is not None:
            between_batches()
    app.swap_generation(new, rules.version)
    # The generation just replaced may still be read by requests in flight: it goes at the next rebuild.
    for retired in range(1, old):
        app.views.drop_views(retired)
    return new


# ---- what-if ------------------------------------------------------------------------------------


GROUP_CONTACTS = 1000  # contacts folded together in a scoped what-if (its memory follows one group)
SCOPED_CONTACTS_A_WORKER = 5_000  # a what-if over fewer contacts than this a process folds them in one


@dataclass
class ScopePlan:
    """A what-if read contact by contact: the aggregates of ``groups`` (whole contacts a group) are
    folded, a group at a time. Scoped (``summaries`` set): only the contacts a change can touch, and
    everyone else is as the views (at ``position``) say; else every contact the views know."""

    position: int
    contacts: int
    mailings: tuple[str, ...]  # every mailing's aggregate (hex ids): its events are read with each group
    groups: tuple[tuple[str, ...], ...]  # the contacts' recipients and contact aggregates (hex ids)
    summaries: dict[str, SummaryBuilder] | None = None  # the views' summary of each mailing (current rules)
    considered: int = 0
    terms: int | None = None


def what_if(
    app: ReplaySource,
    current: Ruleset,
    candidate: Ruleset,
    mailing_ids: list[str] | None = None,
    sample: int = 20,
    progress: Progress | None = None,
    workers: int = 1,
    follow: Callable[[], None] | None = None,
    scoped: bool = True,
    light: bool = True,
) -> dict[str, Any]:
    """Fold the journal under the current and the candidate rules; answer the difference. Views are untouched.

    With views that are current, recipients are read contact by contact (a group of whole contacts
    at a time: memory follows a group, not the journal), the groups shared among ``workers``
    processes; a change the scope index can bound (``projections.scope``) folds only the contacts it
    can touch. Otherwise the journal is streamed in order, partitioned by contact over the workers.
    ``scoped=False`` forces that streamed full replay; ``light=False`` folds full ``Signal`` objects
    (both for comparisons in tests)."""
    source = JournalSource.of(app)
    mids = tuple(mailing_ids) if mailing_ids else None
    plan = contact_plan(app, current, candidate, mids) if scoped else None
    parts = max(1, workers)
    if plan is None:
        end = app.journal_position()
        tasks = [PartitionTask(source, end, current, candidate, k, parts, mids, light=light) for k in range(parts)]
        partial = merge(run_partitions(tasks, follow, progress))
    else:
        end = plan.position
        parts = max(1, min(parts, len(plan.groups), plan.contacts // SCOPED_CONTACTS_A_WORKER))
        tasks = [
            PartitionTask(
                source, end, current, candidate, 0, 1, mids, light=light, mailings=plan.mailings, groups=plan.groups[k::parts]
            )
            for k in range(parts)
        ]
        partial = merge(run_partitions(tasks, follow, progress)) if plan.groups else Partial()
        if plan.summaries is not None:
            partial = _with_views(plan, partial)
    if progress is not None:
        progress(end, end)
    return _answer(app, current, candidate, partial, sample)


def scope_plan(app: ReplaySource, current: Ruleset, candidate: Ruleset, mailing_ids: tuple[str, ...] | None) -> ScopePlan | None:
    """The scoped plan, or None when the change can touch anyone (or the views cannot say whom)."""
    plan = contact_plan(app, current, candidate, mailing_ids)
    return plan if plan is not None and plan.summaries is not None else None


def contact_plan(
    app: ReplaySource, current: Ruleset, candidate: Ruleset, mailing_ids: tuple[str, ...] | None
) -> ScopePlan | None:
    """Which contacts to fold, from the active views: the ones the change can touch (their scope
    index, views of the current rules), else all of them; None when the views are behind the journal."""
    views = app.views
    g = app.generation()
    indexed = views.get_meta(terms_key(g)) == "1" and app.active_version() == current.version

    def t(name: str) -> str:
        return views.t(g, name)

    with views.cursor(commit=False) as cursor:
        c: Any = cursor  # a DB-API cursor of either store
        if app.settings.is_postgres:  # one snapshot: the position, the index and the summaries agree
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        position = views._position_in(c, g)
        if position < app.journal_position():  # views behind: the journal's end is the answer's, stream it all
            return None
        c.execute(f"SELECT id FROM {t('mailings')}")
        mailings = tuple(sorted(mailing_id_of(r["id"]).hex for r in c.fetchall()))
        touched = None
        if indexed:
            c.execute(f"SELECT DISTINCT term FROM {t('signal_terms')}")
            touched = touched_terms(current, candidate, [r["term"] for r in c.fetchall()])
        if touched is None:  # everyone: every contact's recipients, from the views, grouped
            c.execute(f"SELECT contact_id, rid FROM {t('recipients')} ORDER BY contact_id")
            by_contact: dict[str, list[str]] = {}
            groups: list[tuple[str, ...]] = []
            n_contacts = 0
            for r in c.fetchall():
                if r["contact_id"] not in by_contact:
                    n_contacts += 1
                if r["contact_id"] not in by_contact and len(by_contact) >= GROUP_CONTACTS:
                    groups.append(_group(by_contact))
                    by_contact = {}
                by_contact.setdefault(r["contact_id"], []).append(uuid.UUID(str(r["rid"])).hex)
            if by_contact:
                groups.append(_group(by_contact))
            return ScopePlan(position, n_contacts, mailings, tuple(groups))
        contacts: set[str] = set()
        chosen = sorted(touched)
        for i in range(0, len(chosen), 500):
            chunk = chosen[i : i + 500]
            c.execute(
                views._q(f"SELECT DISTINCT contact_id FROM {t('signal_terms')} WHERE term IN ({views._in(len(chunk))})"), chunk
            )
            contacts.update(r["contact_id"] for r in c.fetchall())
        c.execute(
            f"SELECT mailing_id, response, reason, sent, unique_open, clicks > 0 AS clicked, COUNT(*) AS n, "
            f"SUM(opens) AS opens, SUM(clicks) AS clicks FROM {t('recipients')} "
            "GROUP BY mailing_id, response, reason, sent, unique_open, clicks > 0"
        )
        summaries: dict[str, SummaryBuilder] = {}
        considered = 0
        for r in c.fetchall():
            if mailing_ids is not None and r["mailing_id"] not in mailing_ids:
                continue
            summaries.setdefault(r["mailing_id"], SummaryBuilder()).add(
                r["response"],
                r["reason"],
                bool(r["sent"]),
                bool(r["unique_open"]),
                int(r["opens"]),
                int(r["clicks"]),
                unique_click=bool(r["clicked"]),
                count=int(r["n"]),
            )
            considered += int(r["n"])
        groups = []
        chosen = sorted(contacts)
        for i in range(0, len(chosen), GROUP_CONTACTS):
            chunk = chosen[i : i + GROUP_CONTACTS]
            c.execute(views._q(f"SELECT rid FROM {t('recipients')} WHERE contact_id IN ({views._in(len(chunk))})"), chunk)
            rids = [uuid.UUID(str(r["rid"])).hex for r in c.fetchall()]
            groups.append(tuple(rids + [contact_id_of(cid).hex for cid in chunk]))
    return ScopePlan(position, len(contacts), mailings, tuple(groups), summaries, considered, len(touched))


def _group(by_contact: dict[str, list[str]]) -> tuple[str, ...]:
    return tuple([rid for rids in by_contact.values() for rid in rids] + [contact_id_of(cid).hex for cid in by_contact])


def _with_views(plan: ScopePlan, affected: Partial) -> Partial:
    """The whole answer from the views' summaries and the folded contacts: after = views − their before + their after."""
    whole = Partial(
        considered=plan.considered,
        transitions=affected.transitions,
        counters_changed=affected.counters_changed,
        changed=affected.changed,
        newly=affected.newly,
        no_longer=affected.no_longer,
        events=affected.events,
    )
    for mailing, views_summary in (plan.summaries or {}).items():
        before, after = SummaryBuilder(), SummaryBuilder()
        combine(before, views_summary)
        combine(after, views_summary)
        if mailing in affected.summaries:
            sb, sa = affected.summaries[mailing]
            combine(after, sb, -1)
            combine(after, sa)
        whole.summaries[mailing] = (before, after)
    return whole


def _answer(app: ReplaySource, current: Ruleset, candidate: Ruleset, p: Partial, sample: int) -> dict[str, Any]:
    rng = random.Random(0)
    rows = p.changed if len(p.changed) <= sample else rng.sample(p.changed, sample)
    examples = [
        {
            "mailing_id": mailing_id,
            "contact_id": contact_id,
            "before": _brief_view(b),
            "after": _brief_view(a),
            "explanation": app.history(mailing_id, contact_id, rules=candidate, for_replay=True)["signals"],
        }
        for _, mailing_id, contact_id, b, a in sorted(rows, key=lambda row: row[0])
    ]
    return {
        "rules": {"current": current.version, "candidate": candidate.version},
        "recipients": p.considered,
        "changed": sum(p.transitions.values()),
        "counters_changed": p.counters_changed,
        "transitions": [
            {"from": f, "to": t, "count": n} for (f, t), n in sorted(p.transitions.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "mailings": {m: {"before": sb.result(), "after": sa.result()} for m, (sb, sa) in sorted(p.summaries.items())},
        "contacts": {
            "newly_suppressed": {"count": len(p.newly), "sample": p.newly[:sample]},
            "no_longer_suppressed": {"count": len(p.no_longer), "sample": p.no_longer[:sample]},
        },
        "examples": examples,
    }


def _brief_view(b: tuple[str, str | None, int, int]) -> dict[str, Any]:
    response, reason, opens, clicks = b
    return {"response": response_object(response, reason), "opens": opens, "clicks": clicks}


# ---- audit history -------------------------------------------------------------------------------


class FoldSeen(SeenKeys):
    """A history fold's dedup keys, looked up in a set and appended in place (a ``SeenKeys`` scans its bytes
    on each look-up and copies them on each append: quadratic over a long journal). ``fold_into`` appends a
    key with ``seen.blob += digest``: the bytearray grows in place, and the setter indexes what it gained."""

    __slots__ = ("_keys", "_indexed", "digests")

    def __init__(self, blob: bytes = b"") -> None:
        self._keys = bytearray(blob)
        self._indexed = 0
        self.digests: set[int] = set()  # each key's 8 bytes as a number (native order, as ``cast("Q")`` reads them)
        self._index()

    @property  # type: ignore[override]
    def blob(self) -> bytearray:
        return self._keys

    @blob.setter
    def blob(self, value: bytes | bytearray) -> None:
        if value is not self._keys:  # replaced, not appended to
            self._keys, self._indexed, self.digests = bytearray(value), 0, set()
        self._index()

    def _index(self) -> None:
        keys, start = self._keys, self._indexed
        if len(keys) - start == 8:  # the usual: one key appended
            self.digests.add(int.from_bytes(keys[start:], NATIVE))
        elif len(keys) > start:  # a checkpoint's keys: read 8 bytes at a time, in C
            self.digests.update(memoryview(bytes(keys[start:])).cast("Q"))
        self._indexed = len(keys)

    def has_digest(self, d: bytes) -> bool:
        return int.from_bytes(d, NATIVE) in self.digests


def explain(
    signals: Iterable[tuple[int, Signal]],
    rules: Ruleset,
    mailing_start: datetime | None,
    as_of: datetime | None = None,
    lang: str = "en",
    after: int = 0,
    limit: int | None = None,
) -> dict[str, Any]:
    """Fold one recipient's whole journal step by step, saying for each signal what it did and why.

    Paged: the steps of signals after ``after`` (a version of the recipient), at most ``limit`` of them,
    and ``next`` (a cursor, or None on the last page); the state is always the whole journal's (as of
    ``as_of``). Streams: the state is all it keeps, besides the page."""
    state = fresh_state(RecipientState())
    steps: list[dict[str, Any]] = []
    more = False
    for seq, signal in signals:
        if as_of is not None and signal.received_at > as_of:
            continue
        step = fold_into(state, signal, rules, mailing_start)
        if seq <= after:
            continue
        if limit is not None and len(steps) >= limit:
            more = True
            continue
        steps.append(history_step(seq, signal, step, state, lang))
    return history_answer(state, rules, steps, more, lang)


def explain_page(
    signals: Iterable[tuple[int, Signal]],
    rules: Ruleset,
    mailing_start: datetime | None,
    start: RecipientState,
    views: RecipientState,
    until: int,
    lang: str = "en",
    after: int = 0,
    limit: int = 1000,
) -> dict[str, Any]:
    """A page of the history under the views' rules, from a checkpoint: ``signals`` follow the version the
    ``start`` state was folded to; the signals up to ``after`` are folded without a step, then at most
    ``limit`` steps, never past ``until`` (the version the views hold). ``response``, ``opens`` and
    ``clicks`` are the views' (``views``): on the last page, the last step's ``response_after``."""
    state = fresh_state(start)
    steps: list[dict[str, Any]] = []
    more = False
    for seq, signal in signals:
        if seq > until:
            break
        if len(steps) >= limit:
            more = True
            break
        step = fold_into(state, signal, rules, mailing_start)
        if seq > after:
            steps.append(history_step(seq, signal, step, state, lang))
    return history_answer(views, rules, steps, more, lang)


def history_reads(checkpoint_version: int, after: int, limit: int) -> int:
    """Signals a page from a checkpoint reads from the journal at once: the ones between the checkpoint and
    the page, the page, and one more (is there a next page?)."""
    return max(1, min(2000, max(0, after - checkpoint_version) + limit + 1))


def fresh_state(start: RecipientState) -> RecipientState:
    """A copy of ``start`` a history fold owns (folded in place), its keys in a ``FoldSeen``."""
    state = start.copy()
    state.seen = FoldSeen(start.seen.blob)
    return state


def history_step(seq: int, signal: Signal, step: Step, state: RecipientState, lang: str) -> dict[str, Any]:
    """One signal of the audit history: what it is, what it did and why, and the response after it."""
    return {
        "seq": seq,
        "received_at": iso(signal.received_at),
        "occurred_at": iso(signal.occurred_at),
        "effective_at": iso(signal.effective_time),
        "skew_seconds": signal.skew_seconds(),
        "source": signal.source,
        "raw": signal.raw,
        "erased": signal.erased,
        "maps_to": step.maps_to,
        "contact_effect": step.contact_effect,
        "effect": step.effect,
        "why": step.why,
        "response_after": response_object(
            step.response_after, state.reason if step.response_after == state.response else None, lang
        ),
    }


def history_answer(state: RecipientState, rules: Ruleset, steps: list[dict[str, Any]], more: bool, lang: str) -> dict[str, Any]:
    return {
        "response": response_object(state.response, state.reason, lang),
        "opens": state.opens,
        "clicks": state.clicks,
        "rules": rules.version,
        "signals": steps,
        "next": encode_cursor(steps[-1]["seq"]) if more and steps else None,
    }
