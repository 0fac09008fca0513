"""Issue 6: the same inputs give byte-identical HTML and JSON; SOURCE_DATE_EPOCH is honoured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from lstm_report.output.clock import generated_at
from tests.conftest import write_config


def _build(cfg: Path, out: Path, epoch: str | None) -> subprocess.Popen[str]:
    """Start one build in a fresh process (two run side by side: one per core)."""
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = epoch
    env["PYTHONHASHSEED"] = "random"  # set iteration order must not leak into the output
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lstm_report",
            "build",
            str(cfg),
            "-q",
            "-o",
            str(out.with_suffix(".html")),
            "--json",
            str(out.with_suffix(".json")),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait(p: subprocess.Popen[str]) -> None:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err


def test_reruns_are_byte_identical(complex_model: Any, simple_model: Any, tmp_path: Path) -> None:
    np_probe = tmp_path / "p.npy"
    import numpy as np

    np.save(np_probe, np.random.default_rng(0).normal(size=(3, 7, 5)).astype("float32"))
    cfg = write_config(
        tmp_path,
        f"models:\n  - {{path: {complex_model.path}, name: a, probe: p.npy}}\n"
        f"  - {{path: {simple_model.path}, name: b}}\n  - {{path: {simple_model.path}, name: c}}\n"
        "compare: [{baseline: b, candidate: c}]\n",
    )
    runs = [_build(cfg, tmp_path / name, "1700000000") for name in ("one", "two")]
    for run in runs:
        _wait(run)
    for ext in (".html", ".json"):
        assert (tmp_path / f"one{ext}").read_bytes() == (tmp_path / f"two{ext}").read_bytes()
    assert "2023-11-14 22:13 UTC" in (tmp_path / "one.html").read_text()


def test_generated_honours_source_date_epoch(monkeypatch: Any) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert generated_at() == "1970-01-01 00:00 UTC"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert generated_at().endswith(" UTC")
