"""``responses project`` (the projection follower alone) and ``responses sweep`` (once, now)."""

from __future__ import annotations

import argparse
import json
import logging
import threading

from application.config import Settings
from interface.cli.common import Commands, add_command, caught_up_app, on_stop_signal, open_app
from interface.runner import PeriodicSweep, ProjectorLock, background_follower

log = logging.getLogger("responses.cli")


def add_project(commands: Commands) -> None:
    p = add_command(
        commands,
        "project",
        "the projection follower alone (beside gunicorn workers)",
        "Keeps the views current, runs rule activations (rebuilds) and the sweep every\n"
        "SWEEP_INTERVAL_SECONDS. One process per database follows; a second one stands by and\n"
        "takes over when the first goes away. Stops cleanly on SIGTERM or Ctrl-C.",
        (
            "DATABASE_URL",
            "SWEEP_INTERVAL_SECONDS",
            "REPLAY_WORKERS",
            "DATABASE_POOL_SIZE",
            "RESPONSES_KEK",
            "RESPONSES_ADDRESS_KEY",
        ),
    )
    p.add_argument(
        "--report-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="log the position and lag this often (when they moved)",
    )
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


def add_sweep(commands: Commands) -> None:
    p = add_command(
        commands,
        "sweep",
        "expire planned recipients of expired mailings; record confirmation checks",
        "Once, now; `serve` and `project` already run it every SWEEP_INTERVAL_SECONDS. A recipient\n"
        "sent but unconfirmed gets at most one check an hour; after the confirmation timeout (48 h\n"
        'by default) the check gives it its timeout response. Prints {"expired", "checked"}.',
        ("DATABASE_URL", "RESPONSES_KEK", "RESPONSES_ADDRESS_KEY"),
    )
    p.set_defaults(func=sweep)


def sweep(_args: argparse.Namespace) -> int:
    with caught_up_app(Settings.from_env()) as here:
        result = here.app.sweep()
    print(json.dumps(result))
    return 0
