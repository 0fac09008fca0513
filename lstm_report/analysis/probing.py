"""Feed probe data through a model's LSTMs: in numpy wherever the file lets it, else through
the ``KerasInputs`` the caller passes (readers.dispatch.keras_inputs: Keras runs there, not
here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from lstm_report.analysis.activity import probe_activity
from lstm_report.analysis.model_replay import ModelReplay, ReplayStopped
from lstm_report.cells.kinds import replay
from lstm_report.errors import LstmReportError
from lstm_report.model.layers import ModelWeights, RecurrentLayer
from lstm_report.model.mechanism import ProbeActivity

KerasInputs = Callable[[str | None, np.ndarray], np.ndarray]
"""(top-level layer name, model input) -> that layer's input, computed by Keras; for the
name None, the model's own output."""

MERGES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "concat": lambda f, b: np.concatenate([f, b], axis=-1),
    "sum": lambda f, b: f + b,
    "mul": lambda f, b: f * b,
    "ave": lambda f, b: (f + b) / 2.0,
}


@dataclass(frozen=True, eq=False)
class LayerRun:
    """A layer's activity on the probe, and the inputs it was fed (for verification)."""

    activity: ProbeActivity | None
    inputs: np.ndarray | None
    note: str | None = None


class ProbeFlow:
    """Computes, once each, every LSTM's input and output on the probe data."""

    def __init__(
        self,
        model: ModelWeights,
        x: np.ndarray,
        sequence: int,
        keras_inputs: KerasInputs | None,
        *,
        activity: bool = True,
    ) -> None:
        self.model = model
        self.x = x
        self.sequence = sequence
        self.keras_inputs = keras_inputs
        self.activity = activity
        """False: outputs only (no gate statistics), e.g. for the importance runs."""
        self._runs: dict[tuple[str, str], tuple[LayerRun, np.ndarray | None]] = {}
        self._inputs: dict[str, tuple[np.ndarray | None, str, str | None]] = {}

    def run(self, w: RecurrentLayer) -> LayerRun:
        return self._run(w, depth=0)[0]

    def output(self, name: str) -> np.ndarray | None:
        """What the layer ``name`` returns in Keras (both halves merged): its sequence, or
        with ``return_sequences=False`` its last step; None where numpy cannot compute it."""
        halves = [u for u in self.model.layers if u.name == name]
        if not halves:
            return None
        if all(u.return_sequences for u in halves):
            return self._output_of(halves, 0)
        lasts = []
        for u in halves:
            out = self._run(u, 0)[1]
            if out is None:
                return None
            lasts.append(out[:, -1])  # the last step processed (go_backwards: the first)
        if len(lasts) == 1:
            return lasts[0]
        merge = MERGES.get(halves[0].merge_mode or "concat")
        return None if merge is None else merge(lasts[0], lasts[1])

    def _run(self, w: RecurrentLayer, depth: int) -> tuple[LayerRun, np.ndarray | None]:
        key = (w.name, w.direction)
        if key not in self._runs:
            x, how, note = self._input_of(w, depth)
            if x is None:
                self._runs[key] = (LayerRun(None, None, note), None)
            elif not self.activity:
                out = replay(w.cell, x, dtype=np.float32, order="read").h
                self._runs[key] = (LayerRun(None, x), out)
            else:
                activity, out = probe_activity(w, x, self.sequence)
                if how == "keras":
                    activity = _with_source(activity, "keras")
                self._runs[key] = (LayerRun(activity, x), out)
        return self._runs[key]

    def _input_of(self, w: RecurrentLayer, depth: int) -> tuple[np.ndarray | None, str, str | None]:
        if w.reads_input:
            return self.x, "numpy", None
        if w.name not in self._inputs:
            self._inputs[w.name] = self._compute_input(w, depth)
        return self._inputs[w.name]

    def _compute_input(
        self, w: RecurrentLayer, depth: int
    ) -> tuple[np.ndarray | None, str, str | None]:
        src = w.source
        emb = self.model.embedding
        if emb is not None and src == emb.name and emb.table is not None:
            # Token ids through the Embedding's lookup table, as Keras computes it.
            return np.asarray(emb.table, np.float32)[self.x], "numpy", None
        upstream = [u for u in self.model.layers if u.name == src]
        if upstream and depth < 100 and all(u.return_sequences for u in upstream):
            out = self._output_of(upstream, depth + 1)
            if out is not None:
                return out, "numpy", None
        from_graph = self._graph_input(w)
        if from_graph is not None:
            return from_graph, "numpy", None
        if self.keras_inputs is None:
            if w.framework != "Keras":
                if src is not None:
                    why = f"its input is the output of {src}, whose input the file does not record"
                else:
                    why = (
                        f"its input is not the output of a recurrent layer in the {w.framework} "
                        "file, and what feeds it cannot be computed from the file"
                    )
                return None, "", why
            return None, "", "its input is not the output of an LSTM and Keras is not available"
        if "/" in w.name:
            return None, "", "it sits inside a nested model behind a non-LSTM layer"
        try:
            return np.asarray(self.keras_inputs(w.name, self.x), np.float32), "keras", None
        except LstmReportError as exc:
            return None, "", str(exc)

    def _graph_input(self, w: RecurrentLayer) -> np.ndarray | None:
        """The layer's input computed in numpy from the model's graph (front layers such as
        Normalization or Conv1D), or None where the graph cannot compute it."""
        graph = self.model.graph
        if graph is None or graph.onnx is not None:
            return None
        layer = next((g for g in graph.layers if g.name == w.name), None)
        if layer is None or len(layer.inputs) != 1:
            return None
        src = layer.inputs[0]
        try:
            value = ModelReplay(self.model, dtype=np.float32).values(self.x, src)[src][0]
        except ReplayStopped:
            return None
        return np.asarray(value, np.float32)

    def _output_of(self, halves: list[RecurrentLayer], depth: int) -> np.ndarray | None:
        outs = []
        for u in halves:
            out = self._run(u, depth)[1]
            if out is None:
                return None
            outs.append(out)
        if len(halves) == 1:
            return outs[0]
        fwd, bwd = outs
        merge = MERGES.get(halves[0].merge_mode or "concat")
        # Bidirectional flips the backward half's outputs back into input time order.
        return None if merge is None else merge(fwd, bwd[:, ::-1])


def _with_source(a: ProbeActivity, source: str) -> ProbeActivity:
    return replace(a, source=source)
