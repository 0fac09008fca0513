"""matplotlib Figure objects -> data URIs for the page. No pyplot, byte-stable output."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lstm_report.gates import GateWeights, layer_gates

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from lstm_report.model import GATE_NAMES, GATES, Comparison, LayerAnalysis, LayerDelta, Series

MAX_CELLS = 256
"""Heatmaps show at most this many rows and columns; larger matrices are pooled."""

POOLING = "max-|w| pooling"
"""How large matrices are downsampled: each block shows its weight of largest magnitude."""

GATE_COLORS = {"i": "#0072B2", "f": "#D55E00", "c": "#009E73", "o": "#CC79A7"}
"""Okabe-Ito colours: distinguishable with the common colour-vision deficiencies."""

DIVERGING = "RdBu_r"

_RC: dict[Any, Any] = {
    "svg.hashsalt": "lstm-report",
    # Names come from users and files: draw them as literal text, never as mathtext.
    "text.parse_math": False,
    "svg.fonttype": "none",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class EmbeddedFigure:
    """One embedded figure: a data URI and the text that stands in for it."""

    uri: str
    alt: str


@dataclass(frozen=True)
class LayerFigures:
    heat_W: EmbeddedFigure
    heat_U: EmbeddedFigure
    histograms: EmbeddedFigure
    biases: EmbeddedFigure | None
    pooled: str | None
    """Set when a heatmap was downsampled: which pooling, from what size."""
    spectra: EmbeddedFigure | None = None
    memory: EmbeddedFigure | None = None
    activity: EmbeddedFigure | None = None
    saturation: EmbeddedFigure | None = None
    states: EmbeddedFigure | None = None


def pool_max_abs(a: np.ndarray, max_cells: int = MAX_CELLS) -> np.ndarray:
    """Downsample a 2-D array to at most max_cells per axis, keeping each block's largest |w|.

    Mean pooling would cancel positive and negative weights and hide strong connections;
    the signed value of largest magnitude keeps them visible. NaN counts as largest so
    that non-finite weights stay visible.
    """
    rows, cols = a.shape
    br = -(-rows // max_cells) if rows > max_cells else 1
    bc = -(-cols // max_cells) if cols > max_cells else 1
    if br == 1 and bc == 1:
        return a
    R, C = -(-rows // br), -(-cols // bc)
    padded = np.full((R * br, C * bc), np.nan if a.dtype.kind == "f" else 0, dtype=np.float64)
    padded[:rows, :cols] = a
    blocks = padded.reshape(R, br, C, bc).transpose(0, 2, 1, 3).reshape(R, C, br * bc)
    mag = np.abs(blocks)
    pad_mask = np.zeros((R * br, C * bc), bool)
    pad_mask[rows:, :] = True
    pad_mask[:, cols:] = True
    pad_blocks = pad_mask.reshape(R, br, C, bc).transpose(0, 2, 1, 3).reshape(R, C, br * bc)
    mag = np.where(np.isnan(mag), np.inf, mag)  # a real NaN weight wins its block
    mag = np.where(pad_blocks, -1.0, mag)  # padding never wins
    idx = np.argmax(mag, axis=2)
    return np.take_along_axis(blocks, idx[..., None], axis=2)[..., 0]


def _integer_ticks(axis: Any) -> None:
    """Units, steps and indices are whole numbers: no ticks at 0.5."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _finite_max_abs(arrays: Sequence[np.ndarray]) -> float:
    vmax = 0.0
    for a in arrays:
        f = np.abs(a[np.isfinite(a)])
        if f.size:
            vmax = max(vmax, float(f.max()))
    return vmax or 1.0


