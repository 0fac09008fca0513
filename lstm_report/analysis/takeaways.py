"""Pure Python: the page's first lines, plain sentences computed from the analysis.

Each sentence states numbers the report shows in its sections, and links there.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from lstm_report.analysis.answers import importance_sentence
from lstm_report.model.analyses import LayerAnalysis, ModelAnalysis
from lstm_report.model.layers import GATE_NAMES
from lstm_report.model.mechanism import MemoryHorizon, SlowManifold
from lstm_report.model.report import ReportData, Takeaway
from lstm_report.model.stats import Verification
from lstm_report.model.training import Comparison

SHORT_MEMORY = 0.25
"""Memory is short when the median timescale is under this fraction of the sequence."""


def baselines_only(comparisons: Sequence[Comparison]) -> frozenset[str]:
    """Models named only as the "before" of comparisons: they speak through the comparison,
    with no headlines or takeaways of their own."""
    return frozenset(c.baseline for c in comparisons) - {c.candidate for c in comparisons}


def headline_models(report: ReportData) -> tuple[ModelAnalysis, ...]:
    """The models that speak for themselves, whose numbers head the report: all but those
    only a comparison's baseline (baselines_only); all of them if every one is."""
    baselines = baselines_only(report.comparisons)
    return tuple(m for m in report.models if m.name not in baselines) or report.models


def takeaways(
    models: Sequence[ModelAnalysis], comparisons: Sequence[Comparison] = ()
) -> tuple[Takeaway, ...]:
    """What a reviewer asks first: which inputs, how long the memory, saturation, checks."""
    out: list[Takeaway] = []
    baselines = baselines_only(comparisons)
    for m in models:
        if m.name in baselines:
            continue
        if m.input_importance is not None:
            text = importance_sentence(m.name, m.input_importance)
            out.append(Takeaway("inputs", m.name, None, text, f"{m.anchor}-importance"))
        if m.memory_horizon is not None and m.input_importance is not None:
            text = horizon_sentence(m)
            out.append(Takeaway("memory", m.name, None, text, f"{m.anchor}-importance"))
        else:
            for la in m.layers:
                memory = memory_sentence(m.name, la)
                if memory is not None:
                    out.append(Takeaway("memory", m.name, la.weights.label, memory, la.anchor))
        dynamics = dynamics_sentence(m)
        if dynamics is not None:
            out.append(Takeaway("dynamics", m.name, None, dynamics, m.anchor))
        for la in m.layers:
            mech = mechanism_sentence(m.name, la, m.memory_horizon)
            if mech is not None:
                out.append(Takeaway("mechanism", m.name, la.weights.label, mech, la.anchor))
        saturation = saturation_sentence(m)
        if saturation is not None:
            out.append(Takeaway("saturation", m.name, None, saturation, m.anchor))
        verified = [la.verification for la in m.layers if la.verification is not None]
        if verified and all(v.ok for v in verified):
            worst = max(v.max_abs_error or 0.0 for v in verified)
            out.append(
                Takeaway(
                    "verified",
                    m.name,
                    None,
                    f"The per-gate matrices of {_which_layers(m, len(verified))} reproduce "
                    f"Keras' own output on {_inputs(verified)} (largest difference {worst:.1e}).",
                    m.anchor,
                )
            )
    for c in comparisons:
        learned = learned_sentence(c)
        if learned is not None:
            out.append(Takeaway("learned", None, None, learned, c.anchor))
    return tuple(out)


def _which_layers(m: ModelAnalysis, verified: int) -> str:
    """ "every layer of m", or which of its analysed layers were replayed against Keras."""
    total = len(m.layers) + len(m.conv_layers)
    if verified == total:
        return f"every layer of {m.name}"
    if verified == len(m.layers):
        return (
            f"every LSTM and GRU layer of {m.name} (its ConvLSTM layers are not replayed "
            "against Keras)"
        )
    return f"{verified} of the {total} analysed layers of {m.name} (the others were not replayed)"


