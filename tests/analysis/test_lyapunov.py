"""Issue 23: Lyapunov exponents, Jacobian decay and the memory horizon, against closed forms
and independent computations; the findings they drive."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_report.analysis.dynamics import layer_dynamics, memory_horizon
from lstm_report.analysis.layer import analyse_layer
from lstm_report.analysis.probing import LayerRun
from lstm_report.cells.base import GRU_GATES, LSTM_GATES, CellWeights, GateWeights
from lstm_report.cells.jacobian import cell_map
from lstm_report.model.layers import RecurrentLayer
from tests.cells.test_jacobian import make_cell


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def still_cell(kind: str, memory_bias: np.ndarray, *, reset_after: bool = True) -> CellWeights:
    """W = U = 0: the state only decays, by the memory gate's resting value per step."""
    rng = np.random.default_rng(4)
    u = memory_bias.size
    gates = LSTM_GATES if kind == "LSTM" else GRU_GATES
    return CellWeights(
        name="still",
        kind=kind,  # type: ignore[arg-type]
        direction="forward",
        gates=tuple(
            GateWeights(
                spec=g,
                W=np.zeros((2, u)),
                U=np.zeros((u, u)),
                b=memory_bias if g.keeps else rng.normal(size=u),
                b_rec=None if kind == "LSTM" else rng.normal(0, 0.3, u),
            )
            for g in gates
        ),
        reset_after=None if kind == "LSTM" else reset_after,
    )


def test_lstm_without_weights_has_the_log_forget_gates_as_exponents() -> None:
    b_f = np.array([2.0, -1.0, 0.5])
    x = np.random.default_rng(0).normal(size=(5, 200, 2))
    d = layer_dynamics(still_cell("LSTM", b_f), x, dtype=np.float64)
    assert len(d.lyapunov) == 6 and d.state == "(h, c)"  # k = min(8, 2·3)
    want = np.sort(np.log(sigmoid(b_f)))[::-1]
    np.testing.assert_allclose(d.lyapunov[:3], want, atol=1e-3)
    assert max(d.lyapunov[3:]) < -30  # h does not feed back (U = 0): zero directions
    assert list(d.lyapunov) == sorted(d.lyapunov, reverse=True)
    assert d.jacobian_decay == pytest.approx([0.0] * 199)  # ∂h_T/∂h_(T−k) = 0 without U
    assert not d.unstable


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_without_weights_has_the_log_update_gates_as_exponents(reset_after: bool) -> None:
    b_z = np.linspace(-2.0, 3.0, 10)
    cell = still_cell("GRU", b_z, reset_after=reset_after)
    x = np.random.default_rng(1).normal(size=(3, 400, 2))
    d = layer_dynamics(cell, x, dtype=np.float64)
    z = sigmoid(b_z + cell.gate("z").b_rec)  # type: ignore[operator]
    assert len(d.lyapunov) == 8 and d.state == "h"  # k = min(8, 10)
    # 8 of 10 directions from a random frame: the top 8 within the finite-time error, ~1/T
    np.testing.assert_allclose(d.lyapunov, np.sort(np.log(z))[::-1][:8], atol=2e-3)
    assert max(d.lyapunov_spread) < 2e-3
    # ∂h_T/∂h_(T−k) = diag(z)^k: its RMS is the decay, exactly (10 units: every direction)
    assert d.directions == 10
    want = [np.sqrt(np.mean(z ** (2 * k))) for k in range(1, 400)]
    np.testing.assert_allclose(d.jacobian_decay, want, rtol=1e-9)


def test_the_exponents_add_up_to_the_volume_growth() -> None:
    # With k = the whole state, Σλ is the mean of log |det J_t|: an independent check of
    # the QR bookkeeping, on a random GRU whose 6 units give 6 exponents.
    cell = make_cell("GRU", units=6, reset_after=True, scale=1.2, seed=3)
    x = np.random.default_rng(2).normal(size=(4, 40, 3))
    d = layer_dynamics(cell, x, dtype=np.float64)
    m = cell_map(cell)
    logdet = np.zeros(4)
    s = np.zeros((4, 6))
    for t in range(40):
        if t >= d.burn_in:
            logdet += np.linalg.slogdet(m.jacobian(s, x[:, t]))[1]
        s = m.step(s, x[:, t])
    assert sum(d.lyapunov) == pytest.approx(np.mean(logdet / (40 - d.burn_in)), rel=1e-9)
    assert d.burn_in == 10


