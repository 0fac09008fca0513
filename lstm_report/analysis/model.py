"""One model analysed: its planned layers, unit ablation, input importance and notes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace

import numpy as np

from lstm_report.analysis.anchors import layer_anchor, model_anchor, slug
from lstm_report.analysis.conv_lstm import analyse_conv_layer, conv_findings
from lstm_report.analysis.dynamics import memory_horizon
from lstm_report.analysis.layer import analyse_layer
from lstm_report.analysis.model_importance import measured_importance
from lstm_report.analysis.probing import KerasInputs, ProbeFlow
from lstm_report.analysis.spectra import PARALLEL_MIN, spectra_jobs, spectra_pool
from lstm_report.analysis.units import layer_units, model_heads
from lstm_report.cells.base import GateWeights
from lstm_report.model.analyses import InputImportance, LayerAnalysis, ModelAnalysis
from lstm_report.model.checks import Checks
from lstm_report.model.layers import ModelWeights, RecurrentLayer
from lstm_report.model.plan import ModelPlan
from lstm_report.model.stats import GateSpectra


def analyse_model(
    plan: ModelPlan,
    weights: ModelWeights,
    index: int,
    *,
    checks: Checks = Checks(),
    keras_inputs: KerasInputs | None = None,
    probe: np.ndarray | None = None,
) -> ModelAnalysis:
    """Analyse the planned layers of one model (config.resolve.model_plan), with its probe
    data (read by the caller)."""
    layers = plan.layers
    emb = weights.embedding
    if emb is not None:
        layers = tuple(replace(w, reads_embedding=w.source == emb.name) for w in layers)
    flow = None
    if probe is not None and plan.probe_sequence is not None:
        flow = ProbeFlow(weights, probe, plan.probe_sequence, keras_inputs)
    anchor = model_anchor(index, plan.name)
    analysed, warnings = _analyse_layers(plan, layers, anchor, checks, flow)
    heads, whys = model_heads(weights, analysed, probe)
    analysed = [
        replace(la, units=layer_units(la, head, why))
        for la, head, why in zip(analysed, heads, whys)
    ]
    if plan.names_given and plan.feature_names is None:
        kinds = {w.cell.kind for w in layers}  # a GRU is no LSTM
        cells = next(iter(kinds)) if len(kinds) == 1 else "LSTM or GRU"
        warnings.append(
            f"feature_names are not shown: no analysed {cells} reads the model input directly"
        )
    if not weights.layers and not weights.conv_layers:
        warnings.append("the model has no LSTM or GRU layer")
    convs = tuple(
        analyse_conv_layer(c, f"{anchor}-conv{j}-{slug(c.name)}")
        for j, c in enumerate(plan.conv_layers)
    )
    importance, why = _importance(plan, weights, probe, keras_inputs)
    notes = list(weights.notes) + ([f"no input importance on the probe: {why}"] if why else [])
    return ModelAnalysis(
        name=plan.name,
        path=plan.path,
        shown_path=plan.shown_path,
        layers=tuple(analysed),
        others=weights.others,
        conv_layers=convs,
        conv_findings=tuple(f for c in convs for f in conv_findings(plan.name, c)),
        total_params=weights.total_params,
        recurrent_params=sum(w.params for w in layers) + sum(c.params for c in plan.conv_layers),
        reader=weights.reader,
        anchor=anchor,
        notes=tuple(notes + warnings),
        warnings=tuple(warnings),
        input_importance=importance,
        hyper_parameters=weights.hyper_parameters,
        memory_horizon=None
        if importance is None
        else memory_horizon(importance.per_step, per_lag=importance.per_lag),
    )


def _analyse_layers(
    plan: ModelPlan,
    layers: Sequence[RecurrentLayer],
    anchor: str,
    checks: Checks,
    flow: ProbeFlow | None,
) -> tuple[list[LayerAnalysis], list[str]]:
    """Each layer analysed, and the warnings of those the probe does not reach."""
    warnings: list[str] = []
    analysed = []
    with ExitStack() as stack:
        # Large layers: one pool of two threads for the spectra, and single-threaded BLAS
        # for the whole analysis (two BLAS threads spun for nothing on the busy cores:
        # the unit Gram took 0.32 s of CPU against 0.19 s on one, in the same wall time).
        pending = _spectra_on_pool(layers, stack)
        for j, w in enumerate(layers):
            run = flow.run(w) if flow is not None else None
            if run is not None and run.note:
                warnings.append(f"no probe activity for {w.label}: {run.note}")
            analysed.append(
                analyse_layer(
                    w,
                    plan.feature_names,
                    layer_anchor(anchor, j, w),
                    model=plan.name,
                    checks=checks,
                    run=run,
                    pending=pending[j],
                    dynamics=plan.dynamics,
                )
            )
    return analysed, warnings


def _importance(
    plan: ModelPlan,
    weights: ModelWeights,
    probe: np.ndarray | None,
    keras_inputs: KerasInputs | None,
) -> tuple[InputImportance | None, str | None]:
    """The model's input importance on the probe (None without one), or why there is none."""
    if probe is None or not weights.layers:
        return None, None
    # The model's own output: in numpy where the whole model replays, else by Keras
    # where it can run the model; else the last LSTM's output, saying why.
    return measured_importance(
        weights,
        probe,
        plan.feature_names,
        keras_inputs if weights.reader == "keras" or weights.graph is not None else None,
        pad_token=plan.pad_token,
        vocabulary=plan.vocabulary,
    )


def _spectra_on_pool(
    layers: Sequence[RecurrentLayer], stack: ExitStack
) -> list[Callable[[], tuple[GateSpectra, ...]] | None]:
    """Per layer, what computes its spectra on a shared pool, or None (a small layer:
    analyse_layer computes them itself).

    Layer by layer, not all at once: starting the next layer's decompositions while the
    main thread computes this one's statistics and findings saved about 0.2 s of 4.3 s
    on the 2×LSTM(1024) report, and cost 18 MiB of peak memory (170 against 153 MiB)."""
    gates: list[tuple[GateWeights, ...] | None] = [
        w.cell.gates if w.cell.gates[0].U.shape[0] >= PARALLEL_MIN else None for w in layers
    ]
    if not any(g is not None for g in gates):
        return [None] * len(layers)
    pool = stack.enter_context(spectra_pool())

    def later(g: tuple[GateWeights, ...]) -> Callable[[], tuple[GateSpectra, ...]]:
        return lambda: spectra_jobs(g, pool)()

    return [None if g is None else later(g) for g in gates]
