"""Issue 21 (3, 4): small PyTorch, safetensors and ONNX files that would hang or eat all
memory, and malformed ones that gave an internal error. Each file is built here; each run
goes through the CLI in a subprocess under the 3 GiB cap of tests/hostile.py and must give
one `error:` line naming the file (or, for `site`, one `warning:` and the page skipped)
within the timeout. docs/formats.md ("Hostile files") lists the rules and limits."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.errors import ModelLoadError
from lstm_report.readers.onnx import rnn as onnx_rnn
from lstm_report.readers.torch import rnn as torch_rnn
from lstm_report.readers.torch import safetensors_file as safetensors_state
from lstm_report.readers.torch import state as torch_state
from tests import hostile
from tests.hostile import Storage, Tensor, assert_refused, run_cli

FIX = Path(__file__).resolve().parent / "fixtures" / "frameworks"
MiB = 2**20


def build(tmp: Path, model: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cfg = tmp / "c.yaml"
    cfg.write_text(f"models: ['{model}']\n")
    return run_cli(cfg, tmp, timeout)


def layers_in_report(tmp: Path) -> int:
    data = json.loads((tmp / "out" / "r.json").read_text())
    return sum(len(m["layers"]) for m in data["models"])


def cli(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """lstm-report with args, under the memory cap; a run past timeout fails the test."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "lstm_report", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            preexec_fn=hostile._limit_memory,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer within {timeout} s")


# --- 3. PyTorch: the walk, the layers, the tensors, the bytes -------------------------------


@pytest.mark.parametrize(("levels", "fanout"), [(16, 10), (14, 2)])
def test_memo_references_are_walked_once(levels: int, fanout: int, tmp_path: Path) -> None:
    # 10**16 paths to one state dict: found once, read once.
    path = hostile.memo_bomb_pt(tmp_path / "memo.pt", levels, fanout)
    assert path.stat().st_size < 1200
    r = build(tmp_path, path, timeout=30)
    assert r.returncode == 0, r.stderr[-2000:]
    assert layers_in_report(tmp_path) == 1


def test_one_state_dict_referenced_50000_times(tmp_path: Path) -> None:
    state = hostile.lstm_state(Storage("0", 24), 2, 1)
    pkl = hostile.torch_pickle({"copies": [state] * 50_000})
    path = hostile.torch_zip(tmp_path / "many.pt", pkl, {"0": np.ones(24, "<f4").tobytes()})
    r = build(tmp_path, path, timeout=30)
    assert r.returncode == 0, r.stderr[-2000:]
    assert layers_in_report(tmp_path) == 1


@pytest.mark.parametrize(("modules", "units"), [(20_000, 1), (2_000, 256)])
def test_more_than_1000_layers_are_refused(modules: int, units: int, tmp_path: Path) -> None:
    # 20,000 tiny LSTMs, or 2,000 LSTM(256) pairs, all views of one storage.
    numel = 4 * units * units
    storage = Storage("0", numel)
    state: OrderedDict[str, Tensor] = OrderedDict()
    for i in range(modules):
        state.update(hostile.lstm_state(storage, units, units, prefix=f"m{i}."))
    raw = np.zeros(numel, "<f4").tobytes()
    path = hostile.torch_zip(tmp_path / "layers.pt", hostile.torch_pickle(state), {"0": raw})
    line = assert_refused(build(tmp_path, path), tmp_path, "layers.pt")
    assert f"refused: {modules:,} recurrent layers" in line and "more than 1,000" in line


def test_views_of_one_storage_count_once_per_view(tmp_path: Path) -> None:
    # 500 LSTM(256): 1,000 MiB of weights from a 1 MiB storage.
    storage = Storage("0", 4 * 256 * 256)
    state: OrderedDict[str, Tensor] = OrderedDict()
    for i in range(500):
        state.update(hostile.lstm_state(storage, 256, 256, prefix=f"m{i}."))
    raw = np.zeros(storage.numel, "<f4").tobytes()
    path = hostile.torch_zip(tmp_path / "views.pt", hostile.torch_pickle(state), {"0": raw})
    assert path.stat().st_size < 3 * MiB
    line = assert_refused(build(tmp_path, path), tmp_path, "views.pt")
    assert "its weights would take 1000 MiB once read, more than 4× the file's 1.1 MiB" in line