def _new_figure(
    width: float,
    height: float,
    *,
    left: float = 0.6,
    right: float = 0.15,
    bottom: float = 0.5,
    top: float = 0.3,
    wspace: float = 0.35,
) -> Figure:
    """A Figure with fixed margins (in inches). Fixed, not constrained, layout: it halves
    the drawing time, and our figures' contents are known in advance."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=wspace,
    )
    return fig


def _png(fig: Figure) -> str:
    """PNG reduced to a 256-colour palette: colour-mapped weights need no more, at a third
    of the bytes (random-looking weights barely compress as RGBA)."""
    import matplotlib
    from PIL import Image

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="png", metadata={"Software": None})
    buf.seek(0)
    with Image.open(buf) as im:
        pal = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    pal.save(out, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _svg(fig: Figure) -> str:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def heatmaps(
    mats: Sequence[np.ndarray],
    family: str,
    row_labels: Sequence[str] | None,
    layer: str,
) -> tuple[EmbeddedFigure, str | None]:
    """Four panels, one per gate, one colour scale centred on zero shared by all four."""
    import matplotlib

    pooled_note = None
    shown = [pool_max_abs(m) for m in mats]
    if shown[0].shape != mats[0].shape:
        pooled_note = (
            f"{family} matrices of {mats[0].shape[0]}×{mats[0].shape[1]} shown as "
            f"{shown[0].shape[0]}×{shown[0].shape[1]} ({POOLING})"
        )
    vmax = _finite_max_abs(mats)
    rows = shown[0].shape[0]
    height = 2.6 if family == "U" else min(4.5, max(1.8, 0.9 + 0.16 * rows))
    with matplotlib.rc_context(_RC):
        labelled = family == "W" and row_labels is not None and pooled_note is None and rows <= 32
        longest = max((len(str(n)) for n in row_labels or ()), default=0) if labelled else 0
        fig = _new_figure(10.0, height, left=0.7 + 0.06 * longest, right=0.75, wspace=0.08)
        axes = fig.subplots(1, 4, sharey=True)
        cmap = matplotlib.colormaps[DIVERGING].with_extremes(bad="#000000")
        im = None
        for ax, gate, m in zip(axes, GATES, shown):
            im = ax.imshow(
                np.ma.masked_invalid(m),
                cmap=cmap,
                vmin=-vmax,
                vmax=vmax,
                aspect="auto",
                interpolation="nearest",
            )
            ax.set_title(f"{family} · {GATE_NAMES[gate]} gate ({gate})")
            ax.set_xlabel("unit" if pooled_note is None else "unit (pooled)")
            _integer_ticks(ax.xaxis)
        if labelled:
            axes[0].set_yticks(range(rows), labels=list(row_labels or ()))
        else:
            axes[0].set_ylabel(
                "input feature" if family.endswith("W") else "from unit (previous h)"
            )
        if im is not None:
            label = "change" if family.startswith("Δ") else "weight"
            fig.colorbar(im, ax=list(axes), fraction=0.03, pad=0.015, label=label)
        uri = _png(fig)
    what = "input" if family.endswith("W") else "recurrent"
    alt = (
        f"Heatmaps of the {what} weights {family}_i, {family}_f, {family}_c, {family}_o of "
        f"{layer}, blue negative, red positive, shared scale ±{vmax:.3g}"
    )
    return EmbeddedFigure(uri, alt), pooled_note


def _central_range(arrays: Sequence[np.ndarray]) -> tuple[float, float] | None:
    """The 0.5th to 99.5th percentile of the finite values (None if empty or flat)."""
    vals = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays])
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return None
    lo, hi = np.percentile(vals, [0.5, 99.5])
    return (float(lo), float(hi)) if hi > lo else None


def histograms(gates: Sequence[GateWeights], layer: str) -> EmbeddedFigure:
    """Per gate: the distribution of W_g, U_g (and b_g) values."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _new_figure(10.0, 2.2)
        axes = fig.subplots(1, 4, sharey=False)
        for ax, g in zip(axes, gates):
            # The range of the matrices' values: a few biases outside it must not squash them.
            span = _central_range([g.W, g.U])
            for kind, arr, color in (
                ("W", g.W, "#0072B2"),
                ("U", g.U, "#E69F00"),
                ("b", g.b, "#000000"),
            ):
                if arr is None:
                    continue
                vals = np.asarray(arr, np.float64).ravel()
                vals = vals[np.isfinite(vals)]
                if vals.size:
                    ax.hist(
                        np.clip(vals, *span) if span else vals,
                        bins=40,
                        range=span,
                        histtype="step",
                        color=color,
                        label=kind,
                        density=True,
                    )
            ax.set_title(f"gate {g.gate} ({GATE_NAMES[g.gate]})")
            ax.set_xlabel("weight (outliers at the edges)" if span else "weight")
        axes[0].set_ylabel("density")
        axes[-1].legend(loc="upper right", frameon=False)
        uri = _svg(fig)
    return EmbeddedFigure(uri, f"Histograms of the weights of each gate of {layer}: W, U and b")


