"""The dataclasses passed between pipeline stages: what was read, what was computed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from lstm_report.cells import GATE_TITLES, CellWeights, Kind, from_keras, gates_of
from lstm_report.model_graph import ModelGraph

if TYPE_CHECKING:
    from lstm_report.baseline import SavedComparison

GATES: tuple[str, ...] = ("i", "f", "c", "o")
"""Keras' LSTM gate order inside the concatenated kernel, recurrent kernel and bias (a
GRU's is z, r, h: iterate over a layer's ``gate_names``, never over this)."""

GATE_NAMES: dict[str, str] = GATE_TITLES
"""Gate letter -> name for LSTM (i, f, c, o) and GRU (z, r, h) gates alike."""


Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
"""Worst first: the one order for sorting findings and headlines and for --fail-on."""


def severity_rank(severity: Severity) -> int:
    """0 for the worst (error); sorts findings and headlines worst first."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True, eq=False)
class LSTMWeights:
    """One direction of one recurrent layer (an LSTM or a GRU, of any framework).

    Keras readers give the layer's three arrays; ``cell`` splits them into the gates of its
    kind. Framework readers (PyTorch, ONNX) give the cell itself (``cell_weights``: two
    biases per gate, a projection), and the three arrays are its gates side by side with
    the biases added. Everything downstream reads the gates from ``cell``.
    """

    name: str
    """Path inside the model: ``lstm``, ``encoder/inner_lstm``, ``bi`` (a Bidirectional)."""
    direction: str
    """``forward`` or ``backward`` (the backward half of a Bidirectional, or go_backwards)."""
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray | None
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    go_backwards: bool = False
    return_sequences: bool = False
    wrapper: str | None = None
    """``Bidirectional`` when the layer is one half of a wrapper."""
    reads_input: bool = False
    """True when the layer reads the model's input (directly or through masking/dropout)."""
    unit_forget_bias: bool = True
    source: str | None = None
    """Path of the layer whose output this LSTM reads (None when it reads the model input)."""
    merge_mode: str | None = None
    """How a Bidirectional merges its halves (concat, sum, mul, ave), else None."""
    kind: str = "LSTM"
    """``LSTM``, ``GRU``, or ``CuDNNLSTM``/``CuDNNGRU`` for Keras 2 GPU weights converted to
    the plain layer's layout."""
    reset_after: bool | None = None
    """GRU only: where the reset gate acts (see cells.CellWeights.reset_after)."""
    cell_weights: CellWeights | None = None
    """The cell as a framework reader found it; None: built from the Keras arrays."""
    framework: str = "Keras"
    """Who computes this layer: ``Keras``, ``PyTorch``, ``ONNX``."""
    reads_embedding: bool = False
    """Its input is the model's Embedding: the rows of W are embedding dimensions."""

    @property
    def cell_kind(self) -> Kind:
        return "GRU" if self.kind.endswith("GRU") else "LSTM"

    @cached_property
    def cell(self) -> CellWeights:
        """The layer's gates, in its kind's canonical order (AnalysisError if malformed)."""
        if self.cell_weights is not None:
            return self.cell_weights
        return from_keras(
            self.cell_kind,
            self.kernel,
            self.recurrent_kernel,
            self.bias,
            name=self.label,
            direction="backward" if self.go_backwards else "forward",
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            reset_after=self.reset_after,
        )

    def __getstate__(self) -> dict[str, object]:
        # The cached cell holds views of kernel and recurrent_kernel; pickled, every view
        # becomes a copy, and another process would receive each weight twice (a 1024-unit
        # layer: 64 MiB instead of 32). The receiver builds its cell again, from views.
        state = dict(self.__dict__)
        state.pop("cell", None)
        return state

    @property
    def gate_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in gates_of(self.cell_kind))

    @property
    def units(self) -> int:
        return self.cell.units

    @property
    def input_dim(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def output_dim(self) -> int:
        """Size of the layer's output h: units, or the projection size."""
        return self.cell.output_dim

    @property
    def use_bias(self) -> bool:
        return self.bias is not None

    @property
    def params(self) -> int:
        return self.cell.params

    @property
    def label(self) -> str:
        """Human label: the name, plus the direction for a Bidirectional half."""
        return f"{self.name} ({self.direction})" if self.wrapper else self.name


@dataclass(frozen=True)
class OtherLayer:
    """A recurrent layer that is neither an LSTM nor a GRU (ConvLSTM, SimpleRNN, CuDNNGRU, a
    PyTorch nn.RNN): listed in the report, not analysed."""

    name: str
    kind: str
    units: int | None = None
    note: str | None = None
    """Why it is not analysed, where the reader says more than its kind."""


@dataclass(frozen=True, eq=False)
class Embedding:
    """An Embedding that reads the model input: the model takes token ids, not features."""

    name: str
    table: np.ndarray | None
    """(vocabulary, dimension), where the reader could read it; else Keras computes lookups."""
    vocab: int | None
    mask_zero: bool = False


@dataclass(frozen=True, eq=False)
class ModelWeights:
    """Everything a reader extracted from one model file."""

    name: str
    path: Path
    lstms: tuple[LSTMWeights, ...]
    others: tuple[OtherLayer, ...] = ()
    total_params: int | None = None
    input_dim: int | None = None
    reader: str = "keras"
    keras_version: str | None = None
    notes: tuple[str, ...] = ()
    """What the reader assumed or fell back on, for the report."""
    input_shape: tuple[int | None, ...] | None = None
    """The model input's shape without the batch axis (None: unknown, e.g. weights only)."""
    embedding: Embedding | None = None
    hyper_parameters: tuple[tuple[str, bool | int | float | str], ...] = ()
    """A checkpoint's scalar hyper-parameters as stored (Lightning's ``hyper_parameters``)."""
    graph: ModelGraph | None = None
    """The whole model's layers, where the reader found them (for the numpy model replay)."""

    def lstm_names(self) -> list[str]:
        """Distinct LSTM layer names in file order (a Bidirectional counts once)."""
        return list(dict.fromkeys(w.name for w in self.lstms))


@dataclass(frozen=True)
class MatrixStats:
    """Summary statistics of one weight array. None means "not available"."""

    shape: tuple[int, ...]
    fro: float | None
    l1: float | None
    max_abs: float | None
    mean: float | None
    std: float | None
    nonfinite: int
    spectral: float | None = None
    """Largest singular value; matrices only (None for a bias vector)."""

    @property
    def is_matrix(self) -> bool:
        return len(self.shape) == 2


@dataclass(frozen=True)
class GateStats:
    gate: str
    W: MatrixStats
    U: MatrixStats
    b: MatrixStats | None
    b_rec: MatrixStats | None = None
    """The recurrent-side bias, where the layer has one (PyTorch, ONNX, Keras reset_after)."""


@dataclass(frozen=True)
class FeatureImportance:
    """L2 norm of one input feature's kernel row: over all gates, and per gate."""

    index: int
    name: str
    value: float | None
    per_gate: tuple[float | None, ...]
    """In the layer's gate order (i, f, c, o; z, r, h)."""
    rank: int
    """1 = most important."""


@dataclass(frozen=True)
class Spectrum:
    """Singular values (descending) of one matrix; eigenvalues too for a square U_g."""

    singular_values: tuple[float, ...]
    stable_rank: float | None
    """‖A‖²_F / ‖A‖²_2: how many directions carry the matrix's energy."""
    eigenvalues: tuple[complex, ...] | None = None
    """All of them (eigen_method "dense"), or the largest by magnitude ("arnoldi"); sorted by
    real, then imaginary part."""
    spectral_radius: float | None = None
    singular_method: str = "svd"
    """How the (always all) singular values were computed: "svd" (LAPACK, exact) or "gram"
    (eigenvalues of the smaller Gram matrix: leading values exact to ~1e-13 relative, values
    below about 1e-7·σ₁ at the rounding floor)."""
    eigen_method: str | None = None
    """"dense" (all eigenvalues, LAPACK), "arnoldi" (the largest by magnitude, restarted
    Arnoldi), or
    None where no eigenvalues were computed (W_g)."""
    eigen_total: int | None = None
    """How many eigenvalues the matrix has (its side), of which ``eigenvalues`` holds all or
    the largest."""
    eigen_tolerance: float | None = None
    """For "arnoldi" eigenvalues: each θ has a unit vector v with ‖A·v − θ·v‖ ≤ this·|θ|;
    None where they are exact."""

    @property
    def what(self) -> str:
        """What was computed, in words: "all 1024 singular values (SVD); the largest 64 of 1024
        eigenvalues by magnitude (Arnoldi, relative residual ≤ 1e-10)"."""
        return self.describe(str(len(self.eigenvalues or ())))

    def describe(self, eigen_count: str) -> str:
        """``what``, with the number of eigenvalues given (a range for several gates)."""
        n = len(self.singular_values)
        how = "SVD" if self.singular_method == "svd" else "from the Gram matrix"
        out = f"all {n} singular values ({how})"
        if self.eigen_method == "dense":
            out += f"; all {eigen_count} eigenvalues"
        elif self.eigen_method is not None:
            out += (
                f"; the largest {eigen_count} of {self.eigen_total} eigenvalues by magnitude "
                f"(Arnoldi, relative residual ≤ {self.eigen_tolerance:g}; one fewer where the "
                "next would split a complex-conjugate pair)"
            )
        return out


@dataclass(frozen=True)
class GateSpectra:
    gate: str
    W: Spectrum | None
    U: Spectrum | None
    """None when the matrix has non-finite weights."""


@dataclass(frozen=True)
class Verification:
    """Numpy replay from the per-gate matrices against the Keras layer's own output."""

    max_abs_error: float | None
    inputs: str
    """``probe`` or ``random``."""
    tolerance: float
    error: str | None = None
    """Why the layer could not be verified (then max_abs_error is None)."""

    @property
    def ok(self) -> bool:
        return self.max_abs_error is not None and self.max_abs_error <= self.tolerance


@dataclass(frozen=True)
class Timescales:
    """Memory-gate timescales: resting f = act(b_f) and τ = 1/(1 − f) steps, per unit.

    The memory gate keeps the old state: an LSTM's forget gate f, a GRU's update gate z
    (h = z·h_prev + (1 − z)·h̃). The fields keep their LSTM names for both.
    """

    resting_forget: tuple[float, ...]
    resting_tau: tuple[float | None, ...]
    """None where f = 1 (the unit never forgets at rest)."""
    bias_shift: float | None
    """Mean of b_f − 1: how far training moved the unit_forget_bias start (LSTMs only)."""
    probe_forget: tuple[float, ...] | None = None
    probe_tau: tuple[float | None, ...] | None = None
    gate: str = "f"
    """The memory gate's letter: f (LSTM) or z (GRU)."""
    bias: tuple[float, ...] | None = None
    """The memory gate's bias per unit (b + b_rec where there are two), None without bias."""


@dataclass(frozen=True)
class Dynamics:
    """How the layer's full state ((h, c) for an LSTM, h for a GRU) responds to a small
    perturbation while the probe's own inputs drive it (analysis/dynamics.py)."""

    lyapunov: tuple[float, ...]
    """The k largest Lyapunov exponents (natural log of growth per step, descending), the
    mean over the probe's sequences; k = min(8, state size)."""
    lyapunov_spread: tuple[float, ...]
    """Their standard deviation from sequence to sequence (0 for one sequence)."""
    jacobian_decay: tuple[float, ...]
    """For k = 1..T−1: the median over sequences of ‖∂h_T/∂h_(T−k)‖_F / √(size of h), the
    root-mean-square gain of a perturbation of h k steps before the end (1: kept whole)."""
    sequences: int
    steps: int
    burn_in: int
    """Steps run before the exponents are accumulated (the QR frame aligns meanwhile)."""
    directions: int
    """Adjoint directions of h behind jacobian_decay: the size of h (exact), or fewer,
    random and orthonormal (an unbiased estimate of the squared norm)."""
    state: str
    """``(h, c)`` or ``h``."""

    @property
    def largest(self) -> float:
        return self.lyapunov[0]

    @property
    def unstable(self) -> bool:
        """The largest exponent is above 0 by more than its spread over the sequences (or
        not a number: the state overflowed on the probe)."""
        if not (math.isfinite(self.lyapunov[0]) and math.isfinite(self.lyapunov_spread[0])):
            return True
        return self.lyapunov[0] - self.lyapunov_spread[0] > UNSTABLE_MARGIN


UNSTABLE_MARGIN = 1e-3
"""Per step: below this a positive largest exponent is taken as neutral (a state kept
exactly, f = 1), not as growth: e^(0.001·t) is 1.1 after 100 steps."""


@dataclass(frozen=True)
class FixedPoint:
    kind: str
    """``fixed`` or ``slow``."""
    norm: float
    residual: float
    """‖F(s*) − s*‖."""
    eigenvalues: tuple[tuple[float, float], ...]
    """The EIGENVALUES largest in magnitude, (re, im), descending |λ|."""
    stable: bool
    """All |λ| < 1 (of those computed)."""
    q: float


@dataclass(frozen=True)
class SlowManifold:
    dimension: int
    explained: float
    """Share of the slow points' spread the ``dimension`` principal directions explain."""
    eigenvalue_near_one: float
    """The median over the points of |λ| of their eigenvalue nearest 1."""


@dataclass(frozen=True, eq=False)
class Plane:
    """The picture's coordinates: the first two principal components of the trajectories."""

    trajectories: tuple[np.ndarray, ...]
    """(steps, 2) per probe sequence shown."""
    points: np.ndarray
    """(len(fixed_points), 2): the reported points."""
    slow: np.ndarray
    """(k, 2): every slow or fixed point found (the manifold is drawn through them)."""
    explained: tuple[float, float]


@dataclass(frozen=True, eq=False)
class Mechanism:
    """A layer's fixed points with the input held, and its slow manifold."""

    inputs: str
    """``zero`` or ``mean``: what x* is."""
    fixed_points: tuple[FixedPoint, ...]
    slow_manifold: SlowManifold | None
    starts: int
    iterations: int
    typical_q: float
    plane: Plane | None
    limited: str | None = None
    """How the search was cut short for a large layer (None: the full search)."""


@dataclass(frozen=True)
class UnitEffect:
    unit: int
    value: float
    low: float
    high: float
    tau: float | None
    """The unit's memory-gate timescale τ (on the probe where there is one)."""
    mean_activity: float
    """Mean |h| of the unit over the measured sequences and steps."""
    saturated: float | None
    """The largest share of probe steps any of the unit's gates is saturated on (None
    for a projected LSTM, whose outputs are not its units)."""


@dataclass(frozen=True)
class UnitAblation:
    units: tuple[UnitEffect, ...]
    """The TOP_UNITS largest effects, descending."""
    target: str
    """``model_output`` or ``layer_output`` (the layer's own output: see ``reason``)."""
    reason: str | None
    """Why the target is the layer's output (None for the model's)."""
    sequences: int
    screened: int | None
    """Sequences every unit was first screened on (None: all measured on ``sequences``)."""
    screen: str | None = None
    """How they were screened: ``ablation`` (the same measurement on fewer sequences) or
    ``output`` (a layer too large to rerun per unit: each unit zeroed in the layer's output
    alone, not fed back); None when not screened."""


@dataclass(frozen=True)
class MemoryHorizon:
    """How far back the model's answer reaches on the probe (from the per-step importance)."""

    steps: int
    """The smallest k such that the last k time steps carry ``share`` of the summed
    per-step importance."""
    of: int
    """The sequence length T."""
    share: float = 0.9


@dataclass(frozen=True)
class GateActivity:
    """One gate's activations over all probe sequences and steps."""

    gate: str
    mean: float
    left_saturated: float
    right_saturated: float
    """Fractions over all sequences, steps and units."""
    unit_mean: tuple[float, ...]
    unit_left: tuple[float, ...]
    unit_right: tuple[float, ...]
    """Per unit: mean activation, fraction of steps saturated left / right."""
    hist_edges: tuple[float, ...]
    hist_counts: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class ProbeActivity:
    """What the layer did on the probe data."""

    gates: tuple[GateActivity, ...]
    sequences: int
    steps: int
    sequence: int
    """Index of the sequence whose states are kept for the heatmaps."""
    h: np.ndarray
    c: np.ndarray | None
    """(steps, units) hidden and cell states of that sequence, in input time order (a GRU
    has no cell state: None)."""
    source: str
    """``numpy`` (replayed from upstream layers) or ``keras`` (upstream run through Keras)."""


@dataclass(frozen=True)
class Finding:
    """One health finding: severity, a stable code, where, and one sentence."""

    severity: Severity
    code: str
    model: str
    layer: str | None
    message: str
    anchor: str | None = None


@dataclass(frozen=True, eq=False)
class LayerAnalysis:
    weights: LSTMWeights
    gates: tuple[GateStats, ...]
    features: tuple[FeatureImportance, ...] | None
    """In input order; None when the layer does not read the model input."""
    anchor: str
    """HTML id of the layer's section."""
    spectra: tuple[GateSpectra, ...] = ()
    timescales: Timescales | None = None
    verification: Verification | None = None
    activity: ProbeActivity | None = None
    findings: tuple[Finding, ...] = ()
    probe_inputs: np.ndarray | None = None
    """The first probe sequences this layer was fed, kept for the verification."""
    projection: MatrixStats | None = None
    """Statistics of the projection P of a PyTorch LSTM with proj_size (else None)."""
    dynamics: Dynamics | None = None
    """Lyapunov exponents and Jacobian decay on the probe (None without one)."""
    peepholes: tuple[tuple[str, MatrixStats], ...] = ()
    """("P_i", stats), ("P_f", …), ("P_o", …) of an LSTM with peepholes (else empty)."""
    mechanism: Mechanism | None = None
    """Fixed and slow points with the input held (None without a probe or dynamics)."""
    units: UnitAblation | None = None
    """The units whose ablation changes the answer most (None without a probe)."""

    @property
    def spectra_computed(self) -> tuple[str, ...]:
        """What the spectra hold, one line per matrix family (U_g, W_g), or per matrix where
        the gates were done differently (non-finite weights, an iteration that did not converge)."""
        out = []
        for kind in ("U", "W"):
            said = [(sp.gate, getattr(sp, kind)) for sp in self.spectra]
            done = [s for _, s in said if s is not None]
            ways = {(s.singular_method, s.eigen_method, s.eigen_total) for s in done}
            if len(ways) == 1 and len(done) == len(said):
                counts = sorted({len(s.eigenvalues or ()) for s in done})
                count = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
                out.append(f"{kind}_g: {done[0].describe(count)}")
            else:
                out += [
                    f"{kind}_{g}: {s.what if s else 'nothing (non-finite weights)'}"
                    for g, s in said
                ]
        return tuple(out)

    @property
    def nonfinite(self) -> int:
        total = 0
        for g in self.gates:
            total += g.W.nonfinite + g.U.nonfinite + (g.b.nonfinite if g.b else 0)
            total += g.b_rec.nonfinite if g.b_rec else 0
        return total


@dataclass(frozen=True, eq=False)
class ModelAnalysis:
    name: str
    path: Path
    layers: tuple[LayerAnalysis, ...]
    others: tuple[OtherLayer, ...]
    total_params: int | None
    lstm_params: int
    reader: str
    anchor: str
    notes: tuple[str, ...] = ()
    series: Series | None = None
    """Set when the model is a checkpoint series."""
    warnings: tuple[str, ...] = ()
    """The notes that mean part of what was asked for is missing: the CLI prints them."""
    input_importance: InputImportance | None = None
    """Measured on the probe (None without one, or for token-id inputs)."""
    hyper_parameters: tuple[tuple[str, bool | int | float | str], ...] = ()
    """The checkpoint's scalar hyper-parameters (ModelWeights.hyper_parameters)."""
    memory_horizon: MemoryHorizon | None = None
    """From input_importance.per_step (None without it)."""
    shown_path: str = ""
    """The model file as the page names it (config.ModelSpec.shown_path): no local path."""


# --- answers measured on the probe ------------------------------------------------------

Target = Literal["model_output", "lstm_output"]
"""What an importance measures the change of: the model's output, or the last LSTM's."""


@dataclass(frozen=True)
class FeatureEffect:
    """How much the target changes when one input feature is taken away."""

    name: str
    value: float
    """Mean squared change of the target over the probe's sequences."""
    low: float
    high: float
    """Bootstrap interval of ``value`` over the sequences (95%)."""


@dataclass(frozen=True)
class InputImportance:
    """Importance of each input feature (and each time step) measured on the probe."""

    method: Literal["occlusion", "permutation"]
    target: Target
    layer: str | None
    """The LSTM whose output is the target (``lstm_output``), else None."""
    sequences: int
    features: tuple[FeatureEffect, ...]
    """In input order."""
    per_step: tuple[float, ...]
    """Mean squared change of the target when one time step (all features) is taken away."""
    target_reason: str | None = None
    """Why the target is not the model's output (``lstm_output``), or how it was reached
    (Keras where numpy stops); None when numpy replayed the whole model."""
    per_token: tuple[FeatureEffect, ...] | None = None
    """Token models: each token's effect (``name`` the token), largest first, at most 20."""
    pad_token: int | None = None
    """Token models: the id every occluded token (or step) is replaced by."""
    probe_sequences: int | None = None
    """The probe's sequences; more than ``sequences`` where fewer were used to keep the
    occlusion within its work budget (importance.sequences_for_work)."""


# --- across training: comparisons and checkpoint series ---------------------------------


@dataclass(frozen=True)
class Delta:
    """Change of one matrix: ‖ΔA‖_F, ‖ΔA‖_F / ‖A_baseline‖_F, cosine(A_baseline, A_candidate)."""

    delta_fro: float | None
    relative: float | None
    cosine: float | None
    """None where a norm is zero (or a value is not finite): the ratio is undefined."""
    change: float | None = None
    """RMS(ΔA) / the RMS of all of the gate's parameters before and after (compare.gate_scale):
    the one measure the page, the takeaway and the headline numbers use. Finite where the
    baseline is zero (biases a layer starts at 0), symmetric in the two models."""


@dataclass(frozen=True)
class GateDelta:
    gate: str
    W: Delta
    U: Delta
    b: Delta | None
    b_rec: Delta | None = None


@dataclass(frozen=True, eq=False)
class LayerDelta:
    name: str
    direction: str
    gates: tuple[GateDelta, ...]
    top_units: tuple[tuple[int, float], ...]
    """Units whose incoming weights (all gates) changed most: (unit, ‖Δ‖)."""
    baseline: LSTMWeights
    candidate: LSTMWeights
    anchor: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.direction})" if self.baseline.wrapper else self.name


