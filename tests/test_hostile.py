"""Issue 9: hostile model files. Each gives one line naming the file (and the dataset), exit
status 1, in bounded time and memory, and reads nothing else. Hostile configs are tested in
tests/test_config.py, hostile probe files in tests/test_probe.py."""

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
        text = json.dumps(hostile.nested_models(int(case.split()[0])))
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
    "field", ["model config", "layers", "layer entry", "bidirectional layer", "cell"]
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
    else:
        lstm["class_name"] = "RNN"
        lstm["config"]["cell"] = ["LSTMCell"]
    bad = hostile.with_config(simple_model.path, tmp_path / "odd.keras", json.dumps(cfg).encode())
    r = run_cli(model_config(tmp_path, bad), tmp_path)
    assert_refused(r, tmp_path, bad.name)


def test_long_chain_of_layers_is_walked_without_recursion() -> None:
    from lstm_report.topology import find_recurrent

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
