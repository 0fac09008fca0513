"""GRUs and PyTorch/ONNX files through the whole report, `lstm-report build FILE`.

Numbers are checked against numpy computed here from the fixture arrays (the safetensors
file is parsed by hand below, not by lstm-report's reader); the replay built from the
report's per-gate matrices must reproduce what the frameworks computed (expected.npz).
"""

from __future__ import annotations

import json
import struct
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cells.base import CellWeights, GateWeights
from lstm_report.cells.kinds import replay_layers
from lstm_report.cli import main
from lstm_report.config.sources import is_model_file, model_file_config
from lstm_report.readers.dispatch import read_model
from tests.helpers import FIXTURES

FW = FIXTURES / "frameworks"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FW / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def _safetensors(path: Path) -> dict[str, np.ndarray]:
    """The format by hand: u64 header length, JSON header, raw little-endian data."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for key, spec in header.items():
        if key == "__metadata__" or spec["dtype"] != "F32":
            continue
        a, b = spec["data_offsets"]
        out[key] = np.frombuffer(raw[8 + n + a : 8 + n + b], "<f4").reshape(spec["shape"])
    return out


def _build(tmp_path: Path, model: Path, *extra: str) -> dict[str, Any]:
    out = tmp_path / "r.json"
    assert (
        main(
            ["build", str(model), "-o", str(tmp_path / "r.html"), "--json", str(out), "-q", *extra]
        )
        == 0
    )
    return json.loads(out.read_text())


def _layers(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(x["name"], x["direction"]): x for x in data["models"][0]["layers"]}


def _spec(path: Path) -> Any:
    return model_file_config(path).models[0]


def _report_cells(path: Path, name: str) -> list[CellWeights]:
    """The cells of layers `name.l*`, rebuilt only from the report's per-gate matrices."""
    mw = read_model(_spec(path))
    cells = []
    for w in mw.layers:
        if not w.name.startswith(f"{name}."):
            continue
        gates = tuple(
            GateWeights(spec=c.spec, W=g.W, U=g.U, b=g.b, b_rec=g.b_rec)
            for c, g in zip(w.cell.gates, w.cell.gates)
        )
        cells.append(replace(w.cell, gates=gates))
    return cells


def test_framework_files_are_model_files() -> None:
    for name in ("a.pt", "a.pth", "a.safetensors", "a.onnx"):
        assert is_model_file(name)


def test_pytorch_state_dict_report_numbers(tmp_path: Path) -> None:
    data = _build(tmp_path, FW / "torch_state_dict.pt")
    model = data["models"][0]
    assert model["reader"] == "pytorch"
    layers = _layers(data)
    arrays = _safetensors(FW / "torch_state_dict.safetensors")  # the same weights
    H = 4
    # GRU: PyTorch rows r, z, n -> the report's z, r, h; (3H, in) transposed to (in, H)
    gru = layers[("gru.l0", "forward")]
    assert (gru["kind"], gru["reset_after"], gru["framework"]) == ("GRU", True, "PyTorch")
    assert list(gru["gates"]) == ["z", "r", "h"]
    w_ih, b_ih, b_hh = (arrays[f"gru.{k}_l0"] for k in ("weight_ih", "bias_ih", "bias_hh"))
    W_z = w_ih[H : 2 * H].T.astype(np.float64)
    assert gru["gates"]["z"]["W"]["fro"] == pytest.approx(np.linalg.norm(W_z))
    assert gru["gates"]["r"]["W"]["fro"] == pytest.approx(np.linalg.norm(w_ih[:H].astype(float)))
    assert gru["gates"]["h"]["b_rec"]["l1"] == pytest.approx(np.abs(b_hh[2 * H :]).sum())
    assert gru["gates"]["z"]["b"]["l1"] == pytest.approx(np.abs(b_ih[H : 2 * H]).sum())
    # memory: the update gate at rest, z = σ(b_ih_z + b_hh_z), τ = 1/(1 − z), by hand
    b_z = b_ih[H : 2 * H].astype(np.float64) + b_hh[H : 2 * H]
    z = 1.0 / (1.0 + np.exp(-b_z))
    assert gru["memory"]["gate"] == "z"
    np.testing.assert_allclose(gru["memory"]["resting_forget"], z, rtol=1e-6)
    np.testing.assert_allclose(gru["memory"]["resting_tau"], 1.0 / (1.0 - z), rtol=1e-6)
    # LSTM: i,f,g,o in both, two biases kept apart; the effective bias is their sum
    enc = layers[("encoder.l0", "forward")]
    assert list(enc["gates"]) == ["i", "f", "c", "o"]
    assert enc["gates"]["f"]["b_rec"]["shape"] == [5]
    w_hh = arrays["encoder.weight_hh_l0"]
    assert enc["gates"]["c"]["U"]["spectral"] == pytest.approx(
        np.linalg.norm(w_hh[10:15].T.astype(np.float64), 2), rel=1e-6
    )
    # proj_size: U is (proj, units) and P is reported with its statistics
    proj = layers[("proj.l0", "forward")]
    P = arrays["proj.weight_hr_l0"].T.astype(np.float64)
    assert proj["projection"]["output_dim"] == 2
    assert proj["projection"]["P"]["fro"] == pytest.approx(np.linalg.norm(P))
    assert proj["gates"]["i"]["U"]["shape"] == [2, 5]
    assert "(o_t ⊙ tanh(c_t))·P" in " ".join(proj["equations"])
    # no Keras twin: not run by default, and the page says how the layout is proven
    assert gru["verification"] is None
    html = (tmp_path / "r.html").read_text()
    assert "verified against PyTorch's own output in lstm-report's test suite" in html


