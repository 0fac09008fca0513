"""The direct (h5py) reader: bit-for-bit what Keras gives, Keras 2 files, CuDNNLSTM, no TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cells.kinds import replay
from lstm_report.config.schema import ModelSpec
from lstm_report.errors import ModelLoadError
from lstm_report.readers.dispatch import read_model
from lstm_report.readers.keras.direct import CorruptModelError, cudnn_to_lstm
from tests.helpers import FIXTURES


def spec(path: Path, **kw: Any) -> ModelSpec:
    return ModelSpec(index=0, path=path, name=path.name, **kw)


def assert_same(a: Any, b: Any) -> None:
    assert a.total_params == b.total_params
    assert a.input_dim == b.input_dim
    assert [(o.name, o.kind, o.units) for o in a.others] == [
        (o.name, o.kind, o.units) for o in b.others
    ]
    assert len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers):
        for field in (
            "name",
            "direction",
            "activation",
            "recurrent_activation",
            "go_backwards",
            "return_sequences",
            "wrapper",
            "reads_input",
            "source",
            "merge_mode",
            "use_bias",
        ):
            assert getattr(x, field) == getattr(y, field), (x.label, field)
        for arr in ("kernel", "recurrent_kernel", "bias"):
            p, q = getattr(x, arr), getattr(y, arr)
            if p is None or q is None:
                assert p is None and q is None
            else:
                assert p.dtype == q.dtype and p.shape == q.shape
                assert np.array_equal(p, q), (x.label, arr)  # bit for bit


@pytest.fixture(scope="module")
def odd_names(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Names that do not follow the class order, a nested Sequential and an RNN(LSTMCell)."""
    inner = keras.Sequential(
        [
            keras.layers.LSTM(3, return_sequences=True, name="zeta"),
            keras.layers.LSTM(2, return_sequences=True, name="alpha"),
        ],
        name="stack",
    )
    inp = keras.Input((5, 4))
    h = keras.layers.Masking()(inp)
    h = keras.layers.LSTM(4, return_sequences=True, name="lstm_9")(h)
    h = inner(h)
    h = keras.layers.RNN(keras.layers.LSTMCell(2), return_sequences=True, name="cellwise")(h)
    h = keras.layers.Bidirectional(
        keras.layers.LSTM(2, use_bias=False), merge_mode="ave", name="bi"
    )(h)
    m = keras.Model(inp, keras.layers.Dense(1)(h))
    rng = np.random.default_rng(9)
    m.set_weights([rng.normal(size=w.shape).astype("float32") for w in m.get_weights()])
    path = tmp_path_factory.mktemp("odd") / "odd.keras"
    m.save(path)
    return path


@pytest.mark.parametrize(
    "fixture", ["simple_model", "complex_model", "legacy_h5_model", "odd_names"]
)
def test_direct_equals_keras(fixture: str, request: pytest.FixtureRequest) -> None:
    saved = request.getfixturevalue(fixture)
    path = saved if isinstance(saved, Path) else saved.path
    direct = read_model(spec(path), reader="direct")
    via_keras = read_model(spec(path), reader="keras")
    assert direct.reader == "direct" and via_keras.reader == "keras"
    assert_same(direct, via_keras)


def test_odd_names_are_read_by_class_order(odd_names: Path) -> None:
    mw = read_model(spec(odd_names), reader="direct")
    assert [w.label for w in mw.layers] == [
        "lstm_9",
        "stack/zeta",
        "stack/alpha",
        "cellwise",
        "bi (forward)",
        "bi (backward)",
    ]
    assert [w.reads_input for w in mw.layers] == [True, False, False, False, False, False]
    assert mw.layers[-1].merge_mode == "ave"


def test_auto_prefers_direct(simple_model: Any) -> None:
    assert read_model(spec(simple_model.path)).reader == "direct"


def _expected() -> Any:
    return np.load(FIXTURES / "keras2_expected.npz")


def _flat(w: Any) -> np.ndarray:
    return np.concatenate(
        [a.ravel() for a in (w.kernel, w.recurrent_kernel, w.bias) if a is not None]
    )


