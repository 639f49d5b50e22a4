"""HTTP load for `make bench` (CONTRACT §10) and the crash test: the service as real processes.

Everything talks to 127.0.0.1 only; every loop is bounded (batch counts,
deadlines); every process started here is ended by its own id (its process
group for gunicorn, whose workers share it), in ``finally`` blocks.

The pieces:

* ``Stack``: ``responses serve`` on SQLite, or ``gunicorn -w N interface.wsgi:app``
  plus ``responses project`` on PostgreSQL, each configured only by the
  environment; ``kill_*`` send SIGKILL (a crash), ``start`` restarts on the same
  database and port.
* ``setup_campaign`` / ``make_batches``: a mailing, its audience and dispatch
  through the API, then the provider's events for the recipients sent to
  (``interface.simulate``'s realistic campaign), as signed UniOne batches.
* ``send_batches``: N sender threads, one keep-alive connection each, posting
  batches from a shared ``Feed`` and timing every answer; ``deliver`` sends
  again what was not answered 200, as a provider retries.
* ``ReadySampler``: polls ``/readyz`` every 50 ms; ``projection_lags`` turns the
  samples into a per-batch lag.
* ``Expectation`` / ``audience_counters`` / ``counter_gaps``: what the views must
  show per recipient, against what they show.
* ``crash_run``: kill -9 under load, restart, "0 acknowledged signals lost,
  counters exactly once" (the crash section and tests/e2e/test_crash.py).
* ``bench_http`` and ``bench_crash``: the benchmark sections.
"""

from __future__ import annotations

import bisect
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from interface.simulate import recipient_events, unione_batch

HOST = "127.0.0.1"
API_TOKEN = "bench-api-token-4d7e1b"
UNIONE_KEY = "bench-unione-key-93c0a2"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BIN = Path(sys.executable).parent
STARTUP_SECONDS = 30.0
UNIONE_PATH = "/v1/webhooks/unione"

Report = list[tuple[str, str, str, str]]


class LoadError(RuntimeError):
    """The service did not start, answered wrongly, or did not catch up in time."""


