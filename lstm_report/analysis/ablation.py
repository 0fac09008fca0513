"""Pure numpy: unit ablation. One unit's output zeroed at every step (also where the state
feeds back), the mean squared change of the target (the model's prediction where it can be
replayed), per sequence, with a bootstrap interval over the sequences."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from lstm_report.analysis.state_map import step_work
from lstm_report.cells.base import CellWeights
from lstm_report.cells.jacobian import cell_map
from lstm_report.model.mechanism import UnitAblation, UnitEffect

ABLATION_WORK = 1.6e10
"""Multiply-adds of the ablation replays per layer; above it the units are screened on
fewer sequences first."""
ABLATION_SEQUENCES = 32
CANDIDATES = 20
MIN_SEQUENCES = 2
"""The candidates of a screened layer are measured on at least this many sequences."""
SCREEN_SEQUENCES = 4
"""Sequences of the output-only screen of a layer too large to rerun once per unit."""
TOP_UNITS = 10
BOOTSTRAP = 1000


def ablated_outputs(
    cell: CellWeights, x: np.ndarray, units: np.ndarray, dtype: type = np.float32
) -> np.ndarray:
    """The cell's h over x (sequences, steps, input_dim) with h[unit] zeroed after every
    step, for each of ``units`` (−1: none): (len(units), sequences, steps, output_dim), in
    input time order."""
    m = cell_map(cell, dtype)
    xs = x[:, ::-1] if cell.direction == "backward" else x
    n, steps, _ = xs.shape
    k = len(units)
    zx = m.project(xs)  # (n, steps, gates·u)
    s: np.ndarray = np.zeros((k, n, m.state_size), dtype)
    out: np.ndarray = np.zeros((k, n, steps, m.h_size), dtype)
    rows = np.arange(k)[units >= 0]
    cols = units[units >= 0]
    for t in range(steps):
        s = m.step_z(s, np.broadcast_to(zx[:, t], (k, n, zx.shape[-1])))
        s[rows, :, cols] = 0.0
        out[:, :, t] = s[..., : m.h_size]
    return out[:, :, ::-1] if cell.direction == "backward" else out


def unit_ablation(
    cell: CellWeights,
    x: np.ndarray,
    head: Callable[[np.ndarray], np.ndarray],
    *,
    target: str,
    reason: str | None = None,
    tau: tuple[float | None, ...] | None = None,
    saturated: np.ndarray | None = None,
    seed: int = 0,
    head_work: float = 0.0,
) -> UnitAblation:
    """Mean squared change of ``head`` (the layer's h sequences (batch, steps, h) -> the
    target, batch first) when one unit's output is zeroed at every step, per unit, over the
    sequences of x; the TOP_UNITS largest with a bootstrap 95% interval over sequences.
    ``tau``, ``saturated``: per unit, the memory-gate timescale and the largest share of
    probe steps any of its gates saturates on, carried onto the cards. ``head_work``: the
    multiply-adds of one call of ``head`` per sequence (the rest of the model), counted in
    ABLATION_WORK with the layer's own reruns."""
    rng = np.random.default_rng(seed)
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
        units, seqs, screened, screen = _candidates(cell, x, head, head_work)
        values, base = _effects(cell, x[:seqs], head, units)
        activity = np.mean(np.abs(np.asarray(base, np.float64)), axis=(0, 1))
    return UnitAblation(
        units=_top_effects(values, units, activity, tau, saturated, rng),
        target=target,
        reason=reason,
        sequences=seqs,
        screened=screened,
        screen=screen if screened is not None else None,
    )


def ablation_fits(cell: CellWeights, head_work: float) -> bool:
    """Whether the cheapest screen (every unit zeroed in the layer's output, one sequence,
    one call of the head each) fits in ABLATION_WORK with a head of that cost."""
    return (cell.output_dim + 1) * head_work <= ABLATION_WORK


