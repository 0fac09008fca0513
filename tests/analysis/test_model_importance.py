"""Importance on the model's prediction (issue 23 items 2, 3; issue 20 items 6, 10): the
numbers against occlusion computed independently by keras.Model itself and by onnx's
reference evaluator; the target, its reason, and feature and token names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.analysis.model import analyse_model
from lstm_report.config.resolve import model_plan
from lstm_report.config.schema import ModelSpec, ProbeSpec
from lstm_report.readers.dispatch import read_model

STEPS, LAG = 20, 8


def _spec(path: Path, **kw: Any) -> ModelSpec:
    return ModelSpec(index=0, path=path, name=path.name, **kw)


def _analyse(path: Path, probe: np.ndarray, keras_inputs: Any = None, **kw: Any) -> Any:
    spec = _spec(path, probe=ProbeSpec(path=path), **kw)
    weights = read_model(spec, "direct")
    return analyse_model(
        model_plan(spec, weights), weights, 0, probe=probe, keras_inputs=keras_inputs
    )


def _lag_model(keras: Any) -> Any:
    """Normalization → causal Conv1D that picks x0 eight steps back → an LSTM that forgets
    all but its last step → Dense: the prediction is a function of x0[T−1−8] alone."""
    inp = keras.Input((STEPS, 2))
    norm = keras.layers.Normalization(mean=[0.5, -1.0], variance=[4.0, 1.0])
    conv = keras.layers.Conv1D(1, LAG + 1, padding="causal")
    lstm = keras.layers.LSTM(2)
    dense = keras.layers.Dense(1)
    out = dense(lstm(conv(norm(inp))))
    model = keras.Model(inp, out)
    k = np.zeros((LAG + 1, 2, 1), np.float32)
    k[0, 0, 0] = 1.0  # causal: tap 0 is LAG steps back
    conv.set_weights([k, np.zeros(1, np.float32)])
    W = np.zeros((1, 8), np.float32)
    W[0, 4:6] = [1.5, -1.0]  # candidate
    b = np.zeros(8, np.float32)
    b[0:2], b[2:4], b[6:8] = 10.0, -10.0, 10.0  # i ≈ 1, f ≈ 0, o ≈ 1
    lstm.set_weights([W, np.zeros((2, 8), np.float32), b])
    dense.set_weights([np.array([[1.0], [0.5]], np.float32), np.zeros(1, np.float32)])
    return model


def _keras_occlusion(model: Any, x: np.ndarray) -> tuple[list[float], list[float]]:
    base = np.asarray(model(x), np.float64)
    mean = x.mean(axis=(0, 1))
    feats, steps = [], []
    for j in range(x.shape[2]):
        xo = x.copy()
        xo[:, :, j] = mean[j]
        feats.append(float(np.mean((np.asarray(model(xo), np.float64) - base) ** 2)))
    for t in range(x.shape[1]):
        xo = x.copy()
        xo[:, t, :] = mean
        steps.append(float(np.mean((np.asarray(model(xo), np.float64) - base) ** 2)))
    return feats, steps


def test_normalization_conv_front_importance_on_the_prediction(keras: Any, tmp_path: Path) -> None:
    model = _lag_model(keras)
    path = tmp_path / "lag.keras"
    model.save(path)
    x = np.random.default_rng(0).normal(size=(40, STEPS, 2)).astype(np.float32)
    m = _analyse(path, x, feature_names=("co2_z", "pulse"))
    imp = m.input_importance
    assert imp.target == "model_output" and imp.target_reason is None and imp.layer is None
    assert [f.name for f in imp.features] == ["co2_z", "pulse"]  # names survive the front
    feats, steps = _keras_occlusion(model, x)
    assert [f.value for f in imp.features] == pytest.approx(feats, rel=1e-4, abs=1e-9)
    assert list(imp.per_step) == pytest.approx(steps, rel=1e-4, abs=1e-9)
    assert int(np.argmax(imp.per_step)) == STEPS - 1 - LAG
    assert imp.features[1].value == 0.0
    # the LSTM behind the front layers gets probe activity, computed in numpy
    assert m.layers[0].activity is not None
    assert not any("no probe activity" in n for n in m.notes)


def _stopped_model(keras: Any, tmp_path: Path) -> tuple[Any, Path]:
    model = keras.Sequential(
        [
            keras.Input((STEPS, 2)),
            keras.layers.LSTM(3, return_sequences=True),
            keras.layers.Conv1DTranspose(2, 3),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1),
        ]
    )
    path = tmp_path / "stopped.keras"
    model.save(path)
    return model, path


def test_a_layer_numpy_does_not_replay_is_named_in_target_reason(
    keras: Any, tmp_path: Path
) -> None:
    model, path = _stopped_model(keras, tmp_path)
    x = np.random.default_rng(1).normal(size=(8, STEPS, 2)).astype(np.float32)
    imp = _analyse(path, x).input_importance  # no Keras to fall back on
    assert imp.target == "lstm_output" and imp.layer == model.layers[0].name
    reason = imp.target_reason
    assert model.layers[1].name in reason and "Conv1DTranspose" in reason
    assert "--reader keras" in reason


def test_keras_runs_what_numpy_does_not_and_says_so(keras: Any, tmp_path: Path) -> None:
    from lstm_report.readers.dispatch import keras_inputs

    model, path = _stopped_model(keras, tmp_path)
    x = np.random.default_rng(1).normal(size=(8, STEPS, 2)).astype(np.float32)
    imp = _analyse(path, x, keras_inputs(_spec(path))).input_importance
    assert imp.target == "model_output"
    assert (
        imp.target_reason.startswith("run by Keras") and model.layers[1].name in imp.target_reason
    )
    feats, _ = _keras_occlusion(model, x)
    assert [f.value for f in imp.features] == pytest.approx(feats, rel=1e-4, abs=1e-9)


def test_unsafe_keras_fallback_says_why(keras: Any, tmp_path: Path) -> None:
    # issue 20 item 10: Keras refuses the file (a Lambda) -> the reason is on the target
    from lstm_report.readers.dispatch import keras_inputs

    model = keras.Sequential(
        [
            keras.Input((STEPS, 2)),
            keras.layers.LSTM(3),
            keras.layers.Lambda(lambda v: v * 2.0),
        ]
    )
    path = tmp_path / "lambda.keras"
    model.save(path)
    x = np.random.default_rng(1).normal(size=(8, STEPS, 2)).astype(np.float32)
    imp = _analyse(path, x, keras_inputs(_spec(path))).input_importance
    assert imp.target == "lstm_output"
    assert "Lambda" in imp.target_reason and "Keras could not run the model" in imp.target_reason


def _token_model(keras: Any) -> Any:
    """Embedding (token 7 alone is non-zero) → an LSTM that keeps what it saw → sigmoid."""
    model = keras.Sequential(
        [
            keras.Input((STEPS,), dtype="int32"),
            keras.layers.Embedding(10, 2),
            keras.layers.LSTM(2),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    emb, lstm, dense = model.layers
    table = np.zeros((10, 2), np.float32)
    table[7] = [3.0, 0.0]
    emb.set_weights([table])
    W = np.zeros((2, 8), np.float32)
    W[0, 4:6] = 1.0
    b = np.zeros(8, np.float32)
    b[0:2], b[2:4], b[6:8] = 0.0, 10.0, 10.0  # f ≈ 1 keeps c; o ≈ 1
    lstm.set_weights([W, np.zeros((2, 8), np.float32), b])
    dense.set_weights([np.array([[4.0], [2.0]], np.float32), np.array([-1.0], np.float32)])
    return model


def test_token_importance_finds_the_token_and_its_positions(keras: Any, tmp_path: Path) -> None:
    model = _token_model(keras)
    path = tmp_path / "tok.keras"
    model.save(path)
    rng = np.random.default_rng(2)
    ids = rng.integers(1, 7, size=(60, STEPS))
    ids[::2, rng.integers(0, 3)] = 7  # the label: token 7 in the first positions
    vocab = tuple(f"w{k}" for k in range(10))
    m = _analyse(path, ids, vocabulary=vocab, pad_token=0)
    imp = m.input_importance
    assert imp.target == "model_output" and imp.pad_token == 0 and imp.features == ()
    assert imp.per_token[0].name == "w7"
    values = [t.value for t in imp.per_token]
    assert values == sorted(values, reverse=True) and len(imp.per_token) <= 20
    # against Keras: every 7 replaced by the padding token
    base = np.asarray(model(ids), np.float64)
    blank = np.asarray(model(np.where(ids == 7, 0, ids)), np.float64)
    assert imp.per_token[0].value == pytest.approx(float(np.mean((blank - base) ** 2)), rel=1e-4)
    assert imp.per_token[0].low <= imp.per_token[0].value <= imp.per_token[0].high
    steps = []
    for t in range(STEPS):
        o = ids.copy()
        o[:, t] = 0
        steps.append(float(np.mean((np.asarray(model(o), np.float64) - base) ** 2)))
    assert list(imp.per_step) == pytest.approx(steps, rel=1e-4, abs=1e-9)
    assert int(np.argmax(imp.per_step)) < 3
    # the heatmap rows of the Embedding-fed LSTM are embedding dimensions
    assert m.layers[0].weights.reads_embedding


def _two_layer_onnx(path: Path) -> tuple[Any, int, int]:
    """A PyTorch-style 2-layer LSTM export: X [seq, batch, 3] → LSTM → Squeeze → LSTM →
    Squeeze → the last step → MatMul head."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    H, F = 4, 3

    def init(name: str, shape: tuple[int, ...]) -> Any:
        return numpy_helper.from_array((rng.normal(size=shape) * 0.5).astype(np.float32), name)

    inits = [
        init("W1", (1, 4 * H, F)),
        init("R1", (1, 4 * H, H)),
        init("B1", (1, 8 * H)),
        init("W2", (1, 4 * H, H)),
        init("R2", (1, 4 * H, H)),
        init("B2", (1, 8 * H)),
        init("head", (H, 2)),
        numpy_helper.from_array(np.array([1], np.int64), "ax1"),
        numpy_helper.from_array(np.array([-1], np.int64), "last"),
        numpy_helper.from_array(np.array([0], np.int64), "ax0"),
    ]
    nodes = [
        helper.make_node("LSTM", ["X", "W1", "R1", "B1"], ["Y1"], name="lstm1", hidden_size=H),
        helper.make_node("Squeeze", ["Y1", "ax1"], ["S1"]),
        helper.make_node("LSTM", ["S1", "W2", "R2", "B2"], ["Y2"], name="lstm2", hidden_size=H),
        helper.make_node("Squeeze", ["Y2", "ax1"], ["S2"]),
        helper.make_node("Gather", ["S2", "last"], ["G"], axis=0),
        helper.make_node("Squeeze", ["G", "ax0"], ["L"]),
        helper.make_node("MatMul", ["L", "head"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["seq", "batch", F])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 2])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return model, H, F


