"""Issue 9: hostile model files. Each gives one line naming the file (and the dataset), exit
status 1, in bounded time and memory, and reads nothing else. Hostile configs are tested in
tests/config/test_config.py, hostile probe files in tests/readers/test_probe.py."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from tests import hostile
from tests.hostile import assert_refused, run_cli

KERAS_LSTM = "layers/lstm/cell/vars"
H5_LSTM = "model_weights/first/legacy/first/lstm_cell"


def model_config(tmp: Path, model: Path) -> Path:
    cfg = tmp / "c.yaml"
    cfg.write_text(f"models: [{model}]\n")
    return cfg


@pytest.fixture
def secrets(tmp_path: Path) -> tuple[Path, Path]:
    d = tmp_path / "elsewhere"
    d.mkdir()
    return hostile.write_secrets(d)


# --- what the file is, and what its stored architecture says ------------------------------


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/urandom"])
def test_model_that_is_not_a_regular_file(kind: str, tmp_path: Path) -> None:
    # In a subprocess: reading a FIFO waits forever.
    path = tmp_path / "fifo.keras" if kind == "fifo" else Path(kind)
    if kind == "fifo":
        os.mkfifo(path)
    r = run_cli(model_config(tmp_path, path), tmp_path, timeout=30)
    line = assert_refused(r, tmp_path, str(path))
    assert "not a regular file" in line


@pytest.mark.parametrize("case", ["deep json", "400 nested models", "150 nested models"])
def test_deeply_nested_keras_config(case: str, simple_model: Any, tmp_path: Path) -> None:
    if case == "deep json":
        text = '{"class_name": "Sequential", "config": {"layers": ' + "[" * 100_000
        text += "]" * 100_000 + "}}"
    else:
        text = hostile.nested_models_json(int(case.split()[0]))
    bad = hostile.with_config(simple_model.path, tmp_path / "deep.keras", text.encode())
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    line = assert_refused(r, tmp_path, bad.name)
    assert "nested" in line and "100" in line


def test_array_valued_version_attribute(legacy_h5_model: Any, tmp_path: Path) -> None:
    def edit(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            f.attrs["keras_version"] = np.array([b"2.4.0", b"3.0.0"])

    bad = hostile.edit_h5(legacy_h5_model.path, tmp_path / "version.h5", edit)
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    line = assert_refused(r, tmp_path, bad.name, "keras_version")
    assert "not a string" in line


def test_array_valued_version_in_metadata(simple_model: Any, tmp_path: Path) -> None:
    bad = tmp_path / "meta.keras"
    with zipfile.ZipFile(simple_model.path) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "metadata.json":
                data = json.dumps({"keras_version": [3, 1]}).encode()
            zout.writestr(item.filename, data)
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    assert_refused(r, tmp_path, bad.name, "keras_version")


def _string_config(cfg: dict) -> None:
    layers = cfg["config"]["layers"]
    lstm = next(x for x in layers if x["class_name"] == "LSTM")
    lstm["config"] = "not a mapping"


@pytest.mark.parametrize("container", ["keras", "h5"])
def test_layer_config_that_is_a_string(
    container: str, simple_model: Any, legacy_h5_model: Any, tmp_path: Path
) -> None:
    if container == "keras":
        with zipfile.ZipFile(simple_model.path) as zf:
            cfg = json.loads(zf.read("config.json"))
        _string_config(cfg)
        bad = hostile.with_config(
            simple_model.path, tmp_path / "strcfg.keras", json.dumps(cfg).encode()
        )
    else:
        bad = hostile.edit_h5(
            legacy_h5_model.path, tmp_path / "strcfg.h5", hostile.config_edit(_string_config)
        )
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    line = assert_refused(r, tmp_path, bad.name)
    assert "config" in line and "mapping" in line


@pytest.mark.parametrize(
    "field",
    ["model config", "layers", "layer entry", "bidirectional layer", "cell", "inbound node"],
)
def test_other_misshapen_configs(field: str, simple_model: Any, tmp_path: Path) -> None:
    with zipfile.ZipFile(simple_model.path) as zf:
        cfg = json.loads(zf.read("config.json"))
    lstm = next(x for x in cfg["config"]["layers"] if x["class_name"] == "LSTM")
    if field == "model config":
        cfg["config"] = 7
    elif field == "layers":
        cfg["config"]["layers"] = "lstm"
    elif field == "layer entry":
        cfg["config"]["layers"].insert(1, ["lstm"])
        cfg["config"]["layers"].insert(1, {"class_name": 5, "config": {}})
    elif field == "bidirectional layer":
        lstm["class_name"] = "Bidirectional"
        lstm["config"] = {"name": "lstm", "layer": "LSTM"}
    elif field == "cell":
        lstm["class_name"] = "RNN"
        lstm["config"]["cell"] = ["LSTMCell"]
    else:  # a Functional model whose LSTM's input tensor has a string for a config
        cfg["class_name"] = "Functional"
        lstm["inbound_nodes"] = [{"args": [{"class_name": "__keras_tensor__", "config": "x"}]}]
    bad = hostile.with_config(simple_model.path, tmp_path / "odd.keras", json.dumps(cfg).encode())
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    if field == "inbound node":  # nothing the reader needs: a report, not an error
        assert r.returncode == 0, r.stderr
    else:
        assert_refused(r, tmp_path, bad.name)


def test_long_chain_of_layers_is_walked_without_recursion() -> None:
    from lstm_report.readers.keras.topology import find_recurrent

    def layer(cls: str, name: str, source: str | None) -> dict[str, Any]:
        nodes = [] if source is None else [[[source, 0, 0, {}]]]
        return {"class_name": cls, "name": name, "config": {"name": name}, "inbound_nodes": nodes}

    chain = [layer("InputLayer", "in", None)]
    chain += [layer("Dropout", f"d{i}", f"d{i - 1}" if i else "in") for i in range(5000)]
    ring = [layer("Dropout", "a", "b"), layer("Dropout", "b", "a")]
    lstms = [layer("LSTM", "long", "d4999"), layer("LSTM", "looped", "a")]
    layers = lstms + ring + chain[::-1]  # hostile: not in topological order
    found = find_recurrent({"class_name": "Functional", "config": {"layers": layers}})
    assert [(f.path, f.reads_input) for f in found] == [("long", True), ("looped", False)]


# --- a model file may not make the report read other files ---------------------------------


@pytest.mark.parametrize("kind", ["external storage", "virtual dataset", "external link"])
@pytest.mark.parametrize("container", ["keras", "h5"])
def test_data_outside_the_file_is_refused(
    kind: str,
    container: str,
    secrets: tuple[Path, Path],
    simple_model: Any,
    legacy_h5_model: Any,
    tmp_path: Path,
) -> None:
    raw, h5 = secrets
    dataset = f"{KERAS_LSTM}/0" if container == "keras" else f"{H5_LSTM}/kernel"
    edit = {
        "external storage": lambda: hostile.external_storage(dataset, raw),
        "virtual dataset": lambda: hostile.virtual(dataset, h5),
        "external link": lambda: hostile.external_link(dataset, h5),
    }[kind]()
    if container == "keras":
        bad = hostile.rezip(simple_model.path, tmp_path / "outside.keras", edit)
    else:
        bad = hostile.edit_h5(legacy_h5_model.path, tmp_path / "outside.h5", edit)
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    line = assert_refused(r, tmp_path, bad.name, dataset)
    assert {"external storage": "external", "virtual dataset": "virtual", "external link": "link"}[
        kind
    ] in line


@pytest.mark.parametrize("kind", ["external storage", "virtual dataset", "external link"])
def test_other_files_are_never_opened(kind: str, legacy_h5_model: Any, tmp_path: Path) -> None:
    # The "other file" is a FIFO: opening it to read would wait forever.
    fifo = tmp_path / "fifo.h5"
    os.mkfifo(fifo)
    dataset = f"{H5_LSTM}/kernel"
    edit = {
        "external storage": hostile.external_storage,
        "virtual dataset": hostile.virtual,
        "external link": hostile.external_link,
    }[kind](dataset, fifo)
    bad = hostile.edit_h5(legacy_h5_model.path, tmp_path / "fifo_target.h5", edit)
    r = run_cli(model_config(tmp_path, bad), tmp_path, timeout=30)
    assert_refused(r, tmp_path, bad.name, dataset)


@pytest.mark.parametrize("reader", ["direct", "keras"])
def test_library_refuses_before_any_reader(
    reader: str, secrets: tuple[Path, Path], simple_model: Any, tmp_path: Path
) -> None:
    # Keras itself would follow the link: the refusal comes first, whatever the reader.
    from lstm_report.config.schema import ModelSpec
    from lstm_report.errors import ModelLoadError
    from lstm_report.readers.dispatch import read_model

    bad = hostile.rezip(
        simple_model.path,
        tmp_path / "link.keras",
        hostile.external_link(f"{KERAS_LSTM}/1", secrets[1]),
    )
    spec = ModelSpec(index=0, path=bad, name=bad.name, reader=reader)
    with pytest.raises(ModelLoadError, match=r"link\.keras.*layers/lstm/cell/vars/1.*external"):
        read_model(spec)


@pytest.mark.parametrize("container", ["keras", "h5"])
def test_soft_link_cycle_is_refused_not_followed(
    container: str, simple_model: Any, legacy_h5_model: Any, tmp_path: Path
) -> None:
    if container == "keras":
        group = KERAS_LSTM
        bad = hostile.rezip(
            simple_model.path, tmp_path / "cycle.keras", hostile.soft_link_cycle(group)
        )
    else:
        group = H5_LSTM
        bad = hostile.edit_h5(
            legacy_h5_model.path, tmp_path / "cycle.h5", hostile.soft_link_cycle(group)
        )
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    line = assert_refused(r, tmp_path, bad.name, f"{group}/ping")
    assert "soft link" in line


def test_soft_link_inside_the_file_is_fine(legacy_h5_model: Any, tmp_path: Path) -> None:
    from lstm_report.config.schema import ModelSpec
    from lstm_report.readers.dispatch import read_model

    def alias(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            f["alias"] = h5py.SoftLink(f"/{H5_LSTM}")

    ok = hostile.edit_h5(legacy_h5_model.path, tmp_path / "alias.h5", alias)
    mw = read_model(ModelSpec(index=0, path=ok, name=ok.name, reader="direct"))
    assert [w.name for w in mw.layers] == ["first", "second"]


def test_too_many_links(
    legacy_h5_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real limit (200,000) takes minutes to build: the same rule, lowered.
    from lstm_report.config.schema import ModelSpec
    from lstm_report.errors import ModelLoadError
    from lstm_report.readers.dispatch import read_model
    from lstm_report.readers.safety import rules as safety

    def many(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            for i in range(100):
                f[f"extra/{i}"] = h5py.SoftLink("/model_weights")

    bad = hostile.edit_h5(legacy_h5_model.path, tmp_path / "links.h5", many)
    monkeypatch.setattr(safety, "MAX_HDF5_LINKS", 50)
    with pytest.raises(ModelLoadError, match=r"links\.h5\): has more than 50 links; refused"):
        read_model(ModelSpec(index=0, path=bad, name=bad.name))


# --- compressed datasets declaring more than they store -------------------------------------


@pytest.mark.parametrize("container", ["keras", "h5"])
def test_gzip_dataset_declaring_gigabytes_is_refused(
    container: str, simple_model: Any, legacy_h5_model: Any, tmp_path: Path
) -> None:
    if container == "keras":
        edit = hostile.gzip_bomb_lstm(KERAS_LSTM, ("0", "1", "2"))
        bad = hostile.rezip(simple_model.path, tmp_path / "bomb.keras", edit)
        dataset = f"{KERAS_LSTM}/0"
    else:
        edit = hostile.gzip_bomb_lstm(H5_LSTM, ("kernel", "recurrent_kernel", "bias"))
        bad = hostile.edit_h5(legacy_h5_model.path, tmp_path / "bomb.h5", edit)
        dataset = f"{H5_LSTM}/kernel"
    assert bad.stat().st_size < 2**20
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    line = assert_refused(r, tmp_path, bad.name, dataset)
    assert "1000" in line


def test_many_small_compressed_lstms_add_up(tmp_path: Path) -> None:
    # Each kernel declares 1 MiB (the per-dataset floor) and stores nothing; 70 add up.
    path = tmp_path / "many.weights.h5"
    with h5py.File(path, "w") as f:
        for i in range(70):
            g = f.create_group(f"layers/lstm_{i}/cell/vars")
            for j, shape in enumerate(((1024, 256), (64, 256), (256,))):
                g.create_dataset(str(j), shape, "<f4", chunks=True, compression="gzip")
    assert path.stat().st_size < 2**20
    r = run_cli(model_config(tmp_path, path), tmp_path)
    line = assert_refused(r, tmp_path, path.name, "layers/lstm_")
    assert "decompression bomb" in line


def test_compressed_weights_within_the_limits_are_read(
    legacy_h5_model: Any, tmp_path: Path
) -> None:
    from lstm_report.config.schema import ModelSpec
    from lstm_report.readers.dispatch import read_model

    def compress(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            for name in ("kernel", "recurrent_kernel", "bias"):
                data = f[f"{H5_LSTM}/{name}"][()]
                del f[f"{H5_LSTM}/{name}"]
                f.create_dataset(f"{H5_LSTM}/{name}", data=data, compression="gzip")

    ok = hostile.edit_h5(legacy_h5_model.path, tmp_path / "gzip.h5", compress)
    mw = read_model(ModelSpec(index=0, path=ok, name=ok.name, reader="direct"))
    want = legacy_h5_model.model.get_layer("first").get_weights()
    np.testing.assert_array_equal(mw.layers[0].kernel, want[0])


# --- .keras zips whose members are decompression bombs ------------------------------------


@pytest.mark.parametrize(
    "member", ["config.json", "metadata.json", "model.weights.h5", "assets/vocabulary.txt"]
)
def test_zip_bomb_member_is_refused(member: str, simple_model: Any, tmp_path: Path) -> None:
    bad = hostile.keras_with_bomb(simple_model.path, tmp_path / "bomb.keras", member)
    assert bad.stat().st_size < 4 * 2**20
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    assert_refused(r, tmp_path, bad.name, member)


@pytest.mark.parametrize("member", ["config.json", "model.weights.h5"])
def test_zip_member_inflating_past_its_declared_size_is_refused(
    member: str, simple_model: Any, tmp_path: Path
) -> None:
    bad = hostile.keras_with_bomb(simple_model.path, tmp_path / "liar.keras", member, lie=True)
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    assert_refused(r, tmp_path, bad.name)


@pytest.mark.parametrize(
    "method, flags, delta, message",
    [
        (99, 0, 0, "compression method 99"),
        (zipfile.ZIP_STORED, 1, 0, "encrypted"),
        (zipfile.ZIP_STORED, 0, 10, "headers give two sizes"),
    ],
    ids=["unknown method", "encrypted", "stored sizes disagree"],
)
def test_zip_member_headers_zipfile_cannot_honour(
    method: int, flags: int, delta: int, message: str, simple_model: Any, tmp_path: Path
) -> None:
    bad = hostile.keras_with_headers(
        simple_model.path, tmp_path / "odd.keras", method, flags, delta
    )
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    line = assert_refused(r, tmp_path, bad.name, "config.json")
    assert message in line


def test_deflated_keras_members_within_the_limits_are_read(
    simple_model: Any, tmp_path: Path
) -> None:
    # Keras stores its members; a zip tool may deflate them: still read, in bounded memory.
    from lstm_report.config.schema import ModelSpec
    from lstm_report.readers.dispatch import read_model

    ok = tmp_path / "deflated.keras"
    with (
        zipfile.ZipFile(simple_model.path) as zin,
        zipfile.ZipFile(ok, "w", zipfile.ZIP_DEFLATED) as zout,
    ):
        for item in zin.infolist():
            zout.writestr(item.filename, zin.read(item))
    mw = read_model(ModelSpec(index=0, path=ok, name=ok.name, reader="direct"))
    np.testing.assert_array_equal(
        mw.layers[0].kernel, simple_model.model.get_layer("lstm").get_weights()[0]
    )


# --- issue 21: ONNX external data only from the model's own data file ----------------------

ONNX_FIX = Path(__file__).parent / "fixtures" / "frameworks" / "onnx_external"


def _onnx_pointing_at(folder: Path, location: str, name: str = "gru.onnx") -> Path:
    """The external-data GRU fixture, its tensors' location rewritten, saved in folder."""
    import onnx

    model = onnx.load(str(ONNX_FIX / "gru.onnx"), load_external_data=False)
    for t in model.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / name))
    return folder / name


