"""``responses simulate``: a realistic campaign's signals, for demos and load (CONTRACT §9).

Creates a mailing, its audience and a dispatch through the API, then plays the
provider: UniOne-format batches of 100 events, signed with a configured key,
posted to ``/v1/webhooks/unione`` with the disorder and retries of a real ESP
(events shuffled within a batch, some batches delivered twice). The campaign is
played back as it stands a moment after the dispatch: an event planned for
later carries that moment, and no batch is posted before its times have passed
(a provider's time is never ahead of its receipt). The same code
drives a remote service (``--url``) or this process's own app (Flask's test
client), so the simulated traffic always takes the real HTTP path.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

UNIONE_TIME = "%Y-%m-%d %H:%M:%S"
BATCH_SIZE = 100
AUDIENCE_CHUNK = 1000
RETRY_EVERY = 25  # every 25th batch is delivered twice, as a provider retry would
AUTH_PLACEHOLDER = "AUTH_PLACEHOLDER"
FIRST_NAMES = ("anna", "boris", "vera", "gleb", "dina", "egor", "irina", "oleg", "maria", "pavel", "sofia", "timur")
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
LINKS = ("https://shop.example.com/sale", "https://shop.example.com/new", "https://blog.example.com/spring")
HARD_BOUNCES = (
    "err_user_unknown",
    "err_user_unknown",
    "err_mailbox_full",
    "err_domain_inactive",
    "err_spam_rejected",
    "err_blacklisted",
)


class SimulationError(RuntimeError):
    pass


class Transport(Protocol):
    def __call__(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]: ...


class HttpTransport:
    """Calls a running service over HTTP."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def __call__(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read())
        except urllib.error.URLError as error:
            raise SimulationError(f"cannot reach {self.base_url}: {error.reason}") from None


