"""Keras 3 files saved on the torch backend, read directly (no Keras, no torch), against
what Keras computed with them.

tests/fixtures/keras_torch/ was written by make_keras_torch_fixtures.py with keras 3.15 on
torch 2.13: a `.keras` zip of an LSTM and a Bidirectional(LSTM), one of a GRU
(reset_after) and a GRU(reset_after=False), the GRU model as a `save(zipped=False)` folder,
and the LSTM model with npz weights, which this backend pickles as torch tensors.
"""

from __future__ import annotations

import numpy as np
import pytest

from lstm_report.analysis.model_replay import model_forward
from lstm_report.cells.kinds import replay
from lstm_report.config.schema import ModelSpec
from lstm_report.model.layers import ModelWeights
from lstm_report.readers.dispatch import read_model
from lstm_report.readers.keras.direct import DirectReadError
from tests.helpers import FIXTURES

FIX = FIXTURES / "keras_torch"
ATOL = 1e-5
FILES = {"lstm.keras": "lstm", "gru.keras": "gru", "gru_folder": "gru"}
LABELS = {
    "lstm": [
        ("lstm", "LSTM", None),
        ("bi (forward)", "LSTM", None),
        ("bi (backward)", "LSTM", None),
    ],
    "gru": [("gru", "GRU", True), ("gru_v1", "GRU", False)],
}


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIX / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def _read(file: str) -> ModelWeights:
    path = FIX / file
    return read_model(ModelSpec(index=0, path=path, name=path.name), reader="direct")


@pytest.mark.parametrize("file", FILES)
def test_layers_are_read(file: str) -> None:
    weights = _read(file)
    assert weights.reader == "direct"
    got = [(w.label, w.kind, w.reset_after) for w in weights.layers]
    assert got == LABELS[FILES[file]]
    assert [w.source for w in weights.layers][1:] == [weights.layers[0].name] * (len(got) - 1)


@pytest.mark.parametrize("file", FILES)
def test_each_layer_replays_what_keras_computed(file: str, expected: dict[str, np.ndarray]) -> None:
    """Each cell from the file, on the input Keras gave its layer: a Bidirectional's halves
    are the two halves of its output (forward first, merge_mode concat)."""
    kind = FILES[file]
    for w in _read(file).layers:
        x = expected["x"] if w.reads_input else expected[f"{kind}/{w.source}"]
        trace = replay(w.cell, x)
        got = trace.h if w.return_sequences else trace.h_last
        want = expected[f"{kind}/{w.name}"]
        if w.direction is not None and w.wrapper is not None:
            units = w.cell.units
            want = want[..., :units] if w.direction == "forward" else want[..., units:]
        np.testing.assert_allclose(got, want, atol=ATOL, err_msg=w.label)
        assert np.abs(want).max() > 0.1


@pytest.mark.parametrize("file", FILES)
def test_whole_model_replay_is_keras_predict(file: str, expected: dict[str, np.ndarray]) -> None:
    forward, note = model_forward(_read(file))
    assert forward is not None and note is None
    want = expected[f"{FILES[file]}/predict"]
    np.testing.assert_allclose(forward(expected["x"]), want, atol=ATOL)
    np.testing.assert_allclose(forward(expected["x"][2:]), want[2:], atol=ATOL)


def test_npz_weights_of_the_torch_backend_are_refused_with_why() -> None:
    with pytest.raises(DirectReadError) as info:
        _read("lstm_npz.keras")
    assert str(info.value) == (
        "models[0] (lstm_npz.keras): model.weights.npz: layers/lstm/cell.npy: variable 0 is "
        "a pickled torch tensor (Keras' torch backend saves its npz weights so), which is not "
        "read; save the model with the default weights_format='h5'"
    )


def test_the_folder_is_the_zip_unzipped() -> None:
    """gru_folder holds what gru.keras holds, as files: the same arrays, bit for bit."""
    folder, zipped = _read("gru_folder"), _read("gru.keras")
    for a, b in zip(folder.layers, zipped.layers):
        for arr in ("kernel", "recurrent_kernel", "bias"):
            np.testing.assert_array_equal(getattr(a, arr), getattr(b, arr))