def _secret_folder(tmp: Path) -> Path:
    """A model's folder holding files that are not made for the model, each large enough
    to be read as its weights (the 864 bytes the GRU's tensors declare)."""
    folder = tmp / "m"
    (folder / ".git").mkdir(parents=True)
    secret = np.full(1024, hostile.SECRET_VALUE, "<f4").tobytes() + hostile.SECRET_MARK
    for name in ("secret.txt", ".env", ".git/config", "other.onnx"):
        (folder / name).write_bytes(secret)
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to("..")
    return folder


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ("secret.txt", "is not the data file made for the model"),
        (".env", "is not the data file made for the model"),
        (".git/config", "is not the data file made for the model"),
        ("other.onnx", "is not the data file made for the model"),
        ("sub/up/secret.txt", "is not the data file made for the model"),
        ("sub/up/gru.onnx.data", "is not the data file made for the model"),
        ("gru.onnx.data -> secret.txt", "is a symbolic link: refused"),
        ("gru.onnx.data -> sub/up/gru.data", "is a symbolic link: refused"),
        ("gru.onnx.data, another file", "holds 4123 bytes, but the model's tensors declare 864"),
        ("gru.onnx.data, a FIFO", "is not a regular file"),
    ],
)
def test_onnx_external_data_only_from_the_models_own_data_file(
    location: str, problem: str, tmp_path: Path
) -> None:
    pytest.importorskip("onnx")
    from lstm_report.errors import ModelLoadError
    from lstm_report.readers.onnx import rnn as onnx_rnn

    folder = _secret_folder(tmp_path)
    name, _, how = location.partition(" -> ")
    name = name.split(",")[0]
    model = _onnx_pointing_at(folder, name)
    if how:
        (folder / "gru.data").write_bytes((folder / "secret.txt").read_bytes())
        (folder / name).symlink_to(how)
    elif "another file" in location:
        (folder / name).write_bytes((folder / "secret.txt").read_bytes())
    elif "FIFO" in location:
        os.mkfifo(folder / name)
    with pytest.raises(ModelLoadError) as info:
        onnx_rnn.read(model)
    line = str(info.value)
    assert line.startswith("gru.onnx: initializer 'W': external data ")
    assert repr(name) in line and problem in line, line
    if "FIFO" not in location:
        assert "pass --allow-external-data" in line and "'external_data: allow'" in line, line
    assert "\n" not in line
    if "FIFO" in location or location.startswith("sub/up/gru"):
        return
    # The opt-in reads it (so the refusal above is what kept the secret out of the report):
    # every weight is the secret's value.
    cells = onnx_rnn.read(model, allow_external_data=True).cells
    assert {float(g.W.flat[0]) for c in cells for g in c.gates} == {hostile.SECRET_VALUE}


