"""Pure numpy: from read weights to everything the report shows."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import numpy as np

from lstm_report.analysis.dynamics import layer_dynamics, memory_horizon
from lstm_report.analysis.findings import layer_findings
from lstm_report.analysis.importance import (
    occlusion_importance,
    sequences_for_work,
    token_importance,
)
from lstm_report.analysis.mechanism import fixed_points, unit_ablation
from lstm_report.analysis.memory import timescales
from lstm_report.analysis.probing import KerasInputs, LayerRun, ProbeFlow
from lstm_report.analysis.spectra import PARALLEL_MIN, gate_spectra, spectra_jobs, spectra_pool
from lstm_report.analysis.stats import feature_importance, gate_stats, matrix_stats
from lstm_report.cells.base import GateWeights, memory_gate
from lstm_report.config.schema import Checks, ModelSpec
from lstm_report.errors import AnalysisError, ConfigError, LstmReportError, listing, quote
from lstm_report.model.analyses import (
    InputImportance,
    LayerAnalysis,
    ModelAnalysis,
    Target,
    severity_rank,
)
from lstm_report.model.layers import ModelWeights, RecurrentLayer
from lstm_report.model.mechanism import Mechanism, UnitAblation
from lstm_report.model.report import Headline
from lstm_report.model.stats import Dynamics, GateSpectra, GateStats, MatrixStats

KEPT_SEQUENCES = 32
"""Probe inputs a layer keeps for verification: enough to expose any mix-up."""


def select_layers(spec: ModelSpec, weights: ModelWeights) -> tuple[RecurrentLayer, ...]:
    """The LSTMs and GRUs the config asks for (all by default), in model order."""
    if spec.layers is None:
        return weights.layers
    available = weights.layer_names()
    others = {o.name: o.kind for o in weights.others}
    names = listing(available, 20)
    for i, wanted in enumerate(spec.layers):
        if wanted in available:
            continue
        where = f"{spec.key}.layers[{i}]"
        if wanted in others:
            raise ConfigError(
                f"{where}: {quote(wanted)} in {spec.path.name} is a {others[wanted]} layer, "
                f"not an LSTM or GRU; LSTM and GRU layers: {names}"
            )
        raise ConfigError(
            f"{where}: no LSTM or GRU layer named {quote(wanted)} in {spec.path.name}; "
            f"LSTM and GRU layers: {names}"
        )
    keep = set(spec.layers)
    return tuple(w for w in weights.layers if w.name in keep)


def feature_names(
    spec: ModelSpec, layers: Sequence[RecurrentLayer], weights: ModelWeights | None = None
) -> tuple[str, ...] | None:
    """Names of the model's input features, checked against the LSTMs that read them, or
    (behind front layers such as Normalization or Conv1D) against the model's input."""
    readers = [w for w in layers if w.reads_input]
    if not readers:
        if weights is None or weights.embedding is not None:
            return None
        dim = weights.input_dim
        if spec.feature_names is not None and dim is not None and len(spec.feature_names) != dim:
            raise ConfigError(
                f"{spec.key}.feature_names: {len(spec.feature_names)} names given, but "
                f"{spec.path.name} takes {dim} input features"
            )
        if spec.feature_names is not None:
            return spec.feature_names
        return None if dim is None else tuple(f"x{j}" for j in range(dim))
    dim = readers[0].input_dim
    for w in readers:
        if spec.feature_names is not None and len(spec.feature_names) != w.input_dim:
            raise ConfigError(
                f"{spec.key}.feature_names: {len(spec.feature_names)} names given, but LSTM "
                f"{w.label!r} in {spec.path.name} reads {w.input_dim} input features"
            )
    if spec.feature_names is not None:
        return spec.feature_names
    return tuple(f"x{j}" for j in range(dim))


