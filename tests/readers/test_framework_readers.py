"""PyTorch (.pt, .safetensors) and ONNX readers, proven against the frameworks' own outputs.

The fixtures in tests/fixtures/frameworks/ were written by make_framework_fixtures.py with
torch and onnxruntime; these tests need neither. Each replay below is built only from the
CellWeights a reader returned, so agreement with the framework proves the gate order, the
transposes, where each bias goes and the direction.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cells.base import CellWeights
from lstm_report.cells.kinds import replay, replay_layers
from lstm_report.errors import ModelLoadError
from lstm_report.model.layers import RecurrentModel
from lstm_report.readers.onnx import rnn as onnx_rnn
from lstm_report.readers.onnx.cells import rnn_cells
from lstm_report.readers.torch import rnn as torch_rnn
from lstm_report.readers.torch import safetensors_file as safetensors_state
from lstm_report.readers.torch import state as torch_state
from tests.helpers import FIXTURES

FIX = FIXTURES / "frameworks"
ATOL = 1e-5
TORCH_FILES = ["torch_state_dict.pt", "torch_checkpoint.pt", "torch_state_dict.safetensors"]
MODULES = ["encoder", "bi", "proj", "gru", "plain"]


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIX / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def _module(model: RecurrentModel, name: str) -> list[CellWeights]:
    return [c for c in model.cells if c.name.split(".")[0] == name]


# --- PyTorch: every layout against torch's own outputs -------------------------------------


@pytest.mark.parametrize("file", TORCH_FILES)
@pytest.mark.parametrize("module", MODULES)
def test_torch_replay_matches_torch(
    file: str, module: str, expected: dict[str, np.ndarray]
) -> None:
    cells = _module(torch_rnn.read(FIX / file), module)
    out, traces = replay_layers(cells, expected["x"])
    np.testing.assert_allclose(out, expected[f"torch/{module}/out"], atol=ATOL)
    # h_n is (layers * directions, batch, out), layer by layer, forward first: as the traces.
    h_n = np.stack([t.h_last for t in traces])
    np.testing.assert_allclose(h_n, expected[f"torch/{module}/h_n"], atol=ATOL)
    if f"torch/{module}/c_n" in expected:
        c_n = np.stack([t.c_last for t in traces])
        np.testing.assert_allclose(c_n, expected[f"torch/{module}/c_n"], atol=ATOL)


def test_torch_cells_describe_what_was_read() -> None:
    model = torch_rnn.read(FIX / "torch_state_dict.pt")
    assert model.source == "torch_state_dict.pt" and model.framework == "PyTorch state dict"
    assert model.other == ()
    by_label = {c.label: c for c in model.cells}
    assert [c.label for c in model.cells][:4] == [
        "encoder.l0 (forward)",
        "encoder.l1 (forward)",
        "bi.l0 (forward)",
        "bi.l0 (backward)",
    ]
    enc = by_label["encoder.l0 (forward)"]
    assert (enc.kind, enc.units, enc.input_dim, enc.P) == ("LSTM", 5, 3, None)
    assert enc.framework == "PyTorch nn.LSTM" and "i,f,g,o" in enc.source_layout
    assert enc.gate("f").b is not None and enc.gate("f").b_rec is not None
    proj = by_label["proj.l1 (backward)"]
    assert proj.P is not None and proj.P.shape == (5, 2)
    assert proj.gate("i").U.shape == (2, 5) and proj.input_dim == 4  # two directions of 2
    assert proj.output_dim == 2 and "weight_hr_l1_reverse" in proj.source_layout
    gru = by_label["gru.l1 (backward)"]
    assert (gru.kind, gru.reset_after, gru.input_dim) == ("GRU", True, 8)
    assert "r,z,n" in gru.source_layout
    plain = by_label["plain.l0 (forward)"]
    assert all(g.b is None and g.b_rec is None for g in plain.gates)


def test_torch_files_agree_bit_for_bit() -> None:
    models = [torch_rnn.read(FIX / f) for f in TORCH_FILES]
    first = {c.label: c for c in models[0].cells}
    for model in models[1:]:
        assert {c.label for c in model.cells} == set(first)
        for c in model.cells:
            for g, h in zip(c.gates, first[c.label].gates):
                np.testing.assert_array_equal(g.W, h.W)
                np.testing.assert_array_equal(g.U, h.U)
                np.testing.assert_array_equal(g.b_rec, h.b_rec)


def test_checkpoint_state_dict_is_found_and_module_prefix_stripped() -> None:
    loaded = torch_state.load(FIX / "torch_checkpoint.pt")
    assert isinstance(loaded.obj, dict) and loaded.obj["epoch"] == 3
    found = dict(torch_state.tensor_dicts(loaded.obj))
    assert "model_state_dict" in found and "extras" in found
    assert next(iter(found["model_state_dict"])).startswith("module.")
    model = torch_rnn.read(FIX / "torch_checkpoint.pt")
    assert model.framework == "PyTorch checkpoint"
    assert not any(c.name.startswith("module") for c in model.cells)


def test_two_state_dicts_in_one_checkpoint_keep_their_names(tmp_path: Path) -> None:
    """E.g. a model and its EMA copy: both are read, each layer named after its dict."""
    with zipfile.ZipFile(FIX / "torch_state_dict.pt") as zf:
        data = zf.read("torch_state_dict/data.pkl")
        entries = {
            i.filename.split("/data/")[1]: zf.read(i)
            for i in zf.infolist()
            if "/data/" in i.filename
        }
    assert data[:2] == b"\x80\x02" and data[-1:] == b"."
    body = data[2:-1]  # builds the OrderedDict; its memo slots are set before each use

    def key(s: str) -> bytes:
        return b"X" + len(s).to_bytes(4, "little") + s.encode()

    both = b"\x80\x02}(" + key("model") + body + key("ema") + body + b"u."
    path = _torch_zip(tmp_path / "two.pt", both, entries)
    model = torch_rnn.read(path)
    names = [c.name for c in model.cells]
    assert names[0] == "model:encoder.l0" and "ema:encoder.l0" in names
    assert len(names) == 2 * len(torch_rnn.read(FIX / "torch_state_dict.pt").cells)


def test_strided_view_is_rebuilt_from_offset_and_strides(expected: dict[str, np.ndarray]) -> None:
    loaded = torch_state.load(FIX / "torch_checkpoint.pt")
    assert isinstance(loaded.obj, dict)
    ref = loaded.obj["extras"]["view"]
    assert (ref.offset, ref.shape, ref.stride) == (5, (3, 3), (2, 5))
    got = loaded.arrays({"view": ref})["view"]
    np.testing.assert_array_equal(got, expected["torch/checkpoint/view"])
    assert got.flags.writeable and got.base is None  # a copy, not a view of the file's bytes


@pytest.mark.parametrize("file", ["torch_half.pt", "torch_half.safetensors"])
def test_bfloat16_and_float16_are_widened_exactly(
    file: str, expected: dict[str, np.ndarray]
) -> None:
    path = FIX / file
    if file.endswith(".pt"):
        loaded = torch_state.load(path)
        (_, refs), *_ = torch_state.tensor_dicts(loaded.obj)
        assert {r.dtype for r in refs.values()} == {"bf16", "f2"}
        arrays = loaded.arrays(refs)
    else:
        assert {s.dtype for s in safetensors_state.read_header(path).values()} == {"BF16", "F16"}
        arrays = safetensors_state.read(path)
    assert set(arrays) == {k.removeprefix("torch/half/") for k in expected if "/half/" in k}
    for k, v in arrays.items():
        np.testing.assert_array_equal(v.astype(np.float32), expected[f"torch/half/{k}"])
    model = torch_rnn.read(path)
    assert [c.label for c in model.cells] == [
        "bi.l0 (forward)",
        "bi.l0 (backward)",
        "plain.l0 (forward)",
    ]


# --- wrong conventions must fail the comparison ---------------------------------------------


def _onnx_as_torch(expected: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    W, R, B = (expected[f"onnx/{name}/{k}"] for k in "WRB")
    half = B.shape[1] // 2
    return {
        "weight_ih_l0": W[0],
        "weight_hh_l0": R[0],
        "bias_ih_l0": B[0, :half],
        "bias_hh_l0": B[0, half:],
    }


def test_onnx_lstm_read_in_torch_gate_order_does_not_match(expected: dict[str, np.ndarray]) -> None:
    want = expected["onnx/lstm_bi/Y"][:, 0].transpose(1, 0, 2)  # forward direction
    right = rnn_cells(
        "LSTM",
        *(expected[f"onnx/lstm_bi/{k}"] for k in "WRB"),
        name="lstm_bi",
        direction="bidirectional",
        where="npz",
    )
    np.testing.assert_allclose(replay(right[0], expected["x"]).h, want, atol=ATOL)
    (wrong,), _ = torch_rnn.cells_from_state_dict(_onnx_as_torch(expected, "lstm_bi"), where="t")
    assert not np.allclose(replay(wrong, expected["x"]).h, want, atol=1e-3)


def test_torch_gru_read_in_onnx_gate_order_does_not_match(expected: dict[str, np.ndarray]) -> None:
    """PyTorch's r,z,n rows read as ONNX's (and Keras') z,r,h must fail against torch."""
    sd = torch_state.load(FIX / "torch_state_dict.pt")
    (_, refs), *_ = torch_state.tensor_dicts(sd.obj)
    a = sd.arrays({k: v for k, v in refs.items() if k.startswith("plain.")})
    assert set(a) == {"plain.weight_ih_l0", "plain.weight_hh_l0"}  # bias=False
    (wrong,) = rnn_cells(
        "GRU",
        a["plain.weight_ih_l0"][None],
        a["plain.weight_hh_l0"][None],
        None,
        name="g",
        linear_before_reset=1,
        where="t",
    )
    want = expected["torch/plain/out"]
    assert not np.allclose(replay(wrong, expected["x"]).h, want, atol=1e-3)
    (right,) = _module(torch_rnn.read(FIX / "torch_state_dict.pt"), "plain")
    np.testing.assert_allclose(replay(right, expected["x"]).h, want, atol=ATOL)


def test_onnx_gru_read_with_the_other_linear_before_reset_does_not_match(
    expected: dict[str, np.ndarray],
) -> None:
    arrays = [expected[f"onnx/gru_lbr0/{k}"] for k in "WRB"]
    want = expected["onnx/gru_lbr0/Y"][:, 0].transpose(1, 0, 2)
    for lbr, matches in ((0, True), (1, False)):
        (cell,) = rnn_cells(
            "GRU", *arrays, name="g", direction="reverse", linear_before_reset=lbr, where="t"
        )
        assert np.allclose(replay(cell, expected["x"]).h, want, atol=ATOL) == matches


# --- ONNX: every layout against onnxruntime's own outputs ------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "direction", "lbr"),
    [
        ("lstm_bi", "LSTM", "bidirectional", 0),
        ("gru_lbr0", "GRU", "reverse", 0),
        ("gru_lbr1", "GRU", "bidirectional", 1),
    ],
)
def test_onnx_arrays_replay_matches_onnxruntime(
    name: str, kind: Any, direction: str, lbr: int, expected: dict[str, np.ndarray]
) -> None:
    """The conversion alone (no onnx package needed): W, R, B as saved beside the models."""
    cells = rnn_cells(
        kind,
        *(expected[f"onnx/{name}/{k}"] for k in "WRB"),
        name=name,
        direction=direction,
        linear_before_reset=lbr,
        where="npz",
    )
    _assert_onnx_outputs(cells, name, expected)


