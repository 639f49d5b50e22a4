"""A mailing's audience as CSV: for the bearer route ``GET /v1/mailings/{id}/audience.csv`` and the page's export.

Streamed a page of the views at a time (never the whole audience in memory). A cell that a
spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return) is defused with a leading apostrophe (OWASP's CSV injection advice).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from flask import Response

from application.queries import MAX_PAGE, Queries

COLUMNS = ("contact_id", "name", "email", "response", "response_name", "reason", "opens", "clicks", "updated_at", "erased_at")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def audience_rows(queries: Queries, mailing_id: str, response: str | None, lang: str) -> Iterator[list[str]]:
    cursor: str | None = None
    while True:
        page = queries.audience(mailing_id, response, MAX_PAGE, cursor, lang)
        for item in page["items"]:
            r = item["response"]
            yield [
                defuse(v)
                for v in (
                    item["contact_id"],
                    item["name"],
                    item["email"],
                    r["code"],
                    r["name"],
                    r["reason"],
                    item["opens"],
                    item["clicks"],
                    item["updated_at"],
                    item["erased_at"],
                )
            ]
        cursor = page["next"]
        if cursor is None:
            return


def audience_csv(queries: Queries, mailing_id: str, response: str | None, lang: str) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for n, row in enumerate(audience_rows(queries, mailing_id, response, lang), start=1):
        writer.writerow(row)
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def audience_csv_response(queries: Queries, mailing_id: str, response: str | None, lang: str) -> Response:
    queries.require_mailing(mailing_id)  # an unknown mailing is a 404 before anything streams
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", mailing_id)[:80] or "mailing"
    suffix = f"-{response}" if response else ""
    disposition = f"attachment; filename=\"{ascii_name}-audience{suffix}.csv\"; filename*=UTF-8''{quote(mailing_id, safe='')}-audience{suffix}.csv"
    return Response(
        audience_csv(queries, mailing_id, response, lang),
        mimetype="text/csv",
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
