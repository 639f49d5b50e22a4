"""Configuration from the environment (CONTRACT §9)."""

from __future__ import annotations

import ipaddress
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

from domain.signals import CLOCK_SKEW

DEFAULT_DATABASE_URL = "sqlite:///var/responses.db"
DEFAULT_SQLITE_FOLDER = Path("var")
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_SWEEP_INTERVAL_SECONDS = 300.0
DEFAULT_READY_MAX_LAG_SECONDS = 30.0
DEFAULT_WHAT_IF_WAIT_SECONDS = 1.0  # POST /v1/what-if answers 200 within this, else 202 {"job"}
MAX_WHAT_IF_WAIT_SECONDS = 2.0  # a web worker is never held longer by a what-if (refused at start above it)
DEFAULT_WHAT_IF_MAX_PENDING = 4  # what-if jobs queued or running, across processes; more: 429
# how far a provider's clock may differ from ours: correlation's allowance, and the latest a provider time is
# trusted after its receipt (a signal's effective time is min(provider time, receipt + this))
DEFAULT_MAX_CLOCK_SKEW_SECONDS = CLOCK_SKEW.total_seconds()
MAX_CLOCK_SKEW_CEILING_SECONDS = 86400.0  # a provider clock a day off is broken, not skewed
DEFAULT_DISPATCH_SECONDS = 15.0  # well inside gunicorn's 30 s worker timeout, with the wait for the views before it
DEFAULT_DATABASE_POOL_SIZE = 4  # PostgreSQL connections a process keeps (no overflow): at least its request threads
DEFAULT_SESSION_MAX_HOURS = 12.0  # a page session ends this long after sign-in, however much it is used
DEFAULT_FORWARDED_ALLOW_IPS = ("127.0.0.1",)  # as gunicorn.conf.py reads FORWARDED_ALLOW_IPS
DEFAULT_AUTH_FAILURES_PER_MINUTE = 10  # failed credentials an address may present in a minute before 429
DEFAULT_HISTORY_FOLDS_MAX = 2  # audit histories folding a whole journal (as_of, other rules) at once, per process


class ConfigError(ValueError):
    pass


# The eventsourcing library reads these from the process environment itself (bare or with the application's
# name in front). With its database functions on, its PostgreSQL recorder inserts through them: no table lock
# (the follower could skip ids) and no dedup digests (provider retries stored twice). Refused, whatever the store.
REFUSED_LIBRARY_SETTINGS = ("POSTGRES_ENABLE_DB_FUNCTIONS", "RESPONSES_POSTGRES_ENABLE_DB_FUNCTIONS")


def refuse_library_settings(env: Mapping[str, str]) -> None:
    """ConfigError naming the first refused library setting present in ``env`` (set to any value)."""
    for name in REFUSED_LIBRARY_SETTINGS:
        if name in env:
            raise ConfigError(
                f"{name} is set: the service does not run with the library's database functions "
                "(they skip the table lock and the dedup digests); unset it"
            )


def refuse_missing_sqlite_folder(database_url: str) -> None:
    if urlparse(database_url).scheme == "sqlite":
        sqlite_path(database_url)


def sqlite_path(database_url: str) -> str:
    """The file of a ``sqlite:///`` URL; ConfigError unless its folder exists (./var/, the default's, aside:
    ``eventsourcing_env`` creates it): a typo in a folder would otherwise serve a new, empty database."""
    path = database_url[len("sqlite:///") :]
    if not path:
        raise ConfigError("DATABASE_URL sqlite:/// needs a file path")
    folder = Path(path).parent
    if path != ":memory:" and folder != DEFAULT_SQLITE_FOLDER and not folder.is_dir():
        raise ConfigError(
            f"DATABASE_URL: the folder {folder} does not exist (create it first: mkdir -p {shlex.quote(str(folder))})"
        )
    return path


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


_ON, _OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _switch(env: dict[str, str], name: str) -> bool:
    """A switch, off by default: 1 (true, yes, on) or 0 (false, no, off, unset)."""
    value = (env.get(name) or "").strip().lower()
    if value not in _ON + _OFF:
        raise ConfigError(f"{name} must be 1 (on) or 0 (off), not {value!r}")
    return value in _ON


