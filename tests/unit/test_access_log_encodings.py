"""An address in a request path is masked in the access log however often the path was percent-encoded
(issue 14: ``%2540`` was logged with the full address), by ``responses serve``'s ``AccessLog`` and by
gunicorn's logger (``GunicornLogger``)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from gunicorn.config import Config
from werkzeug.test import Client

from interface.access_log import AccessLog, GunicornLogger, redact, safe_path

ADDRESS = "alice.smith@example.com"
LOCAL = "alice.smith"


def encoded(text: str, times: int, upper: bool = True) -> str:
    """``text`` with its ``@`` and ``.`` percent-encoded ``times`` times (the ``%`` re-encoded each time)."""
    out = text.replace("@", "%40").replace(".", "%2E" if upper else "%2e")
    for _ in range(times - 1):
        out = out.replace("%", "%25")
    return out


PATHS = [
    f"/v1/contacts/{encoded(ADDRESS, 1)}",
    f"/v1/contacts/{encoded(ADDRESS, 2)}",  # %2540: the case
    f"/v1/contacts/{encoded(ADDRESS, 3)}",  # %252540
    f"/v1/contacts/{encoded(ADDRESS, 4, upper=False)}",
    f"/v1/contacts/{encoded(ADDRESS, 5)}",
    "/v1/contacts/alice.smith%252540example%2A.com",  # mixed: a literal %2A beside a double-encoded @
    "/v1/contacts/alice.smith%2540example.com/history",
    "/v1/mailings/m-1/recipients/ALICE.SMITH%2540EXAMPLE.COM/history",
    "/v1/contacts/alice.smith%25252540example.com",
]


def revealed(line: str) -> str:
    """What a reader of the log could decode from it (by hand, as often as it takes)."""
    for _ in range(20):
        line = unquote(line, encoding="latin-1")
    return line.lower()


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("404 NOT FOUND", [("Content-Type", "text/plain")])
    return [b"no"]


def logged_line(path: str, caplog: pytest.LogCaptureFixture) -> str:
    logger = logging.getLogger("test.access.encodings")
    with caplog.at_level(logging.INFO, logger=logger.name):
        caplog.clear()
        response = Client(AccessLog(app, logger)).get(path)  # the test client decodes the path once, as a server does
        response.close()
    lines = [r.getMessage() for r in caplog.records if r.name == logger.name]
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize("path", PATHS)
def test_the_serve_access_log_masks_an_address_however_often_it_was_encoded(path: str, caplog: pytest.LogCaptureFixture) -> None:
    line = logged_line(path, caplog)
    assert LOCAL not in revealed(line), line
    assert "a***@" in line.lower(), line
    assert " 404 " in line


@pytest.mark.parametrize("path", PATHS)
def test_gunicorns_access_atoms_mask_an_address_however_often_it_was_encoded(path: str) -> None:
    logger = GunicornLogger(Config())
    environ = {
        "PATH_INFO": _decoded_once(path),
        "REQUEST_METHOD": "GET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "QUERY_STRING": "",
        "RAW_URI": path,
        "REMOTE_ADDR": "127.0.0.1",
    }
    atoms = logger.atoms(_Response(), _Request(path), environ, timedelta(milliseconds=3))
    shown = " ".join(str(v) for v in atoms.values())
    assert LOCAL not in revealed(shown), shown


@pytest.mark.parametrize("path", PATHS)
def test_error_lines_quoting_a_raw_uri_mask_the_address(path: str) -> None:
    line = redact(f"Invalid request from ip=1.2.3.4: GET {path}?token=s3cret HTTP/1.1")
    assert LOCAL not in revealed(line) and "s3cret" not in line, line


def test_a_path_encoded_past_the_bound_is_not_shown_in_clear() -> None:
    path = "/v1/contacts/" + encoded(ADDRESS, 12)
    assert LOCAL not in revealed(safe_path(_decoded_once(path)))


def test_a_secret_or_a_line_break_hidden_by_encoding_does_not_reach_the_log() -> None:
    assert "s3cret" not in safe_path("/v1/x%253Ftoken%253Ds3cret")
    shown = safe_path("/v1/x%250Afake 200 line")
    assert "\n" not in shown and "\r" not in shown


def test_an_ordinary_path_is_logged_as_it_is() -> None:
    assert safe_path("/v1/mailings/m-1/summary") == "/v1/mailings/m-1/summary"
    assert safe_path("/v1/mailings/100%/links") == "/v1/mailings/100%/links"


def _decoded_once(path: str) -> str:
    return unquote(path, encoding="latin-1")


class _Response:
    status = "404 NOT FOUND"
    status_code = 404
    headers: list[tuple[str, str]] = []
    sent = 2
    response_length = 2


class _Request:
    def __init__(self, path: str):
        self.uri = path
        self.path = path
        self.query = ""
        self.method = "GET"
        self.version = (1, 1)
        self.headers: list[tuple[str, str]] = []
