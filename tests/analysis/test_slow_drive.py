"""The share of the probe's input drive on a layer's slow modes (analysis/slow_drive.py),
against a closed form and, for a large state, against the exact eigenvectors."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_report.analysis.mechanism import _trajectories
from lstm_report.analysis.slow_drive import input_drive, slow_modes
from lstm_report.analysis.state_map import SMALL_STATE
from lstm_report.cells.base import LSTM_GATES, CellWeights, GateWeights
from lstm_report.cells.jacobian import cell_map


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def lstm(b_f: np.ndarray, w_c: np.ndarray, u_scale: float = 0.0, seed: int = 0) -> CellWeights:
    """An LSTM with one input; only the candidate reads it (weights w_c per unit), the
    forget biases b_f set each unit's slow eigenvalue σ(b_f); U = u_scale·N(0, 1/units)."""
    units = b_f.size
    rng = np.random.default_rng(seed)
    bias = {"i": np.full(units, 2.0), "f": b_f, "c": rng.normal(0, 0.3, units), "o": np.ones(units)}
    return CellWeights(
        name="cell",
        kind="LSTM",
        direction="forward",
        gates=tuple(
            GateWeights(
                spec=g,
                W=(w_c if g.name == "c" else np.zeros(units))[None, :].astype(float),
                U=u_scale * rng.normal(0, 1 / np.sqrt(units), (units, units)),
                b=bias[g.name],
                b_rec=None,
            )
            for g in LSTM_GATES
        ),
    )


def test_the_drive_share_has_its_closed_form_when_the_gates_ignore_the_state() -> None:
    """U = 0: c' = f·c + i·tanh(b_c + w·x), h' = o·tanh(c'). J's rows for c are diag(f)
    (the left eigenvector of f_u is e_(c_u)); its right one is e_(c_u) + o·tanh'(c*'_u)·e_(h_u).
    Unit 0 is slow and driven, unit 1 slow and not driven (w = 0), units 2, 3 fast."""
    b_f = np.array([5.0, 4.5, 0.0, -1.0])  # f = 0.9933, 0.989 (within 0.02 of 1), 0.5, 0.27
    w_c = np.array([0.8, 0.0, 1.0, 0.6])
    cell = lstm(b_f, w_c)
    f, i, o = sigmoid(b_f), sigmoid(np.full(4, 2.0)), sigmoid(np.ones(4))
    b_c = cell.gate("c").b
    x = np.random.default_rng(1).normal(size=(5, 20, 1))
    # the trajectories, by hand
    c, hs, cs = np.zeros((5, 4)), [], []
    for t in range(20):
        c = f * c + i * np.tanh(b_c + x[:, t] * w_c)
        cs.append(c)
        hs.append(o * np.tanh(c))
    traj = np.concatenate([np.stack(hs, 1), np.stack(cs, 1)], axis=-1)  # (h, c)
    c_prev = np.concatenate([np.zeros((5, 1, 4)), np.stack(cs, 1)[:, :-1]], axis=1)
    held_c = f * c_prev + i * np.tanh(b_c)
    d_c = np.stack(cs, 1) - held_c
    d_h = o * (np.tanh(np.stack(cs, 1)) - np.tanh(held_c))
    # the centre: the fixed point with x held at 0, c* = i·tanh(b_c)/(1 − f)
    c_star = i * np.tanh(b_c) / (1 - f)
    centre = np.concatenate([o * np.tanh(c_star), c_star])
    v_h = o * (1 - np.tanh(c_star) ** 2)  # the h-part of each right eigenvector of f_u
    slow = np.zeros_like(traj)
    for u in (0, 1):
        slow[..., u] = v_h[u] * d_c[..., u]
        slow[..., 4 + u] = d_c[..., u]
    d = np.concatenate([d_h, d_c], axis=-1)
    want = np.sum(slow**2) / (np.sum(slow**2) + np.sum((d - slow) ** 2))
    m = cell_map(cell, np.float64)
    np.testing.assert_allclose(m.step(centre, np.zeros(1)), centre, atol=1e-12)
    zx = m.project(np.zeros(1))
    got = input_drive(m, centre, zx, traj, m.project(x), np.random.default_rng(0))
    assert got == pytest.approx(want, rel=1e-9)
    assert 0.05 < got < 0.95  # unit 0 takes a share, the fast units the rest
    # the input drives only the fast units: nothing of it lands on a slow mode
    m = cell_map(lstm(b_f, np.array([0.0, 0.0, 1.0, 0.6])), np.float64)
    zx = m.project(np.zeros(1))
    zero = input_drive(m, centre, zx, _trajectories(m, x), m.project(x), np.random.default_rng(0))
    assert zero is not None and zero < 1e-20


def test_a_large_state_finds_the_exact_slow_modes_by_arnoldi() -> None:
    """70 units (a state of 140 > SMALL_STATE): three slow units with distinct forget gates,
    coupled by a small U; the Ritz vectors give the exact eigenvectors' share."""
    units = 70
    b_f = np.zeros(units)
    b_f[:3] = (4.5, 5.0, 5.5)
    w_c = np.random.default_rng(2).normal(0, 0.7, units)
    cell = lstm(b_f, w_c, u_scale=0.05, seed=3)
    m = cell_map(cell, np.float64)
    assert m.state_size > SMALL_STATE
    x = np.random.default_rng(4).normal(size=(6, 25, 1))
    traj = _trajectories(m, x)
    centre, zx = traj[0, -1], m.project(np.zeros(1))
    exact = slow_modes(m, centre, zx, np.random.default_rng(0), exact=True)
    ritz = slow_modes(m, centre, zx, np.random.default_rng(0))
    assert exact is not None and ritz is not None
    assert exact[0].shape[1] == ritz[0].shape[1] == 3
    # the same projector, whatever bases each took
    np.testing.assert_allclose(ritz[0] @ ritz[1], exact[0] @ exact[1], atol=1e-8)
    share = input_drive(m, centre, zx, traj, m.project(x), np.random.default_rng(0))
    assert share is not None and 0 < share < 1