def _decay_by_products(cell: CellWeights, x: np.ndarray) -> np.ndarray:
    """‖∂h_T/∂h_(T−k)‖_F/√p from full Jacobian products, per sequence and k."""
    m = cell_map(cell)
    n, steps, _ = x.shape
    states = [np.zeros((n, m.state_size))]
    jac = []
    for t in range(steps):
        jac.append(m.jacobian(states[-1], x[:, t]))
        states.append(m.step(states[-1], x[:, t]))
    p = m.h_size
    out = np.empty((n, steps - 1))
    prod = np.broadcast_to(np.eye(m.state_size), (n, m.state_size, m.state_size))
    for k in range(1, steps):
        prod = prod @ jac[steps - k]  # ∂s_T/∂s_(T−k)
        out[:, k - 1] = np.linalg.norm(prod[:, :p, :p], axis=(1, 2)) / np.sqrt(p)
    return out


@pytest.mark.parametrize(
    "variant",
    [
        dict(kind="LSTM", units=5, proj=3),
        dict(kind="GRU", units=6, reset_after=False),
        dict(kind="LSTM", units=4, direction="backward"),
    ],
)
def test_jacobian_decay_is_the_median_norm_of_the_products(variant: dict[str, object]) -> None:
    cell = make_cell(scale=0.9, **variant)  # type: ignore[arg-type]
    x = np.random.default_rng(5).normal(size=(7, 12, 3))
    d = layer_dynamics(cell, x, dtype=np.float64)
    read = x[:, ::-1] if cell.direction == "backward" else x
    want = np.median(_decay_by_products(cell, read), axis=0)
    np.testing.assert_allclose(d.jacobian_decay, want, rtol=1e-9, atol=1e-15)


def test_jacobian_decay_of_a_large_state_is_estimated_within_its_spread() -> None:
    cell = make_cell("GRU", units=40, reset_after=True, scale=0.25)
    x = np.random.default_rng(6).normal(size=(16, 10, 3))
    d = layer_dynamics(cell, x, dtype=np.float64)
    assert d.directions == 8  # random orthonormal directions, not all 40
    want = np.median(_decay_by_products(cell, x), axis=0)
    np.testing.assert_allclose(d.jacobian_decay, want, rtol=0.25)


def test_a_backward_cell_reads_the_probe_from_the_end() -> None:
    fwd = make_cell("LSTM", units=4)
    bwd = make_cell("LSTM", units=4, direction="backward")
    x = np.random.default_rng(7).normal(size=(3, 15, 3))
    a = layer_dynamics(bwd, x, dtype=np.float64)
    b = layer_dynamics(fwd, x[:, ::-1], dtype=np.float64)
    assert a.lyapunov == pytest.approx(b.lyapunov) and a.jacobian_decay == b.jacobian_decay


def gru_layer(U: np.ndarray, b_z: float, *, seed: int = 0, w_scale: float = 0.5) -> RecurrentLayer:
    """A Keras-layout GRU (reset_after) with recurrent kernel U, update bias b_z, r ≈ 1."""
    n = U.shape[0]
    rng = np.random.default_rng(seed)
    bias = np.zeros((2, 3 * n))
    bias[0, :n] = b_z
    bias[0, n : 2 * n] = 10.0  # r = 1: the whole state reaches the candidate
    return RecurrentLayer.from_keras_arrays(
        "gru",
        "forward",
        rng.normal(0, w_scale, (2, 3 * n)),
        U,
        bias,
        kind="GRU",
        reset_after=True,
        reads_input=True,
    )


def chaotic_gru(n: int = 64) -> RecurrentLayer:
    """U_h = 3·J, J ~ N(0, 1/n), z ≈ 0: h_t ≈ tanh(3·J h + ...), chaotic (gain 3 > 1)."""
    rng = np.random.default_rng(11)
    U = np.zeros((n, 3 * n))
    U[:, 2 * n :] = 3.0 * rng.normal(0, 1 / np.sqrt(n), (n, n))
    return gru_layer(U, -10.0)


def calm_gru(n: int = 32) -> RecurrentLayer:
    """ρ(U_z) = ρ(U_r) ≈ 3, yet a small candidate weight and z ≈ 0.5 keep the state calm."""
    rng = np.random.default_rng(12)
    U = np.zeros((n, 3 * n))
    U[:, : 2 * n] = 3.0 * rng.normal(0, 1 / np.sqrt(n), (n, 2 * n))
    U[:, 2 * n :] = 0.3 * rng.normal(0, 1 / np.sqrt(n), (n, n))
    return gru_layer(U, 0.0)


