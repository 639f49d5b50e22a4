"""Which contacts a rule change can touch: the scoped what-if's reasoning.

A recipient's response is always the code one of its own signals maps to (or the confirmation
timeout's), and a contact's flags follow from its recipients' folded signals and its commands.
So a change of how codes compare (``responses``), of how signals map (``provider_mappings``: a code, a reason or a
contact effect) or
of a rule about one kind of signal (machine opens, clicks, unsubscribes, soft bounces,
confirmation timeouts) can only move recipients whose journals hold signals mapping, under either
ruleset, to the codes involved; and only their contacts' flags. The projection indexes which
contacts' journals hold each (source, status fields) term (``signal_terms``), so a what-if folds
just those contacts' recipients. A change of anything else — the statistics period above all,
which every signal is measured against — touches everyone: ``touched_terms`` says None.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.mappings.target import UNSUBSCRIBE
from domain.rules import DOCUMENT_FIELDS, Ruleset
from domain.signals import CONFIRMATION_CHECKED, SYSTEM
from projections.projector import parse_term

INITIAL_RESPONSE = "planned"  # every recipient's response before any signal: a change to it touches everyone
_BY_CODE = {
    "count_machine_opens": {"opened", "opened_machine"},
    "machine_open_user_agents": {"opened", "opened_machine"},
    "machine_open_window_seconds": {"opened", "opened_machine"},
    "machine_click_window_seconds": {"clicked"},
    "unsubscribe_url_patterns": {"clicked"},
    "unsubscribe_from_all": {"unsubscribed"},
    "soft_bounce_limit": {"soft_bounce"},
}
_CONFIRMATION = ("confirmation_timeout_hours", "confirmation_timeout_response")


def touched_terms(current: Ruleset, candidate: Ruleset, terms: Iterable[str]) -> set[str] | None:
    """The index terms whose signals the change can fold differently; None when it can touch anyone."""
    now, then = current.to_document(), candidate.to_document()
    changed = [name for name in DOCUMENT_FIELDS if name != "version" and now.get(name) != then.get(name)]
    codes: set[str] = set()
    confirmation = False
    for name in changed:
        if name == "responses":
            codes |= {c for c in set(now[name]) | set(then[name]) if now[name].get(c) != then[name].get(c)}
        elif name == "provider_mappings":
            continue  # compared term by term below
        elif name in _BY_CODE:
            codes |= _BY_CODE[name]
        elif name in _CONFIRMATION:
            confirmation = True
        else:
            return None
    if INITIAL_RESPONSE in codes:
        return None
    if codes & {"opened", "opened_machine"}:  # an open may fold as a machine open, and back
        codes |= {"opened", "opened_machine"}
    if codes & {current.confirmation_timeout_response, candidate.confirmation_timeout_response}:
        confirmation = True
    # an unsubscribe's reach moves with unsubscribe_from_all: a mapping's "unsubscribe" effect too
    effects = {UNSUBSCRIBE} if "unsubscribe_from_all" in changed else set()
    touched: set[str] = set()
    for term in terms:
        source, fields = parse_term(term)
        if source == SYSTEM and fields.get("kind") == CONFIRMATION_CHECKED:
            if confirmation:
                touched.add(term)
            continue
        a, b = current.map(source, fields), candidate.map(source, fields)
        if a != b or a.code in codes or b.code in codes or a.contact_effect in effects or b.contact_effect in effects:
            touched.add(term)
    return touched


def describe(touched: set[str] | None) -> dict[str, Any]:
    return {"scoped": touched is not None, "terms": None if touched is None else len(touched)}