def _candidates(
    cell: CellWeights,
    x: np.ndarray,
    head: Callable[[np.ndarray], np.ndarray],
    head_work: float = 0.0,
) -> tuple[np.ndarray, int, int | None, str]:
    """The units to ablate and on how many sequences, within ABLATION_WORK: every unit,
    or those a screen on fewer sequences ranks first; the sequences screened (None: no
    screen), and the screen (``ablation``, or ``output`` for a layer too large)."""
    h = cell.output_dim
    run = max(1.0, x.shape[1] * step_work(cell) + head_work)
    every = ABLATION_WORK / 2 / run / (h + 1)
    seqs = int(min(x.shape[0], ABLATION_SEQUENCES))
    if every >= seqs:
        return np.arange(h), seqs, None, "ablation"
    if every >= 1:
        screened, screen = int(every), "ablation"
        scores = _effects(cell, x[:screened], head, np.arange(h))[0].mean(axis=1)
    else:
        # Too large to rerun the layer once per unit: screen by zeroing each unit
        # in the layer's output alone (not fed back), a run of the head only.
        # The head runs once per unit and sequence: its cost bounds the sequences too.
        affordable = int(ABLATION_WORK / max(1.0, (h + 1) * head_work))
        screened, screen = int(max(1, min(seqs, SCREEN_SEQUENCES, affordable))), "output"
        scores = _output_effects(cell, x[:screened], head).mean(axis=1)
    many = TOP_UNITS if screen == "output" else CANDIDATES  # fewer: each is costly
    units = np.sort(np.argsort(-scores, kind="stable")[: min(many, h)])
    fits = int(ABLATION_WORK / 2 / run / (len(units) + 1))
    return units, int(min(seqs, max(MIN_SEQUENCES, fits))), screened, screen


def _top_effects(
    values: np.ndarray,
    units: np.ndarray,
    activity: np.ndarray,
    tau: tuple[float | None, ...] | None,
    saturated: np.ndarray | None,
    rng: np.random.Generator,
) -> tuple[UnitEffect, ...]:
    """The TOP_UNITS largest effects, each with a bootstrap 95% interval over sequences."""
    seqs = values.shape[1]
    mean = values.mean(axis=1)
    boots = rng.integers(0, seqs, size=(BOOTSTRAP, seqs))
    order = np.argsort(-mean, kind="stable")[:TOP_UNITS]
    out = []
    for i in order:
        resampled = values[i][boots].mean(axis=1)
        unit = int(units[i])
        out.append(
            UnitEffect(
                unit=unit,
                value=float(mean[i]),
                low=float(np.percentile(resampled, 2.5)),
                high=float(np.percentile(resampled, 97.5)),
                tau=None if tau is None or unit >= len(tau) else tau[unit],
                mean_activity=float(activity[unit]),
                saturated=None if saturated is None else float(saturated[unit]),
            )
        )
    return tuple(out)


def _output_effects(
    cell: CellWeights, x: np.ndarray, head: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """(units, sequences): the mean squared change of head when one unit is zeroed in the
    layer's output only (the recurrence runs unchanged): the screen of a very large layer."""
    base_h = ablated_outputs(cell, x, np.array([-1]))[0]
    base = np.asarray(head(base_h), np.float64).reshape(x.shape[0], -1)
    h = base_h.shape[-1]
    block = max(1, int(4096 // max(1, x.shape[0])))
    out = []
    for lo in range(0, h, block):
        units = np.arange(lo, min(h, lo + block))
        hs = np.repeat(base_h[None], len(units), axis=0)
        hs[np.arange(len(units)), :, :, units] = 0.0
        k, n = hs.shape[:2]
        y = np.asarray(head(hs.reshape(k * n, *hs.shape[2:])), np.float64).reshape(k, n, -1)
        out.append(np.mean((y - base[None]) ** 2, axis=2))
    return np.concatenate(out, axis=0)


def _effects(
    cell: CellWeights,
    x: np.ndarray,
    head: Callable[[np.ndarray], np.ndarray],
    units: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(len(units), sequences): the mean squared change of head per sequence, per unit,
    in blocks of units (two threads for a large layer); and the layer's h unablated."""
    block = max(1, int(4096 // max(1, x.shape[0])))
    base_h = ablated_outputs(cell, x, np.array([-1]))[0]
    base = np.asarray(head(base_h), np.float64)

    def one(chunk: np.ndarray) -> np.ndarray:
        hs = ablated_outputs(cell, x, chunk)
        k, n = hs.shape[:2]
        y = np.asarray(head(hs.reshape(k * n, *hs.shape[2:])), np.float64)
        y = y.reshape(k, n, -1)
        return np.asarray(np.mean((y - base.reshape(1, n, -1)) ** 2, axis=2))

    chunks = [units[i : i + block] for i in range(0, len(units), block)]
    if len(chunks) >= 2 and len(units) * x.shape[0] * x.shape[1] * step_work(cell) > 5e8:
        with ThreadPoolExecutor(2) as pool:
            parts = list(pool.map(one, chunks))
    else:
        parts = [one(c) for c in chunks]
    return np.concatenate(parts, axis=0), base_h
