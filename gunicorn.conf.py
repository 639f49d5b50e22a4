"""gunicorn settings for production: ``gunicorn -c gunicorn.conf.py 'interface.wsgi:app'``.

Run beside it, once per database: ``responses project`` (views, rule activations, sweep).
Everything here can be set from the environment:

BIND              address:port to listen on (default 0.0.0.0:8000; or HOST and PORT)
WEB_CONCURRENCY   worker processes (gunicorn's own variable; default 2 × cores + 1, at most 8)
GUNICORN_TIMEOUT  seconds a request may take before its worker is restarted (default 60)
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("BIND") or f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"

# WEB_CONCURRENCY is read by gunicorn itself as the default of `workers`; set here too so the default is ours.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * multiprocessing.cpu_count() + 1, 8))

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
