"""Replays restarted from a saved state (cells/restart.py, ``initial`` of cells.replay)
equal the full replay: LSTM, GRU (both reset modes), stacked layers."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_report.cells.base import CellWeights
from lstm_report.cells.kinds import from_keras, replay
from lstm_report.cells.restart import first_differing, replay_restarted

TOL = 1e-10


def _cell(kind: str, n_in: int, units: int, seed: int, **kw: object) -> CellWeights:
    rng = np.random.default_rng(seed)
    g = 4 if kind == "LSTM" else 3
    bias_shape = (2, g * units) if kw.get("reset_after", True) and kind == "GRU" else (g * units,)
    return from_keras(
        kind,  # type: ignore[arg-type]
        rng.normal(0, 0.5, (n_in, g * units)),
        rng.normal(0, 0.5, (units, g * units)),
        rng.normal(0, 0.3, bias_shape),
        name=f"{kind}{seed}",
        **kw,  # type: ignore[arg-type]
    )


CELLS = {
    "lstm": lambda: _cell("LSTM", 3, 5, 0),
    "gru-reset-after": lambda: _cell("GRU", 3, 4, 1, reset_after=True),
    "gru-reset-before": lambda: _cell("GRU", 3, 4, 2, reset_after=False),
}


def _occluded(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Copies of x: itself, each step blanked in turn, one feature blanked throughout."""
    n, steps, _ = x.shape
    copies = [x.copy()]
    for t in range(steps):
        z = x.copy()
        z[:, t] = 0.0
        copies.append(z)
    z = x.copy()
    z[:, :, 1] = 0.0
    copies.append(z)
    return np.concatenate(copies), np.arange(n * len(copies)) % n


@pytest.mark.parametrize("name", sorted(CELLS))
def test_initial_state_continues_the_replay(name: str) -> None:
    cell = CELLS[name]()
    x = np.random.default_rng(3).normal(size=(4, 9, 3))
    full = replay(cell, x)
    t = 5
    init = (full.h[:, t - 1], None if full.c is None else full.c[:, t - 1])
    part = replay(cell, x[:, t:], initial=init)
    assert np.max(np.abs(part.h - full.h[:, t:])) < TOL
    if full.c is not None:
        assert part.c is not None and np.max(np.abs(part.c - full.c[:, t:])) < TOL


@pytest.mark.parametrize("name", sorted(CELLS))
def test_restarted_copies_equal_their_full_replay(name: str) -> None:
    cell = CELLS[name]()
    x = np.random.default_rng(4).normal(size=(3, 40, 3))
    copies, rows = _occluded(x)
    got = replay_restarted(cell, copies, x, replay(cell, x), rows)
    want = replay(cell, copies)
    # Copies occluded at every one of 40 steps join in every block of 4 steps: an LSTM's h
    # after its first block is right only if its running c was carried across blocks.
    assert np.max(np.abs(got.h - want.h)) < TOL
    assert got.c is None  # only h is passed on, and kept


def test_stacked_layers_restart_layer_by_layer() -> None:
    cells = [_cell("LSTM", 3, 5, 5), _cell("GRU", 5, 4, 6), _cell("LSTM", 4, 3, 7)]
    x = np.random.default_rng(5).normal(size=(2, 33, 3))
    copies, rows = _occluded(x)
    base_in, got = x, copies
    want = copies
    for cell in cells:
        base = replay(cell, base_in)
        assert np.all(first_differing(got, base_in[rows]) >= 0)
        got = replay_restarted(cell, got, base_in, base, rows).h
        want = replay(cell, want).h
        base_in = base.h
    assert np.max(np.abs(got - want)) < TOL


def test_a_backward_cell_replays_in_full() -> None:
    cell = _cell("LSTM", 3, 5, 8, direction="backward")
    x = np.random.default_rng(6).normal(size=(2, 10, 3))
    copies, rows = _occluded(x)
    got = replay_restarted(cell, copies, x, replay(cell, x), rows)
    assert np.max(np.abs(got.h - replay(cell, copies).h)) < TOL


def test_first_differing_step() -> None:
    x = np.zeros((3, 5, 2))
    y = x.copy()
    y[1, 3, 0] = 1.0
    y[2, 0, 1] = 1.0
    assert first_differing(y, x).tolist() == [5, 3, 0]