def biases_chart(gates: Sequence[GateWeights], layer: str) -> EmbeddedFigure | None:
    """Bias per unit, one series per gate; the dotted line marks unit_forget_bias' start at 1."""
    import matplotlib

    if gates[0].b is None:
        return None
    with matplotlib.rc_context(_RC):
        fig = _new_figure(6.0, 2.4)
        ax = fig.subplots()
        units = np.arange(gates[0].b.shape[0])
        marker = "o" if units.size <= 64 else None
        for g in gates:
            ax.plot(
                units,
                np.asarray(g.b),
                marker=marker,
                markersize=2.5,
                linewidth=0.9,
                color=GATE_COLORS[g.gate],
                label=f"{GATE_NAMES[g.gate]} ({g.gate})",
            )
        ax.axhline(1.0, color="#D55E00", linewidth=0.6, linestyle=":")
        ax.axhline(0.0, color="#888888", linewidth=0.5)
        ax.set_xlabel("unit")
        _integer_ticks(ax.xaxis)
        ax.set_ylabel("bias")
        ax.legend(frameon=False, fontsize=7, ncols=2)
        uri = _svg(fig)
    return EmbeddedFigure(uri, f"Bias of every unit for each gate of {layer}")


def spectra_chart(la: LayerAnalysis) -> EmbeddedFigure | None:
    """Singular values of W_g and U_g, and the eigenvalues of U_g with the unit circle."""
    import matplotlib

    if not la.spectra or all(sp.U is None and sp.W is None for sp in la.spectra):
        return None
    with matplotlib.rc_context(_RC):
        fig = _new_figure(10.0, 2.8, wspace=0.4)
        ax_w, ax_u, ax_e = fig.subplots(1, 3)
        for sp in la.spectra:
            color = GATE_COLORS[sp.gate]
            for ax, s in ((ax_w, sp.W), (ax_u, sp.U)):
                if s is not None and s.singular_values:
                    sv = np.asarray(s.singular_values)
                    ax.plot(
                        np.arange(1, sv.size + 1),
                        sv,
                        color=color,
                        linewidth=1,
                        marker="o" if sv.size <= 32 else None,
                        markersize=2,
                        label=f"{sp.gate} ({GATE_NAMES[sp.gate]})",
                    )
            if sp.U is not None and sp.U.eigenvalues is not None:
                ev = np.asarray(sp.U.eigenvalues)
                ax_e.scatter(
                    ev.real, ev.imag, s=6, color=color, label=sp.gate, alpha=0.8, linewidths=0
                )
        ax_w.set_title("singular values of W, per gate")
        ax_u.set_title("singular values of U, per gate")
        for ax in (ax_w, ax_u):
            ax.set_xlabel("index")
            _integer_ticks(ax.xaxis)
            ax.set_yscale("log")
        ax_u.legend(frameon=False, fontsize=7)
        t = np.linspace(0, 2 * np.pi, 361)
        ax_e.plot(np.cos(t), np.sin(t), color="#888888", linewidth=0.8, linestyle="--")
        ax_e.axhline(0, color="#cccccc", linewidth=0.5)
        ax_e.axvline(0, color="#cccccc", linewidth=0.5)
        ax_e.set_aspect("equal", adjustable="datalim")
        ax_e.set_title("eigenvalues of U (unit circle dashed)")
        ax_e.set_xlabel("real")
        ax_e.set_ylabel("imaginary")
        # raster: thousands of points make a heavy SVG
        uri = (
            _png(fig)
            if any(sp.U is not None and len(sp.U.singular_values) > 64 for sp in la.spectra)
            else _svg(fig)
        )
    return EmbeddedFigure(
        uri,
        f"Singular values of every W_g and U_g of {la.weights.label}, and the eigenvalues of "
        "each U_g in the complex plane with the unit circle",
    )


def memory_chart(la: LayerAnalysis) -> EmbeddedFigure | None:
    """Histogram of forget-gate time constants τ = 1/(1 − f), at rest and on the probe."""
    import matplotlib

    t = la.timescales
    if t is None:
        return None
    series = [("at rest: f = act(b_f)", t.resting_tau, "#D55E00")]
    if t.probe_tau is not None:
        series.append(("on the probe: mean f", t.probe_tau, "#0072B2"))
    finite = [v for _, taus, _ in series for v in taus if v is not None]
    if not finite:
        return None
    hi = max(max(finite), 2.0)
    bins = [float(b) for b in np.geomspace(1.0, hi * 1.05, 30)]
    with matplotlib.rc_context(_RC):
        fig = _new_figure(5.0, 2.4)
        ax = fig.subplots()
        for label, taus, color in series:
            vals = [v for v in taus if v is not None]
            ax.hist(vals, bins=bins, histtype="step", color=color, label=label, linewidth=1.2)
        ax.set_xscale("log")
        ax.set_xlabel("memory time constant τ = 1/(1 − f) [steps]")
        ax.set_ylabel("units")
        ax.legend(frameon=False, fontsize=7)
        uri = _svg(fig)
    return EmbeddedFigure(
        uri, f"Histogram of the forget-gate memory time constants of {la.weights.label}"
    )


