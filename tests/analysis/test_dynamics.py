"""Issue 3: spectra, memory timescales, probe activity, verification and findings, by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report import build_report
from lstm_report.analysis.activity import probe_activity
from lstm_report.analysis.findings import layer_findings
from lstm_report.analysis.layer import analyse_layer
from lstm_report.analysis.spectra import spectrum
from lstm_report.cli import main
from lstm_report.errors import ConfigError
from lstm_report.model.checks import Checks
from lstm_report.model.layers import RecurrentLayer
from lstm_report.model.stats import Verification
from tests.conftest import write_config


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def tiny(kernel: list[float], bias: list[float], rk: float = 0.0) -> RecurrentLayer:
    """One unit, one input feature, recurrent weights rk on every gate."""
    return RecurrentLayer.from_keras_arrays(
        name="tiny",
        direction="forward",
        kernel=np.array([kernel], np.float64),
        recurrent_kernel=np.full((1, 4), rk),
        bias=np.array(bias, np.float64),
        reads_input=True,
    )


def test_spectrum_by_hand() -> None:
    a = np.array([[0.0, 2.0], [-2.0, 0.0]])  # a rotation by 90 degrees, scaled by 2
    sp = spectrum(a, eigen=True)
    assert sp is not None
    assert sp.singular_values == pytest.approx((2.0, 2.0))
    assert sp.stable_rank == pytest.approx(2.0)
    assert sp.spectral_radius == pytest.approx(2.0)
    assert sorted(z.imag for z in sp.eigenvalues or ()) == pytest.approx([-2.0, 2.0])
    d = spectrum(np.diag([3.0, 1.0, 0.0]), eigen=True)
    assert d is not None
    assert d.stable_rank == pytest.approx(10.0 / 9.0)
    assert d.spectral_radius == pytest.approx(3.0)
    assert spectrum(np.array([[np.nan]]), eigen=True) is None


def test_spectra_match_numpy_on_random_layer() -> None:
    rng = np.random.default_rng(5)
    w = RecurrentLayer.from_keras_arrays(
        "l", "forward", rng.normal(size=(3, 20)), rng.normal(size=(5, 20)), None
    )
    la = analyse_layer(w, None, "a")
    for k, sp in enumerate(la.spectra):
        U = w.recurrent_kernel[:, k * 5 : (k + 1) * 5]
        W = w.kernel[:, k * 5 : (k + 1) * 5]
        assert sp.U is not None and sp.W is not None
        np.testing.assert_allclose(sp.U.singular_values, np.linalg.svd(U, compute_uv=False))
        assert sp.U.spectral_radius == pytest.approx(np.max(np.abs(np.linalg.eigvals(U))))
        assert sp.W.stable_rank == pytest.approx(np.linalg.norm(W) ** 2 / np.linalg.norm(W, 2) ** 2)
        assert la.gates[k].U.spectral == pytest.approx(np.linalg.norm(U, 2))


def test_timescales_by_hand() -> None:
    w = tiny([0, 0, 0, 0], [0.0, 2.0, 0.0, 0.0])
    la = analyse_layer(w, ["x"], "a")
    t = la.timescales
    assert t is not None
    f = sigmoid(np.array(2.0))
    assert t.resting_keep == pytest.approx((f,))
    assert t.resting_tau == pytest.approx((1.0 / (1.0 - f),))
    assert t.bias_shift == pytest.approx(1.0)  # b_f = 2 is 1 above unit_forget_bias' start


def test_saturation_and_means_by_hand() -> None:
    # No recurrence, so every gate is a function of the current input alone.
    w = tiny([4.0, 1.0, 3.0, -6.0], [0.0, 0.5, 0.0, 1.0])
    x = np.array([[[-2.0], [-1.0], [0.0], [0.5], [1.0], [2.0]]], np.float64)
    x = np.concatenate([x, -x], axis=0)  # two sequences
    activity, out = probe_activity(w, x, sequence=1)
    xs = x[..., 0]
    expected = {
        "i": sigmoid(4.0 * xs),
        "f": sigmoid(xs + 0.5),
        "c": np.tanh(3.0 * xs),
        "o": sigmoid(-6.0 * xs + 1.0),
    }
    bounds = {"i": (0.1, 0.9), "f": (0.1, 0.9), "c": (-0.9, 0.9), "o": (0.1, 0.9)}
    for ga in activity.gates:
        e = expected[ga.gate]
        lo, hi = bounds[ga.gate]
        assert ga.mean == pytest.approx(e.mean(), abs=1e-6)  # replayed in float32, as Keras does
        assert ga.left_saturated == pytest.approx(np.mean(e < lo))
        assert ga.right_saturated == pytest.approx(np.mean(e > hi))
        assert ga.unit_left == pytest.approx((np.mean(e < lo),))
        assert sum(ga.hist_counts) == e.size
    assert activity.gates[0].left_saturated == pytest.approx(4 / 12)  # i: 4x <= -4 in 4 of 12 steps
    # the states of sequence 1, and the outputs, match a hand-rolled recurrence
    c = np.zeros(2)
    hs = []
    for t in range(6):
        g = {k: v[:, t] for k, v in expected.items()}
        c = g["f"] * c + g["i"] * g["c"]
        hs.append(g["o"] * np.tanh(c))
    np.testing.assert_allclose(out[..., 0], np.stack(hs, axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(activity.h[:, 0], np.stack(hs, axis=1)[1], rtol=1e-5, atol=1e-6)
    # memory on the probe: the mean forget activation per unit, and its time constant
    from lstm_report.analysis.memory import timescales

    t = timescales(w, w.cell.gates, np.asarray(activity.gates[1].unit_mean))
    f_mean = float(expected["f"].mean())
    assert t.probe_keep == pytest.approx((f_mean,), abs=1e-6)
    assert t.probe_tau == pytest.approx((1.0 / (1.0 - f_mean),), rel=1e-5)


def _findings(w: RecurrentLayer, **kw: Any) -> list[str]:
    gates = w.cell.gates
    la = analyse_layer(w, None, "a")
    return [
        f.code
        for f in layer_findings(
            model="m",
            w=w,
            anchor="a",
            gates=gates,
            stats=la.gates,
            spectra=la.spectra,
            verification=kw.get("verification"),
            activity=kw.get("activity"),
            checks=kw.get("checks", Checks()),
        )
    ]


@pytest.fixture()
def healthy(keras: Any) -> RecurrentLayer:
    layer = keras.layers.LSTM(6)
    layer.build((None, None, 3))
    k, rk, b = layer.get_weights()  # Keras' own initialisation: glorot, orthogonal, forget bias 1
    return RecurrentLayer.from_keras_arrays("lstm", "forward", k, rk, b, reads_input=True)


def test_healthy_layer_has_no_findings(healthy: RecurrentLayer) -> None:
    x = np.random.default_rng(0).normal(size=(16, 10, 3)).astype(np.float32)
    activity, _ = probe_activity(healthy, x)
    ok = Verification(1e-7, "random", 1e-4)
    assert _findings(healthy, activity=activity, verification=ok) == []


def test_each_finding_is_triggered(healthy: RecurrentLayer) -> None:
    u = healthy.units
    k, rk, b = healthy.kernel.copy(), healthy.recurrent_kernel.copy(), healthy.bias.copy()  # type: ignore[union-attr]
    rk[:, u : 2 * u] = 2.0 * np.eye(u)  # U_f with spectral radius 2
    assert _findings(RecurrentLayer.from_keras_arrays("l", "forward", k, rk, b)) == [
        "large-spectral-radius"
    ]

    k, rk, b = healthy.kernel.copy(), healthy.recurrent_kernel.copy(), healthy.bias.copy()  # type: ignore[union-attr]
    cols = [g * u + 2 for g in range(4)]  # unit 2 in every gate
    k[:, cols] = 0.0
    rk[:, cols] = 0.0
    b[cols] = 0.0
    assert _findings(RecurrentLayer.from_keras_arrays("l", "forward", k, rk, b)) == ["dead-units"]

    k, rk, b = healthy.kernel.copy(), healthy.recurrent_kernel.copy(), healthy.bias.copy()  # type: ignore[union-attr]
    for g in range(4):
        k[:, g * u + 1] = k[:, g * u]
        rk[:, g * u + 1] = rk[:, g * u]
        b[g * u + 1] = b[g * u]
    assert _findings(RecurrentLayer.from_keras_arrays("l", "forward", k, rk, b)) == [
        "duplicate-units"
    ]

    k, rk, b = healthy.kernel.copy(), healthy.recurrent_kernel.copy(), healthy.bias.copy()  # type: ignore[union-attr]
    b[3 * u] = 30.0  # unit 0's output gate pinned at 1
    sat = RecurrentLayer.from_keras_arrays("l", "forward", k, rk, b)
    x = np.random.default_rng(0).normal(size=(8, 10, 3))
    activity, _ = probe_activity(sat, x)
    assert _findings(sat, activity=activity) == ["saturated-units"]

    bad = Verification(0.25, "probe", 1e-4)
    assert _findings(healthy, verification=bad) == ["verification-mismatch"]

    k = healthy.kernel.copy()
    k[0, 0] = np.inf
    assert _findings(
        RecurrentLayer.from_keras_arrays("l", "forward", k, healthy.recurrent_kernel, healthy.bias)
    ) == ["nonfinite-weights"]


def test_thresholds_are_configurable(healthy: RecurrentLayer) -> None:
    # Each gate's block of Keras' (unseeded) orthogonal init has its own radius below 1:
    # flagged just below the largest, not just above it.
    rho = max(float(np.max(np.abs(np.linalg.eigvals(g.U)))) for g in healthy.cell.gates)
    below, above = Checks(spectral_radius_max=0.99 * rho), Checks(spectral_radius_max=1.01 * rho)
    assert "large-spectral-radius" in _findings(healthy, checks=below)
    assert "large-spectral-radius" not in _findings(healthy, checks=above)


@pytest.fixture(scope="module")
def stacked(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """LSTM -> Bidirectional(sum) -> Dense -> go_backwards LSTM: numpy and Keras feeding."""
    inp = keras.Input((9, 3), name="x")
    h = keras.layers.LSTM(5, return_sequences=True, name="first")(inp)
    h = keras.layers.Bidirectional(
        keras.layers.LSTM(4, return_sequences=True), merge_mode="sum", name="bi"
    )(h)
    h = keras.layers.Dense(6, name="proj")(h)
    h = keras.layers.LSTM(2, go_backwards=True, name="last")(h)
    m = keras.Model(inp, h)
    rng = np.random.default_rng(3)
    m.set_weights([rng.normal(0, 0.6, w.shape).astype("float32") for w in m.get_weights()])
    d = tmp_path_factory.mktemp("stacked")
    m.save(d / "stacked.keras")
    probe = rng.normal(size=(20, 9, 3)).astype("float32")
    np.save(d / "probe.npy", probe)
    return m, d, probe


def test_probe_feeds_every_layer_its_real_input(stacked: Any, keras: Any) -> None:
    from lstm_report.analysis.probing import ProbeFlow
    from lstm_report.config.yaml_file import load_config
    from lstm_report.readers.dispatch import keras_inputs, read_model

    m, d, probe = stacked
    cfg = load_config(write_config(d, "models:\n  - path: stacked.keras\n    probe: probe.npy\n"))
    mw = read_model(cfg.models[0])
    flow = ProbeFlow(mw, probe, 0, keras_inputs(cfg.models[0]))
    for w in mw.layers:
        run = flow.run(w)
        assert run.inputs is not None and run.activity is not None
        # Called, not .predict(): the same numbers without tracing a function per sub-model
        want = np.asarray(keras.Model(m.inputs, m.get_layer(w.name).input)([probe]))
        np.testing.assert_allclose(run.inputs, want, atol=1e-5)
    last = [w for w in mw.layers if w.name == "last"][0]
    # behind a Dense layer: computed in numpy from the model's graph, Keras not needed
    assert flow.run(last).activity.source == "numpy"
    bi = [w for w in mw.layers if w.name == "bi"][0]
    assert flow.run(bi).activity.source == "numpy"


def test_report_with_probe_json_contract(stacked: Any, tmp_path: Path) -> None:
    _, d, probe = stacked
    cfg = write_config(
        d, "models:\n  - path: stacked.keras\n    probe: {path: probe.npy, sequence: 3}\n", "p.yaml"
    )
    res = build_report(cfg, output=tmp_path / "r.html", json_path=tmp_path / "r.json", verify=True)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data == res.data
    for layer in data["models"][0]["layers"]:
        v = layer["verification"]
        assert v["inputs"] == "probe" and v["ok"] and v["max_abs_error"] < 1e-5
        assert set(layer["activations"]) == {"i", "f", "c", "o"}
        for g in "ifco":
            a = layer["activations"][g]
            assert 0 <= a["left_saturated"] <= 1 and 0 <= a["right_saturated"] <= 1
            sp = layer["spectra"][g]
            assert len(sp["U"]["singular_values"]) == layer["units"]
            assert "spectral_radius" in sp["U"] and "spectral_radius" not in sp["W"]
        assert len(layer["memory"]["probe_forget"]) == layer["units"]
    assert "findings" in data
    assert "decomposition verified" in (tmp_path / "r.html").read_text()


def test_random_verification_without_probe(complex_model: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f"verify: true\nmodels: [{complex_model.path}]\n")
    res = build_report(cfg, output=tmp_path / "r.html")
    for la in res.report.models[0].layers:  # nested, and both halves of a bias-free Bidirectional
        assert la.verification is not None and la.verification.inputs == "random"
        assert la.verification.ok, la.verification
    assert res.data["models"][0]["layers"][0]["activations"] is None


def test_fail_on(simple_model: Any, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path, f"checks: {{dead_unit_norm: 1000000000.0}}\nmodels: [{simple_model.path}]\n"
    )  # every unit "dead": a warning
    out = tmp_path / "r.html"
    assert main(["build", str(cfg), "-o", str(out), "-q", "--fail-on", "warning"]) == 3
    assert out.is_file()  # the report is still written for CI to attach
    assert main(["build", str(cfg), "-o", str(out), "-q", "--fail-on", "error"]) == 0
    assert main(["build", str(cfg), "-o", str(out), "-q"]) == 0
    # A large spectral radius alone is information, not a warning (issue 23)
    cfg = write_config(
        tmp_path, f"checks: {{spectral_radius_max: 0.0}}\nmodels: [{simple_model.path}]\n"
    )
    assert main(["build", str(cfg), "-o", str(out), "-q", "--fail-on", "warning"]) == 0


@pytest.mark.parametrize(
    ("setup", "probe_cfg", "message"),
    [
        (
            lambda d: np.save(d / "p.npy", np.zeros((2, 3))),
            "p.npy",
            r"must be shaped like the model input, \(sequences, steps, 5\); got shape \(2, 3\)",
        ),
        (
            lambda d: np.save(d / "p.npy", np.zeros((2, 3, 4))),
            "p.npy",
            r"has 4 features per step, but the model's LSTMs read 5",
        ),
        (
            lambda d: np.save(d / "p.npy", np.full((2, 3, 5), np.nan)),
            "p.npy",
            r"30 non-finite values",
        ),
        (
            lambda d: np.save(d / "p.npy", np.array([[["a"] * 5]])),
            "p.npy",
            r"must be numeric \(float\), got dtype <U1",
        ),
        (lambda d: None, "p.npy", r"probe file not found"),
        (
            lambda d: np.savez(d / "p.npz", a=np.zeros((1, 2, 5)), b=np.zeros((1, 2, 5))),
            "p.npz",
            r"holds 2 arrays \(a, b\); name one with 'array'",
        ),
        (
            lambda d: np.savez(d / "p.npz", a=np.zeros((1, 2, 5))),
            "{path: p.npz, array: z}",
            r"\.array: no array 'z' in p\.npz; arrays: a",
        ),
        (
            lambda d: np.save(d / "p.npy", np.zeros((2, 3, 5))),
            "{path: p.npy, sequence: 2}",
            r"\.sequence: index 2 is out of range for 2 sequences",
        ),
        (
            lambda d: (d / "p.npy").write_text("not numpy"),
            "p.npy",
            r"cannot read .*p\.npy as \.npy/\.npz",
        ),
    ],
)
def test_probe_errors(
    simple_model: Any, tmp_path: Path, setup: Any, probe_cfg: str, message: str
) -> None:
    setup(tmp_path)
    cfg = write_config(
        tmp_path, f"models:\n  - path: {simple_model.path}\n    probe: {probe_cfg}\n"
    )
    with pytest.raises(ConfigError, match=r"^models\[0\]\.probe.*" + message):
        build_report(cfg, output=tmp_path / "r.html")


def test_npz_with_named_array(simple_model: Any, tmp_path: Path) -> None:
    np.savez(tmp_path / "p.npz", train=np.zeros((3, 7, 5)), probe=np.ones((4, 7, 5)))
    cfg = write_config(
        tmp_path,
        f"models:\n  - path: {simple_model.path}\n    probe: {{path: p.npz, array: probe}}\n",
    )
    res = build_report(cfg, output=tmp_path / "r.html")
    act = res.report.models[0].layers[0].activity
    assert act is not None and act.sequences == 4


@pytest.fixture(scope="module")
def text_model(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Token ids (30 steps, vocabulary 50) -> Embedding(8) -> LSTM(4) -> Dense(1)."""
    m = keras.Sequential(
        [
            keras.Input((30,), dtype="int32"),
            keras.layers.Embedding(50, 8, name="emb"),
            keras.layers.LSTM(4, name="lstm"),
            keras.layers.Dense(1, name="head"),
        ],
        name="text",
    )
    rng = np.random.default_rng(3)
    m.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in m.get_weights()])
    d = tmp_path_factory.mktemp("text")
    m.save(d / "text.keras")
    m.save(d / "text.h5")
    return m, d


