"""Issue 5: comparisons and checkpoint series, against hand computations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report import build_report
from lstm_report.analysis.compare import compare_layers, delta
from lstm_report.config.resolve import check_pair
from lstm_report.config.schema import natural_key
from lstm_report.config.yaml_file import load_config
from lstm_report.errors import ConfigError
from lstm_report.model.layers import RecurrentLayer
from tests.conftest import write_config


def test_delta_by_hand() -> None:
    d = delta(np.array([3.0, 0.0]), np.array([3.0, 4.0]))
    assert d.delta_fro == pytest.approx(4.0)
    assert d.relative == pytest.approx(4.0 / 3.0)
    assert d.cosine == pytest.approx(3.0 / 5.0)
    z = delta(np.zeros(3), np.array([1.0, 0.0, 0.0]))
    assert z.delta_fro == pytest.approx(1.0) and z.relative is None and z.cosine is None


def test_untrained_biases_have_no_cosine(keras: Any) -> None:
    layer = keras.layers.LSTM(3)
    layer.build((None, None, 2))
    k, r, b = layer.get_weights()
    a = RecurrentLayer.from_keras_arrays("l", "forward", k, r, b)
    b2 = b.copy() + 0.5
    c = compare_layers(a, RecurrentLayer.from_keras_arrays("l", "forward", k, r, b2), "x")
    gates = {g.gate: g for g in c.gates}
    assert gates["i"].b is not None and gates["i"].b.cosine is None  # b_i starts at exactly 0
    assert gates["f"].b is not None and gates["f"].b.cosine is not None  # b_f starts at 1
    assert gates["i"].W.delta_fro == 0.0 and gates["i"].W.cosine == pytest.approx(1.0)


def test_top_units_by_hand() -> None:
    k = np.zeros((2, 8))
    r = np.zeros((2, 8))
    k2 = k.copy()
    k2[0, 1] = 3.0  # unit 1, gate i
    k2[1, 7] = 4.0  # unit 1, gate o
    r2 = r.copy()
    r2[0, 4] = 1.0  # unit 0, gate c
    c = compare_layers(
        RecurrentLayer.from_keras_arrays("l", "forward", k, r, None),
        RecurrentLayer.from_keras_arrays("l", "forward", k2, r2, None),
        "x",
    )
    assert c.top_units[0] == (1, pytest.approx(5.0))
    assert c.top_units[1] == (0, pytest.approx(1.0))


def test_shape_mismatch_is_a_clear_error() -> None:
    a = RecurrentLayer.from_keras_arrays("enc", "forward", np.zeros((2, 8)), np.zeros((2, 8)), None)
    b = RecurrentLayer.from_keras_arrays("enc", "forward", np.zeros((3, 8)), np.zeros((2, 8)), None)
    with pytest.raises(
        ConfigError,
        match=r"^compare\[0\]: layer 'enc' has kernel shape \(2, 8\) in the baseline but \(3, 8\) in the candidate",
    ):
        check_pair(a, b, "compare[0]")


def test_natural_order() -> None:
    names = [
        "epoch_10.keras",
        "epoch_5.keras",
        "epoch_1.keras",
        "epoch_100.keras",
        "epoch_20.keras",
    ]
    assert sorted(names, key=natural_key) == [
        "epoch_1.keras",
        "epoch_5.keras",
        "epoch_10.keras",
        "epoch_20.keras",
        "epoch_100.keras",
    ]


@pytest.fixture(scope="module")
def run(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five checkpoints of one model whose weights drift by known amounts."""
    d = tmp_path_factory.mktemp("run")
    (d / "ckpt").mkdir()
    m = keras.Sequential(
        [keras.Input((4, 2)), keras.layers.LSTM(3, name="lstm"), keras.layers.Dense(1, name="head")]
    )
    base = m.get_weights()
    for epoch in (1, 2, 5, 10, 20):
        m.set_weights([w * (1.0 + 0.1 * epoch) for w in base])
        m.save(d / "ckpt" / f"epoch_{epoch}.keras")
    other = keras.Sequential([keras.Input((4, 2)), keras.layers.LSTM(5, name="lstm")])
    other.save(d / "other.keras")
    return d


