"""Replays of copies of a replayed input that differ from it only from some step on: each
copy restarts from the original's saved state at its first differing step.

A forward cell's state after step t depends on steps 0..t of its input alone, so a copy
equal to the original up to step t − 1 has the original's state there; only steps t..T − 1
need running. Occluding one time step makes such copies (one per step), and the layer above
a restarted one again reads an input that differs only from t on.
"""

from __future__ import annotations

import numpy as np

from lstm_report.cells.base import CellTrace, CellWeights
from lstm_report.cells.kinds import replay


def first_differing(x: np.ndarray, base_x: np.ndarray) -> np.ndarray:
    """Per row of x (batch, steps, ·), the first step where it differs from base_x (same
    shape), or ``steps`` where it does not differ at all."""
    differs = np.any(x != base_x, axis=2)
    return np.where(differs.any(axis=1), differs.argmax(axis=1), x.shape[1])


def replay_restarted(
    cell: CellWeights,
    x: np.ndarray,
    base_x: np.ndarray,
    base: CellTrace,
    rows: np.ndarray,
    *,
    dtype: type = np.float64,
) -> CellTrace:
    """The replay of ``cell`` on x (batch, steps, input_dim), where row r is a copy of
    ``base_x[rows[r]]`` (``base`` its replay, in input order) changed from some step on.
    Rows restart from the base's state before their first differing step; a backward cell
    reads the changed steps first, so it replays x in full (no gates kept)."""
    if cell.direction == "backward":
        return replay(cell, x, dtype=dtype)
    steps = x.shape[1]
    first = first_differing(np.asarray(x, dtype), np.asarray(base_x, dtype)[rows])
    # Rows sorted by their first differing step: the rows running at step s are a prefix,
    # so each step is one product over them (a replay per restart step was 16 small
    # products per step, slower than the full replay on 2 busy cores, measured).
    by = np.argsort(first, kind="stable")
    src, first = rows[by], first[by]
    xs: np.ndarray = np.asarray(x, dtype)[by]
    h: np.ndarray = np.array(base.h[src], dtype)
    c: np.ndarray | None = None if base.c is None else np.array(base.c[src], dtype)
    state_h: np.ndarray = np.zeros((len(by), base.h.shape[2]), dtype)
    state_c: np.ndarray | None = None if c is None else np.zeros((len(by), c.shape[2]), dtype)
    running = 0
    for s in range(steps):
        now = int(np.searchsorted(first, s, side="right"))
        if s > 0 and now > running:  # rows joining at s start from the base's state at s − 1
            state_h[running:now] = base.h[src[running:now], s - 1]
            if state_c is not None and base.c is not None:
                state_c[running:now] = base.c[src[running:now], s - 1]
        running = now
        if running == 0:
            continue
        part = replay(
            cell,
            xs[:running, s : s + 1],
            dtype=dtype,
            initial=(state_h[:running], None if state_c is None else state_c[:running]),
        )
        state_h[:running] = h[:running, s] = part.h[:, 0]
        if state_c is not None and c is not None and part.c is not None:
            state_c[:running] = c[:running, s] = part.c[:, 0]
    back = np.argsort(by)
    return CellTrace(
        h=h[back], c=None if c is None else c[back], gates={}, direction=cell.direction
    )