def test_views_within_the_limit_are_read(tmp_path: Path) -> None:
    # Two modules viewing one storage: read, each its own copy.
    storage = Storage("0", 4 * 3 * 3)
    state = hostile.lstm_state(storage, 3, 3, "a.") | hostile.lstm_state(storage, 3, 3, "b.")
    raw = np.arange(36, dtype="<f4").tobytes()
    path = hostile.torch_zip(tmp_path / "two.pt", hostile.torch_pickle(state), {"0": raw})
    model = torch_rnn.read(path)
    assert [c.name for c in model.cells] == ["a.l0", "b.l0"]
    W, U, _, _ = model.cells[1].stacked()
    np.testing.assert_array_equal(W, np.arange(36, dtype=np.float32).reshape(12, 3).T)


def test_more_than_50000_tensors_are_refused(tmp_path: Path) -> None:
    storage = Storage("0", 1)
    pkl = hostile.torch_pickle({"t": [Tensor(storage, (1,)) for _ in range(50_001)]})
    path = hostile.torch_zip(tmp_path / "tensors.pt", pkl, {"0": bytes(4)})
    line = assert_refused(build(tmp_path, path), tmp_path, "tensors.pt")
    assert line.endswith("(tensors.pt): refused: more than 50,000 tensors")


def test_pickle_of_64_mib_of_none_opcodes_is_refused_by_count(tmp_path: Path) -> None:
    pkl = b"\x80\x02" + b"N" * (torch_state.MAX_PICKLE_BYTES - 3) + b"."
    path = hostile.torch_zip(tmp_path / "nones.pt", pkl, {})
    line = assert_refused(build(tmp_path, path), tmp_path, "nones.pt")
    assert "refused: data.pkl has more than 2,000,000 opcodes" in line


# --- 3. ONNX: size and node count before parsing; shared initializers -----------------------


def test_onnx_weights_shared_by_3000_nodes_are_refused(tmp_path: Path) -> None:
    path = hostile.onnx_shared_weights(tmp_path / "shared.onnx", 3000, 2, 2)
    line = assert_refused(build(tmp_path, path), tmp_path, "shared.onnx")
    assert "refused: 3,000 recurrent layers" in line


def test_onnx_initializer_read_for_each_node_counts_each_time(tmp_path: Path) -> None:
    # 800 LSTM(256) nodes on one 2 MiB W/R pair: 1.6 GiB once read.
    path = hostile.onnx_shared_weights(tmp_path / "shared.onnx", 800, 256, 256)
    line = assert_refused(build(tmp_path, path), tmp_path, "shared.onnx")
    assert "its weights would take 1.6 GiB once read, more than 4× the file's 2 MiB" in line


def test_onnx_nodes_sharing_weights_within_the_limit_are_read(tmp_path: Path) -> None:
    path = hostile.onnx_shared_weights(tmp_path / "two.onnx", 2, 3, 2)
    model = onnx_rnn.read(path)
    assert [c.name for c in model.cells] == ["LSTM_0", "LSTM_1"]


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (b"\x0a\x00", "its main graph has more than 100,000 nodes"),  # empty NodeProtos
        (b"\x6a\x00", "it holds more than 1,000,000 messages and values"),  # value_info
    ],
    ids=["nodes", "value infos"],
)
def test_80_mb_onnx_of_empty_messages_is_refused_before_parsing(
    entry: bytes, match: str, tmp_path: Path
) -> None:
    path = hostile.onnx_empty_nodes(tmp_path / "empty.onnx", 80 * 10**6, entry)
    line = assert_refused(build(tmp_path, path, timeout=30), tmp_path, "empty.onnx")
    assert f"refused: {match}" in line


def test_onnx_file_past_protobufs_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.onnx"
    with path.open("wb") as f:
        f.truncate(3 * 2**30)  # sparse: no disk used, and never read
    line = assert_refused(build(tmp_path, path, timeout=20), tmp_path, "huge.onnx")
    assert "refused: larger than protobuf's limit of 2 GiB" in line


# --- 3. safetensors: the header before json.loads ------------------------------------------


def test_safetensors_header_of_30_million_empty_objects_is_refused(tmp_path: Path) -> None:
    header = b'{"x": [' + b"{}," * (30 * 10**6 - 1) + b"{}]}"
    path = hostile.safetensors_file(tmp_path / "objects.safetensors", header)
    assert 80 * MiB < len(header) < 100 * MiB
    line = assert_refused(build(tmp_path, path, timeout=30), tmp_path, "objects.safetensors")
    assert "refused: its header holds more than 2,000,000 values" in line


