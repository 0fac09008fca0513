"""What was read and measured of a Keras ConvLSTM1D/2D/3D layer (cells/conv_lstm.py holds
the cell): a layer of its own, not a RecurrentLayer, whose analysis assumes matrices."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstm_report.cells.conv_lstm import ConvLSTMCell


@dataclass(frozen=True, eq=False)
class ConvRecurrentLayer:
    """One Keras ConvLSTM layer: where it sits in the model and its cell."""

    name: str
    """Path inside the model, as RecurrentLayer.name."""
    kind: str
    """``ConvLSTM1D``, ``ConvLSTM2D`` or ``ConvLSTM3D``."""
    cell: ConvLSTMCell
    return_sequences: bool = False
    go_backwards: bool = False
    reads_input: bool = False
    source: str | None = None
    """Path of the layer whose output this layer reads (None: the model input)."""

    @property
    def filters(self) -> int:
        return self.cell.filters

    @property
    def kernel_size(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.cell.gates[0].K.shape[:-2])

    @property
    def in_channels(self) -> int:
        return int(self.cell.gates[0].K.shape[-2])

    @property
    def params(self) -> int:
        return sum(g.K.size + g.R.size + (0 if g.b is None else g.b.size) for g in self.cell.gates)


@dataclass(frozen=True)
class ArrayStats:
    """Summary of one array: count, mean, std, Frobenius (L2) norm, largest |value|."""

    size: int
    mean: float
    std: float
    norm: float
    max_abs: float
    nonfinite: int = 0
    """Entries that are NaN or Inf (then the four numbers above are NaN)."""


@dataclass(frozen=True, eq=False)
class ConvGateStats:
    """One gate of a ConvLSTM: its input kernel K_g, recurrent kernel R_g and bias b_g."""

    gate: str
    K: ArrayStats
    R: ArrayStats
    b: ArrayStats | None
    K_tap_norms: np.ndarray
    """kernel_size: the Frobenius norm of each tap's (in, F) matrix."""
    R_tap_norms: np.ndarray
    """kernel_size: the Frobenius norm of each tap's (F, F) matrix."""
    R_tap_top_singular: np.ndarray
    """kernel_size: the largest singular value of each tap's (F, F) matrix (tap_spectra)."""


@dataclass(frozen=True, eq=False)
class ConvLayerAnalysis:
    """What the report says of one ConvLSTM layer, without data."""

    layer: ConvRecurrentLayer
    gates: tuple[ConvGateStats, ...]
    forget_at_rest: np.ndarray
    """(F,): σ(b_f) per filter, what each position keeps of its cell state a step at rest."""
    timescales: np.ndarray
    """(F,): τ = 1/(1 − σ(b_f)) per filter, in steps (inf where σ(b_f) is 1)."""
    anchor: str
