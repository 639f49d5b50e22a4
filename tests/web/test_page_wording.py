"""Words the pages show as a reader expects them (issue 18's small ones): commands as code on the
sign-in page, not raw backticks; a Russian "not found" that is a Russian sentence. Both stores."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_the_sign_in_page_shows_commands_as_code_not_backticks(anonymous: FlaskClient) -> None:
    for lang in ("en", "ru"):
        html = anonymous.get(f"/login?lang={lang}").get_data(as_text=True)
        assert "<code>responses serve</code>" in html, lang
        assert "`" not in html, f"raw backticks on the {lang} sign-in page"


def test_not_found_is_a_sentence_in_each_language(browser: FlaskClient) -> None:
    en = browser.get("/mailings/nope?lang=en")
    assert en.status_code == 404 and "No mailing “nope”" in en.get_data(as_text=True)
    ru = browser.get("/mailings/nope?lang=ru")
    html = ru.get_data(as_text=True)
    assert ru.status_code == 404 and "Рассылка «nope» не найдена" in html
    assert "— не найдено" not in html and "mailing “" not in html, "no English word in the Russian message"
    assert "Контакт «ghost» не найден" in browser.get("/contacts/ghost?lang=ru").get_data(as_text=True)


def test_an_address_in_the_contact_tile_wraps_at_its_at_sign(api: FlaskClient, browser: FlaskClient) -> None:
    # issue 18: "an address wraps mid-word in the contact tile"; it may now break only before @ and dots
    address = "konstantin.konstantinopolsky-very-long@mail.example.com"
    assert api.post("/v1/mailings", json={"id": "w", "name": "W", "category": "bulk", "provider": "unione"}).status_code == 201
    assert api.post("/v1/mailings/w/audience", json={"recipients": [{"contact_id": "k", "email": address}]}).status_code == 200
    html = browser.get("/contacts/k").get_data(as_text=True)
    assert '<span class="address">konstantin.konstantinopolsky-very-long<wbr>@mail<wbr>.example<wbr>.com</span>' in html
    assert "<script>" not in browser.get("/contacts/k").get_data(as_text=True).split('data-kpi="email"')[1][:300]
