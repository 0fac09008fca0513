"""What was read: a model's recurrent layers (placement and cell), its other layers."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from lstm_report.cells.base import GATE_TITLES, CellWeights, Kind
from lstm_report.cells.kinds import from_keras
from lstm_report.model.conv_layers import ConvRecurrentLayer
from lstm_report.model.graph import ModelGraph

GATES: tuple[str, ...] = ("i", "f", "c", "o")
"""Keras' LSTM gate order inside the concatenated kernel, recurrent kernel and bias (a
GRU's is z, r, h: iterate over a layer's ``gate_names``, never over this)."""

GATE_NAMES: dict[str, str] = GATE_TITLES
"""Gate letter -> name for LSTM (i, f, c, o) and GRU (z, r, h) gates alike."""


@dataclass(frozen=True, eq=False)
class RecurrentLayer:
    """One direction of one recurrent layer (an LSTM or a GRU, of any framework): where it
    sits in the model, and its ``cell``, the one source of truth for its weights.

    Keras readers give the layer's three arrays (``from_keras_arrays``), split into the
    gates of its kind; framework readers (PyTorch, ONNX, TFLite) give the cell they built
    (two biases per gate, a projection, peepholes). The Keras arrays (``kernel``,
    ``recurrent_kernel``, ``bias``) are derived from the cell, for Keras and the tests.
    """

    name: str
    """Path inside the model: ``lstm``, ``encoder/inner_lstm``, ``bi`` (a Bidirectional)."""
    direction: str
    """``forward`` or ``backward`` (the backward half of a Bidirectional, or go_backwards)."""
    cell: CellWeights
    """The layer's gates, in its kind's canonical order."""
    return_sequences: bool = False
    wrapper: str | None = None
    """``Bidirectional`` when the layer is one half of a wrapper."""
    reads_input: bool = False
    """True when the layer reads the model's input (directly or through masking/dropout)."""
    source: str | None = None
    """Path of the layer whose output this layer reads (None when it reads the model input)."""
    merge_mode: str | None = None
    """How a Bidirectional merges its halves (concat, sum, mul, ave), else None."""
    keras_class: str | None = None
    """``CuDNNLSTM``/``CuDNNGRU``: Keras 2 GPU weights converted to the plain layer's layout
    (None: the class is the cell's kind)."""
    framework: str = "Keras"
    """Who computes this layer: ``Keras``, ``PyTorch``, ``ONNX``, ``TFLite``."""
    reads_embedding: bool = False
    """Its input is the model's Embedding: the rows of W are embedding dimensions."""

    @classmethod
    def from_keras_arrays(
        cls,
        name: str,
        direction: str,
        kernel: np.ndarray,
        recurrent_kernel: np.ndarray,
        bias: np.ndarray | None,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        go_backwards: bool = False,
        return_sequences: bool = False,
        wrapper: str | None = None,
        reads_input: bool = False,
        unit_forget_bias: bool = True,
        source: str | None = None,
        merge_mode: str | None = None,
        kind: str = "LSTM",
        reset_after: bool | None = None,
        framework: str = "Keras",
        reads_embedding: bool = False,
    ) -> RecurrentLayer:
        """A Keras layer from its three arrays (AnalysisError if they are not its kind's).
        ``kind``: LSTM, GRU, or CuDNNLSTM/CuDNNGRU for Keras 2 GPU weights converted to the
        plain layer's layout; ``reset_after``: GRU only (see cells.CellWeights)."""
        cell_kind: Kind = "GRU" if kind.endswith("GRU") else "LSTM"
        cell = from_keras(
            cell_kind,
            kernel,
            recurrent_kernel,
            bias,
            name=f"{name} ({direction})" if wrapper else name,
            direction="backward" if go_backwards else "forward",
            activation=activation,
            recurrent_activation=recurrent_activation,
            reset_after=reset_after,
            unit_forget_bias=unit_forget_bias,
        )
        layer = cls(
            name=name,
            direction=direction,
            cell=cell,
            return_sequences=return_sequences,
            wrapper=wrapper,
            reads_input=reads_input,
            source=source,
            merge_mode=merge_mode,
            keras_class=None if kind == cell_kind else kind,
            framework=framework,
            reads_embedding=reads_embedding,
        )
        return layer._holding(kernel, recurrent_kernel, bias)

    def with_keras_arrays(
        self, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None
    ) -> RecurrentLayer:
        """The same layer with new Keras arrays (a snapshot during training)."""
        c = self.cell
        cell = from_keras(
            c.kind,
            kernel,
            recurrent_kernel,
            bias,
            name=c.name,
            direction=c.direction,
            activation=c.activation,
            recurrent_activation=c.recurrent_activation,
            reset_after=c.reset_after,
            unit_forget_bias=any(g.init_bias is not None for g in c.gates),
        )
        return replace(self, cell=cell)._holding(kernel, recurrent_kernel, bias)

    def _holding(
        self, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None
    ) -> RecurrentLayer:
        # The cell's gates are views of these arrays: they are the derived Keras arrays
        # already, kept instead of copies (and writes to them reach the cell, as before).
        self.__dict__.update(kernel=kernel, recurrent_kernel=recurrent_kernel, bias=bias)
        return self

    @cached_property
    def kernel(self) -> np.ndarray:
        """(input_dim, G·units): the gates' W side by side, as Keras stores them."""
        return np.concatenate([g.W for g in self.cell.gates], axis=1)

    @cached_property
    def recurrent_kernel(self) -> np.ndarray:
        """(output_dim, G·units): the gates' U side by side, as Keras stores them."""
        return np.concatenate([g.U for g in self.cell.gates], axis=1)

    @cached_property
    def bias(self) -> np.ndarray | None:
        """The biases in Keras' layout (cells.CellWeights.keras_bias), or None."""
        return self.cell.keras_bias()

    def __getstate__(self) -> dict[str, object]:
        # The cell is what is sent: pickled with it, the Keras arrays its gates are views of
        # would travel twice (a 1024-unit layer: 64 MiB instead of 32).
        state = dict(self.__dict__)
        for derived in ("kernel", "recurrent_kernel", "bias"):
            state.pop(derived, None)
        return state

    @property
    def kind(self) -> str:
        """``LSTM``, ``GRU``, or the Keras 2 GPU class it was converted from."""
        return self.keras_class or self.cell.kind

    @property
    def cell_kind(self) -> Kind:
        return self.cell.kind

    @property
    def activation(self) -> str:
        return self.cell.activation

    @property
    def recurrent_activation(self) -> str:
        return self.cell.recurrent_activation

    @property
    def go_backwards(self) -> bool:
        """The layer reads the sequence last to first."""
        return self.cell.direction == "backward"

    @property
    def reset_after(self) -> bool | None:
        """GRU only: where the reset gate acts (see cells.CellWeights.reset_after)."""
        return self.cell.reset_after

    @property
    def gate_names(self) -> tuple[str, ...]:
        return tuple(g.gate for g in self.cell.gates)

    @property
    def units(self) -> int:
        return self.cell.units

    @property
    def input_dim(self) -> int:
        return self.cell.input_dim

    @property
    def output_dim(self) -> int:
        """Size of the layer's output h: units, or the projection size."""
        return self.cell.output_dim

    @property
    def use_bias(self) -> bool:
        return any(g.b is not None or g.b_rec is not None for g in self.cell.gates)

    @property
    def params(self) -> int:
        return self.cell.params

    @property
    def label(self) -> str:
        """Human label: the name, plus the direction for a Bidirectional half."""
        return f"{self.name} ({self.direction})" if self.wrapper else self.name


