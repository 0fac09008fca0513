"""Checkpoints written by darts 0.48.1 and neuralforecast 3.3.0 themselves (Lightning
checkpoints pickling losses, metrics and optimizer state; neuralforecast's safetensors),
read without torch, darts or neuralforecast, nothing in them run.

The fixtures in tests/fixtures/frameworks/forecasters/ were written by
make_forecaster_checkpoints.py (torch 2.13.0, pytorch-lightning 2.6.6, torchmetrics 1.9.0)
after one epoch of training on a tiny series, with what torch computed from each trained
recurrent module on a fixed input. Every replay is built only from what the reader returned.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cells.kinds import replay_layers
from lstm_report.config.schema import ModelSpec
from lstm_report.errors import ModelLoadError
from lstm_report.readers.dispatch import read_model
from lstm_report.readers.torch import rnn as torch_rnn
from tests.helpers import FIXTURES

FIX = FIXTURES / "frameworks" / "forecasters"
ATOL = 1e-5

CASES = {
    # file: (expected.npz prefix, kind, layer names, units)
    "darts_rnn_lstm.pt.ckpt": ("darts_rnn_lstm", "LSTM", ["rnn.l0"], 4),
    "darts_rnn_lstm_last.ckpt": ("darts_rnn_lstm", "LSTM", ["rnn.l0"], 4),
    "darts_block_gru.pt.ckpt": ("darts_block_gru", "GRU", ["rnn.l0", "rnn.l1"], 3),
    "darts_block_gru_last.ckpt": ("darts_block_gru", "GRU", ["rnn.l0", "rnn.l1"], 3),
    "nf_lstm.ckpt": ("nf_lstm", "LSTM", ["hist_encoder.l0", "hist_encoder.l1"], 4),
    "nf_lstm_0.safetensors": ("nf_lstm", "LSTM", ["hist_encoder.l0", "hist_encoder.l1"], 4),
}
FRAMEWORKS = ("torch", "darts", "neuralforecast", "lightning", "pytorch_lightning", "torchmetrics")


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIX / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def _spec(path: Path) -> ModelSpec:
    return ModelSpec(index=0, path=path, name=path.name)


@pytest.mark.parametrize("file", sorted(CASES))
def test_layers_and_replay_match_torch(file: str, expected: dict[str, np.ndarray]) -> None:
    prefix, kind, names, units = CASES[file]
    weights = read_model(_spec(FIX / file))
    assert weights.layer_names() == names
    cells = [la.cell for la in weights.layers]
    assert {c.kind for c in cells} == {kind}
    assert all(c.units == units and c.direction == "forward" for c in cells)
    assert all(c.framework == f"PyTorch nn.{kind}" for c in cells)
    gates = "i,f,g,o" if kind == "LSTM" else "r,z,n (read as z,r,h)"
    assert all(f"gates {gates}" in c.source_layout for c in cells)
    # The layers the reader found are the state dict's recurrent keys, layer by layer.
    keys = [str(k) for k in expected[f"{prefix}/keys"]]
    found = [re.fullmatch(r"(.+)\.(?:weight|bias)_[ih]h_l(\d+)", k) for k in keys]
    layers = {f"{m[1]}.l{m[2]}" for m in found if m is not None}
    assert sorted(layers) == names
    out, traces = replay_layers(cells, expected[f"{prefix}/x"])
    np.testing.assert_allclose(out, expected[f"{prefix}/out"], atol=ATOL)
    for k, trace in enumerate(traces):
        np.testing.assert_allclose(trace.h[:, -1], expected[f"{prefix}/h_n"][k], atol=ATOL)
        if kind == "LSTM":
            assert trace.c is not None
            np.testing.assert_allclose(trace.c[:, -1], expected[f"{prefix}/c_n"][k], atol=ATOL)


@pytest.mark.parametrize("file", sorted(CASES))
def test_parameter_count_is_the_state_dicts(file: str, expected: dict[str, np.ndarray]) -> None:
    """Every tensor of the module's state dict (the recurrent layers and the head), not the
    optimizer's moments beside it in a checkpoint."""
    model = torch_rnn.read(FIX / file)
    assert model.total_params == int(expected[f"{CASES[file][0]}/n_params"])


def test_gates_are_the_stored_blocks() -> None:
    """neuralforecast's trainer checkpoint and NeuralForecast.save()'s safetensors hold the
    same trained weights; per gate, against the raw arrays read by the safetensors package."""
    from safetensors.numpy import load_file

    raw = load_file(str(FIX / "nf_lstm_0.safetensors"))
    H = 4
    for file in ("nf_lstm.ckpt", "nf_lstm_0.safetensors"):
        model = torch_rnn.read(FIX / file)
        for layer, cell in enumerate(model.cells):
            w_ih, w_hh = (
                raw[f"hist_encoder.weight_ih_l{layer}"],
                raw[f"hist_encoder.weight_hh_l{layer}"],
            )
            b_ih = raw[f"hist_encoder.bias_ih_l{layer}"]
            for k, gate in enumerate(cell.gates):  # i, f, c(g), o: torch's own row order
                rows = slice(k * H, (k + 1) * H)
                np.testing.assert_array_equal(gate.W, w_ih[rows].T)
                np.testing.assert_array_equal(gate.U, w_hh[rows].T)
                np.testing.assert_array_equal(gate.b, b_ih[rows])


