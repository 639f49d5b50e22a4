"""The pages' words (every UI string has its Russian) and the SVG charts (titled, escaped, drawn from data)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader

from domain.catalogue import RESPONSES, WHYS
from domain.rules import DEFAULT_RULESET
from interface.web import charts
from interface.web.i18n import REASONS, RU, why_sentence
from interface.web.i18n import WHYS as WHY_TEXTS
from interface.web.pages_rules import LABELS

WEB = Path(__file__).resolve().parents[2] / "interface" / "web"
LITERAL = re.compile(r"""_\(\s*(["'])((?:(?!\1).)+)\1""")
CHART_MACROS = Environment(loader=FileSystemLoader(WEB / "templates"), autoescape=True).get_template("charts.html").module
MACRO_OF = {
    charts.HBarChart: "hbar_chart",
    charts.StackedHBarChart: "stacked_hbar_chart",
    charts.HourlyChart: "hourly_chart",
    charts.StateDiagram: "state_diagram",
}


def drawn(chart: Any) -> str:
    """A chart's geometry (``interface.web.charts``) drawn by the macro of the same name (templates/charts.html)."""
    return str(getattr(CHART_MACROS, MACRO_OF[type(chart)])(chart))


def ui_strings() -> set[str]:
    found: set[str] = set()
    for path in list((WEB / "templates").glob("*.html")) + [p for p in WEB.glob("*.py") if p.name != "i18n.py"]:
        found |= {m.group(2) for m in LITERAL.finditer(path.read_text(encoding="utf-8"))}
    # words translated from data: form labels, categories, job states, fold effects
    return found | set(LABELS.values()) | {"bulk", "trigger", "running", "done", "failed", "set", "counted", "ignored"}


def test_every_ui_string_has_its_russian() -> None:
    strings = ui_strings()
    assert len(strings) > 150
    assert sorted(s for s in strings if s not in RU) == []


def test_every_why_and_reason_reads_as_words_in_both_languages() -> None:
    assert set(WHY_TEXTS) == set(WHYS)
    assert set(REASONS) >= {
        "will_retry",
        "unknown_recipient",
        "mailbox_problem",
        "spam_reject",
        "domain_not_found",
        "ip_reputation",
        "recipient_blocked",
        "other",
    }
    assert why_sentence("ignored", "final", "unsubscribed", "en") == "Ignored: a final response was already set."
    assert why_sentence("set", None, "clicked", "ru") == "Установлен отклик «Переход по ссылке»."
    assert why_sentence("counted", "lower_priority", "clicked", "en").startswith(
        "Counted in the opens or clicks; the response stayed"
    )


def test_a_chart_has_a_title_a_description_and_escaped_labels() -> None:
    svg = drawn(charts.hbar_chart("c", "Funnel <b>", "desc & more", [("<script>", 3), ("two", 0)]))
    assert '<title id="c-title">Funnel &lt;b&gt;</title>' in svg and '<desc id="c-desc">desc &amp; more</desc>' in svg
    assert "<script>" not in svg and 'data-label="&lt;script&gt;" data-value="3"' in svg
    assert 'role="img" aria-labelledby="c-title c-desc"' in svg


def test_axis_maxima_are_the_next_nice_value_and_their_steps_whole() -> None:
    nice = {m * 10**e for m in (1, 2, 5) for e in range(0, 7)} | {25 * 10**e for e in range(0, 6)}
    for value in (1, 2, 3, 7, 27, 99, 120, 434, 1234, 2600, 98765):
        top, steps = charts.nice_scale(value)
        assert top >= value and top in nice, (value, top)
        assert not any(value <= n < top for n in nice), f"{top} is not the next nice value above {value}"
        assert top % steps == 0 and (top // steps) in nice, (value, top, steps)
    assert charts.nice_scale(434) == (500, 5), "issue 18: a peak of 434 drew an axis to 800"
    assert charts.nice_scale(2300)[0] == 2500


def test_the_state_diagram_follows_the_rules_not_the_catalogue() -> None:
    rules = DEFAULT_RULESET.patched(
        {"responses": {"soft_bounce": {"final": True}, "unsubscribed": {"final": False, "priority": 70}}}, version="x"
    )
    svg = drawn(charts.state_diagram(rules, "en"))
    finals = re.findall(r'<g class="state final" data-code="([^"]+)"', svg)
    chain = re.findall(r'<g class="state" data-code="([^"]+)"', svg)
    assert "soft_bounce" in finals and "unsubscribed" not in finals
    assert chain == sorted(chain, key=lambda c: rules.responses[c].priority or 0) and chain[-1] == "unsubscribed"
    assert len(finals) + len(chain) == len(RESPONSES)
    assert "State diagram of rules version x" in svg


def test_every_contact_effect_reads_as_words_in_both_languages() -> None:
    from domain.mappings.target import CONTACT_EFFECTS as EFFECTS
    from interface.web.i18n import CONTACT_EFFECTS, contact_effect_name

    assert set(CONTACT_EFFECTS) == set(EFFECTS)
    for effect in EFFECTS:
        assert contact_effect_name(effect, "en") != contact_effect_name(effect, "ru")
    assert contact_effect_name(None, "en") == ""