def analyse_layer(
    w: RecurrentLayer,
    names: Sequence[str] | None,
    anchor: str,
    *,
    model: str = "",
    checks: Checks = Checks(),
    run: LayerRun | None = None,
    pending: Callable[[], tuple[GateSpectra, ...]] | None = None,
    dynamics: str | None = "zero",
) -> LayerAnalysis:
    """Everything about one layer: statistics, spectra, memory, probe activity, dynamics,
    fixed points, findings. ``pending`` waits for spectra already started
    (``spectra_jobs``); ``dynamics``: the input the fixed points hold (zero or mean), None
    for no dynamics at all."""
    gates = w.cell.gates
    spectra = gate_spectra(gates) if pending is None else pending()
    stats = gate_stats(gates, spectra)
    features = None
    if w.reads_input and names is not None and len(names) == w.input_dim:
        features = feature_importance(w.kernel, gates, names)
    activity = run.activity if run is not None else None
    forget = None  # the memory gate's mean on the probe: f (LSTM) or z (GRU)
    if activity is not None:
        keep = memory_gate(gates).gate
        forget = np.asarray(next(a for a in activity.gates if a.gate == keep).unit_mean)
    la = LayerAnalysis(
        weights=w,
        gates=stats,
        features=features,
        anchor=anchor,
        spectra=spectra,
        timescales=timescales(w, gates, forget),
        activity=activity,
        probe_inputs=None if run is None or run.inputs is None else run.inputs[:KEPT_SEQUENCES],
        projection=None if w.cell.P is None else matrix_stats(w.cell.P),
        dynamics=None if dynamics is None else probe_dynamics(w, run, stats),
        peepholes=peephole_stats(w.cell.peepholes),
    )
    if la.dynamics is not None and run is not None and run.inputs is not None:
        la = replace(la, mechanism=probe_mechanism(w, run.inputs, dynamics or "zero"))
    return with_findings(la, model, checks)


def probe_mechanism(w: RecurrentLayer, x: np.ndarray, inputs: str) -> Mechanism | None:
    """Fixed and slow points of the layer with its input held at zero or at the probe's
    mean (None where the search cannot run: a cell without a derivative here)."""
    try:
        return fixed_points(w.cell, x, inputs=inputs)
    except AnalysisError:
        return None


def layer_units(
    la: LayerAnalysis, model: ModelHead | None = None, why: str | None = None
) -> UnitAblation | None:
    """Unit ablation of the layer on the probe inputs it keeps: on the model's prediction
    where ``model`` (model_heads) replays it, else on the layer's own output (what it
    returns: the sequence, or the last step processed), ``why`` saying why not."""
    x, w = la.probe_inputs, la.weights
    if x is None or la.dynamics is None or x.ndim != 3 or x.shape[1] == 0:
        return None
    backward = w.cell.direction == "backward"

    def own(h: np.ndarray) -> np.ndarray:
        if w.return_sequences:
            return h.reshape(h.shape[0], -1)
        return h[:, 0] if backward else h[:, -1]

    t = la.timescales
    tau = None if t is None else (t.probe_tau if t.probe_tau is not None else t.resting_tau)
    saturated = None
    if la.activity is not None and w.cell.P is None:
        saturated = np.max([np.add(g.unit_left, g.unit_right) for g in la.activity.gates], axis=0)
    head: ModelHead = own
    target = "layer_output"
    reason: str | None = f"measured on the layer's own output: {why or UNITS_REASON}"
    if model is not None:
        head, target, reason = model, "model_output", None
    try:
        return unit_ablation(
            w.cell, x, head, target=target, reason=reason, tau=tau, saturated=saturated
        )
    except AnalysisError as exc:
        if model is None:
            return None
        return layer_units(la, None, f"the model's replay failed ({_first_line(exc)})")


ModelHead = Callable[[np.ndarray], np.ndarray]
"""A layer's h sequences (batch, steps, h), in input time order, to the model's prediction."""