def test_onnx_stacked_layers_chain_and_importance_runs_the_graph(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    path = tmp_path / "two.onnx"
    model, H, F = _two_layer_onnx(path)
    x = np.random.default_rng(4).normal(size=(12, 9, F)).astype(np.float32)
    m = _analyse(path, x)
    assert not any("no probe activity" in n or "Keras" in n for n in m.notes)
    assert all(la.activity is not None for la in m.layers)
    # layer 2 was fed what the graph feeds it
    ev = ReferenceEvaluator(model)
    s1 = ev.run(["S1"], {"X": x.transpose(1, 0, 2)})[0].transpose(1, 0, 2)
    assert np.max(np.abs(m.layers[1].probe_inputs - s1[:32])) < 1e-5
    imp = m.input_importance
    assert imp.target == "model_output"

    def run(v: np.ndarray) -> np.ndarray:
        return np.asarray(ev.run(["out"], {"X": v.transpose(1, 0, 2)})[0], np.float64)

    base, mean = run(x), x.mean(axis=(0, 1))
    for j, f in enumerate(imp.features):
        xo = x.copy()
        xo[:, :, j] = mean[j]
        assert f.value == pytest.approx(float(np.mean((run(xo) - base) ** 2)), rel=1e-4)


def test_token_report_json_and_page(keras: Any, tmp_path: Path) -> None:
    import json

    from lstm_report import build_report
    from tests.conftest import write_config

    _token_model(keras).save(tmp_path / "tok.keras")
    rng = np.random.default_rng(5)
    ids = rng.integers(1, 7, size=(30, STEPS))
    ids[::2, 1] = 7
    np.save(tmp_path / "ids.npy", ids)
    (tmp_path / "vocab.txt").write_text("\n".join(f"w{k}" for k in range(10)), "utf-8")
    cfg = write_config(
        tmp_path,
        "models:\n  - {path: tok.keras, probe: ids.npy, vocabulary: vocab.txt, pad_token: 0}\n",
    )
    res = build_report(cfg, output=tmp_path / "r.html", json_path=tmp_path / "r.json", verify=False)
    imp = json.loads((tmp_path / "r.json").read_text())["models"][0]["input_importance"]
    assert imp["target"] == "model_output" and imp["target_reason"] is None
    assert imp["pad_token"] == 0 and imp["per_token"][0]["token"] == "w7"
    assert set(imp["per_token"][0]) == {"token", "value", "low", "high"}
    assert len(imp["per_step"]) == STEPS and int(np.argmax(imp["per_step"])) == 1
    html = res.html_path.read_text()
    assert "the model&#39;s prediction" in html or "the model's prediction" in html
    assert "embedding dimension" in html and "token w7" in html


def _cli_report(tmp_path: Path, model: Path, probe: np.ndarray, *extra: str) -> dict[str, Any]:
    import json

    from lstm_report.cli import main

    np.save(tmp_path / "probe.npy", probe)
    out = tmp_path / "r.json"
    args = ["build", str(model), "--probe", str(tmp_path / "probe.npy"), "--json", str(out)]
    assert main([*args, "-o", str(tmp_path / "r.html"), "-q", *extra]) == 0
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def _headline(data: dict[str, Any]) -> str:
    (h,) = [h for h in data["headlines"] if h["anchor"].endswith("-importance")]
    return str(h["text"])


def test_the_headline_states_the_target_and_its_reason(keras: Any, tmp_path: Path) -> None:
    """Issue 23 item 2: the summary's answer says what the importance was measured on, with
    the numbers of the JSON: the prediction where the model runs, else the last LSTM's
    output and why (numpy stops at a layer, and Keras refuses to load it)."""
    x = np.random.default_rng(1).normal(size=(8, STEPS, 2)).astype(np.float32)
    _lag_model(keras).save(tmp_path / "lag.keras")
    data = _cli_report(tmp_path, tmp_path / "lag.keras", x)
    imp, text = data["models"][0]["input_importance"], _headline(data)
    assert imp["target"] == "model_output" and imp["target_reason"] is None
    assert text.startswith("Measured on its prediction, lag.keras depends mostly on x0 (")
    assert "mean squared change of the model's prediction" in text
    top = max(imp["features"], key=lambda f: f["value"])
    assert f"{top['name']} ({top['value']:.3g})" in text

    inp = keras.Input((STEPS, 2))
    lstm = keras.layers.LSTM(3, name="rnn")
    keras.Model(inp, keras.layers.Lambda(lambda v: v * 2.0, name="double")(lstm(inp))).save(
        tmp_path / "lambda.keras"
    )
    data = _cli_report(tmp_path, tmp_path / "lambda.keras", x)
    imp, text = data["models"][0]["input_importance"], _headline(data)
    assert imp["target"] == "lstm_output" and imp["layer"] == "rnn"
    assert "'double'" in imp["target_reason"] and "Keras could not run" in imp["target_reason"]
    assert text.startswith("Measured on the output of rnn, not on its prediction (numpy stops")
    assert "mean squared change of the output of rnn" in text
    for f in imp["features"]:
        assert f"{f['name']} ({f['value']:.3g})" in text


def test_the_pad_token_flag_is_the_blank_of_the_occlusion(keras: Any, tmp_path: Path) -> None:
    """Issue 23 item 3: --pad-token N on the command line (0 without it) is what every
    occurrence of a token is replaced by, against keras.Model on the same blanks."""
    model = _token_model(keras)
    table = np.zeros((10, 2), np.float32)
    table[7], table[3] = [3.0, 0.0], [-1.5, 0.0]  # blanking with 3 is not blanking with 0
    model.layers[0].set_weights([table])
    model.save(tmp_path / "tok.keras")
    rng = np.random.default_rng(6)
    ids = rng.integers(1, 7, size=(24, STEPS))
    ids[::2, 1] = 7
    base = np.asarray(model(ids), np.float64)
    for flag, pad in (((), 0), (("--pad-token", "3"), 3)):
        data = _cli_report(tmp_path, tmp_path / "tok.keras", ids, *flag)
        imp = data["models"][0]["input_importance"]
        assert imp["pad_token"] == pad
        tokens = {t["token"]: t["value"] for t in imp["per_token"]}
        assert str(pad) not in tokens and "7" in tokens
        blank = np.asarray(model(np.where(ids == 7, pad, ids)), np.float64)
        assert tokens["7"] == pytest.approx(float(np.mean((blank - base) ** 2)), rel=1e-4)
        assert f"replaced by the padding token {pad}" in _headline(data)
    other = np.asarray(model(np.where(ids == 7, 0, ids)), np.float64)
    assert abs(float(np.mean((other - base) ** 2)) - tokens["7"]) > 1e-2 * tokens["7"]