@pytest.mark.parametrize(
    ("module", "key"),
    [
        ("gru", "torch/gru/out"),
        ("encoder", "torch/encoder/out"),
        ("proj", "torch/proj/out"),
        ("bi", "torch/bi/out"),
    ],
)
def test_replay_from_report_gates_equals_torch(
    expected: dict[str, np.ndarray], module: str, key: str
) -> None:
    cells = _report_cells(FW / "torch_state_dict.pt", module)
    out, _ = replay_layers(cells, expected["x"])
    np.testing.assert_allclose(out, expected[key], atol=1e-5)


def test_wrong_gate_order_fails(expected: dict[str, np.ndarray]) -> None:
    cells = _report_cells(FW / "torch_state_dict.pt", "gru")
    swapped = [
        replace(
            c,
            gates=(
                replace(c.gates[1], spec=c.gates[0].spec),
                replace(c.gates[0], spec=c.gates[1].spec),
                c.gates[2],
            ),
        )
        for c in cells
    ]
    out, _ = replay_layers(swapped, expected["x"])
    assert np.max(np.abs(out - expected["torch/gru/out"])) > 1e-2


@pytest.mark.parametrize(
    ("file", "name", "lbr"),
    [
        ("onnx_gru_lbr0_reverse.onnx", "gru_lbr0", False),
        ("onnx_gru_lbr1_bidirectional.onnx", "gru_lbr1", True),
    ],
)
def test_onnx_gru_report(
    tmp_path: Path, expected: dict[str, np.ndarray], file: str, name: str, lbr: bool
) -> None:
    pytest.importorskip("onnx")
    data = _build(tmp_path, FW / file)
    assert data["models"][0]["reader"] == "onnx"
    layer = data["models"][0]["layers"][0]
    assert (layer["kind"], layer["reset_after"]) == ("GRU", lbr)
    W = expected[f"onnx/{name}/W"][0]  # [dirs, 3H, in]: z, r, h as in the report
    H = W.shape[0] // 3
    assert layer["gates"]["r"]["W"]["fro"] == pytest.approx(
        np.linalg.norm(W[H : 2 * H].astype(float))
    )
    mw = read_model(_spec(FW / file))
    y = expected[f"onnx/{name}/Y"]  # [seq, dirs, batch, H]
    from lstm_report.cells.kinds import replay

    for d, w in enumerate(mw.layers):
        gates = tuple(
            GateWeights(spec=c.spec, W=g.W, U=g.U, b=g.b, b_rec=g.b_rec)
            for c, g in zip(w.cell.gates, w.cell.gates)
        )
        got = replay(replace(w.cell, gates=gates), expected["x"]).h
        np.testing.assert_allclose(got, y[:, d].transpose(1, 0, 2), atol=1e-5)


