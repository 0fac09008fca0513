"""PyTorch files that hold more than an nn.LSTM state dict: nn.LSTMCell/GRUCell state dicts,
stable-baselines3 saved models, Lightning checkpoints and TorchScript archives, read with the
inert unpickler (lstm_report/readers/safety/inert_pickle.py).

The fixtures in tests/fixtures/frameworks/checkpoints/ were written by
make_checkpoint_fixtures.py with torch 2.13, sb3-contrib 2.9.2 and lightning 2.6.6, with
the frameworks' own outputs on a fixed input; these tests need none of them. Every replay is
built only from the CellWeights the reader returned.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cells.kinds import replay, replay_layers
from lstm_report.errors import ModelLoadError
from lstm_report.readers.safety import inert_pickle
from lstm_report.readers.torch import allow_list
from lstm_report.readers.torch import rnn as torch_rnn
from tests.helpers import FIXTURES

FIX = FIXTURES / "frameworks" / "checkpoints"
ATOL = 1e-5


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIX / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def _cell(model: Any, name: str) -> Any:
    (cell,) = [c for c in model.cells if c.name == name]
    return cell


class _OpenSpy:
    """Records every member any ZipFile opens (read() goes through open())."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        real = zipfile.ZipFile.open

        def spy(zf: zipfile.ZipFile, name: Any, *args: Any, **kwargs: Any) -> Any:
            self.names.append(name if isinstance(name, str) else name.filename)
            return real(zf, name, *args, **kwargs)

        monkeypatch.setattr(zipfile.ZipFile, "open", spy)


# --- 1. nn.LSTMCell / nn.GRUCell --------------------------------------------------------------


@pytest.mark.parametrize("file", ["cells.pt", "cells.safetensors"])
@pytest.mark.parametrize("name", ["decoder.lstm_cell", "decoder.gru_cell"])
def test_cell_replay_matches_torch(file: str, name: str, expected: dict[str, np.ndarray]) -> None:
    model = torch_rnn.read(FIX / file)
    cell = _cell(model, name)
    assert cell.framework == f"PyTorch nn.{cell.kind}Cell"
    assert cell.notes[0].startswith(f"an nn.{cell.kind}Cell computes one step per call")
    assert cell.kind == ("LSTM" if "lstm" in name else "GRU")
    h = replay(cell, expected["x"]).h
    np.testing.assert_allclose(h, expected[f"cells/{name}/out"], atol=ATOL)


def test_cell_gates_are_the_stored_blocks() -> None:
    """Per gate, against the raw arrays read by the safetensors package itself."""
    from safetensors.numpy import load_file

    raw = load_file(str(FIX / "cells.safetensors"))
    model = torch_rnn.read(FIX / "cells.safetensors")
    lstm = _cell(model, "decoder.lstm_cell")
    H = 5
    for k, gate in enumerate(lstm.gates):  # i, f, c(g), o: torch's own row order
        rows = slice(k * H, (k + 1) * H)
        np.testing.assert_array_equal(gate.W, raw["decoder.lstm_cell.weight_ih"][rows].T)
        np.testing.assert_array_equal(gate.U, raw["decoder.lstm_cell.weight_hh"][rows].T)
        np.testing.assert_array_equal(gate.b, raw["decoder.lstm_cell.bias_ih"][rows])
        np.testing.assert_array_equal(gate.b_rec, raw["decoder.lstm_cell.bias_hh"][rows])
    gru = _cell(model, "decoder.gru_cell")
    z, r, h = gru.gates  # torch rows r, z, n
    np.testing.assert_array_equal(z.U, raw["decoder.gru_cell.weight_hh"][4:8].T)
    np.testing.assert_array_equal(r.U, raw["decoder.gru_cell.weight_hh"][0:4].T)
    np.testing.assert_array_equal(h.b_rec, raw["decoder.gru_cell.bias_hh"][8:12])
    assert gru.reset_after is True


def test_rnn_cell_is_listed_not_analysed() -> None:
    model = torch_rnn.read(FIX / "cells.pt")
    assert model.other == (
        "rnn_cell: nn.RNNCell (2 units, one tanh or relu step): not a gated cell",
    )
    assert [c.name for c in model.cells] == ["decoder.lstm_cell", "decoder.gru_cell"]


