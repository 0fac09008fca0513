"""The README and docs/ as a newcomer reads them, and the CI script they describe."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import REPO, DemoRun

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


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def test_links_between_readme_and_docs_resolve() -> None:
    files = [README, *sorted((REPO / "docs").glob("*.md"))]
    assert len(files) > 5
    for md in files:
        text = md.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            path, _, anchor = target.partition("#")
            dest = (md.parent / path).resolve() if path else md
            assert dest.is_file(), f"{md.name}: {target}"
            if anchor and dest.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", dest.read_text(encoding="utf-8"), re.M)
                assert anchor in {_slug(h) for h in headings}, f"{md.name}: {target}"


def test_no_placeholder_is_left_where_a_measured_table_belongs() -> None:
    # A benchmark's table is pasted in by hand; a line that is only a marker (@@TABLE@@,
    # ROW2048) means a figure the docs promise was never filled in.
    for md in [README, *sorted((REPO / "docs").glob("*.md"))]:
        for n, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
            marker = re.fullmatch(r"@@\w+@@|[A-Z][A-Z0-9_]{3,}", line.strip())
            assert marker is None, f"{md.name}:{n}: placeholder {line.strip()!r}"


def _reading_guide() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("\n## How to read the report\n", 1)[1].split("\n## ", 1)[0]


def test_reading_guide_explains_every_section_of_the_demo_page(demo_run: DemoRun) -> None:
    import html as html_lib
    import json

    data = json.loads(demo_run.json.read_text())
    models = [m["name"] for m in data["models"]]
    layers = {la["name"] for m in data["models"] for la in m["layers"]}
    page = demo_run.html.read_text(encoding="utf-8").split("<main>", 1)[1]
    guide = _reading_guide()
    titles = set(re.findall(r"^#### (.+)$|^### (.+)$", guide, re.M))
    named = {t for pair in titles for t in pair if t} | set(re.findall(r"\*\*(.+?)\.\*\*", guide))
    seen = []
    for level, raw in re.findall(r"<h([234])[^>]*>(.*?)</h\1>", page, re.S):
        title = html_lib.unescape(re.sub(r"<[^>]+>", "", raw)).strip()
        if title in layers or title in (f"Model {m}" for m in models):
            continue  # a comparison's layer, a model's own heading
        if any(title.startswith(f"{m} › ") for m in models):
            title = "A layer's section"
        title = re.sub(r"^What changed: .+ → .+$", "What changed: A → B", title)
        title = re.sub(r"\d+", "N", title)
        for m in models:
            title = re.sub(rf"\b{re.escape(m)}\b", "the model", title)
        assert title in named, f"the page's section {title!r} is not in the reading guide"
        seen.append(title)
    assert {"Summary", "Memory timescales", "What changed: A → B"} <= set(seen)
