"""gunicorn settings for production: ``gunicorn -c gunicorn.conf.py 'interface.wsgi:app'``.

Run beside it, once per database: ``responses project`` (views, rule activations, sweep).
Everything here can be set from the environment:

BIND              address:port to listen on (default 0.0.0.0:8000; or HOST and PORT)
WEB_CONCURRENCY   worker processes (gunicorn's own variable; default 2 × cores + 1, at most 8)
GUNICORN_THREADS  request threads of each worker (default 4); DATABASE_POOL_SIZE must be at least this
GUNICORN_TIMEOUT  seconds a request may take before its worker is restarted (default 60)

Workers are gthread: a keep-alive socket that sends nothing waits in the worker's poller (closed after
``keepalive`` seconds), it does not hold a thread. A request whose body arrives slowly still holds its
thread until the body is read: put a buffering proxy (nginx or the like) in front.

PostgreSQL connections, each worker: DATABASE_POOL_SIZE (default 4, no overflow; requests beyond it wait for
one). ``responses project``: its pool, one LISTEN connection for its follower and one for the projector lock.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

bind = os.environ.get("BIND") or f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"

# WEB_CONCURRENCY is read by gunicorn itself as the default of `workers`; set here too so the default is ours.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * multiprocessing.cpu_count() + 1, 8))

# Threads, not one request a process: idle keep-alive sockets are parked in the poller, not pinned to a worker.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)

# Writes wait up to 10 s for the views (then 503), a dispatch call decides for about 15 s and answers:
# the timeout stays well above both, so a slow request is answered, not killed.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 60)
graceful_timeout = 30  # SIGTERM: requests in flight finish
keepalive = 5

# One line a request on stdout: the path without its query string (Elastic Email's token= is there),
# addresses in paths masked; gunicorn's own error lines have secrets hidden too.
logger_class = "interface.access_log.GunicornLogger"
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'

# Behind a reverse proxy on this host only; set FORWARDED_ALLOW_IPS to the proxy's address otherwise.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server: Any) -> None:
    """Refuse to start (one line, exit 1) when a worker's threads could not each hold a PostgreSQL connection."""
    from application.config import ConfigError, Settings, check_pool_covers_threads, database_pool_size

    env = dict(os.environ)
    if not Settings(database_url=env.get("DATABASE_URL") or "").is_postgres:
        return
    try:
        check_pool_covers_threads(
            database_pool_size(env), server.cfg.threads, "each gunicorn worker (GUNICORN_THREADS, --threads)"
        )
    except ConfigError as exc:
        raise RuntimeError(str(exc)) from None  # gunicorn prints "Error: …" and exits 1
