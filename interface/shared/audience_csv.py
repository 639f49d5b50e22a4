"""A mailing's audience as CSV: for the bearer route ``GET /v1/mailings/{id}/audience.csv`` and the page's export.

Streamed a page of the views at a time (never the whole audience in memory). A cell that a
spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return) is defused with a leading apostrophe (OWASP's CSV injection advice).

``excel=True`` writes the form a spreadsheet in a Russian (or any comma-decimal) locale opens
cell by cell: a UTF-8 byte-order mark, ``;`` between cells and headers in the page's language
(CONTRACT §7). Without it the CSV stays as it always was.
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
BOM = "\ufeff"
# The column headers of the spreadsheet form, by language (the plain CSV keeps the codes above).
HEADERS: dict[str, tuple[str, ...]] = {
    "en": ("Contact", "Name", "Email", "Response code", "Response", "Reason", "Opens", "Clicks", "Updated", "Erased"),
    "ru": (
        "Контакт",
        "Имя",
        "Email",
        "Код отклика",
        "Отклик",
        "Причина",
        "Открытия",
        "Переходы",
        "Обновлено",
        "Удалён",
    ),
}


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


def audience_csv(queries: Queries, mailing_id: str, response: str | None, lang: str, excel: bool = False) -> Iterator[str]:
    buffer = io.StringIO()
    if excel:
        buffer.write(BOM)
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        writer.writerow(HEADERS.get(lang, HEADERS["en"]))
    else:
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(COLUMNS)
    for n, row in enumerate(audience_rows(queries, mailing_id, response, lang), start=1):
        writer.writerow(row)
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def audience_csv_response(queries: Queries, mailing_id: str, response: str | None, lang: str, excel: bool = False) -> Response:
    queries.require_mailing(mailing_id)  # an unknown mailing is a 404 before anything streams
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", mailing_id)[:80] or "mailing"
    suffix = (f"-{response}" if response else "") + ("-excel" if excel else "")
    disposition = f"attachment; filename=\"{ascii_name}-audience{suffix}.csv\"; filename*=UTF-8''{quote(mailing_id, safe='')}-audience{suffix}.csv"
    return Response(
        audience_csv(queries, mailing_id, response, lang, excel),
        mimetype="text/csv",
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
