"""The ``responses`` command (SPEC §9).

One function per subcommand, each registered by an ``add_*`` function: a new
command is a parser and a function (see the marked place for ``rebuild`` and
``what-if``).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server

from application.config import ConfigError, Settings
from application.service import ResponsesApp
from interface.http import create_app
from interface.http.auth import TOKEN_FILE, read_token_file, settings_with_token
from interface.runner import ProjectorLock, background_follower, on_demand_follower

log = logging.getLogger("responses.cli")

ACCESS_LOG = logging.getLogger("responses.access")
SECRET_PARAM = re.compile(r"((?:token|auth)=)[^&\s'\"]*", re.IGNORECASE)


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def on_stop_signal(handler: Callable[[], None]) -> None:
    """Call ``handler`` (once) on SIGTERM or SIGINT."""

    def handle(signum: int, _frame: Any) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        handler()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def open_app(settings: Settings) -> ResponsesApp:
    log.info("database %s", settings.redacted_database_url())
    return ResponsesApp(settings)


# ---- serve --------------------------------------------------------------------------------------


class RequestLog(WSGIRequestHandler):
    """Access and error lines without secrets: Elastic Email puts its ``token=`` in the query string."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = self.path.split("?", 1)[0]
        ACCESS_LOG.info("%s %s %s %s", self.address_string(), self.command, path, getattr(code, "value", code))

    def log(self, type: str, message: str, *args: Any) -> None:
        text = SECRET_PARAM.sub(r"\1***", message % args if args else message)
        ACCESS_LOG.log(logging.ERROR if type == "error" else logging.INFO, "%s %s", self.address_string(), text)


