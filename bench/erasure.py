"""Erasure (CONTRACT §12), on SQLite: one contact, contacts one after another (the baseline: what calling
``erase`` in a loop costs), and a bulk erasure of ``contacts`` (the job ``POST /v1/erasures`` runs).

``erase_10k_seconds`` is written only by a real bulk erasure of 10,000 contacts (the full run); a smaller
run (QUICK) writes ``erase_10k_seconds_extrapolated`` instead: its time scaled linearly, on a smaller
campaign (the per-contact cost grows with the campaign: the views' tables it reads are smaller there)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.http_load import progress
from bench.ingest import T0, campaign, ingest
from bench.journal import provider_events

Report = list[tuple[str, str, str, str]]
SINGLES = 5  # erased one at a time: the single erasure's median
ONE_BY_ONE = 100  # erased in a loop of single erasures: the baseline rate
TARGET_10K = 60.0  # seconds for 10,000 contacts (issue "Forget a contact")


def bench_erasure(work: Path, report: Report, results: dict[str, Any], recipients: int = 12_000, contacts: int = 10_000) -> None:
    contacts = min(contacts, recipients - SINGLES - 1)
    one_by_one = max(1, min(ONE_BY_ONE, recipients - contacts - SINGLES))
    app = campaign(f"sqlite:///{work / 'erasure.db'}", recipients)
    ingest(app, provider_events("bench", recipients, recipients * 4, T0))
    app.wait_for_views()
    progress(f"  {recipients:,} recipients, {recipients * 4:,} signals; erasing …")
    spare = iter(range(contacts, recipients))  # c0 … are the bulk job's; the others erased singly
    singles = []
    for _ in range(SINGLES):
        started = time.perf_counter()
        app.erasures.erase(f"c{next(spare)}", "bench", None)
        singles.append(time.perf_counter() - started)
    one = statistics.median(singles)
    started = time.perf_counter()
    for _ in range(one_by_one):
        app.erasures.erase(f"c{next(spare)}", "bench", None)
    looped = (time.perf_counter() - started) / one_by_one
    progress(f"  bulk erasure of {contacts:,} contacts …")
    started = time.perf_counter()
    result = app.erasures.erase_many([f"c{i}" for i in range(contacts)], [], "bench", None)
    bulk = time.perf_counter() - started
    app.close()
    assert result["erased"] == contacts and not result["unknown"], result
    results["erase_one_seconds"] = round(one, 3)
    results["erase_one_by_one_ms_per_contact"] = round(looped * 1000, 1)
    results["erase_bulk_contacts"] = contacts
    results["erase_bulk_seconds"] = round(bulk, 2)
    results["erase_bulk_chunk"] = app.erasures.chunk
    per_10k = bulk / contacts * 10_000
    if contacts == 10_000:
        results["erase_10k_seconds"] = round(bulk, 2)
        measured = f"{bulk:.1f} s"
    else:
        results["erase_10k_seconds_extrapolated"] = round(per_10k, 1)
        measured = f"{bulk:.1f} s · 10,000 extrapolated linearly: ~{per_10k:.0f} s"
    report.append(
        (
            "erase one contact (SQLite)",
            f"{one * 1000:,.0f} ms",
            f"{recipients:,} recipients",
            "ok (target < 1 s)" if one < 1 else "OVER (target < 1 s)",
        )
    )
    report.append(
        (
            f"bulk erasure of {contacts:,} contacts (SQLite, chunks of {app.erasures.chunk})",
            measured,
            f"{recipients:,} recipients; one after another: {looped * 1000:.1f} ms a contact, "
            f"{looped * contacts / bulk:.0f} × slower",
            ("ok" if per_10k < TARGET_10K else "OVER") + f" (target 10,000 < {TARGET_10K:.0f} s)",
        )
    )
