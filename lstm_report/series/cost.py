"""What a series costs on one core: whether ``build`` starts a local pool for it."""

from __future__ import annotations

from collections.abc import Sequence

from lstm_report.model.layers import RecurrentLayer

POOL_MIN_SECONDS = 1.0
"""``build`` starts a local pool for a series only when its units would take longer than
this on one core (estimated from the layer sizes): starting workers costs about 0.5 s."""


def estimate(layers: Sequence[RecurrentLayer], count: int) -> float:
    """Seconds on one core for ``count`` checkpoints of these layers: an eigenvalue problem
    per gate (about 26 ms for 256 units, cubic), plus reading a file."""
    per = sum(
        (4 if w.cell_kind == "LSTM" else 3) * w.recurrent_kernel.shape[0] ** 3 * 1.5e-9
        for w in layers
    )
    return count * (per + 0.015)
