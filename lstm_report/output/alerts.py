"""``--fail-if``: a parsed condition (output/fail_if.py) evaluated on a report's headline
numbers (output/numbers.py), as the index and the summary state them."""

from __future__ import annotations

from collections.abc import Sequence

from lstm_report.analysis.takeaways import headline_models
from lstm_report.errors import ExpressionError, quote
from lstm_report.model.analyses import ModelAnalysis
from lstm_report.model.report import ReportData
from lstm_report.output.fail_if import Condition, Expr, Not, Number, Quantity, Relation
from lstm_report.output.numbers import finite, numbers


def resolve(q: Quantity, report: ReportData) -> float:
    """The value of one quantity in a report; ExpressionError where the report has none
    (say why, and what would give it)."""
    n = numbers(report)
    heads = headline_models(report)
    plain: dict[str, float | int | None] = {
        "max_spectral_radius": n.largest_radius,
        "memory_tau": n.memory_tau,
        "max_relative_change": None if n.change is None else n.change.value,
        "findings": n.findings,
        "errors": n.errors,
        "warnings": n.warnings,
        "models": n.models,
        "layers": n.layers,
        "lstm_params": n.lstm_params,
    }
    if q.name == "importance":
        assert q.key is not None
        return _importance(q.key, heads)
    if q.name == "memory_horizon":
        for m in heads:
            horizon = m.memory_horizon
            if horizon is not None and finite(horizon.steps) is not None:
                return float(horizon.steps)
        raise ExpressionError(
            "memory_horizon: the report has no memory horizon; it is measured on a probe "
            "(give the model a probe: --probe PATH, or probe: in the config)"
        )
    value = plain[q.name]
    if value is None:
        why = {
            "max_spectral_radius": "no recurrent matrix has a finite spectral radius",
            "memory_tau": "no layer has forget-gate timescales",
            "max_relative_change": "the report compares no models (compare: in the config, "
            "or --baseline)",
        }[q.name]
        raise ExpressionError(f"{q.name}: the report has no value: {why}")
    return float(value)


def _importance(feature: str, heads: Sequence[ModelAnalysis]) -> float:
    """Measured importance where a model has it, else the weight norm of the first layer
    that reads the input (as the summary's 'Top input')."""
    names: list[str] = []
    for m in heads:
        for f in m.input_importance.features if m.input_importance else ():
            names.append(f.name)
            if f.name == feature and (value := finite(f.value)) is not None:
                return value
    if not names:
        for m in heads:
            for la in m.layers:
                for fn in la.features or ():
                    names.append(fn.name)
                    if fn.name == feature and (value := finite(fn.value)) is not None:
                        return value
                if names:
                    break
            if names:
                break
    if feature in names:
        raise ExpressionError(f"importance[{feature}]: the importance is not a finite number")
    shown = ", ".join(dict.fromkeys(names)) or "none: no layer reads the model input"
    raise ExpressionError(
        f"importance[{feature}]: no input feature {quote(feature)} (inputs: {shown})"
    )


_COMPARE = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _eval(expr: Expr, report: ReportData) -> bool:
    if isinstance(expr, Relation):
        a, b = (
            v.value if isinstance(v, Number) else resolve(v, report)
            for v in (expr.left, expr.right)
        )
        return bool(_COMPARE[expr.op](a, b))
    if isinstance(expr, Not):
        return not _eval(expr.item, report)
    # every item is evaluated: a quantity the report lacks is an error wherever it is
    values = [_eval(e, report) for e in expr.items]
    return all(values) if expr.all else any(values)


def evaluate(condition: Condition, report: ReportData) -> bool:
    """Whether the condition holds for a report."""
    try:
        return _eval(condition.expr, report)
    except ExpressionError as exc:
        raise ExpressionError(f"--fail-if {quote(condition.text)}: {exc}") from None


def failing(conditions: Sequence[Condition], report: ReportData) -> list[Condition]:
    """The conditions that hold (each is evaluated, so that every bad one is reported)."""
    return [c for c in conditions if evaluate(c, report)]
