"""Activations as Keras 3 defines them, in numpy, by their Keras names."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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
