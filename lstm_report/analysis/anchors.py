"""The page anchors of models and layers: short ids made of their names."""

from __future__ import annotations

import re

from lstm_report.model.layers import RecurrentLayer


def slug(text: str) -> str:
    """``text`` in lower case, runs of other characters as one hyphen, at most 40 long."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:40] or "x"


def model_anchor(index: int, name: str) -> str:
    """The anchor of the ``index``-th model of the report."""
    return f"m{index}-{slug(name)}"


def layer_anchor(model: str, j: int, w: RecurrentLayer) -> str:
    """The anchor of the ``j``-th analysed layer of the model anchored at ``model``."""
    return f"{model}-l{j}-{slug(w.name)}-{w.direction}"
