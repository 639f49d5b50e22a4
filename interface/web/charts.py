"""Charts drawn on the server as SVG: a title and a description each, colours told apart by colour-blind
readers (Okabe and Ito's palette), every number also in a table the template puts beside the chart.

Each bar is a ``rect`` with ``class="bar"``, ``data-label`` and ``data-value``, so a test (or a
screen reader's user, through its ``<title>``) can read the chart as a table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from domain.catalogue import GROUPS, RESPONSES
from domain.rules import Ruleset
from interface.web.i18n import group_name, response_name, translate

# Okabe–Ito: distinguishable with the common colour-vision deficiencies
BLUE, ORANGE, GREEN, SKY, VERMILLION, PURPLE, YELLOW, GREY = (
    "#0072B2", "#E69F00", "#009E73", "#56B4E9", "#D55E00", "#CC79A7", "#F0E442", "#6E6E6E",
)
SERIES = (BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION, YELLOW, GREY)
GROUP_COLOURS = {"preparing": SKY, "delivered": GREEN, "not_delivered": ORANGE, "not_sent": PURPLE}
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'


def _e(text: object) -> str:
    return str(escape(str(text)))


def _svg(chart_id: str, width: int, height: int, title: str, desc: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{_e(chart_id)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="{_e(chart_id)}-title {_e(chart_id)}-desc" {FONT} font-size="12">'
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title><desc id="{_e(chart_id)}-desc">{_e(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _truncate(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def nice_max(value: float, ticks: int = 4) -> int:
    """A round axis maximum at or above ``value`` whose ``ticks`` steps are whole round numbers (1, 2, 5 × 10^n)."""
    if value <= 0:
        return ticks
    raw = value / ticks
    power = 10 ** max(0, math.floor(math.log10(raw))) if raw >= 1 else 1
    for step in (1, 2, 5, 10):
        if raw <= step * power:
            return int(step * power * ticks)
    return int(10 * power * ticks)


def hbar_chart(chart_id: str, title: str, desc: str, rows: Sequence[tuple[str, int]], colour: str = BLUE) -> Markup:
    """Horizontal bars, one a row: the delivery funnel."""
    label_w, bar_w, row_h, top = 170, 380, 30, 10
    width, height = label_w + bar_w + 90, top + row_h * max(1, len(rows)) + 10
    top_value = max([v for _, v in rows] + [1])
    body = []
    for i, (label, value) in enumerate(rows):
        y = top + i * row_h
        w = 0 if value <= 0 else max(2, round(bar_w * value / top_value))
        body.append(f'<text x="{label_w - 8}" y="{y + 19}" text-anchor="end">{_e(_truncate(label, 26))}</text>')
        body.append(
            f'<rect class="bar" data-label="{_e(label)}" data-value="{value}" x="{label_w}" y="{y + 5}" width="{w}" height="{row_h - 10}" '
            f'fill="{colour}"><title>{_e(label)}: {value}</title></rect>'
        )
        body.append(f'<text x="{label_w + w + 6}" y="{y + 19}">{value}</text>')
    return _svg(chart_id, width, height, title, desc, body)


def stacked_hbar_chart(
    chart_id: str, title: str, desc: str, rows: Sequence[tuple[str, Sequence[tuple[str, str, int]]]], legend: Sequence[tuple[str, str]]
) -> Markup:
    """Horizontal bars split into segments: the delivery-error diagram (a response a row, its reasons as segments).

    ``rows``: (label, [(segment key, segment label, value)]); ``legend``: (segment key, label), in colour order."""
    colours = {key: SERIES[i % len(SERIES)] for i, (key, _) in enumerate(legend)}
    label_w, bar_w, row_h, top = 250, 330, 30, 10
    legend_h = 22 * math.ceil(len(legend) / 3) if legend else 0
    width = label_w + bar_w + 80
    height = top + row_h * max(1, len(rows)) + 14 + legend_h
    top_value = max([sum(v for _, _, v in segs) for _, segs in rows] + [1])
    body = []
    for i, (label, segments) in enumerate(rows):
        y = top + i * row_h
        x = float(label_w)
        total = sum(v for _, _, v in segments)
        body.append(f'<text x="{label_w - 8}" y="{y + 19}" text-anchor="end">{_e(_truncate(label, 38))}</text>')
        for key, seg_label, value in segments:
            w = bar_w * value / top_value
            body.append(
                f'<rect class="bar" data-label="{_e(label)}" data-segment="{_e(key)}" data-value="{value}" x="{x:.1f}" y="{y + 5}" '
                f'width="{max(w, 1.5):.1f}" height="{row_h - 10}" fill="{colours.get(key, GREY)}" stroke="#fff" stroke-width="1">'
                f"<title>{_e(label)} — {_e(seg_label)}: {value}</title></rect>"
            )
            x += w
        body.append(f'<text x="{x + 6:.1f}" y="{y + 19}">{total}</text>')
    ly = top + row_h * max(1, len(rows)) + 10
    for i, (key, label) in enumerate(legend):
        lx, row = 10 + (i % 3) * 215, ly + (i // 3) * 22
        body.append(f'<rect x="{lx}" y="{row}" width="14" height="14" fill="{colours[key]}"/>')
        body.append(f'<text x="{lx + 20}" y="{row + 12}">{_e(_truncate(label, 30))}</text>')
    return _svg(chart_id, width, height, title, desc, body)


def hourly_chart(
    chart_id: str, title: str, desc: str, buckets: Sequence[tuple[str, str, int, int]], labels: tuple[str, str]
) -> Markup:
    """Grouped vertical bars per hour: first opens (blue) and first clicks (orange).

    ``buckets``: (tick label, full label, first opens, first clicks); ``labels``: the two series' names."""
    left, right, top, bottom = 48, 12, 28, 46
    hours = max(1, len(buckets))
    plot_w = 960 if hours <= 240 else 1200
    plot_h = 220
    width, height = left + plot_w + right, top + plot_h + bottom
    slot = plot_w / hours
    bar = max(1.0, slot * 0.4)
    top_value = nice_max(max([max(o, c) for _, _, o, c in buckets] + [1]))
    body = []
    for k in range(5):  # grid and y axis
        value = top_value * k / 4
        y = top + plot_h - plot_h * k / 4
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{int(value)}</text>')
    every = max(1, math.ceil(hours / 12))
    for h, (tick, full, opens, clicks) in enumerate(buckets):
        x = left + h * slot
        for series, value, colour, dx in (("opens", opens, BLUE, slot * 0.1), ("clicks", clicks, ORANGE, slot * 0.1 + bar)):
            bh = plot_h * value / top_value
            body.append(
                f'<rect class="bar {series}" data-hour="{h}" data-value="{value}" x="{x + dx:.1f}" y="{top + plot_h - bh:.1f}" '
                f'width="{bar:.1f}" height="{bh:.1f}" fill="{colour}"><title>{_e(full)}: {value} {_e(labels[0] if series == "opens" else labels[1])}</title></rect>'
            )
        if h % every == 0:
            body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 5}" stroke="#333"/>')
            body.append(f'<text x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{_e(tick)}</text>')
    body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#333"/>')
    for i, (name, colour) in enumerate(((labels[0], BLUE), (labels[1], ORANGE))):
        body.append(f'<rect x="{left + i * 170}" y="6" width="14" height="14" fill="{colour}"/>')
        body.append(f'<text x="{left + i * 170 + 20}" y="18">{_e(name)}</text>')
    return _svg(chart_id, width, height, title, desc, body)


