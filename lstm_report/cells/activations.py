"""Activations as Keras 3 defines them, in numpy, by their Keras names."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# --- activations, as Keras 3 defines them -------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # σ(x) = ½·tanh(x/2) + ½: never overflows, and within 1e-16 (float64) or 6e-8 (float32)
    # of σ in absolute terms, as accurate as 1/(1 + e^−x) (measured against long double),
    # and 8x faster in float32 (numpy's tanh is one vectorised pass; exp took six).
    y = np.tanh(np.multiply(x, 0.5))
    y *= 0.5
    y += 0.5
    return np.asarray(y)


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


# --- their derivatives, for the cells' Jacobians (cells/jacobian.py) ----------------------


def _sigmoid_grad(x: np.ndarray) -> np.ndarray:
    s = _sigmoid(x)
    return s * (1.0 - s)


def _inside(x: np.ndarray, low: float, high: float, slope: float) -> np.ndarray:
    """``slope`` where low < x < high, else 0: the derivative of a clip (0 on its kinks)."""
    return np.where((x > low) & (x < high), slope, 0.0)


def _hard_sigmoid_grad(x: np.ndarray) -> np.ndarray:
    return _inside(x, -3.0, 3.0, 1.0 / 6.0)


def _softplus_grad(x: np.ndarray) -> np.ndarray:
    return _sigmoid(x)


def _silu_grad(x: np.ndarray) -> np.ndarray:
    s = _sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def _hard_silu_grad(x: np.ndarray) -> np.ndarray:
    return _hard_sigmoid(x) + x * _hard_sigmoid_grad(x)


def _mish_grad(x: np.ndarray) -> np.ndarray:
    t = np.tanh(_softplus(x))
    return t + x * _sigmoid(x) * (1.0 - t * t)


_SELU_SCALE, _SELU_ALPHA = 1.0507009873554805, 1.6732632423543772

ACTIVATION_GRADS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid_grad,
    "tanh": lambda x: 1.0 - np.tanh(x) ** 2,
    "hard_sigmoid": _hard_sigmoid_grad,
    "hard_sigmoid_keras2": lambda x: _inside(x, -2.5, 2.5, 0.2),
    "relu": lambda x: np.where(x > 0, 1.0, 0.0),
    "relu6": lambda x: _inside(x, 0.0, 6.0, 1.0),
    "linear": lambda x: np.ones_like(x),
    "softsign": lambda x: 1.0 / (1.0 + np.abs(x)) ** 2,
    "softplus": _softplus_grad,
    "elu": lambda x: np.where(x >= 0, 1.0, np.exp(np.minimum(x, 0.0))),
    "selu": lambda x: _SELU_SCALE * np.where(x >= 0, 1.0, _SELU_ALPHA * np.exp(np.minimum(x, 0.0))),
    "exponential": np.exp,
    "silu": _silu_grad,
    "swish": _silu_grad,
    "hard_tanh": lambda x: _inside(x, -1.0, 1.0, 1.0),
    "hard_silu": _hard_silu_grad,
    "hard_swish": _hard_silu_grad,
    "mish": _mish_grad,
}
"""d act / dz for every activation in ACTIVATIONS (0 on a clip's kinks, as Keras' gradient)."""


def activation_grad(name: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The derivative of a Keras activation, as a function of its input, or None."""
    return ACTIVATION_GRADS.get(name)
