"""The code and the README cite the product contract as ``CONTRACT §n``: every citation names a section
that docs/CONTRACT.md has, and nothing cites a document the repository does not hold."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "CONTRACT.md"
CITED_IN = ("domain", "application", "projections", "interface", "bench", "tests", "docs")
SUFFIXES = {".py", ".md", ".html", ".txt"}
CITATION = re.compile(r"CONTRACT §\s*(\d+(?:\.\d+)?)")
HEADING = re.compile(r"^## (\d+)\. ", re.MULTILINE)
NUMBERED_ITEM = re.compile(r"^(\d+)\. \*\*", re.MULTILINE)


def contract_sections() -> set[str]:
    """``n`` for each ``## n.`` heading, and ``n.k`` for each numbered bold item inside section n."""
    text = CONTRACT.read_text(encoding="utf-8")
    sections: set[str] = set()
    parts = HEADING.split(text)
    for number, body in zip(parts[1::2], parts[2::2], strict=True):
        sections.add(number)
        sections.update(f"{number}.{item}" for item in NUMBERED_ITEM.findall(body))
    return sections


def citing_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "gunicorn.conf.py"]
    for folder in CITED_IN:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in SUFFIXES and "static" not in p.parts]
    return [p for p in files if p.is_file() and p != Path(__file__)]


def test_the_contract_has_its_sections_in_order() -> None:
    numbers = [int(n) for n in HEADING.findall(CONTRACT.read_text(encoding="utf-8"))]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) >= 10  # catalogue, fold, analytics, providers, HTTP, configuration, targets...


def test_every_citation_names_a_section_that_exists() -> None:
    sections = contract_sections()
    cited: dict[str, list[str]] = {}
    for path in citing_files():
        for number in CITATION.findall(path.read_text(encoding="utf-8", errors="replace")):
            cited.setdefault(number, []).append(str(path.relative_to(ROOT)))
    missing = {number: sorted(set(where)) for number, where in cited.items() if number not in sections}
    assert cited, "nothing cites the contract"
    assert missing == {}


def test_nothing_cites_the_spec_the_repository_does_not_hold() -> None:
    stale = [str(p.relative_to(ROOT)) for p in citing_files() if "SPEC §" in p.read_text(encoding="utf-8", errors="replace")]
    assert stale == []