class ClientTransport:
    """Calls this process's Flask app through its test client (no socket, same HTTP path)."""

    def __init__(self, client: Any):
        self.client = client

    def __call__(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
        response = self.client.open(path, method=method, data=body, headers=headers)
        return response.status_code, response.get_json(silent=True)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def sign_unione(body: bytes, key: str) -> bytes:
    """Sign a body written with ``"auth":"AUTH_PLACEHOLDER"``: MD5 of the body with the key in its place."""
    placeholder = AUTH_PLACEHOLDER.encode()
    digest = hashlib.md5(body.replace(placeholder, key.encode("utf-8"), 1)).hexdigest()
    return body.replace(placeholder, digest.encode("ascii"), 1)


_AUTH_VALUE = re.compile(rb'"auth"\s*:\s*"([^"\\]*)"')


def sign_unione_body(body: bytes, key: str) -> bytes:
    """Sign any UniOne body as UniOne does: its first ``"auth"`` value (a placeholder or an old signature)
    becomes the MD5 hex of the body with the key in that place."""
    match = _AUTH_VALUE.search(body)
    if match is None:
        raise ValueError('no "auth" field to sign: a UniOne body starts {"auth":"…", …}')
    head, tail = body[: match.start(1)], body[match.end(1) :]
    return head + hashlib.md5(head + key.encode("utf-8") + tail).hexdigest().encode("ascii") + tail


def unione_batch(events: list[dict[str, Any]], key: str) -> bytes:
    document = {
        "auth": AUTH_PLACEHOLDER,
        "events_by_user": [
            {
                "user_id": 5960727,
                "project_id": "6862471",
                "project_name": "Simulation",
                "events": [{"event_name": "transactional_email_status", "event_data": e} for e in events],
            }
        ],
    }
    return sign_unione(json.dumps(document, separators=(",", ":")).encode(), key)


# ---- the campaign ----------------------------------------------------------------------------


def audience(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` recipients; a few without an email, with a duplicated one, or an invalid one."""
    people: list[dict[str, Any]] = []
    for i in range(n):
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        email: str | None = f"{first}.{i}@{DOMAINS[i % len(DOMAINS)]}"
        roll = rng.random()
        if roll < 0.005:
            email = None
        elif roll < 0.01 and people and people[-1]["email"]:
            email = people[-1]["email"]
        elif roll < 0.013:
            email = f"{first}.{i}.at.example.com"
        people.append({"contact_id": f"sim-c{i:07d}", "name": f"{first.title()} {i}", "email": email})
    return people


def recipient_events(mailing_id: str, send: dict[str, Any], start: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """The provider's events for one sent message: delivery or bounce, then engagement, at the times they will
    happen over the hours after ``start`` (``played_back`` says them as of a moment)."""
    job = f"sim-{mailing_id}-{send['contact_id']}"
    events: list[dict[str, Any]] = []

    def event(status: str, at: datetime, **extra: Any) -> None:
        events.append(
            {
                "job_id": job,
                "metadata": send["metadata"],
                "email": send["email"],
                "status": status,
                "event_time": at.strftime(UNIONE_TIME),
                **extra,
            }
        )

    at = start + timedelta(seconds=rng.uniform(1, 300))
    roll = rng.random()
    if roll < 0.02:
        event(
            "hard_bounced", at, delivery_info={"delivery_status": rng.choice(HARD_BOUNCES), "destination_response": "550 5.1.1"}
        )
        return events
    if roll < 0.05:
        event(
            "soft_bounced", at, delivery_info={"delivery_status": "err_will_retry", "destination_response": "451 4.7.1 try later"}
        )
        if rng.random() < 0.4:
            return events
        at += timedelta(seconds=rng.uniform(600, 3600))
    event("delivered", at, delivery_info={"delivery_status": "ok_delivered", "destination_response": "250 OK"})
    if rng.random() < 0.3:
        opened = at + timedelta(seconds=rng.expovariate(1 / 7200))
        for k in range(rng.randint(1, 3)):
            event("opened", opened + timedelta(minutes=30 * k), delivery_info={"user_agent": "Mozilla/5.0"})
        if rng.random() < 0.35:
            for k in range(rng.randint(1, 2)):
                event("clicked", opened + timedelta(seconds=rng.uniform(5, 600) + k), url=rng.choice(LINKS))
        if rng.random() < 0.02:
            event("unsubscribed", opened + timedelta(seconds=rng.uniform(60, 900)))
    if rng.random() < 0.002:
        event("spam", at + timedelta(hours=rng.uniform(1, 24)), delivery_info={"delivery_status": "ok_fbl"})
    return events


def played_back(events: list[dict[str, Any]], played_at: datetime) -> list[dict[str, Any]]:
    """A campaign's events (in the order they will happen) as its provider reports them when the campaign is
    played back at ``played_at``, in the same order: a time planned later becomes ``played_at`` (a provider
    never reports the future), and an event that would then repeat another one (the same message, status,
    time, link and details: one event to the service) a second later per repeat, so that repeated opens stay
    repeated opens. The simulator posts a batch only once the latest time in it has passed
    (``Simulator.post_when_due``)."""
    latest = played_at.strftime(UNIONE_TIME)  # fixed width: the text's order is the time's
    played: list[dict[str, Any]] = []
    seen: set[str] = set()
    for event in events:
        event = {**event, "event_time": min(event["event_time"], latest)}
        while (identity := _identity(event)) in seen:
            at = datetime.strptime(event["event_time"], UNIONE_TIME) + timedelta(seconds=1)
            event["event_time"] = at.strftime(UNIONE_TIME)
        seen.add(identity)
        played.append(event)
    return played


def _identity(event: dict[str, Any]) -> str:
    return json.dumps(
        [event["job_id"], event["email"], event["status"], event["event_time"], event.get("url"), event.get("delivery_info")],
        sort_keys=True,
    )


def event_time(event: dict[str, Any]) -> datetime:
    return datetime.strptime(event["event_time"], UNIONE_TIME).replace(tzinfo=UTC)


def next_second(at: datetime) -> datetime:
    """The first whole second after ``at``: what UniOne's times (whole seconds) can say of a moment after it."""
    return at.replace(microsecond=0) + timedelta(seconds=1)


def batches(events: list[dict[str, Any]], rng: random.Random) -> Iterator[list[dict[str, Any]]]:
    """In the order given (the order the events happen), shuffled within each batch (UniOne does not order a batch)."""
    for i in range(0, len(events), BATCH_SIZE):
        batch = events[i : i + BATCH_SIZE]
        rng.shuffle(batch)
        yield batch


@dataclass
class Report:
    mailing_id: str
    recipients: int
    sent: int = 0
    events: int = 0
    batches: int = 0
    retried_batches: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        rate = round(self.events / self.seconds) if self.seconds else None
        return {**self.__dict__, "answers": dict(self.answers), "seconds": round(self.seconds, 2), "events_per_second": rate}


class Simulator:
    def __init__(
        self,
        transport: Transport,
        api_token: str,
        unione_key: str,
        progress: Callable[[int, int, int], None],
        seed: int | None = None,
    ):
        self.transport = transport
        self.api_token = api_token
        self.unione_key = unione_key
        self.progress = progress
        self.rng = random.Random(seed)

    def api(self, method: str, path: str, payload: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.api_token}", "Content-Type": "application/json"}
        body = None if payload is None else json.dumps(payload).encode()
        status, answer = self.transport(method, path, body, headers)
        if status >= 400:
            raise SimulationError(f"{method} {path} answered {status}: {answer}")
        return answer

    def run(self, recipients: int, mailing_id: str | None = None) -> Report:
        mailing_id = mailing_id or datetime.now(UTC).strftime("sim-%Y%m%d-%H%M%S")
        report = Report(mailing_id, recipients)
        began = time.monotonic()
        self.create_mailing(mailing_id)
        people = audience(recipients, self.rng)
        for i in range(0, len(people), AUDIENCE_CHUNK):
            self.api("POST", f"/v1/mailings/{mailing_id}/audience", {"recipients": people[i : i + AUDIENCE_CHUNK]})
        send: list[dict[str, Any]] = []
        for _ in range(10_000):  # dispatch is bounded a call: repeat while it leaves recipients planned
            answer = self.api("POST", f"/v1/mailings/{mailing_id}/dispatch")
            send += answer["send"]
            if not answer.get("remaining"):
                break
        report.sent = len(send)
        # played back at the first whole second after the dispatch: in the timeline's first hour, and (see
        # post_when_due) never ahead of the moment a batch is posted
        start = next_second(datetime.now(UTC))
        planned = sorted(
            (e for s in send for e in recipient_events(mailing_id, s, start, self.rng)), key=lambda e: e["event_time"]
        )
        events = played_back(planned, start)
        report.events = len(events)
        total = -(-len(events) // BATCH_SIZE)
        for n, batch in enumerate(batches(events, self.rng), start=1):
            self.post_when_due(batch)
            self.post_batch(batch, report)
            if n % RETRY_EVERY == 0:
                self.post_batch(batch, report)
                report.retried_batches += 1
            report.batches = n
            self.progress(n, total, report.events)
        self.wait_for_views()
        report.seconds = time.monotonic() - began
        report.summary = self.api("GET", f"/v1/mailings/{mailing_id}/summary")
        return report

    def create_mailing(self, mailing_id: str) -> None:
        """A new mailing: a campaign is simulated once (its recipients would already be sent)."""
        fields = {
            "id": mailing_id,
            "name": f"Simulated campaign {mailing_id}",
            "category": "bulk",
            "email_type": "news",
            "provider": "unione",
            "prevent_duplicates": True,
        }
        headers = {"Authorization": f"Bearer {self.api_token}", "Content-Type": "application/json"}
        status, answer = self.transport("POST", "/v1/mailings", json.dumps(fields).encode(), headers)
        if status in (200, 409):
            raise SimulationError(f"mailing {mailing_id!r} exists already: name another with --mailing")
        if status >= 400:
            raise SimulationError(f"POST /v1/mailings answered {status}: {answer}")

    def post_when_due(self, batch: list[dict[str, Any]]) -> None:
        """Wait until every time in ``batch`` has passed (a second or two at most: see ``played_back``)."""
        due = max(event_time(e) for e in batch)
        while (wait := (due - datetime.now(UTC)).total_seconds()) >= 0:
            time.sleep(wait + 0.001)

    def post_batch(self, batch: list[dict[str, Any]], report: Report) -> None:
        body = unione_batch(batch, self.unione_key)
        status, answer = self.transport("POST", "/v1/webhooks/unione", body, {"Content-Type": "application/json"})
        if status != 200:
            raise SimulationError(f"the UniOne webhook answered {status}: {answer}")
        report.answers.update(answer)

    def wait_for_views(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, ready = self.transport("GET", "/readyz", None, {})
            if status == 200 and ready.get("lag") == 0:
                return
            time.sleep(0.1)
        raise SimulationError("the views did not catch up; is a projection follower running?")
