"""The README and docs/ as a newcomer reads them, and the CI script they describe."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import REPO

README = REPO / "README.md"


def _commands(script: Path) -> list[list[str]]:
    """The commands a shell script runs, one per line (comments and blocks left out)."""
    out = []
    for line in script.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "if ", "fi", "then", "else", "apt-get", "export")):
            out.append(shlex.split(line))
    return out


def _setup_block() -> list[str]:
    """The README's first code block, line by line."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    return block.group(1).strip().splitlines()


def test_readme_starts_with_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.index("```sh") < text.index("\n## ")  # before any section
    assert _setup_block() == [
        "pip install -e . && lstm-report demo",
        "pip install -e '.[test]' && python -m pytest",
    ]


def test_ci_runs_lint_and_types_then_the_readme_test_command() -> None:
    commands = _commands(REPO / ".ci" / "run")
    lint = ["lstm_report", "tests", "benchmarks", "scripts"]
    assert commands[-5:] == [
        ["python", "-m", "pip", "install", "-e", ".[dev]"],
        ["python", "-m", "ruff", "check", *lint],
        ["python", "-m", "ruff", "format", "--check", *lint],
        ["python", "-m", "mypy", "lstm_report"],
        ["python", "-m", "pytest"],
    ]
    # The README's test command is what CI runs, and the dev extra brings the test extra.
    install, test = _setup_block()[1].split(" && ")
    assert shlex.split(test) == commands[-1]
    assert shlex.split(install)[-1] == ".[test]"
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "lstm-report[test]" in extras["optional-dependencies"]["dev"]
    assert {"ruff", "mypy"} <= {
        re.split(r"[<>=\[ ]", r)[0] for r in extras["optional-dependencies"]["dev"]
    }
