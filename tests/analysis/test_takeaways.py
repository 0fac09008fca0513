"""Each takeaway sentence against the numbers it states (the demo's JSON)."""

from __future__ import annotations

import json
import math
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


def horizon_by_hand(per_step: list[float], share: float = 0.9) -> int:
    """The smallest k whose last k steps carry ``share`` of the per-step importance."""
    total = sum(per_step)
    for k in range(1, len(per_step) + 1):
        if sum(per_step[-k:]) >= share * total * (1 - 1e-12):
            return k
    raise AssertionError("no horizon")


def check_memory_sentence(data: dict[str, Any], model: int = 0) -> str:
    """The model's memory takeaway against its JSON: the horizon it states, the verdict,
    the timescales quoted as the weight-side estimate, and the disagreement clause."""
    m = data["models"][model]
    (t,) = [x for x in _by_code(data, "memory") if x["model"] == m["name"]]
    text = t["text"]
    h = m["memory_horizon"]
    k, steps = h["steps"], h["of"]
    imp = m["input_importance"]
    assert steps == len(imp["per_step"]) and h["share"] == 0.9
    if imp["per_lag"] is None:  # one prediction: the last k steps before it
        assert h["by"] == "step" and k == horizon_by_hand(imp["per_step"])
        assert f"the last {k} steps carry 90% of the per-step importance" in text
    else:  # a sequence: the distances below k from each output step
        assert h["by"] == "lag" and k == horizon_by_hand(imp["per_lag"][::-1])
        assert sum(imp["per_lag"]) == pytest.approx(sum(imp["per_step"]), rel=1e-9)
        assert f"the inputs within {k} steps of each of its steps carry 90%" in text
    assert f"measured on {m['input_importance']['sequences']} probe sequences" in text
    assert text.startswith("Memory is short") == (k < steps / 4)
    assert text.startswith("Memory spans the whole sequence") == (
        not k < steps / 4 and k >= 0.9 * steps
    )
    taus = {}
    for la in m["layers"]:
        values = [v for v in la["memory"]["probe_tau"] if v is not None]
        taus[la["name"]] = statistics.median(values)
        assert f"{taus[la['name']]:.3g} steps in {la['name']}" in text
    assert "weight-side estimate" in text
    shorter = [n for n, v in taus.items() if k > 2 * v]
    assert ("more than 2× shorter than the measured horizon" in text) == bool(shorter)
    whole = k >= 0.9 * steps
    longer = [n for n, v in taus.items() if v > 2 * k and not whole]
    assert ("more than 2× longer than the measured horizon" in text) == bool(longer)
    if shorter:
        assert (
            f"shorter than the measured horizon in {', '.join(shorter)}: trust the measured horizon"
            in text
        )
    return str(text)


def check_dynamics_sentence(data: dict[str, Any], model: int = 0) -> str:
    """The model's dynamics takeaway against every layer's largest Lyapunov exponent."""
    m = data["models"][model]
    (t,) = [x for x in _by_code(data, "dynamics") if x["model"] == m["name"]]
    text = t["text"]
    unstable = []
    for la in m["layers"]:
        d = la["dynamics"]
        assert f"{d['lyapunov'][0]:+.3g} in {la['name']}" in text
        flagged = d["lyapunov"][0] - d["lyapunov_spread"][0] > 1e-3
        assert d["unstable"] == flagged
        if flagged:
            unstable.append(la["name"])
    findings = [f for f in data["findings"] if f["model"] == m["name"]]
    coded = sorted(f["layer"] for f in findings if f["code"] == "unstable-dynamics")
    assert len(coded) == len(unstable)
    assert ("is stable on the probe" in text) == (not unstable)
    assert ("diverges on the probe" in text) == bool(unstable)
    # a large spectral radius alone is never a warning when the probe measured the state
    assert all(f["severity"] == "info" for f in findings if f["code"] == "large-spectral-radius")
    return str(text)


EVIDENCE = ("probe", "from the weights", "random inputs")


def check_evidence(data: dict[str, Any]) -> None:
    """Every takeaway says what it was measured on."""
    assert data["takeaways"]
    for t in data["takeaways"]:
        assert any(e in t["text"] for e in EVIDENCE), t


