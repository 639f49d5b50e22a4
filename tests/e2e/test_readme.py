"""The README's walk-through, run as written against a fresh server, so it cannot drift.

Blocks marked ``<!-- walkthrough -->`` are run in order in one bash session, in a folder laid
out like a fresh clone (``.venv``, ``tests/fixtures``). A ``# → …`` comment (continued on
``#`` lines) is the answer of the commands before it; ``…`` stands for anything. A block
marked ``<!-- walkthrough: output of the previous command -->`` is the printed output of the
last command of the block before it (a line ``…`` stands for any lines). Two things differ
from a person's run: the port (a free one instead of 8000) and the server, which this test
starts itself (``make run`` lines are skipped) with the walk-through's exported variables;
between two commands it waits until the views have caught up (a person reads slower).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.e2e import BIN, Http, Process, free_port, responses_command, start

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RUN = "<!-- walkthrough -->"
OUTPUT = "<!-- walkthrough: output of the previous command -->"
FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.DOTALL)
MARK = "\x1eSTEP-DONE\x1e"


@dataclass
class Step:
    commands: str
    expected: str | None = None  # what it prints, with … for anything
    lines: bool = False  # expected is text compared line by line (a printed report), not one JSON answer


def walkthrough(text: str) -> list[Step]:
    """The steps of every marked block, in README order."""
    steps: list[Step] = []
    for marker in re.finditer(re.escape(RUN) + "|" + re.escape(OUTPUT), text):
        block = FENCE.search(text, marker.end())
        assert block is not None and text[marker.end() : block.start()].strip() == "", f"no code block after {marker.group(0)}"
        if marker.group(0) == OUTPUT:
            assert steps and steps[-1].expected is None, "an output block follows a command without an answer"
            steps[-1].expected, steps[-1].lines = block.group(1).rstrip("\n"), True
        else:
            steps += block_steps(block.group(1))
    return steps


def block_steps(block: str) -> list[Step]:
    steps: list[Step] = []
    commands: list[str] = []
    answer: list[str] | None = None
    for line in block.splitlines():
        if line.startswith("# →"):
            answer = [line[len("# →") :].strip()]
        elif answer is not None and line.startswith("#"):
            answer.append(line[1:].strip())
        else:
            if answer is not None:
                steps.append(Step("\n".join(commands), "".join(answer)))
                commands, answer = [], None
            if not line.startswith("make run"):
                commands.append(line)
    if answer is not None:
        steps.append(Step("\n".join(commands), "".join(answer)))
    elif any(c.strip() for c in commands):
        steps.append(Step("\n".join(commands)))
    return steps


def pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in expected.split("…")), re.DOTALL)


def lines_match(expected: str, actual: str) -> bool:
    """Line by line; a line ``…`` matches any lines, ``…`` in a line any text."""
    parts = [".*" if line == "…" else ".*?".join(re.escape(p) for p in line.split("…")) for line in expected.splitlines()]
    regex = "\n".join(parts).replace("\n.*\n", "(?:\n.*)*\n").replace("\n.*", "(?:\n.*)*")
    return re.fullmatch(regex, actual.rstrip("\n")) is not None


def exported(steps: list[Step]) -> dict[str, str]:
    """The variables the walk-through exports: the server gets them too."""
    found: dict[str, str] = {}
    for step in steps:
        for line in step.commands.splitlines():
            if line.startswith("export "):
                found.update(word.split("=", 1) for word in shlex.split(line, comments=True)[1:] if "=" in word)
    return found


def test_the_walkthrough_is_found_and_its_answers_are_checked() -> None:
    steps = walkthrough(README.read_text())
    assert len([s for s in steps if s.expected]) >= 10
    assert exported(steps) == {"RESPONSES_API_TOKENS": "demo-token", "UNIONE_API_KEYS": "demo-key"}
    assert pattern('{"a":1,…,"c":3}').fullmatch('{"a":1,"b":2,"c":3}')
    assert not pattern('{"a":1,…}').fullmatch('{"a":2}')
    assert lines_match("x 1\n…\nz…", "x 1\ny\ny2\nz 9") and not lines_match("x 1\nz", "x 1\ny\nz")


@pytest.mark.timeout(180)
def test_the_readme_walkthrough_runs_as_written(tmp_path: Path, processes: list[Process]) -> None:
    steps = walkthrough(README.read_text())
    clone = tmp_path / "clone"
    (clone / "tests").mkdir(parents=True)
    (clone / ".venv").symlink_to(BIN.parent)
    (clone / "tests" / "fixtures").symlink_to(ROOT / "tests" / "fixtures")
    port = free_port()
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1", **exported(steps)}
    server = start(processes, "serve", responses_command("serve", "--port", str(port)), env, clone)
    Http(port).wait_until_up(server)

    caught_up = f"until curl -s localhost:{port}/readyz | grep -Eq '\"lag\": *0[,}}]'; do sleep 0.05; done"
    script = "\n".join(
        f"{caught_up}\n{step.commands.replace('localhost:8000', f'localhost:{port}')}\nprintf '\\n{MARK}\\n'" for step in steps
    )
    done = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=150)
    outputs = done.stdout.split(f"\n{MARK}\n")
    assert len(outputs) == len(steps) + 1, f"the walk-through stopped early:\n{done.stdout}\n{done.stderr}\n{server.output()}"
    for step, output in zip(steps, outputs):
        if step.expected is None:
            continue
        printed = output.strip("\n")
        if step.lines:
            assert lines_match(step.expected, printed), f"{step.commands}\nprinted:\n{printed}\nREADME:\n{step.expected}"
        else:
            assert pattern(step.expected).fullmatch(printed), f"{step.commands}\nanswered: {printed}\nREADME:   {step.expected}"
    assert "Traceback" not in server.output() + done.stderr