@pytest.mark.parametrize(
    ("file", "reader"), [("text.keras", "direct"), ("text.h5", "direct"), ("text.keras", "keras")]
)
def test_token_id_probe_goes_through_the_embedding(
    text_model: Any, tmp_path: Path, file: str, reader: str
) -> None:
    import keras

    m, d = text_model
    ids = np.random.default_rng(0).integers(0, 50, size=(16, 30))
    np.save(tmp_path / "ids.npy", ids)
    cfg = write_config(
        tmp_path, f"models:\n  - path: {d / file}\n    probe: ids.npy\n    reader: {reader}\n"
    )
    res = build_report(cfg, output=tmp_path / "r.html")
    (la,) = res.report.models[0].layers
    assert la.activity is not None and la.activity.sequences == 16
    expected = np.asarray(keras.Model(m.inputs, m.get_layer("lstm").input)([ids]))
    assert la.probe_inputs is not None
    np.testing.assert_allclose(la.probe_inputs, expected[: len(la.probe_inputs)], rtol=1e-6)
    assert la.activity.source == "numpy"  # the lookup table was read: no Keras needed


@pytest.mark.parametrize(
    ("probe", "message"),
    [
        (
            np.zeros((16, 1, 30), np.int64),
            r"probe data must be shaped like the model input, \(sequences, steps\) of token ids from 0 to 49 for Embedding 'emb'; got shape \(16, 1, 30\)$",
        ),
        (
            np.full((2, 30), 50),
            r"token id 50 is outside the vocabulary of Embedding 'emb' \(0 to 49\)$",
        ),
        (
            np.full((2, 30), 1.5),
            r"probe data must be token ids \(integers\) for Embedding 'emb', got non-integer values$",
        ),
    ],
)
def test_token_id_probe_errors(
    text_model: Any, tmp_path: Path, probe: np.ndarray, message: str
) -> None:
    _, d = text_model
    np.save(tmp_path / "p.npy", probe)
    cfg = write_config(tmp_path, f"models:\n  - path: {d / 'text.keras'}\n    probe: p.npy\n")
    with pytest.raises(ConfigError, match=r"^models\[0\]\.probe: " + message):
        build_report(cfg, output=tmp_path / "r.html")