def check_inputs_sentence(data: dict[str, Any], model: int = 0) -> str:
    """The inputs takeaway against the model's input_importance: the inputs it names with
    their values (within a tenth of the largest, at most 4), how many it leaves out, the
    target, the sequences."""
    m = data["models"][model]
    (t,) = [x for x in _by_code(data, "inputs") if x["model"] == m["name"]]
    text, imp = t["text"], m["input_importance"]
    tokens = imp.get("per_token") is not None
    entries = imp["per_token"] if tokens else imp["features"]
    ranked = sorted(entries, key=lambda f: -f["value"])
    top = ranked[0]["value"] if ranked else 0.0
    strong = [f for f in ranked if top > 0 and f["value"] >= 0.1 * top][:4]
    for f in strong:
        name = f"token {f['token']}" if tokens else f["name"]
        assert f"{name} ({f['value']:.3g})" in text
    rest = 0 if tokens else len(ranked) - len(strong)
    assert (f"the other {rest} change it" in text) == bool(rest and strong)
    target = (
        "the model's prediction"
        if imp["target"] == "model_output"
        else f"the output of {imp['layer']}"
    )
    assert (
        f"importance on {imp['sequences']} probe sequences: mean squared change of {target}" in text
    )
    return str(text)


def check_mechanism_sentence(data: dict[str, Any], model: int = 0) -> list[str]:
    """Each layer's mechanism takeaway against its fixed points, slow manifold and search
    in the JSON, whichever case the sentence is."""
    m = data["models"][model]
    said = {t["layer"]: t["text"] for t in _by_code(data, "mechanism") if t["model"] == m["name"]}
    texts = []
    for la in m["layers"]:
        label = f"{la['name']} ({la['direction']})" if la["wrapper"] else la["name"]
        d = la["dynamics"]
        if d is None or d.get("fixed_point_search") is None:
            assert label not in said
            continue
        text = said[label]
        texts.append(text)
        search = d["fixed_point_search"]
        held = "zero" if search["inputs"] == "zero" else "the probe's mean"
        assert f"input held at {held}, searched from {search['starts']} states" in text
        points, sm = d["fixed_points"], d["slow_manifold"]
        fixed = [p for p in points if p["kind"] == "fixed"]
        slow = [p for p in points if p["kind"] == "slow"]
        stable = [p for p in fixed if p["stable"]]
        if sm is not None:
            check_manifold_clause(text, sm, m["memory_horizon"])
        elif len(fixed) == 1 and stable and not slow:
            modulus = math.hypot(*stable[0]["eigenvalues"][0])
            assert modulus == max(math.hypot(*e) for e in stable[0]["eigenvalues"])
            k = math.ceil(math.log(0.01) / math.log(modulus))
            assert f"within about {k} steps" in text and f"|λ₁| = {modulus:.3f}" in text
        elif len(stable) >= 2:
            assert f"has {len(stable)} stable fixed points" in text
        elif not fixed and not slow:
            assert text.startswith("No fixed or slow point")
        else:
            assert f"({len(stable)} stable) and {len(slow)} slow point" in text
            assert f"has {len(fixed)} fixed point" in text
    assert set(said) <= {
        f"{la['name']} ({la['direction']})" if la["wrapper"] else la["name"] for la in m["layers"]
    }
    return texts


def check_manifold_clause(text: str, sm: dict[str, Any], horizon: dict[str, Any] | None) -> None:
    """A slow manifold's sentence: "accumulates evidence" only when at least 1% of the
    probe's input drive lands on it and the model's measured horizon is not short (under
    a quarter of the sequence, the memory takeaway's rule); otherwise what was measured."""
    assert f"{sm['dimension']}-dimensional slow manifold" in text
    assert f"|λ| = {sm['eigenvalue_near_one']:.3f}" in text
    short = horizon is not None and horizon["steps"] < horizon["of"] / 4
    if horizon is not None:
        quoted = (
            f"the model's measured memory horizon is {horizon['steps']} of {horizon['of']} steps"
        )
        assert quoted in text
    else:
        assert "memory horizon" not in text
    drive = sm["input_drive"]
    used = drive is not None and drive >= 0.01 and not short
    assert ("accumulates evidence rather than forgetting it" in text) == used
    assert ("integrates along" in text) == used
    assert ("line attractor" in text) == (used and sm["dimension"] == 1)
    if drive is None:
        assert "input drive lands on it was not measured" in text
        assert ("not used as memory here" in text) == short
        return
    assert f"{100 * drive:.1f}% of the probe's input drive lands on it" in text
    assert ("that the probe's inputs barely drive" in text) == (drive < 0.01)
    assert ("it is not used as memory here" in text) == (drive < 0.01)
    assert ("the answer does not use what it keeps" in text) == (drive >= 0.01 and short)