def _assert_onnx_outputs(
    cells: tuple[CellWeights, ...], name: str, expected: dict[str, np.ndarray]
) -> None:
    for d, cell in enumerate(cells):
        trace = replay(cell, expected["x"])
        # Y is [seq, dirs, batch, H], both directions aligned with the input's time steps.
        y = expected[f"onnx/{name}/Y"][:, d].transpose(1, 0, 2)
        np.testing.assert_allclose(trace.h, y, atol=ATOL)
        np.testing.assert_allclose(trace.h_last, expected[f"onnx/{name}/Y_h"][d], atol=ATOL)
        if cell.kind == "LSTM":
            np.testing.assert_allclose(trace.c_last, expected[f"onnx/{name}/Y_c"][d], atol=ATOL)


@pytest.mark.parametrize(
    ("file", "name", "directions", "reset_after"),
    [
        ("onnx_lstm_bidirectional.onnx", "lstm_bi", ["forward", "backward"], None),
        ("onnx_gru_lbr0_reverse.onnx", "gru_lbr0", ["backward"], False),
        ("onnx_gru_lbr1_bidirectional.onnx", "gru_lbr1", ["forward", "backward"], True),
        ("onnx_external/gru.onnx", "gru_lbr1", ["forward", "backward"], True),
    ],
)
def test_onnx_file_replay_matches_onnxruntime(
    file: str,
    name: str,
    directions: list[str],
    reset_after: bool | None,
    expected: dict[str, np.ndarray],
) -> None:
    pytest.importorskip("onnx")
    model = onnx_rnn.read(FIX / file)
    assert model.framework == "ONNX" and model.other == ()
    assert [c.direction for c in model.cells] == directions
    assert {c.name for c in model.cells} == {name}
    assert {c.reset_after for c in model.cells} == {reset_after}
    _assert_onnx_outputs(model.cells, name, expected)


