"""``/mailings``, ``/mailings/<id>`` (tabs: audience, results, opens and clicks, links) and a recipient's history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, make_response, request

from application.history_folds import HistoryBusy
from application.queries import RATES, Queries
from application.service import CATEGORIES
from domain.catalogue import CODES, NOT_DELIVERED, NOT_SENT, REASONS
from interface.shared.audience_csv import audience_csv_response
from interface.shared.context import fresh_views, service
from interface.shared.fields import plus_restored
from interface.web import charts
from interface.web.i18n import reason_name, response_name
from interface.web.rendering import PageError, _, num, page, to_local
from interface.web.session import current_lang, current_tz

bp = Blueprint("mailings", __name__)

PAGE = 50
HISTORY_PAGE = 100
LINKS_PAGE = 100  # the links tab: the top links, a page at a time
TABS = ("audience", "results", "engagement", "links")
MAX_HOURS = 24 * 31
HOUR_CHOICES = (24, 48, 72, 168, 336, 720)
DEFAULT_HOURS = 24


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise PageError(400, f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


SORTS = ("date", "audience", *RATES)
MAX_COMPARED = 5


@bp.get("/mailings")
def mailings() -> Any:
    """Newest first a page at a time; sorted by date, audience or a rate, or within a range of start
    dates (in the viewer's zone), a numbered page of the whole table."""
    category = _choice("category", CATEGORIES)
    search = (request.args.get("q") or "").strip()[:200] or None
    sort = _choice("sort", SORTS)
    order = _choice("order", ("asc", "desc")) or "desc"
    since, until = _local_day("from"), _local_day("to")
    values: dict[str, Any] = {
        "category": category,
        "search": search or "",
        "categories": CATEGORIES,
        "sort": sort or "date",
        "order": order,
        "sorts": SORTS,
        "date_from": request.args.get("from") or "",
        "date_to": request.args.get("to") or "",
    }
    if sort is None and since is None and until is None:
        cursor = request.args.get("cursor") or None
        listing = fresh_views().mailing_list(category, search, PAGE, cursor)
        return page("mailings.html", listing=listing, cursor=cursor, numbered=None, **values)
    table = fresh_views().mailing_table(
        category, search, sort or "date", order == "desc", since, until + timedelta(days=1) if until else None
    )
    pages = max(1, -(-len(table) // PAGE))
    try:
        number = min(max(1, int(request.args.get("page") or 1)), pages)
    except ValueError:
        raise PageError(400, "page: a whole number") from None
    listing = {"items": table[(number - 1) * PAGE : number * PAGE], "next": None}
    numbered = {"page": number, "pages": pages, "total": len(table)}
    return page("mailings.html", listing=listing, cursor=None, numbered=numbered, **values)


def _local_day(name: str) -> datetime | None:
    """A ``YYYY-MM-DD`` argument as the start of that day in the viewer's zone."""
    text = (request.args.get(name) or "").strip()
    if not text:
        return None
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise PageError(400, f"{name}: a date as YYYY-MM-DD") from None
    return day.replace(tzinfo=ZoneInfo(current_tz()))


@bp.get("/mailings/compare")
def compare() -> Any:
    """Two to five mailings side by side: each rate, and its difference from the first one chosen."""
    ids = list(dict.fromkeys(i for i in request.args.getlist("ids") if i))
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise PageError(400, _("Choose two to five mailings to compare."))
    items = fresh_views().compare(ids)
    first = items[0]["summary"]["rates"]
    rows = []
    for rate in RATES:
        cells = []
        for item in items:
            value = item["summary"]["rates"][rate]
            base = first[rate]
            diff = None if value is None or base is None or item is items[0] else value - base
            cells.append({"value": value, "diff": diff})
        rows.append({"rate": rate, "cells": cells})
    return page("compare.html", items=items, rows=rows)


@bp.get("/mailings/<mailing_id>")
def mailing(mailing_id: str) -> Any:
    views = fresh_views()
    fields = views.require_mailing(mailing_id)
    summary = views.summary(mailing_id)
    tab = _choice("tab", TABS) or "audience"
    values: dict[str, Any] = {"m": fields, "summary": summary, "tab": tab, "medians": views.recent_medians(mailing_id)}
    if tab == "audience":
        response = _choice("response", CODES)
        cursor = request.args.get("cursor") or None
        values.update(
            audience=views.audience(mailing_id, response, PAGE, cursor, current_lang()),
            response_filter=response,
            cursor=cursor,
            filtered_count=summary["responses"].get(response, 0) if response else summary["audience"],
        )
    elif tab == "results":
        values.update(results_charts(summary))
    elif tab == "engagement":
        values.update(engagement(views, mailing_id))
    else:
        cursor = request.args.get("cursor") or None
        values.update(click_map(views.links(mailing_id, LINKS_PAGE, cursor), views.link_clickers(mailing_id)), cursor=cursor)
    return page(f"mailing_{tab}.html", **values)


@bp.get("/mailings/<mailing_id>/audience.csv")
def mailing_csv(mailing_id: str) -> Response:
    excel = request.args.get("excel") in ("1", "true")
    return audience_csv_response(fresh_views(), mailing_id, _choice("response", CODES), current_lang(), excel)


# ---- results: the delivery-error diagram and the funnel ---------------------------------------------


def results_charts(summary: dict[str, Any]) -> dict[str, Any]:
    lang = current_lang()
    error_rows = []
    seen_reasons: list[str] = []
    for group in (NOT_SENT, NOT_DELIVERED):
        for code, entry in summary["errors"][group].items():
            reasons = dict(entry["reasons"])
            unexplained = entry["count"] - sum(reasons.values())
            segments = [
                (r, reason_name(r, lang), n)
                for r, n in sorted(reasons.items(), key=lambda kv: REASONS.index(kv[0]) if kv[0] in REASONS else 99)
            ]
            if unexplained > 0:
                segments.append(("none", _("no reason given"), unexplained))
            for key, _label, _n in segments:
                if key not in seen_reasons:
                    seen_reasons.append(key)
            error_rows.append(
                {"group": group, "code": code, "name": response_name(code, lang), "count": entry["count"], "segments": segments}
            )
    order = [r for r in REASONS if r in seen_reasons] + (["none"] if "none" in seen_reasons else [])
    legend = [(key, _("no reason given") if key == "none" else reason_name(key, lang)) for key in order]
    error_chart = (
        charts.stacked_hbar_chart(
            "errors-chart",
            _("Delivery errors"),
            _("Responses of the groups not sent and not delivered, each split by reason."),
            [(row["name"], row["segments"]) for row in error_rows],
            legend,
            num,
        )
        if error_rows
        else None
    )
    funnel = [
        ("audience", _("Audience"), summary["audience"]),
        ("sent", _("Sent"), summary["sent"]),
        ("delivered", _("Delivered"), summary["delivered"]),
        ("opened", _("Opened"), summary["unique_opens"]),
        ("clicked", _("Clicked"), summary["unique_clicks"]),
    ]
    funnel_chart = charts.hbar_chart(
        "funnel-chart",
        _("Delivery funnel"),
        _("Audience, sent, delivered, opened (unique), clicked (unique)."),
        [(label, value) for _key, label, value in funnel],
        charts.BLUE,
        num,
    )
    return {"error_rows": error_rows, "error_chart": error_chart, "funnel": funnel, "funnel_chart": funnel_chart}


# ---- opens and clicks per hour -------------------------------------------------------------------------


TICKS_AT_MOST = 12
HOUR_TICK_STEPS = (1, 2, 3, 6, 12, 24)
DAY_TICK_STEPS = (1, 2, 7, 14)


def engagement(views: Queries, mailing_id: str) -> dict[str, Any]:
    """First opens and clicks on the viewer's clock: clock hours (days beyond 72 h) in their time zone."""
    try:
        hours = int(request.args.get("hours") or DEFAULT_HOURS)
    except ValueError:
        raise PageError(400, f"hours: a whole number from 1 to {MAX_HOURS}") from None
    if not 1 <= hours <= MAX_HOURS:
        raise PageError(400, f"hours: a whole number from 1 to {MAX_HOURS}")
    lang = current_lang()
    timeline = views.clock_timeline(mailing_id, hours, ZoneInfo(current_tz()))
    by_day = timeline["unit"] == "day"
    slots = [datetime.fromisoformat(b["at"]) for b in timeline["buckets"]]
    ticks = tick_labels(slots, by_day, lang)
    buckets = [
        {
            **b,
            "n": i,
            "local": local,
            "tick": tick,
            "full": local.strftime("%Y-%m-%d") if by_day else local.strftime("%Y-%m-%d %H:%M"),
        }
        for i, (b, local, tick) in enumerate(zip(timeline["buckets"], slots, ticks, strict=True))
    ]
    chart = None
    if buckets:
        title = _("First opens and first clicks per day") if by_day else _("First opens and first clicks per clock hour")
        chart = charts.hourly_chart(
            "hourly-chart",
            title,
            _(
                "Each recipient counts once, in the hour of their first open or first click (provider time), from the start at %(start)s.",
                start=f"{_local_text(timeline['start'])} ({current_tz()})",
            ),
            [(b["tick"], b["full"], b["first_opens"], b["first_clicks"]) for b in buckets],
            (_("First opens"), _("First clicks")),
            num,
        )
    return {
        "timeline": timeline,
        "buckets": buckets,
        "by_day": by_day,
        "start_text": _local_text(timeline["start"]),
        "hours": hours,
        "hour_choices": sorted(set(HOUR_CHOICES) | {hours}),
        "hourly_chart": chart,
    }


def tick_labels(slots: list[datetime], by_day: bool, lang: str) -> list[str | None]:
    """A label for the slots that get a tick (None for the others): at most ``TICKS_AT_MOST``, evenly
    spaced (hours on multiples of 1, 2, 3, 6, 12 or 24; days every 1, 2, 7 or 14), the first one and
    every midnight dated."""
    steps = DAY_TICK_STEPS if by_day else HOUR_TICK_STEPS
    every = next((n for n in steps if len(slots) / n <= TICKS_AT_MOST), steps[-1])
    labels: list[str | None] = []
    dated = False
    for i, local in enumerate(slots):
        marked = (i % every == 0) if by_day else (local.hour % every == 0)
        labels.append(_tick_label(local, by_day, first=not dated, lang=lang) if marked else None)
        dated = dated or marked
    return labels


def _local_text(at: str | None) -> str:
    local = to_local(at)
    return local.strftime("%Y-%m-%d %H:%M") if local is not None else ""


MONTHS_RU = ("янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя", "дек")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _tick_label(local: datetime, by_day: bool, first: bool, lang: str) -> str:
    """A day's tick is its date; an hour's is its time, with the date at midnight and on the first tick."""
    date = f"{local.day} {(MONTHS_RU if lang == 'ru' else MONTHS_EN)[local.month - 1]}"
    if by_day:
        return date
    return f"{date} {local:%H:%M}" if first or local.hour == 0 else f"{local:%H:%M}"


# ---- links ------------------------------------------------------------------------------------------------


def click_map(links: dict[str, Any], clickers: int) -> dict[str, Any]:
    """A page of the click map; each link's share is of the recipients who clicked any link (all pages)."""
    out = [{**r, "share": (r["unique_clicks"] / clickers) if clickers else None} for r in links["links"]]
    return {"links": out, "link_clickers": clickers, "links_next": links["next"]}


# ---- a recipient's audit history -----------------------------------------------------------------------------


@bp.get("/mailings/<mailing_id>/recipients/<contact_id>")
def recipient(mailing_id: str, contact_id: str) -> Any:
    app = service()
    views = fresh_views()
    fields = views.require_mailing(mailing_id)
    versions = app.rules_versions()
    version = request.args.get("rules") or None
    rules = app.ruleset(version) if version else None  # NotFound: an HTML 404
    as_of_text = (request.args.get("as_of") or "").strip()
    as_of = parse_as_of(as_of_text) if as_of_text else None
    cursor = request.args.get("cursor") or None
    try:
        history = app.history(
            mailing_id, contact_id, as_of=as_of, rules=rules, lang=current_lang(), limit=HISTORY_PAGE, cursor=cursor
        )
    except HistoryBusy as busy:  # as_of or other rules: every whole-journal fold slot of this process is taken
        return busy_page(busy)
    local_as_of = to_local(as_of).strftime("%Y-%m-%dT%H:%M:%S") if as_of else ""
    return page(
        "recipient.html",
        m=fields,
        contact_id=contact_id,
        history=history,
        versions=versions,
        version=version,
        as_of=as_of,
        as_of_value=local_as_of,
        cursor=cursor,
        next_cursor=history.get("next"),
    )


def busy_page(busy: HistoryBusy) -> Response:
    message = _("Too many histories are being folded right now; try again in a few seconds.")
    response = make_response(page("error.html", status=429, message=message, title=message))
    response.headers["Retry-After"] = str(busy.retry_after)
    return response


def parse_as_of(text: str) -> datetime:
    """A picked instant: ISO 8601 with an offset, or a local date and time (a ``datetime-local`` field) in the
    viewer's time zone."""
    try:
        parsed = datetime.fromisoformat(plus_restored(text[:64]))
    except ValueError:
        raise PageError(400, "as_of: a date and time, e.g. 2026-03-14T10:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(current_tz()))
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PageError(400, "as_of: out of range") from None