def test_rnn_cell_reaches_not_analysed_in_the_json(tmp_path: Path) -> None:
    from lstm_report.cli import main

    js = tmp_path / "c.json"
    args = ["build", "-q", str(FIX / "cells.pt"), "-o", str(tmp_path / "c.html"), "--json", str(js)]
    assert main(args) == 0
    model = json.loads(js.read_text())["models"][0]
    assert [la["name"] for la in model["layers"]] == ["decoder.lstm_cell", "decoder.gru_cell"]
    (other,) = model["not_analysed"]
    assert (other["name"], other["kind"]) == ("rnn_cell", "RNN")
    assert "nn.RNNCell" in other["note"]


def test_unprefixed_cell_state_dict(expected: dict[str, np.ndarray]) -> None:
    model = torch_rnn.read(FIX / "cell_only.pt")
    (cell,) = model.cells
    assert cell.name == "cell"
    np.testing.assert_allclose(replay(cell, expected["x"]).h, expected["cell_only/out"], atol=ATOL)


def test_cell_with_a_missing_key_names_it() -> None:
    rng = np.random.default_rng(0)
    state = {"dec.weight_ih": rng.normal(size=(8, 3)), "dec.bias_ih": rng.normal(size=(8,))}
    with pytest.raises(ModelLoadError, match=r"^f.pt: dec: weight_hh is missing$"):
        torch_rnn.cells_from_state_dict(state, where="f.pt")