def _analysed(w: RecurrentLayer, x: np.ndarray, *, probe: bool = True) -> object:
    run = LayerRun(None, x.astype(np.float32)) if probe else None
    return analyse_layer(w, None, "a", model="m", run=run)


def test_a_chaotic_gru_is_unstable_and_a_calm_one_is_not() -> None:
    x = np.random.default_rng(13).normal(size=(16, 80, 2))
    la = _analysed(chaotic_gru(), x)
    d = la.dynamics  # type: ignore[attr-defined]
    assert d.largest > 0.05 and d.largest - d.lyapunov_spread[0] > 0 and d.unstable
    codes = {f.code: f for f in la.findings}  # type: ignore[attr-defined]
    assert codes["unstable-dynamics"].severity == "warning"
    assert f"{d.largest:+.3g}" in codes["unstable-dynamics"].message
    assert codes["large-spectral-radius"].severity == "info"
    assert "unstable-dynamics" in codes["large-spectral-radius"].message

    calm = calm_gru()
    la = _analysed(calm, x)
    radii = [sp.U.spectral_radius for sp in la.spectra]  # type: ignore[attr-defined]
    assert max(radii) > 1.5
    d = la.dynamics  # type: ignore[attr-defined]
    assert d.largest < -0.05 and not d.unstable
    findings = la.findings  # type: ignore[attr-defined]
    assert {(f.severity, f.code) for f in findings} == {("info", "large-spectral-radius")}
    assert all(f"{d.largest:+.3g} per step" in f.message for f in findings)


def test_large_spectral_radius_without_probe_is_information() -> None:
    la = _analysed(calm_gru(), np.zeros((1, 1, 2)), probe=False)
    assert la.dynamics is None  # type: ignore[attr-defined]
    findings = la.findings  # type: ignore[attr-defined]
    assert {(f.severity, f.code) for f in findings} == {("info", "large-spectral-radius")}
    assert all("does not by itself mean exploding dynamics" in f.message for f in findings)


def test_memory_horizon_by_hand() -> None:
    assert memory_horizon([1.0] * 30) == memory_horizon([2.0] * 30)
    h = memory_horizon([1.0] * 30)
    assert h is not None and (h.steps, h.of, h.share) == (27, 30, 0.9)
    lag = [0.0] * 32
    lag[32 - 9] = 5.0  # one input 8 steps before the last one
    assert memory_horizon(lag).steps == 9  # type: ignore[union-attr]
    assert memory_horizon([0.0, 0.0, 10.0, 0.5]).steps == 2  # type: ignore[union-attr]
    # exactly 90%: the smaller k
    assert memory_horizon([1.0, 9.0]).steps == 1  # type: ignore[union-attr]
    assert memory_horizon([]) is None and memory_horizon([0.0, 0.0]) is None
    assert memory_horizon([1.0, float("nan")]) is None


def test_a_state_that_overflows_is_unstable() -> None:
    from lstm_report.analysis.findings import unstable_message

    cell = make_cell("GRU", reset_after=True, activation="exponential", scale=2.0, units=6)
    d = layer_dynamics(cell, np.random.default_rng(0).normal(size=(4, 60, 3)))
    assert not np.isfinite(d.largest) and d.unstable
    assert "overflows on the probe" in unstable_message(d)


def test_a_positive_exponent_within_its_spread_is_no_warning() -> None:
    """Issue 23 item 6: unstable-dynamics needs the top exponent above 0 by more than its
    spread over the sequences; +0.02 ± 0.05 is noise, +0.08 ± 0.05 is not."""
    from dataclasses import replace

    from lstm_report.analysis.layer import with_findings
    from lstm_report.model.checks import Checks
    from lstm_report.model.stats import Dynamics

    la = _analysed(calm_gru(), np.random.default_rng(13).normal(size=(8, 40, 2)))

    def codes(top: float, spread: float) -> dict[str, str]:
        d = Dynamics(
            lyapunov=(top, -1.0),
            lyapunov_spread=(spread, 0.1),
            jacobian_decay=(0.5,),
            sequences=8,
            steps=40,
            burn_in=10,
            directions=2,
            state="h",
        )
        found = with_findings(replace(la, dynamics=d), "m", Checks())  # type: ignore[type-var]
        return {f.code: f.severity for f in found.findings}

    assert "unstable-dynamics" not in codes(0.02, 0.05)
    assert codes(0.08, 0.05)["unstable-dynamics"] == "warning"
    assert codes(0.08, 0.05)["large-spectral-radius"] == "info"  # never a warning alone
    assert "unstable-dynamics" not in codes(-0.3, 0.05)