@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_gru_report(keras: Any, tmp_path: Path, reset_after: bool) -> None:
    inp = keras.Input((6, 3))
    h = keras.layers.GRU(4, return_sequences=True, reset_after=reset_after, name="gru")(inp)
    m = keras.Model(inp, keras.layers.Dense(1)(h))
    rng = np.random.default_rng(3)
    m.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in m.get_weights()])
    m.save(tmp_path / "gru.keras")
    probe = tmp_path / "probe.npy"
    np.save(probe, rng.normal(size=(8, 6, 3)).astype("float32"))
    data = _build(tmp_path, tmp_path / "gru.keras", "--probe", str(probe), "--verify")
    (layer,) = data["models"][0]["layers"]
    kernel, rk, bias = m.get_layer("gru").get_weights()
    assert (layer["kind"], layer["reset_after"]) == ("GRU", reset_after)
    assert layer["gates"]["z"]["W"]["fro"] == pytest.approx(
        np.linalg.norm(kernel[:, :4].astype(float))
    )
    assert layer["gates"]["h"]["U"]["fro"] == pytest.approx(np.linalg.norm(rk[:, 8:].astype(float)))
    if reset_after:  # bias (2, 3u): row 0 input side, row 1 recurrent side
        assert layer["gates"]["r"]["b_rec"]["l1"] == pytest.approx(np.abs(bias[1, 4:8]).sum())
        b_z = bias[0, :4].astype(float) + bias[1, :4]
    else:  # one bias: b_rec is null
        assert all(g["b_rec"] is None for g in layer["gates"].values())
        b_z = bias[:4].astype(float)
    z = 1.0 / (1.0 + np.exp(-b_z))
    np.testing.assert_allclose(layer["memory"]["resting_tau"], 1.0 / (1.0 - z), rtol=1e-6)
    assert layer["verification"]["ok"], layer["verification"]
    assert set(layer["activations"]) == {"z", "r", "h"}
    where = "r_t ⊙ (h_(t−1)·U_h" if reset_after else "(r_t ⊙ h_(t−1))·U_h"
    assert where in " ".join(layer["equations"])
    # The page speaks of GRUs, and explains the GRU layout only.
    html = (tmp_path / "r.html").read_text()
    assert "<h2>How Keras stores a GRU</h2>" in html
    assert "1 GRU layer section" in html and "GRU parameters" in html
    assert "in the order <b>z</b> (update)" in html and "<b>f</b> (forget)" not in html
    body = html.split("</header>")[1].split('<script type="application/json"')[0]
    assert "LSTM" not in body  # (the default title, "… LSTM weight report", is in the header)


