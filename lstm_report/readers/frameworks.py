"""PyTorch, ONNX and TFLite files -> ModelWeights: the framework readers' cells, as layers.

readers/torch/rnn.py, onnx/rnn.py and tflite/rnn.py return framework-neutral `cells.CellWeights`;
this module gives each one the place in the model that the analysis needs (which layer reads the
model input, which layer feeds which) and nothing else. The cells stay the source of truth for the
gates.
"""

from __future__ import annotations

import re
from pathlib import Path

from lstm_report.errors import ModelLoadError
from lstm_report.model.layers import ModelWeights, OtherLayer, RecurrentLayer, RecurrentModel
from lstm_report.readers.onnx import rnn as onnx_rnn
from lstm_report.readers.tflite import rnn as tflite_rnn
from lstm_report.readers.torch import rnn as torch_rnn

FRAMEWORK_READERS = ("pytorch", "onnx", "tflite")
"""ModelWeights.reader of a file read here: no Keras can run or verify these layers."""
STORED_ORDER = {
    "PyTorch": {"LSTM": "i,f,g,o", "GRU": "r,z,n, read as z,r,h"},
    "ONNX": {"LSTM": "i,o,f,c, read as i,f,c,o", "GRU": "z,r,h"},
    "TFLite": {"LSTM": "i,f,c,o, one tensor each", "GRU": "none fused"},
}
"""How each framework orders the gates in its stacked arrays (docs/formats.md)."""


def read_framework(
    path: Path, format: str, *, name: str, where: str, allow_external_data: bool = False
) -> ModelWeights:
    """Read a PyTorch (.pt/.pth/.safetensors) or ONNX file; errors start with ``where``."""
    try:
        if format == "onnx":
            found = onnx_rnn.read(path, allow_external_data=allow_external_data)
        elif format == "tflite":
            found = tflite_rnn.read(path)
        else:
            found = torch_rnn.read(path)
    except ModelLoadError as exc:
        text = str(exc)
        prefix = f"{path.name}: "
        raise type(exc)(f"{where}: {text[len(prefix) :] if text.startswith(prefix) else text}")
    reader = format if format in ("onnx", "tflite") else "pytorch"
    return framework_model(found, path, name, reader)


def framework_model(found: RecurrentModel, path: Path, name: str, reader: str) -> ModelWeights:
    """The cells as layers, each cell as the reader built it, placed as the framework stacks
    them (PyTorch ``prefix.l{k}`` reads ``prefix.l{k-1}``, both directions concatenated); the
    first layer of the first module (or node) is taken to read the model input."""
    framework = _FRAMEWORKS[reader]
    cells = found.cells
    sources = dict(found.sources)
    names = list(dict.fromkeys(c.name for c in cells))
    two_way = {c.name for c in cells if c.direction == "backward"}
    first = names[0] if names else None
    layers = [
        RecurrentLayer(
            name=c.name,
            direction=c.direction,
            cell=c,
            return_sequences=True,  # nn.LSTM/nn.GRU, ONNX Y and TFLite return every step
            wrapper="bidirectional" if c.name in two_way else None,
            reads_input=c.name == first,
            source=_source(c.name, names) if reader == "pytorch" else sources.get(c.name),
            merge_mode="concat" if c.name in two_way else None,
            framework=framework,
        )
        for c in cells
    ]
    kinds = sorted({c.kind for c in cells})
    orders = ", ".join(f"{k} gates {STORED_ORDER[framework][k]}" for k in kinds)
    notes = [
        f"read from {found.framework} ({orders}), each gate's block transposed into the "
        "report's x·W orientation; every layer shows its stored layout"
    ]
    if len(names) > 1 and reader != "tflite":  # a TFLite graph says which op feeds which
        notes.append(
            f"{first} is taken to read the model input"
            + ("; each l{k} reads l{k−1}'s output" if reader == "pytorch" else "")
            + ("; each node reads the one its input comes from" if sources else "")
            + " (the file stores weights, not how modules connect)"
        )
    notes += list(found.notes)
    notes += [f"{c.label}: {n}" for c in cells for n in c.notes]
    return ModelWeights(
        name=name,
        path=path,
        layers=tuple(layers),
        others=tuple(_other(o) for o in found.other),
        total_params=found.total_params,
        input_dim=cells[0].input_dim if cells else None,
        reader=reader,
        notes=tuple(notes),
        hyper_parameters=found.hyper_parameters,
        graph=found.graph,
    )


_FRAMEWORKS = {"onnx": "ONNX", "pytorch": "PyTorch", "tflite": "TFLite"}


def _source(name: str, names: list[str]) -> str | None:
    """``enc.l1`` reads ``enc.l0`` (a PyTorch multi-layer module); None for l0."""
    m = re.fullmatch(r"(?P<head>.*\.)?l(?P<k>\d+)", name)
    if m is None or int(m["k"]) == 0:
        return None
    previous = f"{m['head'] or ''}l{int(m['k']) - 1}"
    return previous if previous in names else None


def _other(text: str) -> OtherLayer:
    """``name: KIND (detail), why`` (or ``KIND (detail): why``, ``KIND, why``) as a listed
    layer: its kind, and the detail and why as a note. The detail may hold commas. A kind
    told only as RNN (nn.RNNCell, ONNX RNN, a TFLite RNN op) keeps its own words as the note."""
    name, _, what = text.partition(": ")
    word, paren, tail = what.partition(" (")
    if paren and ")" in tail and ", " not in word:
        detail, _, rest = tail.partition(")")
        why = rest.removeprefix(",").removeprefix(":").strip()
    else:
        word, _, why = what.partition(", ")
        detail = ""
    kind = "RNN" if "RNN" in word else word
    units = None
    digits = [int(t.strip("(")) for t in what.split() if t.strip("(").isdigit()]
    if digits and "units" in what:
        units = digits[0]
    note = what if kind != word else ", ".join(part for part in (detail, why) if part)
    return OtherLayer(name, kind, units, note=note or None)