def model_heads(
    weights: ModelWeights, layers: Sequence[LayerAnalysis], probe: np.ndarray | None
) -> tuple[list[ModelHead | None], list[str | None]]:
    """Per layer, what computes the model's prediction from that layer's output with the
    rest of the model replayed in numpy (None where it cannot), and why not."""
    from lstm_report.analysis.model_replay import ModelReplay, replay_problem

    none: list[ModelHead | None] = [None] * len(layers)
    g = weights.graph
    if probe is None or g is None or g.onnx is not None:
        why = (
            "the model's prediction is replayed for unit ablation only from a Keras graph"
            if g is not None
            else "the file stores no model graph to replay"
        )
        return none, [why] * len(layers)
    problem = replay_problem(weights)
    if problem is not None:
        layer, stop = problem
        return none, [f"numpy stops at layer {layer!r}: {stop}" if layer else stop] * len(layers)
    replay = ModelReplay(weights, dtype=np.float32)
    heads: list[ModelHead | None] = []
    whys: list[str | None] = []
    for la in layers:
        w = la.weights
        x = la.probe_inputs
        if w.wrapper is not None:
            heads.append(None)
            whys.append("one half of a Bidirectional: its ablation is measured on its own half")
            continue
        if x is None:
            heads.append(None)
            whys.append("no probe inputs")
            continue
        node = replay.by_name.get(w.name)
        try:
            vals = replay.values(probe[:2], w.name)
        except LstmReportError as exc:
            heads.append(None)
            whys.append(f"the replay stops ({_first_line(exc)})")
            continue
        if (
            node is None
            or vals[w.name][1] is not None
            or any(vals[src][1] is not None for src in node.inputs if src in vals)
        ):
            heads.append(None)
            whys.append("its steps are masked, which the ablation replay does not follow")
            continue
        heads.append(_head(replay, w, probe[: x.shape[0]]))
        whys.append(None)
    return heads, whys


def _head(replay: Any, w: RecurrentLayer, x_model: np.ndarray) -> ModelHead:
    backward = w.cell.direction == "backward"
    n = x_model.shape[0]
    output = replay.graph.output

    def head(hs: np.ndarray) -> np.ndarray:
        k = hs.shape[0] // n
        if not w.return_sequences:
            out = hs[:, 0] if backward else hs[:, -1]
        else:
            out = hs[:, ::-1] if backward else hs  # a lone go_backwards: in reading order
        xs = np.concatenate([x_model] * k) if k > 1 else x_model
        y = replay.values(xs, output, given={w.name: (out, None)})[output][0]
        return np.asarray(y).reshape(hs.shape[0], -1)

    return head


UNITS_REASON = "the whole model is not replayed in numpy here"


def probe_dynamics(
    w: RecurrentLayer, run: LayerRun | None, stats: Sequence[GateStats]
) -> Dynamics | None:
    """Lyapunov exponents and Jacobian decay of the layer driven by its probe inputs; None
    without them, with non-finite weights, or an activation without a derivative here."""
    if run is None or run.inputs is None or run.inputs.ndim != 3 or run.inputs.shape[1] == 0:
        return None
    parts = [m for g in stats for m in (g.W, g.U, g.b, g.b_rec) if m is not None]
    if any(m.nonfinite for m in parts):
        return None
    try:
        return layer_dynamics(w.cell, run.inputs)
    except AnalysisError:
        return None


def peephole_stats(peepholes: np.ndarray | None) -> tuple[tuple[str, MatrixStats], ...]:
    """Statistics of each peephole vector, P_i, P_f, P_o (empty without peepholes)."""
    if peepholes is None:
        return ()
    return tuple((f"P_{g}", matrix_stats(row)) for g, row in zip("ifo", peepholes))


def with_findings(la: LayerAnalysis, model: str, checks: Checks) -> LayerAnalysis:
    """The layer with its health findings, from what has been computed about it so far."""
    findings = layer_findings(
        model=model,
        w=la.weights,
        anchor=la.anchor,
        gates=la.weights.cell.gates,
        stats=la.gates,
        spectra=la.spectra,
        verification=la.verification,
        activity=la.activity,
        checks=checks,
        dynamics=la.dynamics,
    )
    return replace(la, findings=findings)


