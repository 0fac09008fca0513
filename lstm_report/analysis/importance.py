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
    per_step = _per_step(forward, x, base, lambda v, t: v.__setitem__((slice(None), t), mean))
    return InputImportance(
        method="occlusion",
        target=target,
        layer=layer,
        sequences=n,
        features=tuple(effects),
        per_step=per_step,
    )


MAX_TOKENS = 20
"""Tokens listed at most in ``per_token``, largest effect first."""


def token_importance(
    forward: Forward,
    ids: np.ndarray,
    *,
    pad: int,
    target: Target,
    layer: str | None = None,
    names: Sequence[str] | None = None,
    seed: int = 0,
) -> InputImportance:
    """Importance of every token id, and of every position, of a token model on ``ids``
    (sequences, steps): the mean squared change of the target when every occurrence of the
    token (every token at the position) is replaced by ``pad``.

    Tokens are ranked by that mean over all sequences (a sequence without the token changes
    by 0); the MAX_TOKENS largest are kept. ``names[id]`` names a token where given."""
    ids = np.asarray(ids)[:MAX_SEQUENCES]
    n, steps = ids.shape
    rng = np.random.default_rng(seed)
    base = forward(ids)
    tokens = [int(t) for t in np.unique(ids) if int(t) != pad]
    # Every (sequence, token) pair's occluded sequence, run in large batches: at most
    # sequences × steps rows, the cost of ``steps`` runs of the whole probe.
    rows: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    for tok in tokens:
        has = np.flatnonzero(np.any(ids == tok, axis=1))
        sub = ids[has]
        rows.append(np.where(sub == tok, pad, sub))
        owners.append(has)
    changed = _batched(forward, np.concatenate(rows) if rows else ids[:0])
    base_rows = base[np.concatenate(owners)] if owners else base[:0]
    change = per_sequence_change(base_rows, changed) if rows else np.zeros(0)
    ranked: list[tuple[float, int, np.ndarray]] = []
    at = 0
    for tok, has in zip(tokens, owners):
        samples = np.zeros(n)
        samples[has] = change[at : at + has.size]
        at += has.size
        ranked.append((float(samples.mean()), tok, samples))
    ranked.sort(key=lambda r: (-r[0], r[1]))
    effects = []
    for value, tok, samples in ranked[:MAX_TOKENS]:
        low, high = bootstrap_interval(samples, rng)
        label = names[tok] if names is not None and 0 <= tok < len(names) else str(tok)
        effects.append(FeatureEffect(label, value, low, high))
    per_step = _per_step(forward, ids, base, lambda x, t: x.__setitem__((slice(None), t), pad))
    return InputImportance(
        method="occlusion",
        target=target,
        layer=layer,
        sequences=n,
        features=(),
        per_step=per_step,
        per_token=tuple(effects),
        pad_token=pad,
    )


BATCH = 2048
"""Sequences per run where many occluded copies are run at once."""


def _batched(forward: Forward, x: np.ndarray) -> np.ndarray:
    if x.shape[0] <= BATCH:
        return np.asarray(forward(x))
    return np.concatenate([forward(x[i : i + BATCH]) for i in range(0, x.shape[0], BATCH)])


def _per_step(
    forward: Forward,
    x: np.ndarray,
    base: np.ndarray,
    occlude: Callable[[np.ndarray, int], None],
) -> tuple[float, ...]:
    """Mean squared change of the target with each step occluded in turn, the occluded
    copies of the probe run together in batches of about BATCH sequences."""
    n, steps = x.shape[0], x.shape[1]
    per = max(1, BATCH // max(n, 1))  # steps per batch
    out: list[float] = []
    for first in range(0, steps, per):
        ts = range(first, min(first + per, steps))
        stack = np.concatenate([x] * len(ts))
        for k, t in enumerate(ts):
            occlude(stack[k * n : (k + 1) * n], t)
        changed = np.asarray(forward(stack))
        for k in range(len(ts)):
            out.append(float(per_sequence_change(base, changed[k * n : (k + 1) * n]).mean()))
    return tuple(out)