def test_onnx_lstm_layout_is_named(expected: dict[str, np.ndarray]) -> None:
    pytest.importorskip("onnx")
    cell = onnx_rnn.read(FIX / "onnx_lstm_bidirectional.onnx").cells[0]
    assert cell.framework == "ONNX LSTM" and "gates i,o,f,c" in cell.source_layout
    # ONNX's second block is the output gate: it lands in canonical position 3.
    np.testing.assert_array_equal(cell.gate("o").W, expected["onnx/lstm_bi/W"][0, 4:8].T)


def test_onnx_nonzero_peepholes_are_read_in_cell_order(expected: dict[str, np.ndarray]) -> None:
    """ONNX stores P as i, o, f; the cell keeps P_i, P_f, P_o (replayed against the
    reference evaluator in tests/readers/test_onnx_graphs.py)."""
    pytest.importorskip("onnx")
    (cell,) = onnx_rnn.read(FIX / "onnx_lstm_peephole.onnx").cells
    P = expected["onnx/lstm_peephole/P"][0]
    h = cell.units
    assert cell.peepholes is not None
    np.testing.assert_array_equal(cell.peepholes, np.stack([P[:h], P[2 * h :], P[h : 2 * h]]))


def _rewrite_onnx(src: Path, dst: Path, edit: Callable[[Any], None]) -> Path:
    import onnx

    model = onnx.load(str(src), load_external_data=False)
    edit(model)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return dst


