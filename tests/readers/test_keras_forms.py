"""Keras saved forms beyond `.keras` + `model.weights.h5`: Keras 3's `model.weights.npz`
(inside a `.keras` zip or a `save(zipped=False)` folder), the unzipped folder itself, and
Keras 2's CuDNNGRU (tests/fixtures/make_cudnn_gru_fixtures.py, with tf_keras 2.21)."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cells.kinds import replay
from lstm_report.config.schema import ModelSpec
from lstm_report.config.sources import is_model_file
from lstm_report.errors import ModelLoadError, UnsafeModelError
from lstm_report.readers.dispatch import read_model
from lstm_report.readers.keras.direct import CorruptModelError, DirectReadError
from lstm_report.readers.keras.h5 import cudnn_to_gru
from tests.helpers import FIXTURES


def spec(path: Path) -> ModelSpec:
    return ModelSpec(index=0, path=path, name=path.name)


def _same_arrays(a: Any, b: Any) -> None:
    assert [w.label for w in a.layers] == [w.label for w in b.layers]
    assert a.total_params == b.total_params and a.input_dim == b.input_dim
    for x, y in zip(a.layers, b.layers):
        assert (x.kind, x.reset_after, x.return_sequences) == (
            y.kind,
            y.reset_after,
            y.return_sequences,
        )
        for arr in ("kernel", "recurrent_kernel", "bias"):
            p, q = getattr(x, arr), getattr(y, arr)
            assert (p is None and q is None) or np.array_equal(p, q), (x.label, arr)


@pytest.fixture(scope="module")
def saved_forms(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One model with an LSTM, a Bidirectional GRU and an RNN(LSTMCell), in every Keras 3
    form: the .keras zip (h5 weights), the .keras zip with npz weights, the folder."""
    from keras.src.saving import saving_lib

    m = keras.Sequential(
        [
            keras.Input((5, 3)),
            keras.layers.LSTM(4, return_sequences=True, name="lstm"),
            keras.layers.Bidirectional(
                keras.layers.GRU(2, return_sequences=True), name="bidirectional"
            ),
            keras.layers.RNN(keras.layers.LSTMCell(3), name="rnn"),
        ],
        name="forms",
    )
    rng = np.random.default_rng(3)
    m.set_weights([rng.normal(size=w.shape).astype("float32") for w in m.get_weights()])
    d = tmp_path_factory.mktemp("forms")
    paths = {"h5": d / "h5.keras", "npz": d / "npz.keras", "dir": d / "folder"}
    m.save(paths["h5"])
    saving_lib.save_model(m, str(paths["npz"]), weights_format="npz")
    m.save(paths["dir"], zipped=False)
    npz_dir = d / "npz_folder"
    npz_dir.mkdir()
    with zipfile.ZipFile(paths["npz"]) as zf:
        zf.extractall(npz_dir)
    paths["npz_dir"] = npz_dir
    return paths


@pytest.mark.parametrize("form", ["npz", "dir", "npz_dir"])
def test_every_form_reads_as_the_h5_zip(form: str, saved_forms: dict[str, Path]) -> None:
    """Against the .keras zip's reading, which test_direct_reader proves equal to Keras."""
    got = read_model(spec(saved_forms[form]), reader="direct")
    want = read_model(spec(saved_forms["h5"]), reader="direct")
    assert got.reader == "direct"
    _same_arrays(got, want)
    assert [w.label for w in got.layers] == [
        "lstm",
        "bidirectional (forward)",
        "bidirectional (backward)",
        "rnn",
    ]


def test_npz_weights_are_keras_own(keras: Any, saved_forms: dict[str, Path]) -> None:
    """Keras itself cannot load its npz (allow_pickle=False): compare with the model's weights."""
    m = keras.saving.load_model(saved_forms["h5"])
    got = read_model(spec(saved_forms["npz"]), reader="direct")
    lstm = got.layers[0]
    k, r, b = m.layers[0].get_weights()
    np.testing.assert_array_equal(lstm.kernel, k)
    np.testing.assert_array_equal(lstm.recurrent_kernel, r)
    np.testing.assert_array_equal(lstm.bias, b)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    want = np.asarray(m.layers[0](x))
    np.testing.assert_allclose(replay(lstm.cell, x, order="read").h, want, atol=1e-5)


def test_folder_is_a_model_for_build(saved_forms: dict[str, Path]) -> None:
    assert is_model_file(saved_forms["dir"])
    assert not is_model_file(saved_forms["dir"].parent)


