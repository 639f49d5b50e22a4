"""Rules: ``responses rebuild`` (an activation job, run here or by the process that projects) and
``responses what-if`` (a rule change previewed against all history), with the what-if's text report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from application.config import Settings
from application.errors import NotFound
from application.service import ResponsesApp
from domain.rules import InvalidRuleset
from interface.cli.common import Commands, add_command, caught_up_app, open_app, progress_bar


def add_rebuild(commands: Commands) -> None:
    p = add_command(
        commands,
        "rebuild",
        "fold all history into fresh views (under a ruleset version), then swap them in",
        "Journals an activation job, like POST /v1/rules/{version}/activate. Runs it here when no\n"
        "other process projects this database, else waits for the one that does. The old views\n"
        "serve until the swap; a failed rebuild leaves the old rules active. Prints the job.",
        ("DATABASE_URL", "RESPONSES_KEK", "RESPONSES_ADDRESS_KEY"),
    )
    p.add_argument("--rules", metavar="VERSION", help="ruleset version to adopt (default: the active one)")
    p.set_defaults(func=rebuild)


def rebuild(args: argparse.Namespace) -> int:
    """A rebuild is an activation job: run here when no other process projects, else by the one that does."""
    with caught_up_app(Settings.from_env()) as here:
        app = here.app
        version = args.rules or app.active_version()
        try:
            job = app.request_activation(version)
        except NotFound as exc:
            print(str(exc), file=sys.stderr)
            return 2
        with progress_bar(f"rebuild under rules {version}", "event") as update:
            if here.projects:
                app.jobs.execute(job["id"], version, update, follower=app.follower)
                state = app.job(job["id"])
            else:
                print(f"job {job['id']} queued: the running projection process executes it", file=sys.stderr)
                state = wait_for_job(app, job["id"], update)
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


def add_what_if(commands: Commands) -> None:
    p = add_command(
        commands,
        "what-if",
        "preview a rule change against all history (the live views are untouched)",
        "RULES.json is a ruleset document, a patch over the active rules, e.g.\n"
        '  {"responses": {"soft_bounce": {"final": true}}}\n'
        "or the version of a stored ruleset (GET /v1/rules). The text answer shows only what\n"
        "changes: transitions, per-mailing counters and rates, contacts (un)suppressed, examples.",
        ("DATABASE_URL", "REPLAY_WORKERS", "RESPONSES_KEK", "RESPONSES_ADDRESS_KEY"),
    )
    p.add_argument("rules", metavar="RULES.json", help="a ruleset document file, or a stored ruleset version")
    p.add_argument("--mailing", action="append", metavar="ID", help="only this mailing (repeat for more; default: every mailing)")
    p.add_argument("--sample", type=int, default=20, metavar="N", help="changed recipients to explain step by step")
    p.add_argument("--json", action="store_true", help="the full answer as JSON (as POST /v1/what-if gives it)")
    p.set_defaults(func=what_if)


def looks_like_a_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.lower().endswith((".json", ".txt"))


def what_if(args: argparse.Namespace) -> int:
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
        steps = ", ".join(
            f"{s['maps_to'] or '-'}:{s['effect']}{'(' + s['why'] + ')' if s['why'] else ''}" for s in example["explanation"]
        )
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
