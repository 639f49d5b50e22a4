"""The ``responses`` command (CONTRACT §9).

One function per subcommand, each registered by an ``add_*`` function that
describes every argument and lists the environment variables the command
reads (``responses COMMAND --help``). A new command is a parser and a function.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from application.config import DEFAULT_DATABASE_URL, ConfigError, Settings, check_pool_covers_threads
from application.service import ResponsesApp
from interface.access_log import AccessLog
from interface.http import create_app
from interface.http.auth import TOKEN_FILE, read_token_file, settings_with_token
from interface.runner import DATABASE_ERRORS, PeriodicSweep, ProjectorLock, background_follower, database_error_message, on_demand_follower

log = logging.getLogger("responses.cli")

DEFAULT_URL = "http://127.0.0.1:8000"

# What each variable means, as the help of every command that reads it says.
ENVIRONMENT: dict[str, str] = {
    "DATABASE_URL": f"sqlite:///path/to/file.db or postgresql://user:pass@host:port/db (default: {DEFAULT_DATABASE_URL})",
    "RESPONSES_API_TOKENS": f"comma-separated bearer tokens for /v1 (unset: serve keeps one in ./{TOKEN_FILE})",
    "UNIONE_API_KEYS": "comma-separated UniOne API keys the webhook's auth is checked against (unset: 401)",
    "ELASTICEMAIL_WEBHOOK_TOKEN": "the token= expected on Elastic Email notifications (unset: 401)",
    "SENDGRID_WEBHOOK_PUBLIC_KEY": "base64 ECDSA public key of SendGrid's signed event webhook (unset: 401)",
    "MAX_BODY_BYTES": "request body limit, also after gunzip (default: 10485760)",
    "SWEEP_INTERVAL_SECONDS": "seconds between sweeps run by this process, 0 for none (default: 300)",
    "READY_MAX_LAG_SECONDS": "/readyz answers 503 once the views are behind and still for longer (default: 30)",
    "REPLAY_WORKERS": "processes a what-if replay is partitioned over, by contact (default: the CPU count)",
    "WHAT_IF_WAIT_SECONDS": "POST /v1/what-if answers 200 within this, else 202 {\"job\"} (default: 1, at most 2)",
    "WHAT_IF_MAX_PENDING": "what-ifs queued or running across every worker; one more answers 429 (default: 4)",
    "HISTORY_FOLDS_MAX": "audit histories folding a whole journal (as_of, other rules) at once; one more answers 429 (default: 2)",
    "SESSION_MAX_HOURS": "a page session ends this many hours after sign-in, however used (default: 12)",
    "FORWARDED_ALLOW_IPS": "proxies whose X-Forwarded-For names the client (default: 127.0.0.1; * any)",
    "AUTH_FAILURES_PER_MINUTE": "failed credentials a client address may present in a minute before 429 (default: 10)",
    "MAX_CLOCK_SKEW_SECONDS": "how far past its receipt a provider's time is believed (default: 600)",
    "RESPONSES_SECRET_KEY": "signs the sessions of the marketer pages (/login); every worker needs the same (default: one kept in ./var/secret-key)",
    "DATABASE_POOL_SIZE": "PostgreSQL connections of the process, no overflow; at least its request threads (default: 4)",
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
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
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


# ---- serve --------------------------------------------------------------------------------------


def add_serve(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(
        commands,
        "serve",
        "the HTTP service with its projection follower in-process (the embedded default)",
        "Serves the API, /docs and /openapi.json on waitress, follows the journal in a thread\n"
        "(unless another process of this database already does) and sweeps every\n"
        "SWEEP_INTERVAL_SECONDS. Stops cleanly on SIGTERM or Ctrl-C: requests in flight finish\n"
        "(up to 5 s), the follower stops, the database is closed. One access log line a request:\n"
        "paths without query strings, addresses masked.",
        SERVICE_ENV,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    p.add_argument("--threads", type=int, default=8, metavar="N", help="requests handled at once")
    p.set_defaults(func=serve)


# waitress keeps an idle keep-alive socket (a channel) this long, and holds at most this many channels: the
# rest of the file descriptors stay for the database, logs and the follower (its default, 100 channels kept
# 120 s, let 101 idle sockets take the service off the air)
CHANNEL_TIMEOUT_SECONDS = 30
MAX_CONNECTIONS = 1000
SPARE_FILE_DESCRIPTORS = 100


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files (RLIMIT_NOFILE) to its hard limit; the soft limit now."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft if soft != resource.RLIM_INFINITY else wanted
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError) as exc:  # refused (a container's cap): keep what there is
        log.warning("cannot raise the open files limit from %d to %d: %s", soft, wanted, exc)
        return soft
    return wanted


def connection_limit(open_files: int) -> int:
    """Connections waitress holds at once: min(1000, the open files limit − 100), at least 1."""
    return max(1, min(MAX_CONNECTIONS, open_files - SPARE_FILE_DESCRIPTORS))


def pool_for_threads(settings: Settings, threads: int, environ: Mapping[str, str]) -> Settings:
    """``responses serve`` on PostgreSQL: without ``DATABASE_POOL_SIZE`` the pool grows to its request threads
    (each needs a connection at once); a pool set explicitly is kept, and refused when smaller."""
    if settings.is_postgres and not environ.get("DATABASE_POOL_SIZE"):
        return replace(settings, database_pool_size=max(settings.database_pool_size, threads))
    return settings


class StopServing(SystemExit):
    """Raised in the main thread by SIGTERM/SIGINT: waitress ends its loop on it."""


def serve(args: argparse.Namespace) -> int:
    from waitress import create_server

    configured = Settings.from_env()
    settings, new_token = settings_with_token(configured, create=True)
    if new_token:  # shown once, on the terminal only: never logged
        print(f"API token (kept in {TOKEN_FILE}, shown once): {new_token}", flush=True)
    elif not configured.api_tokens:
        print(f"API token: the one kept in {TOKEN_FILE}", flush=True)
    settings = pool_for_threads(settings, args.threads, os.environ)
    if settings.is_postgres:  # a ConfigError: one line and exit 2 (main)
        check_pool_covers_threads(settings.database_pool_size, args.threads, "responses serve (--threads)")
    connections = connection_limit(raise_open_files_limit())
    app = open_app(settings)
    try:
        server: Any = create_server(
            AccessLog(create_app(app, settings)), host=args.host, port=args.port, threads=args.threads, ident="responses",
            connection_limit=connections, channel_timeout=CHANNEL_TIMEOUT_SECONDS,
        )
    except OSError as exc:
        app.close()
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    with ProjectorLock(settings) as lock:
        follower = background_follower(app, lock)
        sweeper = PeriodicSweep(app, settings.sweep_interval_seconds).start() if follower is not None else None
        on_stop_signal(lambda: _raise_stop())
        port = getattr(server, "effective_port", args.port)
        log.info("serving on http://%s:%s (docs at /docs) with %d threads, up to %d connections (idle ones closed after %d s)",
                 args.host, port, args.threads, connections, CHANNEL_TIMEOUT_SECONDS)
        try:
            server.run()  # returns once a stop signal ended its loop (in-flight requests are finished)
        except StopServing:
            pass
        finally:
            _close_quietly(server)
            if sweeper is not None:
                sweeper.stop()
            if follower is not None:
                follower.stop()
            app.close()
            log.info("stopped")
    return 0


def _raise_stop() -> None:
    raise StopServing(0)


def _close_quietly(server: Any) -> None:
    try:
        server.close()
    except (OSError, AttributeError, KeyError):  # already closed by waitress on its way out
        pass


# ---- project ------------------------------------------------------------------------------------


def add_project(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(
        commands,
        "project",
        "the projection follower alone (beside gunicorn workers)",
        "Keeps the views current, runs rule activations (rebuilds) and the sweep every\n"
        "SWEEP_INTERVAL_SECONDS. One process per database follows; a second one stands by and\n"
        "takes over when the first goes away. Stops cleanly on SIGTERM or Ctrl-C.",
        ("DATABASE_URL", "SWEEP_INTERVAL_SECONDS", "REPLAY_WORKERS", "DATABASE_POOL_SIZE"),
    )
    p.add_argument("--report-every", type=float, default=10.0, metavar="SECONDS", help="log the position and lag this often (when they moved)")
    p.set_defaults(func=project)


def project(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    app = open_app(settings)
    stop = threading.Event()
    on_stop_signal(stop.set)
    with ProjectorLock(settings) as lock:
        if not lock.try_acquire():  # a standby: takes over when the active follower goes away
            log.info("another process follows this journal; standing by to take over")
            while not lock.try_acquire():
                if stop.wait(5.0):
                    app.close()
                    return 0
            log.info("the other follower went away: taking over")
        follower = background_follower(app, lock)
        assert follower is not None
        sweeper = PeriodicSweep(app, settings.sweep_interval_seconds).start()
        log.info("following the journal from position %d (journal at %d)", app.views_position(), app.journal_position())
        last = -1
        while not stop.wait(args.report_every):
            position = app.views_position()
            if position != last:
                log.info("views at %d, lag %d", position, follower.lag())
                last = position
        sweeper.stop()
        follower.stop()
    app.close()
    return 0


# ---- sweep --------------------------------------------------------------------------------------


def add_sweep(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(
        commands,
        "sweep",
        "expire planned recipients of expired mailings; record confirmation checks",
        "Once, now; `serve` and `project` already run it every SWEEP_INTERVAL_SECONDS. A recipient\n"
        "sent but unconfirmed gets at most one check an hour; after the confirmation timeout (48 h\n"
        "by default) the check gives it its timeout response. Prints {\"expired\", \"checked\"}.",
        ("DATABASE_URL",),
    )
    p.set_defaults(func=sweep)


def sweep(_args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    app = open_app(settings)
    try:
        with ProjectorLock(settings) as lock:
            on_demand_follower(app, lock)
            result = app.sweep()
    finally:
        app.close()
    print(json.dumps(result))
    return 0


# ---- simulate -----------------------------------------------------------------------------------


def add_simulate(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(
        commands,
        "simulate",
        "a realistic campaign's signals, for demos and load",
        "Creates a mailing with N recipients, dispatches it, then posts UniOne batches of 100\n"
        "events (shuffled, every 25th batch twice, as a provider retries), signed with the first\n"
        "UNIONE_API_KEYS key, and prints a JSON report with the mailing's summary.",
        ("DATABASE_URL", "RESPONSES_API_TOKENS", "UNIONE_API_KEYS"),
        note="With --url: the service's token (RESPONSES_API_TOKENS, else ./var/api-token) and a UniOne key it\n"
        "accepts are needed. Without: DATABASE_URL is used in this process, with keys of its own if unset.",
    )
    p.add_argument("--recipients", type=int, required=True, metavar="N", help="audience size (at least 1)")
    p.add_argument("--url", metavar="URL", help=f"a running service, e.g. {DEFAULT_URL} (default: this process, on DATABASE_URL)")
    p.add_argument("--mailing", metavar="ID", help="id of the new mailing (default: sim-<UTC time>)")
    p.add_argument("--seed", type=int, metavar="N", help="random seed, for a repeatable campaign (default: a new one each run)")
    p.set_defaults(func=simulate)


def simulate(args: argparse.Namespace) -> int:
    from interface.simulate import ClientTransport, HttpTransport, SimulationError, Simulator

    if args.recipients < 1:
        raise SystemExit("--recipients must be at least 1")
    settings = Settings.from_env()
    app: ResponsesApp | None = None
    lock = ProjectorLock(settings)
    if args.url:
        token = (settings.api_tokens or (read_token_file(),))[0]
        if not token or not settings.unione_api_keys:
            raise SystemExit("--url needs RESPONSES_API_TOKENS (or ./var/api-token) and UNIONE_API_KEYS the service accepts")
        transport: Any = HttpTransport(args.url)
        key = settings.unione_api_keys[0]
    else:  # this process: its own keys unless configured, and a follower unless another process projects
        token = (settings.api_tokens or (secrets.token_urlsafe(16),))[0]
        key = (settings.unione_api_keys or (secrets.token_hex(20),))[0]
        settings = replace(settings, api_tokens=(token,), unione_api_keys=(key,))
        app = open_app(settings)
        background_follower(app, lock)
        logging.getLogger("responses.webhooks").setLevel(logging.WARNING)  # the progress bar says it
        transport = ClientTransport(create_app(app, settings).test_client())
    try:
        with progress_bar("provider batches", "batch") as update:
            simulator = Simulator(transport, token, key, lambda done, total, _events: update(done, total), seed=args.seed)
            report = simulator.run(args.recipients, args.mailing)
    except SimulationError as exc:
        print(f"simulation failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if app is not None and app.follower is not None:
            app.follower.stop()
        lock.release()
        if app is not None:
            app.close()
    print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    return 0


# ---- send ---------------------------------------------------------------------------------------

SEND_ENV = ("UNIONE_API_KEYS", "ELASTICEMAIL_WEBHOOK_TOKEN")


def add_send(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(
        commands,
        "send",
        "post a provider's webhook body from a file to a running service, signed as the provider signs it",
        "unione: FILE is one webhook body (JSON); its \"auth\" value (AUTH_PLACEHOLDER or an old\n"
        "signature) is replaced by the MD5 signature made with the first UNIONE_API_KEYS key.\n"
        "elasticemail: FILE holds notifications, one query string a line (# comments), each sent\n"
        "with ?token=ELASTICEMAIL_WEBHOOK_TOKEN. SendGrid signs with its private key: not here.\n"
        "Prints the service's answer (several lines: their sum).",
        SEND_ENV,
    )
    p.add_argument("provider", choices=("unione", "elasticemail"), help="whose webhook to post to")
    p.add_argument("file", metavar="FILE", help="the body to send (see above)")
    p.add_argument("--url", default=DEFAULT_URL, help="the running service")
    p.set_defaults(func=send)


def send(args: argparse.Namespace) -> int:
    from interface.simulate import sign_unione_body

    source = Path(args.file)
    if not source.is_file():
        print(f"{source}: file does not exist", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    base = args.url.rstrip("/")
    if args.provider == "unione":
        if not settings.unione_api_keys:
            print("UNIONE_API_KEYS is not set: its first key signs the body", file=sys.stderr)
            return 2
        try:
            body = sign_unione_body(source.read_bytes(), settings.unione_api_keys[0])
        except ValueError as exc:
            print(f"{source}: {exc}", file=sys.stderr)
            return 2
        posts = [(f"{base}/v1/webhooks/unione", body, "application/json")]
    else:
        if not settings.elasticemail_webhook_token:
            print("ELASTICEMAIL_WEBHOOK_TOKEN is not set: it goes with every notification", file=sys.stderr)
            return 2
        from urllib.parse import quote

        url = f"{base}/v1/webhooks/elasticemail?token={quote(settings.elasticemail_webhook_token)}"
        lines = [line.strip() for line in source.read_text().splitlines() if line.strip() and not line.startswith("#")]
        posts = [(url, line.encode(), "application/x-www-form-urlencoded") for line in lines]
    total: dict[str, int] = {}
    for url, data, content_type in posts:
        status, answer = _post(url, data, content_type)
        if status != 200 or not isinstance(answer, dict):
            print(f"the service answered {status}: {json.dumps(answer, ensure_ascii=False)}", file=sys.stderr)
            return 1
        for name, value in answer.items():
            total[name] = total.get(name, 0) + int(value)
    print(json.dumps(total, separators=(",", ":")))  # as the service answers it
    return 0


def _post(url: str, data: bytes, content_type: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw or b"null")
        except ValueError:
            return error.code, raw.decode("utf-8", "replace")
    except urllib.error.URLError as error:
        raise SystemExit(f"cannot reach {url.split('?', 1)[0]}: {error.reason}") from None


# ---- rebuild ---------------------------------------------------------------------------------------


def add_rebuild(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(
        commands,
        "rebuild",
        "fold all history into fresh views (under a ruleset version), then swap them in",
        "Journals an activation job, like POST /v1/rules/{version}/activate. Runs it here when no\n"
        "other process projects this database, else waits for the one that does. The old views\n"
        "serve until the swap; a failed rebuild leaves the old rules active. Prints the job.",
        ("DATABASE_URL",),
    )
    p.add_argument("--rules", metavar="VERSION", help="ruleset version to adopt (default: the active one)")
    p.set_defaults(func=rebuild)


def rebuild(args: argparse.Namespace) -> int:
    """A rebuild is an activation job: run here when no other process projects, else by the one that does."""
    from application.errors import NotFound

    settings = Settings.from_env()
    app = open_app(settings)
    try:
        version = args.rules or app.active_version()
        try:
            job = app.request_activation(version)
        except NotFound as exc:
            print(str(exc), file=sys.stderr)
            return 2
        with ProjectorLock(settings) as lock, progress_bar(f"rebuild under rules {version}", "event") as update:
            if on_demand_follower(app, lock):
                app.follower.execute(job["id"], version, progress=update)
                state = app.job(job["id"])
            else:
                print(f"job {job['id']} queued: the running projection process executes it", file=sys.stderr)
                state = wait_for_job(app, job["id"], update)
    finally:
        app.close()
    print(json.dumps(state))
    return 0 if state["status"] == "done" else 1


def wait_for_job(app: ResponsesApp, job: str, update: Callable[[float, float], None]) -> dict[str, Any]:
    while True:
        state = app.job(job)
        update(round(100 * state["progress"]), 100)
        if state["status"] != "running":
            return state
        time.sleep(0.5)


# ---- what-if --------------------------------------------------------------------------------------


def add_what_if(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(
        commands,
        "what-if",
        "preview a rule change against all history (the live views are untouched)",
        "RULES.json is a ruleset document, a patch over the active rules, e.g.\n"
        '  {"responses": {"soft_bounce": {"final": true}}}\n'
        "or the version of a stored ruleset (GET /v1/rules). The text answer shows only what\n"
        "changes: transitions, per-mailing counters and rates, contacts (un)suppressed, examples.",
        ("DATABASE_URL", "REPLAY_WORKERS"),
    )
    p.add_argument("rules", metavar="RULES.json", help="a ruleset document file, or a stored ruleset version")
    p.add_argument("--mailing", action="append", metavar="ID", help="only this mailing (repeat for more; default: every mailing)")
    p.add_argument("--sample", type=int, default=20, metavar="N", help="changed recipients to explain step by step")
    p.add_argument("--json", action="store_true", help="the full answer as JSON (as POST /v1/what-if gives it)")
    p.set_defaults(func=what_if)


def looks_like_a_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.lower().endswith((".json", ".txt"))


def what_if(args: argparse.Namespace) -> int:
    from application.errors import NotFound
    from domain.rules import InvalidRuleset

    source = Path(args.rules)
    if source.is_file():
        try:
            rules: Any = json.loads(source.read_text())
        except (OSError, ValueError) as exc:
            print(f"{source}: not a JSON ruleset document ({exc})", file=sys.stderr)
            return 2
    elif looks_like_a_path(args.rules):
        print(f"{source}: file does not exist (give a ruleset document file or a stored ruleset version)", file=sys.stderr)
        return 2
    else:
        rules = args.rules  # a version
    settings = Settings.from_env()
    app = open_app(settings)
    try:
        with progress_bar("replaying the journal", "event") as update:
            result = app.what_if(rules, mailing_ids=args.mailing, sample=args.sample, progress=update)
    except InvalidRuleset as exc:
        for field, message in exc.errors.items():
            print(f"{field}: {message}", file=sys.stderr)
        return 2
    except NotFound as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        app.close()
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else what_if_report(result))
    return 0


COUNTERS = ("delivered", "unique_opens", "total_opens", "unique_clicks", "total_clicks")
LABEL = 26  # "response sent_to_provider" fits


def what_if_report(result: dict[str, Any]) -> str:
    """The what-if answer as a marketer reads it: only what changes (transitions, per-mailing before → after, contacts)."""
    rules = result["rules"]
    candidate = "the candidate rules" if rules["candidate"] == "what-if" else f"rules {rules['candidate']}"
    lines = [
        f"{candidate} against the active rules {rules['current']}: "
        f"{result['recipients']} recipients, {result['changed']} change response, {result['counters_changed']} change counters",
    ]
    if result["transitions"]:
        width = max(len(t["from"]) for t in result["transitions"])
        lines += ["", "transitions"]
        lines += [f"  {t['from']:<{width}}  →  {t['to']:<24} {t['count']:>8}" for t in result["transitions"]]
    for mailing, pair in result["mailings"].items():
        changes = mailing_changes(pair["before"], pair["after"])
        if changes:
            lines += ["", f"mailing {mailing}", *changes]
    contacts = result["contacts"]
    for label, key in (("newly suppressed", "newly_suppressed"), ("no longer suppressed", "no_longer_suppressed")):
        if contacts[key]["count"]:
            lines += ["", f"contacts {label}: {contacts[key]['count']} {_sample(contacts[key]['sample'])}".rstrip()]
    if result["examples"]:
        lines += ["", "examples"]
    for example in result["examples"][:5]:
        steps = ", ".join(f"{s['maps_to'] or '-'}:{s['effect']}{'(' + s['why'] + ')' if s['why'] else ''}" for s in example["explanation"])
        lines.append(
            f"  {example['mailing_id']}/{example['contact_id']}: {example['before']['response']['code']} → "
            f"{example['after']['response']['code']}  [{steps}]"
        )
    if not result["changed"] and not result["counters_changed"]:
        lines += ["", "nothing changes"]
    return "\n".join(lines)


def mailing_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The lines of one mailing's summary that differ as printed (a rate equal to 0.1 % is no change)."""
    lines = []
    for key in COUNTERS:
        if before[key] != after[key]:
            lines.append(f"  {key:<{LABEL}} {before[key]:>8} → {after[key]}")
    for key, value in after["rates"].items():
        was, now = _percent(before["rates"].get(key)), _percent(value)
        if was != now:
            lines.append(f"  {key + ' rate':<{LABEL}} {was:>8} → {now}")
    for code in sorted(set(before["responses"]) | set(after["responses"])):
        was, now = before["responses"].get(code, 0), after["responses"].get(code, 0)
        if was != now:
            lines.append(f"  {'response ' + code:<{LABEL}} {was:>8} → {now}")
    return lines


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f} %"


def _sample(ids: list[str]) -> str:
    return f"(e.g. {', '.join(ids[:5])})" if ids else ""


COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (  # type: ignore[type-arg]
    add_serve,
    add_project,
    add_sweep,
    add_simulate,
    add_send,
    add_rebuild,
    add_what_if,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="responses",
        description="Recipient responses for email campaigns. `responses COMMAND --help` describes a command and the\n"
        "environment variables it reads.",
        formatter_class=HelpFormatter,
        epilog=environment_help(SERVICE_ENV),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (retries, contention)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except DATABASE_ERRORS as exc:  # one line, not a driver's traceback
        try:
            settings = Settings.from_env()
        except ConfigError:
            settings = Settings()
        print(database_error_message(settings, exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