def activity_charts(
    la: LayerAnalysis,
) -> tuple[EmbeddedFigure | None, EmbeddedFigure | None, EmbeddedFigure | None]:
    """Gate activation histograms, saturation scatter, and h/c heatmaps of one sequence."""
    import matplotlib

    a = la.activity
    if a is None:
        return None, None, None
    label = la.weights.label
    with matplotlib.rc_context(_RC):
        fig = _new_figure(10.0, 2.2)
        axes = fig.subplots(1, 4)
        for ax, ga in zip(axes, a.gates):
            edges = np.asarray(ga.hist_edges)
            counts = np.asarray(ga.hist_counts, float)
            total = counts.sum() or 1.0
            ax.stairs(counts / total, edges, fill=True, color=GATE_COLORS[ga.gate], alpha=0.8)
            ax.set_title(f"{ga.gate} ({GATE_NAMES[ga.gate]}) mean {ga.mean:.2f}")
            ax.set_xlabel("activation")
        axes[0].set_ylabel("fraction of values")
        hist = EmbeddedFigure(
            _svg(fig), f"Distribution of each gate's activations of {label} on the probe data"
        )

        fig = _new_figure(10.0, 2.6)
        axes = fig.subplots(1, 4, sharex=True, sharey=True)
        for ax, ga in zip(axes, a.gates):
            ax.plot([0, 1], [1, 0], color="#cccccc", linewidth=0.6)
            ax.scatter(
                ga.unit_left,
                ga.unit_right,
                s=8,
                color=GATE_COLORS[ga.gate],
                alpha=0.8,
                linewidths=0,
            )
            ax.set_xlim(-0.02, 1.02)
            ax.set_ylim(-0.02, 1.02)
            ax.set_aspect("equal")
            if not any(ga.unit_left) and not any(ga.unit_right):
                ax.text(0.5, 0.55, "no unit saturates", ha="center", transform=ax.transAxes)
            ax.set_title(f"{ga.gate} ({GATE_NAMES[ga.gate]})")
            ax.set_xlabel("fraction left-saturated")
        axes[0].set_ylabel("fraction right-saturated")
        sat = EmbeddedFigure(
            _svg(fig),
            f"Saturation of each gate of {label}: per unit, the fraction of probe steps "
            "left- versus right-saturated",
        )

        fig = _new_figure(10.0, 2.8)
        axes = fig.subplots(1, 2)
        for ax, arr, name in ((axes[0], a.h, "hidden state h_t"), (axes[1], a.c, "cell state c_t")):
            m = pool_max_abs(arr.T)
            vmax = _finite_max_abs([m])
            im = ax.imshow(
                m, cmap=DIVERGING, vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest"
            )
            ax.set_title(f"{name}, sequence {a.sequence}")
            ax.set_xlabel("step" if m.shape[1] == arr.shape[0] else "step (pooled)")
            ax.set_ylabel("unit" if m.shape[0] == arr.shape[1] else "unit (pooled)")
            _integer_ticks(ax.xaxis)
            _integer_ticks(ax.yaxis)
            fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
        states = EmbeddedFigure(
            _png(fig),
            f"Heatmaps of the hidden and cell states of {label} over probe sequence {a.sequence}",
        )
    return hist, sat, states


def layer_figures(la: LayerAnalysis, row_labels: Sequence[str] | None = None) -> LayerFigures:
    """Every figure of one layer section."""
    gates = layer_gates(la.weights)
    label = la.weights.label
    names = row_labels
    if names is None and la.features:
        names = [f.name for f in la.features]
    heat_w, note_w = heatmaps([g.W for g in gates], "W", names, label)
    heat_u, note_u = heatmaps([g.U for g in gates], "U", None, label)
    pooled = "; ".join(n for n in (note_w, note_u) if n) or None
    hist, sat, states = activity_charts(la)
    return LayerFigures(
        heat_W=heat_w,
        heat_U=heat_u,
        histograms=histograms(gates, label),
        biases=biases_chart(gates, label),
        pooled=pooled,
        spectra=spectra_chart(la),
        memory=memory_chart(la),
        activity=hist,
        saturation=sat,
        states=states,
    )