# ---- the state diagram of a ruleset (the seed's Fig. 2, drawn from the rules) -------------------------


HALO = 'paint-order="stroke" stroke="#fff" stroke-width="4" stroke-linejoin="round"'


def _box(x: float, y: float, w: float, h: float, code: str, lines: Sequence[str], group: str, final: bool) -> str:
    fill = GROUP_COLOURS.get(group, GREY)
    parts = [f'<g class="state{" final" if final else ""}" data-code="{_e(code)}" data-group="{_e(group)}">']
    parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" fill-opacity="0.25" stroke="{fill}" stroke-width="2"/>')
    if final:  # finals: a double border
        parts.append(f'<rect x="{x + 3}" y="{y + 3}" width="{w - 6}" height="{h - 6}" rx="4" fill="none" stroke="#222" stroke-width="1"/>')
    for i, line in enumerate(lines):
        style = (' font-weight="600"' + (' font-size="11"' if final else "")) if i == 0 else ' font-size="10.5" fill="#444"'
        parts.append(f'<text x="{x + w / 2}" y="{y + 16 + i * 13}" text-anchor="middle"{style}>{_e(line)}</text>')
    parts.append(f"<title>{_e(lines[0])} ({_e(code)})</title></g>")
    return "".join(parts)


def state_diagram(rules: Ruleset, lang: str, chart_id: str = "state-diagram") -> Markup:
    """Non-finals in priority order down the left (each replaced by the next higher one), finals grouped on
    the right with a double border; the confirmation timeout drawn as a dashed edge."""
    non_finals = sorted(
        (code for code, rule in rules.responses.items() if not rule.final), key=lambda c: (rules.responses[c].priority or 0, c)
    )
    finals_by_group = {g: [c for c, rule in rules.responses.items() if rule.final and RESPONSES[c].group == g] for g in GROUPS}
    left_w, right_w, box_h, gap = 190, 262, 34, 16
    left_x, top = 20, 50
    right_x = left_x + left_w + 200
    col_w = right_w + 12
    body = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker>'
        f'<marker id="arrow-timeout" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{VERMILLION}"/></marker></defs>',
        f'<text x="{left_x}" y="24" font-weight="600">{_e(translate("Non-final responses by priority: a higher one replaces a lower one. Finals end the change.", lang))}</text>',
    ]
    positions: dict[str, tuple[float, float, float]] = {}
    for i, code in enumerate(non_finals):
        y = top + i * (box_h + gap)
        positions[code] = (left_x, y, left_w)
        priority = rules.responses[code].priority
        body.append(_box(left_x, y, left_w, box_h, code, [response_name(code, lang), f"{translate('Priority', lang)} {priority}"], RESPONSES[code].group, False))
        if i:
            body.append(
                f'<line x1="{left_x + left_w / 2}" y1="{y - gap + 1}" x2="{left_x + left_w / 2}" y2="{y - 1}" stroke="#333" '
                'stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
    chain_bottom = top + max(1, len(non_finals)) * (box_h + gap) - gap
    body.append(
        f'<text x="{left_x + left_w / 2}" y="{chain_bottom + 18}" font-size="11" fill="#333" text-anchor="middle">↓ '
        f'{_e(translate("replaced by a higher priority", lang))}</text>'
    )
    y = top - 14
    for group, codes in finals_by_group.items():
        if not codes:
            continue
        body.append(f'<text x="{right_x}" y="{y + 10}" font-weight="600">{_e(group_name(group, lang))} · {_e(translate("Final", lang))}</text>')
        y += 18
        for i, code in enumerate(codes):
            col, row = i % 2, i // 2
            bx, by = right_x + col * col_w, y + row * (box_h + 8)
            positions[code] = (bx, by, right_w)
            body.append(_box(bx, by, right_w, box_h, code, [_truncate(response_name(code, lang), 40), code], group, True))
        y += math.ceil(len(codes) / 2) * (box_h + 8) + 12
    finals_bottom = y
    # one broad arrow: any final replaces a non-final
    mid = top + (min(chain_bottom, finals_bottom) - top) * 0.55
    x1, x2 = left_x + left_w + 10, right_x - 10
    body.append(f'<line x1="{x1}" y1="{mid}" x2="{x2}" y2="{mid}" stroke="#333" stroke-width="3" marker-end="url(#arrow)"/>')
    body.append(
        f'<text x="{(x1 + x2) / 2}" y="{mid + 18}" font-size="11" fill="#333" text-anchor="middle" {HALO}>'
        f'{_e(translate("any final replaces a non-final", lang))}</text>'
    )
    timeout_to = rules.confirmation_timeout_response
    if "sent_to_provider" in positions and timeout_to in positions:
        sx, sy, sw = positions["sent_to_provider"]
        tx, ty, _tw = positions[timeout_to]
        a1, b1 = sx + sw, sy + box_h / 2
        a2, b2 = tx, ty + box_h / 2
        body.append(
            f'<path class="timeout" d="M{a1},{b1} C{a1 + 90},{b1} {a2 - 90},{b2} {a2 - 2},{b2}" fill="none" stroke="{VERMILLION}" '
            'stroke-width="1.5" stroke-dasharray="5 4" marker-end="url(#arrow-timeout)"/>'
        )
        hours = f"{rules.confirmation_timeout_hours:g}"
        body.append(
            f'<text x="{a1 + 8}" y="{b1 - 8}" font-size="11" fill="{VERMILLION}" {HALO}>'
            f'{_e(translate("after %(hours)s h without confirmation", lang, hours=hours))}</text>'
        )
    height = int(max(chain_bottom + 30, finals_bottom) + 10)
    width = right_x + 2 * col_w + 10
    title = translate("State diagram of rules version %(version)s", lang, version=rules.version)
    desc = "; ".join(
        [" → ".join(f"{response_name(c, lang)} ({rules.responses[c].priority})" for c in non_finals)]
        + [f"{group_name(g, lang)}: " + ", ".join(response_name(c, lang) for c in codes) for g, codes in finals_by_group.items() if codes]
    )
    return _svg(chart_id, int(width), height, title, desc, body)