def _set_location(location: str) -> Callable[[Any], None]:
    def edit(model: Any) -> None:
        for t in model.graph.initializer:
            for e in t.external_data:
                if e.key == "location":
                    e.value = location

    return edit


def test_onnx_external_data_outside_the_folder_is_refused(tmp_path: Path) -> None:
    """Even with external data allowed (--allow-external-data), never outside the folder."""
    pytest.importorskip("onnx")
    weights = (FIX / "onnx_external" / "gru.onnx.data").read_bytes()
    # The data really is there, one folder up: a loader that followed the path would succeed.
    (tmp_path / "gru.weights").write_bytes(weights)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "gru.weights").write_bytes(weights)
    src = FIX / "onnx_external" / "gru.onnx"
    cases = {
        "../gru.weights": "is not a plain relative path inside the model's folder: refused",
        str(tmp_path / "gru.weights"): "is not a plain relative path inside the model's folder",
        "sub/../../gru.weights": "is not a plain relative path",
    }
    for i, (location, message) in enumerate(cases.items()):
        model = _rewrite_onnx(src, tmp_path / f"m{i}" / "gru.onnx", _set_location(location))
        with pytest.raises(
            ModelLoadError, match=f"^gru.onnx: initializer 'W': external data location .*{message}"
        ):
            onnx_rnn.read(model, allow_external_data=True)
    # A link inside the folder that leads out of it.
    linked = tmp_path / "linked"
    linked.mkdir()
    model = _rewrite_onnx(src, linked / "gru.onnx", _set_location("gru.weights"))
    os.symlink(tmp_path / "secret" / "gru.weights", linked / "gru.weights")
    with pytest.raises(ModelLoadError, match="resolves outside the model's folder .*: refused$"):
        onnx_rnn.read(model, allow_external_data=True)
    # The control: the same model beside a real copy of its data reads.
    ok = tmp_path / "ok"
    ok.mkdir()
    model = _rewrite_onnx(src, ok / "gru.onnx", _set_location("gru.weights"))
    (ok / "gru.weights").write_bytes(weights)
    assert len(onnx_rnn.read(model, allow_external_data=True).cells) == 2