@dataclass(frozen=True)
class CompareFigures:
    delta_W: EmbeddedFigure
    delta_U: EmbeddedFigure
    histograms: EmbeddedFigure
    relative: EmbeddedFigure


def comparison_figures(ld: LayerDelta) -> CompareFigures:
    """Delta heatmaps, before/after histograms, and relative change per gate of one layer."""
    import matplotlib

    ga, gb = layer_gates(ld.baseline), layer_gates(ld.candidate)
    label = ld.label
    dW, _ = heatmaps([np.asarray(y.W, np.float64) - x.W for x, y in zip(ga, gb)], "ΔW", None, label)
    dU, _ = heatmaps([np.asarray(y.U, np.float64) - x.U for x, y in zip(ga, gb)], "ΔU", None, label)
    with matplotlib.rc_context(_RC):
        fig = _new_figure(10.0, 2.2)
        axes = fig.subplots(1, 4)
        for ax, x, y in zip(axes, ga, gb):
            for arrs, color, name in (
                ((x.W, x.U), "#999999", "before"),
                ((y.W, y.U), "#0072B2", "after"),
            ):
                vals = np.concatenate([np.asarray(a, np.float64).ravel() for a in arrs])
                vals = vals[np.isfinite(vals)]
                if vals.size:
                    ax.hist(vals, bins=40, histtype="step", color=color, label=name, density=True)
            ax.set_title(f"gate {x.gate} ({GATE_NAMES[x.gate]}): W and U")
            ax.set_xlabel("weight")
        axes[-1].legend(frameon=False)
        hist = EmbeddedFigure(
            _svg(fig), f"Histograms of the weights of each gate of {label}, before and after"
        )

        fig = _new_figure(4.6, 2.4)
        ax = fig.subplots()
        pos = np.arange(4)
        fams = ["W", "U"] + (["b"] if ld.gates[0].b is not None else [])
        width = 0.8 / len(fams)
        colors = {"W": "#0072B2", "U": "#E69F00", "b": "#555555"}
        for k, fam in enumerate(fams):
            changes = [
                getattr(g, fam).relative if getattr(g, fam) is not None else None for g in ld.gates
            ]
            ax.bar(
                pos + (k - (len(fams) - 1) / 2) * width,
                [np.nan if v is None else v for v in changes],
                width,
                label=fam,
                color=colors[fam],
            )
        ax.set_xticks(pos, labels=[f"{g} ({GATE_NAMES[g]})" for g in GATES])
        ax.set_ylabel("relative change ‖ΔA‖ / ‖A‖")
        ax.legend(frameon=False)
        rel = EmbeddedFigure(
            _svg(fig), f"Relative change of W, U and b per gate of {label}: which gate learned"
        )
    return CompareFigures(dW, dU, hist, rel)


def series_figures(series: Series) -> tuple[tuple[str, EmbeddedFigure], ...]:
    """Per layer of a checkpoint series: norms, U_g spectral radius, median τ, change."""
    import matplotlib

    from lstm_report.analysis.series import layer_keys

    out = []
    labels = [c.label for c in series.checkpoints]
    x = np.arange(len(labels))
    for name, direction in layer_keys(series):
        rows = [c.layer(name, direction) for c in series.checkpoints]

        def pick(gate: str, field: str) -> np.ndarray:
            values = [None if r is None else getattr(r.gate(gate), field) for r in rows]
            return np.array([np.nan if v is None else v for v in values], float)

        with matplotlib.rc_context(_RC):
            fig = _new_figure(10.0, 2.9, bottom=0.8, wspace=0.3)
            ax_n, ax_r, ax_t, ax_c = fig.subplots(1, 4)
            for g in GATES:
                col = GATE_COLORS[g]
                ax_n.plot(
                    x,
                    pick(g, "U_fro"),
                    color=col,
                    marker="o",
                    markersize=3,
                    label=f"{GATE_NAMES[g]} ({g})",
                )
                ax_n.plot(x, pick(g, "W_fro"), color=col, linestyle="--", linewidth=0.9)
                ax_r.plot(
                    x, pick(g, "U_spectral_radius"), color=col, marker="o", markersize=3, label=g
                )
                ax_c.plot(
                    x, pick(g, "relative_change"), color=col, marker="o", markersize=3, label=g
                )
            tau = np.array(
                [np.nan if r is None or r.tau_median is None else r.tau_median for r in rows]
            )
            ax_t.plot(x, tau, color=GATE_COLORS["f"], marker="o", markersize=3)
            ax_n.set_title("norm of U (solid) and W (dashed)")
            ax_r.set_title("spectral radius of U")
            ax_t.set_title("median forget τ at rest [steps]")
            ax_c.set_title("relative change since previous")
            ax_n.legend(frameon=False, fontsize=6)
            for ax in (ax_n, ax_r, ax_t, ax_c):
                ax.set_xticks(x, labels=labels, rotation=45, ha="right", fontsize=6)
                ax.set_ylim(bottom=0)  # from zero: a drift of 0.03 must not look like a cliff
            uri = _svg(fig)
        label = (
            f"{name} ({direction})"
            if direction == "backward" or any(k == (name, "backward") for k in layer_keys(series))
            else name
        )
        out.append(
            (
                label,
                EmbeddedFigure(
                    uri,
                    f"Per-gate norms, spectral radii, forget timescale and change of {label} "
                    f"across {len(labels)} checkpoints",
                ),
            )
        )
    return tuple(out)


