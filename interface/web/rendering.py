"""What every page area renders with: ``page``, the ``PageError`` it raises, the words (``_``) and the
formatting of numbers and times the templates see."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import render_template, request
from markupsafe import Markup, escape

from domain.signals import parse_iso
from interface.web import i18n
from interface.web.session import current_lang, current_tz


class PageError(Exception):
    """A page cannot be shown: answered as an HTML page with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _(text: str, **values: object) -> str:
    return i18n.translate(text, current_lang(), **values)


_CODE_SPAN = re.compile(r"`([^`\n]{1,200})`")


def code_spans(text: str) -> Markup:
    """A sentence whose `command` spans show as code, not as raw backticks (the rest escaped)."""
    return Markup(_CODE_SPAN.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text))))


def address_breaks(address: str | None) -> Markup:
    """An address that wraps at its ``@`` (and at dots of the domain), never inside a word where it fits."""
    if not address:
        return Markup("—")
    local, at, domain = str(address).rpartition("@")
    if not at:
        return Markup(escape(address))
    parts = [str(escape(p)) for p in domain.split(".")]
    return Markup(f'<span class="address">{escape(local)}<wbr>@{"<wbr>.".join(parts)}</span>')


def page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    return render_template(template, **values), status


def safe_next(target: str | None) -> str | None:
    """Only a path of this site (never ``//host`` or a scheme): no open redirect after sign-in."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 32 for ch in target)
    ):
        return None
    return target


def url_with(**changes: Any) -> str:
    """The current page's URL with some query arguments changed (None drops one)."""
    args = {k: v for k, v in request.args.items()}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = str(value)
    query = urlencode(args)
    return request.path + (f"?{query}" if query else "")


def to_local(value: Any) -> datetime | None:
    when = value if isinstance(value, datetime) else parse_iso(value) if value else None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(ZoneInfo(current_tz()))


def localtime(value: Any, seconds: bool = True) -> str:
    when = to_local(value)
    if when is None:
        return "—"
    return when.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def pct(rate: float | None) -> str:
    if rate is None:
        return "—"
    text = f"{rate * 100:.1f} %"
    return text.replace(".", ",") if current_lang() == "ru" else text


def pp(difference: float | None) -> str:
    """A difference of two rates in percentage points, signed ("+1.2 pp"; "+1,2 п. п." in Russian)."""
    if difference is None:
        return "—"
    text = f"{difference * 100:+.1f}".replace("-", "−")
    return text.replace(".", ",") + "\u00a0п.\u00a0п." if current_lang() == "ru" else text + "\u00a0pp"


def num(value: Any) -> str:
    if value is None:
        return "—"
    text = f"{int(value):,}"
    return text.replace(",", "\u00a0") if current_lang() == "ru" else text


def pretty(value: Any) -> str:
    """A payload as indented JSON text (plain text: the template escapes it, so markup in it stays text)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        return repr(value)
