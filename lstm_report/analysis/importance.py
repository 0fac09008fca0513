"""Pure numpy: which inputs the model uses, measured on the probe data.

Occlusion: replace one input feature by its probe mean at every step, run the model again
and measure the mean squared change of its output. The same with one time step (all its
features) replaced gives how the output depends on time. Uncertainty: a bootstrap over the
probe's sequences (each sequence's squared change is one sample).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lstm_report.analysis.state_map import step_macs
from lstm_report.cells.base import CellWeights
from lstm_report.model.analyses import FeatureEffect, InputImportance, Target

Forward = Callable[[np.ndarray], np.ndarray]
"""Probe inputs (sequences, steps, features) -> the target's values, first axis sequences."""

Copies = Callable[[np.ndarray], Forward]
"""Given the probe, a forward for batches of whole changed copies of it (row r a copy of
probe row r % len(probe)), which may reuse the probe's own run (ModelReplay.for_copies)."""

RESAMPLES = 200
"""Bootstrap resamples of the sequences for each interval."""

LEVEL = 0.95
"""Coverage of the intervals: the 2.5th to 97.5th percentile of the resampled means."""

MAX_SEQUENCES = 256
"""Probe sequences used at most: the cost is (features + steps + 1) runs of the model."""

MIN_SEQUENCES = 8
"""Sequences used at least (where the probe has them), whatever WORK says."""

WORK = 2e10
"""Multiply-adds of the occlusion runs through the recurrent layers, above which fewer
sequences are used (``sequences_for_work``; the page says on how many). The demo's 64
sequences are 3e8 (all used); one sequence of 100 steps through 2×LSTM(256) over 16 inputs
is 9.4e9, so 8 (the floor) of a 64 × 100 probe, 9.6 s of CPU on a loaded machine
(docs/speed.md)."""

BATCH = 1024
"""Rows (sequences) per call of the model: the occluded copies of the probe go together."""


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
    max_sequences: int = MAX_SEQUENCES,
    copies: Copies | None = None,
) -> InputImportance:
    """Importance of every input feature, and of every time step, by occlusion on ``x``
    (its first ``max_sequences`` sequences, at most MAX_SEQUENCES).

    The occluded copies go through ``forward`` together, BATCH rows at a time: one call per
    copy ran the model on small batches (64 rows of a 2×LSTM(256): 117 calls of 1 s each).
    Every sequence's output depends on that sequence alone, so the values are those of one
    call per copy, up to rounding. ``copies``: what runs the copies instead, given x."""
    x = np.asarray(x, np.float32)[: max(1, min(MAX_SEQUENCES, max_sequences))]
    if copies is not None:
        forward = copies(x)
    n, steps, features = x.shape
    rng = np.random.default_rng(seed)
    mean = x.mean(axis=(0, 1))

    def occluded(k: int) -> np.ndarray:
        """Copy k: 0 the probe itself, 1..features one feature at its mean, then one step."""
        z = x.copy()
        if 1 <= k <= features:
            z[:, :, k - 1] = mean[k - 1]
        elif k > features:
            z[:, k - 1 - features, :] = mean
        return z

    n_copies = 1 + features + steps
    per_call = max(1, BATCH // n)
    outputs: list[np.ndarray] = []
    for first in range(0, n_copies, per_call):
        ks = range(first, min(n_copies, first + per_call))
        out = np.asarray(forward(np.concatenate([occluded(k) for k in ks])))
        outputs += [out[i * n : (i + 1) * n] for i in range(len(ks))]
    base = outputs[0]
    effects = []
    for j in range(features):
        samples = per_sequence_change(base, outputs[1 + j])
        low, high = bootstrap_interval(samples, rng)
        effects.append(FeatureEffect(str(names[j]), float(samples.mean()), low, high))
    per_step = tuple(
        float(per_sequence_change(base, outputs[1 + features + t]).mean()) for t in range(steps)
    )
    return InputImportance(
        method="occlusion",
        target=target,
        layer=layer,
        sequences=n,
        features=tuple(effects),
        per_step=per_step,
        per_lag=per_lag(base, outputs[1 + features :]),
    )


def per_lag(base: np.ndarray, occluded: Sequence[np.ndarray]) -> tuple[float, ...] | None:
    """For a target with a time axis aligned with the occluded steps (base (sequences,
    steps, ...), ``occluded[t]`` with step t replaced): the squared change at output step s
    summed by distance |s − t|, divided by the steps; None for any other target. Occluding
    step t changes the output at step t itself whatever the model remembers, so a sequence
    target's per-step importance is flat: memory is in how far the change reaches."""
    steps = len(occluded)
    if not has_time_axis(base, steps):
        return None
    out = np.zeros(steps)
    b = np.asarray(base, np.float64)
    for t, z in enumerate(occluded):
        add_lags(out, b, z, t)
    return tuple(float(v) for v in out / steps)


def has_time_axis(base: np.ndarray, steps: int) -> bool:
    """Whether a target (sequences, ...) has the input's steps as its second axis."""
    return bool(base.ndim >= 2 and base.shape[1] == steps and steps >= 2)


def add_lags(out: np.ndarray, base64: np.ndarray, changed: np.ndarray, t: int) -> None:
    """Add to out[ℓ] the squared change of ``changed`` (step t occluded) against ``base64``
    (the target in float64, converted once by the caller) at the output steps s with
    |s − t| = ℓ, averaged over sequences and the other axes."""
    steps = out.shape[0]
    d = (np.asarray(changed, np.float64) - base64) ** 2
    at = d.reshape(d.shape[0], steps, -1).mean(axis=(0, 2))  # per output step s
    np.add.at(out, np.abs(np.arange(steps) - t), at)


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
    per_step, lags = _per_step(
        forward, ids, base, lambda x, t: x.__setitem__((slice(None), t), pad)
    )
    return InputImportance(
        method="occlusion",
        target=target,
        layer=layer,
        sequences=n,
        features=(),
        per_step=per_step,
        per_token=tuple(effects),
        pad_token=pad,
        per_lag=lags,
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
) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    """Mean squared change of the target with each step occluded in turn, the occluded
    copies of the probe run together in batches of about BATCH sequences; and where the
    target is a sequence, the same by distance (``per_lag``)."""
    n, steps = x.shape[0], x.shape[1]
    per = max(1, BATCH // max(n, 1))  # steps per batch
    out: list[float] = []
    lags = np.zeros(steps) if has_time_axis(np.asarray(base), steps) else None
    base64 = None if lags is None else np.asarray(base, np.float64)
    for first in range(0, steps, per):
        ts = range(first, min(first + per, steps))
        stack = np.concatenate([x] * len(ts))
        for k, t in enumerate(ts):
            occlude(stack[k * n : (k + 1) * n], t)
        changed = np.asarray(forward(stack))
        for k, t in enumerate(ts):
            part = changed[k * n : (k + 1) * n]
            out.append(float(per_sequence_change(base, part).mean()))
            if lags is not None and base64 is not None:
                add_lags(lags, base64, part, t)
    return tuple(out), None if lags is None else tuple(float(v) for v in lags / steps)


def sequences_for_work(
    cells: Sequence[CellWeights], sequences: int, steps: int, features: int
) -> int:
    """How many of the probe's sequences the occlusion runs on, so that the runs of
    ``cells`` (the recurrent layers the forward goes through) stay within WORK."""
    per_sequence = (1 + features + steps) * steps * sum(step_macs(c) for c in cells)
    most = max(MIN_SEQUENCES, int(WORK // max(1, per_sequence)))
    return max(1, min(sequences, MAX_SEQUENCES, most))
