"""Input importance measured on the probe: on the model's prediction wherever the whole
model runs, else on the output of its last recurrent layer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from lstm_report.analysis.importance import (
    occlusion_importance,
    sequences_for_work,
    token_importance,
)
from lstm_report.analysis.model_replay import ModelReplay, model_forward
from lstm_report.analysis.probing import KerasInputs, ProbeFlow
from lstm_report.errors import LstmReportError, first_line
from lstm_report.model.analyses import InputImportance, Target
from lstm_report.model.layers import ModelWeights

Forward = Callable[[np.ndarray], np.ndarray]
"""Probe inputs to what the importance is measured on."""


def measured_importance(
    weights: ModelWeights,
    probe: np.ndarray,
    names: Sequence[str] | None,
    run_model: KerasInputs | None = None,
    *,
    pad_token: int = 0,
    vocabulary: Sequence[str] | None = None,
) -> tuple[InputImportance | None, str | None]:
    """Occlusion importance on the probe, measured on the model's prediction wherever the
    whole model runs: replayed in numpy (a Keras graph, an ONNX graph), else by Keras
    (``run_model``, where it can load the file); otherwise on the output of the last
    recurrent layer, replayed in numpy, with ``target_reason`` saying why. Token models
    (integer probes) get ``per_token`` and ``per_step`` with ``pad_token`` as the blank.
    Returns the importance, or None and why it cannot be measured."""
    last = weights.layers[-1].name
    forward, reason = _prediction(weights, probe, run_model)
    target: Target = "model_output"
    layer = None
    if forward is None:
        target, layer = "lstm_output", last
        forward = _lstm_forward(weights, last)
        reason = f"measured on the output of {last!r}, not the model's prediction: {reason}"
    try:
        if probe.dtype.kind in "iu":
            imp = token_importance(
                forward, probe, pad=pad_token, target=target, layer=layer, names=vocabulary
            )
        else:
            imp = _feature_importance(forward, weights, probe, names, target, layer)
    except _Unreachable:
        return None, f"the input of LSTM {last!r} cannot be computed in numpy"
    except LstmReportError as exc:
        return None, f"the model could not be run on the probe: {first_line(exc)}"
    return replace(imp, target_reason=reason, probe_sequences=int(probe.shape[0])), None


def _prediction(
    weights: ModelWeights, probe: np.ndarray, run_model: KerasInputs | None
) -> tuple[Forward | None, str | None]:
    """What computes the model's prediction (None: nothing here can), and a reason: how
    the prediction is taken, or why it cannot be."""
    forward, stopped = model_forward(weights)
    reason: str | None = None
    if forward is not None:
        try:
            forward(probe[:2])
        except LstmReportError as exc:
            forward, stopped = None, first_line(exc)
        else:
            reason, stopped = stopped, None  # how the prediction was taken, if it says
    framework = weights.reader in ("onnx", "pytorch")
    if forward is None and run_model is not None:
        keras_model = run_model

        def by_keras(x: np.ndarray) -> np.ndarray:
            return keras_model(None, x)

        try:
            by_keras(probe[:2])  # can Keras load and run it? (LstmReportError if not)
        except LstmReportError as exc:
            reason = (
                f"{stopped}, and Keras could not run the model ({first_line(exc)})"
                if stopped
                else f"Keras could not run the model ({first_line(exc)})"
            )
        else:
            forward = by_keras
            reason = f"run by Keras: {stopped}" if stopped else "run by Keras"
    elif forward is None and framework:
        reason = stopped or "the file stores the recurrent layers, not the whole model"
    elif forward is None:
        reason = f"{stopped}; --reader keras runs the whole model with Keras" if stopped else None
    return forward, reason


def _feature_importance(
    forward: Forward,
    weights: ModelWeights,
    probe: np.ndarray,
    names: Sequence[str] | None,
    target: Target,
    layer: str | None,
) -> InputImportance:
    """Occlusion importance of each input feature of a real-valued probe."""
    features = probe.shape[2]
    if names is not None and len(names) == features:
        labels = tuple(names)
    else:
        labels = tuple(f"x{j}" for j in range(features))
    # Fewer sequences where the occlusion runs would exceed their work budget.
    cap = sequences_for_work(
        [w.cell for w in weights.layers], probe.shape[0], probe.shape[1], features
    )
    # The numpy replay restarts each occluded copy at its occluded step (cells.restart).
    copies = forward.for_copies if isinstance(forward, ModelReplay) else None
    return occlusion_importance(
        forward, probe, labels, target=target, layer=layer, max_sequences=cap, copies=copies
    )


def _lstm_forward(weights: ModelWeights, last: str) -> Forward:
    """The last recurrent layer's output on inputs, replayed in numpy (raises _Unreachable
    where its input cannot be computed in numpy)."""

    def forward(x: np.ndarray) -> np.ndarray:
        out = ProbeFlow(weights, x, 0, None, activity=False).output(last)
        if out is None:
            raise _Unreachable
        return out

    return forward


class _Unreachable(Exception):
    """The target layer's output needs layers numpy does not replay."""