# --- 3. batch's manifest and site's pages: regular files, bounded --------------------------


def _hostile_file(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "/dev/zero":
        path.symlink_to("/dev/zero")
    else:
        with path.open("wb") as f:
            f.truncate(6 * 2**30)  # a sparse 6 GiB file


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "6 GiB"])
def test_batch_manifest_that_is_not_ours_is_refused(kind: str, tmp_path: Path) -> None:
    shutil.copy(FIX / "torch_state_dict.safetensors", tmp_path / "m.safetensors")
    (tmp_path / "c.yaml").write_text("models: [m.safetensors]\n")
    (tmp_path / "site").mkdir()
    _hostile_file(tmp_path / "site" / ".lstm-report-batch.json", kind)
    r = cli(["batch", "c.yaml", "-o", "site", "-q"], tmp_path, timeout=30)
    lines = r.stderr.splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr[-2000:]
    what = {
        "fifo": "not a regular file (a FIFO)",
        "/dev/zero": "a symbolic link",
        "6 GiB": "larger than 64 MiB",
    }[kind]
    if kind == "/dev/zero":  # a link: refused before the manifest is opened at all
        assert lines[0] == (
            "error: site/.lstm-report-batch.json: is a symbolic link; batch never writes "
            "through one: remove it"
        )
        return
    assert lines[0] == (
        f"error: site/.lstm-report-batch.json: the batch manifest is {what}, which batch "
        "never writes; remove it (every run is then rebuilt)"
    )


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from lstm_report import build_report

    d = tmp_path_factory.mktemp("page")
    shutil.copy(FIX / "torch_state_dict.safetensors", d / "m.safetensors")
    (d / "c.yaml").write_text("models: [m.safetensors]\n")
    build_report(d / "c.yaml", output=d / "r.html")
    return (d / "r.html").read_bytes()


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "6 GiB"])
def test_site_skips_pages_it_cannot_read_safely(
    kind: str, report_page: bytes, tmp_path: Path
) -> None:
    src = tmp_path / "reports"
    src.mkdir()
    (src / "good.html").write_bytes(report_page)
    _hostile_file(src / "bad.html", kind)
    r = cli(["site", "reports", "-o", "site", "--follow-links"], tmp_path, timeout=30)
    assert r.returncode == 0, r.stderr[-2000:]
    what = {
        "fifo": "not a regular file (a FIFO)",
        "/dev/zero": "not a regular file (a character device)",
        "6 GiB": "larger than 64 MiB",
    }[kind]
    assert r.stderr.splitlines() == [
        f"warning: skipped reports/bad.html: {what}, not read",
        "wrote site/index.html",
    ]
    assert [p.name for p in (tmp_path / "site" / "reports").iterdir()] == ["good.html"]


# --- 4. PyTorch: clear errors instead of internal ones -------------------------------------


def _pt(tmp: Path, pkl: bytes, name: str = "bad.pt", **storages: bytes) -> Path:
    return hostile.torch_zip(tmp / name, pkl, storages or {"0": bytes(96)})


@pytest.mark.parametrize("dtype", [">f4", "U1"])
def test_build_on_the_storage_type_is_refused(dtype: str, tmp_path: Path) -> None:
    pkl = hostile.torch_pickle(hostile.lstm_state(Storage("0", 24), 2, 1))
    build_op = b"}X\x05\x00\x00\x00dtypeX" + struct.pack("<I", len(dtype)) + dtype.encode() + b"sb"
    glob = b"ctorch\nFloatStorage\n"
    assert pkl.count(glob) == 1
    path = _pt(tmp_path, pkl.replace(glob, glob + build_op))
    with pytest.raises(
        ModelLoadError, match=r"^bad.pt: refused: a pickle BUILD rewriting torch.FloatStorage$"
    ):
        torch_rnn.read(path)


@pytest.mark.parametrize(
    ("kind", "numel", "dtype"),
    [(hostile.ComplexFloatStorage, 12, "complex64"), (hostile.BoolStorage, 96, "bool")],
)
def test_weights_that_are_not_floating_point_are_refused(
    kind: type, numel: int, dtype: str, tmp_path: Path
) -> None:
    state = hostile.lstm_state(Storage("0", numel, kind), 1, 2)
    path = _pt(tmp_path, hostile.torch_pickle(state))
    with pytest.raises(
        ModelLoadError,
        match=rf"^bad.pt: weight_ih_l0 holds {dtype} values; an RNN's weights are "
        "floating point$",
    ):
        torch_rnn.read(path)


