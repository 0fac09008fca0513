"""Issue 6: every broken file gives one clear line naming it: no traceback, hang or partial report."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import make_corpus
from tests.test_end_to_end import run_main

CASES = [
    "truncated zip",
    "zip without weights",
    "zip without config",
    "missing dataset",
    "wrong shape",
    "kernel not 4 units wide",
    "huge declared shape",
    "integer weights",
    "string weights",
    "truncated h5",
    "h5 without weights",
    "damaged object header",
    "empty h5",
    "garbage",
]


@pytest.fixture(scope="module")
def corpus(
    simple_model: Any, legacy_h5_model: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    return make_corpus(simple_model.path, legacy_h5_model.path, tmp_path_factory.mktemp("corpus"))


def _limit_memory() -> None:
    # Bounded memory: a reader that believed a declared 40 GB shape would die here.
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))


@pytest.mark.parametrize("case", CASES)
def test_broken_file_gives_one_line(case: str, corpus: dict[str, Path], tmp_path: Path) -> None:
    path = corpus[case]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"models: [{path}]\n")
    out = tmp_path / "r.html"
    out.write_text("previous report")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lstm_report",
            "build",
            str(cfg),
            "-o",
            str(out),
            "--json",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_memory if case == "huge declared shape" else None,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert r.returncode == 1, (case, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (case, r.stderr)
    assert path.name in lines[0], (case, lines[0])
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, (case, r.stderr)
    assert out.read_text() == "previous report"  # the previous report survives
    assert not (tmp_path / "r.json").exists()


def test_missing_output_folder_is_created(
    simple_model: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"models: [{simple_model.path}]\n")
    code, err = run_main(capfd, "build", str(cfg), "-q", "-o", str(tmp_path / "new/deeper/r.html"))
    assert code == 0, err
    assert (tmp_path / "new" / "deeper" / "r.html").is_file()
