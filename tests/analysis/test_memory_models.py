"""Issue 23: small Keras models with a known answer, through the whole CLI; the memory and
health sentences checked against the JSON (tests/analysis/test_takeaways.py's checkers).

Hand-set weights, no training: the answer is known by construction.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cli import main
from tests.analysis.test_takeaways import (
    check_dynamics_sentence,
    check_evidence,
    check_inputs_sentence,
    check_mechanism_sentence,
    check_memory_sentence,
)
from tests.conftest import write_config

STEPS = 32


def sum_lstm(keras: Any) -> Any:
    """h_T ≈ tanh(Σ_t 0.1·x_t): input gate and forget gate open (f = σ(10)), every step
    counts the same."""
    u = 1
    m = keras.Sequential(
        [keras.Input((30, 1)), keras.layers.LSTM(u, name="acc"), keras.layers.Dense(1)]
    )
    kernel = np.zeros((1, 4 * u))
    kernel[0, 2 * u] = 0.1  # the candidate reads x
    bias = np.zeros(4 * u)
    bias[:u], bias[u : 2 * u], bias[3 * u :] = 10.0, 10.0, 10.0  # i, f, o open
    m.get_layer("acc").set_weights([kernel, np.zeros((u, 4 * u)), bias])
    m.layers[-1].set_weights([np.ones((u, 1)), np.zeros(1)])
    return m


def lag_lstm(keras: Any, lag: int = 8) -> Any:
    """A delay line of lag + 1 units: unit 0 holds x_t, unit j the value of unit j − 1 a
    step earlier (f ≈ 0, i ≈ o ≈ 1); the Dense reads the last, x_(T−1−lag)."""
    u = lag + 1
    m = keras.Sequential(
        [keras.Input((STEPS, 1)), keras.layers.LSTM(u, name="delay"), keras.layers.Dense(1)]
    )
    kernel = np.zeros((1, 4 * u))
    kernel[0, 2 * u] = 1.0
    rec = np.zeros((u, 4 * u))
    for j in range(1, u):
        rec[j - 1, 2 * u + j] = 1.0
    bias = np.zeros(4 * u)
    # ±5, not more: with larger biases the units' incoming weights would be near copies
    bias[:u], bias[u : 2 * u], bias[3 * u :] = 5.0, -5.0, 5.0
    m.get_layer("delay").set_weights([kernel, rec, bias])
    head = np.zeros((u, 1))
    head[-1] = 1.0
    m.layers[-1].set_weights([head, np.zeros(1)])
    return m


def short_lstm(keras: Any, lag: int = 2, keepers: int = 4) -> Any:
    """A delay line of lag + 1 units read at its end, as lag_lstm, beside ``keepers`` units
    whose forget gate holds (f = σ(5), τ ≈ 150 steps) but that store nothing (i ≈ 0 and a
    candidate of 0): the median timescale is long, the memory the answer uses is short."""
    d = lag + 1
    u = d + keepers
    m = keras.Sequential(
        [keras.Input((STEPS, 1)), keras.layers.LSTM(u, name="short"), keras.layers.Dense(1)]
    )
    kernel = np.zeros((1, 4 * u))
    kernel[0, 2 * u] = 1.0
    rec = np.zeros((u, 4 * u))
    for j in range(1, d):
        rec[j - 1, 2 * u + j] = 1.0
    bias = np.zeros(4 * u)
    bias[:d], bias[d:u] = 5.0, -10.0  # i
    bias[u : u + d], bias[u + d : 2 * u] = -5.0, 5.0  # f
    bias[3 * u :] = 5.0  # o
    m.get_layer("short").set_weights([kernel, rec, bias])
    head = np.zeros((u, 1))
    head[d - 1] = 1.0
    m.layers[-1].set_weights([head, np.zeros(1)])
    return m


def gru(keras: Any, U: np.ndarray, b_z: float, b_r: float, seed: int) -> Any:
    n = U.shape[0]
    m = keras.Sequential(
        [keras.Input((STEPS, 2)), keras.layers.GRU(n, name="gru"), keras.layers.Dense(1)]
    )
    rng = np.random.default_rng(seed)
    bias = np.zeros((2, 3 * n))
    bias[0, :n] = b_z
    bias[0, n : 2 * n] = b_r
    m.get_layer("gru").set_weights([rng.normal(0, 0.5, (2, 3 * n)), U, bias])
    m.layers[-1].set_weights([rng.normal(0, 0.2, (n, 1)), np.zeros(1)])
    return m


def chaotic_gru(keras: Any, n: int = 48) -> Any:
    """U_h = 3·J, J ~ N(0, 1/n), z ≈ 0: h_t ≈ tanh(3·J·h + x·W), a chaotic network."""
    U = np.zeros((n, 3 * n))
    U[:, 2 * n :] = 3.0 * np.random.default_rng(21).normal(0, 1 / np.sqrt(n), (n, n))
    return gru(keras, U, -10.0, 10.0, 22)  # r ≈ 1: the whole state reaches the candidate


def calm_gru(keras: Any, n: int = 24) -> Any:
    """ρ(U_z), ρ(U_r) ≈ 3 > 1.5, but a small U_h: the state contracts."""
    rng = np.random.default_rng(23)
    U = np.zeros((n, 3 * n))
    U[:, : 2 * n] = 3.0 * rng.normal(0, 1 / np.sqrt(n), (n, 2 * n))
    U[:, 2 * n :] = 0.3 * rng.normal(0, 1 / np.sqrt(n), (n, n))
    return gru(keras, U, 0.0, 0.0, 24)


@pytest.fixture(scope="module")
def reports(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each model saved with a probe, reported through the CLI: (JSON data, exit status
    with --fail-on warning)."""
    d = tmp_path_factory.mktemp("memory-models")
    rng = np.random.default_rng(0)
    models = {
        "sum": (sum_lstm(keras), rng.normal(size=(48, 30, 1))),
        "lag": (lag_lstm(keras), rng.normal(0, 0.3, (48, STEPS, 1))),
        "short": (short_lstm(keras), rng.normal(0, 0.3, (48, STEPS, 1))),
        "chaotic": (chaotic_gru(keras), rng.normal(size=(16, STEPS, 2))),
        "calm": (calm_gru(keras), rng.normal(size=(16, STEPS, 2))),
    }
    out: dict[str, Any] = {}
    for name, (model, probe) in models.items():
        model.save(d / f"{name}.keras")
        np.save(d / f"{name}.npy", probe.astype("float32"))
        cfg = write_config(
            d,
            f"models:\n  - {{path: {name}.keras, name: {name}, probe: {name}.npy}}\n",
            f"{name}.yaml",
        )
        args = ["build", str(cfg), "-o", str(d / f"{name}.html"), "--json", str(d / f"{name}.json")]
        status = main([*args, "-q", "--fail-on", "warning"])
        out[name] = (json.loads(Path(d / f"{name}.json").read_text()), status)
    return out


