"""``responses serve``: the HTTP service on waitress, with its projection follower in-process."""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from application.config import Settings, check_pool_covers_threads
from interface.access_log import AccessLog
from interface.app import create_app
from interface.cli.common import SERVICE_ENV, Commands, add_command, on_stop_signal, open_app
from interface.runner import PeriodicSweep, ProjectorLock, background_follower
from interface.shared.token_file import TOKEN_FILE, settings_with_token

log = logging.getLogger("responses.cli")


def add_serve(commands: Commands) -> None:
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
            AccessLog(create_app(app, settings)),
            host=args.host,
            port=args.port,
            threads=args.threads,
            ident="responses",
            connection_limit=connections,
            channel_timeout=CHANNEL_TIMEOUT_SECONDS,
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
        log.info(
            "serving on http://%s:%s (docs at /docs) with %d threads, up to %d connections (idle ones closed after %d s)",
            args.host,
            port,
            args.threads,
            connections,
            CHANNEL_TIMEOUT_SECONDS,
        )
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