def _folder(env: dict[str, str], name: str) -> str | None:
    """An existing folder, or None when unset."""
    value = env.get(name) or None
    if value is not None and not Path(value).is_dir():
        raise ConfigError(f"{name}: {value} is not a folder")
    return value


def _session_max_hours(env: dict[str, str]) -> float:
    try:
        hours = float(env.get("SESSION_MAX_HOURS") or DEFAULT_SESSION_MAX_HOURS)
    except ValueError as exc:
        raise ConfigError("SESSION_MAX_HOURS must be a number of hours") from exc
    if not 0 < hours < float("inf"):
        raise ConfigError("SESSION_MAX_HOURS must be a finite, positive number of hours")
    return hours


def _forwarded_allow_ips(env: dict[str, str]) -> tuple[str, ...]:
    """Addresses or networks (``10.0.0.0/8``) of trusted proxies, or ``*``; gunicorn reads the same variable."""
    value = env.get("FORWARDED_ALLOW_IPS")
    entries = _split(value) if value is not None else DEFAULT_FORWARDED_ALLOW_IPS
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise ConfigError(f"FORWARDED_ALLOW_IPS: {entry!r} is not an address, a network or *") from exc
    return entries


def _count(env: dict[str, str], name: str, default: int) -> int:
    """A whole number of at least 1 from the environment."""
    try:
        value = int(env.get(name) or default)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number") from exc
    if value < 1:
        raise ConfigError(f"{name} must be at least 1")
    return value


def _what_if_wait_seconds(env: dict[str, str]) -> float:
    """How long a web worker waits for a what-if's answer: at most ``MAX_WHAT_IF_WAIT_SECONDS`` (refused above)."""
    value = _seconds(env, "WHAT_IF_WAIT_SECONDS", DEFAULT_WHAT_IF_WAIT_SECONDS)
    if value > MAX_WHAT_IF_WAIT_SECONDS:
        raise ConfigError(
            f"WHAT_IF_WAIT_SECONDS is {value:g}: at most {MAX_WHAT_IF_WAIT_SECONDS:g} seconds (a web worker is never "
            'held longer; a longer what-if is answered 202 {"job"} and followed at GET /v1/jobs/{id})'
        )
    return value


