"""Issue 23: every cell as a state map (step) and its analytic Jacobian, against the replay
and against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_report.cells.activations import ACTIVATION_GRADS, ACTIVATIONS
from lstm_report.cells.base import GRU_GATES, LSTM_GATES, CellWeights, GateWeights
from lstm_report.cells.jacobian import cell_map
from lstm_report.cells.kinds import replay
from lstm_report.errors import AnalysisError


def make_cell(
    kind: str,
    *,
    seed: int = 0,
    units: int = 5,
    inputs: int = 3,
    proj: int | None = None,
    two_biases: bool = True,
    reset_after: bool | None = None,
    activation: str = "tanh",
    recurrent_activation: str = "sigmoid",
    direction: str = "forward",
    scale: float = 0.7,
    peepholes: bool = False,
) -> CellWeights:
    """A random cell of any variant: PyTorch/ONNX two biases, a projection, peepholes, GRU
    modes."""
    rng = np.random.default_rng(seed)
    gates = LSTM_GATES if kind == "LSTM" else GRU_GATES
    rec_dim = units if proj is None else proj
    return CellWeights(
        name="cell",
        kind=kind,  # type: ignore[arg-type]
        direction=direction,  # type: ignore[arg-type]
        gates=tuple(
            GateWeights(
                spec=g,
                W=rng.normal(0, scale, (inputs, units)),
                U=rng.normal(0, scale, (rec_dim, units)),
                b=rng.normal(0, 0.5, units),
                b_rec=rng.normal(0, 0.5, units) if two_biases else None,
            )
            for g in gates
        ),
        activation=activation,
        recurrent_activation=recurrent_activation,
        reset_after=reset_after,
        P=None if proj is None else rng.normal(0, 0.6, (units, proj)),
        peepholes=rng.normal(0, 0.8, (3, units)) if peepholes else None,
    )


VARIANTS = {
    "keras-lstm": dict(kind="LSTM", two_biases=False),
    "torch-lstm": dict(kind="LSTM"),
    "torch-lstm-proj": dict(kind="LSTM", proj=3),
    "onnx-lstm-backward": dict(kind="LSTM", direction="backward"),
    "onnx-lstm-peephole": dict(kind="LSTM", peepholes=True),
    "onnx-lstm-peephole-reverse": dict(kind="LSTM", peepholes=True, direction="backward"),
    "tflite-lstm-peephole-proj": dict(kind="LSTM", peepholes=True, proj=3, two_biases=False),
    "lstm-peephole-hard-sigmoid": dict(
        kind="LSTM", peepholes=True, recurrent_activation="hard_sigmoid"
    ),
    "lstm-hard-sigmoid": dict(kind="LSTM", recurrent_activation="hard_sigmoid", two_biases=False),
    "lstm-relu": dict(kind="LSTM", activation="relu"),
    "gru-reset-after": dict(kind="GRU", reset_after=True),
    "gru-reset-before": dict(kind="GRU", reset_after=False),
    "keras-gru-v2": dict(kind="GRU", reset_after=False, two_biases=False),
    "gru-softsign": dict(kind="GRU", reset_after=True, activation="softsign"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_step_reproduces_the_replay(variant: str) -> None:
    cell = make_cell(**VARIANTS[variant])  # type: ignore[arg-type]
    m = cell_map(cell)
    x = np.random.default_rng(1).normal(size=(4, 6, cell.input_dim))
    trace = replay(cell, x)
    order = range(5, -1, -1) if cell.direction == "backward" else range(6)
    s = np.zeros((4, m.state_size))
    for t in order:
        s = m.step(s, x[:, t])
        h, c = m.split(s)
        np.testing.assert_allclose(h, trace.h[:, t], rtol=0, atol=1e-12)
        if c is not None:
            assert trace.c is not None
            np.testing.assert_allclose(c, trace.c[:, t], rtol=0, atol=1e-12)


def _finite_jacobian(m: object, s: np.ndarray, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    step = m.step  # type: ignore[attr-defined]
    n = s.shape[-1]
    out = np.empty((n, n))
    for j in range(n):
        d = np.zeros(n)
        d[j] = eps
        out[:, j] = (step(s + d, x) - step(s - d, x)) / (2 * eps)
    return out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_jacobian_matches_finite_differences(variant: str) -> None:
    cell = make_cell(**VARIANTS[variant])  # type: ignore[arg-type]
    m = cell_map(cell)
    rng = np.random.default_rng(2)
    for _ in range(3):
        s = rng.normal(0, 0.8, m.state_size)
        x = rng.normal(size=cell.input_dim)
        J = m.jacobian(s, x)
        assert J.shape == (m.state_size, m.state_size)
        np.testing.assert_allclose(J, _finite_jacobian(m, s, x), rtol=0, atol=1e-7)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_jvp_and_vjp_are_the_jacobian_products(variant: str) -> None:
    cell = make_cell(**VARIANTS[variant])  # type: ignore[arg-type]
    m = cell_map(cell)
    rng = np.random.default_rng(3)
    s = rng.normal(0, 0.8, (2, m.state_size))
    x = rng.normal(size=(2, cell.input_dim))
    J = m.jacobian(s, x)  # (2, n, n), batched
    v = rng.normal(size=(2, 4, m.state_size))
    nxt, jv = m.jvp_z(s, m.project(x), v)
    np.testing.assert_allclose(nxt, m.step(s, x), atol=1e-14)
    np.testing.assert_allclose(jv, np.einsum("bij,bkj->bki", J, v), atol=1e-12)
    a = rng.normal(size=(2, 4, m.state_size))
    np.testing.assert_allclose(m.vjp_z(s, m.project(x), a), a @ J, atol=1e-12)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_has_its_derivative(name: str) -> None:
    assert set(ACTIVATION_GRADS) == set(ACTIVATIONS)
    # points away from the kinks of the clipped ones (0, ±1, ±2.5, ±3, 6)
    z = np.array([-4.1, -2.7, -1.7, -0.6, -0.2, 0.3, 0.8, 1.4, 2.2, 2.8, 4.6, 7.3])
    eps = 1e-6
    fd = (ACTIVATIONS[name](z + eps) - ACTIVATIONS[name](z - eps)) / (2 * eps)
    np.testing.assert_allclose(ACTIVATION_GRADS[name](z), fd, rtol=1e-6, atol=1e-8)


def test_bad_shapes_and_activations_raise() -> None:
    m = cell_map(make_cell("LSTM"))
    with pytest.raises(AnalysisError, match="state has 3 values, not 10"):
        m.step(np.zeros(3), np.zeros(3))
    with pytest.raises(AnalysisError, match="input has 2 features, not 3"):
        m.step(np.zeros(10), np.zeros(2))
    with pytest.raises(AnalysisError, match="no Jacobian for activation 'gelu'"):
        cell_map(make_cell("GRU", reset_after=True, activation="gelu"))


PEEPHOLES = sorted(v for v in VARIANTS if "peephole" in v)


@pytest.mark.parametrize("variant", PEEPHOLES)
def test_peephole_jacobian_is_relatively_exact_and_the_peepholes_matter(variant: str) -> None:
    """Issue 23 item 5 / issue 25 item 6: the peephole terms are in the Jacobian (relative
    error ~1e-7 against central differences in float64), and they change it: the same
    cell without them has another Jacobian, which the finite differences would expose."""
    from dataclasses import replace as _replace

    cell = make_cell(**VARIANTS[variant])  # type: ignore[arg-type]
    m = cell_map(cell)
    rng = np.random.default_rng(4)
    for _ in range(4):
        s = rng.normal(0, 0.9, m.state_size)
        x = rng.normal(size=cell.input_dim)
        J, fd = m.jacobian(s, x), _finite_jacobian(m, s, x)
        assert np.linalg.norm(J - fd) / np.linalg.norm(fd) < 1e-7
        bare = cell_map(_replace(cell, peepholes=None)).jacobian(s, x)
        assert np.linalg.norm(bare - fd) / np.linalg.norm(fd) > 1e-2
        # the peepholes are diagonal: ∂c_t/∂c_(t−1) stays diagonal, with other values
        h = m.h_size
        block, bare_block = fd[h:, h:], bare[h:, h:]
        np.testing.assert_allclose(block, np.diag(np.diag(block)), atol=1e-8)
        assert np.abs(np.diag(block) - np.diag(bare_block)).max() > 1e-3
