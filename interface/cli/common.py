"""What every ``responses`` command shares: the help's wording and environment, logging, stop signals,
a progress bar, and ``caught_up_app``: open the application, take the follower lock, catch up, close."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

from application.config import DEFAULT_DATABASE_URL, Settings
from application.service import ResponsesApp
from interface.runner import ProjectorLock, on_demand_follower
from interface.shared.token_file import TOKEN_FILE

log = logging.getLogger("responses.cli")

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

DEFAULT_URL = "http://127.0.0.1:8000"

# What each variable means, as the help of every command that reads it says.
ENVIRONMENT: dict[str, str] = {
    "DATABASE_URL": f"sqlite:///path/to/file.db or postgresql://user:pass@host:port/db (default: {DEFAULT_DATABASE_URL})",
    "RESPONSES_API_TOKENS": f"comma-separated bearer tokens for /v1 (unset: serve keeps one in ./{TOKEN_FILE})",
    "UNIONE_API_KEYS": "comma-separated UniOne API keys the webhook's auth is checked against (unset: 401)",
    "ELASTICEMAIL_WEBHOOK_TOKEN": "the token= expected on Elastic Email notifications (unset: 401)",
    "SENDGRID_WEBHOOK_PUBLIC_KEY": "base64 ECDSA public key of SendGrid's signed event webhook (unset: 401)",
    "MAILGUN_WEBHOOK_SIGNING_KEYS": "comma-separated Mailgun HTTP webhook signing keys (unset: 401)",
    "BREVO_WEBHOOK_TOKEN": "the secret Brevo webhook calls carry: ?token=, Basic password or Bearer (unset: 401)",
    "POSTMARK_WEBHOOK_TOKEN": "the secret Postmark webhook calls carry: ?token=, Basic password or Bearer (unset: 401)",
    "SES_SNS_TOPIC_ARNS": "comma-separated SNS topic ARNs whose SES events are taken (unset: 401)",
    "SES_SNS_CERT_DIR": "a folder of SNS signing certificates (PEM), named like SigningCertURL's last segment",
    "SES_SNS_FETCH_CERTS": "1: fetch a certificate not in SES_SNS_CERT_DIR from its SNS host (https, 5 s) (default: 0)",
    "SES_SNS_AUTO_CONFIRM": "1: confirm a verified SNS subscription of an allowed topic (https, 5 s) (default: 0)",
    "MAX_BODY_BYTES": "request body limit, also after gunzip (default: 10485760)",
    "SWEEP_INTERVAL_SECONDS": "seconds between sweeps run by this process, 0 for none (default: 300)",
    "READY_MAX_LAG_SECONDS": "/readyz answers 503 once the views are behind and still for longer (default: 30)",
    "REPLAY_WORKERS": "processes a what-if replay is partitioned over, by contact (default: the CPU count)",
    "WHAT_IF_WAIT_SECONDS": 'POST /v1/what-if answers 200 within this, else 202 {"job"} (default: 1, at most 2)',
    "WHAT_IF_MAX_PENDING": "what-ifs queued or running across every worker; one more answers 429 (default: 4)",
    "HISTORY_FOLDS_MAX": "audit histories folding a whole journal (as_of, other rules) at once; one more answers 429 (default: 2)",
    "SESSION_MAX_HOURS": "a page session ends this many hours after sign-in, however used (default: 12)",
    "FORWARDED_ALLOW_IPS": "proxies whose X-Forwarded-For names the client (default: 127.0.0.1; * any)",
    "AUTH_FAILURES_PER_MINUTE": "failed credentials a client address may present in a minute before 429 (default: 10)",
    "MAX_CLOCK_SKEW_SECONDS": "how far past its receipt a provider's time is believed (default: 600)",
    "RESPONSES_SECRET_KEY": "signs the sessions of the marketer pages (/login); every worker needs the same (default: one kept in ./var/secret-key)",
    "DATABASE_POOL_SIZE": "PostgreSQL connections of the process, no overflow; at least its request threads (default: 4)",
    "RESPONSES_KEK": "base64 key-encryption keys of the contacts' data keys, comma-separated, the first wraps (required with PostgreSQL; SQLite: var/kek)",
    "RESPONSES_ADDRESS_KEY": "base64 key of the addresses' keyed hash, never rotated (required with PostgreSQL; SQLite: var/address-key)",
}
SERVICE_ENV = tuple(ENVIRONMENT)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; an option's default shown after its help (unless it has none)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS) or action.required:
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text


def environment_help(names: Sequence[str], note: str = "") -> str:
    width = max(len(n) for n in names)
    lines = ["environment:"] + [f"  {name:<{width}}  {ENVIRONMENT[name]}" for name in names]
    return "\n".join(lines + ([f"\n{note}"] if note else []))


def add_command(
    commands: Commands,
    name: str,
    summary: str,
    description: str,
    env: Sequence[str],
    note: str = "",
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=summary,
        description=f"{summary[:1].upper()}{summary[1:]}.\n\n{description}".rstrip(),
        epilog=environment_help(env, note),
        formatter_class=HelpFormatter,
    )


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def on_stop_signal(handler: Callable[[], None]) -> None:
    """Call ``handler`` on the first SIGTERM or SIGINT (a second one while stopping is only logged)."""
    stopping = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if stopping.is_set():
            log.info("received %s again: still stopping", name)
            return
        stopping.set()
        log.info("received %s, stopping", name)
        handler()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def open_app(settings: Settings) -> ResponsesApp:
    log.info("database %s", settings.redacted_database_url())
    return ResponsesApp(settings)


@dataclass(frozen=True)
class CaughtUp:
    """The application a command works on; ``projects``: this process holds the follower lock, so its
    views were caught up here (else the process that holds it keeps them)."""

    app: ResponsesApp
    projects: bool


@contextmanager
def caught_up_app(settings: Settings) -> Iterator[CaughtUp]:
    """Open the application, take the follower lock (when no other process projects this database), catch
    the views up with the journal, and close both at the end."""
    app = open_app(settings)
    try:
        with ProjectorLock(settings) as lock:
            projects = on_demand_follower(app, lock)
            if projects:
                app.wait_for_views()
            yield CaughtUp(app, projects)
    finally:
        app.close()


@contextmanager
def progress_bar(description: str, unit: str) -> Iterator[Callable[[float, float], None]]:
    """Progress on stderr: ``update(done, total)`` with absolute numbers. A tqdm bar on a terminal;
    elsewhere (a log file, CI) one line when the work ends."""
    from tqdm import tqdm

    live = sys.stderr.isatty()
    bar: Any = None
    began = time.monotonic()
    last = [0.0, 0.0]

    def update(done: float, total: float) -> None:
        nonlocal bar
        last[:] = [done, total]
        if not live:
            return
        if bar is None:
            bar = tqdm(total=total, desc=description, unit=unit, unit_scale=True, file=sys.stderr, leave=True)
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()
        elif last[1]:
            done, total = int(last[0]), int(last[1])
            meter = tqdm.format_meter(done, total, time.monotonic() - began, prefix=description, unit=unit, ncols=0)
            print(meter, file=sys.stderr, flush=True)
