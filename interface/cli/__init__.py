"""The ``responses`` command (CONTRACT §9).

One module per group of commands (``serve``; ``project`` and ``sweep``; ``simulate`` and ``send``;
``rebuild`` and ``what-if``), each command a function registered by an ``add_*`` function that
describes every argument and lists the environment variables the command reads
(``responses COMMAND --help``). A new command is a parser and a function, listed in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from application.config import ConfigError, Settings
from interface.cli.common import SERVICE_ENV, Commands, HelpFormatter, configure_logging, environment_help
from interface.cli.keys import add_keys
from interface.cli.project import add_project, add_sweep
from interface.cli.rules import add_rebuild, add_what_if
from interface.cli.serve import add_serve
from interface.cli.traffic import add_send, add_simulate
from interface.runner import DATABASE_ERRORS, database_error_message

COMMANDS: tuple[Callable[[Commands], None], ...] = (
    add_serve,
    add_project,
    add_sweep,
    add_simulate,
    add_send,
    add_rebuild,
    add_what_if,
    add_keys,
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
