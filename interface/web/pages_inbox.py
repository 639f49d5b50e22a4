"""``/inbox``: unmatched signals, the quarantine (raw text shown as text) and provider notices, paged."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from interface.shared.context import fresh_views
from interface.web.rendering import PageError, page

bp = Blueprint("inbox", __name__)

PAGE = 50
KINDS = {"unmatched": "unmatched", "quarantine": "quarantine", "notices": "notice"}


@bp.get("/inbox")
def inbox() -> Any:
    tab = request.args.get("tab") or "unmatched"
    if tab not in KINDS:
        raise PageError(400, f"tab: one of {', '.join(KINDS)}")
    cursor = request.args.get("cursor") or None
    listing = fresh_views().side(KINDS[tab], None, PAGE, cursor)
    return page("inbox.html", tab=tab, listing=listing, cursor=cursor)
