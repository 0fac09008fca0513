"""The one stage that needs Keras: prove the decomposition on the model itself, numpy
replay vs a Keras LSTM layer with the same settings and arrays (Keras imported lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lstm_report.analysis.layer import KEPT_SEQUENCES as MAX_SEQUENCES
from lstm_report.cells.kinds import replay
from lstm_report.errors import LstmReportError, first_line
from lstm_report.model.analyses import LayerAnalysis, ModelAnalysis
from lstm_report.model.layers import RecurrentLayer
from lstm_report.model.stats import Verification
from lstm_report.readers.keras.load import import_keras, keras_calls

FRAMEWORK_NOTE = (
    "there is no Keras layer to compare a {} layer with here; the numpy replay of this "
    "layout is verified against the framework's own output in lstm-report's test suite"
)


def random_inputs(w: RecurrentLayer, *, sequences: int = 8, steps: int = 12) -> np.ndarray:
    """A seeded random batch shaped like the layer's input, for when there is no probe."""
    rng = np.random.default_rng(20151119)
    return rng.standard_normal((sequences, steps, w.input_dim)).astype(np.float32)


def verify(w: RecurrentLayer, x: np.ndarray, inputs: str, tolerance: float) -> Verification:
    """Run a Keras LSTM or GRU with this layer's settings and arrays, and the numpy replay,
    on x. A layer of another framework has no Keras twin: its layout is proven against that
    framework's own output in lstm-report's test suite instead (tests/fixtures/frameworks)."""
    x = np.asarray(x[:MAX_SEQUENCES], np.float32)
    if w.framework != "Keras":
        return Verification(None, inputs, tolerance, error=FRAMEWORK_NOTE.format(w.framework))
    try:
        keras = import_keras()  # Keras itself, imported here: only verification needs it
    except LstmReportError as exc:
        return Verification(None, inputs, tolerance, error=f"Keras is not available ({exc})")
    try:
        with keras_calls():
            expected = _keras_output(keras, w, x)
    except Exception as exc:  # an activation Keras 3 does not know, for example
        why = first_line(exc)
        return Verification(None, inputs, tolerance, error=f"Keras cannot run this layer: {why}")
    try:
        got = replay(w.cell, x, order="read").h
    except LstmReportError as exc:
        return Verification(None, inputs, tolerance, error=str(exc))
    return Verification(float(np.max(np.abs(got - expected))), inputs, tolerance)


def _keras_output(keras: Any, w: RecurrentLayer, x: np.ndarray) -> np.ndarray:
    """The output sequence of a Keras layer with this layer's settings and arrays."""
    extra = {} if w.cell_kind == "LSTM" else {"reset_after": bool(w.cell.reset_after)}
    layer = getattr(keras.layers, w.cell_kind)(
        w.units,
        activation=w.activation,
        recurrent_activation=w.recurrent_activation,
        use_bias=w.use_bias,
        go_backwards=w.go_backwards,
        return_sequences=True,
        **extra,
    )
    layer.build((None, None, w.input_dim))
    arrays = [w.kernel, w.recurrent_kernel] + ([w.bias] if w.bias is not None else [])
    layer.set_weights([np.asarray(a, np.float32) for a in arrays])
    return np.asarray(layer(x), np.float64)


def verify_layer(la: LayerAnalysis, tolerance: float) -> Verification | None:
    """Replay the layer against Keras on its probe inputs, else random ones (None for
    non-finite weights: there is no output to compare)."""
    if any(st.W.nonfinite + st.U.nonfinite for st in la.gates):
        return None
    w = la.weights
    if la.probe_inputs is not None:
        return verify(w, la.probe_inputs, "probe", tolerance)
    return verify(w, random_inputs(w), "random", tolerance)


def verify_model(ma: ModelAnalysis, tolerance: float) -> tuple[Verification | None, ...]:
    """Every layer of a model verified against Keras, in order; the analysis adds the
    findings (analysis.layer.with_verifications), computed once."""
    return tuple(verify_layer(la, tolerance) for la in ma.layers)
