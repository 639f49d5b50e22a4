"""Access logs that never show a secret or a full email address.

Elastic Email puts its webhook ``token=`` in the query string and ids in paths may be
addresses, so a logged request is its method, its path without the query string
with any address masked (``a***@example.com``), its status, size and duration.
``AccessLog`` wraps the WSGI app for ``responses serve`` (waitress logs no
requests itself); ``GunicornLogger`` does the same for gunicorn
(``logger_class`` in ``gunicorn.conf.py``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import unquote

from domain.signals import mask_email

ACCESS_LOG = logging.getLogger("responses.access")

EMAIL = re.compile(r"[^/@\s?&=]+@[^/@\s?&=]+")
SECRET_PARAM = re.compile(r"((?:token|auth|key|password)=)[^&\s'\"]*", re.IGNORECASE)
# A path may be percent-encoded more than once (%2540 is an encoded %40, an encoded @): it is decoded
# and masked this many times over; what still decodes after that is not shown.
MAX_DECODINGS = 5
ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
UNPRINTABLE = re.compile(r"[\x00-\x20\x7f-\xa0]")  # a line break in a path would forge a log line
HIDDEN = "***"

StartResponse = Callable[..., Any]


def safe_path(path: str) -> str:
    """A request path as it may be logged: no query string, addresses masked however often encoded."""
    return _unprintable_escaped(_decoded_and_masked(path, _path_masked))


def redact(text: str) -> str:
    """Free text (an error line quoting a request): secrets in parameters hidden, addresses masked
    however often the text was percent-encoded."""
    return _decoded_and_masked(text, _text_masked)


def _path_masked(path: str) -> str:
    return _text_masked(path.split("?", 1)[0])


def _text_masked(text: str) -> str:
    return EMAIL.sub(lambda m: mask_email(m.group(0)), SECRET_PARAM.sub(r"\1***", text))


def _decoded_and_masked(text: str, masked: Callable[[str], str]) -> str:
    """``text`` masked, then percent-decoded and masked again, layer after layer until decoding changes
    nothing (at most ``MAX_DECODINGS`` times); any part that would still decode is hidden."""
    text = masked(text)
    for _ in range(MAX_DECODINGS):
        decoded = unquote(text, encoding="latin-1")
        if decoded == text:
            return text
        text = masked(decoded)
    return _still_encoded_hidden(text)


def _still_encoded_hidden(text: str) -> str:
    """Each segment (between ``/`` or spaces) that holds a percent escape yet, as ``***``."""
    return re.sub(r"[^/\s]+", lambda m: HIDDEN if ESCAPE.search(m.group(0)) else m.group(0), text)


def _unprintable_escaped(path: str) -> str:
    return UNPRINTABLE.sub(lambda m: f"%{ord(m.group(0)):02X}", path)


class AccessLog:
    """WSGI middleware: one line per request on ``responses.access``, when the response is done."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]], logger: logging.Logger = ACCESS_LOG):
        self.app = app
        self.logger = logger

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        began = time.monotonic()
        status = ["-"]

        def recording(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = status_line.split(" ", 1)[0]
            return start_response(status_line, headers, exc_info)

        try:
            body = self.app(environ, recording)
        except BaseException:
            self._log(environ, "500", 0, began)
            raise
        return _Logged(body, lambda size: self._log(environ, status[0], size, began))

    def _log(self, environ: dict[str, Any], status: str, size: int, began: float) -> None:
        path = safe_path(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        millis = 1000 * (time.monotonic() - began)
        self.logger.info(
            '%s "%s %s" %s %d %.0fms',
            environ.get("REMOTE_ADDR", "-"),
            environ.get("REQUEST_METHOD", "-"),
            path,
            status,
            size,
            millis,
        )


class _Logged:
    """The response body, counted as it is sent; logged once, when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]):
        self.body = body
        self.done = done
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.size += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done(self.size)


def _gunicorn_logger_base() -> type:
    from gunicorn.glogging import Logger

    return Logger  # type: ignore[no-any-return]


class GunicornLogger(_gunicorn_logger_base()):  # type: ignore[misc]
    """gunicorn's logger with the path masked in every access atom, and secrets hidden in its error lines
    (gunicorn quotes the full URI, query string included, when a request fails outside the app)."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        path = safe_path(environ.get("PATH_INFO", ""))
        safe = {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}
        safe.update(U=path, q="", r=f"{environ.get('REQUEST_METHOD', '-')} {path} {environ.get('SERVER_PROTOCOL', '-')}", f="-")
        safe.update({"{query_string}e": "", "{raw_uri}e": path, "{http_referer}e": "-", "{referer}i": "-"})
        return safe  # any format of atoms shows no query string, secret or full address

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().error(*_redacted(msg, args), **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().exception(*_redacted(msg, args), **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().warning(*_redacted(msg, args), **kwargs)


def _redacted(msg: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    try:
        text = msg % args if args else str(msg)
    except (TypeError, ValueError):
        text = " ".join(str(a) for a in (msg, *args))
    return (redact(text),)  # no args left: logging does not %-format it again