def test_darts_gru_gate_split() -> None:
    """torch stores a GRU's rows r, z, n: z is the second block, h (n) the third. The raw
    arrays are the checkpoint's state_dict as the torch.save layer reads it (no gate split)."""
    from lstm_report.readers.torch import state as torch_state

    loaded = torch_state.load(FIX / "darts_block_gru.pt.ckpt")
    assert isinstance(loaded.obj, dict)
    raw = loaded.arrays(loaded.obj["state_dict"])
    model = torch_rnn.read(FIX / "darts_block_gru.pt.ckpt")
    last = torch_rnn.read(FIX / "darts_block_gru_last.ckpt")
    H = 3
    for layer, (cell, same) in enumerate(zip(model.cells, last.cells)):
        z, r, h = cell.gates
        assert (z.spec.name, r.spec.name, h.spec.name) == ("z", "r", "h")
        assert cell.reset_after is True
        for gate, block in ((r, 0), (z, 1), (h, 2)):
            rows = slice(block * H, (block + 1) * H)
            np.testing.assert_array_equal(gate.W, raw[f"rnn.weight_ih_l{layer}"][rows].T)
            np.testing.assert_array_equal(gate.U, raw[f"rnn.weight_hh_l{layer}"][rows].T)
            np.testing.assert_array_equal(gate.b_rec, raw[f"rnn.bias_hh_l{layer}"][rows])
        for a, b in zip(cell.gates, same.gates):  # model.save()'s and the trainer's: one model
            np.testing.assert_array_equal(a.U, b.U)


DARTS_LSTM = {
    "input_chunk_length": 6,
    "output_chunk_length": 1,
    "output_chunk_shift": 0,
    "use_reversible_instance_norm": False,
    "input_size": 1,
    "hidden_dim": 4,
    "num_layers": 1,
    "target_size": 1,
    "nr_params": 1,
    "dropout": 0.0,
    "name": "LSTM",
}


@pytest.mark.parametrize("file", ["darts_rnn_lstm.pt.ckpt", "darts_rnn_lstm_last.ckpt"])
def test_darts_hyper_parameters(file: str) -> None:
    """As RNNModel(model="LSTM", hidden_dim=4, input_chunk_length=6) was made; its
    MSELoss and MetricCollection are named in the note, not shown as values."""
    model = torch_rnn.read(FIX / file)
    assert dict(model.hyper_parameters) == DARTS_LSTM
    (note,) = model.notes
    assert "torch.nn.modules.loss.MSELoss" in note
    assert "torchmetrics.collections.MetricCollection" in note


def test_darts_block_gru_hyper_parameters() -> None:
    hp = dict(torch_rnn.read(FIX / "darts_block_gru.pt.ckpt").hyper_parameters)
    assert (hp["hidden_dim"], hp["num_layers"], hp["name"]) == (3, 2, "GRU")
    assert (hp["output_chunk_length"], hp["activation"]) == (2, "ReLU")


def test_neuralforecast_hyper_parameters() -> None:
    """As LSTM(h=2, input_size=8, encoder_n_layers=2, encoder_hidden_size=4, max_steps=2,
    random_seed=31) was made; its MAE loss is named, not shown."""
    model = torch_rnn.read(FIX / "nf_lstm.ckpt")
    hp = dict(model.hyper_parameters)
    assert {k: hp[k] for k in ("h", "input_size", "encoder_n_layers", "encoder_hidden_size")} == {
        "h": 2,
        "input_size": 8,
        "encoder_n_layers": 2,
        "encoder_hidden_size": 4,
    }
    assert (hp["max_steps"], hp["random_seed"], hp["learning_rate"]) == (2, 31, 0.001)
    assert (hp["scaler_type"], hp["recurrent"]) == ("robust", False)
    assert "loss" not in hp
    (note,) = model.notes
    assert note.endswith("objects left unbuilt: neuralforecast.losses.pytorch.MAE")


@pytest.mark.parametrize(
    ("file", "count", "some"),
    [
        ("darts_rnn_lstm.pt.ckpt", 11, {"hidden_dim": 4, "name": "LSTM"}),
        ("nf_lstm.ckpt", 35, {"encoder_hidden_size": 4, "val_monitor": "ptl/val_loss"}),
    ],
)
def test_cli_shows_the_checkpoints_hyper_parameters(
    tmp_path: Path, file: str, count: int, some: dict[str, Any]
) -> None:
    from lstm_report.cli import main

    html, js = tmp_path / "r.html", tmp_path / "r.json"
    assert main(["build", "-q", str(FIX / file), "-o", str(html), "--json", str(js)]) == 0
    model = json.loads(js.read_text())["models"][0]
    assert [la["name"] for la in model["layers"]] == CASES[file][2]
    hp = model["hyper_parameters"]
    assert len(hp) == count and some.items() <= hp.items()
    page = html.read_text()
    assert f"Hyper-parameters stored in the checkpoint ({count})" in page
    assert "<code>ptl/val_loss</code>" in page or file != "nf_lstm.ckpt"


