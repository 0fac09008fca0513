"""The summary's answers: which inputs each model uses, and how that was found."""

from __future__ import annotations

from collections.abc import Sequence

from lstm_report.model.analyses import InputImportance, ModelAnalysis, severity_rank
from lstm_report.model.report import Headline


def headlines(
    models: Sequence[ModelAnalysis], skip: frozenset[str] = frozenset()
) -> tuple[Headline, ...]:
    """The summary's answers: which inputs each model uses, and how that was found.

    Importance measured on the probe is the headline where there is one; otherwise the
    weight norms, labelled as what they are: a hint.
    """
    out: list[Headline] = []
    for m in models:
        if m.name in skip:  # e.g. a comparison's baseline: it speaks through the comparison
            continue
        imp = m.input_importance
        if imp is not None:
            out.append(Headline("info", importance_sentence(m.name, imp), f"{m.anchor}-importance"))
            continue
        for la in m.layers:
            ranked = sorted(
                (f for f in la.features or () if f.value is not None), key=lambda f: f.rank
            )
            top = ", ".join(f"{f.name} ({f.value:.3g})" for f in ranked[:3])
            if top:
                out.append(
                    Headline(
                        "info",
                        f"Largest input weights of {m.name} › {la.weights.label} (weight norms, "
                        f"only a hint of what the model uses; give the model a probe to measure "
                        f"it on data): {top}",
                        la.anchor,
                    )
                )
    return tuple(sorted(out, key=lambda h: severity_rank(h.severity)))


def importance_sentence(model: str, imp: InputImportance) -> str:
    """Which inputs matter, in words, with the numbers and how they were measured."""
    ranked = sorted(imp.features, key=lambda f: -f.value)
    top = ranked[0].value if ranked else 0.0
    strong = [f for f in ranked if top > 0 and f.value >= 0.1 * top][:4]
    named = ", ".join(f"{f.name} ({f.value:.3g})" for f in strong)
    rest = len(ranked) - len(strong)
    if imp.target == "model_output":
        target = "the model's prediction"
        where = "on its prediction"
    else:
        target = f"the output of {imp.layer}"
        where = f"on the output of {imp.layer}, not on its prediction"
        if imp.target_reason:
            why = imp.target_reason.split(": ", 1)[-1]
            where += f" ({why})"
    blank = (
        f"replaced by the padding token {imp.pad_token}"
        if imp.per_token is not None
        else "replaced by its mean"
    )
    how = (
        f"importance on {imp.sequences} probe sequences: mean squared change of {target} "
        f"when that input is {blank}"
    )
    if imp.per_token is not None:
        ranked = list(imp.per_token)
        top = ranked[0].value if ranked else 0.0
        strong = [f for f in ranked if top > 0 and f.value >= 0.1 * top][:4]
        named = ", ".join(f"token {f.name} ({f.value:.3g})" for f in strong)
        rest = 0
    if not strong:
        return f"No input of {model} changes {target} on the probe, measured {where} ({how})."
    tail = f"; the other {rest} change it by less than a tenth as much" if rest else ""
    return f"Measured {where}, {model} depends mostly on {named}{tail} ({how})."