def test_onnx_external_data_shorter_than_declared_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "gru.onnx").write_bytes((FIX / "onnx_external" / "gru.onnx").read_bytes())
    data = (FIX / "onnx_external" / "gru.onnx.data").read_bytes()[:100]
    (folder / "gru.onnx.data").write_bytes(data)
    with pytest.raises(
        ModelLoadError, match=r"^gru.onnx: initializer '.': external data needs \d+ bytes at offset"
    ):
        onnx_rnn.read(folder / "gru.onnx")


@pytest.mark.parametrize(
    ("attr", "value", "match"),
    [
        ("clip", 3.0, "clip clips the cell's inputs, which the replay cannot do"),
        ("activations", ["Sigmoid", "Tanh", "Relu"] * 2, "activations g=Tanh and h=Relu differ"),
        ("activations", ["Sigmoid", "Gelu", "Gelu"] * 2, "activation 'Gelu' is not supported"),
        ("activation_alpha", [0.5], "activation_alpha parametrises its activations"),
        ("input_forget", 1, "input_forget=1 couples the input and forget gates"),
    ],
)
def test_onnx_attributes_that_change_the_maths_are_refused(
    tmp_path: Path, attr: str, value: Any, match: str
) -> None:
    onnx = pytest.importorskip("onnx")

    def edit(model: Any) -> None:
        model.graph.node[0].attribute.append(onnx.helper.make_attribute(attr, value))

    path = _rewrite_onnx(FIX / "onnx_lstm_bidirectional.onnx", tmp_path / "m.onnx", edit)
    with pytest.raises(ModelLoadError, match=f"^m.onnx: LSTM node 'lstm_bi': {match}"):
        onnx_rnn.read(path)


def test_onnx_weights_computed_in_the_graph_are_refused(tmp_path: Path) -> None:
    pytest.importorskip("onnx")

    def edit(model: Any) -> None:
        model.graph.node[0].input[1] = "computed_W"

    path = _rewrite_onnx(FIX / "onnx_gru_lbr0_reverse.onnx", tmp_path / "m.onnx", edit)
    with pytest.raises(ModelLoadError, match="W comes from 'computed_W', not from an initializer"):
        onnx_rnn.read(path)


def test_onnx_not_a_model(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    bad = tmp_path / "junk.onnx"
    bad.write_bytes(b"\xff\x00 not protobuf at all \x00" * 10)
    with pytest.raises(ModelLoadError, match="^junk.onnx: not an ONNX model"):
        onnx_rnn.read(bad)


# --- hostile and wrong torch files -----------------------------------------------------------


def test_malicious_pickle_is_refused_and_nothing_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match=r"^malicious.pt: refused: the pickle calls io.open$"):
        torch_rnn.read(FIX / "malicious.pt")
    assert not (tmp_path / "lstm_report_pwned.txt").exists()