def test_keras2_full_model() -> None:
    exp = _expected()
    mw = read_model(spec(FIXTURES / "keras2_full.h5"))
    assert mw.reader == "direct" and mw.keras_version and mw.keras_version.startswith("2.")
    assert [w.label for w in mw.layers] == [
        "encoder/inner_lstm",
        "bi (forward)",
        "bi (backward)",
        "gru",
    ]
    inner, fwd, bwd, gru = mw.layers
    # Keras 2's GRU is analysed too: 3 gates, reset_after from its config and bias
    assert (gru.kind, gru.gate_names, gru.units) == ("GRU", ("z", "r", "h"), 2)
    assert gru.reset_after == (gru.bias is not None and gru.bias.ndim == 2)
    np.testing.assert_array_equal(_flat(inner), exp["inner_lstm"])
    np.testing.assert_array_equal(_flat(fwd), exp["bi_forward"])
    np.testing.assert_array_equal(_flat(bwd), exp["bi_backward"])
    assert inner.reads_input and not fwd.reads_input and bwd.go_backwards
    assert mw.others == ()
    assert mw.total_params == int(exp["total_params"])
    # Keras 2's hard_sigmoid is clip(0.2x + 0.5): the replay reproduces Keras 2's own output.
    assert inner.recurrent_activation == "hard_sigmoid_keras2"
    np.testing.assert_allclose(
        replay(inner.cell, exp["x"], order="read").h, exp["inner_lstm_out"], atol=1e-5
    )


def test_keras3_cannot_load_keras2_full_model_but_we_say_why() -> None:
    with pytest.raises(ModelLoadError, match=r"Keras cannot load .*keras2_full\.h5: .*time_major"):
        read_model(spec(FIXTURES / "keras2_full.h5"), reader="keras")


def test_keras2_weights_only() -> None:
    exp = _expected()
    mw = read_model(spec(FIXTURES / "keras2_weights.h5"))
    labels = ["encoder/inner_lstm", "bi (forward)", "bi (backward)", "gru"]
    assert [w.label for w in mw.layers] == labels
    inner, fwd, bwd, gru = mw.layers
    assert gru.kind == "GRU"  # 3 gates: a GRU, never an LSTM
    np.testing.assert_array_equal(_flat(inner), exp["inner_lstm"])
    np.testing.assert_array_equal(_flat(fwd), exp["bi_forward"])
    np.testing.assert_array_equal(_flat(bwd), exp["bi_backward"])
    assert mw.others == ()
    assert inner.reads_input and bwd.go_backwards
    assert (inner.activation, inner.recurrent_activation) == (
        "tanh",
        "sigmoid",
    )  # Keras >= 2.3 default
    assert any("assumed activation 'tanh', recurrent_activation 'sigmoid'" in n for n in mw.notes)


def test_weights_only_activations_from_config() -> None:
    exp = _expected()
    s = spec(
        FIXTURES / "keras2_weights.h5",
        activations=(("recurrent_activation", "hard_sigmoid_keras2"),),
    )
    inner = read_model(s).layers[0]
    assert inner.recurrent_activation == "hard_sigmoid_keras2"
    np.testing.assert_allclose(
        replay(inner.cell, exp["x"], order="read").h, exp["inner_lstm_out"], atol=1e-5
    )


@pytest.mark.parametrize("name", ["cudnn_weights.h5", "cudnn_full.h5"])
def test_cudnn_lstm_as_keras2_converts_it(name: str) -> None:
    exp = _expected()
    mw = read_model(spec(FIXTURES / name))
    (w,) = mw.layers
    assert w.kind == "CuDNNLSTM" and (w.activation, w.recurrent_activation) == ("tanh", "sigmoid")
    np.testing.assert_array_equal(w.kernel, exp["cudnn_kernel"])
    np.testing.assert_array_equal(w.recurrent_kernel, exp["cudnn_recurrent_kernel"])
    np.testing.assert_array_equal(w.bias, exp["cudnn_bias"])
    np.testing.assert_allclose(
        replay(w.cell, exp["cudnn_x"], order="read").h[:, -1], exp["cudnn_out"], atol=1e-5
    )