class Workers:
    """Two drawing processes, forked early: before TensorFlow is imported (forking after
    is unsafe) and before the analysis, so that they are ready when the figures are.

    Falls back to drawing in this process where fork is not available or not safe.
    """

    def __init__(self, enabled: bool = True) -> None:
        import multiprocessing
        import os
        import sys
        import threading

        self.pool: Any = None
        # Forking is only safe in a process we own: the CLI, before TensorFlow's threads
        # and without any other thread that could hold a lock at the fork.
        if not enabled or (os.cpu_count() or 1) < 2 or "tensorflow" in sys.modules:
            return
        if threading.active_count() > 1:
            return
        if "fork" not in multiprocessing.get_all_start_methods():
            return
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(
            2,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )
        # Each submit forks a worker now; the workers import matplotlib while we analyse.
        for _ in range(2):
            self.pool.submit(_warm_up)

    def submit(self, kind: str, item: Any) -> Any:
        """Start drawing one job (``layer``, ``compare`` or ``series``); returns a future."""
        if self.pool is None:
            from concurrent.futures import Future

            done: Future[Any] = Future()
            done.set_result(_draw((kind, item)))
            return done
        return self.pool.submit(_draw, (kind, item))

    def close(self) -> None:
        """Wait for the jobs still running, then let the workers go."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def terminate(self) -> None:
        """Stop the workers now, whatever they are drawing (on an error or a signal)."""
        pool, self.pool = self.pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for p in processes:
            p.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for p in processes:
            p.join(2.0)
            if p.is_alive():
                p.kill()
                p.join(1.0)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.terminate()


def _worker_init(parent: int) -> None:
    """In each worker: leave signals to the parent, and die with it."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole process group
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not _die_with_parent():
        import threading

        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before we could ask
        os._exit(1)


def _die_with_parent() -> bool:
    """Ask Linux to kill this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    """Elsewhere: a thread that ends the worker once its parent is gone."""
    import os
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _warm_up() -> None:
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def _draw(job: tuple[str, Any]) -> Any:
    kind, item = job
    if kind == "layer":
        return layer_figures(item)
    if kind == "compare":
        return comparison_figures(item)
    return series_figures(item)


def draw_figures(
    layers: Sequence[LayerAnalysis],
    comparisons: Sequence[Comparison] = (),
    series: Sequence[Series] = (),
    workers: Workers | None = None,
) -> dict[str, Any]:
    """Figures of every layer, compared layer and series, keyed by anchor."""
    jobs: list[tuple[str, Any]] = [("layer", la) for la in layers]
    jobs += [("compare", ld) for c in comparisons for ld in c.layers]
    jobs += [("series", s) for s in series]
    if workers is None:
        return {item.anchor: _draw((kind, item)) for kind, item in jobs}
    # Largest first, so the two workers finish at about the same time.
    futures = {
        item.anchor: workers.submit(kind, item)
        for kind, item in sorted(jobs, key=lambda job: -_cost(job))
    }
    return {anchor: f.result() for anchor, f in futures.items()}


def _cost(job: tuple[str, Any]) -> float:
    kind, item = job
    if kind == "layer":
        return 2.0 + item.weights.params / 1e5 + (2.0 if item.activity is not None else 0.0)
    return 1.0
