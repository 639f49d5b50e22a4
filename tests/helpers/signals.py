"""Domain tests' helpers: signals built at offsets from T0, and journals folded."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.fold import RecipientState, Step, fold
from domain.rules import DEFAULT_RULESET, Ruleset
from domain.signals import Signal, system_signal

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


_keys = itertools.count(1)


def when(value: datetime | timedelta | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return T0 + value
    return value


def make_provider_signal(
    source: str,
    fields: dict[str, str],
    at: datetime | timedelta = timedelta(0),
    key: str | None = None,
    *,
    occurred_at: datetime | timedelta | None = None,
    url: str | None = None,
    reason: str | None = None,
    detail: str | None = None,
    user_agent: str | None = None,
    machine: bool = False,
) -> Signal:
    """A provider signal as an adapter builds it: ``fields`` are the status fields."""
    received = when(at)
    return Signal(
        key=key or f"{source}-{next(_keys)}",
        source=source,
        fields=dict(fields),
        received_at=received,  # type: ignore[arg-type]
        occurred_at=when(occurred_at) or received,
        url=url,
        reason=reason,
        detail=detail,
        user_agent=user_agent,
        machine=machine,
    )


def make_unione_signal(status: str, at: datetime | timedelta = timedelta(0), key: str | None = None, **kw: Any) -> Signal:
    delivery_status = kw.pop("delivery_status", None)
    fields = {"status": status}
    if delivery_status is not None:
        fields["delivery_status"] = delivery_status
    return make_provider_signal("unione", fields, at, key, **kw)


def make_system_signal(kind: str, at: datetime | timedelta = timedelta(0), key: str | None = None, **kw: Any) -> Signal:
    """A dispatch outcome / canonical signal / confirmation check (``kind`` is a code or confirmation_checked)."""
    if "occurred_at" in kw:
        kw["occurred_at"] = when(kw["occurred_at"])
    return system_signal(kind, key=key or f"system-{next(_keys)}", at=when(at), **kw)  # type: ignore[arg-type]


def fold_signals(
    signals: Iterable[Signal],
    rules: Ruleset = DEFAULT_RULESET,
    mailing_start: datetime | timedelta | None = timedelta(0),
    state: RecipientState | None = None,
) -> tuple[RecipientState, list[Step]]:
    """Fold a journal from ``state`` (a fresh ``planned`` recipient by default); returns the state and every step."""
    state = state if state is not None else RecipientState()
    steps: list[Step] = []
    start = when(mailing_start)
    for signal in signals:
        state, step = fold(state, signal, rules, start)
        steps.append(step)
    return state, steps