def test_malicious_fixture_really_writes_a_file_when_unpickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the test above: plain pickle does run the payload."""
    monkeypatch.chdir(tmp_path)
    with zipfile.ZipFile(FIX / "malicious.pt") as zf:
        data = zf.read("malicious/data.pkl")

    class Plain(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            return None

        def find_class(self, module: str, name: str) -> Any:
            if module.startswith("torch"):
                return lambda *a: None  # no torch here; the payload is not torch's
            return super().find_class(module, name)

    obj = Plain(io.BytesIO(data)).load()
    obj["payload"].close()
    assert (tmp_path / "lstm_report_pwned.txt").exists()


def test_find_class_refuses_even_if_the_scan_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch_state, "scan_globals", lambda data: [])
    with pytest.raises(ModelLoadError, match=r"^malicious.pt: refused: global io.open$"):
        torch_state.load(FIX / "malicious.pt")
    assert not (tmp_path / "lstm_report_pwned.txt").exists()


def _torch_zip(path: Path, data_pkl: bytes, entries: dict[str, bytes] | None = None) -> Path:
    stem = path.stem
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{stem}/data.pkl", data_pkl)
        zf.writestr(f"{stem}/byteorder", "little")
        for name, raw in (entries or {}).items():
            zf.writestr(f"{stem}/data/{name}", raw)
    return path


class _System:
    def __reduce__(self) -> Any:
        return (os.system, ("touch lstm_report_system_ran",))


def test_os_system_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = _torch_zip(tmp_path / "evil.pt", pickle.dumps({"x": _System()}, protocol=4))
    with pytest.raises(
        ModelLoadError,
        match=rf"^evil.pt: refused: the pickle calls {os.name == 'nt' and 'nt' or 'posix'}.system$",
    ):
        torch_rnn.read(path)
    assert not (tmp_path / "lstm_report_system_ran").exists()


def test_pickled_module_is_refused_with_the_state_dict_hint() -> None:
    with pytest.raises(
        ModelLoadError,
        match=r"^whole_module.pt: a whole pickled model \(torch.nn.modules.rnn.GRU\), not a "
        r"state dict: save `model.state_dict\(\)` instead$",
    ):
        torch_rnn.read(FIX / "whole_module.pt")


def test_storage_larger_than_its_entry_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2**40 floats: had anything been allocated first, this would be a MemoryError.
    with pytest.raises(
        ModelLoadError,
        match=r"^oversized_storage.pt: refused: storage 0 declares 1099511627776 x FloatStorage "
        r"\(4398046511104 bytes\) but its entry holds 48 bytes$",
    ):
        torch_rnn.read(FIX / "oversized_storage.pt")
    # A real state dict with one entry cut short: the entry is never read.
    src = FIX / "torch_state_dict.pt"
    dst = tmp_path / "cut.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            raw = zin.read(info)
            name = info.filename.replace("torch_state_dict/", "cut/")
            zout.writestr(name, raw[:4] if name == "cut/data/3" else raw)
    read: list[str] = []
    real_read = zipfile.ZipFile.read

    def spy(self: zipfile.ZipFile, name: Any, pwd: Any = None) -> bytes:
        read.append(name if isinstance(name, str) else name.filename)
        return real_read(self, name, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "read", spy)
    with pytest.raises(
        ModelLoadError,
        match=r"^cut.pt: refused: storage 3 declares \d+ x FloatStorage \(\d+ bytes\) but its entry holds 4 bytes$",
    ):
        torch_rnn.read(dst)
    assert not any("/data/" in n for n in read)


def test_tensor_reaching_past_its_storage_is_refused(tmp_path: Path) -> None:
    """A pickle can declare any size and stride: the view is checked against the storage."""
    src = FIX / "torch_state_dict.pt"
    with zipfile.ZipFile(src) as zin:
        data = bytearray(zin.read("torch_state_dict/data.pkl"))
        raw0 = zin.read("torch_state_dict/data/0")
    # The first tensor is encoder.weight_ih_l0 (20, 3): pretend it starts at element 7.
    data = bytes(data).replace(b"K\x00K\x14K\x03\x86", b"K\x07K\x14K\x03\x86", 1)
    path = _torch_zip(tmp_path / "shifted.pt", data, {"0": raw0})
    with pytest.raises(
        ModelLoadError,
        match=r"^shifted.pt: refused: a tensor of shape \(20, 3\) reaching element 66 of a storage of 60$",
    ):
        torch_state.load(path)


def test_compressed_storages_are_refused(tmp_path: Path) -> None:
    src = FIX / "torch_state_dict.pt"
    dst = tmp_path / "deflated.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename.replace("torch_state_dict/", "deflated/"), zin.read(info))
    with pytest.raises(ModelLoadError, match="^deflated.pt: refused: storage 0 is compressed"):
        torch_rnn.read(dst)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.", "the legacy torch.save format"),
        (b"PK\x03\x04 this is no zip", "not a readable zip"),
        (b"", "not a torch.save file \\(not a zip\\)"),
    ],
)
def test_torch_files_that_are_not_state_dicts(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=f"^model.pt: {match}"):
        torch_state.load(path)


def test_torchscript_archive_is_named(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("scripted/data.pkl", pickle.dumps({}))
        zf.writestr("scripted/constants.pkl", pickle.dumps(()))
        zf.writestr("scripted/code/__torch__.py", "")
    with pytest.raises(
        ModelLoadError, match=r"^scripted.pt: a TorchScript archive \(torch.jit.save\)"
    ):
        torch_rnn.read(path)


def test_state_dict_without_rnn_keys(tmp_path: Path) -> None:
    path = _torch_zip(tmp_path / "empty.pt", pickle.dumps({"epoch": 1}, protocol=2))
    with pytest.raises(
        ModelLoadError,
        match=r"^empty.pt: no nn.LSTM or nn.GRU weights \(no key like weight_ih_l0 or, for a cell, "
        r"weight_ih\)$",
    ):
        torch_rnn.read(path)


# --- grouping state dict keys into cells ----------------------------------------------------


def test_plain_rnn_is_listed_not_analysed() -> None:
    rng = np.random.default_rng(0)
    state = {
        "rnn.weight_ih_l0": rng.normal(size=(4, 3)),
        "rnn.weight_hh_l0": rng.normal(size=(4, 4)),
        "cell.weight_ih_l0": rng.normal(size=(12, 3)),
        "cell.weight_hh_l0": rng.normal(size=(12, 4)),
        "head.weight": rng.normal(size=(1, 4)),
    }
    cells, other = torch_rnn.cells_from_state_dict(state, where="m.pt")
    assert other == ("rnn.l0: nn.RNN (4 units, one tanh or relu step): not a gated cell",)
    assert [(c.name, c.kind) for c in cells] == [("cell.l0", "GRU")]


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ({"a.weight_ih_l0": np.zeros((12, 3))}, r"^m.pt: a.l0: weight_hh_l0 is missing$"),
        (
            {
                "a.weight_ih_l0": np.zeros((12, 3)),
                "a.weight_hh_l0": np.zeros((12, 4)),
                "a.bias_ih_l0": np.zeros(12),
            },
            r"^m.pt: a.l0: bias_ih_l0 and bias_hh_l0 come in pairs$",
        ),
        (
            {
                "a.weight_ih_l1_reverse": np.zeros((10, 3)),
                "a.weight_hh_l1_reverse": np.zeros((10, 5)),
            },
            r"^m.pt: a.l1_reverse: weight_hh_l1_reverse \(10, 5\) is neither an LSTM's",
        ),
        (
            {
                "a.weight_ih_l0": np.zeros((16, 3)),
                "a.weight_hh_l0": np.zeros((16, 4)),
                "a.bias_ih_l0": np.zeros(12),
                "a.bias_hh_l0": np.zeros(16),
            },
            r"^m.pt: a.l0: bias_ih_l0 \(12,\) is not \(16,\)$",
        ),
    ],
)
def test_inconsistent_state_dicts_are_refused(state: dict[str, np.ndarray], match: str) -> None:
    with pytest.raises(ModelLoadError, match=match):
        torch_rnn.cells_from_state_dict(state, where="m.pt")


# --- safetensors header checks ---------------------------------------------------------------


def _with_header(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    import json
    import struct

    raw = (FIX / "torch_half.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    edit(header)
    text = json.dumps(header).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])
    return path


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda h: h["bi.bias_hh_l0"].update(data_offsets=[0, 10**9]),
            r"tensor 'bi.bias_hh_l0': offsets \[0, 1000000000\] outside the \d+ bytes of data",
        ),
        (
            lambda h: h["bi.bias_hh_l0"].update(shape=[17]),
            r"tensor 'bi.bias_hh_l0': BF16 \(17,\) needs 34 bytes, the header gives 32",
        ),
        (
            lambda h: h["bi.bias_hh_l0"].update(dtype="F8_E4M3"),
            r"tensor 'bi.bias_hh_l0': unsupported dtype 'F8_E4M3'",
        ),
    ],
)
def test_safetensors_header_is_checked(tmp_path: Path, edit: Any, match: str) -> None:
    path = _with_header(tmp_path, edit)
    with pytest.raises(ModelLoadError, match=f"^bad.safetensors: {match}$"):
        torch_rnn.read(path)


def test_safetensors_header_length_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes((2**40).to_bytes(8, "little") + b"{}")
    with pytest.raises(
        ModelLoadError,
        match=r"^short.safetensors: not a safetensors file \(header length 1099511627776 for a file of 10 bytes\)$",
    ):
        torch_rnn.read(path)


# --- optional packages and what is never imported -------------------------------------------


def test_missing_optional_packages_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(
        ModelLoadError,
        match=r"^onnx_gru_lbr0_reverse.onnx: reading ONNX needs the onnx package: pip install 'lstm-report\[onnx\]'$",
    ):
        onnx_rnn.read(FIX / "onnx_gru_lbr0_reverse.onnx")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(ModelLoadError, match=r"pip install 'lstm-report\[safetensors\]'$"):
        torch_rnn.read(FIX / "torch_state_dict.safetensors")


def test_readers_never_import_torch_or_onnxruntime() -> None:
    """Reading every fixture with torch and onnxruntime made unimportable."""
    code = f"""