def test_folder_members_may_not_be_links(saved_forms: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "linked"
    shutil.copytree(saved_forms["dir"], folder)
    (folder / "model.weights.h5").unlink()
    (folder / "model.weights.h5").symlink_to(saved_forms["dir"] / "model.weights.h5")
    with pytest.raises(UnsafeModelError, match=r"model.weights.h5 is a symbolic link; refused"):
        read_model(spec(folder))
    (folder / "model.weights.h5").unlink()
    with pytest.raises(ModelLoadError, match=r"a folder with config.json but no model.weights.h5"):
        read_model(spec(folder))


def _npz_with(tmp_path: Path, saved: Path, edit: Any) -> Path:
    """The npz .keras with one member of its model.weights.npz rewritten."""
    with zipfile.ZipFile(saved) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    with zipfile.ZipFile(io.BytesIO(members["model.weights.npz"])) as inner:
        arrays = {n: inner.read(n) for n in inner.namelist()}
    edit(arrays)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for n, raw in arrays.items():
            out.writestr(n, raw)
    members["model.weights.npz"] = buf.getvalue()
    path = tmp_path / "edited.keras"
    with zipfile.ZipFile(path, "w") as out:
        for n, raw in members.items():
            out.writestr(n, raw)
    return path


def test_npz_pickle_runs_nothing(
    saved_forms: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable whose pickle calls os.system: a placeholder, never called; the variable
    then has no array, and the direct reader says so."""
    import os

    monkeypatch.chdir(tmp_path)
    mod = os.system.__module__.encode()
    evil = b"\x80\x02c" + mod + b"\nsystem\n" + b"X\x05\x00\x00\x00touch\x85R."

    def edit(arrays: dict[str, bytes]) -> None:
        raw = arrays["layers/lstm/cell.npy"]
        header_end = raw.index(b"\n") + 1
        arrays["layers/lstm/cell.npy"] = raw[:header_end] + evil

    path = _npz_with(tmp_path, saved_forms["npz"], edit)
    with pytest.raises(
        DirectReadError, match=r"layers/lstm/cell.npy: not Keras' dict of variables"
    ):
        read_model(spec(path), reader="direct")
    assert not (tmp_path / "touch").exists()


def test_npz_array_bytes_must_match_its_shape(saved_forms: dict[str, Path], tmp_path: Path) -> None:
    def edit(arrays: dict[str, bytes]) -> None:
        raw = arrays["layers/lstm/cell.npy"]
        # The kernel (3, 16): its shape is pickled as the Variable's _shape, then as the
        # array's; the array claims 4 rows instead.
        head, sep, tail = raw.rpartition(b"K\x03K\x10\x86")
        assert sep and raw.count(sep) == 2
        arrays["layers/lstm/cell.npy"] = head + b"K\x04K\x10\x86" + tail

    path = _npz_with(tmp_path, saved_forms["npz"], edit)
    with pytest.raises(DirectReadError, match=r"variable 0 holds 0 numeric arrays, not one"):
        read_model(spec(path), reader="direct")


def test_npz_member_that_is_not_an_array_is_refused(
    saved_forms: dict[str, Path], tmp_path: Path
) -> None:
    def edit(arrays: dict[str, bytes]) -> None:
        arrays["layers/huge.npy"] = b"\x00" * 64

    path = _npz_with(tmp_path, saved_forms["npz"], edit)
    with pytest.raises(CorruptModelError, match=r"layers/huge.npy: not a .npy array"):
        read_model(spec(path), reader="direct")


# --- 11. CuDNNGRU ---------------------------------------------------------------------------


def _gru_expected() -> Any:
    return np.load(FIXTURES / "cudnn_gru_expected.npz")


@pytest.mark.parametrize("name", ["cudnn_gru_weights.h5", "cudnn_gru_full.h5"])
def test_cudnn_gru_as_keras2_converts_it(name: str) -> None:
    exp = _gru_expected()
    mw = read_model(spec(FIXTURES / name))
    assert [w.kind for w in mw.layers] == ["CuDNNGRU", "CuDNNGRU"] and not mw.others
    for w, layer in zip(mw.layers, ["cu_dnngru", "cu_dnngru_1"]):
        assert w.reset_after is True
        assert (w.activation, w.recurrent_activation) == ("tanh", "sigmoid")
        np.testing.assert_array_equal(w.kernel, exp[f"{layer}/kernel"])
        np.testing.assert_array_equal(w.recurrent_kernel, exp[f"{layer}/recurrent_kernel"])
        np.testing.assert_array_equal(w.bias, exp[f"{layer}/bias"])
    first = replay(mw.layers[0].cell, exp["x"], order="read").h
    np.testing.assert_allclose(first, exp["first_out"], atol=1e-5)
    np.testing.assert_allclose(
        replay(mw.layers[1].cell, first, order="read").h[:, -1], exp["out"], atol=1e-5
    )


def test_cudnn_gru_conversion_by_hand() -> None:
    K = np.arange(18.0).reshape(3, 6)  # input_dim 3, units 2: each gate's buffer is (2, 3)
    R = np.arange(12.0).reshape(2, 6)
    B = np.arange(12.0)
    k, r, b = cudnn_to_gru(K, R, B)
    for g in range(3):
        cols = slice(2 * g, 2 * g + 2)
        np.testing.assert_array_equal(k[:, cols], K[:, cols].reshape(2, 3).T)
        np.testing.assert_array_equal(r[:, cols], R[:, cols].T)
    np.testing.assert_array_equal(b, [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    with pytest.raises(DirectReadError, match="inconsistent"):
        cudnn_to_gru(K, R, np.zeros(6))