def _warnings(data: dict[str, Any]) -> set[str]:
    return {f["code"] for f in data["findings"] if f["severity"] in ("error", "warning")}


def test_a_sum_over_30_steps_has_a_horizon_near_30(reports: dict[str, Any]) -> None:
    data, status = reports["sum"]
    h = data["models"][0]["memory_horizon"]
    assert h["of"] == 30 and h["steps"] >= 26
    text = check_memory_sentence(data)
    assert text.startswith("Memory spans the whole sequence") and "is short" not in text
    assert "stable on the probe" in check_dynamics_sentence(data)
    assert _warnings(data) <= {"saturated-units"}  # i, f and o are open by design


def test_a_lag_of_8_steps_is_found(reports: dict[str, Any]) -> None:
    data, status = reports["lag"]
    m = data["models"][0]
    h = m["memory_horizon"]
    per_step = m["input_importance"]["per_step"]
    assert m["input_importance"]["target"] == "model_output"
    # Nearly nothing before the lag: the hand-set gates are saturated, not exactly 0 and 1,
    # so a trace of older steps leaks through (0.3% of the total on this probe).
    assert sum(per_step[: STEPS - 9]) < 1e-2 * sum(per_step)
    if m["input_importance"]["target"] == "model_output":  # the peak: the step 8 back
        assert int(np.argmax(per_step)) == STEPS - 9 and h["steps"] == 9
    else:  # the LSTM's output h_T holds all 9 steps of the delay line, the oldest least
        assert h["steps"] in (8, 9)
    text = check_memory_sentence(data)
    # 9 of 32 is not short; the forget gate (τ ≈ 1) would have said so: the two disagree
    assert text.startswith(f"Memory reaches back {h['steps']} of 32 steps")
    assert "trust the measured horizon" in text
    assert _warnings(data) <= {"saturated-units"}


