"""Issue 5: the Python API on in-memory models, and the Keras callback in a real fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report import build_report


def _model(keras: Any) -> Any:
    m = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras.layers.LSTM(4, name="lstm"),
            keras.layers.Dense(1, name="head"),
        ],
        name="tiny",
    )
    m.compile(optimizer="adam", loss="mse")
    return m


def test_build_report_from_in_memory_model(keras: Any, tmp_path: Path) -> None:
    m = _model(keras)
    res = build_report(
        m, output=tmp_path / "r.html", options={"feature_names": ["a", "b", "c"], "title": "live"}
    )
    assert res.html_path == tmp_path / "r.html" and res.html_path.is_file()
    assert res.data["title"] == "live"
    layer = res.data["models"][0]["layers"][0]
    k, r, b = m.get_layer("lstm").get_weights()
    assert layer["gates"]["f"]["W"]["fro"] == np.float64(
        np.linalg.norm(k[:, 4:8].astype(np.float64))
    )
    assert [f["name"] for f in layer["feature_importance"]] == ["a", "b", "c"]
    assert layer["verification"]["ok"]  # Keras is loaded anyway: verified by default


def test_build_report_from_mapping(simple_model: Any, tmp_path: Path) -> None:
    res = build_report({"models": [{"path": str(simple_model.path)}]}, output=tmp_path / "r.html")
    assert res.report.models[0].layers[0].weights.name == "lstm"


def test_callback_in_a_real_fit(keras: Any, tmp_path: Path) -> None:
    from lstm_report.keras import ReportCallback

    m = _model(keras)
    x = np.random.default_rng(0).normal(size=(64, 6, 3)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None]
    cb = ReportCallback(
        tmp_path / "run.html",
        json_path=tmp_path / "run.json",
        every=2,
        feature_names=["a", "b", "c"],
    )
    m.fit(x, y, epochs=6, batch_size=16, verbose=0, callbacks=[cb])
    data = json.loads((tmp_path / "run.json").read_text())
    names = [c["name"] for c in data["models"][0]["series"]["checkpoints"]]
    assert names == ["epoch 2", "epoch 4", "epoch 6"]
    # the report describes the trained model, not the initial one
    k = m.get_layer("lstm").get_weights()[0]
    got = data["models"][0]["layers"][0]["gates"]["i"]["W"]["fro"]
    # to the last bits: summation order (SIMD width, alignment) may move the last ulp
    assert got == pytest.approx(float(np.linalg.norm(k[:, :4].astype(np.float64))), rel=1e-14)
    assert cb.result is not None and cb.result.html_path.is_file()


def test_callback_snapshots_are_copies(keras: Any, tmp_path: Path) -> None:
    # The cost per epoch is measured in benchmarks/bench_callback.py, not asserted here.
    from lstm_report.keras import ReportCallback

    m = _model(keras)
    cb = ReportCallback(tmp_path / "r.html", every=1)
    cb.set_model(m)
    cb.on_epoch_end(0)
    k = m.get_layer("lstm").get_weights()[0]
    m.get_layer("lstm").set_weights([w * 0 for w in m.get_layer("lstm").get_weights()])
    cb.on_epoch_end(1)
    (_, first), (_, second) = cb.snapshots
    np.testing.assert_array_equal(first.layers[0].kernel, k)  # not changed by later training
    assert not second.layers[0].kernel.any()


def test_callback_checks_its_keys_at_construction() -> None:
    from lstm_report.errors import ConfigError
    from lstm_report.keras import ReportCallback

    with pytest.raises(
        ConfigError, match=r"^feature_name: unknown key; did you mean 'feature_names'\?"
    ):
        ReportCallback("r.html", feature_name=["a"])
    with pytest.raises(ConfigError, match="every: expected a positive number of epochs"):
        ReportCallback("r.html", every=0)


def test_callback_checks_the_model_before_the_first_epoch(keras: Any, tmp_path: Path) -> None:
    from lstm_report.errors import ConfigError
    from lstm_report.keras import ReportCallback

    m = _model(keras)
    before = [w.copy() for w in m.get_weights()]
    cb = ReportCallback(tmp_path / "r.html", feature_names=["a", "b"])
    x = np.zeros((8, 6, 3), "float32")
    with pytest.raises(
        ConfigError,
        match="^feature_names: 2 names given, but LSTM 'lstm' .* reads 3 input features",
    ):
        m.fit(x, np.zeros((8, 1)), epochs=50, verbose=0, callbacks=[cb])
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)  # not one step was trained


def test_a_failed_report_never_costs_the_trained_model(keras: Any, tmp_path: Path) -> None:
    from lstm_report.errors import OutputError
    from lstm_report.keras import ReportCallback

    m = _model(keras)
    m.compile(optimizer="adam", loss="mse", run_eagerly=True)  # no tracing: see test_tracking
    (tmp_path / "taken").mkdir()  # the report's path is a folder: writing it fails
    cb = ReportCallback(tmp_path / "taken")
    x = np.zeros((8, 6, 3), "float32")
    with pytest.warns(RuntimeWarning, match="the report .*taken was not written: .*is a directory"):
        m.fit(x, np.zeros((8, 1)), epochs=1, verbose=0, callbacks=[cb])
    assert cb.result is None and cb.error is not None
    m.save(tmp_path / "after.keras")  # the script goes on
    strict = ReportCallback(tmp_path / "taken", raise_errors=True)
    with pytest.raises(OutputError, match="is a directory"):
        m.fit(x, np.zeros((8, 1)), epochs=1, verbose=0, callbacks=[strict])
