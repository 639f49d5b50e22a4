"""A flood of what-ifs against ``responses serve`` (issue 14, item 1): how long a webhook and ``/healthz``
wait while 40 what-ifs are posted from 8 threads, and how the what-ifs were answered.

    python -m bench.whatif_flood [--recipients N] [--what-ifs N] [--threads N]

``run(work, report, results)`` is the section for ``make bench``: ``responses serve`` (SQLite, its
default 8 threads) on a fresh database, a campaign of ``recipients`` with its provider events, then
``what_ifs`` POST /v1/what-if (distinct candidate rules, and every fourth one a repeat of an earlier
one: identical questions share a job) from ``threads`` threads; once they are all in flight, one
UniOne batch and one ``/healthz`` are sent and timed. ``results["what_if_flood"]`` gets the figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.http_load import UNIONE_PATH, Client, LoadError, Report, Stack, make_batches, setup_campaign, wait_caught_up

CLIENT_TIMEOUT = 120.0  # a request not answered within this counts as unanswered (None)


def candidate(n: int) -> dict[str, Any]:
    """The n-th what-if's rules: every fourth repeats the one before it (the same question)."""
    k = n - 1 if n % 4 == 3 else n
    return {"confirmation_timeout_hours": 12 + k}


def timed(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None, auth: bool = True
) -> tuple[int | None, float, Any]:
    """(status or None when unanswered, seconds waited, answer) for one request on its own connection."""
    client = Client(port, timeout=CLIENT_TIMEOUT)
    started = time.monotonic()
    try:
        status, answer = client.request(method, path, body, headers, auth=auth)
    except OSError as exc:
        return None, time.monotonic() - started, str(exc)
    finally:
        client.close()
    return status, time.monotonic() - started, answer


def flood(port: int, what_ifs: int, threads: int, batch: bytes) -> dict[str, Any]:
    """Post the what-ifs, then (all of them in flight or answered) the webhook and /healthz; the figures."""
    json_headers = {"Content-Type": "application/json"}
    posted = threading.Event()
    sent = [0]
    lock = threading.Lock()

    def what_if(n: int) -> tuple[int | None, float, Any]:
        with lock:
            sent[0] += 1
            if sent[0] == what_ifs:
                posted.set()
        return timed(port, "POST", "/v1/what-if", json.dumps({"rules": candidate(n), "sample": 5}).encode(), json_headers)

    with ThreadPoolExecutor(threads) as pool, ThreadPoolExecutor(2) as probes:
        answers = [pool.submit(what_if, n) for n in range(what_ifs)]
        started = time.monotonic()
        while not posted.is_set() and time.monotonic() - started < 60:  # the last what-if is being posted
            time.sleep(0.01)
        webhook = probes.submit(timed, port, "POST", UNIONE_PATH, batch, json_headers, False)
        health = probes.submit(timed, port, "GET", "/healthz", None, None, False)
        hook, healthz = webhook.result(), health.result()
        done = [a.result() for a in answers]
    statuses = Counter(str(status) for status, _, _ in done)
    jobs = {answer["job"] for status, _, answer in done if status == 202 and isinstance(answer, dict)}
    return {
        "what_ifs": what_ifs,
        "threads": threads,
        "webhook_status": hook[0],
        "webhook_wait_s": round(hook[1], 3),
        "healthz_status": healthz[0],
        "healthz_wait_s": round(healthz[1], 3),
        "what_if_statuses": dict(sorted(statuses.items())),
        "what_if_jobs": len(jobs),
        "slowest_what_if_s": round(max(seconds for _, seconds, _ in done), 3),
    }


def run(
    work: Path, report: Report, results: dict[str, Any], *, recipients: int = 2000, what_ifs: int = 40, threads: int = 8
) -> None:
    """The section: ``responses serve`` on SQLite under a what-if flood (see the module's text)."""
    directory = work / "whatif-flood"
    directory.mkdir(parents=True, exist_ok=True)
    stack = Stack("sqlite", f"sqlite:///{directory / 'flood.db'}", directory)
    stack.start()
    try:
        send = setup_campaign(stack.port, "flood", recipients)
        batches = make_batches("flood", send)
        client = Client(stack.port, timeout=CLIENT_TIMEOUT)
        try:
            for b in batches[:-1]:
                status, answer = client.request("POST", UNIONE_PATH, b.body, {"Content-Type": "application/json"}, auth=False)
                if status != 200:
                    raise LoadError(f"batch {b.index} answered {status}: {answer}")
        finally:
            client.close()
        wait_caught_up(stack.port, timeout=300)
        figures = flood(stack.port, what_ifs, threads, batches[-1].body)
    except LoadError as exc:
        raise LoadError(f"{exc}\n{stack.logs()}") from None
    finally:
        stack.stop()
    figures["recipients"] = recipients
    results["what_if_flood"] = figures
    answered = "answered" if figures["webhook_status"] == 200 else f"status {figures['webhook_status']}"
    report.append(
        (
            "webhook during a what-if flood (serve)",
            f"{figures['webhook_wait_s']:.2f} s",
            f"{what_ifs} what-ifs from {threads} threads, {recipients:,} recipients; /healthz {figures['healthz_wait_s']:.2f} s",
            answered,
        )
    )
    report.append(
        (
            "what-ifs in the flood",
            f"{figures['slowest_what_if_s']:.2f} s slowest",
            f"statuses {figures['what_if_statuses']}, {figures['what_if_jobs']} jobs",
            "info",
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.whatif_flood", description=__doc__)
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--what-ifs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    report: Report = []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="whatif-flood-") as work:
        run(Path(work), report, results, recipients=args.recipients, what_ifs=args.what_ifs, threads=args.threads)
    for row in report:
        print(" | ".join(row))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
