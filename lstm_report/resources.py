"""Where the files that ship with the package live, in a wheel and in a source checkout."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    # A wheel carries top-level folders inside the package as "_name" (see pyproject.toml);
    # a source checkout (or editable install) has them beside the package.
    packaged = _HERE / f"_{name}"
    return packaged if packaged.is_dir() else _HERE.parent / name


def templates_dir() -> Path:
    return _shipped("templates")


def configs_dir() -> Path:
    return _shipped("configs")


def demo_config() -> Path:
    """The built-in demo: configs/demo.yaml and the small model it names."""
    return configs_dir() / "demo.yaml"