def test_build_on_a_state_dict_shadowing_items_is_harmless(tmp_path: Path) -> None:
    state = hostile.lstm_state(Storage("0", 24), 2, 1)
    state.__dict__["zzzzz"] = "not a method"  # pickled as BUILD {'zzzzz': ...}
    pkl = hostile.torch_pickle(state).replace(b"zzzzz", b"items")  # as pickle would not
    assert b"X\x05\x00\x00\x00items" in pkl and pkl.rstrip(b".").endswith(b"b")
    model = torch_rnn.read(_pt(tmp_path, pkl))
    assert [c.name for c in model.cells] == ["l0"]


def test_byteorder_record_of_10_mb(tmp_path: Path) -> None:
    pkl = hostile.torch_pickle(hostile.lstm_state(Storage("0", 24), 2, 1))
    path = hostile.torch_zip(tmp_path / "order.pt", pkl, {"0": bytes(96)}, b"?" * 10 * MiB)
    with pytest.raises(
        ModelLoadError,
        match=r"^order.pt: the byteorder record of 10 MiB is neither 'little' nor 'big'$",
    ):
        torch_state.load(path)


@pytest.mark.parametrize("where", ["scan", "unpickle"])
def test_integer_of_5000_digits_in_a_pickle(where: str, tmp_path: Path) -> None:
    # INT (text) is parsed by the scan; a LONG1 (binary) storage size of 5,001 digits is
    # read, then quoted in a message, which Python refuses to write.
    if where == "scan":
        pkl = b"\x80\x02I" + b"7" * 5000 + b"\n."
    else:
        pkl = hostile.torch_pickle(hostile.lstm_state(Storage("0", 10**5000), 2, 1))
    path = _pt(tmp_path, pkl)
    with pytest.raises(ModelLoadError) as caught:
        torch_state.load(path)
    text = str(caught.value)
    assert text.startswith("bad.pt: data.pkl ") and "an integer of more than 4,300 digits" in text
    assert "sys.set_int_max_str_digits" not in text


# --- 4. safetensors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (
            b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            r"its header is nested 100,001 levels deep, more than 10 \(a header is 3\)",
        ),
        (
            b'{"w": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 0]}}',
            "its header holds an integer of 5,000 digits",
        ),
    ],
    ids=["nested 100,000 deep", "5,000 digits"],
)
def test_safetensors_header_refused_before_parsing(
    header: bytes, match: str, tmp_path: Path
) -> None:
    path = hostile.safetensors_file(tmp_path / "bad.safetensors", header)
    with pytest.raises(ModelLoadError, match=rf"^bad.safetensors: refused: {match}$"):
        safetensors_state.read_header(path)


def test_safetensors_shape_with_a_dimension_numpy_cannot_hold(tmp_path: Path) -> None:
    header = json.dumps(
        {"weight_ih_l0": {"dtype": "F32", "shape": [0, 2**63], "data_offsets": [0, 0]}}
    ).encode()
    path = hostile.safetensors_file(tmp_path / "bad.safetensors", header)
    with pytest.raises(
        ModelLoadError,
        match=r"^bad.safetensors: tensor 'weight_ih_l0': shape \(0, 9223372036854775808\) is "
        "too large for any array$",
    ):
        torch_rnn.read(path)


# --- 4. ONNX --------------------------------------------------------------------------------


def _onnx(tmp: Path, edit: Callable[[Any], None], name: str = "bad.onnx") -> Path:
    import onnx

    model = onnx.load(str(FIX / "onnx_gru_lbr1_bidirectional.onnx"))
    edit(model)
    path = tmp / name
    onnx.save(model, str(path))
    return path


def _set_attribute(name: str, value: Any) -> Callable[[Any], None]:
    def edit(model: Any) -> None:
        from onnx import helper

        node = next(n for n in model.graph.node if n.op_type == "GRU")
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute(name, value)])

    return edit


