"""Keras ConvLSTM1D/2D/3D cells in numpy: the gates of the conv kernels, a replay, and what
can be said of them without data (keras/src/layers/rnn/conv_lstm.py, ``ConvLSTMCell.call``).

A rank-n ConvLSTM (n = 1, 2, 3) stores, channels last::

    kernel            kernel_size + (in_channels, 4F)     gates i, f, c, o on the last axis
    recurrent_kernel  kernel_size + (F, 4F)
    bias              (4F,)                                (unit_forget_bias: b_f starts at 1)

and computes, with * a convolution (the input's with the layer's strides, padding and
dilation; the state's always with stride 1 and "same" padding)::

    i = σ(x * K_i + b_i + h * R_i)      f, o likewise
    c = f ⊙ c_prev + i ⊙ tanh(x * K_c + b_c + h * R_c)
    h = o ⊙ tanh(c)

Each of the F filters is a unit with a spatial map. At rest (zero input and state) every
position of filter k keeps ``σ(b_f[k])`` of its cell state a step, so the resting
timescale τ = 1/(1 − σ(b_f)) is per filter, as for an LSTM unit. Singular values are
defined for each kernel tap's (in, F) or (F, F) matrix, not for the convolution as a whole
(that needs the input's spatial size): `tap_spectra` gives the largest one per tap.

The readers hold it in a model.conv_layers.ConvRecurrentLayer; analysis/conv_lstm.py
measures it for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lstm_report.cells.activations import activation_fn
from lstm_report.cells.base import LSTM_GATES
from lstm_report.errors import AnalysisError


@dataclass(frozen=True, eq=False)
class ConvGate:
    name: str
    K: np.ndarray
    """kernel_size + (in_channels, F)."""
    R: np.ndarray
    """kernel_size + (F, F)."""
    b: np.ndarray | None
    """(F,)."""


@dataclass(frozen=True, eq=False)
class ConvLSTMCell:
    """One Keras ConvLSTM layer's cell, split into its gates."""

    name: str
    gates: tuple[ConvGate, ...]
    strides: tuple[int, ...]
    padding: str
    """``valid`` or ``same`` (the input convolution's; the recurrent one is always same)."""
    dilation: tuple[int, ...]
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"

    @property
    def rank(self) -> int:
        return self.gates[0].K.ndim - 2

    @property
    def filters(self) -> int:
        return int(self.gates[0].K.shape[-1])

    def gate(self, name: str) -> ConvGate:
        return next(g for g in self.gates if g.name == name)


def from_keras_conv_lstm(
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    *,
    name: str,
    strides: Sequence[int] | int = 1,
    padding: str = "valid",
    dilation_rate: Sequence[int] | int = 1,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
) -> ConvLSTMCell:
    """A Keras ConvLSTM's three arrays as a cell; AnalysisError if they are not one's."""
    rank = kernel.ndim - 2
    if rank not in (1, 2, 3) or recurrent_kernel.ndim != kernel.ndim:
        raise AnalysisError(
            f"{name}: kernel {kernel.shape}, recurrent kernel {recurrent_kernel.shape} are not "
            "a ConvLSTM1D/2D/3D's"
        )
    four_f = kernel.shape[-1]
    f = four_f // 4
    if f == 0 or four_f != 4 * f or recurrent_kernel.shape[-2:] != (f, four_f):
        raise AnalysisError(
            f"{name}: kernel {kernel.shape} and recurrent kernel {recurrent_kernel.shape} are "
            "not kernel_size + (in, 4F), kernel_size + (F, 4F)"
        )
    if bias is not None and bias.shape != (four_f,):
        raise AnalysisError(f"{name}: bias {bias.shape} is not ({four_f},)")
    if padding not in ("valid", "same"):
        raise AnalysisError(f"{name}: padding {padding!r} is not valid or same")
    gates = tuple(
        ConvGate(
            name=g.name,
            K=kernel[..., k * f : (k + 1) * f],
            R=recurrent_kernel[..., k * f : (k + 1) * f],
            b=None if bias is None else bias[k * f : (k + 1) * f],
        )
        for k, g in enumerate(LSTM_GATES)
    )

    def per_axis(v: Sequence[int] | int) -> tuple[int, ...]:
        return (int(v),) * rank if isinstance(v, int) else tuple(int(x) for x in v)

    return ConvLSTMCell(
        name=name,
        gates=gates,
        strides=per_axis(strides),
        padding=padding,
        dilation=per_axis(dilation_rate),
        activation=activation,
        recurrent_activation=recurrent_activation,
    )