def test_cudnn_conversion_by_hand() -> None:
    # input_dim 2, units 1: cuDNN stores each gate's (units, input_dim) block row-major.
    K = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])  # (2, 4): gate g's buffer is K[:, g]
    R = np.array([[9.0, 10.0, 11.0, 12.0]])
    B = np.arange(8.0)
    k, r, b = cudnn_to_lstm(K, R, B)
    np.testing.assert_array_equal(k, K)  # with units 1, reshape(1, 2).T keeps each column
    np.testing.assert_array_equal(r, R)
    np.testing.assert_array_equal(b, [4.0, 6.0, 8.0, 10.0])
    K2 = np.arange(24.0).reshape(3, 8)  # input_dim 3, units 2: not a plain transpose
    k2, _, _ = cudnn_to_lstm(K2, np.zeros((2, 8)), np.zeros(16))
    np.testing.assert_array_equal(k2[:, :2], K2[:, :2].reshape(2, 3).T)
    assert not np.array_equal(k2[:, :2], K2[:, :2])


def test_wrong_kernel_width_is_refused_not_guessed(simple_model: Any, tmp_path: Path) -> None:
    import shutil
    import zipfile

    import h5py

    src = simple_model.path
    work = tmp_path / "x"
    work.mkdir()
    with zipfile.ZipFile(src) as zf:
        zf.extractall(work)
    with h5py.File(work / "model.weights.h5", "r+") as f:
        del f["layers/lstm/cell/vars/0"]
        f["layers/lstm/cell/vars/0"] = np.zeros((5, 15), np.float32)
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as zf:
        for name in ("metadata.json", "config.json", "model.weights.h5"):
            zf.write(work / name, name)
    with pytest.raises(
        CorruptModelError, match=r"weight shapes \(5, 15\), \(4, 16\), \(16,\) are not an LSTM's"
    ):
        read_model(spec(bad), reader="direct")
    shutil.rmtree(work)


NO_TF = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError("blocked for this test: " + name)
        return None
sys.meta_path.insert(0, Block())
from lstm_report.cli import main
code = main(sys.argv[1:])
assert not any(m.split(".")[0] in ("tensorflow", "keras") for m in sys.modules), "imported"
sys.exit(code)
"""


def test_report_without_tensorflow(simple_model: Any, tmp_path: Path) -> None:
    from tests.conftest import write_config

    cfg = write_config(tmp_path, f"models: [{simple_model.path}]\n")
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TF,
            "build",
            str(cfg),
            "-o",
            str(tmp_path / "r.html"),
            "--json",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "r.html").read_text()
    assert "lstm" in html and "not run" in html  # verification needs Keras: not run, and said so


def test_keras3_weights_file(complex_model: Any, tmp_path: Path) -> None:
    # model.save_weights("x.weights.h5"): Keras 3's own layout, no architecture
    path = tmp_path / "complex.weights.h5"
    complex_model.model.save_weights(path)
    mw = read_model(spec(path))
    assert sorted(w.label for w in mw.layers) == [
        "bi (backward)",
        "bi (forward)",
        "encoder/inner_lstm",
        "gru",
    ]
    by_label = {w.label: w for w in mw.layers}
    gru = by_label["gru"]
    assert gru.kind == "GRU" and gru.reset_after  # Keras 3's default: a (2, 3u) bias
    for got, want in zip(
        (gru.kernel, gru.recurrent_kernel, gru.bias),
        complex_model.model.get_layer("gru").get_weights(),
    ):
        assert np.array_equal(got, want)
    inner = complex_model.model.get_layer("encoder").get_layer("inner_lstm").get_weights()
    for got, want in zip(
        (
            by_label["encoder/inner_lstm"].kernel,
            by_label["encoder/inner_lstm"].recurrent_kernel,
            by_label["encoder/inner_lstm"].bias,
        ),
        inner,
    ):
        assert np.array_equal(got, want)
    f_k, f_rk, b_k, b_rk = complex_model.model.get_layer("bi").get_weights()
    assert (
        np.array_equal(by_label["bi (backward)"].kernel, b_k)
        and by_label["bi (backward)"].bias is None
    )
    assert mw.others == ()
    assert any("no architecture stored" in n for n in mw.notes)