def add_serve(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("serve", help="HTTP service with its projection follower in-process (the embedded default)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    configured = Settings.from_env()
    settings, new_token = settings_with_token(configured, create=True)
    if new_token:  # shown once, on the terminal only: never logged
        print(f"API token (kept in {TOKEN_FILE}, shown once): {new_token}", flush=True)
    elif not configured.api_tokens:
        print(f"API token: the one kept in {TOKEN_FILE}", flush=True)
    app = open_app(settings)
    # a port in use: werkzeug says so on stderr and exits 1
    server = make_server(args.host, args.port, create_app(app, settings), threaded=True, request_handler=RequestLog)
    with ProjectorLock(settings) as lock:
        follower = background_follower(app, lock)
        on_stop_signal(lambda: threading.Thread(target=server.shutdown, daemon=True).start())
        log.info("serving on http://%s:%d (docs at /docs)", args.host, server.port)
        try:
            server.serve_forever()
        finally:
            server.server_close()
            if follower is not None:
                follower.stop()
            app.close()
            log.info("stopped")
    return 0


# ---- project ------------------------------------------------------------------------------------


def add_project(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("project", help="the projection follower alone (beside gunicorn workers)")
    p.add_argument("--report-every", type=float, default=10.0, metavar="SECONDS", help="progress log interval")
    p.set_defaults(func=project)


def project(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    app = open_app(settings)
    stop = threading.Event()
    on_stop_signal(stop.set)
    with ProjectorLock(settings) as lock:
        while not lock.try_acquire():  # a standby: takes over when the active follower goes away
            log.info("another process follows this journal; standing by")
            if stop.wait(5.0):
                app.close()
                return 0
        follower = background_follower(app, lock)
        assert follower is not None
        log.info("following the journal from position %d (journal at %d)", app.views_position(), app.journal_position())
        last = -1
        while not stop.wait(args.report_every):
            position = app.views_position()
            if position != last:
                log.info("views at %d, lag %d", position, follower.lag())
                last = position
        follower.stop()
    app.close()
    return 0


# ---- sweep --------------------------------------------------------------------------------------


def add_sweep(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("sweep", help="expire planned recipients of expired mailings; record confirmation checks")
    p.set_defaults(func=sweep)


def sweep(_args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    app = open_app(settings)
    with ProjectorLock(settings) as lock:
        on_demand_follower(app, lock)
        result = app.sweep()
    app.close()
    print(json.dumps(result))
    return 0


# ---- simulate -----------------------------------------------------------------------------------


def add_simulate(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("simulate", help="a realistic campaign's signals, for demos and load")
    p.add_argument("--recipients", type=int, required=True, metavar="N")
    p.add_argument("--url", help="a running service (default: this process, on DATABASE_URL)")
    p.add_argument("--mailing", help="mailing id (default: sim-<UTC time>)")
    p.add_argument("--seed", type=int, help="random seed, for a repeatable campaign")
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
        logging.getLogger("responses.webhooks").setLevel(logging.WARNING)  # the progress line says it
        transport = ClientTransport(create_app(app, settings).test_client())
    simulator = Simulator(transport, token, key, progress_printer(), seed=args.seed)
    try:
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


def progress_printer() -> Callable[[int, int, int], None]:
    """Progress on stderr: one line rewritten on a terminal, every tenth otherwise."""
    began = time.monotonic()
    tty = sys.stderr.isatty()

    def show(done: int, total: int, events: int) -> None:
        if not tty and done != total and done % max(1, total // 10):
            return
        sent = min(events, done * 100)
        rate = sent / max(time.monotonic() - began, 1e-6)
        line = f"batches {done}/{total}  events {sent}/{events}  {rate:,.0f} events/s"
        print(f"\r{line}" if tty else line, end="\n" if not tty or done == total else "", file=sys.stderr, flush=True)

    return show


# ---- rebuild ---------------------------------------------------------------------------------------


def add_rebuild(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("rebuild", help="fold all history into fresh views (under a ruleset version), then swap")
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
        with ProjectorLock(settings) as lock:
            if on_demand_follower(app, lock):
                app.follower.execute(job["id"], version, progress=fraction_printer(f"rebuild under rules {version}"))
                state = app.job(job["id"])
            else:
                print(f"job {job['id']} queued: the running projection process executes it", file=sys.stderr)
                state = wait_for_job(app, job["id"])
    finally:
        app.close()
    print(json.dumps(state))
    return 0 if state["status"] == "done" else 1


def wait_for_job(app: ResponsesApp, job: str) -> dict[str, Any]:
    show = fraction_printer("rebuild")
    while True:
        state = app.job(job)
        show(state["progress"], 1.0)
        if state["status"] != "running":
            return state
        time.sleep(0.5)


def fraction_printer(label: str) -> Callable[[float, float], None]:
    """Progress on stderr as a percentage: one line rewritten on a terminal, a line a 10 % step otherwise."""
    tty = sys.stderr.isatty()
    shown = [-1]

    def show(done: float, total: float) -> None:
        percent = int(100 * done / total) if total else 100
        if percent == shown[0] or (not tty and percent // 10 == shown[0] // 10 and percent != 100):
            return
        shown[0] = percent
        print(f"\r{label}: {percent:3d} %" if tty else f"{label}: {percent} %", end="" if tty and percent < 100 else "\n", file=sys.stderr, flush=True)

    return show


# ---- what-if --------------------------------------------------------------------------------------


def add_what_if(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = commands.add_parser("what-if", help="preview a rule change against all history (the views are untouched)")
    p.add_argument("rules", metavar="RULES.json", help="a ruleset document (a patch over the active rules) or a version")
    p.add_argument("--mailing", action="append", metavar="ID", help="only these mailings (repeatable)")
    p.add_argument("--sample", type=int, default=20, help="changed recipients to show with their explanation")
    p.add_argument("--json", action="store_true", help="the full answer as JSON (as POST /v1/what-if gives it)")
    p.set_defaults(func=what_if)


def what_if(args: argparse.Namespace) -> int:
    from pathlib import Path

    from application.errors import NotFound
    from domain.rules import InvalidRuleset

    source = Path(args.rules)
    if source.exists():
        try:
            rules: Any = json.loads(source.read_text())
        except (OSError, ValueError) as exc:
            print(f"{source}: not a JSON ruleset document ({exc})", file=sys.stderr)
            return 2
    else:
        rules = args.rules  # a version
    settings = Settings.from_env()
    app = open_app(settings)
    try:
        result = app.what_if(rules, mailing_ids=args.mailing, sample=args.sample, progress=fraction_printer("replaying the journal"))
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


def what_if_report(result: dict[str, Any]) -> str:
    """The what-if answer as a marketer reads it: transitions, per-mailing before → after, contacts."""
    rules = result["rules"]
    candidate = "the candidate rules" if rules["candidate"] == "what-if" else f"rules {rules['candidate']}"
    lines = [
        f"{candidate} against the active rules {rules['current']}: "
        f"{result['recipients']} recipients, {result['changed']} change response, {result['counters_changed']} change counters",
        "",
    ]
    if result["transitions"]:
        width = max(len(t["from"]) for t in result["transitions"])
        lines.append("transitions")
        lines += [f"  {t['from']:<{width}}  →  {t['to']:<24} {t['count']:>8}" for t in result["transitions"]]
        lines.append("")
    for mailing, pair in result["mailings"].items():
        before, after = pair["before"], pair["after"]
        lines.append(f"mailing {mailing}")
        for key in ("delivered", "unique_opens", "total_opens", "unique_clicks", "total_clicks"):
            if before[key] != after[key]:
                lines.append(f"  {key:<20} {before[key]:>8} → {after[key]}")
        for key, value in after["rates"].items():
            if before["rates"][key] != value:
                lines.append(f"  {key + ' rate':<20} {_percent(before['rates'][key]):>8} → {_percent(value)}")
        if all(before[k] == after[k] for k in ("responses", "unique_opens", "total_opens", "total_clicks")):
            lines.append("  no change")
    contacts = result["contacts"]
    lines += [
        "",
        f"contacts newly suppressed: {contacts['newly_suppressed']['count']} {_sample(contacts['newly_suppressed']['sample'])}",
        f"contacts no longer suppressed: {contacts['no_longer_suppressed']['count']} {_sample(contacts['no_longer_suppressed']['sample'])}",
    ]
    for example in result["examples"][:5]:
        steps = ", ".join(f"{s['maps_to'] or '-'}:{s['effect']}{'(' + s['why'] + ')' if s['why'] else ''}" for s in example["explanation"])
        lines.append(
            f"  e.g. {example['mailing_id']}/{example['contact_id']}: {example['before']['response']['code']} → "
            f"{example['after']['response']['code']}  [{steps}]"
        )
    return "\n".join(lines)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f} %"


def _sample(ids: list[str]) -> str:
    return f"(e.g. {', '.join(ids[:5])})" if ids else ""


COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (  # type: ignore[type-arg]
    add_serve,
    add_project,
    add_sweep,
    add_simulate,
    add_rebuild,
    add_what_if,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="responses", description="Recipient responses for email campaigns")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
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


if __name__ == "__main__":
    sys.exit(main())
