"""Issue 20: checkpoint series of PyTorch, safetensors and ONNX files: labels, comparisons
with MODEL@LABEL, and every cell the single report handles (proj_size)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cli import main
from lstm_report.config.schema import checkpoint_label
from lstm_report.config.sources import is_model_file
from lstm_report.readers.formats import MODEL_SUFFIXES, format_of, model_stem
from lstm_report.series.labels import label_of
from tests.framework_series import SUFFIXES, write_series
from tests.helpers import FIXTURES

# Gate i of the first layer, in the report's x·W orientation, from the file itself.
FIRST_LAYER = {".pt": "encoder.l0", ".pth": "encoder.l0", ".safetensors": "encoder.l0"}
FIRST_LAYER[".onnx"] = "lstm_bi"


def _gate_i(path: Path) -> np.ndarray:
    if path.suffix in (".pt", ".pth"):
        with zipfile.ZipFile(path) as zf:  # data/0 is encoder.weight_ih_l0, (20, 3)
            raw = zf.read(f"{path.stem}/data/0")
        return np.frombuffer(raw, "<f4").reshape(20, 3)[:5].T
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return load_file(str(path))["encoder.weight_ih_l0"][:5].T
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    (w,) = [numpy_helper.to_array(i) for i in model.graph.initializer if i.name == "W"]
    return w[0, :4].T  # forward direction, gate i first (ONNX: i, o, f, c)


def _build(tmp_path: Path, suffix: str, layers: str = "") -> tuple[int, dict[str, Any], str]:
    run = tmp_path / "run"
    write_series(run, suffix)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"models:\n  - path: run/epoch_*{suffix}\n    name: run\n{layers}"
        "compare:\n  - {baseline: run@epoch_1, candidate: run}\n",
        encoding="utf-8",
    )
    out = tmp_path / "r.json"
    code = main(["build", str(cfg), "-q", "--no-cache", "-o", str(tmp_path / "r.html"),
                 "--json", str(out)])  # fmt: skip
    data = json.loads(out.read_text(encoding="utf-8")) if code == 0 else {}
    return code, data, str(tmp_path)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_series_labels_and_compare_by_label(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first = FIRST_LAYER[suffix]
    layers = f"    layers: [{first}]\n"  # the proj_size layers have their own test
    code, data, _ = _build(tmp_path, suffix, layers)
    assert code == 0, capsys.readouterr().err
    (model,) = data["models"]
    names = [c["name"] for c in model["series"]["checkpoints"]]
    assert names == ["epoch_1", "epoch_2", "epoch_3"]
    (cmp,) = data["comparisons"]
    assert (cmp["baseline"], cmp["candidate"]) == ("run@epoch_1", "run")
    layer = next(x for x in cmp["layers"] if x["direction"] == "forward")
    assert layer["name"] == first
    a, b = (
        _gate_i(tmp_path / "run" / f"epoch_1{suffix}"),
        _gate_i(tmp_path / "run" / f"epoch_3{suffix}"),
    )
    expected = np.linalg.norm(b.astype(np.float64) - a) / np.linalg.norm(a.astype(np.float64))
    assert layer["gates"]["i"]["W"]["relative"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("epoch_3.keras", "epoch_3"),
        ("epoch_3.weights.h5", "epoch_3"),
        ("run.v2.weights.h5", "run.v2"),
        ("epoch_3.H5", "epoch_3"),
        ("epoch_3.hdf5", "epoch_3"),
        ("epoch_3.pt", "epoch_3"),
        ("epoch_3.pth", "epoch_3"),
        ("epoch_3.safetensors", "epoch_3"),
        ("epoch_3.onnx", "epoch_3"),
        ("epoch_3", "epoch_3"),
    ],
)
def test_one_owner_of_model_suffixes(name: str, stem: str) -> None:
    assert model_stem(name) == stem
    assert checkpoint_label(Path("/abs/ckpt") / name) == stem
    # a snapshot named like a file gets the file's label; any other name stays as it is
    assert label_of(name) == (stem if format_of(name) else name)
    assert is_model_file(name) == (format_of(name) is not None)


def test_every_suffix_the_readers_know_is_a_model_file() -> None:
    for suffix in MODEL_SUFFIXES:
        assert is_model_file(f"x{suffix}") and label_of(f"/a/b/x{suffix}") == "x"


FIXTURES = FIXTURES / "frameworks"


@pytest.mark.parametrize(
    "fixture",
    [
        "torch_state_dict.pt",  # LSTMs (one with proj_size), bidirectional, GRUs, no bias
        "torch_half.safetensors",
        "onnx_lstm_bidirectional.onnx",
        "onnx_gru_lbr0_reverse.onnx",
        "onnx_gru_lbr1_bidirectional.onnx",
    ],
)
def test_a_series_handles_every_cell_the_single_report_does(
    tmp_path: Path, fixture: str, capsys: pytest.CaptureFixture[str]
) -> None:
    suffix = Path(fixture).suffix
    run = tmp_path / "run"
    run.mkdir()
    for e in (1, 2):
        (run / f"epoch_{e}{suffix}").write_bytes((FIXTURES / fixture).read_bytes())
    series_cfg = tmp_path / "series.yaml"
    series_cfg.write_text(f"models:\n  - {{path: 'run/epoch_*{suffix}', name: run}}\n")
    single_cfg = tmp_path / "single.yaml"
    single_cfg.write_text(f"models:\n  - {{path: 'run/epoch_2{suffix}', name: run}}\n")
    found = {}
    for cfg in (series_cfg, single_cfg):
        out = tmp_path / f"{cfg.stem}.json"
        args = ["build", str(cfg), "-q", "--no-cache", "-o", str(tmp_path / f"{cfg.stem}.html")]
        assert main([*args, "--json", str(out)]) == 0, capsys.readouterr().err
        found[cfg.stem] = json.loads(out.read_text(encoding="utf-8"))["models"][0]
    last = found["series"]["series"]["checkpoints"][-1]["layers"]
    single = {(x["name"], x["direction"]): x for x in found["single"]["layers"]}
    assert {(x["name"], x["direction"]) for x in last} == set(single)
    for point in last:
        layer = single[(point["name"], point["direction"])]
        for gate, figures in point["gates"].items():
            radius = layer["spectra"][gate]["U"]["spectral_radius"]
            if radius is None:  # U_g not square: a projection
                assert figures["U_spectral_radius"] is None
            else:
                assert figures["U_spectral_radius"] == pytest.approx(radius, rel=1e-9)
            assert figures["relative_change"] == 0.0  # the same bytes twice
    if fixture == "torch_state_dict.pt":
        proj = [p for p in last if p["name"].startswith("proj.")]
        assert len(proj) == 4 and all(
            g["U_spectral_radius"] is None for p in proj for g in p["gates"].values()
        )


def test_messages_name_every_suffix_the_readers_know(tmp_path: Path) -> None:
    from lstm_report.errors import ModelLoadError
    from lstm_report.readers.files import inspect_file

    (tmp_path / "d.pt").mkdir()
    with pytest.raises(ModelLoadError) as err:
        inspect_file(tmp_path / "d.pt", where="models[0]")
    for suffix in (".keras", ".h5", ".hdf5", ".pt", ".pth", ".safetensors", ".onnx"):
        assert suffix in str(err.value)