@pytest.mark.parametrize(
    ("name", "value", "given", "defined"),
    [
        ("activations", 3, "INT", "STRINGS"),
        ("activations", "tensor", "TENSOR", "STRINGS"),
        ("linear_before_reset", "one", "STRING", "INT"),
    ],
)
def test_onnx_attribute_of_another_type(
    name: str, value: Any, given: str, defined: str, tmp_path: Path
) -> None:
    if value == "tensor":
        from onnx import numpy_helper

        value = numpy_helper.from_array(np.zeros(2, np.float32))
    path = _onnx(tmp_path, _set_attribute(name, value))
    with pytest.raises(
        ModelLoadError,
        match=rf"^bad.onnx: GRU node '.*': attribute {name} is given as {given}; the "
        rf"operator defines {defined}$",
    ):
        onnx_rnn.read(path)


def test_onnx_string_weights_are_refused(tmp_path: Path) -> None:
    def edit(model: Any) -> None:
        from onnx import helper

        node = next(n for n in model.graph.node if n.op_type == "GRU")
        w = next(t for t in model.graph.initializer if t.name == node.input[1])
        w.CopyFrom(helper.make_tensor(w.name, 8, list(w.dims), [b"x"] * int(np.prod(w.dims))))

    path = _onnx(tmp_path, edit)
    with pytest.raises(
        ModelLoadError,
        match=r"^bad.onnx: initializer '.*': holds STRING values; recurrent weights are "
        "floating point$",
    ):
        onnx_rnn.read(path)


def _external(location: str, dims: tuple[int, ...] | None = None) -> Callable[[Any], None]:
    def edit(model: Any) -> None:
        from onnx import TensorProto

        node = next(n for n in model.graph.node if n.op_type == "GRU")
        w = next(t for t in model.graph.initializer if t.name == node.input[1])
        if dims is not None:
            del w.dims[:]
            w.dims.extend(dims)
        w.ClearField("raw_data")
        w.ClearField("float_data")
        w.data_location = TensorProto.EXTERNAL
        entry = w.external_data.add()
        entry.key, entry.value = "location", location

    return edit


def test_onnx_external_data_with_negative_dims(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx.data").write_bytes(bytes(96))
    path = _onnx(tmp_path, _external("bad.onnx.data", (-1, -24)))
    with pytest.raises(
        ModelLoadError,
        match=r"^bad.onnx: initializer '.*': dimensions \(-1, -24\) are not a tensor's shape$",
    ):
        onnx_rnn.read(path)


def test_onnx_external_location_with_a_nul_byte(tmp_path: Path) -> None:
    path = _onnx(tmp_path, _external("bad.onnx.data\0x"))
    with pytest.raises(
        ModelLoadError,
        match=r"^bad.onnx: initializer 'W': external data location .* holds a NUL byte",
    ):
        onnx_rnn.read(path)


def test_hostile_pickle_never_writes_beside_it(tmp_path: Path) -> None:
    """A check on the builders: what they write is a torch.save zip this reader accepts."""
    pkl = hostile.torch_pickle(hostile.lstm_state(Storage("0", 24), 2, 1))
    path = _pt(tmp_path, pkl, "ok.pt")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["ok/byteorder", "ok/data.pkl", "ok/data/0"]
    assert [c.name for c in torch_rnn.read(path).cells] == ["l0"]


def test_onnx_external_weights_count_as_part_of_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # The 424-byte gru.onnx reads 864 bytes from gru.onnx.data: within 1× of both together.
    from lstm_report.fileio import limits

    monkeypatch.setattr(limits, "MATERIALISE_FACTOR", 1)
    monkeypatch.setattr(limits, "MATERIALISE_FLOOR", 0)
    model = onnx_rnn.read(FIX / "onnx_external" / "gru.onnx")
    assert [c.direction for c in model.cells] == ["forward", "backward"]


def test_onnx_wire_walk_counts_nodes_as_onnx_parses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx

    from lstm_report.readers.onnx import wire as onnx_wire

    path = hostile.onnx_shared_weights(tmp_path / "five.onnx", 5, 2, 2)
    data = path.read_bytes()
    assert len(onnx.load_model_from_string(data).graph.node) == 5
    monkeypatch.setattr(onnx_wire, "MAX_ONNX_NODES", 5)
    assert onnx_wire.parse_cost_problem(data) is None
    monkeypatch.setattr(onnx_wire, "MAX_ONNX_NODES", 4)
    assert onnx_wire.parse_cost_problem(data) == "its main graph has more than 4 nodes"