def _header_elements(path: Path) -> int:
    """Every tensor's element count, from a safetensors header parsed by hand."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    return sum(int(np.prod(s["shape"])) for k, s in header.items() if k != "__metadata__")


def _layer_params(data: dict[str, Any]) -> int:
    return sum(x["params"] for x in data["models"][0]["layers"])


def test_total_params_of_a_state_dict_counts_every_tensor(tmp_path: Path) -> None:
    every = _header_elements(FW / "torch_state_dict.safetensors")  # the same weights
    for file in ("torch_state_dict.pt", "torch_state_dict.safetensors"):
        data = _build(tmp_path, FW / file)
        assert data["models"][0]["total_params"] == every, file
    # A checkpoint: the model's state dict, not the optimizer's momentum or other extras
    data = _build(tmp_path, FW / "torch_checkpoint.pt")
    assert data["models"][0]["total_params"] == every
    # Tensors that are not recurrent weights count too: Net's head, nn.Linear(3, 1)
    data = _build(tmp_path, FW / "torch_state_dict.pt")
    assert _layer_params(data) == every - (3 + 1)
    html = (tmp_path / "r.html").read_text()
    assert f"· {every:,} parameters," in html


def test_total_params_of_an_onnx_file_counts_every_stored_tensor(
    tmp_path: Path, expected: dict[str, np.ndarray]
) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    by_hand = sum(expected[f"onnx/gru_lbr0/{k}"].size for k in "WRB")
    assert _build(tmp_path, FW / "onnx_gru_lbr0_reverse.onnx")["models"][0]["total_params"] == (
        by_hand
    )
    # A dense head after the GRU: one more initializer and a Constant node count too
    model = onnx.load(str(FW / "onnx_gru_lbr0_reverse.onnx"))
    model.graph.initializer.append(numpy_helper.from_array(np.ones((4, 2), np.float32), "head"))
    model.graph.node.append(
        helper.make_node(
            "Constant", [], ["shift"], value=numpy_helper.from_array(np.ones(3, np.float32))
        )
    )
    onnx.save(model, str(tmp_path / "head.onnx"))
    data = _build(tmp_path, tmp_path / "head.onnx")
    assert data["models"][0]["total_params"] == by_hand + 8 + 3
    assert _layer_params(data) == by_hand


def test_unit_forget_bias_texts_only_for_keras_layers_that_have_it(
    keras: Any, tmp_path: Path
) -> None:
    # PyTorch (and ONNX) initialise no forget bias at 1: no b_f − 1, no dotted start line.
    data = _build(tmp_path, FW / "torch_state_dict.pt")
    assert all(x["memory"]["forget_bias_shift"] is None for x in data["models"][0]["layers"])
    html = (tmp_path / "r.html").read_text()
    assert "unit_forget_bias" not in html and "− 1 averages" not in html
    assert "start of b_" not in html
    # Keras: only the layer built with unit_forget_bias (the default) gets them.
    inp = keras.Input((6, 3))
    h = keras.layers.LSTM(4, return_sequences=True, name="default")(inp)
    h = keras.layers.LSTM(2, unit_forget_bias=False, name="without")(h)
    m = keras.Model(inp, h)
    rng = np.random.default_rng(5)
    m.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in m.get_weights()])
    m.save(tmp_path / "m.keras")
    data = _build(tmp_path, tmp_path / "m.keras")
    layers = _layers(data)
    bias = m.get_layer("default").get_weights()[2].astype(np.float64)
    assert layers[("default", "forward")]["memory"]["forget_bias_shift"] == pytest.approx(
        np.mean(bias[4:8] - 1.0)
    )
    assert layers[("without", "forward")]["memory"]["forget_bias_shift"] is None
    html = (tmp_path / "r.html").read_text()
    assert html.count("− 1 averages") == 1 and html.count("start of b_f") == 1


def _layout(html: str) -> str:
    return html.split('<section id="layout">')[1].split("</section>")[0]


def test_layout_explainer_speaks_of_the_frameworks_in_the_report(
    tmp_path: Path, simple_model: Any
) -> None:
    _build(tmp_path, FW / "torch_state_dict.pt")
    html = (tmp_path / "r.html").read_text()
    assert "How Keras" not in html
    part = _layout(html)
    assert "<h2>How PyTorch stores LSTMs and GRUs</h2>" in part
    for tensor in ("weight_ih_l{k}", "weight_hh_l{k}", "bias_ih_l{k}", "bias_hh_l{k}"):
        assert f"<code>{tensor}</code>" in part
    assert "<b>g</b> (candidate, the report's <b>c</b>)" in part
    assert "the order <b>r</b> (reset), <b>z</b> (update), <b>n</b> (candidate)" in part
    assert "recurrent_kernel" not in part and "get_weights()" not in part
    assert "ONNX" not in part
    pytest.importorskip("onnx")
    _build(tmp_path, FW / "onnx_lstm_bidirectional.onnx")
    part = _layout((tmp_path / "r.html").read_text())
    assert "<h2>How ONNX stores an LSTM</h2>" in part
    assert "<b>i</b> (input), <b>o</b>\n    (output), <b>f</b> (forget), <b>c</b>" in part
    for name, shape in (("W", "4·units, input_dim"), ("R", "4·units, units"), ("B", "8·units")):
        assert f"<td><code>{name}</code></td><td>[directions, {shape}]</td>" in part
    assert "weight_ih" not in part and "recurrent_kernel" not in part
    assert "(update)" not in part  # no GRU in this file
    # Keras and PyTorch in one report: both layouts, nothing of ONNX
    cfg = tmp_path / "both.yaml"
    cfg.write_text(f"models: [{simple_model.path}, {FW / 'torch_state_dict.pt'}]\n")
    assert main(["build", str(cfg), "-o", str(tmp_path / "both.html"), "-q"]) == 0
    part = _layout((tmp_path / "both.html").read_text())
    assert "<h2>How Keras and PyTorch store LSTMs and GRUs</h2>" in part
    assert "<code>recurrent_kernel</code>" in part and "<code>weight_hh_l{k}</code>" in part
    assert "Keras keeps the weights of one GRU" not in part  # the Keras model has no GRU
    assert "ONNX" not in part


def _pickle_state_dict(tensors: dict[str, tuple[str, int, tuple[int, ...]]]) -> bytes:
    """A torch.save data.pkl written opcode by opcode, as torch writes it (protocol 2):
    {name: _rebuild_tensor_v2(storage, 0, size, C strides, False, OrderedDict())}, each
    storage a persistent id ('storage', FloatStorage, key, 'cpu', numel)."""

    def glob(module: str, name: str) -> bytes:
        return b"c" + f"{module}\n{name}\n".encode()

    def text(s: str) -> bytes:
        raw = s.encode()
        return b"X" + struct.pack("<I", len(raw)) + raw

    def tup(*items: bytes) -> bytes:
        return b"(" + b"".join(items) + b"t"

    def num(n: int) -> bytes:
        return b"J" + struct.pack("<i", n)

    items = b""
    for name, (key, numel, shape) in tensors.items():
        strides = tuple(int(np.prod(shape[i + 1 :])) for i in range(len(shape)))
        storage = tup(text("storage"), glob("torch", "FloatStorage"), text(key), text("cpu"))
        storage = storage[:-1] + num(numel) + b"t" + b"Q"  # BINPERSID
        args = tup(
            storage,
            num(0),
            tup(*map(num, shape)),
            tup(*map(num, strides)),
            b"\x89",  # False
            glob("collections", "OrderedDict") + b")R",
        )
        items += text(name) + glob("torch._utils", "_rebuild_tensor_v2") + args + b"R"
    return b"\x80\x02}(" + items + b"u."


def test_total_params_counts_a_tied_tensor_once(tmp_path: Path) -> None:
    # An LSTM(3 -> 2) and an embedding tied to the output layer: `head.weight` is the same
    # storage, offset, size and stride as `emb.weight` (as torch.save writes tied weights).
    H, n_in, vocab = 2, 3, 5
    tensors = {
        "lstm.weight_ih_l0": ("0", 4 * H * n_in, (4 * H, n_in)),
        "lstm.weight_hh_l0": ("1", 4 * H * H, (4 * H, H)),
        "lstm.bias_ih_l0": ("2", 4 * H, (4 * H,)),
        "lstm.bias_hh_l0": ("3", 4 * H, (4 * H,)),
        "emb.weight": ("4", vocab * n_in, (vocab, n_in)),
        "head.weight": ("4", vocab * n_in, (vocab, n_in)),
    }
    rng = np.random.default_rng(0)
    path = tmp_path / "tied.pt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("tied/data.pkl", _pickle_state_dict(tensors))
        zf.writestr("tied/byteorder", "little")
        for key, numel, _ in dict((t[0], t) for t in tensors.values()).values():
            zf.writestr(f"tied/data/{key}", rng.normal(size=numel).astype("<f4").tobytes())
    data = _build(tmp_path, path)
    lstm = 4 * H * n_in + 4 * H * H + 2 * 4 * H
    assert _layer_params(data) == lstm
    assert data["models"][0]["total_params"] == lstm + vocab * n_in  # not + 2 · vocab · n_in
