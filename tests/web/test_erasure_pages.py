"""The contact page's "Export data" and "Erase" (issue 16): a confirmation naming the consequence, a basis,
CSRF; erased contacts show "Erased on …" in the lists, and /contacts lists them (both stores)."""

from __future__ import annotations

import orjson
from flask.testing import FlaskClient

from application.service import ResponsesApp
from tests.helpers.web import MAILING, post_form, reads_campaign


def some_contact(api: FlaskClient) -> dict[str, str]:
    items = api.get(f"/v1/mailings/{MAILING}/audience", query_string={"limit": 5}).json["items"]
    return next(i for i in items if i["email"])


def test_export_then_erase_from_the_contact_page(
    app: ResponsesApp, api: FlaskClient, browser: FlaskClient, campaign: object
) -> None:
    person = some_contact(api)
    cid, email = person["contact_id"], person["email"]
    page = browser.get(f"/contacts/{cid}").get_data(as_text=True)
    assert "Export data" in page and 'id="erase-form"' in page and "cannot be undone" in page

    exported = browser.get(f"/contacts/{cid}/export")
    assert exported.status_code == 200 and "attachment" in exported.headers["Content-Disposition"]
    assert orjson.loads(exported.data)["email"] == email

    refused = post_form(browser, f"/contacts/{cid}", f"/contacts/{cid}/erase", {"basis": "GDPR art. 17"})  # not confirmed
    assert refused.status_code == 422 and "Confirm that this cannot be undone." in refused.get_data(as_text=True)
    no_csrf = browser.post(f"/contacts/{cid}/erase", data={"basis": "GDPR art. 17", "confirm": "yes"})
    assert no_csrf.status_code in (400, 403)
    assert api.get(f"/v1/contacts/{cid}").json["erased_at"] is None

    done = post_form(browser, f"/contacts/{cid}", f"/contacts/{cid}/erase", {"basis": "GDPR art. 17", "confirm": "yes"})
    assert done.status_code == 302
    record = api.get("/v1/erasures").json["items"][0]
    assert record["contact_id"] == cid and record["by"] and record["by"].startswith("token:")

    after = browser.get(f"/contacts/{cid}").get_data(as_text=True)
    assert "Erased on" in after and email not in after and 'id="erase-form"' not in after
    audience = browser.get(f"/mailings/{MAILING}").get_data(as_text=True)
    assert "Erased on" in audience and email not in audience
    listed = browser.get("/contacts?erased=1").get_data(as_text=True)
    assert f'data-contact="{cid}"' in listed and "GDPR art. 17" in listed


@reads_campaign
def test_the_erase_form_speaks_russian(browser: FlaskClient, api: FlaskClient, campaign: object) -> None:
    person = some_contact(api)
    page = browser.get(f"/contacts/{person['contact_id']}?lang=ru").get_data(as_text=True)
    assert "Выгрузить данные" in page and "Основание" in page and "нельзя отменить" in page
