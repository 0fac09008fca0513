"""Where the files that ship with the package live, in a wheel and in a source checkout."""

from __future__ import annotations

import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    # A wheel carries the top-level folders here, in lstm_report/_resources/ (see
    # pyproject.toml); a source checkout (or editable install) has them beside the package.
    packaged = _HERE / name
    return packaged if packaged.is_dir() else _HERE.parent.parent / name


def templates_dir() -> Path:
    return _shipped("templates")


def configs_dir() -> Path:
    return _shipped("configs")


def demo_config() -> Path:
    """The built-in demo: configs/demo.yaml and the small model it names."""
    return configs_dir() / "demo.yaml"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lstm-report``, by default ``~/.cache/lstm-report``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, empty or relative: the XDG default
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lstm-report"


CACHE_VARIABLES = (("KERAS_HOME", "keras"), ("MPLCONFIGDIR", "matplotlib"))
"""Where Keras (keras.json) and matplotlib (font cache) write, unless the user says."""


def cache_environment() -> dict[str, str]:
    """The variables to set so that Keras and matplotlib write under cache_dir(), not in
    the home folder; those the user has set are left alone."""
    root = cache_dir()
    return {var: str(root / sub) for var, sub in CACHE_VARIABLES if not os.environ.get(var)}