def progress(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


# ---- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def service_env(database_url: str) -> dict[str, str]:
    """The caller's environment less any configuration of ours, plus exactly this."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RESPONSES_", "UNIONE_", "ELASTICEMAIL_", "SENDGRID_", "DATABASE_URL", "MAX_BODY"))
    }
    env.update(DATABASE_URL=database_url, RESPONSES_API_TOKENS=API_TOKEN, UNIONE_API_KEYS=UNIONE_KEY, PYTHONUNBUFFERED="1")
    if database_url.startswith("postgresql"):  # the keys the benchmark's in-process apps use (./var/)
        from application.persistence.keys import ensure_key_file

        env.update(
            RESPONSES_KEK=ensure_key_file(Path("var") / "kek"), RESPONSES_ADDRESS_KEY=ensure_key_file(Path("var") / "address-key")
        )
    return env


def responses_command(*args: str) -> list[str]:
    script = BIN / "responses"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "interface.cli", *args]


def gunicorn_command(*args: str) -> list[str]:
    """gunicorn, without the control socket newer versions open under ~/.gunicorn (shared by concurrent runs)."""
    import gunicorn.config

    quiet = ["--no-control-socket"] if any(s.name == "control_socket_disable" for s in gunicorn.config.KNOWN_SETTINGS) else []
    return [str(BIN / "gunicorn"), *quiet, *args]


class Child:
    """A child process in its own process group (gunicorn's workers share it), output to a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], cwd: Path):
        self.name = name
        self.log_path = cwd / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self._reaped = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = STARTUP_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if not self.alive():
                raise LoadError(f"{self.name} exited ({self.proc.returncode}):\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise LoadError(f"{self.name} did not print {text!r} in {timeout}s:\n{self.output()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL to the whole group (gunicorn's master and its workers alike): a crash, no cleanup."""
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()

    def stop(self) -> int | None:
        """SIGTERM (a graceful stop); SIGKILL to the group if it does not end within 15 s."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap()
        return self.proc.returncode

    def _reap(self) -> None:
        if self._reaped:
            return
        self._reaped = True
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not refused
            pass
        try:  # gunicorn workers left in the group (the master went first): end them too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log.close()


@contextmanager
def postgres_database(prefix: str = "responses_bench") -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Stack:
    """The service on one store, started (and restarted) on one database and one port.

    ``sqlite``: ``responses serve`` (HTTP and its projection follower in one process).
    ``postgres``: ``responses project``, then ``gunicorn -w <workers> interface.wsgi:app``.
    """

    def __init__(self, kind: str, database_url: str, workdir: Path, workers: int = 4):
        assert kind in ("sqlite", "postgres")
        self.kind = kind
        self.database_url = database_url
        self.workdir = workdir
        self.workers = workers
        self.port = free_port()
        self.env = service_env(database_url)
        self.web: Child | None = None
        self.projector: Child | None = None
        self.starts = 0
        self.boot_races: list[str] = []  # gunicorn starts that failed on the workers' schema race, then retried

    def start(self) -> None:
        self.starts += 1
        if self.kind == "sqlite":
            self.web = Child(
                f"serve-{self.starts}",
                responses_command("serve", "--host", HOST, "--port", str(self.port)),
                self.env,
                self.workdir,
            )
            wait_until_up(self.port, self.web)
        else:
            self.start_projector()
            self.start_gunicorn()

    def start_gunicorn(self, attempts: int = 3) -> None:
        """gunicorn, up once every worker has loaded the app (a harness-only hook logs it).

        Workers booting at once can fail on PostgreSQL's "tuple concurrently updated"
        (each creates the event store's schema); gunicorn then exits. That boot race
        is retried here, at most ``attempts`` times, and kept in ``boot_races``.
        """
        config = self.workdir / "gunicorn_bench.conf.py"
        config.write_text('def post_worker_init(worker):\n    worker.log.info("bench: worker %s loaded the app", worker.pid)\n')
        for attempt in range(1, attempts + 1):
            name = f"gunicorn-{self.starts}" + (f"-retry{attempt - 1}" if attempt > 1 else "")
            self.web = Child(
                name,
                gunicorn_command("-c", str(config), "-w", str(self.workers), "-b", f"{HOST}:{self.port}", "interface.wsgi:app"),
                self.env,
                self.workdir,
            )
            deadline = time.monotonic() + STARTUP_SECONDS
            while self.web.alive() and self.web.output().count("loaded the app") < self.workers and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.web.alive():
                wait_until_up(self.port, self.web)
                return
            self.web.stop()
            if "tuple concurrently updated" not in self.web.output() or attempt == attempts:
                raise LoadError(f"{name} exited ({self.web.proc.returncode}):\n{self.web.output()[-3000:]}")
            self.boot_races.append(name)
            progress(f"  {name}: a worker failed to boot (PostgreSQL: tuple concurrently updated); starting gunicorn again")

    def start_projector(self) -> None:
        self.projector = Child(
            f"project-{self.starts}-{time.monotonic_ns()}",
            responses_command("project", "--report-every", "1"),
            self.env,
            self.workdir,
        )
        self.projector.wait_for_output("following the journal")  # the schema exists before the workers start

    def kill_web(self) -> None:
        if self.web is not None:
            self.web.kill()

    def kill_projector(self) -> None:
        if self.projector is not None:
            self.projector.kill()

    def stop(self) -> None:
        for child in (self.web, self.projector):
            if child is not None:
                child.stop()

    def logs(self) -> str:
        return "".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-2000:]}\n" for p in sorted(self.workdir.glob("*.log")))


# ---- the client -------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection (reopened when the server closes it); not thread-safe."""

    def __init__(self, port: int, timeout: float = 30.0):
        self.port = port
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None, auth: bool = True
    ) -> tuple[int, Any]:
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = f"Bearer {API_TOKEN}"
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode("utf-8", "replace")

    def api(self, method: str, path: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        status, answer = self.request(method, path, body, {"Content-Type": "application/json"})
        if not 200 <= status < 300:
            raise LoadError(f"{method} {path} answered {status}: {answer}")
        return answer

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def wait_until_up(port: int, child: Child, timeout: float = STARTUP_SECONDS) -> None:
    client = Client(port, timeout=2.0)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if not child.alive():
                raise LoadError(f"{child.name} exited ({child.proc.returncode}):\n{child.output()[-3000:]}")
            try:
                if client.request("GET", "/healthz", auth=False)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise LoadError(f"{child.name} not answering after {timeout}s:\n{child.output()[-3000:]}")
            time.sleep(0.05)
    finally:
        client.close()


def wait_caught_up(port: int, timeout: float = 60.0) -> dict[str, Any]:
    """Poll /readyz until the views have applied the whole journal (bounded)."""
    client = Client(port, timeout=5.0)
    deadline = time.monotonic() + timeout
    ready: Any = None
    try:
        while time.monotonic() < deadline:
            try:
                status, ready = client.request("GET", "/readyz", auth=False)
                if status == 200 and ready["lag"] == 0:
                    return ready
            except OSError:
                pass
            time.sleep(0.05)
    finally:
        client.close()
    raise LoadError(f"projection lag did not reach 0 in {timeout}s: {ready}")


# ---- the campaign -----------------------------------------------------------------------------


@dataclass
class Batch:
    index: int
    body: bytes
    events: list[dict[str, Any]]


def setup_campaign(
    port: int, mailing_id: str, recipients: int, wave: int = 5000, say: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """Mailing, audience and dispatch through the API, in waves of ``wave`` recipients (each
    added, then dispatched: one dispatch of 20,000 recipients can outlast gunicorn's 30 s worker
    timeout on a small machine); returns the dispatches' ``send`` lists, joined."""
    client = Client(port, timeout=120.0)
    send: list[dict[str, Any]] = []
    try:
        client.api(
            "POST",
            "/v1/mailings",
            {"id": mailing_id, "name": f"Load {mailing_id}", "category": "bulk", "email_type": "news", "provider": "unione"},
        )
        people = [
            {"contact_id": f"{mailing_id}-c{i:06d}", "name": f"Recipient {i}", "email": f"r{i}.{mailing_id}@example.com"}
            for i in range(recipients)
        ]
        for i in range(0, recipients, wave):
            started = time.monotonic()
            for j in range(i, min(recipients, i + wave), 1000):
                client.api("POST", f"/v1/mailings/{mailing_id}/audience", {"recipients": people[j : min(j + 1000, i + wave)]})
            added = time.monotonic()
            for _ in range(1000):  # a sender repeats while the bounded dispatch leaves recipients planned
                answer = client.api("POST", f"/v1/mailings/{mailing_id}/dispatch")
                send += answer["send"]
                if not answer["remaining"]:
                    break
            if say is not None:
                say(
                    f"{min(recipients, i + wave):,}/{recipients:,} recipients: audience {added - started:.1f} s, dispatch {time.monotonic() - added:.1f} s"
                )
    finally:
        client.close()
    if len(send) != recipients:
        raise LoadError(f"dispatch sent {len(send)} of {recipients}")
    return send


def make_batches(
    mailing_id: str, send: list[dict[str, Any]], size: int = 100, limit: int | None = None, seed: int = 7
) -> list[Batch]:
    """The provider's events for these recipients (delivery or bounce, opens, clicks, unsubscribes, complaints),
    roughly in time order, shuffled within each batch, signed as UniOne batches; at most ``limit`` batches."""
    rng = random.Random(seed)
    start = datetime.now(UTC)
    events = [e for s in send for e in recipient_events(mailing_id, s, start, rng)]
    events.sort(key=lambda e: e["event_time"])
    batches: list[Batch] = []
    for i in range(0, len(events), size):
        if limit is not None and len(batches) >= limit:
            break
        chunk = events[i : i + size]
        rng.shuffle(chunk)
        batches.append(Batch(len(batches), unione_batch(chunk, UNIONE_KEY), chunk))
    return batches


# ---- the load ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    batch: int
    started: float  # time.monotonic()
    finished: float
    status: int | None  # None: no answer (connection refused or dropped)
    answer: Any = None
    error: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status == 200

    @property
    def latency(self) -> float:
        return self.finished - self.started


def deliver(port: int, batches: list[Batch], senders: int = 8, rounds: int = 5) -> tuple[dict[int, Outcome], list[Outcome]]:
    """Send until each batch is acknowledged, as a provider retries a 5xx (at most ``rounds`` times each).
    Returns the 200 answers by batch index and the other answers."""
    acknowledged: dict[int, Outcome] = {}
    others: list[Outcome] = []
    pending = list(batches)
    for _ in range(rounds):
        if not pending:
            break
        for o in send_batches(port, pending, senders):
            if o.acknowledged:
                acknowledged[o.batch] = o
            else:
                others.append(o)
        pending = [b for b in pending if b.index not in acknowledged]
    return acknowledged, others


class Feed:
    """Batches handed out in order to several senders; those from ``hold_at`` on wait for ``release()``."""

    def __init__(self, batches: list[Batch], hold_at: int | None = None):
        self.batches = list(batches)
        self._next = 0
        self._hold_at = len(self.batches) if hold_at is None else hold_at
        self._cond = threading.Condition()

    def take(self, deadline: float | None) -> Batch | None:
        """The next batch; None when all were taken or ``deadline`` (monotonic) passed."""
        with self._cond:
            while self._hold_at <= self._next < len(self.batches):
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                self._cond.wait(0.05)
            if self._next >= len(self.batches) or (deadline is not None and time.monotonic() >= deadline):
                return None
            self._next += 1
            return self.batches[self._next - 1]

    def release(self) -> None:
        with self._cond:
            self._hold_at = len(self.batches)
            self._cond.notify_all()


def send_batches(
    port: int,
    batches: list[Batch] | Feed,
    senders: int = 8,
    deadline: float | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    stop_on_error: bool = False,
) -> list[Outcome]:
    """POST every batch once, from ``senders`` threads sharing a feed; one keep-alive connection per thread.

    Bounded: each batch is taken once; a thread stops at ``deadline`` (monotonic)
    and, with ``stop_on_error``, at its first unanswered request (the server is down).
    """
    feed = batches if isinstance(batches, Feed) else Feed(batches)
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def sender() -> None:
        client = Client(port, timeout=30.0)
        try:
            while (batch := feed.take(deadline)) is not None:
                started = time.monotonic()
                try:
                    status, answer = client.request(
                        "POST", UNIONE_PATH, batch.body, {"Content-Type": "application/json"}, auth=False
                    )
                    outcome = Outcome(batch.index, started, time.monotonic(), status, answer)
                except (OSError, http.client.HTTPException) as exc:
                    outcome = Outcome(batch.index, started, time.monotonic(), None, error=type(exc).__name__)
                with lock:
                    outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
                if outcome.status is None and stop_on_error:
                    return
        finally:
            client.close()

    threads = [threading.Thread(target=sender, name=f"sender-{i}", daemon=True) for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@dataclass
class Sample:
    sent: float
    answered: float
    journal: int
    views: int


class ReadySampler:
    """Polls ``GET /readyz`` every ``interval`` seconds on its own connection (a background thread)."""

    def __init__(self, port: int, interval: float = 0.05):
        self.port = port
        self.interval = interval
        self.samples: list[Sample] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="readyz-sampler", daemon=True)

    def __enter__(self) -> ReadySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        client = Client(self.port, timeout=10.0)
        try:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    status, ready = client.request("GET", "/readyz", auth=False)
                    if isinstance(ready, dict) and ready.get("views_position") is not None:
                        self.samples.append(
                            Sample(sent, time.monotonic(), int(ready["journal_position"]), int(ready["views_position"]))
                        )
                    else:
                        self.failures += 1
                except (OSError, http.client.HTTPException):
                    self.failures += 1
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - sent)))
        finally:
            client.close()

    def caught_up_after(self, t: float) -> bool:
        return any(s.sent >= t and s.views >= s.journal for s in self.samples[-5:])


def projection_lags(outcomes: list[Outcome], samples: list[Sample]) -> tuple[list[float], int]:
    """Per acknowledged batch: seconds from its 200 until a sample shows the views at the journal position
    the first sample taken after that 200 reported (an upper bound, to the sampling interval).
    Returns the lags and the number of batches the samples could not resolve."""
    sent = [s.sent for s in samples]
    lags: list[float] = []
    unresolved = 0
    for o in outcomes:
        if not o.acknowledged:
            continue
        i = bisect.bisect_left(sent, o.finished)
        if i >= len(samples):
            unresolved += 1
            continue
        target = samples[i].journal
        for s in samples[i:]:
            if s.views >= target:
                lags.append(max(0.0, s.answered - o.finished))
                break
        else:
            unresolved += 1
    return lags, unresolved


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
    return ordered[k]


# ---- what the views must show ------------------------------------------------------------------


def event_key(e: dict[str, Any]) -> tuple[Any, ...]:
    """The UniOne dedup key's fields (interface/providers/unione.py): events equal in these are one signal."""
    return (
        e["job_id"],
        e["email"],
        e["status"],
        e["event_time"],
        e.get("url"),
        (e.get("delivery_info") or {}).get("delivery_status"),
    )


@dataclass
class Expectation:
    """Distinct open and click signals per contact id, from a set of batches."""

    opens: Counter[str] = field(default_factory=Counter)
    clicks: Counter[str] = field(default_factory=Counter)
    signals: int = 0

    @classmethod
    def of(cls, batches: list[Batch]) -> Expectation:
        seen: set[tuple[Any, ...]] = set()
        x = cls()
        for b in batches:
            for e in b.events:
                key = event_key(e)
                if key in seen:
                    continue
                seen.add(key)
                x.signals += 1
                contact = e["metadata"]["contact_id"]
                if e["status"] == "opened":
                    x.opens[contact] += 1
                elif e["status"] == "clicked":
                    x.clicks[contact] += 1
        return x


def audience_counters(port: int, mailing_id: str) -> dict[str, tuple[int, int]]:
    """contact id → (opens, clicks), as the views hold them (every page of the audience)."""
    client = Client(port, timeout=60.0)
    rows: dict[str, tuple[int, int]] = {}
    cursor: str | None = None
    try:
        for _ in range(100_000):  # bounded: a page of 1000 per call
            page = client.api("GET", f"/v1/mailings/{mailing_id}/audience?limit=1000" + (f"&cursor={cursor}" if cursor else ""))
            for item in page["items"]:
                rows[item["contact_id"]] = (item["opens"], item["clicks"])
            cursor = page.get("next")
            if not cursor:
                break
    finally:
        client.close()
    return rows


def counter_gaps(views: dict[str, tuple[int, int]], low: Expectation, high: Expectation) -> tuple[int, int]:
    """(signals missing below ``low``, signals counted above ``high``) over every contact's opens and clicks."""
    missing = extra = 0
    contacts = set(views) | set(low.opens) | set(low.clicks) | set(high.opens) | set(high.clicks)
    for c in contacts:
        opens, clicks = views.get(c, (0, 0))
        missing += max(0, low.opens[c] - opens) + max(0, low.clicks[c] - clicks)
        extra += max(0, opens - high.opens[c]) + max(0, clicks - high.clicks[c])
    return missing, extra


# ---- the crash scenario --------------------------------------------------------------------------


@dataclass
class CrashResult:
    batches: int
    signals: int
    acknowledged: int  # batches answered 200 before the restart
    unanswered: int  # batches not answered 200 before the restart (in flight, refused, or a 5xx)
    lost: int  # acknowledged signals missing from the views after the restart
    resent_accepted: int  # acknowledged signals accepted again when re-sent (were not in the journal)
    bad_answers: list[str]  # answers that do not add up (accepted + duplicates != events, unmatched, quarantined)
    over_counted: int  # counters above the signals ever sent (applied twice)
    final_missing: int  # after every batch was (re)delivered: counters below the distinct signals
    final_extra: int  # … and above them
    summary_opens: tuple[int, int]  # (total_opens in the summary, distinct open signals)
    summary_clicks: tuple[int, int]
    error_answers: Counter[int | None]  # non-200 answers (not acknowledgements: the batch was delivered again)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.resent_accepted == 0
            and not self.bad_answers
            and self.over_counted == 0
            and self.final_missing == 0
            and self.final_extra == 0
            and self.summary_opens[0] == self.summary_opens[1]
            and self.summary_clicks[0] == self.summary_clicks[1]
        )

    def errors_note(self) -> str:
        """The 5xx answers met on the way (each batch was sent again until acknowledged)."""
        codes = {k: v for k, v in self.error_answers.items() if k is not None}
        return "; answers " + ", ".join(f"{n}× {code}" for code, n in sorted(codes.items())) + " (retried)" if codes else ""

    def describe(self) -> str:
        if self.ok:
            return "0 lost, exactly once"
        return (
            f"lost {self.lost}, re-sent accepted {self.resent_accepted}, over-counted {self.over_counted}, "
            f"final missing {self.final_missing} / extra {self.final_extra}, summary opens {self.summary_opens} clicks {self.summary_clicks}, "
            f"bad answers {len(self.bad_answers)}: {self.bad_answers[:3]}"
        )


def _answer_problem(batch: Batch, outcome: Outcome) -> str | None:
    a = outcome.answer if isinstance(outcome.answer, dict) else {}
    if a.get("accepted", 0) + a.get("duplicates", 0) != len(batch.events) or a.get("unmatched") or a.get("quarantined"):
        return f"batch {batch.index}: {outcome.status} {outcome.answer}"
    return None


def crash_run(
    stack: Stack,
    recipients: int,
    batch_size: int = 100,
    senders: int = 8,
    kill_at: float = 0.5,
    kill_projector_at: float | None = None,
    load_seconds: float = 120.0,
    mailing_id: str = "crash",
    say: Callable[[str], None] = lambda _: None,
) -> CrashResult:
    """Load ``stack`` (started, with no mailing ``mailing_id``); SIGKILL the projector alone at
    ``kill_projector_at`` (a fraction of the batches acknowledged; restarted at once, the load goes
    on), then every process at ``kill_at``; restart; check nothing acknowledged was lost; deliver
    again every batch (as a provider retries: the unanswered ones, and the acknowledged ones to
    prove they are duplicates); check each counter holds each signal exactly once."""
    send = setup_campaign(stack.port, mailing_id, recipients)
    batches = make_batches(mailing_id, send, size=batch_size)
    by_index = {b.index: b for b in batches}
    total = len(batches)
    say(f"{total} batches of ≤{batch_size} ({sum(len(b.events) for b in batches)} events), {senders} senders")

    # The batches after the kill point wait until the controller is ready to crash the service (the
    # projector restarted, if it was killed), so the kill always lands mid-stream, requests in flight.
    hold = min(total - 1, max(1, round(kill_at * total)))
    feed = Feed(batches, hold_at=hold)
    answered = 0
    lock = threading.Lock()

    def on_outcome(o: Outcome) -> None:
        nonlocal answered
        with lock:
            answered += 1

    first: list[Outcome] = []
    deadline = time.monotonic() + load_seconds
    load = threading.Thread(
        target=lambda: first.extend(send_batches(stack.port, feed, senders, deadline, on_outcome, stop_on_error=True)),
        name="crash-load",
        daemon=True,
    )
    load.start()

    def wait_answered(n: int) -> int:
        """Until ``n`` batches are answered, or the load ends (bounded by its deadline)."""
        while load.is_alive() and answered < n and time.monotonic() < deadline:
            time.sleep(0.002)
        return answered

    try:
        if kill_projector_at is not None:
            n = wait_answered(max(1, round(kill_projector_at * total)))
            say(f"kill -9 the projector after {n} answered batches; restarting it, the load goes on")
            stack.kill_projector()
            stack.start_projector()
        wait_answered(hold)
    finally:
        feed.release()
    n = wait_answered(hold + 1)
    say(
        f"kill -9 {'gunicorn (master and workers) and the projector' if stack.kind == 'postgres' else 'responses serve'} after {n} answered batches"
    )
    stack.kill_web()
    stack.kill_projector()
    load.join(timeout=load_seconds + 60)
    acked = {o.batch: o for o in first if o.acknowledged}
    unanswered = [b for b in batches if b.index not in acked]
    attempted = [by_index[o.batch] for o in first]
    bad = [p for o in acked.values() if (p := _answer_problem(by_index[o.batch], o))]
    say(f"{len(acked)} batches acknowledged, {len(unanswered)} not; restarting")

    stack.start()
    wait_caught_up(stack.port)
    say("restarted, the views caught up; checking them, then delivering every batch again")
    views = audience_counters(stack.port, mailing_id)
    acked_x = Expectation.of([by_index[i] for i in acked])
    lost, over = counter_gaps(views, acked_x, Expectation.of(attempted))

    # the provider's retries: the batches never answered 200, then the acknowledged ones again
    retried, refused = deliver(stack.port, unanswered, senders)
    again, refused_again = deliver(stack.port, [by_index[i] for i in sorted(acked)], senders)
    errors = [o for o in first + refused + refused_again if o.status is not None and o.status != 200]
    bad += [f"retry {b.index}: never acknowledged" for b in unanswered if b.index not in retried]
    bad += [f"again {b}: never acknowledged" for b in acked if b not in again]
    resent_accepted = 0
    for o in again.values():
        a = o.answer if isinstance(o.answer, dict) else {}
        if (
            a.get("unmatched")
            or a.get("quarantined")
            or a.get("accepted", 0) + a.get("duplicates", 0) != len(by_index[o.batch].events)
        ):
            bad.append(f"again {o.batch}: {o.answer}")
        resent_accepted += a.get("accepted", 0)
    say(f"{len(retried)} batches delivered again, {len(again)} acknowledged ones re-sent")
    wait_caught_up(stack.port)
    everything = Expectation.of(batches)
    final_missing, final_extra = counter_gaps(audience_counters(stack.port, mailing_id), everything, everything)
    summary = Client(stack.port)
    try:
        s = summary.api("GET", f"/v1/mailings/{mailing_id}/summary")
    finally:
        summary.close()
    return CrashResult(
        batches=total,
        signals=everything.signals,
        acknowledged=len(acked),
        unanswered=len(unanswered),
        lost=lost,
        resent_accepted=resent_accepted,
        bad_answers=bad,
        over_counted=over,
        final_missing=final_missing,
        final_extra=final_extra,
        summary_opens=(s["total_opens"], sum(everything.opens.values())),
        summary_clicks=(s["total_clicks"], sum(everything.clicks.values())),
        error_answers=Counter(o.status for o in errors),
    )


# ---- the benchmark sections ----------------------------------------------------------------------


def bench_http(
    work: Path,
    report: Report,
    *,
    recipients: int,
    batches: int,
    senders: int = 8,
    workers: int = 4,
    seconds: float = 120.0,
    want_http: bool = True,
    want_lag: bool = True,
    results: dict[str, Any] | None = None,
) -> None:
    """UniOne batches of 100 from ``senders`` threads to gunicorn -w ``workers`` + responses project on PostgreSQL:
    latency per request (section http) and projection lag sampled from /readyz (section lag), in one run."""
    directory = work / "http"
    directory.mkdir()
    try:
        outcomes, load, samples, elapsed, boot_races, measured = _http_run(
            directory, recipients, batches, senders, workers, seconds
        )
    except Exception as exc:  # the service did not start, PostgreSQL is down …: a FAILED row, not a lost bench
        progress(f"  http load failed: {exc}")
        for section, what in (("http", "HTTP UniOne batches of 100"), ("lag", "projection lag while ingesting")):
            if (want_http, want_lag)[section == "lag"]:
                report.append((what, "error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}", "FAILED"))
        return
    answered = [o for o in outcomes if o.status is not None]
    ok = [o for o in answered if o.acknowledged]
    failed = [o for o in outcomes if not o.acknowledged]
    for o in failed[:5]:
        progress(f"  batch {o.batch} not acknowledged after {o.latency:.2f} s: {o.status or o.error} {str(o.answer)[:200]}")
    events = sum(len(load[o.batch].events) for o in ok)
    statuses = Counter(o.status or o.error for o in failed)
    note = "".join(f", {n}× {status}" for status, n in sorted(statuses.items(), key=str))
    if want_http:
        if answered:
            latencies = [o.latency for o in answered]  # every answer a provider would wait for, 5xx included
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
            if results is not None:
                results.update(
                    http_signals_per_s=round(events / elapsed),
                    http_p50_ms=round(p50 * 1000, 1),
                    http_p99_ms=round(p99 * 1000, 1),
                    http_batches_acknowledged=len(ok),
                    http_batches=len(load),
                )
            verdict = "ok" if p99 < 1.0 else "OVER"
            if failed:
                verdict += f", but {len(failed)} not acknowledged"
            report.append(
                (
                    f"HTTP UniOne batches of 100, {senders} senders, gunicorn -w {workers} (PostgreSQL)",
                    f"p50 {p50 * 1000:,.0f} ms · p99 {p99 * 1000:,.0f} ms",
                    f"{len(ok)}/{len(load)} batches 200{note} · {events / elapsed:,.0f} signals/s · {len(answered) / elapsed:,.1f} req/s"
                    + boot_note(boot_races),
                    f"{verdict} (target p99 < 1 s)",
                )
            )
        else:
            report.append(("HTTP UniOne batches of 100", "no answer", f"{len(failed)} failed{note}", "FAILED"))
    if want_lag:
        # the follower's own measure: for every event it applied during the load, now minus when it was stored
        summary = measured.summary()
        if results is not None:
            results.update(lag_p50_ms=summary["p50_ms"], lag_p99_ms=summary["p99_ms"], lag_events=summary["events"])
        lags, unresolved = projection_lags(outcomes, samples)  # from outside, polling /readyz: an upper bound
        polled = f"; polled through the workers: p99 {percentile(lags, 99):,.2f} s" if lags else ""
        if summary["events"]:
            report.append(
                (
                    "projection lag while ingesting (measured by the follower)",
                    f"p50 {summary['p50_ms']:,.0f} ms · p99 {summary['p99_ms']:,.0f} ms",
                    f"{summary['events']:,} events applied{polled}",
                    f"{'ok' if summary['p99_ms'] < 1000 else 'OVER'} (target p99 < 1 s)",
                )
            )
        else:
            report.append(("projection lag while ingesting", "no events measured", f"{unresolved} unresolved", "FAILED"))


def follower_lag(url: str) -> Any:
    """The lag histogram the follower keeps beside the views (projections.lag)."""
    from application.config import Settings
    from application.service import ResponsesApp
    from projections.follower import applied_lag

    app = ResponsesApp(Settings(database_url=url))
    try:
        return applied_lag(app)
    finally:
        app.close()


def _http_run(
    directory: Path, recipients: int, batches: int, senders: int, workers: int, seconds: float
) -> tuple[list[Outcome], list[Batch], list[Sample], float, list[str], Any]:
    with postgres_database() as url:
        stack = Stack("postgres", url, directory, workers=workers)
        try:
            stack.start()
            progress(f"  campaign of {recipients:,} recipients through the API …")
            began = time.monotonic()
            send = setup_campaign(stack.port, "load", recipients, say=lambda text: progress(f"  {text}"))
            load = make_batches("load", send, size=100, limit=batches)
            wait_caught_up(stack.port, timeout=120)
            progress(
                f"  ready in {time.monotonic() - began:.1f} s; {len(load)} batches ({sum(len(b.events) for b in load):,} events), {senders} senders …"
            )
            answered = 0
            lock = threading.Lock()

            def tick(_: Outcome) -> None:
                nonlocal answered
                with lock:
                    answered += 1
                    n = answered
                if n % 50 == 0 or n == len(load):
                    progress(f"\r  {n}/{len(load)} batches answered", end="")

            before = follower_lag(url)
            with ReadySampler(stack.port) as sampler:
                started = time.monotonic()
                outcomes = send_batches(stack.port, load, senders, started + seconds, tick)
                elapsed = time.monotonic() - started
                progress("")
                deadline = time.monotonic() + 60  # the samples go on until the views caught up
                while time.monotonic() < deadline and not sampler.caught_up_after(started + elapsed):
                    time.sleep(0.05)
            return outcomes, load, sampler.samples, elapsed, stack.boot_races, follower_lag(url).since(before)
        except Exception:
            progress(stack.logs())
            raise
        finally:
            stack.stop()


def boot_note(races: list[str]) -> str:
    return f"; gunicorn failed to boot {len(races)}× (workers' schema race), restarted" if races else ""


def bench_crash(work: Path, report: Report, *, recipients: int) -> None:
    """kill -9 under load, restart, check: on SQLite (responses serve) and PostgreSQL (gunicorn -w 4 + responses project)."""
    for kind in ("sqlite", "postgres"):
        directory = work / f"crash-{kind}"
        directory.mkdir()

        def say(text: str, kind: str = kind) -> None:
            progress(f"  {kind}: {text}")

        with postgres_database() if kind == "postgres" else nullcontext(f"sqlite:///{directory / 'responses.db'}") as url:
            stack = Stack(kind, url, directory, workers=4)
            try:
                stack.start()
                result = crash_run(
                    stack, recipients, kill_at=0.5, kill_projector_at=0.25 if kind == "postgres" else None, say=say
                )
            except Exception as exc:  # a FAILED row, not a lost bench
                report.append(
                    (
                        f"crash (kill -9 under load), {kind}",
                        "error",
                        f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}",
                        "FAILED",
                    )
                )
                progress(stack.logs())
                continue
            finally:
                stack.stop()
        what = "responses serve, SQLite" if kind == "sqlite" else "gunicorn -w 4 + project, PostgreSQL (projector killed twice)"
        report.append(
            (
                f"crash (kill -9 under load), {what}",
                result.describe(),
                f"{result.acknowledged}/{result.batches} batches acknowledged before the kill, {result.signals:,} signals"
                + result.errors_note()
                + boot_note(stack.boot_races),
                f"{'ok' if result.ok else 'FAILED'} (target 0 lost, exactly once)",
            )
        )
        if not result.ok:
            progress(result.describe())
