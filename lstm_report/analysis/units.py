"""Unit ablation of each layer, on the model's prediction where the rest of the model
replays in numpy, else on the layer's own output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from lstm_report.analysis.ablation import ablation_fits, unit_ablation
from lstm_report.analysis.model_replay import ModelReplay, replay_problem
from lstm_report.analysis.state_map import step_macs
from lstm_report.errors import AnalysisError, LstmReportError, first_line
from lstm_report.model.analyses import LayerAnalysis
from lstm_report.model.layers import ModelWeights, RecurrentLayer
from lstm_report.model.mechanism import UnitAblation

ModelHead = Callable[[np.ndarray], np.ndarray]
"""A layer's h sequences (batch, steps, h), in input time order, to the model's prediction."""

UNITS_REASON = "the whole model is not replayed in numpy here"


@dataclass(frozen=True)
class Head:
    """The rest of the model after a layer, replayed, and its multiply-adds per sequence."""

    run: ModelHead
    work: float


def downstream_work(weights: ModelWeights, w: RecurrentLayer, steps: int) -> float:
    """Multiply-adds per sequence of the recurrent layers after ``w`` in the model (both
    their products, x·W and h·U, at every step): what dominates a replay of the rest."""
    names = [v.name for v in weights.layers]
    if w.name not in names:
        return 0.0
    last = len(names) - 1 - names[::-1].index(w.name)
    return float(steps * sum(step_macs(v.cell) for v in weights.layers[last + 1 :]))


def layer_units(
    la: LayerAnalysis, model: Head | None = None, why: str | None = None
) -> UnitAblation | None:
    """Unit ablation of the layer on the probe inputs it keeps: on the model's prediction
    where ``model`` (model_heads) replays it, else on the layer's own output (what it
    returns: the sequence, or the last step processed), ``why`` saying why not."""
    x, w = la.probe_inputs, la.weights
    if x is None or la.dynamics is None or x.ndim != 3 or x.shape[1] == 0:
        return None
    backward = w.cell.direction == "backward"

    def own(h: np.ndarray) -> np.ndarray:
        if w.return_sequences:
            return h.reshape(h.shape[0], -1)
        return h[:, 0] if backward else h[:, -1]

    t = la.timescales
    tau = None if t is None else (t.probe_tau if t.probe_tau is not None else t.resting_tau)
    saturated = None
    if la.activity is not None and w.cell.P is None:
        saturated = np.max([np.add(g.unit_left, g.unit_right) for g in la.activity.gates], axis=0)
    if model is not None and not ablation_fits(w.cell, model.work):
        why = (
            f"the rest of the model ({_count(model.work)} multiply-adds a sequence) is too "
            "large to replay once per unit"
        )
        model = None
    head: ModelHead = own
    target = "layer_output"
    reason: str | None = f"measured on the layer's own output: {why or UNITS_REASON}"
    work = 0.0
    if model is not None:
        head, target, reason, work = model.run, "model_output", None, model.work
    try:
        return unit_ablation(
            w.cell,
            x,
            head,
            target=target,
            reason=reason,
            tau=tau,
            saturated=saturated,
            head_work=work,
        )
    except AnalysisError as exc:
        if model is None:
            return None
        return layer_units(la, None, f"the model's replay failed ({first_line(exc)})")


def model_heads(
    weights: ModelWeights, layers: Sequence[LayerAnalysis], probe: np.ndarray | None
) -> tuple[list[Head | None], list[str | None]]:
    """Per layer, what computes the model's prediction from that layer's output with the
    rest of the model replayed in numpy (None where it cannot), and why not."""
    none: list[Head | None] = [None] * len(layers)
    g = weights.graph
    if probe is None or g is None or g.onnx is not None:
        why = (
            "the model's prediction is replayed for unit ablation only from a Keras graph"
            if g is not None
            else "the file stores no model graph to replay"
        )
        return none, [why] * len(layers)
    problem = replay_problem(weights)
    if problem is not None:
        layer, stop = problem
        return none, [f"numpy stops at layer {layer!r}: {stop}" if layer else stop] * len(layers)
    replay = ModelReplay(weights, dtype=np.float32)
    heads: list[Head | None] = []
    whys: list[str | None] = []
    for la in layers:
        w = la.weights
        x = la.probe_inputs
        if w.wrapper is not None:
            heads.append(None)
            whys.append("one half of a Bidirectional: its ablation is measured on its own half")
            continue
        if x is None:
            heads.append(None)
            whys.append("no probe inputs")
            continue
        node = replay.by_name.get(w.name)
        try:
            vals = replay.values(probe[:2], w.name)
        except LstmReportError as exc:
            heads.append(None)
            whys.append(f"the replay stops ({first_line(exc)})")
            continue
        if (
            node is None
            or vals[w.name][1] is not None
            or any(vals[src][1] is not None for src in node.inputs if src in vals)
        ):
            heads.append(None)
            whys.append("its steps are masked, which the ablation replay does not follow")
            continue
        work = downstream_work(weights, w, int(x.shape[1]))
        heads.append(Head(_head(replay, w, probe[: x.shape[0]]), work))
        whys.append(None)
    return heads, whys


def _head(replay: ModelReplay, w: RecurrentLayer, x_model: np.ndarray) -> ModelHead:
    backward = w.cell.direction == "backward"
    n = x_model.shape[0]
    output = replay.graph.output

    def head(hs: np.ndarray) -> np.ndarray:
        k = hs.shape[0] // n
        if not w.return_sequences:
            out = hs[:, 0] if backward else hs[:, -1]
        else:
            out = hs[:, ::-1] if backward else hs  # a lone go_backwards: in reading order
        xs = np.concatenate([x_model] * k) if k > 1 else x_model
        y = replay.values(xs, output, given={w.name: (out, None)})[output][0]
        return np.asarray(y).reshape(hs.shape[0], -1)

    return head


def _count(n: float) -> str:
    """4,032; 839 million."""
    return f"{n / 1e6:,.0f} million" if n >= 1e7 else f"{n:,.0f}"
