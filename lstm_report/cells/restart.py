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

BLOCKS = 10
"""Blocks of steps a restarted replay runs in: a row restarts at the start of its block."""


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
    reads the changed steps first, so it replays x in full. No gates are kept, and of a
    forward LSTM's trace only h (its c is None: what the copies pass on is h)."""
    if cell.direction == "backward":
        return replay(cell, x, dtype=dtype)
    steps = x.shape[1]
    x = np.asarray(x, dtype)
    first = first_differing(x, np.asarray(base_x, dtype)[rows])
    # Rows sorted by their first differing step: the rows running in a block of steps are a
    # prefix, so each block is one replay over them, its input projection one product. A
    # row joins at the start of the block holding its first differing step, from the base's
    # state before that block: up to its first differing step its input is the base's, so
    # it recomputes the base's states (to rounding). Blocks, not single steps: the input
    # projection of one step at a time ran 2.4x slower per row than in blocks (37 against
    # 90 GFLOPS for 936 rows of a 2xLSTM(256), measured), for at most a block's length less
    # one of extra steps per row.
    by = np.argsort(first, kind="stable")
    src, first = rows[by], first[by]
    xs: np.ndarray = x[by]
    h: np.ndarray = base.h[src].astype(dtype, copy=False)  # a fresh copy: fancy indexing
    # Only h goes on (to the next layer, or the head): c is kept as each row's running
    # state, not as a history (its history was a second copy of the size of h).
    c: np.ndarray | None = None
    if base.c is not None:
        c = np.zeros((len(src), base.c.shape[2]), dtype)
    block = max(1, -(-steps // BLOCKS))
    before = 0  # rows that ran in the blocks so far: a prefix
    for s0 in range(0, steps, block):
        s1 = min(steps, s0 + block)
        running = int(np.searchsorted(first, s1 - 1, side="right"))
        if running == 0:
            continue
        start: tuple[np.ndarray, np.ndarray | None] | None = None
        if s0 > 0:  # every running row has the base's (or its own) state before s0
            if c is not None and base.c is not None and running > before:
                c[before:running] = base.c[src[before:running], s0 - 1]
            start = (h[:running, s0 - 1], None if c is None else c[:running])
        part = replay(cell, xs[:running, s0:s1], dtype=dtype, initial=start)
        h[:running, s0:s1] = part.h
        if c is not None and part.c is not None:
            c[:running] = part.c[:, -1]
        before = running
    back = np.argsort(by)
    return CellTrace(h=h[back], c=None, gates={}, direction=cell.direction)
