"""CI without glue: the Markdown summary appended to ``$GITHUB_STEP_SUMMARY`` (docs/ci.md)."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from lstm_report.errors import OutputError

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
