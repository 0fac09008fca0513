"""Pure numpy: which inputs the model uses, measured on the probe data.

Occlusion: replace one input feature by its probe mean at every step, run the model again
and measure the mean squared change of its output. The same with one time step (all its
features) replaced gives how the output depends on time. Uncertainty: a bootstrap over the
probe's sequences (each sequence's squared change is one sample).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lstm_report.model import FeatureEffect, InputImportance, Target

Forward = Callable[[np.ndarray], np.ndarray]
"""Probe inputs (sequences, steps, features) -> the target's values, first axis sequences."""

RESAMPLES = 200
"""Bootstrap resamples of the sequences for each interval."""

LEVEL = 0.95
"""Coverage of the intervals: the 2.5th to 97.5th percentile of the resampled means."""

MAX_SEQUENCES = 256
"""Probe sequences used at most: the cost is (features + steps + 1) runs of the model."""


def per_sequence_change(base: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """Mean squared change of the target, one value per sequence."""
    d = np.asarray(changed, np.float64) - np.asarray(base, np.float64)
    return np.mean(d.reshape(d.shape[0], -1) ** 2, axis=1)


def bootstrap_interval(samples: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """The LEVEL percentile interval of the mean of ``samples``, resampled with replacement."""
    n = samples.shape[0]
    if n < 2:
        v = float(samples.mean())
        return v, v
    idx = rng.integers(0, n, size=(RESAMPLES, n))
    means = samples[idx].mean(axis=1)
    tail = (1.0 - LEVEL) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def occlusion_importance(
    forward: Forward,
    x: np.ndarray,
    names: Sequence[str],
    *,
    target: Target,
    layer: str | None = None,
    seed: int = 0,
) -> InputImportance:
    """Importance of every input feature, and of every time step, by occlusion on ``x``."""
    x = np.asarray(x, np.float32)[:MAX_SEQUENCES]
    n, steps, features = x.shape
    rng = np.random.default_rng(seed)
    base = forward(x)
    mean = x.mean(axis=(0, 1))
    effects = []
    for j in range(features):
        occluded = x.copy()
        occluded[:, :, j] = mean[j]
        samples = per_sequence_change(base, forward(occluded))
        low, high = bootstrap_interval(samples, rng)
        effects.append(FeatureEffect(str(names[j]), float(samples.mean()), low, high))
    per_step = []
    for t in range(steps):
        occluded = x.copy()
        occluded[:, t, :] = mean
        per_step.append(float(per_sequence_change(base, forward(occluded)).mean()))
    return InputImportance(
        method="occlusion",
        target=target,
        layer=layer,
        sequences=n,
        features=tuple(effects),
        per_step=tuple(per_step),
    )
