"""CI without glue: the Markdown summary appended to ``$GITHUB_STEP_SUMMARY`` (docs/ci.md)."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from lstm_report.errors import OutputError
from lstm_report.output.markdown import escape, num
from lstm_report.output.numbers import Numbers

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"
"""The variable GitHub Actions sets to the file a step appends its Markdown summary to."""


def step_summary_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """The step summary file, if the environment names one."""
    value = (os.environ if environ is None else environ).get(STEP_SUMMARY, "")
    return Path(value) if value.strip() else None


def append_step_summary(path: Path, text: str) -> None:
    """Append ``text`` to the step summary file (created if missing; a folder, FIFO or device
    is refused: appending to a FIFO would wait for a reader)."""
    try:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):
            raise OutputError(f"${STEP_SUMMARY}: {path} is not a regular file")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise OutputError(
            f"${STEP_SUMMARY}: cannot append to {path}: {exc.strerror or exc}"
        ) from None


def batch_summary(rows: Sequence[tuple[str, str, Numbers | None]]) -> str:
    """The Markdown summary of a batch: one row per run (name, status, its Numbers or None)."""
    out = [
        "### LSTM weight reports",
        "",
        "| Run | Status | Findings | Largest spectral radius ρ(U_g) | Median memory τ |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, status, n in rows:
        if n is None:
            out.append(f"| {escape(name)} | {escape(status)} | n/a | n/a | n/a |")
            continue
        found = f"{n.findings:,} ({n.errors:,} errors, {n.warnings:,} warnings)"
        out.append(
            f"| {escape(name)} | {escape(status)} | {found} | {num(n.largest_radius)} | "
            f"{num(n.memory_tau)} |"
        )
    return "\n".join(out) + "\n"