DISAGREE = 2.0
"""The measured horizon and the gate timescale disagree when one is more than this many
times the other."""


def median_tau(la: LayerAnalysis) -> tuple[float, bool] | None:
    """The layer's median memory-gate timescale, and whether it is the probe's (f averaged
    over the probe) rather than the resting one (f = act(b_f))."""
    t = la.timescales
    if t is None:
        return None
    on_probe = t.probe_tau is not None
    taus = [v for v in (t.probe_tau if t.probe_tau is not None else t.resting_tau) if v is not None]
    if not taus:
        return None
    return statistics.median(taus), on_probe


def horizon_sentence(m: ModelAnalysis) -> str:
    """Memory measured on the probe (the horizon of the per-step importance), against the
    sequence length, with the gate timescales as the weight-side estimate beside it."""
    h, imp = m.memory_horizon, m.input_importance
    assert h is not None and imp is not None
    k, steps = h.steps, h.of
    whole = k >= h.share * steps  # as spread as an even importance over every step, or more
    answer = f"each step of {m.name}'s answer" if h.by == "lag" else f"{m.name}'s answer"
    reach = (
        f"the inputs within {k} steps of it, of {steps}"
        if h.by == "lag"
        else f"the last {k} of {steps} steps"
    )
    if short_horizon(h):
        verdict = f"Memory is short: {answer} depends on {reach}"
    elif whole:
        verdict = (
            f"Memory spans the whole sequence: {answer} depends on steps throughout all {steps}"
        )
    else:
        verdict = f"Memory reaches back {k} of {steps} steps in {answer}"
    target = "the model's output" if imp.target == "model_output" else f"the output of {imp.layer}"
    if h.by == "lag":  # a sequence target: how far each output's dependence reaches
        how = (
            f"{target} is a sequence, and the inputs within {k} steps of each of its steps "
            f"carry {h.share:.0%} of the per-step importance"
        )
    else:
        how = f"the last {k} steps carry {h.share:.0%} of the per-step importance for {target}"
    text = f"{verdict} (measured on {imp.sequences} probe sequences: {how})."
    taus = [(la.weights.label, median_tau(la)) for la in m.layers]
    known = [(name, t[0]) for name, t in taus if t is not None]
    if not known:
        return text
    letter = next((la.timescales.gate for la in m.layers if la.timescales is not None), "f")
    gate = GATE_NAMES[letter]
    listed = ", ".join(f"{v:.3g} steps in {name}" for name, v in known)
    on_probe = all(t is not None and t[1] for _, t in taus)
    basis = (
        f"{letter} averaged over the probe" if on_probe else f"{letter} at rest, from the biases"
    )
    text += (
        f" The weight-side estimate, the median {gate}-gate timescale τ = 1/(1 − {letter}) "
        f"({basis}), is {listed}."
    )
    short = [name for name, v in known if k > DISAGREE * v]
    long = [name for name, v in known if v > DISAGREE * k and not whole]
    if short:
        text += (
            f" That is more than {DISAGREE:g}× shorter than the measured horizon in "
            f"{', '.join(short)}: trust the measured horizon; τ counts only what a unit keeps "
            "by itself, not what the recurrent weights write back into the state."
        )
    if long:
        text += (
            f" That is more than {DISAGREE:g}× longer than the measured horizon in "
            f"{', '.join(long)}: trust the measured horizon for what the answer uses; the "
            "gates could keep more than the model reads back."
        )
    return text