def analyse_model(
    spec: ModelSpec,
    weights: ModelWeights,
    index: int,
    *,
    checks: Checks = Checks(),
    keras_inputs: KerasInputs | None = None,
    probe: np.ndarray | None = None,
) -> ModelAnalysis:
    """Analyse the configured layers of one model, with its probe data (read by the caller)."""
    layers = select_layers(spec, weights)
    emb = weights.embedding
    if emb is not None:
        layers = tuple(replace(w, reads_embedding=w.source == emb.name) for w in layers)
    names = feature_names(spec, layers, weights)
    flow = None
    if probe is not None and spec.probe is not None:
        flow = ProbeFlow(weights, probe, spec.probe.sequence, keras_inputs)
    anchor = f"m{index}-{slug(spec.name)}"
    notes: list[str] = list(weights.notes)
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
                    names,
                    f"{anchor}-l{j}-{slug(w.name)}-{w.direction}",
                    model=spec.name,
                    checks=checks,
                    run=run,
                    pending=pending[j],
                    dynamics=spec.dynamics,
                )
            )
    heads, whys = model_heads(weights, analysed, probe)
    analysed = [
        replace(la, units=layer_units(la, head, why))
        for la, head, why in zip(analysed, heads, whys)
    ]
    if spec.feature_names is not None and names is None:
        warnings.append(
            "feature_names are not shown: no analysed LSTM reads the model input directly"
        )
    if not weights.layers:
        warnings.append("the model has no LSTM or GRU layer")
    importance = None
    if probe is not None and weights.layers:
        # The model's own output: in numpy where the whole model replays, else by Keras
        # where it can run the model; else the last LSTM's output, saying why.
        importance, why = measured_importance(
            weights,
            probe,
            names,
            keras_inputs if weights.reader == "keras" or weights.graph is not None else None,
            pad_token=spec.pad_token,
            vocabulary=spec.vocabulary,
        )
        if why:
            notes.append(f"no input importance on the probe: {why}")
    return ModelAnalysis(
        name=spec.name,
        path=spec.path,
        shown_path=spec.shown_path(),
        layers=tuple(analysed),
        others=weights.others,
        total_params=weights.total_params,
        recurrent_params=sum(w.params for w in layers),
        reader=weights.reader,
        anchor=anchor,
        notes=tuple(notes + warnings),
        warnings=tuple(warnings),
        input_importance=importance,
        hyper_parameters=weights.hyper_parameters,
        memory_horizon=None if importance is None else memory_horizon(importance.per_step),
    )


def _spectra_on_pool(
    layers: Sequence[RecurrentLayer], stack: ExitStack
) -> list[Callable[[], tuple[GateSpectra, ...]] | None]:
    """Per layer, what computes its spectra on a shared pool, or None (computed by
    analyse_layer itself: a small layer, or one whose arrays are not its kind's, which
    analyse_layer reports).

    Layer by layer, not all at once: starting the next layer's decompositions while the
    main thread computes this one's statistics and findings saved about 0.2 s of 4.3 s
    on the 2×LSTM(1024) report, and cost 18 MiB of peak memory (170 against 153 MiB)."""
    gates: list[tuple[GateWeights, ...] | None] = []
    for w in layers:
        try:
            g = w.cell.gates
        except AnalysisError:
            g = None
        gates.append(g if g and g[0].U.shape[0] >= PARALLEL_MIN else None)
    if not any(g is not None for g in gates):
        return [None] * len(layers)
    pool = stack.enter_context(spectra_pool())

    def later(g: tuple[GateWeights, ...]) -> Callable[[], tuple[GateSpectra, ...]]:
        return lambda: spectra_jobs(g, pool)()

    return [None if g is None else later(g) for g in gates]