def test_mechanism_sentence_states_the_fixed_points(demo: dict[str, Any]) -> None:
    texts = check_mechanism_sentence(demo)
    assert texts
    # the demo's encoder integrates: its inputs drive the slow direction, and the memory
    # the answer uses spans the sequence (27 of 30 steps)
    m = demo["models"][0]
    (encoder,) = [la for la in m["layers"] if la["name"] == "encoder"]
    sm = encoder["dynamics"]["slow_manifold"]
    assert sm is not None and sm["dimension"] == 1 and sm["input_drive"] >= 0.01
    assert m["memory_horizon"]["steps"] >= m["memory_horizon"]["of"] / 4
    (said,) = [t for t in _by_code(demo, "mechanism") if t["layer"] == "encoder"]
    assert "accumulates evidence rather than forgetting it" in said["text"]


def test_memory_sentence_states_the_measured_horizon(demo: dict[str, Any]) -> None:
    text = check_memory_sentence(demo)
    # the demo's target sums over all 30 steps: never "short"
    assert text.startswith("Memory spans the whole sequence") and "is short" not in text


def test_dynamics_sentence_states_the_exponents(demo: dict[str, Any]) -> None:
    assert "is stable on the probe" in check_dynamics_sentence(demo)
    assert not [f for f in demo["findings"] if f["severity"] in ("error", "warning")]


def test_every_takeaway_states_its_evidence(demo: dict[str, Any]) -> None:
    check_evidence(demo)
    check_inputs_sentence(demo)


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


def test_memory_sentence_without_a_horizon_is_an_estimate_said_as_one() -> None:
    import numpy as np

    from lstm_report.analysis.activity import probe_activity
    from lstm_report.analysis.layer import analyse_layer
    from lstm_report.analysis.probing import LayerRun
    from lstm_report.analysis.takeaways import memory_sentence
    from lstm_report.model.layers import RecurrentLayer

    rng = np.random.default_rng(0)
    w = RecurrentLayer.from_keras_arrays(
        "l", "forward", rng.normal(size=(3, 16)), rng.normal(size=(4, 16)), rng.normal(size=16)
    )
    la = analyse_layer(w, None, "a")  # no probe
    text = memory_sentence("m", la)
    assert la.timescales is not None and text is not None
    tau = statistics.median(v for v in la.timescales.resting_tau if v is not None)
    assert f"is {tau:.3g} steps at rest: an estimate from the biases alone" in text
    assert "give the model a probe to measure its memory horizon" in text
    assert "short" not in text
    x = rng.normal(size=(5, 10, 3))
    activity, _ = probe_activity(w, x)
    la = analyse_layer(w, None, "a", run=LayerRun(activity, x))
    text = memory_sentence("m", la)
    assert la.timescales is not None and la.timescales.probe_tau is not None and text
    tau = statistics.median(v for v in la.timescales.probe_tau if v is not None)
    assert f"is {tau:.3g} steps on the probe for sequences of 10 steps" in text
    assert "an estimate from the gate alone" in text and "short" not in text


@pytest.mark.parametrize(
    ("models", "pairs"),
    [
        (("a",), ()),
        (("a", "b"), (("a", "b"),)),
        (("a", "b", "c"), (("a", "b"), ("b", "c"))),
        (("a", "b"), (("a", "b"), ("b", "a"))),
        (("a",), (("a", "x"),)),
    ],
)
def test_headline_models_from_the_report_data_as_from_its_json(
    models: tuple[str, ...], pairs: tuple[tuple[str, str], ...]
) -> None:
    from types import SimpleNamespace as NS

    from lstm_report.analysis.takeaways import headline_models
    from lstm_report.site.numbers import _headline_models as from_json

    report: Any = NS(
        models=tuple(NS(name=n) for n in models),
        comparisons=tuple(NS(baseline=b, candidate=c) for b, c in pairs),
    )
    data = {
        "models": [{"name": n} for n in models],
        "comparisons": [{"baseline": b, "candidate": c} for b, c in pairs],
    }
    assert [m.name for m in headline_models(report)] == [m["name"] for m in from_json(data)]
