"""Issue 25 item 10: ``layers:`` names a Keras ConvLSTM as it names an LSTM, and an unknown
name's one-line error lists the ConvLSTMs among the layers there are."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstm_report import build_report
from lstm_report.errors import ConfigError
from tests.conftest import ConvSaved, write_config


def _build(tmp: Path, saved: ConvSaved, layers: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    cfg = write_config(tmp, f"models:\n  - path: {saved.path}\n    layers: {layers}\n")
    r = build_report(cfg, output=tmp / "r.html", dynamics=False).report
    (m,) = r.models
    return tuple(la.weights.name for la in m.layers), tuple(c.layer.name for c in m.conv_layers)


def test_layers_selects_a_convlstm(conv_models: dict, tmp_path: Path) -> None:
    mixed = conv_models["mixed"]
    assert _build(tmp_path, mixed, "[conv]") == ((), ("conv",))
    assert _build(tmp_path, mixed, "[lstm]") == (("lstm",), ())
    assert _build(tmp_path, mixed, "[lstm, conv]") == (("lstm",), ("conv",))
    only = conv_models["ConvLSTM3D"]
    assert _build(tmp_path, only, "[conv]") == ((), ("conv",))


def test_a_selected_convlstm_alone_counts_alone(conv_models: dict, tmp_path: Path) -> None:
    """lstm_params counts what is analysed: the ConvLSTM's arrays, not the unselected LSTM."""
    mixed = conv_models["mixed"]
    cfg = write_config(tmp_path, f"models:\n  - path: {mixed.path}\n    layers: [conv]\n")
    r = build_report(cfg, output=tmp_path / "r.html", dynamics=False).report
    assert r.models[0].recurrent_params == sum(a.size for a in mixed.arrays)


def test_an_unknown_name_lists_the_convlstms(conv_models: dict, tmp_path: Path) -> None:
    mixed = conv_models["mixed"]
    cfg = write_config(tmp_path, f"models:\n  - path: {mixed.path}\n    layers: [conv, nope]\n")
    with pytest.raises(ConfigError) as info:
        build_report(cfg, output=tmp_path / "r.html")
    assert str(info.value) == (
        "models[0].layers[1]: no LSTM, GRU or ConvLSTM layer named 'nope' in mixed_conv.keras; "
        "LSTM, GRU and ConvLSTM layers: lstm, conv"
    )
    only = conv_models["ConvLSTM2D"]
    cfg = write_config(tmp_path, f"models:\n  - path: {only.path}\n    layers: [lstm]\n")
    with pytest.raises(ConfigError, match=r"; LSTM, GRU and ConvLSTM layers: conv$"):
        build_report(cfg, output=tmp_path / "r.html")
