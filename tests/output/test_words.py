"""What the project says of itself: descriptions, messages and docstrings that stay true."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_report.config.parse import parse_config
from lstm_report.errors import ConfigError
from tests.helpers import REPO


def _says_what_is_read(text: str) -> None:
    assert "Keras LSTM" not in text
    for word in ("LSTM", "GRU", "Keras", "PyTorch", "ONNX"):
        assert word in text, word


def test_pyproject_description_names_every_network_and_framework() -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")  # tomllib: Python 3.11+
    (description,) = re.findall(r'^description = "(.*)"$', text, re.MULTILINE)
    _says_what_is_read(description)


def test_cli_description_names_every_network_and_framework() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lstm_report", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    _says_what_is_read(" ".join(out.split()))


def test_pyproject_names_only_files_in_the_repo() -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    named = re.findall(r"\b[\w./-]+\.md\b", text)
    assert "README.md" in named
    for name in named:
        assert (REPO / name).exists(), name


def test_too_many_models_points_to_batch_as_it_is() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"models": [f"m{i}.keras" for i in range(1001)]})
    assert "planned" not in str(err.value)
    assert "lstm-report batch" in str(err.value)


@pytest.mark.parametrize("module", sorted((REPO / "lstm_report").rglob("*.py")), ids=str)
def test_no_two_docstrings_in_a_row(module: Path) -> None:
    # A string statement after another documents nothing: one of the two is stray.
    tree = ast.parse(module.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for a, b in zip(body, body[1:]):
            strings = [
                isinstance(s, ast.Expr)
                and isinstance(s.value, ast.Constant)
                and isinstance(s.value.value, str)
                for s in (a, b)
            ]
            assert not all(strings), f"{module.name}:{b.lineno}: a second docstring"


def test_build_help_says_name_names_the_page() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lstm_report", "build", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    flat = " ".join(out.split())
    assert "the page is NAME.html in the current folder" in flat