def memory_sentence(model: str, la: LayerAnalysis) -> str | None:
    """The median memory-gate timescale where the horizon could not be measured: an
    estimate from the gate, said as one, with how to measure the memory instead."""
    t = la.timescales
    found = median_tau(la)
    if t is None or found is None:
        return None
    median, on_probe = found
    gate = GATE_NAMES[t.gate]
    head = f"The median {gate}-gate timescale of {model} › {la.weights.label} is {median:.3g} steps"
    if on_probe:
        steps = la.activity.steps if la.activity is not None else None
        length = f" for sequences of {steps} steps" if steps else ""
        return (
            f"{head} on the probe{length}: an estimate from the gate alone (τ = 1/(1 − "
            f"{t.gate}), {t.gate} averaged over the probe), not a measurement of what the model "
            "remembers (its per-step importance could not be computed)."
        )
    return (
        f"{head} at rest: an estimate from the biases alone (τ = 1/(1 − {t.gate}), "
        f"{t.gate} = the gate's activation of its bias with no input), not a measurement; "
        "give the model a probe to measure its memory horizon from the per-step importance."
    )


def dynamics_sentence(m: ModelAnalysis) -> str | None:
    """Whether the state is stable on the probe, by its largest Lyapunov exponent."""
    measured = [la for la in m.layers if la.dynamics is not None]
    if not measured:
        return None
    unstable = [la for la in measured if la.dynamics is not None and la.dynamics.unstable]
    seqs = max(la.dynamics.sequences for la in measured if la.dynamics is not None)
    listed = ", ".join(
        f"{la.dynamics.largest:+.3g} in {la.weights.label}"
        for la in measured
        if la.dynamics is not None
    )
    how = f"largest Lyapunov exponent per step, on up to {seqs} probe sequences: {listed}"
    if unstable:
        names = ", ".join(la.weights.label for la in unstable)
        return (
            f"The state of {m.name} diverges on the probe in {names} ({how}): small "
            "differences grow from step to step; see the unstable-dynamics findings."
        )
    return f"The state of {m.name} is stable on the probe: small perturbations die out ({how})."


DRIVEN = 0.01
"""A slow manifold is used as memory only when at least this share of the probe's input
drive lands on its slow modes (SlowManifold.input_drive)..."""


def short_horizon(h: MemoryHorizon) -> bool:
    """...and the measured horizon is not short (the memory takeaway's rule)."""
    return h.steps < SHORT_MEMORY * h.of


def manifold_sentence(name: str, sm: SlowManifold, horizon: MemoryHorizon | None, how: str) -> str:
    """A slow manifold, said to accumulate evidence only when the probe's inputs drive it
    and the measured horizon agrees; otherwise what was measured."""
    dirs = f"{sm.dimension} slow direction{'s' if sm.dimension != 1 else ''}, "
    has = f"{name} has a {sm.dimension}-dimensional slow manifold ({dirs}"
    lam = f"|λ| = {sm.eigenvalue_near_one:.3f}"
    measured = (
        ""
        if horizon is None
        else f"the model's measured memory horizon is {horizon.steps} of {horizon.of} steps"
    )
    tail = f"{how}; {measured}" if measured else how
    short = horizon is not None and short_horizon(horizon)
    if sm.input_drive is None:
        verdict = "it is not used as memory here" if short else "it can hold a value"
        return (
            f"{has}{lam}): {verdict}; how much of the probe's input drive lands on it was "
            f"not measured ({tail})."
        )
    share = f"{sm.input_drive:.1%} of the probe's input drive lands on it"
    if sm.input_drive < DRIVEN:
        return (
            f"{has}{lam}) that the probe's inputs barely drive ({share}): it is not used as "
            f"memory here ({tail})."
        )
    if short:
        return (
            f"{has}{lam}) that the probe's inputs drive ({share}), but {measured}: the answer "
            f"does not use what it keeps ({how})."
        )
    what = "a line attractor, " if sm.dimension == 1 else ""
    return (
        f"{name} integrates along a {sm.dimension}-dimensional slow manifold ({what}{dirs}"
        f"{lam}; {share}): it accumulates evidence rather than forgetting it ({tail})."
    )


RETURN_SHARE = 0.01
"""A trajectory has returned to a fixed point when its distance is this share of the start."""


def return_steps(modulus: float) -> int | None:
    """Steps for the slowest mode (|λ| = modulus < 1) to shrink to RETURN_SHARE."""
    if not 0 < modulus < 1:
        return None
    return max(1, math.ceil(math.log(RETURN_SHARE) / math.log(modulus)))