def _seconds_at_most(env: dict[str, str], name: str, default: float, ceiling: float, why: str) -> float:
    """``_seconds``, refused above ``ceiling`` (``why`` says what it would mean)."""
    value = _seconds(env, name, default)
    if value > ceiling:
        raise ConfigError(f"{name} is {value:g}: at most {ceiling:g} seconds ({why})")
    return value


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    api_tokens: tuple[str, ...] = ()
    unione_api_keys: tuple[str, ...] = ()
    elasticemail_webhook_token: str | None = None
    sendgrid_webhook_public_key: str | None = None
    # MAILGUN_WEBHOOK_SIGNING_KEYS: Mailgun's HTTP webhook signing keys (any verifies; several while rotating)
    mailgun_webhook_signing_keys: tuple[str, ...] = ()
    # BREVO_WEBHOOK_TOKEN: the secret Brevo's calls carry (?token=, HTTP Basic password or Bearer)
    brevo_webhook_token: str | None = None
    # POSTMARK_WEBHOOK_TOKEN: the secret Postmark's calls carry, in the same three forms
    postmark_webhook_token: str | None = None
    # SES_SNS_TOPIC_ARNS: the SNS topics whose messages are taken (any other is refused)
    ses_sns_topic_arns: tuple[str, ...] = ()
    # SES_SNS_CERT_DIR: SNS signing certificates (PEM), each named like its SigningCertURL's last path segment
    ses_sns_cert_dir: str | None = None
    # SES_SNS_FETCH_CERTS=1: a certificate not in the folder is fetched (https, SNS hosts only, 5 s) and kept in memory
    ses_sns_fetch_certs: bool = False
    # SES_SNS_AUTO_CONFIRM=1: a verified SubscriptionConfirmation of an allowed topic is confirmed by the service
    ses_sns_auto_confirm: bool = False
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
    # PostgreSQL connections of the process's pool (the event store and the views share it), no overflow
    database_pool_size: int = DEFAULT_DATABASE_POOL_SIZE
    # a page session ends this many hours after its sign-in (SESSION_MAX_HOURS); use does not extend it
    session_max_hours: float = DEFAULT_SESSION_MAX_HOURS
    # proxies whose X-Forwarded-For names the client (FORWARDED_ALLOW_IPS: addresses or networks, "*": any)
    forwarded_allow_ips: tuple[str, ...] = DEFAULT_FORWARDED_ALLOW_IPS
    # failed sign-ins, bearer tokens and webhook credentials an address may present in a minute (AUTH_FAILURES_PER_MINUTE)
    auth_failures_per_minute: int = DEFAULT_AUTH_FAILURES_PER_MINUTE
    # audit histories that fold a recipient's whole journal (as_of, another rules version) at once in a
    # process (HISTORY_FOLDS_MAX); one more is answered 429 with Retry-After
    history_folds_max: int = DEFAULT_HISTORY_FOLDS_MAX
    # what-if jobs queued plus running (in the database, so across processes) before a new one is refused (429)
    what_if_max_pending: int = DEFAULT_WHAT_IF_MAX_PENDING
    # MAX_CLOCK_SKEW_SECONDS: correlation's allowance, and how far past its receipt a provider time is trusted
    max_clock_skew_seconds: float = DEFAULT_MAX_CLOCK_SKEW_SECONDS
    # RESPONSES_KEK: base64 key-encryption keys (the first wraps new data keys, all unwrap); () on SQLite: var/kek
    kek: tuple[str, ...] = ()
    # RESPONSES_ADDRESS_KEY: base64 key of the addresses' keyed hash (never rotated); None on SQLite: var/address-key
    address_key: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        refuse_library_settings(env)
        refuse_missing_sqlite_folder(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
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
        database_url = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        kek, address_key = _split(env.get("RESPONSES_KEK")), env.get("RESPONSES_ADDRESS_KEY") or None
        if database_url.startswith(("postgresql://", "postgres://")) and not (kek and address_key):
            raise ConfigError(
                "RESPONSES_KEK and RESPONSES_ADDRESS_KEY are required with PostgreSQL (base64 of 32 bytes each; every "
                "worker on every host needs the same): `responses keys` prints new ones"
            )
        return cls(
            kek=kek,
            address_key=address_key,
            database_url=database_url,
            api_tokens=_split(env.get("RESPONSES_API_TOKENS")),
            unione_api_keys=_split(env.get("UNIONE_API_KEYS")),
            elasticemail_webhook_token=env.get("ELASTICEMAIL_WEBHOOK_TOKEN") or None,
            sendgrid_webhook_public_key=env.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or None,
            mailgun_webhook_signing_keys=_split(env.get("MAILGUN_WEBHOOK_SIGNING_KEYS")),
            brevo_webhook_token=env.get("BREVO_WEBHOOK_TOKEN") or None,
            postmark_webhook_token=env.get("POSTMARK_WEBHOOK_TOKEN") or None,
            ses_sns_topic_arns=_split(env.get("SES_SNS_TOPIC_ARNS")),
            ses_sns_cert_dir=_folder(env, "SES_SNS_CERT_DIR"),
            ses_sns_fetch_certs=_switch(env, "SES_SNS_FETCH_CERTS"),
            ses_sns_auto_confirm=_switch(env, "SES_SNS_AUTO_CONFIRM"),
            max_body_bytes=max_body,
            sweep_interval_seconds=max(0.0, sweep_interval),
            ready_max_lag_seconds=ready_max_lag,
            what_if_wait_seconds=_what_if_wait_seconds(env),
            replay_workers=replay_workers,
            secret_key=env.get("RESPONSES_SECRET_KEY") or None,
            database_pool_size=database_pool_size(env),
            session_max_hours=_session_max_hours(env),
            forwarded_allow_ips=_forwarded_allow_ips(env),
            auth_failures_per_minute=_count(env, "AUTH_FAILURES_PER_MINUTE", DEFAULT_AUTH_FAILURES_PER_MINUTE),
            history_folds_max=_count(env, "HISTORY_FOLDS_MAX", DEFAULT_HISTORY_FOLDS_MAX),
            what_if_max_pending=_count(env, "WHAT_IF_MAX_PENDING", DEFAULT_WHAT_IF_MAX_PENDING),
            max_clock_skew_seconds=_seconds_at_most(
                env,
                "MAX_CLOCK_SKEW_SECONDS",
                DEFAULT_MAX_CLOCK_SKEW_SECONDS,
                MAX_CLOCK_SKEW_CEILING_SECONDS,
                "a provider clock a day off is broken, not skewed",
            ),
        )

    @property
    def max_clock_skew(self) -> timedelta:
        """``max_clock_skew_seconds`` as the domain takes it."""
        return timedelta(seconds=self.max_clock_skew_seconds)

    def key_file(self, name: str) -> Path | None:
        """Where a key is kept when its setting is empty: beside the SQLite database (./var/ for the default
        one). On PostgreSQL the service refuses to start without the settings (``from_env``); settings made in
        code (tests, the benchmark) keep theirs under ./var/."""
        if self.is_postgres:
            return DEFAULT_SQLITE_FOLDER / name
        path = self.eventsourcing_env()["SQLITE_DBNAME"]
        folder = DEFAULT_SQLITE_FOLDER if path == ":memory:" or "mode=memory" in path else Path(path).parent
        return folder / name

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    def eventsourcing_env(self) -> dict[str, str]:
        """The ``eventsourcing`` library's environment for ``DATABASE_URL`` (ConfigError if the process
        environment holds a setting of the library's that the service refuses)."""
        refuse_library_settings(os.environ)
        return eventsourcing_env(self.database_url, self.database_pool_size)

    def connection_budget(self, followers: int = 0, locks: int = 0) -> int:
        """PostgreSQL connections one process of these settings holds at most: its pool, one LISTEN
        connection a running journal follower and one a projector lock (``responses serve`` and
        ``responses project`` hold the lock; a gunicorn worker neither: its budget is the pool)."""
        return self.database_pool_size + followers + locks

    def redacted_database_url(self) -> str:
        url = urlparse(self.database_url)
        if url.password:
            return self.database_url.replace(f":{url.password}@", ":***@")
        return self.database_url


def database_pool_size(env: dict[str, str]) -> int:
    """``DATABASE_POOL_SIZE``: a whole number of connections, at least 1 (default 4)."""
    text = env.get("DATABASE_POOL_SIZE") or str(DEFAULT_DATABASE_POOL_SIZE)
    try:
        size = int(text)
    except ValueError as exc:
        raise ConfigError(f"DATABASE_POOL_SIZE must be a whole number of connections (got {text!r})") from exc
    if size < 1:
        raise ConfigError(f"DATABASE_POOL_SIZE must be at least 1 (got {size})")
    return size


def check_pool_covers_threads(pool_size: int, threads: int, where: str) -> None:
    """Every request thread of a process must be able to hold a connection at once (the pool has no overflow):
    a ``ConfigError`` naming both numbers and the two ways out when it cannot."""
    if pool_size < threads:
        raise ConfigError(
            f"DATABASE_POOL_SIZE={pool_size} is smaller than the {threads} request threads of {where}: "
            f"each thread needs a PostgreSQL connection of its own; set DATABASE_POOL_SIZE={threads} or use {pool_size} threads"
        )


def eventsourcing_env(database_url: str, pool_size: int = DEFAULT_DATABASE_POOL_SIZE) -> dict[str, str]:
    url = urlparse(database_url)
    if url.scheme == "sqlite":
        # sqlite:///relative/path.db  or  sqlite:////absolute/path.db
        path = sqlite_path(database_url)
        if Path(path).parent == DEFAULT_SQLITE_FOLDER:  # ./var/, the service's own folder, is made when missing
            DEFAULT_SQLITE_FOLDER.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "application.persistence.sqlite_store:Factory",  # the library's, with secure_delete
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
            "POSTGRES_POOL_SIZE": str(pool_size),  # opened at start, never more: the server's budget is countable
            "POSTGRES_MAX_OVERFLOW": "0",
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
        }
    raise ConfigError(f"DATABASE_URL must start with sqlite:/// or postgresql:// (got scheme {url.scheme!r})")
