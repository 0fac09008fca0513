"""Pure numpy: a whole Keras model, replayed from the graph its reader found (model_graph).

Each layer computes what Keras computes at inference (dropout and noise are the identity),
with Keras' mask semantics: an Embedding with ``mask_zero`` or a Masking layer marks steps,
which an LSTM or GRU skips (state and output carried over; zeros in a Bidirectional's
sequences), which GlobalAveragePooling1D leaves out of its mean, and which every other
layer that would see a mask refuses rather than guess. The recurrent layers run from their
RecurrentLayer (cells.replay), so the report's cells are what predicts.

What numpy cannot compute raises ReplayStopped naming the layer.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np

from lstm_report.analysis.keras_layers import (
    SIMPLE_LAYERS,
    activation_of,
    dense,
    global_pool,
    merge,
)
from lstm_report.analysis.onnx_replay import onnx_forward
from lstm_report.cells.base import CellTrace
from lstm_report.cells.kinds import replay as replay_cell
from lstm_report.cells.restart import replay_restarted
from lstm_report.errors import AnalysisError
from lstm_report.model.graph import IDENTITY_LAYERS, GraphLayer, ModelGraph
from lstm_report.model.layers import ModelWeights, RecurrentLayer

IDENTITY = IDENTITY_LAYERS
"""Layers that return their input at inference."""

KEEPS_MASK = IDENTITY | {
    "Dense",
    "TimeDistributed",
    "Activation",
    "ReLU",
    "Softmax",
    "LayerNormalization",
    "BatchNormalization",
}
"""Layers that pass a mask on unchanged, computing each step alone."""

Value = tuple[np.ndarray, np.ndarray | None]
"""A layer's output and its mask (batch, steps) or None."""


class ReplayStopped(AnalysisError):
    """numpy cannot compute the model's output: ``layer`` (None: the graph as a whole)."""

    def __init__(self, message: str, layer: str | None = None) -> None:
        super().__init__(message)
        self.layer = layer


def replay_problem(weights: ModelWeights) -> tuple[str | None, str] | None:
    """(layer, why) numpy cannot replay the whole model; None when it can."""
    g = weights.graph
    if g is None:
        return None, "the file stores no model graph that numpy can follow"
    if g.onnx is not None:
        return None
    if g.stop is not None:
        return g.stop_layer, g.stop
    names = {w.name for w in weights.layers}
    for layer in g.layers:
        if layer.class_name in ("LSTM", "GRU", "Bidirectional") and layer.name not in names:
            return layer.name, f"{layer.class_name} {layer.name!r} was not read as an LSTM or GRU"
    return None


