"""Replays of the stored journal through the same fold: rebuild, what-if, audit history.

A replay streams the journal page by page; what it keeps in memory grows with
the recipients and contacts in scope, never with the number of signals read.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.catalogue import response_object
from domain.contacts import ContactState
from domain.fold import RecipientState, fold
from domain.rules import Ruleset
from domain.signals import Signal, iso
from projections.follower import apply_batch, decode, originator_key
from projections.projector import MemoryStore, Projector, RecipientRow
from projections.summary import SummaryBuilder

if TYPE_CHECKING:
    from application.service import ResponsesApp

Progress = Callable[[int, int], None]  # (events read, events in all)
PAGE = 2000


def stream_journal(app: "ResponsesApp", progress: Progress | None = None, page: int = PAGE) -> Iterator[tuple[int, str, str, dict[str, Any]]]:
    """Every projector event of the journal, in order, decoded; read a page at a time."""
    end = app.journal_position()
    topics = Projector.topics()
    position = 0
    while position < end:
        notifications = app.recorder.select_notifications(start=position + 1, limit=page, stop=end, topics=topics)
        if not notifications:
            break
        for n in notifications:
            yield n.id, originator_key(n.originator_id), n.topic, decode(n)
        position = notifications[-1].id
        if progress is not None:
            progress(position, end)
    if progress is not None:
        progress(end, end)


# ---- rebuild ------------------------------------------------------------------------------------


def rebuild(
    app: "ResponsesApp",
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


def what_if(
    app: "ResponsesApp",
    current: Ruleset,
    candidate: Ruleset,
    mailing_ids: list[str] | None = None,
    sample: int = 20,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fold the journal under the current and the candidate rules; answer the difference. Views are untouched."""
    before = MemoryStore()
    after = MemoryStore()
    p_before, p_after = Projector(current, before), Projector(candidate, after)
    for seq, oid, topic, data in stream_journal(app, progress):
        p_before.apply(seq, oid, topic, data)
        p_after.apply(seq, oid, topic, data)

    scope = set(mailing_ids) if mailing_ids else None
    transitions: Counter[tuple[str, str]] = Counter()
    changed_rows: list[tuple[RecipientRow, RecipientRow]] = []
    counters_changed = 0
    summaries: dict[str, tuple[SummaryBuilder, SummaryBuilder]] = {}
    contacts_in_scope: set[str] = set()
    considered = 0
    for rid, b in before.recipients.items():
        if scope is not None and b.mailing_id not in scope:
            continue
        a = after.recipients[rid]
        considered += 1
        contacts_in_scope.add(b.contact_id)
        sb, sa = summaries.setdefault(b.mailing_id, (SummaryBuilder(), SummaryBuilder()))
        _add(sb, b.state)
        _add(sa, a.state)
        if b.state.response != a.state.response:
            transitions[(b.state.response, a.state.response)] += 1
            changed_rows.append((b, a))
        if (b.state.opens, b.state.clicks) != (a.state.opens, a.state.clicks):
            counters_changed += 1
            if b.state.response == a.state.response:
                changed_rows.append((b, a))

    newly, no_longer = [], []
    for cid in sorted(contacts_in_scope if scope is not None else set(before.contacts) | set(after.contacts)):
        was = (before.contacts.get(cid) or ContactState()).suppressed
        now = (after.contacts.get(cid) or ContactState()).suppressed
        if now and not was:
            newly.append(cid)
        elif was and not now:
            no_longer.append(cid)

    rng = random.Random(0)
    examples_rows = changed_rows if len(changed_rows) <= sample else rng.sample(changed_rows, sample)
    examples = [
        {
            "mailing_id": b.mailing_id,
            "contact_id": b.contact_id,
            "before": _recipient_view(b.state),
            "after": _recipient_view(a.state),
            "explanation": app.history(b.mailing_id, b.contact_id, rules=candidate)["signals"],
        }
        for b, a in sorted(examples_rows, key=lambda pair: pair[0].seq)
    ]
    return {
        "rules": {"current": current.version, "candidate": candidate.version},
        "recipients": considered,
        "changed": sum(transitions.values()),
        "counters_changed": counters_changed,
        "transitions": [
            {"from": f, "to": t, "count": n} for (f, t), n in sorted(transitions.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "mailings": {m: {"before": sb.result(), "after": sa.result()} for m, (sb, sa) in sorted(summaries.items())},
        "contacts": {
            "newly_suppressed": {"count": len(newly), "sample": newly[:sample]},
            "no_longer_suppressed": {"count": len(no_longer), "sample": no_longer[:sample]},
        },
        "examples": examples,
    }


def _add(builder: SummaryBuilder, s: RecipientState) -> None:
    builder.add(s.response, s.reason, s.sent, s.unique_open, s.opens, s.clicks)


def _recipient_view(s: RecipientState) -> dict[str, Any]:
    return {"response": response_object(s.response, s.reason), "opens": s.opens, "clicks": s.clicks}


# ---- audit history -------------------------------------------------------------------------------


def explain(
    signals: Iterable[tuple[int, Signal]],
    rules: Ruleset,
    mailing_start: datetime | None,
    as_of: datetime | None = None,
    lang: str = "en",
    after: int = 0,
    limit: int | None = None,
) -> dict[str, Any]:
    """Fold one recipient's journal step by step, saying for each signal what it did and why.

    Paged: the steps of signals after ``after`` (a journal position), at most ``limit`` of them, and
    ``next`` (a cursor, or None on the last page); the state is always the whole journal's."""
    state = RecipientState()
    steps = []
    more = False
    for seq, signal in signals:
        if as_of is not None and signal.received_at > as_of:
            continue
        state, step = fold(state, signal, rules, mailing_start)
        if seq <= after:
            continue
        if limit is not None and len(steps) >= limit:
            more = True
            continue
        steps.append(
            {
                "seq": seq,
                "received_at": iso(signal.received_at),
                "occurred_at": iso(signal.occurred_at),
                "source": signal.source,
                "raw": signal.raw,
                "maps_to": step.maps_to,
                "effect": step.effect,
                "why": step.why,
                "response_after": response_object(step.response_after, state.reason if step.response_after == state.response else None, lang),
            }
        )
    from application.queries import encode_cursor

    return {
        "response": response_object(state.response, state.reason, lang),
        "opens": state.opens,
        "clicks": state.clicks,
        "rules": rules.version,
        "signals": steps,
        "next": encode_cursor(steps[-1]["seq"]) if more and steps else None,
    }
