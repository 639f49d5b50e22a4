"""Projection lag as the follower measures it: for each event it applies, now minus when it was stored.

Kept as a histogram in the views' meta table, written in the batch's own transaction, so any
process (``/readyz`` in a gunicorn worker, the benchmark) reads what the follower measured,
instead of inferring lag by polling through busy workers.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

# Upper bounds of the buckets, in ms: fine where the targets are (under a second), coarse beyond.
BOUNDS: tuple[float, ...] = (
    *range(5, 50, 5),
    *range(50, 2000, 50),
    *range(2000, 10000, 500),
    *range(10000, 60001, 5000),
    float("inf"),
)


@dataclass
class LagHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BOUNDS))
    last_batch_ms: float = 0.0  # the largest lag in the latest batch applied
    last_batch_at: str | None = None

    @property
    def events(self) -> int:
        return sum(self.counts)

    def add_batch(self, lags_ms: list[float], at: datetime) -> None:
        for ms in lags_ms:
            self.counts[bisect.bisect_left(BOUNDS, ms)] += 1
        if lags_ms:
            self.last_batch_ms = max(lags_ms)
            self.last_batch_at = at.isoformat()

    def percentile_ms(self, p: float) -> float | None:
        """The bucket bound under which ``p`` (0-1) of the events' lags fall (None when none)."""
        total = self.events
        if not total:
            return None
        wanted, seen = p * total, 0
        for bound, count in zip(BOUNDS, self.counts):
            seen += count
            if seen >= wanted:
                return bound if bound != float("inf") else 60000.0
        return None

    def since(self, earlier: LagHistogram) -> LagHistogram:
        """The events applied after ``earlier`` was read."""
        return LagHistogram([a - b for a, b in zip(self.counts, earlier.counts)], self.last_batch_ms, self.last_batch_at)

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "p50_ms": self.percentile_ms(0.5),
            "p99_ms": self.percentile_ms(0.99),
            "last_batch_ms": round(self.last_batch_ms, 1),
        }

    def dumps(self) -> str:
        return orjson.dumps(
            {"counts": self.counts, "last_batch_ms": self.last_batch_ms, "last_batch_at": self.last_batch_at}
        ).decode()

    @classmethod
    def loads(cls, text: str | None) -> LagHistogram:
        if not text:
            return cls()
        try:
            data = orjson.loads(text)
            counts = [int(c) for c in data["counts"]]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return cls()
        if len(counts) != len(BOUNDS):  # bucket bounds changed between versions: start again
            return cls()
        return cls(counts, float(data.get("last_batch_ms") or 0.0), data.get("last_batch_at"))


def lag_key(generation: int) -> str:
    return f"views-g{generation}-applied-lag"