class ModelReplay:
    """Computes a Keras model's layers on inputs, in numpy."""

    def __init__(self, weights: ModelWeights, *, dtype: type = np.float64) -> None:
        if weights.graph is None or weights.graph.onnx is not None:
            raise ReplayStopped("the file stores no Keras model graph")
        self.graph: ModelGraph = weights.graph
        self.dtype = dtype
        self.halves: dict[str, list[RecurrentLayer]] = {}
        for w in weights.layers:
            self.halves.setdefault(w.name, []).append(w)
        self.by_name = {layer.name: layer for layer in self.graph.layers}
        self._record: dict[tuple[str, str], tuple[np.ndarray, CellTrace]] | None = None
        self._bases: Mapping[tuple[str, str], tuple[np.ndarray, CellTrace]] | None = None
        self._rows: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The model's prediction on ``x``: the replay as a forward."""
        return self.output(x)

    def for_copies(self, probe: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """The prediction on batches of changed copies of ``probe``, row r a copy of probe
        row r % len(probe) (whole copies, as occlusion makes them). The probe is replayed
        once, keeping every forward recurrent layer's input and states; in a batch each
        such layer restarts every row from the probe's state before the row's first
        differing step (cells.restart). Masked layers and backward halves replay in full."""
        bases: dict[tuple[str, str], tuple[np.ndarray, CellTrace]] = {}
        recorder = copy.copy(self)
        recorder._record = bases
        recorder.output(probe)
        n = probe.shape[0]

        def forward(x: np.ndarray) -> np.ndarray:
            if n == 0 or x.shape[0] % n:
                return self.output(x)
            runner = copy.copy(self)
            runner._bases, runner._rows = bases, np.arange(x.shape[0]) % n
            return runner.output(x)

        return forward

    def output(self, x: np.ndarray) -> np.ndarray:
        """The model's prediction on ``x`` (first axis the batch)."""
        return self.values(x, self.graph.output)[self.graph.output][0]

    def values(
        self, x: np.ndarray, *wanted: str, given: Mapping[str, Value] | None = None
    ) -> dict[str, Value]:
        """The outputs of the layers ``wanted`` and of every layer before them; a layer in
        ``given`` returns that value instead (what unit ablation substitutes)."""
        given = given or {}
        need = self._needed(wanted, stop=given)
        out: dict[str, Value] = {"": (self._model_input(x), None)}
        for layer in self.graph.layers:
            if layer.name not in need:
                continue
            if layer.name in given:
                out[layer.name] = given[layer.name]
                continue
            if self.graph.stop_layer == layer.name:
                raise ReplayStopped(self.graph.stop or layer.name, layer.name)
            args: list[Value] = []
            for src in layer.inputs or ("",):
                if src not in out:
                    raise ReplayStopped(f"{layer.name!r} reads {src!r}, not computed before it")
                args.append(out[src])
            if layer.mask_from is not None:  # the mask Keras 3 recorded for this call
                if layer.mask_from not in out:
                    raise ReplayStopped(f"{layer.name!r}'s mask is not computed before it")
                args[0] = (args[0][0], np.asarray(out[layer.mask_from][0], bool))
            try:
                out[layer.name] = self._layer(layer, args)
            except ReplayStopped:
                raise
            except (ValueError, IndexError, KeyError, TypeError, AnalysisError) as exc:
                raise ReplayStopped(
                    f"{layer.class_name} {layer.name!r} cannot be computed in numpy: {exc}",
                    layer.name,
                ) from None
        return out

    def _model_input(self, x: np.ndarray) -> np.ndarray:
        return x if x.dtype.kind in "iu" else np.asarray(x, self.dtype)

    def _needed(self, wanted: Sequence[str], stop: Collection[str] = ()) -> set[str]:
        need: set[str] = set()
        todo = [w for w in wanted if w]
        while todo:
            name = todo.pop()
            if name in need:
                continue
            layer = self.by_name.get(name)
            if layer is None:
                raise ReplayStopped(f"no layer {name!r} in the model graph")
            need.add(name)
            if name in stop:  # given: what it reads is not needed for it
                continue
            todo.extend(s for s in layer.inputs if s)
            if layer.mask_from:
                todo.append(layer.mask_from)
        return need

    def _layer(self, layer: GraphLayer, args: list[Value]) -> Value:
        cls, cfg, wts = layer.class_name, layer.config, layer.weights
        if cls in ("Concatenate", "Add", "Multiply", "Average", "Subtract"):
            if any(m is not None for _, m in args):
                raise ReplayStopped(f"{cls} {layer.name!r} merges masked inputs", layer.name)
            return merge(cls, [a for a, _ in args], cfg), None
        if cls == "NotEqual":
            return np.asarray(args[0][0]) != float(cfg["value"]), None
        if len(args) != 1:
            raise ReplayStopped(f"{cls} {layer.name!r} reads {len(args)} inputs", layer.name)
        x, mask = args[0]
        if mask is not None and cls not in KEEPS_MASK and cls not in _MASK_AWARE:
            raise ReplayStopped(
                f"{cls} {layer.name!r} receives a mask, which numpy does not replay for it",
                layer.name,
            )
        if cls in IDENTITY:
            return x, mask
        if cls == "Embedding":
            table: np.ndarray = np.asarray(wts["embeddings"], self.dtype)
            ids = np.asarray(x).astype(np.int64)
            if ids.min(initial=0) < 0 or ids.max(initial=0) >= table.shape[0]:
                raise ValueError(f"token ids outside 0..{table.shape[0] - 1}")
            return table[ids], (ids != 0) if cfg.get("mask_zero") is True else None
        if cls == "Masking":
            value = float(cfg.get("mask_value", 0.0))
            keep = np.any(x != value, axis=-1)
            return x * keep[..., None], keep
        if cls in ("LSTM", "GRU", "Bidirectional"):
            return self._recurrent(layer, x, mask)
        if cls == "GlobalAveragePooling1D":
            return global_pool(x, mask, cfg, average=True), None
        if cls == "GlobalMaxPooling1D":
            return global_pool(x, None, cfg, average=False), None
        if cls == "TimeDistributed":
            return dense(x, wts, activation_of(cfg.get("layer"))), mask
        return SIMPLE_LAYERS[cls](x, wts, cfg), mask

    def _recurrent(self, layer: GraphLayer, x: np.ndarray, mask: np.ndarray | None) -> Value:
        halves = self.halves.get(layer.name)
        if not halves:
            raise ReplayStopped(f"{layer.name!r} was not read as an LSTM or GRU", layer.name)
        cfg = layer.config
        inner = cfg.get("layer") if layer.class_name == "Bidirectional" else None
        if isinstance(inner, Mapping) and isinstance(inner.get("config"), Mapping):
            inner_cfg: Mapping[str, Any] = inner["config"]
        else:
            inner_cfg = cfg
        if inner_cfg.get("return_state") or cfg.get("return_state"):
            raise ReplayStopped(f"{layer.name!r} returns its states", layer.name)
        outs = []
        for w in sorted(halves, key=lambda u: u.direction != "forward"):
            t = self._replay_half(w, np.asarray(x, self.dtype), mask)
            if not w.return_sequences:
                outs.append(t.h_last)
            elif w.wrapper is None and w.cell.direction == "backward":
                outs.append(t.h[:, ::-1])  # a lone go_backwards layer: in reading order
            else:
                outs.append(t.h)
        seq = halves[0].return_sequences
        if len(outs) == 1:
            return outs[0], mask if seq else None
        if seq and mask is not None:  # Bidirectional sets zero_output_for_mask
            outs = [o * mask[..., None] for o in outs]
        merge = halves[0].merge_mode or "concat"
        merged = {
            "concat": lambda: np.concatenate(outs, axis=-1),
            "sum": lambda: outs[0] + outs[1],
            "mul": lambda: outs[0] * outs[1],
            "ave": lambda: (outs[0] + outs[1]) / 2.0,
        }.get(merge)
        if merged is None:
            raise ReplayStopped(f"{layer.name!r} has merge_mode {merge!r}", layer.name)
        return merged(), mask if seq else None

    def _replay_half(self, w: RecurrentLayer, x: np.ndarray, mask: np.ndarray | None) -> CellTrace:
        """One direction of a recurrent layer on x: restarted from the probe's states where
        this replay runs copies of it (for_copies), recorded where it runs the probe."""
        key = (w.name, w.cell.direction)
        if mask is None and self._bases is not None and self._rows is not None:
            base = self._bases.get(key)
            if base is not None and base[0].shape[1:] == x.shape[1:]:
                return replay_restarted(w.cell, x, base[0], base[1], self._rows, dtype=self.dtype)
        trace = replay_cell(w.cell, x, dtype=self.dtype, mask=mask)
        if self._record is not None and mask is None:
            self._record[key] = (x, trace)
        return trace


_MASK_AWARE = frozenset({"LSTM", "GRU", "Bidirectional", "GlobalAveragePooling1D", "Masking"})


def model_forward(
    weights: ModelWeights,
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str | None]:
    """What computes the model's prediction in numpy (and a note on how, or None), or None
    and the sentence saying which layer stopped the replay (None where there is no graph
    to follow at all)."""
    g = weights.graph
    if g is None:
        if weights.reader == "keras":
            return None, None
        return None, "the file stores no model graph to replay"
    if g.onnx is not None:
        return onnx_forward(g)
    problem = replay_problem(weights)
    if problem is not None:
        layer, why = problem
        return None, f"numpy stops at layer {layer!r}: {why}" if layer else f"numpy stops: {why}"
    return ModelReplay(weights, dtype=np.float32), None