def test_series_from_glob_in_natural_order(run: Path, tmp_path: Path) -> None:
    cfg = write_config(run, "models:\n  - path: ckpt/epoch_*.keras\n    name: run\n", "series.yaml")
    res = build_report(cfg, output=tmp_path / "r.html", json_path=tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    cps = data["models"][0]["series"]["checkpoints"]
    assert [c["name"] for c in cps] == ["epoch_1", "epoch_2", "epoch_5", "epoch_10", "epoch_20"]
    assert data["models"][0]["path"].endswith("epoch_20.keras")  # the last one, in full
    # every checkpoint is the first one scaled: the norms scale, the change is known
    w1 = res.report.models[0].layers[0].weights
    k = w1.kernel / 3.0  # epoch 20 = base * 3.0
    f = {e: 1.0 + 0.1 * e for e in (1, 2, 5, 10, 20)}
    for c, e in zip(cps, (1, 2, 5, 10, 20)):
        g = c["layers"][0]["gates"]["f"]
        assert g["W_fro"] == pytest.approx(np.linalg.norm(k[:, 3:6] * f[e]), rel=1e-5)
    # the spectral radius of U_f and the median resting forget timescale, by numpy
    r20 = w1.recurrent_kernel.astype(np.float64) / 3.0 * f[20]
    assert cps[-1]["layers"][0]["gates"]["f"]["U_spectral_radius"] == pytest.approx(
        np.max(np.abs(np.linalg.eigvals(r20[:, 3:6]))), rel=1e-5
    )
    b_f = w1.bias[3:6].astype(np.float64)  # the last checkpoint, analysed in full
    assert cps[-1]["layers"][0]["tau_median"] == pytest.approx(
        np.median(1.0 + np.exp(b_f)), rel=1e-5
    )
    assert cps[0]["layers"][0]["gates"]["i"]["relative_change"] is None
    # from epoch 1 to 2 every weight grows by 1.2/1.1: relative change 1/11
    assert cps[1]["layers"][0]["gates"]["i"]["relative_change"] == pytest.approx(
        0.1 / 1.1, rel=1e-5
    )
    assert "Across 5 checkpoints" in (tmp_path / "r.html").read_text()


def test_series_as_list_and_missing_glob(run: Path) -> None:
    cfg = load_config(
        write_config(run, "models:\n  - path: [ckpt/epoch_5.keras, ckpt/epoch_1.keras]\n", "l.yaml")
    )
    assert [p.name for p in cfg.models[0].series or ()] == [
        "epoch_5.keras",
        "epoch_1.keras",
    ]  # as listed
    with pytest.raises(
        ConfigError, match=r"^models\[0\]\.path: no file matches 'nothing/\*\.keras'"
    ):
        load_config(write_config(run, "models:\n  - path: nothing/*.keras\n", "m.yaml"))


def test_comparison_json_and_page(run: Path, tmp_path: Path) -> None:
    cfg = write_config(
        run,
        "models:\n  - {path: ckpt/epoch_1.keras, name: before}\n  - {path: ckpt/epoch_20.keras, name: after}\n"
        "compare:\n  - {baseline: before, candidate: after}\n",
        "cmp.yaml",
    )
    res = build_report(cfg, output=tmp_path / "r.html", json_path=tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    (c,) = data["comparisons"]
    assert (c["baseline"], c["candidate"]) == ("before", "after")
    (layer,) = c["layers"]
    assert (layer["name"], layer["direction"]) == ("lstm", "forward")
    # after = before * 3.0 / 1.1: relative change 3/1.1 - 1 for every matrix, cosine 1
    for g in "ifco":
        for m in ("W", "U"):
            d = layer["gates"][g][m]
            assert d["relative"] == pytest.approx(3.0 / 1.1 - 1.0, rel=1e-5)
            assert d["cosine"] == pytest.approx(1.0, abs=1e-6)
    a = res.report.models[0].layers[0].weights
    b = res.report.models[1].layers[0].weights
    assert layer["gates"]["o"]["U"]["delta_fro"] == pytest.approx(
        np.linalg.norm(b.recurrent_kernel[:, 9:] - a.recurrent_kernel[:, 9:]), rel=1e-6
    )
    assert "What changed: before → after" in (tmp_path / "r.html").read_text()


def test_compare_errors(run: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^compare\[0\]\.candidate: no model named 'aftr'; did you mean 'after'\?",
    ):
        load_config(
            write_config(
                run,
                "models:\n  - {path: other.keras, name: before}\n  - {path: other.keras, name: after}\ncompare: [{baseline: before, candidate: aftr}]\n",
                "e.yaml",
            )
        )
    cfg = write_config(
        run,
        "models:\n  - {path: ckpt/epoch_1.keras, name: a}\n  - {path: other.keras, name: b}\ncompare: [{baseline: a, candidate: b}]\n",
        "e2.yaml",
    )
    with pytest.raises(
        ConfigError,
        match=r"^compare\[0\]: layer 'lstm' has kernel shape \(2, 12\) in the baseline but \(2, 20\)",
    ):
        build_report(cfg, output=tmp_path / "r.html")


def _gate_slices(k: np.ndarray, r: np.ndarray, b: np.ndarray, g: int, u: int) -> list[np.ndarray]:
    """Gate g of a Keras LSTM's arrays, sliced by hand: W, U, b."""
    return [k[:, g * u : (g + 1) * u], r[:, g * u : (g + 1) * u], b[g * u : (g + 1) * u]]


def test_change_is_rms_of_the_change_over_the_gates_pooled_rms() -> None:
    # Issue 20: one change measure, robust to a zero baseline (Keras starts b_i, b_c, b_o
    # at 0), against numpy by hand.
    rng = np.random.default_rng(3)
    u, d = 4, 3
    k, r = rng.normal(size=(d, 4 * u)), rng.normal(size=(u, 4 * u))
    b = np.concatenate([np.zeros(u), np.ones(u), np.zeros(2 * u)])
    k2, r2 = k + 0.1 * rng.normal(size=k.shape), r + 0.05 * rng.normal(size=r.shape)
    b2 = b + 0.01 * rng.normal(size=b.shape)
    a, c = (
        RecurrentLayer.from_keras_arrays("l", "forward", k, r, b),
        RecurrentLayer.from_keras_arrays("l", "forward", k2, r2, b2),
    )
    ld = compare_layers(a, c, "x")
    back = compare_layers(c, a, "x")
    for g, (gd, gback) in enumerate(zip(ld.gates, back.gates)):
        before, after = _gate_slices(k, r, b, g, u), _gate_slices(k2, r2, b2, g, u)
        pooled = np.sqrt(
            sum(float((x**2).sum()) for x in before + after) / (2 * sum(x.size for x in before))
        )
        for d_, x, y in zip((gd.W, gd.U, gd.b), before, after):
            assert d_ is not None and d_.change is not None
            want = np.sqrt(np.mean((y - x) ** 2)) / pooled
            assert d_.change == pytest.approx(want, rel=1e-12)
        # symmetric: the same number from the candidate's side
        for one, two in zip((gd.W, gd.U, gd.b), (gback.W, gback.U, gback.b)):
            assert one is not None and two is not None
            assert one.change == pytest.approx(two.change, rel=1e-12)
    i = ld.gates[0]
    assert i.b is not None and i.b.relative is None  # ‖b_i‖ = 0: the old ratio is undefined
    # a tiny change of a zero bias is a tiny change, not the largest one (it was 4.3× before)
    assert i.b.change is not None and i.b.change < i.W.change


def test_change_is_in_the_json_and_the_page(tmp_path: Path, keras: Any) -> None:
    from lstm_report.analysis.takeaways import change_text

    assert change_text(1.002) == "1.002" and change_text(0.15321) == "0.1532"
    inp = keras.Input((None, 2))
    model = keras.Model(inp, keras.layers.LSTM(3, name="lstm")(inp))
    model.save(tmp_path / "a.keras")
    k, r, b = model.get_layer("lstm").get_weights()
    model.get_layer("lstm").set_weights([k, r, b + 0.25])  # only the biases move
    model.save(tmp_path / "b.keras")
    cfg = write_config(
        tmp_path,
        "models: [{path: a.keras, name: a}, {path: b.keras, name: b}]\n"
        "compare: [{baseline: a, candidate: b}]\n",
    )
    build_report(cfg, output=tmp_path / "r.html", json_path=tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    gates = data["comparisons"][0]["layers"][0]["gates"]
    assert gates["i"]["W"]["change"] == 0.0
    assert gates["i"]["b"]["change"] > 0 and gates["i"]["b"]["relative"] is None
    learned = next(t["text"] for t in data["takeaways"] if t["code"] == "learned")
    # the biases were all that changed: the takeaway says so (it ignored them before)
    assert "the RMS change of b_" in learned
    html = (tmp_path / "r.html").read_text()
    assert '<th class="num">change</th>' in html and ">relative<" not in html