def mechanism_sentence(
    model: str, la: LayerAnalysis, horizon: MemoryHorizon | None = None
) -> str | None:
    """What the fixed points and the slow manifold say the layer does, with their numbers
    (``horizon``: the model's measured memory, where there is one)."""
    mech = la.mechanism
    if mech is None:
        return None
    name = f"{model} › {la.weights.label}"
    held = "zero" if mech.inputs == "zero" else "the probe's mean"
    how = (
        f"fixed points with the input held at {held}, searched from {mech.starts} states of "
        "the probe's trajectories"
    )
    fixed = [p for p in mech.fixed_points if p.kind == "fixed"]
    slow = [p for p in mech.fixed_points if p.kind == "slow"]
    stable = [p for p in fixed if p.stable]
    sm = mech.slow_manifold
    if sm is not None:
        return manifold_sentence(name, sm, horizon, how)
    if len(fixed) == 1 and stable and not slow:
        lam = stable[0].eigenvalues[0] if stable[0].eigenvalues else (0.0, 0.0)
        modulus = math.hypot(*lam)
        k = return_steps(modulus)
        if k is None:
            return f"{name} has a single stable fixed point ({how})."
        return (
            f"{name} has a single stable fixed point; trajectories return to it within about "
            f"{k} steps (to {RETURN_SHARE:.0%} of their distance: |λ₁| = {modulus:.3f}; {how})."
        )
    if len(stable) >= 2:
        unstable = len(fixed) - len(stable)
        saddles = f" and {unstable} unstable between them" if unstable else ""
        return (
            f"{name} has {len(stable)} stable fixed points{saddles}: the state settles into "
            f"one of them, a memory of which it last reached ({how})."
        )
    if not fixed and not slow:
        return f"No fixed or slow point of {name} was found ({how})."
    return (
        f"{name} has {len(fixed)} fixed point{'s' if len(fixed) != 1 else ''} "
        f"({len(stable)} stable) and {len(slow)} slow point{'s' if len(slow) != 1 else ''}, "
        f"with no slow manifold ({how})."
    )


def saturation_sentence(m: ModelAnalysis) -> str | None:
    """Whether any gate saturates on the probe (only said where there was a probe)."""
    probed = [la for la in m.layers if la.activity is not None]
    if not probed:
        return None
    stuck = [f for la in probed for f in la.findings if f.code == "saturated-units"]
    if not stuck:
        return f"No gate of {m.name} saturates on the probe."
    layers = ", ".join(sorted({f.layer or m.name for f in stuck}))
    return f"Some units of {m.name} saturate on the probe, in {layers}: see the findings."


def _inputs(verified: Sequence[Verification]) -> str:
    kinds = {v.inputs for v in verified}
    if kinds == {"probe"}:
        return "the probe's inputs"
    return "random inputs" if kinds == {"random"} else "the probe's and random inputs"


def learned_sentence(c: Comparison) -> str | None:
    """Which gate changed most between two models: the largest ``change`` of any of its
    matrices or biases (RMS of the change over the gate's RMS parameter)."""
    best: tuple[float, str, str, str] | None = None
    for ld in c.layers:
        for g in ld.gates:
            for fam, d in (("W", g.W), ("U", g.U), ("b", g.b), ("b_rec", g.b_rec)):
                if d is not None and d.change is not None:
                    if best is None or d.change > best[0]:
                        best = (d.change, g.gate, ld.label, fam)
    if best is None:
        return None
    change, gate, layer, fam = best
    return (
        f"Between {c.baseline} and {c.candidate} the {GATE_NAMES[gate]} gate of {layer} "
        f"changed most (from the weights): the RMS change of {fam}_{gate} is "
        f"{change_text(change)} times the gate's RMS weight."
    )


def change_text(value: float) -> str:
    """A change with the digits it needs: 4 significant (1.002, 0.1532), never ``1``."""
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"
