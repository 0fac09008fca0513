"""Issue 23 item 5, issue 25 item 6: a peephole LSTM (ONNX P) gets its dynamics, fixed points
and unit ablation in a whole report, and every number is recomputed here.

The independent side is a step written below from the ONNX operator's definition
(docs/Operators.md: gates i, o, f, c; P stored i, o, f) over the fixture's own arrays
(expected.npz, written by the fixture script, not read by lstm-report's reader), with
finite-difference Jacobians and a QR iteration of its own: nothing of cells/jacobian.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cells.base import CellWeights
from lstm_report.cells.kinds import replay
from lstm_report.cli import main
from lstm_report.readers.onnx import rnn as onnx_rnn
from tests.analysis.test_takeaways import (
    check_dynamics_sentence,
    check_evidence,
    check_inputs_sentence,
    check_mechanism_sentence,
    check_memory_sentence,
)
from tests.helpers import FIXTURES

FW = FIXTURES / "frameworks"
ONNX = FW / "onnx_lstm_peephole.onnx"
H = 3
SEQUENCES, STEPS = 12, 120


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class Step:
    """A state map s -> F(s, x) with central-difference Jacobians."""

    size = 2 * H

    def __call__(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def jacobian(self, s: np.ndarray, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
        """Central differences: J[a, b] = ∂s_next[a] / ∂s[b]."""
        cols = [(self(s + d, x) - self(s - d, x)) / (2 * eps) for d in np.eye(s.size) * eps]
        return np.stack(cols, axis=1)


class OnnxStep(Step):
    """s = (h, c) -> the next state, by the ONNX LSTM's equations (float64)."""

    def __init__(self) -> None:
        with np.load(FW / "expected.npz") as z:
            W, R = z["onnx/lstm_peephole/W"][0], z["onnx/lstm_peephole/R"][0]
            B, P = z["onnx/lstm_peephole/B"][0], z["onnx/lstm_peephole/P"][0]
        self.W, self.R = W.astype(np.float64), R.astype(np.float64)  # (4H, in), (4H, H)
        self.b = (B[: 4 * H] + B[4 * H :]).astype(np.float64)
        self.p_i, self.p_o, self.p_f = (P[k * H : (k + 1) * H].astype(np.float64) for k in range(3))

    def __call__(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        h, c = s[..., :H], s[..., H:]
        z = x @ self.W.T + h @ self.R.T + self.b
        zi, zo, zf, zc = (z[..., k * H : (k + 1) * H] for k in range(4))
        i = sigmoid(zi + self.p_i * c)
        f = sigmoid(zf + self.p_f * c)
        c_new = f * c + i * np.tanh(zc)
        o = sigmoid(zo + self.p_o * c_new)
        return np.concatenate([o * np.tanh(c_new), c_new], axis=-1)


class ReplayStep(Step):
    """One step of lstm-report's numpy replay (cells.kinds.replay, itself checked against
    the TFLite interpreter in tests/readers/test_tflite_reader.py) from a given state."""

    def __init__(self, cell: CellWeights) -> None:
        self.cell, self.u = cell, cell.units
        self.size = 2 * cell.units

    def __call__(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        s2, x2 = s.reshape(-1, self.size), np.asarray(x).reshape(-1, 1, self.cell.input_dim)
        tr = replay(self.cell, x2, initial=(s2[:, : self.u], s2[:, self.u :]))
        assert tr.c is not None
        return np.concatenate([tr.h[:, 0], tr.c[:, 0]], axis=-1).reshape(s.shape)


def _qr_exponents(
    step: Step, xs: np.ndarray, burn: int, frames: np.ndarray | None = None
) -> np.ndarray:
    """Benettin's method over finite-difference Jacobians, every direction of the state,
    mean over the sequences of the per-sequence exponents (descending), from the given
    orthonormal frames (sequences, 2H, 2H) or from random ones of another seed."""
    out = []
    rng = np.random.default_rng(123)
    k = step.size
    for n, x in enumerate(xs):
        s = np.zeros(k)
        q = np.linalg.qr(rng.normal(size=(k, k)))[0] if frames is None else frames[n]
        logs = np.zeros(k)
        for t, xt in enumerate(x):
            q, r = np.linalg.qr(step.jacobian(s, xt) @ q)
            s = step(s, xt)
            if t >= burn:
                logs += np.log(np.abs(np.diag(r)))
        out.append(np.sort(logs / (len(x) - burn))[::-1])
    return np.mean(out, axis=0)


def _frames(sequences: int = SEQUENCES, size: int = 2 * H) -> np.ndarray:
    """The starting frames layer_dynamics draws: seed 0, the first draw (k = the state's
    size, up to 8)."""
    rng = np.random.default_rng(0)
    return np.asarray(np.linalg.qr(rng.normal(size=(sequences, size, size)))[0])


def _decay(step: OnnxStep, xs: np.ndarray) -> np.ndarray:
    """Per k, the median over sequences of ‖∂h_T/∂h_(T−k)‖_F / √H, by products of
    finite-difference Jacobians."""
    gains = []
    for x in xs:
        states = [np.zeros(2 * H)]
        for xt in x:
            states.append(step(states[-1], xt))
        prod, row = np.eye(2 * H), []
        for t in range(len(x) - 1, 0, -1):  # step t maps states[t] to states[t + 1]
            prod = prod @ step.jacobian(states[t], x[t])
            row.append(np.sum(prod[:H, :H] ** 2) / H)
        gains.append(row)
    return np.sqrt(np.median(gains, axis=0))


def _report(tmp_path: Path, model: Path, probe: np.ndarray) -> tuple[dict[str, Any], str]:
    np.save(tmp_path / "probe.npy", probe.astype(np.float32))
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    args = ["build", str(model), "--probe", str(tmp_path / "probe.npy"), "-o", str(page)]
    assert main([*args, "--json", str(out), "-q"]) == 0
    return json.loads(out.read_text()), page.read_text()


@pytest.fixture(scope="module")
def probe() -> np.ndarray:
    x = np.random.default_rng(7).normal(size=(SEQUENCES, STEPS, 3))
    return np.asarray(x.astype(np.float32), np.float64)  # what the report reads


def test_the_hand_written_step_is_the_replay(probe: np.ndarray) -> None:
    """The control for what follows: the step above and lstm-report's replay agree, and
    the peepholes matter (without them the states differ)."""
    pytest.importorskip("onnx")
    step = OnnxStep()
    (cell,) = onnx_rnn.read(ONNX).cells
    trace = replay(cell, probe[:3, :10])
    s = np.zeros((3, 2 * H))
    for t in range(10):
        s = step(s, probe[:3, t])
        np.testing.assert_allclose(s[:, :H], trace.h[:, t], atol=1e-6)
        np.testing.assert_allclose(s[:, H:], trace.c[:, t], atol=1e-6)  # type: ignore[index]
    bare = OnnxStep()
    bare.p_i = bare.p_f = bare.p_o = np.zeros(H)
    assert np.abs(bare(s, probe[:3, 0]) - step(s, probe[:3, 0])).max() > 1e-2


def test_a_peephole_lstm_report_has_its_dynamics(tmp_path: Path, probe: np.ndarray) -> None:
    pytest.importorskip("onnx")
    data, page = _report(tmp_path, ONNX, probe)
    (layer,) = data["models"][0]["layers"]
    d = layer["dynamics"]
    assert d is not None and d["state"] == "(h, c)"
    assert (d["sequences"], d["steps"], d["burn_in"]) == (SEQUENCES, STEPS, 20)
    step = OnnxStep()
    assert len(d["lyapunov"]) == 2 * H  # k = min(8, 6)
    # From the report's own starting frames (dynamics.py draws them first, seed 0), the
    # exponents agree to rounding; from other frames, within what 100 steps average out
    # (two near exponents of a sequence can swap places), far below the spread, and far
    # from the same cell without its peepholes.
    np.testing.assert_allclose(d["lyapunov"], _qr_exponents(step, probe, 20, _frames()), atol=1e-6)
    other = _qr_exponents(step, probe, 20)
    np.testing.assert_allclose(d["lyapunov"], other, rtol=0, atol=5e-3)
    assert max(d["lyapunov_spread"]) > 0.05
    bare = OnnxStep()
    bare.p_i = bare.p_f = bare.p_o = np.zeros(H)
    assert np.abs(_qr_exponents(bare, probe, 20) - d["lyapunov"]).max() > 0.05
    np.testing.assert_allclose(d["jacobian_decay"], _decay(step, probe), rtol=1e-6, atol=1e-9)
    assert not d["unstable"] and d["lyapunov"][0] < 0
    assert "small perturbation of the state (h, c) dies out" in page
    # the takeaways state these numbers (tests/analysis/test_takeaways.py's checkers)
    assert "is stable on the probe" in check_dynamics_sentence(data)
    assert check_mechanism_sentence(data)
    check_memory_sentence(data)
    # its output is Y, a sequence: memory by distance, and the by-step chart says why
    h = data["models"][0]["memory_horizon"]
    assert h["by"] == "lag" and h["steps"] < STEPS / 4
    flat = " ".join(page.split())
    assert (
        "This model's answer is a sequence, and replacing a step changes the answer at that "
        "step itself whatever the model remembers, so these bars stay high at every step; how "
        f"far back it remembers is measured by distance instead: the inputs within {h['steps']} "
        "steps of each answer step carry 90% of it."
    ) in flat
    check_inputs_sentence(data)
    check_evidence(data)
    assert "peephole" not in " ".join(f["message"] for f in data["findings"]).lower()


def test_a_peephole_lstms_fixed_point_and_unit_ablation(tmp_path: Path, probe: np.ndarray) -> None:
    """The stable fixed point with the input at 0 is where iterating the step from 0 ends;
    its eigenvalues are those of the finite-difference Jacobian there. The unit ablation
    (on the layer's own output: an ONNX graph is not replayed with a state injected) is
    the mean squared change of every output when one h unit is zeroed after every step."""
    pytest.importorskip("onnx")
    data, _ = _report(tmp_path, ONNX, probe[:, :40])
    (layer,) = data["models"][0]["layers"]
    step = OnnxStep()
    s, x0 = np.zeros(2 * H), np.zeros(3)
    for _ in range(3000):
        s = step(s, x0)
    assert np.linalg.norm(step(s, x0) - s) < 1e-12
    points = [p for p in layer["dynamics"]["fixed_points"] if p["kind"] == "fixed"]
    match = [p for p in points if abs(p["norm"] - np.linalg.norm(s)) < 1e-6]
    assert len(match) == 1 and match[0]["stable"]
    got = sorted(abs(complex(re, im)) for re, im in match[0]["eigenvalues"])
    want = sorted(np.abs(np.linalg.eigvals(step.jacobian(s, x0))))
    np.testing.assert_allclose(got, want, atol=1e-6)

    assert layer["units_target"] == "layer_output"
    xs = probe[:, :40]
    base = _run(step, xs, None)
    effects = {
        u: float(np.mean(np.mean((_run(step, xs, u) - base) ** 2, axis=(1, 2)))) for u in range(H)
    }
    ablation = layer["unit_ablation"]
    assert [e["unit"] for e in ablation] == sorted(effects, key=lambda u: -effects[u])
    for e in ablation:
        assert e["value"] == pytest.approx(effects[e["unit"]], rel=1e-3)
        assert e["low"] <= e["value"] <= e["high"]


def _run(step: OnnxStep, xs: np.ndarray, unit: int | None) -> np.ndarray:
    """h over xs with h[unit] zeroed after every step (also where it feeds back)."""
    s = np.zeros((xs.shape[0], 2 * H))
    out = np.zeros((xs.shape[0], xs.shape[1], H))
    for t in range(xs.shape[1]):
        s = step(s, xs[:, t])
        if unit is not None:
            s[:, unit] = 0.0
        out[:, t] = s[:, :H]
    return out


def test_a_reverse_peephole_lstm_reads_its_probe_backwards(
    tmp_path: Path, probe: np.ndarray
) -> None:
    """The same node with direction=reverse: one backward cell, its exponents those of
    the step driven by each sequence read last to first."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(ONNX))
    (node,) = [n for n in model.graph.node if n.op_type == "LSTM"]
    attrs = [a for a in node.attribute if a.name != "direction"]
    del node.attribute[:]
    node.attribute.extend([*attrs, onnx.helper.make_attribute("direction", "reverse")])
    path = tmp_path / "reverse.onnx"
    onnx.save(model, str(path))
    data, _ = _report(tmp_path, path, probe)
    (layer,) = data["models"][0]["layers"]
    assert layer["direction"] == "backward"
    d = layer["dynamics"]
    step = OnnxStep()
    reverse = _qr_exponents(step, probe[:, ::-1], d["burn_in"], _frames())
    np.testing.assert_allclose(d["lyapunov"], reverse, rtol=0, atol=1e-6)
    forward = _qr_exponents(step, probe, d["burn_in"], _frames())
    assert np.abs(reverse - forward).max() > 1e-2  # the direction is seen by the numbers


def test_a_tflite_bidirectional_with_peepholes_has_dynamics_for_both_halves(
    tmp_path: Path, probe: np.ndarray
) -> None:
    """The TFLite fixture: peepholes on the forward half only. Each half's exponents are
    those of the replay's finite-difference Jacobians, the backward one reading the probe
    last to first."""
    pytest.importorskip("tflite")
    from lstm_report.readers.tflite import rnn as tflite_rnn

    path = FIXTURES / "tflite" / "lstm_bidi_peephole.tflite"
    fw, bw = tflite_rnn.read(path).cells
    assert fw.peepholes is not None and bw.peepholes is None
    xs = probe[:, :60]
    data, _ = _report(tmp_path, path, xs)
    layers = {x["direction"]: x for x in data["models"][0]["layers"]}
    assert set(layers) == {"forward", "backward"}
    for cell, x in ((fw, xs), (bw, xs[:, ::-1])):
        d = layers[cell.direction]["dynamics"]
        assert d is not None and d["state"] == "(h, c)"
        step = ReplayStep(cell)
        frames = _frames(SEQUENCES, step.size)
        want = _qr_exponents(step, x, d["burn_in"], frames)
        np.testing.assert_allclose(d["lyapunov"], want, rtol=0, atol=1e-6)
        assert layers[cell.direction]["unit_ablation"]