def measured_importance(
    weights: ModelWeights,
    probe: np.ndarray,
    names: Sequence[str] | None,
    run_model: KerasInputs | None = None,
    *,
    pad_token: int = 0,
    vocabulary: Sequence[str] | None = None,
) -> tuple[InputImportance | None, str | None]:
    """Occlusion importance on the probe, measured on the model's prediction wherever the
    whole model runs: replayed in numpy (a Keras graph, an ONNX graph), else by Keras
    (``run_model``, where it can load the file); otherwise on the output of the last
    recurrent layer, replayed in numpy, with ``target_reason`` saying why. Token models
    (integer probes) get ``per_token`` and ``per_step`` with ``pad_token`` as the blank.
    Returns the importance, or None and why it cannot be measured."""
    from lstm_report.analysis.model_replay import model_forward

    last = weights.layers[-1].name
    tokens = probe.dtype.kind in "iu"
    forward, stopped = model_forward(weights)
    reason: str | None = None
    if forward is not None:
        try:
            forward(probe[:2])
        except LstmReportError as exc:
            forward, stopped = None, _first_line(exc)
        else:
            reason, stopped = stopped, None  # how the prediction was taken, if it says
    framework = weights.reader in ("onnx", "pytorch")
    if forward is None and run_model is not None:
        keras_model = run_model

        def by_keras(x: np.ndarray) -> np.ndarray:
            return keras_model(None, x)

        try:
            by_keras(probe[:2])  # can Keras load and run it? (LstmReportError if not)
        except LstmReportError as exc:
            reason = (
                f"{stopped}, and Keras could not run the model ({_first_line(exc)})"
                if stopped
                else f"Keras could not run the model ({_first_line(exc)})"
            )
        else:
            forward = by_keras
            reason = f"run by Keras: {stopped}" if stopped else "run by Keras"
    elif forward is None and framework:
        reason = stopped or "the file stores the recurrent layers, not the whole model"
    elif forward is None:
        reason = f"{stopped}; --reader keras runs the whole model with Keras" if stopped else None
    if forward is not None:
        target: Target = "model_output"
        layer = None
    else:
        target, layer = "lstm_output", last
        flow_forward = _lstm_forward(weights, last)
        if flow_forward is None:
            return None, f"the input of LSTM {last!r} cannot be computed in numpy"
        forward = flow_forward
        reason = f"measured on the output of {last!r}, not the model's prediction: {reason}"
    try:
        if tokens:
            imp = token_importance(
                forward, probe, pad=pad_token, target=target, layer=layer, names=vocabulary
            )
        else:
            features = probe.shape[2]
            if names is not None and len(names) == features:
                labels = tuple(names)
            else:
                labels = tuple(f"x{j}" for j in range(features))
            # Fewer sequences where the occlusion runs would exceed their work budget.
            cap = sequences_for_work(
                [w.cell for w in weights.layers], probe.shape[0], probe.shape[1], features
            )
            imp = occlusion_importance(
                forward, probe, labels, target=target, layer=layer, max_sequences=cap
            )
    except _Unreachable:
        return None, f"the input of LSTM {last!r} cannot be computed in numpy"
    except LstmReportError as exc:
        return None, f"the model could not be run on the probe: {_first_line(exc)}"
    return replace(imp, target_reason=reason, probe_sequences=int(probe.shape[0])), None


def _lstm_forward(weights: ModelWeights, last: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """The last recurrent layer's output on inputs, replayed in numpy (None: its input
    cannot be computed in numpy)."""

    def forward(x: np.ndarray) -> np.ndarray:
        out = ProbeFlow(weights, x, 0, None, activity=False).output(last)
        if out is None:
            raise _Unreachable
        return out

    return forward


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class _Unreachable(Exception):
    """The target layer's output needs layers numpy does not replay."""


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


def slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:40] or "x"