# --- 2. stable-baselines3 / sb3-contrib ---------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "layers"),
    [
        ("recurrent_ppo.zip", ["lstm_actor", "lstm_critic"]),
        ("recurrent_ppo_shared.zip", ["lstm_actor"]),
    ],
)
def test_recurrent_ppo_replay_matches_sb3(
    file: str, layers: list[str], expected: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _OpenSpy(monkeypatch)
    model = torch_rnn.read(FIX / file)
    assert model.framework == "stable-baselines3 saved model (policy.pth)"
    assert [c.name for c in model.cells] == [f"{n}.l0" for n in layers]
    stem = file.removesuffix(".zip")
    x = expected[f"{stem}/x"].transpose(1, 0, 2)  # sb3's LSTMs read (steps, batch, features)
    for name in layers:
        out, _ = replay_layers([_cell(model, f"{name}.l0")], x)
        np.testing.assert_allclose(
            out.transpose(1, 0, 2), expected[f"{stem}/{name}/out"], atol=ATOL
        )
    # policy.pth is read in place (a window onto the outer file), never opened as a member;
    # `data` and its cloudpickle blobs, the optimizer's state and pytorch_variables.pth are
    # never opened at all.
    assert not {"data", "policy.pth", "policy.optimizer.pth", "pytorch_variables.pth"} & set(
        spy.names
    )


def test_recurrent_ppo_end_to_end(tmp_path: Path) -> None:
    from lstm_report.cli import main

    out = tmp_path / "r.html"
    assert (
        main(
            [
                "build",
                "-q",
                str(FIX / "recurrent_ppo.zip"),
                "-o",
                str(out),
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "r.json").read_text())
    assert [la["name"] for la in data["models"][0]["layers"]] == ["lstm_actor.l0", "lstm_critic.l0"]


def _rezip(src: Path, dst: Path, compress: dict[str, int]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info), compress.get(info.filename, 0))
    return dst


def test_deflated_policy_is_refused(tmp_path: Path) -> None:
    path = _rezip(
        FIX / "recurrent_ppo.zip", tmp_path / "ppo.zip", {"policy.pth": zipfile.ZIP_DEFLATED}
    )
    with pytest.raises(
        ModelLoadError,
        match=r"^ppo.zip: policy.pth is compressed \(stable-baselines3 stores it as is\)$",
    ):
        torch_rnn.read(path)


def test_policy_is_bounded_by_its_member(tmp_path: Path) -> None:
    """policy.pth's storages must lie inside policy.pth, not merely inside the outer file."""
    from lstm_report.readers.torch import sb3

    with sb3.member_zip(FIX / "recurrent_ppo.zip", "policy.pth") as zf:
        assert zf.fp is not None
        size = zf.fp.seek(0, io.SEEK_END)
        assert size == zf.member_size
        names = zf.namelist()
    with zipfile.ZipFile(FIX / "recurrent_ppo.zip") as outer:
        assert size == outer.getinfo("policy.pth").file_size
        inner = zipfile.ZipFile(io.BytesIO(outer.read("policy.pth")))
        assert names == inner.namelist()


# --- 8. Lightning checkpoints and TorchScript, read inertly ------------------------------------


def test_lightning_checkpoint(expected: dict[str, np.ndarray]) -> None:
    model = torch_rnn.read(FIX / "lightning.ckpt")
    assert [c.name for c in model.cells] == ["rnn.l0"]
    out, _ = replay_layers(model.cells, expected["x"])
    np.testing.assert_allclose(out, expected["lightning/rnn/out"], atol=ATOL)
    # The scalars of hyper_parameters (an AttributeDict, rebuilt as a placeholder), in order;
    # the MSELoss and the MetricCollection beside them are left out.
    assert model.hyper_parameters == (
        ("hidden", 5),
        ("lr", 0.01),
        ("name", "demo <b>"),
        ("bidirectional", False),
    )
    (note,) = model.notes
    assert "torch.nn.modules.loss.MSELoss" in note
    assert "torchmetrics.collections.MetricCollection" in note
    assert "torchmetrics" not in sys.modules and "lightning" not in sys.modules


def test_lightning_hyper_parameters_reach_json_and_page(tmp_path: Path) -> None:
    from lstm_report.cli import main

    html, js = tmp_path / "l.html", tmp_path / "l.json"
    assert (
        main(["build", "-q", str(FIX / "lightning.ckpt"), "-o", str(html), "--json", str(js)]) == 0
    )
    m = json.loads(js.read_text())["models"][0]
    assert m["hyper_parameters"] == {
        "hidden": 5,
        "lr": 0.01,
        "name": "demo <b>",
        "bidirectional": False,
    }
    page = html.read_text()
    assert "<code>demo &lt;b&gt;</code>" in page and "demo <b>" not in page
    assert "Hyper-parameters stored in the checkpoint (4)" in page


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_torchscript_replay_matches_torch(
    name: str, expected: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _OpenSpy(monkeypatch)
    model = torch_rnn.read(FIX / "scripted.pt")
    assert model.framework == "TorchScript archive"
    cells = [c for c in model.cells if c.name == f"{name}.l0"]
    out, _ = replay_layers(cells, expected["x"])
    np.testing.assert_allclose(out, expected[f"scripted/{name}/out"], atol=ATOL)
    assert not [n for n in spy.names if "/code/" in n or n.endswith("constants.pkl")]
    assert "the TorchScript code/ folder is not read" in model.notes[0]


# --- the inert unpickler itself ------------------------------------------------------------------


def _ran(tmp_path: Path) -> bool:
    return (tmp_path / "lstm_report_system_ran").exists()


def _every_global_is_os_system() -> bytes:
    """A hand-written protocol-4 pickle that reaches os.system by every opcode that can call:
    REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ, BUILD, SETITEMS, APPENDS on its result."""
    mod = os.system.__module__  # posix (or nt)
    cmd = b"touch lstm_report_system_ran"
    g = b"c" + mod.encode() + b"\nsystem\n"  # GLOBAL
    s = b"\x8c" + bytes([len(cmd)]) + cmd  # SHORT_BINUNICODE
    ops = [
        g + s + b"\x85R",  # REDUCE: system(cmd)
        g + s + b"\x85\x81",  # NEWOBJ
        g + s + b"\x85}\x92",  # NEWOBJ_EX
        b"(" + s + b"i" + mod.encode() + b"\nsystem\n",  # INST
        b"(" + g + s + b"o",  # OBJ
        g + s + b"\x85R" + s + b"b",  # BUILD on the result
        g + s + b"\x85R" + b"(" + s + s + b"u",  # SETITEMS on the result
        g + s + b"\x85R" + b"(" + s + b"e",  # APPENDS on the result
        b"\x8c"
        + bytes([len(mod)])
        + mod.encode()
        + b"\x8c\x06system\x93"
        + s
        + b"\x85R",  # STACK_GLOBAL
    ]
    return b"\x80\x04(" + b"".join(ops) + b"l."  # a list of them


def test_a_pickle_of_os_system_yields_only_placeholders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    data = _every_global_is_os_system()
    name = f"{os.system.__module__}.system"
    assert {f"{m}.{n}" for m, n in allow_list.scan_globals(data)} == {name}

    def refuse(pid: Any) -> Any:
        raise AssertionError("no persistent id here")

    obj, globals_ = inert_pickle.load(data, allow_list.allowed, refuse)
    assert globals_ == (name,)
    assert isinstance(obj, list) and len(obj) == 9
    assert all(isinstance(p, inert_pickle.Placeholder) and p.name == name for p in obj)
    assert obj[0].args == ("touch lstm_report_system_ran",)
    assert obj[5].state == "touch lstm_report_system_ran"
    assert obj[6].items == [("touch lstm_report_system_ran", "touch lstm_report_system_ran")]
    assert not _ran(tmp_path)


def test_the_os_system_pickle_really_runs_when_unpickled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the test above: its first call, with plain pickle, runs."""
    monkeypatch.chdir(tmp_path)
    first = _every_global_is_os_system()[3:].split(b"\x85R", 1)[0] + b"\x85R."
    pickle.loads(b"\x80\x04" + first)
    assert _ran(tmp_path)


def test_inert_mode_never_looks_a_name_up() -> None:
    """A module that does not exist: named, not imported, not an error."""
    data = b"\x80\x02cno_such_module_lstm_report\nf\n)R."
    obj, names = inert_pickle.load(data, allow_list.allowed, lambda pid: None)
    assert isinstance(obj, inert_pickle.Placeholder)
    assert names == ("no_such_module_lstm_report.f",)
    assert "no_such_module_lstm_report" not in sys.modules


def test_the_file_with_os_system_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", _every_global_is_os_system())
    with pytest.raises(
        ModelLoadError,
        match=rf"^evil.pt: refused: the pickle calls {os.system.__module__}.system$",
    ):
        torch_rnn.read(path)
    assert not _ran(tmp_path)


@pytest.mark.parametrize(
    ("opcode", "match"),
    [
        (b"\x82\x01", "a copy-registry extension code"),  # EXT1
        (b"\x80\x02K\x01)R", "a call of a int"),  # calling a number
    ],
)
def test_what_the_inert_reader_refuses(opcode: bytes, match: str) -> None:
    data = (opcode if opcode.startswith(b"\x80") else b"\x80\x02" + opcode) + b"."
    with pytest.raises(inert_pickle.Refused, match=match):
        inert_pickle.load(data, allow_list.allowed, lambda pid: None)


STATE = FIXTURES / "frameworks" / "torch_state_dict.pt"


def _wrapped(tmp_path: Path, name: str, inside_object: bool) -> Path:
    """torch_state_dict.pt's state dict, in a plain dict beside an unknown object (as a
    Lightning checkpoint's loss), or as the state of an unknown object (a whole model)."""
    with zipfile.ZipFile(STATE) as zf:
        inner = zf.read("torch_state_dict/data.pkl")
        storages = {n.split("/")[-1]: zf.read(n) for n in zf.namelist() if "/data/" in n}
    assert inner.startswith(b"\x80\x02") and inner.endswith(b".")
    body = inner[2:-1]  # pushes the OrderedDict; its memo indices are its own
    obj = b"cevil_lib\nModel\n)\x81"  # GLOBAL, EMPTY_TUPLE, NEWOBJ: no memo used
    if inside_object:
        data = b"\x80\x02}X\x05\x00\x00\x00model" + obj + body + b"bs."
    else:
        data = b"\x80\x02}(X\x05\x00\x00\x00model" + body + b"X\x04\x00\x00\x00loss" + obj + b"u."
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zout:
        zout.writestr(f"{path.stem}/data.pkl", data)
        for key, raw in storages.items():
            zout.writestr(f"{path.stem}/data/{key}", raw)
    return path


def test_a_state_dict_beside_unknown_objects_is_read(tmp_path: Path) -> None:
    got = torch_rnn.read(_wrapped(tmp_path, "beside.pt", inside_object=False))
    want = torch_rnn.read(STATE)
    assert [c.label for c in got.cells] == [f"{c.label}" for c in want.cells]
    for a, b in zip(got.cells, want.cells):
        for ga, gb in zip(a.gates, b.gates):
            np.testing.assert_array_equal(ga.U, gb.U)
    assert "evil_lib.Model" in got.notes[0]


def test_tensors_inside_an_unknown_object_are_not_taken(tmp_path: Path) -> None:
    """Only state-dict-shaped containers give tensors: an object's state is not one."""
    with pytest.raises(
        ModelLoadError, match=r"^inside.pt: refused: the pickle calls evil_lib.Model$"
    ):
        torch_rnn.read(_wrapped(tmp_path, "inside.pt", inside_object=True))


def test_scalar_hyper_parameters_are_bounded() -> None:
    hp: dict[str, Any] = {f"k{i}": i for i in range(150)}
    hp.update(
        {
            "long": "x" * 201,
            "big": 2**70,
            "obj": inert_pickle.Placeholder("torch.nn.MSELoss", (), {}),
            "list": [1, 2],
            "nan": float("nan"),
        }
    )
    got = inert_pickle.scalar_hyper_parameters({"hyper_parameters": hp})
    assert len(got) == inert_pickle.MAX_HYPER_PARAMETERS
    assert got[0] == ("k0", 0)
    nested = {
        "hyper_parameters": {
            "a": {"b": {"c": 1.5, "s": "ok"}},
            "long": "x" * 201,
            "big": 2**70,
            "inf": float("inf"),
        }
    }
    assert inert_pickle.scalar_hyper_parameters(nested) == (("a.b.c", 1.5), ("a.b.s", "ok"))
    assert inert_pickle.scalar_hyper_parameters({"epoch": 3}) == ()


def test_readers_never_import_the_frameworks() -> None:
    """Every fixture here read with torch, stable-baselines3, Lightning and torchmetrics
    made unimportable (their names appear in the pickles)."""
    import subprocess

    code = f"""
import sys
for m in ("torch", "stable_baselines3", "sb3_contrib", "lightning", "torchmetrics"):
    sys.modules[m] = None
from pathlib import Path
from lstm_report.readers.torch import rnn as torch_rnn
fix = Path({str(FIX)!r})
for f in ["cells.pt", "cells.safetensors", "cell_only.pt", "recurrent_ppo.zip",
          "recurrent_ppo_shared.zip", "lightning.ckpt", "scripted.pt"]:
    assert torch_rnn.read(fix / f).cells, f
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(FIX.parents[3])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def _pickled_zip(tmp_path: Path, name: str, data: bytes, storages: dict[str, bytes]) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zout:
        zout.writestr(f"{path.stem}/data.pkl", data)
        for key, raw in storages.items():
            zout.writestr(f"{path.stem}/data/{key}", raw)
    return path


_REBUILD = b"ctorch._utils\n_rebuild_tensor_v2\n("
_EVIL = b"cevil_lib\nThing\n)R"  # GLOBAL, EMPTY_TUPLE, REDUCE: a placeholder
_STORAGE = (
    b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x18tQ"
)
"""BINPERSID ('storage', torch.FloatStorage, '0', 'cpu', 24): data/0, 24 floats."""


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (_EVIL + b"K\x00K\x08K\x03\x86K\x03K\x01\x86", "a tensor whose storage is not a stored"),
        (_STORAGE + b"K\x00" + _EVIL + b"K\x01\x85", "a tensor with a malformed size or stride"),
        (_STORAGE + b"K\x00K\x08K\x03\x86K\x03K\x01\x86", None),  # the control: read
    ],
)
def test_a_placeholder_never_reaches_a_tensor(
    tmp_path: Path, args: bytes, match: str | None
) -> None:
    """A placeholder given to a tensor-rebuild function as its storage or its size is
    refused there: the only data numpy ever sees comes from stored storages."""
    odict = b"\x89ccollections\nOrderedDict\n)RtR"
    data = b"\x80\x02}(X\x0c\x00\x00\x00weight_ih_l0" + _REBUILD + args + odict
    data += b"X\x0c\x00\x00\x00weight_hh_l0" + _REBUILD + _STORAGE
    data += b"K\x00K\x08K\x02\x86K\x02K\x01\x86" + odict  # (8, 2): an LSTM of 2 units
    data += b"X\x04\x00\x00\x00loss" + _EVIL + b"u."  # an unknown object beside: read inertly
    stored = np.arange(24, dtype="<f4")
    path = _pickled_zip(tmp_path, "p.pt", data, {"0": stored.tobytes()})
    if match is not None:
        with pytest.raises(ModelLoadError, match=rf"^p.pt: refused: {match}"):
            torch_rnn.read(path)
        return
    (cell,) = torch_rnn.read(path).cells  # the control: stored storages are read
    np.testing.assert_array_equal(cell.gate("i").W, stored[:6].reshape(2, 3).T)
    np.testing.assert_array_equal(cell.gate("o").U, stored[12:16].reshape(2, 2).T)


def test_a_placeholder_in_a_state_dict_is_not_a_tensor(tmp_path: Path) -> None:
    """A state dict whose every value is a placeholder holds no tensor: the file is refused
    for the global it calls, nothing is read."""
    data = b"\x80\x02}(X\x0c\x00\x00\x00weight_ih_l0" + _EVIL + b"X\x0c\x00\x00\x00weight_hh_l0"
    data += _EVIL + b"u."
    with pytest.raises(ModelLoadError, match=r"^q.pt: refused: the pickle calls evil_lib.Thing$"):
        torch_rnn.read(_pickled_zip(tmp_path, "q.pt", data, {}))


def test_only_bounded_scalars_and_names_reach_the_page(tmp_path: Path) -> None:
    """torch_state_dict.pt's state dict beside hyper_parameters holding a string past
    MAX_TEXT, a loss object (a global named with markup), a list and two scalars: the page
    and the JSON show the two scalars; the object only by its name, escaped, in a note."""
    from lstm_report.cli import main

    with zipfile.ZipFile(STATE) as zf:
        body = zf.read("torch_state_dict/data.pkl")[2:-1]
        storages = {n.split("/")[-1]: zf.read(n) for n in zf.namelist() if "/data/" in n}
    long = b"Z" * (inert_pickle.MAX_TEXT + 1)
    hp = (
        b"}(X\x04\x00\x00\x00longX" + len(long).to_bytes(4, "little") + long
        + b"X\x04\x00\x00\x00lossc<i>evil\nLoss\n)R"
        + b"X\x05\x00\x00\x00steps]K\x01aX\x02\x00\x00\x00lrG?\x84z\xe1G\xae\x14{"
        + b"X\x04\x00\x00\x00nameX\x04\x00\x00\x00tiny"
        + b"u"
    )  # fmt: skip
    data = b"\x80\x02}(X\x0a\x00\x00\x00state_dict" + body
    data += b"X\x10\x00\x00\x00hyper_parameters" + hp + b"u."
    path = _pickled_zip(tmp_path, "hp.ckpt", data, storages)
    html, js = tmp_path / "hp.html", tmp_path / "hp.json"
    assert main(["build", "-q", str(path), "-o", str(html), "--json", str(js)]) == 0
    model = json.loads(js.read_text())["models"][0]
    assert model["hyper_parameters"] == {"lr": 0.01, "name": "tiny"}
    page = html.read_text()
    assert "Hyper-parameters stored in the checkpoint (2)" in page
    assert "Z" * 50 not in page and "Z" * 50 not in js.read_text()
    assert "&lt;i&gt;evil.Loss" in page and "<i>evil" not in page
    assert [n for n in model["notes"] if "<i>evil.Loss" in n]
