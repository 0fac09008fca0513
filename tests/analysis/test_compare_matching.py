"""Issue 20: which layer of the baseline is which of the candidate: by name, by position
(same recurrent layers in order, other names), or as ``compare[k].layers`` maps them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from lstm_report.cli import main
from lstm_report.config.parse import parse_config
from lstm_report.errors import ConfigError
from tests.helpers import FIXTURES

FIX = FIXTURES / "frameworks"


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The state dict, and the same network under other names (``m.`` before every
    module: what another run, or an export, might call it), its weights moved."""
    base = load_file(str(FIX / "torch_state_dict.safetensors"))
    rng = np.random.default_rng(3)
    moved = {
        f"m.{k}": (v + 0.1 * rng.normal(size=v.shape)).astype(v.dtype) for k, v in base.items()
    }
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_file(base, a)
    save_file(moved, b)
    return a, b, base, moved


def _build(tmp_path: Path, compare: str, *models: str) -> tuple[int, dict[str, Any], str, str]:
    cfg = tmp_path / "c.yaml"
    entries = "".join(
        f"  - {{path: {m}, name: {Path(m).stem}}}\n"
        for m in models or ("a.safetensors", "b.safetensors")
    )
    cfg.write_text(f"models:\n{entries}compare:\n  - {compare}\n", encoding="utf-8")
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    code = main(["build", str(cfg), "-q", "--no-cache", "-o", str(page), "--json", str(out)])
    if code != 0:
        return code, {}, "", ""
    return code, json.loads(out.read_text()), page.read_text(), str(cfg)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.linalg.norm(b - a) / np.linalg.norm(a))


def test_no_names_match_but_the_layers_do_by_position(
    pair: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, base, moved = pair
    code, data, page, _ = _build(tmp_path, "{baseline: a, candidate: b}")
    assert code == 0, capsys.readouterr().err
    (c,) = data["comparisons"]
    assert c["matched_by"] == "position"
    assert c["only_baseline"] == [] and c["only_candidate"] == []
    assert len(c["layers"]) == 13  # every layer and direction of the state dict
    by_name = {(x["name"], x["direction"]): x for x in c["layers"]}
    enc = by_name[("encoder.l1", "forward")]
    assert enc["candidate_name"] == "m.encoder.l1"
    # gate f of encoder.l1: rows 5:10 of PyTorch's weight_hh (i, f, g, o)
    expected = _relative(base["encoder.weight_hh_l1"][5:10], moved["m.encoder.weight_hh_l1"][5:10])
    assert enc["gates"]["f"]["U"]["relative"] == pytest.approx(expected, rel=1e-6)
    assert "Layers matched by position" in page
    assert "encoder.l1 → m.encoder.l1" in page


def test_a_mapping_names_the_pairs(pair: Any, tmp_path: Path) -> None:
    _, _, base, moved = pair
    code, data, page, _ = _build(
        tmp_path, "{baseline: a, candidate: b, layers: {bi.l0: m.bi.l0, plain.l0: m.plain.l0}}"
    )
    assert code == 0
    (c,) = data["comparisons"]
    assert c["matched_by"] == "mapping"
    got = [(x["name"], x["candidate_name"], x["direction"]) for x in c["layers"]]
    assert got == [
        ("bi.l0", "m.bi.l0", "forward"),
        ("bi.l0", "m.bi.l0", "backward"),  # directions follow the mapped name
        ("plain.l0", "m.plain.l0", "forward"),
    ]
    assert "encoder.l0 (forward)" in c["only_baseline"]
    assert "m.encoder.l0 (forward)" in c["only_candidate"]
    back = c["layers"][1]
    expected = _relative(
        base["bi.weight_ih_l0_reverse"][:4], moved["m.bi.weight_ih_l0_reverse"][:4]
    )
    assert back["gates"]["i"]["W"]["relative"] == pytest.approx(expected, rel=1e-6)
    assert "as the config's <code>layers:</code> maps them" in page


def test_by_name_where_names_match(pair: Any, tmp_path: Path) -> None:
    a, _, _, _ = pair
    (tmp_path / "c.safetensors").write_bytes(a.read_bytes())
    code, data, _, _ = _build(
        tmp_path, "{baseline: a, candidate: c}", "a.safetensors", "c.safetensors"
    )
    assert code == 0
    (c,) = data["comparisons"]
    assert c["matched_by"] == "name" and len(c["layers"]) == 13
    assert all(x["candidate_name"] == x["name"] for x in c["layers"])


def test_nothing_matchable_is_an_error(
    pair: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "h.safetensors").write_bytes((FIX / "torch_half.safetensors").read_bytes())
    code, *_ = _build(tmp_path, "{baseline: h, candidate: b}", "h.safetensors", "b.safetensors")
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: compare[0]: no layer of 'h' "), err
    assert "'h' has bi.l0 (forward) (LSTM, 4 units, 3 inputs)" in err
    assert "plain.l0 (GRU, 3 units, 3 inputs)" in err
    assert "'b' has m.bi.l0 (forward)" in err and "m.proj.l1 (backward)" in err
    assert "compare[0].layers: {BASELINE_LAYER: CANDIDATE_LAYER}" in err


def test_a_mapping_naming_no_layer_is_an_error(
    pair: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, *_ = _build(tmp_path, "{baseline: a, candidate: b, layers: {bi.l0: bi.l0}}")
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: compare[0].layers.bi.l0: no analysed layer 'bi.l0' in 'b' ")
    assert "(layers: m.bi.l0, m.encoder.l0," in err


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ("[lstm]", r"^compare\[0\]\.layers: expected a mapping of baseline layer names to"),
        ("{}", r"^compare\[0\]\.layers: the mapping is empty"),
        ("{a: 3}", r"^compare\[0\]\.layers\.a: expected a candidate layer name, got a number"),
        ("{a: x, b: x}", r"^compare\[0\]\.layers\.b: candidate layer 'x' is already mapped"),
    ],
)
def test_bad_layer_mappings(layers: str, message: str) -> None:
    import yaml

    data = yaml.safe_load(
        f"models: [a.keras, b.keras]\ncompare: [{{baseline: a.keras, candidate: b.keras, layers: {layers}}}]"
    )
    with pytest.raises(ConfigError, match=message):
        parse_config(data)
    ok = parse_config(
        {**data, "compare": [{"baseline": "a.keras", "candidate": "b.keras", "layers": {"p": "q"}}]}
    )
    assert ok.compare[0].layers == (("p", "q"),)
