"""Time the input importance on the model's prediction against the old target, the last
recurrent layer's output (issue 23): the demo, and 2×LSTM(256) on 64 × 100 probe steps.

    python benchmarks/bench_importance.py

Prints seconds for each target and their ratio, side by side. Keras only builds the
2×LSTM(256) file; the timed work is numpy.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _time(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _compare(label: str, weights: Any, probe: np.ndarray) -> None:
    from lstm_report.analysis.importance import occlusion_importance
    from lstm_report.analysis.model_importance import _lstm_forward
    from lstm_report.analysis.model_replay import model_forward

    names = [f"x{j}" for j in range(probe.shape[2])]
    last = weights.layers[-1].name
    on_lstm = _lstm_forward(weights, last)
    on_model, why = model_forward(weights)
    assert on_lstm is not None and on_model is not None, why
    old = _time(lambda: occlusion_importance(on_lstm, probe, names, target="lstm_output"))
    new = _time(lambda: occlusion_importance(on_model, probe, names, target="model_output"))
    print(
        f"{label:<34} lstm_output {old:6.2f} s   model_output {new:6.2f} s   "
        f"added {new - old:+6.2f} s   ratio {new / old:5.2f}"
    )


def main() -> None:
    from lstm_report._resources import demo_config
    from lstm_report.config.yaml_file import load_config
    from lstm_report.readers.dispatch import read_model
    from lstm_report.readers.probe import load_probe, probe_shape

    cfg = load_config(demo_config())
    spec = cfg.models[0]
    weights = read_model(spec)
    probe = load_probe(spec, probe_shape(weights))
    assert probe is not None
    _compare(f"demo {probe.shape}", weights, probe)

    import keras

    from lstm_report.config.schema import ModelSpec

    model = keras.Sequential(
        [
            keras.Input((100, 8)),
            keras.layers.LSTM(256, return_sequences=True),
            keras.layers.LSTM(256),
            keras.layers.Dense(1),
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.keras"
        model.save(path)
        big = read_model(ModelSpec(index=0, path=path, name="big"))
    x = np.random.default_rng(0).normal(size=(64, 100, 8)).astype(np.float32)
    _compare("2×LSTM(256), probe 64×100×8", big, x)


if __name__ == "__main__":
    main()
