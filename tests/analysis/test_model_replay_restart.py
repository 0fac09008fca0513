"""ModelReplay.for_copies: occluded copies of the probe restarted at their first changed
step give the full replay's prediction (1e-10), and the occlusion importance is unchanged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.analysis.importance import occlusion_importance
from lstm_report.analysis.model_replay import ModelReplay
from lstm_report.config.schema import ModelSpec
from lstm_report.readers.dispatch import read_model

TOL = 1e-10

CASES: dict[str, Callable[[Any], list[Any]]] = {
    "stacked-lstm-gru-dense-head": lambda k: [
        k.layers.LSTM(6, return_sequences=True),
        k.layers.GRU(5, return_sequences=True, reset_after=False),
        k.layers.GRU(4),
        k.layers.Dense(2, activation="tanh"),
    ],
    "conv-causal-lstm-timedistributed": lambda k: [
        k.layers.Conv1D(4, 3, padding="causal"),
        k.layers.LSTM(5, return_sequences=True),
        k.layers.TimeDistributed(k.layers.Dense(2)),
    ],
    "conv-same-bidirectional": lambda k: [
        k.layers.Conv1D(4, 3, padding="same"),
        k.layers.Bidirectional(k.layers.LSTM(4, return_sequences=True)),
        k.layers.LSTM(3),
        k.layers.Dense(1),
    ],
    "masking": lambda k: [
        k.layers.Masking(0.0),
        k.layers.LSTM(5, return_sequences=True),
        k.layers.GRU(3),
        k.layers.Dense(1),
    ],
}


def _replay(keras: Any, tmp_path: Path, case: str, x: np.ndarray) -> ModelReplay:
    model = keras.Sequential([keras.Input(x.shape[1:]), *CASES[case](keras)])
    path = tmp_path / "m.keras"
    model.save(path)
    return ModelReplay(read_model(ModelSpec(index=0, path=path, name="m"), "direct"))


def _copies(x: np.ndarray) -> np.ndarray:
    out = [x]
    for t in range(x.shape[1]):
        z = x.copy()
        z[:, t] = x.mean(axis=(0, 1))
        out.append(z)
    z = x.copy()
    z[:, :, 0] = 0.5
    out.append(z)
    return np.concatenate(out)


@pytest.mark.parametrize("case", sorted(CASES))
def test_restarted_copies_predict_as_the_full_replay(keras: Any, tmp_path: Path, case: str) -> None:
    x = np.random.default_rng(0).normal(size=(3, 20, 3))
    x[0, 15:] = 0.0  # padding, for the masked case
    replay = _replay(keras, tmp_path, case, x)
    copies = _copies(x)
    got = replay.for_copies(x)(copies)
    want = replay.output(copies)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) < TOL


def test_occlusion_importance_unchanged_by_restarts(keras: Any, tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(5, 24, 3)).astype(np.float32)
    replay = _replay(keras, tmp_path, "stacked-lstm-gru-dense-head", x)
    names = ("a", "b", "c")
    full = occlusion_importance(replay, x, names, target="model_output")
    fast = occlusion_importance(replay, x, names, target="model_output", copies=replay.for_copies)
    assert fast.per_step == pytest.approx(full.per_step, rel=1e-9, abs=1e-15)
    for a, b in zip(fast.features, full.features):
        assert a.name == b.name
        assert (a.value, a.low, a.high) == pytest.approx(
            (b.value, b.low, b.high), rel=1e-9, abs=1e-15
        )
