"""Each takeaway sentence against the numbers it states (the demo's JSON)."""

from __future__ import annotations

import json
import re
import statistics
from typing import Any

import pytest


@pytest.fixture(scope="module")
def demo(demo_run: Any) -> dict[str, Any]:
    return json.loads(demo_run.json.read_text())  # type: ignore[no-any-return]


def _by_code(data: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [t for t in data["takeaways"] if t["code"] == code]


def test_inputs_sentence_states_the_measured_importance(demo: dict[str, Any]) -> None:
    (t,) = _by_code(demo, "inputs")
    imp = demo["models"][0]["input_importance"]
    ranked = sorted(imp["features"], key=lambda f: -f["value"])
    named = re.findall(r"(\w+) \(([\d.e-]+)\)", t["text"].split(";")[0])
    assert [n for n, _ in named] == ["pressure", "humidity"]
    for (name, value), f in zip(named, ranked):
        assert f["name"] == name and float(value) == pytest.approx(f["value"], rel=5e-3)
    # "the other 4 change it by less than a tenth as much": true of every other input
    assert "the other 4 " in t["text"]
    assert all(f["value"] < 0.1 * ranked[0]["value"] for f in ranked[2:])
    assert f"on {imp['sequences']} probe sequences" in t["text"]


def test_memory_sentences_state_the_median_timescale(demo: dict[str, Any]) -> None:
    sentences = _by_code(demo, "memory")
    layers = {la["name"]: la for la in demo["models"][0]["layers"]}
    assert {t["layer"] for t in sentences} == set(layers)
    for t in sentences:
        taus = [v for v in layers[t["layer"]]["memory"]["probe_tau"] if v is not None]
        stated = float(re.search(r"is ([\d.]+) steps on the probe", t["text"]).group(1))
        assert stated == pytest.approx(statistics.median(taus), rel=5e-3)
        assert t["text"].startswith("Memory is short") == (statistics.median(taus) < 0.25 * 30)


def test_saturation_and_verification_sentences(demo: dict[str, Any]) -> None:
    (sat,) = _by_code(demo, "saturation")
    codes = {f["code"] for f in demo["findings"]}
    assert ("No gate of demo saturates" in sat["text"]) == ("saturated-units" not in codes)
    (ver,) = _by_code(demo, "verified")
    errors = [la["verification"]["max_abs_error"] for la in demo["models"][0]["layers"]]
    assert f"largest difference {max(errors):.1e}" in ver["text"]


def test_learned_sentence_names_the_gate_that_changed_most(demo: dict[str, Any]) -> None:
    # One measure, biases included: the largest `change` of any W, U or b, with its digits.
    (t,) = _by_code(demo, "learned")
    (cmp,) = demo["comparisons"]
    best = max(
        (d["change"], gate, layer["name"], fam)
        for layer in cmp["layers"]
        for gate, g in layer["gates"].items()
        for fam, d in g.items()
        if d is not None and d["change"] is not None
    )
    names = {"i": "input", "f": "forget", "c": "candidate", "o": "output"}
    assert f"the {names[best[1]]} gate of {best[2]} changed most" in t["text"]
    stated = re.search(r"the RMS change of (\w+)_(\w) is ([\d.]+) times", t["text"])
    assert stated is not None and stated.group(1, 2) == (best[3], best[1])
    assert stated.group(3) == f"{best[0]:.4g}" and len(stated.group(3).replace(".", "")) >= 3
    assert t["model"] is None and t["layer"] is None
    # the baseline checkpoint speaks only through the comparison
    assert all(x["model"] != cmp["baseline"] for x in demo["takeaways"])
