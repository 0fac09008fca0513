"""Reading real Keras files: naming, nesting, Bidirectional, other RNNs, bad files, safety."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.config.schema import ModelSpec
from lstm_report.errors import ModelLoadError, UnsafeModelError
from lstm_report.readers.dispatch import read_model


def spec(path: Path, **kw: Any) -> ModelSpec:
    return ModelSpec(index=0, path=path, name=kw.pop("name", path.name), **kw)


def test_simple_model_arrays_equal_get_weights(simple_model: Any) -> None:
    mw = read_model(spec(simple_model.path))
    (w,) = mw.layers
    kernel, rk, bias = simple_model.model.get_layer("lstm").get_weights()
    np.testing.assert_array_equal(w.kernel, kernel)
    np.testing.assert_array_equal(w.recurrent_kernel, rk)
    np.testing.assert_array_equal(w.bias, bias)
    assert (w.name, w.direction, w.wrapper, w.units, w.input_dim) == ("lstm", "forward", None, 4, 5)
    assert w.reads_input
    assert (w.activation, w.recurrent_activation) == ("tanh", "sigmoid")
    assert mw.total_params == simple_model.model.count_params()
    assert mw.input_dim == 5
    assert mw.others == ()


def test_nested_bidirectional_and_gru(complex_model: Any) -> None:
    mw = read_model(spec(complex_model.path))
    labels = [(w.name, w.direction) for w in mw.layers]
    assert labels == [
        ("encoder/inner_lstm", "forward"),
        ("bi", "forward"),
        ("bi", "backward"),
        ("gru", "forward"),
    ]
    inner, fwd, bwd, gru = mw.layers
    assert inner.reads_input  # through Masking, inside the nested model
    assert not fwd.reads_input and not bwd.reads_input
    assert fwd.bias is None and bwd.bias is None
    assert fwd.wrapper == "Bidirectional"
    bi = complex_model.model.get_layer("bi")
    f_k, f_rk, b_k, b_rk = bi.get_weights()  # forward's arrays, then backward's
    np.testing.assert_array_equal(fwd.kernel, f_k)
    np.testing.assert_array_equal(fwd.recurrent_kernel, f_rk)
    np.testing.assert_array_equal(bwd.kernel, b_k)
    np.testing.assert_array_equal(bwd.recurrent_kernel, b_rk)
    assert not np.array_equal(f_k, b_k)
    inner_layer = complex_model.model.get_layer("encoder").get_layer("inner_lstm")
    np.testing.assert_array_equal(inner.kernel, inner_layer.get_weights()[0])
    # the GRU is analysed as a GRU (gates z, r, h), never mislabelled as an LSTM
    assert (gru.kind, gru.gate_names, gru.units, gru.reset_after) == (
        "GRU",
        ("z", "r", "h"),
        2,
        True,
    )
    for got, want in zip(
        (gru.kernel, gru.recurrent_kernel, gru.bias),
        complex_model.model.get_layer("gru").get_weights(),
    ):
        np.testing.assert_array_equal(got, want)
    assert mw.others == ()


def test_legacy_h5_full_model(legacy_h5_model: Any) -> None:
    mw = read_model(spec(legacy_h5_model.path))
    assert [(w.name, w.direction) for w in mw.layers] == [
        ("first", "forward"),
        ("second", "backward"),
    ]
    first, second = mw.layers
    assert first.reads_input and not second.reads_input
    assert second.go_backwards
    for w, name in ((first, "first"), (second, "second")):
        for got, want in zip(
            (w.kernel, w.recurrent_kernel, w.bias),
            legacy_h5_model.model.get_layer(name).get_weights(),
        ):
            np.testing.assert_array_equal(got, want)


def test_rnn_with_lstm_cell_is_an_lstm(keras: Any, tmp_path: Path) -> None:
    m = keras.Sequential(
        [
            keras.Input((4, 2)),
            keras.layers.RNN(keras.layers.LSTMCell(3), return_sequences=True, name="rnn"),
            keras.layers.SimpleRNN(2, name="srnn"),
        ]
    )
    m.save(tmp_path / "rnn.keras")
    mw = read_model(spec(tmp_path / "rnn.keras"))
    assert [w.name for w in mw.layers] == ["rnn"]
    assert [(o.name, o.kind) for o in mw.others] == [("srnn", "SimpleRNN")]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        ModelLoadError, match=r"^models\[0\] \(nope.keras\): model file not found: .*nope\.keras$"
    ):
        read_model(spec(tmp_path / "nope.keras"))


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.keras").write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"model file is empty \(0 bytes\): .*e\.keras"):
        read_model(spec(tmp_path / "e.keras"))


def test_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes.keras").write_text("hello, I am text")
    with pytest.raises(ModelLoadError, match=r"notes\.keras is not a Keras model file"):
        read_model(spec(tmp_path / "notes.keras"))


def test_truncated_keras_file(simple_model: Any, tmp_path: Path) -> None:
    data = simple_model.path.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=r"cut\.keras is a corrupt or truncated \.keras file"):
        read_model(spec(tmp_path / "cut.keras"))


def test_truncated_h5_file(legacy_h5_model: Any, tmp_path: Path) -> None:
    data = legacy_h5_model.path.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match=r"cut\.h5"):
        read_model(spec(tmp_path / "cut.h5"))


def test_zip_that_is_not_a_model(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(ModelLoadError, match=r"not a \.keras model \(no config\.json inside\)"):
        read_model(spec(tmp_path / "other.keras"))


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="is a directory"):
        read_model(spec(tmp_path))


@pytest.fixture(scope="module")
def lambda_model(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    marker = tmp_path_factory.mktemp("lam") / "ran.txt"
    m = keras.Sequential(
        [
            keras.Input((5, 3)),
            keras.layers.Lambda(lambda x: x * 2, name="double"),
            keras.layers.LSTM(2, name="lstm"),
        ]
    )
    path = marker.parent / "lam.keras"
    m.save(path)
    return path


def test_lambda_is_refused_in_safe_mode(lambda_model: Path) -> None:
    with pytest.raises(
        UnsafeModelError,
        match=r"contains Lambda 'double'.*refused in safe mode.*'unsafe: true'.*--unsafe",
    ):
        read_model(spec(lambda_model), reader="keras")


def test_lambda_allowed_with_explicit_opt_in(lambda_model: Path) -> None:
    mw = read_model(spec(lambda_model, unsafe=True), reader="keras")
    assert [w.name for w in mw.layers] == ["lstm"]
    assert not mw.layers[0].reads_input  # a Lambda transforms the input


def test_direct_reader_reads_lambda_models_without_running_them(lambda_model: Path) -> None:
    # The direct reader deserializes nothing, so there is nothing to refuse.
    mw = read_model(spec(lambda_model))
    assert mw.reader == "direct" and [w.name for w in mw.layers] == ["lstm"]


def test_keras_needed_for_probe_behind_lambda_is_refused(
    lambda_model: Path, tmp_path: Path
) -> None:
    # The probe must pass the Lambda, which only Keras can run: refused, and the report says so.
    from lstm_report import build_report
    from tests.conftest import write_config

    np.save(tmp_path / "p.npy", np.zeros((2, 5, 3), np.float32))
    cfg = write_config(tmp_path, f"models:\n  - path: {lambda_model}\n    probe: p.npy\n")
    res = build_report(cfg, output=tmp_path / "r.html")
    (note,) = [n for n in res.report.models[0].notes if n.startswith("no probe activity")]
    assert note.startswith("no probe activity for lstm: ") and "refused in safe mode" in note
    assert (
        "no input importance on the probe: the input of LSTM 'lstm' cannot be computed in numpy"
        in res.report.models[0].notes
    )
    assert res.report.models[0].layers[0].activity is None


@pytest.mark.parametrize("reader", ["direct", "keras"])
def test_other_recurrent_layers_are_never_lstms(keras: Any, tmp_path: Path, reader: str) -> None:
    inp = keras.Input((5, 4, 3))
    h = keras.layers.ConvLSTM1D(2, 3, return_sequences=True, name="conv")(inp)
    h = keras.layers.TimeDistributed(keras.layers.Flatten())(h)
    h = keras.layers.SimpleRNN(3, return_sequences=True, name="srnn")(h)
    h = keras.layers.Bidirectional(keras.layers.GRU(2), name="bigru")(h)
    keras.Model(inp, h).save(tmp_path / "others.keras")
    mw = read_model(spec(tmp_path / "others.keras"), reader=reader)
    # SimpleRNN is listed, not analysed; the ConvLSTM is read apart (conv_layers), never
    # as an LSTM; the bidirectional GRU is analysed
    assert [(w.name, w.direction, w.kind) for w in mw.layers] == [
        ("bigru", "forward", "GRU"),
        ("bigru", "backward", "GRU"),
    ]
    assert [(o.name, o.kind) for o in mw.others] == [("srnn", "SimpleRNN")]
    assert [(c.name, c.kind, c.filters) for c in mw.conv_layers] == [("conv", "ConvLSTM1D", 2)]


def _stored_zip(path: Path, data: bytes, extra: bytes = b"") -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("config.json", b"{}")
        info = zipfile.ZipInfo("model.weights.h5")
        info.extra = extra
        zf.writestr(info, data)


def test_stored_weights_are_read_in_place_with_seeks(tmp_path: Path) -> None:
    # zipfile re-reads a stored member from its start on every backward seek; the window
    # reads the member's own bytes in place, and nothing outside them.
    from lstm_report.readers.safety.rules import MemberWindow, open_weights

    data = bytes(range(256)) * 40
    path = tmp_path / "m.keras"
    _stored_zip(path, data, extra=b"\x99\x99\x04\x00abcd")
    with zipfile.ZipFile(path) as zf, open_weights(zf, "x") as fh:
        assert isinstance(fh, MemberWindow)
        assert fh.read() == data
        fh.seek(-10, 2)
        assert fh.read(100) == data[-10:] and fh.read(5) == b""
        fh.seek(7)
        assert fh.read(3) == data[7:10] and fh.tell() == 10
        fh.seek(len(data) + 50)
        assert fh.read(4) == b""
        with pytest.raises(OSError):
            fh.seek(-1)


def test_a_local_header_that_disagrees_is_left_to_zipfile(tmp_path: Path) -> None:
    from lstm_report.readers.safety.rules import MemberWindow, open_weights

    path = tmp_path / "m.keras"
    _stored_zip(path, b"0123456789")
    raw = path.read_bytes()
    at = raw.index(b"model.weights.h5")  # the local header's name, not the directory's
    path.write_bytes(raw[:at] + b"MODEL" + raw[at + 5 :])
    with zipfile.ZipFile(path) as zf:
        with pytest.raises(zipfile.BadZipFile, match="differ"):
            with open_weights(zf, "x") as fh:
                assert not isinstance(fh, MemberWindow)
                fh.read()


def test_keras_reader_reloads_a_model_rewritten_at_the_same_path(
    keras: Any, tmp_path: Path
) -> None:
    # A long-lived worker reads the same path twice; the file was replaced in between,
    # with the same size and (as `cp -p` or rsync would leave it) the same mtime.
    m = keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(2, name="lstm")])
    path = tmp_path / "run.keras"
    kernels = []
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        m.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in m.get_weights()])
        kernels.append(m.get_weights()[0])
        m.save(path)
        if seed == 0:
            first = path.stat()
            read = read_model(spec(path), reader="keras")
            np.testing.assert_array_equal(read.layers[0].kernel, kernels[0])
        else:
            os.utime(path, ns=(first.st_atime_ns, first.st_mtime_ns))
    assert path.stat().st_mtime_ns == first.st_mtime_ns
    again = read_model(spec(path), reader="keras")
    np.testing.assert_array_equal(again.layers[0].kernel, kernels[1])