@dataclass(frozen=True)
class OtherLayer:
    """A recurrent layer that is neither an LSTM, a GRU nor a ConvLSTM (SimpleRNN, a
    Bidirectional ConvLSTM, a PyTorch nn.RNN): listed in the report, not analysed."""

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
    layers: tuple[RecurrentLayer, ...]
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
    conv_layers: tuple[ConvRecurrentLayer, ...] = ()
    """Keras ConvLSTM1D/2D/3D layers (analysed apart: their kernels are convolutions)."""

    def layer_names(self) -> list[str]:
        """Distinct recurrent layer names in file order (a Bidirectional counts once)."""
        return list(dict.fromkeys(w.name for w in self.layers))


@dataclass(frozen=True, eq=False)
class RecurrentModel:
    """What a framework reader found in one file."""

    source: str
    """The file's name."""
    framework: str
    """``PyTorch state dict``, ``PyTorch checkpoint``, ``safetensors``, ``ONNX``."""
    cells: tuple[CellWeights, ...]
    other: tuple[str, ...] = ()
    """Recurrent layers found but not analysable (e.g. a plain nn.RNN), one line each:
    ``name: KIND (...), why``."""
    hyper_parameters: tuple[tuple[str, bool | int | float | str], ...] = ()
    """A checkpoint's scalar hyper-parameters (Lightning's ``hyper_parameters``), in order."""
    notes: tuple[str, ...] = ()
    """What the reader noticed about the file as a whole (e.g. what it read inertly)."""
    total_params: int | None = None
    """The model's parameters: the elements of every tensor of its weights (a state dict's
    every tensor, an ONNX graph's every stored tensor), recurrent or not."""
    sources: tuple[tuple[str, str], ...] = ()
    """(layer, the layer whose output it reads), where the file says so (ONNX, TFLite)."""
    graph: ModelGraph | None = None
    """The whole model to run, where the reader can give it."""
