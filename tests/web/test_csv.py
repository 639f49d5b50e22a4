"""The audience as CSV: the bearer route for scripts and the page's export give the same file; formulas are defused."""

from __future__ import annotations

import csv
import io

from flask.testing import FlaskClient

from interface.shared.audience_csv import COLUMNS
from tests.helpers.http import error_of

HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-3", "@SUM(A1)", "\tTab", "\rCR", "Anna"]


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def make_mailing(api: FlaskClient, recipients: list[dict[str, str]]) -> None:
    assert (
        api.post("/v1/mailings", json={"id": "csv-m", "name": "CSV", "category": "bulk", "provider": "unione"}).status_code == 201
    )
    for i in range(0, len(recipients), 1000):
        assert api.post("/v1/mailings/csv-m/audience", json={"recipients": recipients[i : i + 1000]}).status_code == 200


def test_cells_a_spreadsheet_would_run_are_defused(api: FlaskClient) -> None:
    make_mailing(
        api,
        [
            {"contact_id": f"c-{i}", "name": name, "email": f"{'=' if i == 0 else ''}u{i}@example.com"}
            for i, name in enumerate(HOSTILE)
        ],
    )
    r = api.get("/v1/mailings/csv-m/audience.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv" and r.mimetype_params.get("charset") == "utf-8"
    assert 'attachment; filename="csv-m-audience.csv"' in r.headers["Content-Disposition"]
    text = r.get_data(as_text=True)
    assert (
        text.splitlines()[0]
        == ",".join(COLUMNS)
        == "contact_id,name,email,response,response_name,reason,opens,clicks,updated_at,erased_at"
    )
    got = rows(text)
    assert [g["name"] for g in got] == ["'" + n if n[0] in "=+-@\t\r" else n for n in HOSTILE]
    assert got[0]["email"] == "'=u0@example.com" and got[1]["email"] == "u1@example.com"
    assert {g["response"] for g in got} == {"planned"} and {g["response_name"] for g in got} == {"Planned"}


def test_the_csv_is_the_whole_filtered_audience_in_either_language(api: FlaskClient, browser: FlaskClient) -> None:
    make_mailing(api, [{"contact_id": f"c-{i:05d}", "email": f"u{i}@example.com" if i % 7 else None} for i in range(1203)])
    api.post("/v1/mailings/csv-m/dispatch")
    everyone = rows(api.get("/v1/mailings/csv-m/audience.csv").get_data(as_text=True))
    assert len(everyone) == 1203 and len({r["contact_id"] for r in everyone}) == 1203, "every page of the views, once"
    canceled = rows(api.get("/v1/mailings/csv-m/audience.csv?response=canceled_no_email&lang=ru").get_data(as_text=True))
    assert [r["contact_id"] for r in canceled] == [f"c-{i:05d}" for i in range(0, 1203, 7)]
    assert {r["response_name"] for r in canceled} == {"Не отправлено (email не указан)"}
    page = browser.get("/mailings/csv-m/audience.csv?response=canceled_no_email&lang=ru")
    assert (
        page.status_code == 200
        and page.get_data() == api.get("/v1/mailings/csv-m/audience.csv?response=canceled_no_email&lang=ru").get_data()
    )


def test_the_csv_route_answers_its_errors_in_the_apis_shape(api: FlaskClient, client_raw: FlaskClient) -> None:
    assert error_of(client_raw.get("/v1/mailings/none/audience.csv"))["code"] == "unauthorized"
    assert error_of(client_raw.get("/v1/contacts?email=a@example.com"))["code"] == "unauthorized"
    assert error_of(api.get("/v1/mailings/none/audience.csv"))["code"] == "not_found"
    make_mailing(api, [{"contact_id": "c-1"}])
    r = api.get("/v1/mailings/csv-m/audience.csv?response=nope")
    assert r.status_code == 422 and "response" in error_of(r)["details"]


def test_the_spreadsheet_form_opens_cell_by_cell_in_a_russian_excel(api: FlaskClient, browser: FlaskClient) -> None:
    make_mailing(api, [{"contact_id": "c-1", "name": "Анна; «Ромашка»", "email": "anna@example.com"}, {"contact_id": "c-2"}])
    r = api.get("/v1/mailings/csv-m/audience.csv?excel=1&lang=ru")
    assert r.status_code == 200 and 'filename="csv-m-audience-excel.csv"' in r.headers["Content-Disposition"]
    data = r.get_data()
    assert data.startswith("\ufeff".encode()), "a byte-order mark: Excel reads UTF-8, not the locale's code page"
    text = data.decode("utf-8")[1:]
    assert text.splitlines()[0] == "Контакт;Имя;Email;Код отклика;Отклик;Причина;Открытия;Переходы;Обновлено;Удалён"
    got = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert got[1][:5] == ["c-1", "Анна; «Ромашка»", "anna@example.com", "planned", "В планах"], "a ; inside a cell is quoted"
    assert len(got) == 3 and all(len(row) == 10 for row in got)
    english = api.get("/v1/mailings/csv-m/audience.csv?excel=1").get_data(as_text=True)
    assert english.lstrip("\ufeff").startswith("Contact;Name;Email;Response code;Response;")
    plain = api.get("/v1/mailings/csv-m/audience.csv?lang=ru").get_data()
    assert plain.startswith(b"contact_id,name,"), "without excel=1 the CSV stays as it was"
    page = browser.get("/mailings/csv-m/audience.csv?excel=1&lang=ru")
    assert page.get_data() == data
    audience_page = browser.get("/mailings/csv-m?tab=audience&lang=ru").get_data(as_text=True)
    assert "Выгрузить для Excel" in audience_page and "excel=1" in audience_page
