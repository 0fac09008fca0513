"""What was read: a model's recurrent layers (placement and weights), its other layers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstm_report.cells.base import GATE_TITLES, CellWeights, Kind, from_keras, gates_of
from lstm_report.model.graph import ModelGraph

if TYPE_CHECKING:
    pass


GATES: tuple[str, ...] = ("i", "f", "c", "o")
"""Keras' LSTM gate order inside the concatenated kernel, recurrent kernel and bias (a
GRU's is z, r, h: iterate over a layer's ``gate_names``, never over this)."""

GATE_NAMES: dict[str, str] = GATE_TITLES
"""Gate letter -> name for LSTM (i, f, c, o) and GRU (z, r, h) gates alike."""


@dataclass(frozen=True, eq=False)
class LSTMWeights:
    """One direction of one recurrent layer (an LSTM or a GRU, of any framework).

    Keras readers give the layer's three arrays; ``cell`` splits them into the gates of its
    kind. Framework readers (PyTorch, ONNX) give the cell itself (``cell_weights``: two
    biases per gate, a projection), and the three arrays are its gates side by side with
    the biases added. Everything downstream reads the gates from ``cell``.
    """

    name: str
    """Path inside the model: ``lstm``, ``encoder/inner_lstm``, ``bi`` (a Bidirectional)."""
    direction: str
    """``forward`` or ``backward`` (the backward half of a Bidirectional, or go_backwards)."""
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray | None
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    go_backwards: bool = False
    return_sequences: bool = False
    wrapper: str | None = None
    """``Bidirectional`` when the layer is one half of a wrapper."""
    reads_input: bool = False
    """True when the layer reads the model's input (directly or through masking/dropout)."""
    unit_forget_bias: bool = True
    source: str | None = None
    """Path of the layer whose output this LSTM reads (None when it reads the model input)."""
    merge_mode: str | None = None
    """How a Bidirectional merges its halves (concat, sum, mul, ave), else None."""
    kind: str = "LSTM"
    """``LSTM``, ``GRU``, or ``CuDNNLSTM``/``CuDNNGRU`` for Keras 2 GPU weights converted to
    the plain layer's layout."""
    reset_after: bool | None = None
    """GRU only: where the reset gate acts (see cells.CellWeights.reset_after)."""
    cell_weights: CellWeights | None = None
    """The cell as a framework reader found it; None: built from the Keras arrays."""
    framework: str = "Keras"
    """Who computes this layer: ``Keras``, ``PyTorch``, ``ONNX``."""
    reads_embedding: bool = False
    """Its input is the model's Embedding: the rows of W are embedding dimensions."""

    @property
    def cell_kind(self) -> Kind:
        return "GRU" if self.kind.endswith("GRU") else "LSTM"

    @cached_property
    def cell(self) -> CellWeights:
        """The layer's gates, in its kind's canonical order (AnalysisError if malformed)."""
        if self.cell_weights is not None:
            return self.cell_weights
        return from_keras(
            self.cell_kind,
            self.kernel,
            self.recurrent_kernel,
            self.bias,
            name=self.label,
            direction="backward" if self.go_backwards else "forward",
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            reset_after=self.reset_after,
        )

    def __getstate__(self) -> dict[str, object]:
        # The cached cell holds views of kernel and recurrent_kernel; pickled, every view
        # becomes a copy, and another process would receive each weight twice (a 1024-unit
        # layer: 64 MiB instead of 32). The receiver builds its cell again, from views.
        state = dict(self.__dict__)
        state.pop("cell", None)
        return state

    @property
    def gate_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in gates_of(self.cell_kind))

    @property
    def units(self) -> int:
        return self.cell.units

    @property
    def input_dim(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def output_dim(self) -> int:
        """Size of the layer's output h: units, or the projection size."""
        return self.cell.output_dim

    @property
    def use_bias(self) -> bool:
        return self.bias is not None

    @property
    def params(self) -> int:
        return self.cell.params

    @property
    def label(self) -> str:
        """Human label: the name, plus the direction for a Bidirectional half."""
        return f"{self.name} ({self.direction})" if self.wrapper else self.name


@dataclass(frozen=True)
class OtherLayer:
    """A recurrent layer that is neither an LSTM nor a GRU (ConvLSTM, SimpleRNN, CuDNNGRU, a
    PyTorch nn.RNN): listed in the report, not analysed."""

    name: str
    kind: str
    units: int | None = None
    note: str | None = None
    """Why it is not analysed, where the reader says more than its kind."""


@dataclass(frozen=True, eq=False)
class Embedding:
    """An Embedding that reads the model input: the model takes token ids, not features."""

    name: str
    table: np.ndarray | None
    """(vocabulary, dimension), where the reader could read it; else Keras computes lookups."""
    vocab: int | None
    mask_zero: bool = False


@dataclass(frozen=True, eq=False)
class ModelWeights:
    """Everything a reader extracted from one model file."""

    name: str
    path: Path
    layers: tuple[LSTMWeights, ...]
    others: tuple[OtherLayer, ...] = ()
    total_params: int | None = None
    input_dim: int | None = None
    reader: str = "keras"
    keras_version: str | None = None
    notes: tuple[str, ...] = ()
    """What the reader assumed or fell back on, for the report."""
    input_shape: tuple[int | None, ...] | None = None
    """The model input's shape without the batch axis (None: unknown, e.g. weights only)."""
    embedding: Embedding | None = None
    hyper_parameters: tuple[tuple[str, bool | int | float | str], ...] = ()
    """A checkpoint's scalar hyper-parameters as stored (Lightning's ``hyper_parameters``)."""
    graph: ModelGraph | None = None
    """The whole model's layers, where the reader found them (for the numpy model replay)."""

    def layer_names(self) -> list[str]:
        """Distinct recurrent layer names in file order (a Bidirectional counts once)."""
        return list(dict.fromkeys(w.name for w in self.layers))
