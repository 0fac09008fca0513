"""Pure Python: the page's first lines, plain sentences computed from the analysis.

Each sentence states numbers the report shows in its sections, and links there.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from lstm_report.model import (
    GATE_NAMES,
    Comparison,
    LayerAnalysis,
    ModelAnalysis,
    Takeaway,
)

SHORT_MEMORY = 0.25
"""Memory is short when the median timescale is under this fraction of the sequence."""


def baselines_only(comparisons: Sequence[Comparison]) -> frozenset[str]:
    """Models named only as the "before" of comparisons: they speak through the comparison,
    with no headlines or takeaways of their own."""
    return frozenset(c.baseline for c in comparisons) - {c.candidate for c in comparisons}


def takeaways(
    models: Sequence[ModelAnalysis], comparisons: Sequence[Comparison] = ()
) -> tuple[Takeaway, ...]:
    """What a reviewer asks first: which inputs, how long the memory, saturation, checks."""
    from lstm_report.analysis import importance_sentence

    out: list[Takeaway] = []
    baselines = baselines_only(comparisons)
    for m in models:
        if m.name in baselines:
            continue
        if m.input_importance is not None:
            text = importance_sentence(m.name, m.input_importance)
            out.append(Takeaway("inputs", m.name, None, text, f"{m.anchor}-importance"))
        for la in m.layers:
            memory = memory_sentence(m.name, la)
            if memory is not None:
                out.append(Takeaway("memory", m.name, la.weights.label, memory, la.anchor))
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
                    f"The per-gate matrices of every layer of {m.name} reproduce Keras' own "
                    f"output (largest difference {worst:.1e}).",
                    m.anchor,
                )
            )
    for c in comparisons:
        learned = learned_sentence(c)
        if learned is not None:
            out.append(Takeaway("learned", None, None, learned, c.anchor))
    return tuple(out)


def memory_sentence(model: str, la: LayerAnalysis) -> str | None:
    """The median forget-gate timescale, on the probe where there is one, against its length."""
    t = la.timescales
    if t is None:
        return None
    on_probe = t.probe_tau is not None
    taus = [v for v in (t.probe_tau if t.probe_tau is not None else t.resting_tau) if v is not None]
    if not taus:
        return None
    median = statistics.median(taus)
    where = "on the probe" if on_probe else "at rest (no probe)"
    steps = la.activity.steps if la.activity is not None else None
    length = f" for sequences of {steps} steps" if steps else ""
    if steps and median < SHORT_MEMORY * steps:
        verdict = "Memory is short"
    elif steps and median >= steps:
        verdict = "Memory spans the whole sequence"
    else:
        verdict = "Memory"
    return (
        f"{verdict}: the median {GATE_NAMES[t.gate]}-gate timescale of {model} › "
        f"{la.weights.label} is "
        f"{median:.3g} steps {where}{length}."
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
        f"changed most: the RMS change of {fam}_{gate} is {change_text(change)} times the "
        "gate's RMS weight."
    )


def change_text(value: float) -> str:
    """A change with the digits it needs: 4 significant (1.002, 0.1532), never ``1``."""
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e5 else f"{value:.3e}"
