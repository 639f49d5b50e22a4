"""The geometry of the charts drawn on the server as SVG; their markup is in ``templates/charts.html``.

Each function here computes where everything goes (numbers and the words to show) and returns a frozen
dataclass; the template's macro of the same name draws it. A chart has a title and a description, colours
told apart by colour-blind readers (Okabe and Ito's palette), and every number also in a table the page
puts beside it. Each bar is a ``rect`` with ``class="bar"``, ``data-label`` and ``data-value``, so a test
(or a screen reader's user, through its ``<title>``) can read the chart as a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.catalogue import GROUPS, REASONS, RESPONSES
from domain.rules import Ruleset
from interface.web.i18n import group_name, response_name, translate

# Okabe–Ito: distinguishable with the common colour-vision deficiencies
BLUE, ORANGE, GREEN, SKY, VERMILLION, PURPLE, YELLOW, GREY = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#56B4E9",
    "#D55E00",
    "#CC79A7",
    "#F0E442",
    "#6E6E6E",
)
SERIES = (BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION, YELLOW, GREY)
GROUP_COLOURS = {"preparing": SKY, "delivered": GREEN, "not_delivered": ORANGE, "not_sent": PURPLE}
# One colour a reason on every chart (the palette's seven, then darker tones of them; "none": grey).
_REASON_PALETTE = (
    BLUE,
    ORANGE,
    GREEN,
    PURPLE,
    SKY,
    VERMILLION,
    YELLOW,
    "#004B75",
    "#8A5F00",
    "#005C45",
    "#8E4A73",
    "#2B7AA6",
    "#8F3F00",
)
REASON_COLOURS: dict[str, str] = {reason: _REASON_PALETTE[i % len(_REASON_PALETTE)] for i, reason in enumerate(REASONS)} | {
    "none": GREY
}

Number = int | float


@dataclass(frozen=True)
class Frame:
    """The ``<svg>`` element: its id, size, title and description."""

    chart_id: str
    width: int
    height: int
    title: str
    desc: str


@dataclass(frozen=True)
class Label:
    x: Number
    y: Number
    text: str


@dataclass(frozen=True)
class Line:
    x1: Number
    y1: Number
    x2: Number
    y2: Number


@dataclass(frozen=True)
class Rect:
    x: Number
    y: Number
    width: Number
    height: Number


@dataclass(frozen=True)
class Swatch:
    """A legend entry: a colour square at (x, y) and its label beside it."""

    x: Number
    y: Number
    colour: str
    label: Label


def _truncate(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


NICE = (1.0, 2.0, 2.5, 5.0, 10.0)


def nice_scale(peak: float) -> tuple[int, int]:
    """An axis for counts up to ``peak``: (top, steps). The top is the next "nice" value at or above the
    peak (1, 2, 2.5 or 5 × 10ⁿ; a whole number), divided into 4 or 5 whole steps (fewer for tiny tops)."""
    if peak <= 1:
        return 1, 1
    power = 10 ** math.floor(math.log10(peak))
    top = next(int(m * power) for m in NICE if m * power >= peak and float(m * power).is_integer())
    for steps in (5, 4, 2):
        if top % steps == 0 and _is_nice(top // steps):
            return top, steps
    return top, 1


def _is_nice(value: int) -> bool:
    power = 10 ** math.floor(math.log10(value))
    return value / power in NICE


# ---- horizontal bars: the delivery funnel ------------------------------------------------------------


@dataclass(frozen=True)
class HBar:
    label: str
    value: int
    caption: Label  # the (shortened) label left of the bar
    x: Number
    y: Number
    width: Number
    height: Number
    value_label: Label  # the number right of the bar


@dataclass(frozen=True)
class HBarChart:
    frame: Frame
    colour: str
    bars: tuple[HBar, ...]


def hbar_chart(
    chart_id: str,
    title: str,
    desc: str,
    rows: Sequence[tuple[str, int]],
    colour: str = BLUE,
    fmt: Callable[[int], str] = str,
) -> HBarChart:
    """Horizontal bars, one a row: the delivery funnel."""
    label_w, bar_w, row_h, top = 170, 380, 30, 10
    width, height = label_w + bar_w + 90, top + row_h * max(1, len(rows)) + 10
    top_value = max([v for _, v in rows] + [1])
    bars = []
    for i, (label, value) in enumerate(rows):
        y = top + i * row_h
        w = 0 if value <= 0 else max(2, round(bar_w * value / top_value))
        bars.append(
            HBar(
                label,
                value,
                Label(label_w - 8, y + 19, _truncate(label, 26)),
                label_w,
                y + 5,
                w,
                row_h - 10,
                Label(label_w + w + 6, y + 19, fmt(value)),
            )
        )
    return HBarChart(Frame(chart_id, width, height, title, desc), colour, tuple(bars))


# ---- stacked horizontal bars: the delivery-error diagram ------------------------------------------------


@dataclass(frozen=True)
class Segment:
    key: str
    label: str
    value: int
    x: float
    y: Number
    width: float
    height: Number
    colour: str


@dataclass(frozen=True)
class StackedBar:
    label: str
    caption: Label
    segments: tuple[Segment, ...]
    total: Label  # the row's sum right of its segments


@dataclass(frozen=True)
class StackedHBarChart:
    frame: Frame
    bars: tuple[StackedBar, ...]
    legend: tuple[Swatch, ...]


def stacked_hbar_chart(
    chart_id: str,
    title: str,
    desc: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, str, int]]]],
    legend: Sequence[tuple[str, str]],
    fmt: Callable[[int], str] = str,
) -> StackedHBarChart:
    """Horizontal bars split into segments: the delivery-error diagram (a response a row, its reasons as segments).

    ``rows``: (label, [(segment key, segment label, value)]); ``legend``: (segment key, label). A reason's
    segment has the reason's colour on every chart (``REASON_COLOURS``); another key one of the series."""
    colours = {key: REASON_COLOURS.get(key, SERIES[i % len(SERIES)]) for i, (key, _) in enumerate(legend)}
    label_w, bar_w, row_h, top = 250, 330, 30, 10
    legend_h = 22 * math.ceil(len(legend) / 3) if legend else 0
    width = label_w + bar_w + 80
    height = top + row_h * max(1, len(rows)) + 14 + legend_h
    top_value = max([sum(v for _, _, v in segs) for _, segs in rows] + [1])
    bars = []
    for i, (label, parts) in enumerate(rows):
        y = top + i * row_h
        x = float(label_w)
        segments = []
        for key, seg_label, value in parts:
            w = bar_w * value / top_value
            segments.append(Segment(key, seg_label, value, x, y + 5, max(w, 1.5), row_h - 10, colours.get(key, GREY)))
            x += w
        total = sum(v for _, _, v in parts)
        bars.append(
            StackedBar(label, Label(label_w - 8, y + 19, _truncate(label, 32)), tuple(segments), Label(x + 6, y + 19, fmt(total)))
        )
    ly = top + row_h * max(1, len(rows)) + 10
    swatches = []
    for i, (key, label) in enumerate(legend):
        lx, row = 10 + (i % 3) * 215, ly + (i // 3) * 22
        swatches.append(Swatch(lx, row, colours[key], Label(lx + 20, row + 12, _truncate(label, 30))))
    return StackedHBarChart(Frame(chart_id, width, height, title, desc), tuple(bars), tuple(swatches))


# ---- grouped vertical bars per hour: first opens and first clicks -----------------------------------------


@dataclass(frozen=True)
class GridLine:
    x1: Number
    x2: Number
    y: float
    value: Label  # the axis number left of the line


@dataclass(frozen=True)
class HourBar:
    series: str  # "opens" or "clicks"
    hour: int
    value: int
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    y1: Number
    y2: Number
    label: Label


@dataclass(frozen=True)
class HourSlot:
    bars: tuple[HourBar, HourBar]
    tick: Tick | None  # every few hours a tick and its label under the axis


@dataclass(frozen=True)
class HourlyChart:
    frame: Frame
    grid: tuple[GridLine, ...]
    hours: tuple[HourSlot, ...]
    axis: Line
    legend: tuple[Swatch, ...]


def hourly_chart(
    chart_id: str,
    title: str,
    desc: str,
    buckets: Sequence[tuple[str | None, str, int, int]],
    labels: tuple[str, str],
    fmt: Callable[[int], str] = str,
) -> HourlyChart:
    """Grouped vertical bars a bucket (a clock hour or a day): first opens (blue) and first clicks (orange).

    ``buckets``: (tick label or None for no tick, full label, first opens, first clicks); ``labels``: the two
    series' names; ``fmt``: how a number is written in the page's language."""
    left, right, top, bottom = 56, 12, 28, 46
    slots_n = max(1, len(buckets))
    plot_w = 960
    plot_h = 220
    width, height = left + plot_w + right, top + plot_h + bottom
    slot = plot_w / slots_n
    bar = max(1.0, slot * 0.4)
    top_value, steps = nice_scale(max([max(o, c) for _, _, o, c in buckets] + [1]))
    grid = []
    for k in range(steps + 1):
        y = top + plot_h - plot_h * k / steps
        grid.append(GridLine(left, left + plot_w, y, Label(left - 6, y + 4, fmt(top_value * k // steps))))
    slots = []
    for h, (tick, full, opens, clicks) in enumerate(buckets):
        x = left + h * slot
        opens_h, clicks_h = plot_h * opens / top_value, plot_h * clicks / top_value
        pair = (
            HourBar(
                "opens", h, opens, x + slot * 0.1, top + plot_h - opens_h, bar, opens_h, BLUE, f"{full}: {fmt(opens)} {labels[0]}"
            ),
            HourBar(
                "clicks",
                h,
                clicks,
                x + slot * 0.1 + bar,
                top + plot_h - clicks_h,
                bar,
                clicks_h,
                ORANGE,
                f"{full}: {fmt(clicks)} {labels[1]}",
            ),
        )
        mark = Tick(x, top + plot_h, top + plot_h + 5, Label(x, top + plot_h + 18, tick)) if tick is not None else None
        slots.append(HourSlot(pair, mark))
    axis = Line(left, top + plot_h, left + plot_w, top + plot_h)
    legend = tuple(
        Swatch(left + i * 170, 6, colour, Label(left + i * 170 + 20, 18, name))
        for i, (name, colour) in enumerate(((labels[0], BLUE), (labels[1], ORANGE)))
    )
    return HourlyChart(Frame(chart_id, width, height, title, desc), tuple(grid), tuple(slots), axis, legend)


# ---- the state diagram of a ruleset (the seed's Fig. 2, drawn from the rules) -------------------------


@dataclass(frozen=True)
class StateBox:
    code: str
    group: str
    final: bool  # drawn with a double border
    x: Number
    y: Number
    width: Number
    height: Number
    colour: str
    lines: tuple[Label, ...]  # the first in bold: the response's name
    inner: Rect | None  # the inner border of a final

    @property
    def title(self) -> str:
        return f"{self.lines[0].text} ({self.code})"


@dataclass(frozen=True)
class ChainLink:
    box: StateBox
    arrow: Line | None  # from the box above (none above the first)


@dataclass(frozen=True)
class FinalGroup:
    heading: Label
    boxes: tuple[StateBox, ...]


@dataclass(frozen=True)
class TimeoutEdge:
    path: str  # the SVG path's ``d``: a curve from sent_to_provider to the timeout's response
    label: Label


@dataclass(frozen=True)
class StateDiagram:
    frame: Frame
    colour: str  # of the timeout edge and its arrow head
    heading: Label
    chain: tuple[ChainLink, ...]
    chain_caption: Label
    groups: tuple[FinalGroup, ...]
    replace_arrow: Line
    replace_label: tuple[Label, ...]  # a line each: wrapped to fit between the columns
    timeout: TimeoutEdge | None


BOX_H = 34
FINAL_NAME_CHARS = 34  # at 11 px, what a final's box holds on a line
ARROW_LABEL_CHARS = 26  # what fits between the columns at 11 px


LINE_H = 13


def _box(
    x: Number, y: Number, w: Number, code: str, lines: Sequence[str], group: str, final: bool, h: Number = BOX_H
) -> StateBox:
    labels = tuple(Label(x + w / 2, y + 16 + i * LINE_H, line) for i, line in enumerate(lines))
    inner = Rect(x + 3, y + 3, w - 6, h - 6) if final else None
    return StateBox(code, group, final, x, y, w, h, GROUP_COLOURS.get(group, GREY), labels, inner)


def wrap(text: str, chars: int, lines: int = 2) -> list[str]:
    """``text`` in at most ``lines`` lines of at most ``chars`` characters, broken at spaces (the last
    line shortened with "…" when the rest does not fit; the full text stays in the box's title)."""
    out: list[str] = []
    words = text.split()
    while words and len(out) < lines:
        line = words.pop(0)
        while words and len(line) + 1 + len(words[0]) <= chars:
            line += " " + words.pop(0)
        out.append(line)
    if words:
        out[-1] = _truncate(out[-1] + " " + " ".join(words), chars)
    return [_truncate(line, chars) for line in out] or [""]


def state_diagram(rules: Ruleset, lang: str, chart_id: str = "state-diagram") -> StateDiagram:
    """Non-finals in priority order down the left (each replaced by the next higher one), finals grouped on
    the right with a double border; the confirmation timeout drawn as a dashed edge."""
    non_finals = sorted(
        (code for code, rule in rules.responses.items() if not rule.final), key=lambda c: (rules.responses[c].priority or 0, c)
    )
    finals_by_group = {g: [c for c, rule in rules.responses.items() if rule.final and RESPONSES[c].group == g] for g in GROUPS}
    left_w, right_w, box_h, gap = 190, 262, BOX_H, 16
    # a final's name wraps to two lines where it is long (Russian names are): every final box as tall as the tallest
    final_names = {c: wrap(response_name(c, lang), FINAL_NAME_CHARS) for codes in finals_by_group.values() for c in codes}
    final_h = BOX_H + LINE_H * (max([len(n) for n in final_names.values()] + [1]) - 1)
    left_x, top = 20, 50
    right_x = left_x + left_w + 200
    col_w = right_w + 12
    heading = Label(
        left_x, 24, translate("Non-final responses by priority: a higher one replaces a lower one. Finals end the change.", lang)
    )
    positions: dict[str, tuple[Number, Number, Number]] = {}
    chain = []
    for i, code in enumerate(non_finals):
        y = top + i * (box_h + gap)
        positions[code] = (left_x, y, left_w)
        priority = rules.responses[code].priority
        box = _box(
            left_x,
            y,
            left_w,
            code,
            [response_name(code, lang), f"{translate('Priority', lang)} {priority}"],
            RESPONSES[code].group,
            False,
        )
        arrow = Line(left_x + left_w / 2, y - gap + 1, left_x + left_w / 2, y - 1) if i else None
        chain.append(ChainLink(box, arrow))
    chain_bottom = top + max(1, len(non_finals)) * (box_h + gap) - gap
    caption = Label(left_x + left_w / 2, chain_bottom + 18, f"↓ {translate('replaced by a higher priority', lang)}")
    y = top - 14
    groups = []
    for group, codes in finals_by_group.items():
        if not codes:
            continue
        group_heading = Label(right_x, y + 10, f"{group_name(group, lang)} · {translate('Final', lang)}")
        y += 18
        boxes = []
        for i, code in enumerate(codes):
            col, row = i % 2, i // 2
            bx, by = right_x + col * col_w, y + row * (final_h + 8)
            positions[code] = (bx, by, right_w)
            boxes.append(_box(bx, by, right_w, code, [*final_names[code], code], group, True, final_h))
        groups.append(FinalGroup(group_heading, tuple(boxes)))
        y += math.ceil(len(codes) / 2) * (final_h + 8) + 12
    finals_bottom = y
    # one broad arrow: any final replaces a non-final
    mid = top + (min(chain_bottom, finals_bottom) - top) * 0.55
    x1, x2 = left_x + left_w + 10, right_x - 10
    replace_arrow = Line(x1, mid, x2, mid)
    replace_label = tuple(
        Label((x1 + x2) / 2, mid + 18 + i * LINE_H, line)
        for i, line in enumerate(wrap(translate("any final replaces a non-final", lang), ARROW_LABEL_CHARS, 3))
    )
    timeout = None
    timeout_to = rules.confirmation_timeout_response
    if "sent_to_provider" in positions and timeout_to in positions:
        sx, sy, sw = positions["sent_to_provider"]
        tx, ty, _tw = positions[timeout_to]
        a1, b1 = sx + sw, sy + box_h / 2
        a2, b2 = tx, ty + box_h / 2
        hours = f"{rules.confirmation_timeout_hours:g}"
        timeout = TimeoutEdge(
            f"M{a1},{b1} C{a1 + 90},{b1} {a2 - 90},{b2} {a2 - 2},{b2}",
            Label(a1 + 8, b1 - 8, translate("after %(hours)s h without confirmation", lang, hours=hours)),
        )
    height = int(max(chain_bottom + 30, finals_bottom) + 10)
    width = right_x + 2 * col_w + 10
    title = translate("State diagram of rules version %(version)s", lang, version=rules.version)
    desc = "; ".join(
        [" → ".join(f"{response_name(c, lang)} ({rules.responses[c].priority})" for c in non_finals)]
        + [
            f"{group_name(g, lang)}: " + ", ".join(response_name(c, lang) for c in codes)
            for g, codes in finals_by_group.items()
            if codes
        ]
    )
    return StateDiagram(
        Frame(chart_id, int(width), height, title, desc),
        VERMILLION,
        heading,
        tuple(chain),
        caption,
        tuple(groups),
        replace_arrow,
        replace_label,
        timeout,
    )