@pytest.mark.parametrize("name", ["gru.onnx.data", "gru.onnx_data", "gru.data"])
def test_onnx_own_data_file_is_read(name: str, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from lstm_report.readers.onnx import rnn as onnx_rnn

    folder = tmp_path / "m"
    model = _onnx_pointing_at(folder, name)
    (folder / name).write_bytes((ONNX_FIX / "gru.onnx.data").read_bytes())
    got = onnx_rnn.read(model).cells
    want = onnx_rnn.read(ONNX_FIX / "gru.onnx").cells
    assert [c.name for c in got] == [c.name for c in want] and len(got) == 2
    for a, b in zip(got, want):
        for ga, gb in zip(a.gates, b.gates):
            np.testing.assert_array_equal(ga.W, gb.W)
            np.testing.assert_array_equal(ga.U, gb.U)


def test_onnx_external_data_opt_in_on_the_command_line_and_in_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnx")
    from lstm_report.cli import main

    folder = _secret_folder(tmp_path)
    model = _onnx_pointing_at(folder, "secret.txt")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["build", str(model), "-o", str(out / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err == (
        "error: models[0] (gru.onnx): initializer 'W': external data location 'secret.txt' is "
        "not the data file made for the model (gru.onnx.data or gru.onnx_data or gru.data "
        "beside it): refused; if you trust the files beside this model, pass "
        "--allow-external-data (or set 'external_data: allow' for the model in the config)\n"
    )
    assert list(out.iterdir()) == []
    assert (
        main(["build", str(model), "-o", str(out / "r.html"), "-q", "--allow-external-data"]) == 0
    )
    assert str(int(hostile.SECRET_VALUE)) in (out / "r.html").read_text()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"models: [{{path: {model}, external_data: allow}}]\n")
    assert main(["build", str(cfg), "-o", str(out / "c.html"), "-q"]) == 0
    cfg.write_text(f"models: [{{path: {model}, external_data: yes}}]\n")
    assert main(["build", str(cfg), "-o", str(out / "d.html"), "-q"]) == 1
    assert capsys.readouterr().err == (
        "error: models[0].external_data: expected allow or model (the default: only the data "
        "file made for the model), got a boolean (true)\n"
    )