@dataclass(frozen=True, eq=False)
class Comparison:
    baseline: str
    candidate: str
    layers: tuple[LayerDelta, ...]
    only_baseline: tuple[str, ...]
    only_candidate: tuple[str, ...]
    anchor: str
    matched_by: str = "name"
    """How the layers were paired: ``name``, ``position`` or ``mapping`` (config ``layers:``)."""


@dataclass(frozen=True)
class GatePoint:
    """One gate at one checkpoint: norms, spectral radius of U, change since the last one."""

    W_fro: float | None
    U_fro: float | None
    b_fro: float | None
    U_spectral_radius: float | None
    relative_change: float | None
    """‖Δ[W U]‖_F / ‖[W U] before‖_F since the previous checkpoint (None for the first)."""


@dataclass(frozen=True)
class LayerPoint:
    """One layer (name, direction) at one checkpoint."""

    name: str
    direction: str
    gates: tuple[tuple[str, GatePoint], ...]
    """(gate name, its figures), in the cell's gate order."""
    tau_median: float | None

    def gate(self, name: str) -> GatePoint:
        return dict(self.gates)[name]


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint's figures: per layer (name, direction), per gate."""

    path: str
    label: str
    layers: tuple[LayerPoint, ...]

    def layer(self, name: str, direction: str) -> LayerPoint | None:
        return next((p for p in self.layers if (p.name, p.direction) == (name, direction)), None)


@dataclass(frozen=True)
class Series:
    model: str
    checkpoints: tuple[Checkpoint, ...]
    anchor: str


@dataclass(frozen=True)
class Takeaway:
    """One plain sentence at the top of the page, computed, linked to its evidence."""

    code: str
    """What it is about: ``inputs``, ``memory``, ``saturation``, ``verified``, ``learned``."""
    model: str | None
    """None where the sentence is about the whole report (e.g. a comparison)."""
    layer: str | None
    text: str
    anchor: str | None = None


@dataclass(frozen=True)
class Headline:
    """One line of the summary: what stands out, and where to look."""

    severity: Severity
    text: str
    anchor: str | None = None


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything the page and the JSON are rendered from."""

    title: str
    generated: str
    version: str
    models: tuple[ModelAnalysis, ...]
    headlines: tuple[Headline, ...] = field(default_factory=tuple)
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    comparisons: tuple[Comparison, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    """What the run could not do as asked, one line each (the page shows it among notes)."""
    takeaways: tuple[Takeaway, ...] = field(default_factory=tuple)
    saved_comparisons: tuple[SavedComparison, ...] = field(default_factory=tuple)
    """Comparisons with a report's JSON written earlier (baseline.py): numbers only."""