import sys
sys.modules["torch"] = None
sys.modules["onnxruntime"] = None
from pathlib import Path
from lstm_report.readers.onnx import rnn as onnx_rnn
from lstm_report.readers.torch import rnn as torch_rnn
fix = Path({str(FIX)!r})
for f in {TORCH_FILES!r} + ["torch_half.pt", "torch_half.safetensors"]:
    assert torch_rnn.read(fix / f).cells
try:
    import onnx
except ImportError:
    pass
else:
    assert onnx_rnn.read(fix / "onnx_lstm_bidirectional.onnx").cells
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(FIX.parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("text", "kind", "units", "note"),
    [
        (
            "rnn_cell: nn.RNNCell (2 units, one tanh or relu step): not a gated cell",
            "RNN",
            2,
            "nn.RNNCell (2 units, one tanh or relu step): not a gated cell",
        ),
        ("r: ONNX RNN, not a gated cell", "RNN", None, "ONNX RNN, not a gated cell"),
        (
            "lp/body/LSTM_0: LSTM (ONNX, in a subgraph), not analysed: W comes from 'w'",
            "LSTM",
            None,
            "ONNX, in a subgraph, not analysed: W comes from 'w'",
        ),
        (
            "g: GRU (ONNX Loop), not analysed: its body (6 matrix products, 2 sigmoid gates)",
            "GRU",
            None,
            "ONNX Loop, not analysed: its body (6 matrix products, 2 sigmoid gates)",
        ),
    ],
)
def test_a_listed_layers_text_splits_into_kind_and_note(
    text: str, kind: str, units: int | None, note: str
) -> None:
    """A detail holding a comma stays whole (no stray parenthesis in the note), and a kind
    told only as RNN keeps its own name in the note."""
    from lstm_report.readers.frameworks import _other

    got = _other(text)
    assert (got.name, got.kind, got.units, got.note) == (text.partition(": ")[0], kind, units, note)
