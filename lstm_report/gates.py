"""Pure numpy: split Keras' concatenated LSTM arrays by gate, and replay the layer.

Keras stores one LSTM as three arrays, gates concatenated along the last axis in the
order i (input), f (forget), c (candidate), o (output)::

    kernel            (input_dim, 4*units)    W = [W_i | W_f | W_c | W_o]
    recurrent_kernel  (units,     4*units)    U = [U_i | U_f | U_c | U_o]
    bias              (4*units,)              b = [b_i | b_f | b_c | b_o]

and computes row vectors times matrices (x_t @ W_g), where most texts write W_g x_t.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lstm_report.errors import AnalysisError
from lstm_report.model import GATES, LSTMWeights


@dataclass(frozen=True, eq=False)
class GateWeights:
    """One gate's slice of the three arrays (Keras orientation)."""

    gate: str
    W: np.ndarray
    """(input_dim, units): input weights."""
    U: np.ndarray
    """(units, units): recurrent weights."""
    b: np.ndarray | None
    """(units,), or None for use_bias=False."""


def check_shapes(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None, where: str
) -> int:
    """Return the number of units, or raise AnalysisError if the arrays are not an LSTM's."""
    if recurrent_kernel.ndim != 2:
        raise AnalysisError(
            f"{where}: recurrent kernel must be 2-D, got shape {recurrent_kernel.shape}"
        )
    units = recurrent_kernel.shape[0]
    if units == 0 or recurrent_kernel.shape[1] != 4 * units:
        raise AnalysisError(
            f"{where}: recurrent kernel shape {recurrent_kernel.shape} is not (units, 4*units)"
        )
    if kernel.ndim != 2 or kernel.shape[1] != 4 * units:
        raise AnalysisError(
            f"{where}: kernel shape {kernel.shape} is not (input_dim, {4 * units}) "
            f"for {units} units"
        )
    if bias is not None and bias.shape != (4 * units,):
        raise AnalysisError(f"{where}: bias shape {bias.shape} is not ({4 * units},)")
    return int(units)


def split_gates(
    kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray | None
) -> tuple[GateWeights, ...]:
    """Split the concatenated arrays into W_g, U_g, b_g for g in i, f, c, o (views, no copies)."""
    u = check_shapes(kernel, recurrent_kernel, bias, "LSTM")
    return tuple(
        GateWeights(
            gate=g,
            W=kernel[:, k * u : (k + 1) * u],
            U=recurrent_kernel[:, k * u : (k + 1) * u],
            b=None if bias is None else bias[k * u : (k + 1) * u],
        )
        for k, g in enumerate(GATES)
    )


def layer_gates(w: LSTMWeights) -> tuple[GateWeights, ...]:
    return split_gates(w.kernel, w.recurrent_kernel, w.bias)


# --- activations, as Keras 3 defines them -------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Two branches so neither exp overflows.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def _hard_sigmoid(x: np.ndarray) -> np.ndarray:
    # Keras 3: relu6(x + 3) / 6. (Keras 2 used clip(0.2 x + 0.5, 0, 1): see hard_sigmoid_k2.)
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


def _hard_sigmoid_k2(x: np.ndarray) -> np.ndarray:
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "hard_sigmoid": _hard_sigmoid,
    "hard_sigmoid_keras2": _hard_sigmoid_k2,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "linear": lambda x: x,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": _softplus,
    "elu": lambda x: np.where(x >= 0, x, np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x: (
        1.0507009873554805 * np.where(x >= 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0.0)))
    ),
    "exponential": np.exp,
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "hard_tanh": lambda x: np.clip(x, -1.0, 1.0),
    "hard_silu": lambda x: x * _hard_sigmoid(x),
    "hard_swish": lambda x: x * _hard_sigmoid(x),
    "mish": lambda x: x * np.tanh(_softplus(x)),
}

ACTIVATION_FORMULAS: dict[str, str] = {
    "sigmoid": "σ(z) = 1 / (1 + e^−z)",
    "tanh": "tanh(z)",
    "hard_sigmoid": "clip(z/6 + 1/2, 0, 1)  (Keras 3)",
    "hard_sigmoid_keras2": "clip(0.2·z + 1/2, 0, 1)  (Keras 2)",
    "relu": "max(z, 0)",
    "linear": "z",
}


def activation_fn(name: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The numpy function for a Keras activation name, or None if we cannot replay it."""
    return ACTIVATIONS.get(name)


@dataclass(frozen=True, eq=False)
class Trace:
    """A replayed LSTM over a batch, in processing order: arrays are (batch, steps, units)."""

    h: np.ndarray
    c: np.ndarray
    gates: dict[str, np.ndarray]
    """Post-activation gate values: i, f, o in the recurrent activation's range; c = act(z_c)."""


def replay(
    w: LSTMWeights, x: np.ndarray, *, keep_gates: bool = True, dtype: type = np.float64
) -> Trace:
    """Run the LSTM in numpy on x (batch, steps, input_dim) from zero state, as Keras does.

    Built only from the per-gate matrices, so agreement with Keras proves the layout.
    With go_backwards the steps are read last to first and the outputs stay in that order.
    """
    act = activation_fn(w.activation)
    rec = activation_fn(w.recurrent_activation)
    if act is None or rec is None:
        missing = w.activation if act is None else w.recurrent_activation
        raise AnalysisError(f"{w.label}: cannot replay activation {missing!r} in numpy")
    if x.ndim != 3 or x.shape[2] != w.input_dim:
        raise AnalysisError(
            f"{w.label}: input shape {x.shape} is not (batch, steps, {w.input_dim})"
        )
    gates = layer_gates(w)
    n, steps, _ = x.shape
    u = w.units
    xs = x[:, ::-1, :] if w.go_backwards else x
    xs = np.asarray(xs, dtype=dtype)
    # Put the per-gate matrices side by side once, so each step is one matrix product.
    W_all: np.ndarray = np.concatenate([g.W for g in gates], axis=1).astype(dtype)
    U_all: np.ndarray = np.concatenate([g.U for g in gates], axis=1).astype(dtype)
    zx = xs @ W_all  # the input projections of all steps at once
    if w.bias is not None:
        zx += np.concatenate([g.b for g in gates if g.b is not None]).astype(dtype)
    h: np.ndarray = np.zeros((n, u), dtype)
    c: np.ndarray = np.zeros((n, u), dtype)
    hs: np.ndarray = np.empty((n, steps, u), dtype)
    cs: np.ndarray = np.empty((n, steps, u), dtype)
    keep: dict[str, np.ndarray] = (
        {g: np.empty((n, steps, u), dtype) for g in GATES} if keep_gates else {}
    )
    for t in range(steps):
        z = zx[:, t] + h @ U_all
        i = rec(z[:, :u])
        f = rec(z[:, u : 2 * u])
        cand = act(z[:, 2 * u : 3 * u])
        o = rec(z[:, 3 * u :])
        c = f * c + i * cand
        h = o * act(c)
        hs[:, t] = h
        cs[:, t] = c
        if keep_gates:
            keep["i"][:, t], keep["f"][:, t], keep["c"][:, t], keep["o"][:, t] = i, f, cand, o
    return Trace(h=hs, c=cs, gates=keep)