def test_darts_model_object_without_weights_points_to_its_checkpoint(tmp_path: Path) -> None:
    """model.save()'s .pt pickles the TorchForecastingModel without its module: no state
    dict in it. It is refused, naming the .pt.ckpt beside it that holds the weights."""
    with pytest.raises(ModelLoadError) as got:
        torch_rnn.read(FIX / "darts_rnn_lstm.pt")
    assert str(got.value) == (
        "darts_rnn_lstm.pt: refused: the pickle calls "
        "darts.models.forecasting.rnn_model.RNNModel; its weights may be in "
        "darts_rnn_lstm.pt.ckpt beside it (darts' model.save() writes them there)"
    )
    alone = tmp_path / "darts_rnn_lstm.pt"
    alone.write_bytes((FIX / "darts_rnn_lstm.pt").read_bytes())
    with pytest.raises(
        ModelLoadError,
        match=r"^darts_rnn_lstm.pt: refused: the pickle calls "
        r"darts\.models\.forecasting\.rnn_model\.RNNModel$",
    ):
        torch_rnn.read(alone)


def test_nothing_from_the_pickles_is_imported() -> None:
    """Every fixture read in a fresh process with torch, darts, neuralforecast, Lightning,
    torchmetrics, pandas and pyarrow made unimportable (all named in the pickles): any
    import of them would fail, any lookup would raise."""
    blocked = (*FRAMEWORKS, "pandas", "pyarrow")
    code = f"""
import sys
for m in {blocked!r}:
    sys.modules[m] = None
from pathlib import Path
from lstm_report.readers.torch import rnn as torch_rnn
from lstm_report.errors import ModelLoadError
fix = Path({str(FIX)!r})
for f in {sorted(CASES)!r}:
    assert torch_rnn.read(fix / f).cells, f
try:
    torch_rnn.read(fix / "darts_rnn_lstm.pt")
except ModelLoadError:
    pass
assert not [m for m in sys.modules if m.split(".")[0] in {blocked!r} and sys.modules[m]]
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(FIX.parents[3])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def _metadata(path: Path) -> dict[str, str]:
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    meta: dict[str, str] = json.loads(raw[8 : 8 + n])["__metadata__"]
    return meta


def test_neuralforecast_safetensors_hyper_parameters(tmp_path: Path) -> None:
    """NeuralForecast.save() keeps the hyper-parameters as JSON in the safetensors
    metadata: the same scalars as its trainer's checkpoint, and the loss's class name (a
    nested dict there, a placeholder in the pickle)."""
    from lstm_report.cli import main

    stored = json.loads(_metadata(FIX / "nf_lstm_0.safetensors")["hyper_parameters"])
    scalars = {k: v for k, v in stored.items() if isinstance(v, (bool, int, float, str))}
    model = torch_rnn.read(FIX / "nf_lstm_0.safetensors")
    assert dict(model.hyper_parameters) == {**scalars, "loss.__nf__": "loss", "loss.cls": "MAE"}
    ckpt = dict(torch_rnn.read(FIX / "nf_lstm.ckpt").hyper_parameters)
    assert dict(model.hyper_parameters) == {**ckpt, "loss.__nf__": "loss", "loss.cls": "MAE"}
    html, js = tmp_path / "s.html", tmp_path / "s.json"
    path = FIX / "nf_lstm_0.safetensors"
    assert main(["build", "-q", str(path), "-o", str(html), "--json", str(js)]) == 0
    hp = json.loads(js.read_text())["models"][0]["hyper_parameters"]
    assert (hp["encoder_hidden_size"], hp["loss.cls"], len(hp)) == (4, "MAE", 37)
    assert "Hyper-parameters stored in the checkpoint (37)" in html.read_text()


def _with_metadata(tmp_path: Path, text: str) -> Path:
    """nf_lstm_0.safetensors with its hyper_parameters replaced by ``text``."""
    raw = (FIX / "nf_lstm_0.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    header["__metadata__"]["hyper_parameters"] = text
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    path = tmp_path / "hp.safetensors"
    path.write_bytes(len(new).to_bytes(8, "little") + new + raw[8 + n :])
    return path


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('{"lr": 0.5, "deep": {"a": {"b": 1}}, "bad": NaN}', {"lr": 0.5, "deep.a.b": 1}),
        ('{"lr": 0.5', {}),  # not JSON: none shown
        ("[" * 11 + "]" * 11, {}),  # nested past the header's own bound
        ('{"big": ' + "9" * 21 + "}", {}),  # an integer past a u64's digits
        ('{"s": "<b>x</b>"}', {"s": "<b>x</b>"}),  # kept literal (escaped by the page)
    ],
)
def test_metadata_hyper_parameters_are_bounded(
    tmp_path: Path, text: str, want: dict[str, Any]
) -> None:
    model = torch_rnn.read(_with_metadata(tmp_path, text))
    assert dict(model.hyper_parameters) == want
    assert [c.name for c in model.cells] == ["hist_encoder.l0", "hist_encoder.l1"]
