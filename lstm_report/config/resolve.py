"""The config resolved against the model: which layers, which feature names, which layer
pairs a comparison compares; ConfigError with the key path where they do not fit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from lstm_report.config.schema import ModelSpec
from lstm_report.errors import ConfigError, listing, quote
from lstm_report.model.conv_layers import ConvRecurrentLayer
from lstm_report.model.layers import ModelWeights, RecurrentLayer
from lstm_report.model.plan import LayerPairs, ModelPlan, Side


def model_plan(spec: ModelSpec, weights: ModelWeights) -> ModelPlan:
    """What the analysis of ``weights`` is asked to do by its config entry ``spec``."""
    layers = select_layers(spec, weights)
    return ModelPlan(
        name=spec.name,
        path=spec.path,
        shown_path=spec.shown_path(),
        layers=layers,
        feature_names=feature_names(spec, layers, weights),
        names_given=spec.feature_names is not None,
        probe_sequence=None if spec.probe is None else spec.probe.sequence,
        dynamics=spec.dynamics,
        pad_token=spec.pad_token,
        vocabulary=spec.vocabulary,
        conv_layers=select_conv_layers(spec, weights),
    )


def select_layers(spec: ModelSpec, weights: ModelWeights) -> tuple[RecurrentLayer, ...]:
    """The LSTMs and GRUs the config asks for (all by default), in model order."""
    return _selected(spec, weights, weights.layers)


def select_conv_layers(spec: ModelSpec, weights: ModelWeights) -> tuple[ConvRecurrentLayer, ...]:
    """The Keras ConvLSTM layers the config asks for (all by default), in model order."""
    return _selected(spec, weights, weights.conv_layers)


_Named = TypeVar("_Named", RecurrentLayer, ConvRecurrentLayer)


def _selected(
    spec: ModelSpec, weights: ModelWeights, layers: tuple[_Named, ...]
) -> tuple[_Named, ...]:
    """Those of ``layers`` that ``layers:`` names (every name checked against the model)."""
    if spec.layers is None:
        return layers
    _check_layer_names(spec, weights)
    keep = set(spec.layers)
    return tuple(w for w in layers if w.name in keep)


def _check_layer_names(spec: ModelSpec, weights: ModelWeights) -> None:
    """Raise ConfigError naming the first entry of ``layers:`` that is no analysable layer
    (an LSTM, a GRU or, where the model has one, a ConvLSTM), with the ones there are."""
    convs = [c.name for c in weights.conv_layers]
    available = weights.layer_names() + convs
    kinds = "LSTM, GRU or ConvLSTM" if convs else "LSTM or GRU"
    plural = "LSTM, GRU and ConvLSTM" if convs else "LSTM and GRU"
    others = {o.name: o.kind for o in weights.others}
    names = listing(available, 20)
    for i, wanted in enumerate(spec.layers or ()):
        if wanted in available:
            continue
        where = f"{spec.key}.layers[{i}]"
        if wanted in others:
            raise ConfigError(
                f"{where}: {quote(wanted)} in {spec.path.name} is a {others[wanted]} layer, "
                f"not an {kinds}; {plural} layers: {names}"
            )
        raise ConfigError(
            f"{where}: no {kinds} layer named {quote(wanted)} in {spec.path.name}; "
            f"{plural} layers: {names}"
        )


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


def pair_layers(
    base: Side, cand: Side, where: str, layers: Sequence[tuple[str, str]] | None = None
) -> LayerPairs:
    """Pair the layers of a comparison; shapes must agree. Pairs: those ``layers`` maps
    (baseline name -> candidate name, directions following) and the rest by name; else by
    name and direction; where no name matches, by position if both models have the same
    recurrent layers in order (kinds, units, input sizes, directions). Raises ConfigError
    (``where`` is the comparison's key path) when nothing can be paired, or a pair differs
    in shape."""
    if layers is not None:
        pairs, matched_by = _mapped(base, cand, layers, f"{where}.layers"), "mapping"
    else:
        left = {(w.name, w.direction): w for w in base[1]}
        right = {(w.name, w.direction): w for w in cand[1]}
        pairs = [(w, right[key]) for key, w in left.items() if key in right]
        matched_by = "name"
        if not pairs and _layout(base[1]) == _layout(cand[1]) and base[1]:
            pairs, matched_by = list(zip(base[1], cand[1])), "position"
    if not pairs:
        raise ConfigError(
            f"{where}: no layer of {base[0]!r} matches one of {cand[0]!r} by name, nor by "
            f"position (the recurrent layers differ); {base[0]!r} has {_listing(base[1])}, "
            f"{cand[0]!r} has {_listing(cand[1])}; say which is which with "
            f"{where}.layers: {{BASELINE_LAYER: CANDIDATE_LAYER}}"
        )
    for a, b in pairs:
        check_pair(a, b, where)
    return LayerPairs(tuple(pairs), matched_by)


def check_pair(a: RecurrentLayer, b: RecurrentLayer, where: str) -> None:
    """Raise ConfigError if layer ``a`` of the baseline and ``b`` of the candidate differ in
    shape, kind, bias or projection: they cannot be compared."""
    for arr in ("kernel", "recurrent_kernel"):
        sa, sb = getattr(a, arr).shape, getattr(b, arr).shape
        if sa != sb:
            raise ConfigError(
                f"{where}: layer {a.label!r} has {arr} shape {sa} in the baseline but {sb} "
                "in the candidate; they cannot be compared"
            )
    if a.cell_kind != b.cell_kind or a.reset_after != b.reset_after:
        raise ConfigError(
            f"{where}: layer {a.label!r} is a {a.kind} in the baseline but a {b.kind} in the "
            "candidate; they cannot be compared"
        )
    if any(
        (x.b is None) != (y.b is None) or (x.b_rec is None) != (y.b_rec is None)
        for x, y in zip(a.cell.gates, b.cell.gates)
    ):
        raise ConfigError(f"{where}: layer {a.label!r} has a bias on one side only")
    if a.output_dim != b.output_dim:
        raise ConfigError(f"{where}: layer {a.label!r} has a projection on one side only")


def _mapped(
    base: Side, cand: Side, layers: Sequence[tuple[str, str]], where: str
) -> list[tuple[RecurrentLayer, RecurrentLayer]]:
    """The pairs a ``layers:`` mapping names (each direction of a layer with the same
    direction), then the unmapped layers by name."""
    for b, c in layers:
        for name, (model, weights) in ((b, base), (c, cand)):
            names = list(dict.fromkeys(w.name for w in weights))
            if name not in names:
                raise ConfigError(
                    f"{where}.{b}: no analysed layer {name!r} in {model!r} "
                    f"(layers: {', '.join(names) or 'none'})"
                )
    mapping = dict(layers)
    targets = set(mapping.values())
    right = {(w.name, w.direction): w for w in cand[1]}
    pairs = []
    for w in base[1]:
        if w.name in mapping:
            other = right.get((mapping[w.name], w.direction))
        else:  # by name, unless that candidate layer is another's mapped partner
            other = right.get((w.name, w.direction)) if w.name not in targets else None
        if other is not None:
            pairs.append((w, other))
    return pairs


def _layout(layers: Sequence[RecurrentLayer]) -> list[tuple[object, ...]]:
    """What must agree for layers to be paired by position."""
    return [(w.kind, w.reset_after, w.units, w.input_dim, w.direction) for w in layers]


def _listing(layers: Sequence[RecurrentLayer]) -> str:
    shown = [
        f"{w.label if w.wrapper else w.name} ({w.kind}, {w.units} units, {w.input_dim} inputs)"
        for w in layers
    ]
    return ", ".join(shown) if shown else "no analysed recurrent layer"