def test_verification_adds_its_finding_to_those_computed_once(healthy: RecurrentLayer) -> None:
    """verify returns a Verification; the analysis adds its finding without recomputing the
    others: the same findings, in the same order, as computing them all with it."""
    from dataclasses import replace

    from lstm_report.analysis.layer import with_verification

    k, rk, b = healthy.kernel.copy(), healthy.recurrent_kernel.copy(), healthy.bias.copy()  # type: ignore[union-attr]
    u = healthy.units
    k[:, [g * u + 2 for g in range(4)]] = 0.0  # a warning (dead unit) beside the error
    rk[:, [g * u + 2 for g in range(4)]] = 0.0
    b[[g * u + 2 for g in range(4)]] = 0.0
    w = RecurrentLayer.from_keras_arrays("l", "forward", k, rk, b)
    la = analyse_layer(w, None, "a", model="m")
    for v in (Verification(0.25, "probe", 1e-4), Verification(1e-6, "probe", 1e-4)):
        got = with_verification(la, "m", v)
        full = layer_findings(
            model="m",
            w=w,
            anchor="a",
            gates=w.cell.gates,
            stats=la.gates,
            spectra=la.spectra,
            verification=v,
            activity=None,
            checks=Checks(),
        )
        assert got.verification == v
        assert got.findings == full
        assert replace(got, verification=None, findings=la.findings).__dict__ == la.__dict__
    assert with_verification(la, "m", None) is la


def test_the_nonfinite_message_counts_and_names_each_array() -> None:
    from lstm_report.analysis.findings import nonfinite_message

    assert nonfinite_message([("W_i", 0), ("U_f", 0)]) is None
    assert nonfinite_message([("W_i", 1), ("U_f", 0)]) == (
        "1 non-finite weight (NaN or Inf) in W_i (1); the layer's output is undefined and "
        "its norms cannot be computed."
    )
    one = nonfinite_message([("W_i", 2), ("U_c", 3)])
    assert one is not None and one.startswith(
        "5 non-finite weights (NaN or Inf) in W_i (2), U_c (3);"
    )
