"""The label of a checkpoint shown as an in-memory snapshot."""

from __future__ import annotations

from pathlib import Path

from lstm_report.config.schema import checkpoint_label
from lstm_report.readers.formats import format_of


def label_of(name: str) -> str:
    """An in-memory snapshot's label: as named, without a model file's suffix if it has
    one (readers.formats), as a checkpoint file's label (config.checkpoint_label)."""
    return checkpoint_label(Path(name)) if format_of(name) is not None else name
