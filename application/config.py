"""Configuration from the environment (SPEC §9)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

DEFAULT_DATABASE_URL = "sqlite:///var/responses.db"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_SWEEP_INTERVAL_SECONDS = 300.0
DEFAULT_READY_MAX_LAG_SECONDS = 30.0
DEFAULT_WHAT_IF_WAIT_SECONDS = 1.0  # POST /v1/what-if answers 200 within this, else 202 {"job"}
MAX_WHAT_IF_WAIT_SECONDS = 2.0  # a web worker is never held longer by a what-if (refused at start above it)
DEFAULT_WHAT_IF_MAX_PENDING = 4  # what-if jobs queued or running, across processes; more: 429
DEFAULT_DISPATCH_SECONDS = 15.0  # well inside gunicorn's 30 s worker timeout, with the wait for the views before it


class ConfigError(ValueError):
    pass


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    """A duration from the environment: a finite, non-negative number of seconds."""
    try:
        value = float(env.get(name) or default)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds") from exc
    if not 0 <= value < float("inf"):
        raise ConfigError(f"{name} must be a finite, non-negative number of seconds")
    return value


def _what_if_wait_seconds(env: dict[str, str]) -> float:
    """How long a web worker waits for a what-if's answer: at most ``MAX_WHAT_IF_WAIT_SECONDS`` (refused above)."""
    value = _seconds(env, "WHAT_IF_WAIT_SECONDS", DEFAULT_WHAT_IF_WAIT_SECONDS)
    if value > MAX_WHAT_IF_WAIT_SECONDS:
        raise ConfigError(
            f"WHAT_IF_WAIT_SECONDS is {value:g}: at most {MAX_WHAT_IF_WAIT_SECONDS:g} seconds (a web worker is never "
            "held longer; a longer what-if is answered 202 {\"job\"} and followed at GET /v1/jobs/{id})"
        )
    return value


def _what_if_max_pending(env: dict[str, str]) -> int:
    try:
        value = int(env.get("WHAT_IF_MAX_PENDING") or DEFAULT_WHAT_IF_MAX_PENDING)
    except ValueError as exc:
        raise ConfigError("WHAT_IF_MAX_PENDING must be a whole number of jobs") from exc
    if value < 1:
        raise ConfigError("WHAT_IF_MAX_PENDING must be at least 1")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    api_tokens: tuple[str, ...] = ()
    unione_api_keys: tuple[str, ...] = ()
    elasticemail_webhook_token: str | None = None
    sendgrid_webhook_public_key: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    sweep_interval_seconds: float = DEFAULT_SWEEP_INTERVAL_SECONDS  # 0: no periodic sweep
    # /readyz is 503 once the views are behind and have not moved for longer than this
    ready_max_lag_seconds: float = DEFAULT_READY_MAX_LAG_SECONDS
    # one dispatch call decides recipients for about this long (checked between chunks), then answers
    dispatch_seconds: float = DEFAULT_DISPATCH_SECONDS
    # a what-if the HTTP worker waited this long for is answered 202 {"job"} (the projection process runs it)
    what_if_wait_seconds: float = DEFAULT_WHAT_IF_WAIT_SECONDS
    # processes a replay (what-if) partitions recipients over, by contact: the projection process or the CLI
    replay_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # signs the marketer pages' sessions (RESPONSES_SECRET_KEY); None: a key kept under ./var/ (interface.web.session)
    secret_key: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # what-if jobs queued plus running (in the database, so across processes) before a new one is refused (429)
    what_if_max_pending: int = DEFAULT_WHAT_IF_MAX_PENDING

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if environ is None else environ)
        try:
            max_body = int(env.get("MAX_BODY_BYTES") or DEFAULT_MAX_BODY_BYTES)
        except ValueError as exc:
            raise ConfigError("MAX_BODY_BYTES must be a whole number of bytes") from exc
        try:
            sweep_interval = float(env.get("SWEEP_INTERVAL_SECONDS") or DEFAULT_SWEEP_INTERVAL_SECONDS)
        except ValueError as exc:
            raise ConfigError("SWEEP_INTERVAL_SECONDS must be a number of seconds (0: no periodic sweep)") from exc
        ready_max_lag = _seconds(env, "READY_MAX_LAG_SECONDS", DEFAULT_READY_MAX_LAG_SECONDS)
        try:
            replay_workers = int(env.get("REPLAY_WORKERS") or (os.cpu_count() or 1))
        except ValueError as exc:
            raise ConfigError("REPLAY_WORKERS must be a whole number of processes") from exc
        if replay_workers < 1:
            raise ConfigError("REPLAY_WORKERS must be at least 1")
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            api_tokens=_split(env.get("RESPONSES_API_TOKENS")),
            unione_api_keys=_split(env.get("UNIONE_API_KEYS")),
            elasticemail_webhook_token=env.get("ELASTICEMAIL_WEBHOOK_TOKEN") or None,
            sendgrid_webhook_public_key=env.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or None,
            max_body_bytes=max_body,
            sweep_interval_seconds=max(0.0, sweep_interval),
            ready_max_lag_seconds=ready_max_lag,
            what_if_wait_seconds=_what_if_wait_seconds(env),
            replay_workers=replay_workers,
            secret_key=env.get("RESPONSES_SECRET_KEY") or None,
            what_if_max_pending=_what_if_max_pending(env),
        )

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    def eventsourcing_env(self) -> dict[str, str]:
        """The ``eventsourcing`` library's environment for ``DATABASE_URL``."""
        return eventsourcing_env(self.database_url)

    def redacted_database_url(self) -> str:
        url = urlparse(self.database_url)
        if url.password:
            return self.database_url.replace(f":{url.password}@", ":***@")
        return self.database_url


def eventsourcing_env(database_url: str) -> dict[str, str]:
    url = urlparse(database_url)
    if url.scheme == "sqlite":
        # sqlite:///relative/path.db  or  sqlite:////absolute/path.db
        path = database_url[len("sqlite:///") :]
        if not path:
            raise ConfigError("DATABASE_URL sqlite:/// needs a file path")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    if url.scheme in ("postgresql", "postgres"):
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "application.journal_index:DigestingPostgresRecorder",
            "POSTGRES_DBNAME": (url.path or "/").lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_POOL_SIZE": "5",
            "POSTGRES_MAX_OVERFLOW": "10",
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
        }
    raise ConfigError(f"DATABASE_URL must start with sqlite:/// or postgresql:// (got scheme {url.scheme!r})")