def test_a_short_memory_beside_long_timescales_is_said_short(reports: dict[str, Any]) -> None:
    """Issue 23 item 4: the answer reads x_(T−3): a horizon of 3 steps, under a quarter of
    32, so "short"; the gates' median τ (about 150 steps) is more than twice the horizon,
    and the sentence says which to trust."""
    data, _ = reports["short"]
    m = data["models"][0]
    h = m["memory_horizon"]
    assert m["input_importance"]["target"] == "model_output"
    assert h == {"steps": 3, "of": STEPS, "share": 0.9, "by": "step"}
    assert int(np.argmax(m["input_importance"]["per_step"])) == STEPS - 3
    text = check_memory_sentence(data)
    assert text.startswith("Memory is short: short's answer depends on the last 3 of 32 steps")
    (layer,) = m["layers"]
    tau = float(np.median([v for v in layer["memory"]["probe_tau"] if v is not None]))
    assert tau > 100 and f"{tau:.3g} steps in short" in text
    assert "more than 2× longer than the measured horizon in short" in text
    assert "shorter than the measured horizon" not in text


def test_a_slow_direction_the_inputs_do_not_drive_is_not_said_to_accumulate(
    reports: dict[str, Any],
) -> None:
    """The "short" model's keepers hold their state (f = σ(5): |λ| = 0.993, a line of slow
    points) but the input never reaches them (i ≈ 0, no input weights): none of the input's
    drive lands on the slow mode, and the horizon is 3 of 32 steps. The sum model's one
    unit is driven and kept: it accumulates."""
    data, _ = reports["short"]
    sm = data["models"][0]["layers"][0]["dynamics"]["slow_manifold"]
    assert sm is not None and sm["eigenvalue_near_one"] == pytest.approx(1 / (1 + np.exp(-5)))
    assert sm["input_drive"] is not None and sm["input_drive"] < 1e-9
    (text,) = check_mechanism_sentence(data)
    assert "accumulates evidence" not in text and "barely drive" in text
    assert "not used as memory here" in text and "horizon is 3 of 32 steps" in text
    data, _ = reports["sum"]
    sm = data["models"][0]["layers"][0]["dynamics"]["slow_manifold"]
    assert sm is not None and sm["input_drive"] > 0.9  # the drive is along c, where it stays
    (text,) = check_mechanism_sentence(data)
    assert "integrates along a 1-dimensional slow manifold (a line attractor" in text
    assert "accumulates evidence rather than forgetting it" in text


def test_a_chaotic_gru_is_unstable(reports: dict[str, Any]) -> None:
    data, status = reports["chaotic"]
    d = data["models"][0]["layers"][0]["dynamics"]
    assert d["lyapunov"][0] > 0.05 and d["unstable"] and d["state"] == "h"
    assert len(d["lyapunov"]) == 8 and len(d["jacobian_decay"]) == STEPS - 1
    codes = {(f["severity"], f["code"]) for f in data["findings"]}
    assert ("warning", "unstable-dynamics") in codes
    assert "diverges on the probe in gru" in check_dynamics_sentence(data)
    assert status == 3  # --fail-on warning


def test_a_calm_gru_with_a_large_radius_is_no_warning(reports: dict[str, Any]) -> None:
    data, status = reports["calm"]
    layer = data["models"][0]["layers"][0]
    assert max(g["U"]["spectral_radius"] for g in layer["spectra"].values()) > 1.5
    assert layer["dynamics"]["lyapunov"][0] < 0
    assert {f["severity"] for f in data["findings"]} == {"info"}
    assert "is stable on the probe" in check_dynamics_sentence(data)
    assert status == 0


@pytest.mark.parametrize("name", ["sum", "lag", "short", "chaotic", "calm"])
def test_every_takeaway_of_the_models_states_its_evidence_and_numbers(
    reports: dict[str, Any], name: str
) -> None:
    """Issue 23 item 7, on the known-answer models as on the demo: each sentence says what
    it was measured on, and its numbers are the JSON's."""
    data, _ = reports[name]
    check_evidence(data)
    check_inputs_sentence(data)
    check_memory_sentence(data)
    check_dynamics_sentence(data)
    check_mechanism_sentence(data)