def conv(
    x: np.ndarray,
    w: np.ndarray,
    *,
    strides: Sequence[int],
    padding: str,
    dilation: Sequence[int],
) -> np.ndarray:
    """TensorFlow's convolution (a cross-correlation), channels last: x (batch, *space, in),
    w kernel_size + (in, out) -> (batch, *space', out). "same" pads as TF does, the extra
    row (if any) after."""
    rank = w.ndim - 2
    ks = w.shape[:rank]
    span = [(k - 1) * d + 1 for k, d in zip(ks, dilation)]
    if padding == "same":
        pads = []
        for size, s, sp in zip(x.shape[1 : 1 + rank], strides, span):
            out = -(-size // s)
            total = max((out - 1) * s + sp - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, [(0, 0), *pads, (0, 0)])
    windows = np.lib.stride_tricks.sliding_window_view(x, span, axis=tuple(range(1, 1 + rank)))
    # windows: (batch, *out_full, in, *span): keep every stride-th window, every dilation-th tap
    index = (
        (slice(None),)
        + tuple(slice(None, None, s) for s in strides)
        + (slice(None),)
        + tuple(slice(None, None, d) for d in dilation)
    )
    windows = windows[index]
    # move the taps before the channels: (batch, *out, *ks, in) then contract with w
    order = (0,) + tuple(range(1, 1 + rank)) + tuple(range(2 + rank, 2 + 2 * rank)) + (1 + rank,)
    patches = windows.transpose(order)
    axes = list(range(1 + rank, 2 + 2 * rank))
    return np.tensordot(patches, w, axes=(axes, list(range(rank + 1))))


def replay_conv_lstm(cell: ConvLSTMCell, x: np.ndarray, *, dtype: type = np.float64) -> np.ndarray:
    """Run the ConvLSTM on x (batch, steps, *space, in) from a zero state; returns every
    step's h (batch, steps, *space', F)."""
    act, rec = activation_fn(cell.activation), activation_fn(cell.recurrent_activation)
    if act is None or rec is None:
        raise AnalysisError(f"{cell.name}: cannot replay its activations in numpy")
    rank = cell.rank
    if x.ndim != rank + 3 or x.shape[-1] != cell.gates[0].K.shape[-2]:
        raise AnalysisError(f"{cell.name}: input shape {x.shape} does not fit the kernel")
    x = np.asarray(x, dtype=dtype)
    K: np.ndarray = np.concatenate([g.K for g in cell.gates], axis=-1).astype(dtype)
    R: np.ndarray = np.concatenate([g.R for g in cell.gates], axis=-1).astype(dtype)
    biases = [g.b for g in cell.gates if g.b is not None]
    b = np.concatenate(biases) if len(biases) == len(cell.gates) else None
    f = cell.filters
    zx = [
        conv(x[:, t], K, strides=cell.strides, padding=cell.padding, dilation=cell.dilation)
        for t in range(x.shape[1])
    ]
    h: np.ndarray = np.zeros(zx[0].shape[:-1] + (f,), dtype)
    c = np.zeros_like(h)
    out = []
    one = (1,) * rank
    for z_in in zx:
        z = z_in + conv(h, R, strides=one, padding="same", dilation=one)
        if b is not None:
            z = z + b.astype(dtype)
        i, fg = rec(z[..., :f]), rec(z[..., f : 2 * f])
        c = fg * c + i * act(z[..., 2 * f : 3 * f])
        h = rec(z[..., 3 * f :]) * act(c)
        out.append(h)
    return np.stack(out, axis=1)


def resting_forget(cell: ConvLSTMCell) -> np.ndarray:
    """Each filter's forget gate at rest, σ(b_f) (0.5 without bias)."""
    rec = activation_fn(cell.recurrent_activation)
    if rec is None:
        raise AnalysisError(f"{cell.name}: cannot evaluate {cell.recurrent_activation!r}")
    b = cell.gate("f").b
    return np.asarray(rec(np.zeros(cell.filters) if b is None else b.astype(np.float64)))


def tap_spectra(cell: ConvLSTMCell) -> dict[str, np.ndarray]:
    """For each gate's recurrent kernel, the largest singular value of each tap's (F, F)
    matrix, shaped kernel_size: where the recurrent convolution amplifies most."""
    result = {}
    for g in cell.gates:
        taps = g.R.reshape(-1, *g.R.shape[-2:]).astype(np.float64)
        top = np.linalg.svd(taps, compute_uv=False)[:, 0]
        result[g.name] = top.reshape(g.R.shape[:-2])
    return result
