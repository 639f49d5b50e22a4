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
