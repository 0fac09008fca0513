"""Figures of one layer: heatmaps, histograms, biases, spectra, memory, probe activity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lstm_report.figures.encode import (
    DIVERGING,
    GATE_COLORS,
    POOLING,
    RC,
    EmbeddedFigure,
    finite_max_abs,
    integer_ticks,
    new_figure,
    png_uri,
    pool_max_abs,
    svg_uri,
)
from lstm_report.gates import GateWeights, layer_gates
from lstm_report.model import GATE_NAMES, LayerAnalysis


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


def heatmaps(
    mats: Sequence[np.ndarray],
    family: str,
    row_labels: Sequence[str] | None,
    layer: str,
    gates: Sequence[str] = ("i", "f", "c", "o"),
) -> tuple[EmbeddedFigure, str | None]:
    """One panel per gate, one colour scale centred on zero shared by all of them."""
    import matplotlib

    pooled_note = None
    shown = [pool_max_abs(m) for m in mats]
    if shown[0].shape != mats[0].shape:
        pooled_note = (
            f"{family} matrices of {mats[0].shape[0]}×{mats[0].shape[1]} shown as "
            f"{shown[0].shape[0]}×{shown[0].shape[1]} ({POOLING})"
        )
    vmax = finite_max_abs(mats)
    rows = shown[0].shape[0]
    height = 2.6 if family == "U" else min(4.5, max(1.8, 0.9 + 0.16 * rows))
    with matplotlib.rc_context(RC):
        labelled = family == "W" and row_labels is not None and pooled_note is None and rows <= 32
        longest = max((len(str(n)) for n in row_labels or ()), default=0) if labelled else 0
        fig = new_figure(10.0, height, left=0.7 + 0.06 * longest, right=0.75, wspace=0.08)
        axes = fig.subplots(1, len(gates), sharey=True)
        cmap = matplotlib.colormaps[DIVERGING].with_extremes(bad="#000000")
        im = None
        for ax, gate, m in zip(axes, gates, shown):
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
            integer_ticks(ax.xaxis)
        if labelled:
            axes[0].set_yticks(range(rows), labels=list(row_labels or ()))
        else:
            axes[0].set_ylabel(
                "input feature" if family.endswith("W") else "from unit (previous h)"
            )
        if im is not None:
            label = "change" if family.startswith("Δ") else "weight"
            fig.colorbar(im, ax=list(axes), fraction=0.03, pad=0.015, label=label)
        uri = png_uri(fig)
    what = "input" if family.endswith("W") else "recurrent"
    names = ", ".join(f"{family}_{g}" for g in gates)
    alt = (
        f"Heatmaps of the {what} weights {names} of "
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

    with matplotlib.rc_context(RC):
        fig = new_figure(10.0, 2.2)
        axes = fig.subplots(1, len(gates), sharey=False)
        for ax, g in zip(axes, gates):
            # The range of the matrices' values: a few biases outside it must not squash them.
            span = _central_range([g.W, g.U])
            for kind, arr, color in (
                ("W", g.W, "#0072B2"),
                ("U", g.U, "#E69F00"),
                ("b", g.b, "#000000"),
                ("b_rec", g.b_rec, "#888888"),
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
        uri = svg_uri(fig)
    return EmbeddedFigure(uri, f"Histograms of the weights of each gate of {layer}: W, U and b")


def biases_chart(gates: Sequence[GateWeights], layer: str) -> EmbeddedFigure | None:
    """Bias per unit (b + b_rec where a gate has two), one series per gate; the dotted line
    marks unit_forget_bias' start at 1 (LSTMs)."""
    import matplotlib

    first = gates[0].bias
    if first is None:
        return None
    with matplotlib.rc_context(RC):
        fig = new_figure(6.0, 2.4)
        ax = fig.subplots()
        units = np.arange(first.shape[0])
        marker = "o" if units.size <= 64 else None
        for g in gates:
            ax.plot(
                units,
                np.asarray(g.bias),
                marker=marker,
                markersize=2.5,
                linewidth=0.9,
                color=GATE_COLORS[g.gate],
                label=f"{GATE_NAMES[g.gate]} ({g.gate})",
            )
        for g in gates:
            if g.init_bias is not None:
                ax.axhline(g.init_bias, color=GATE_COLORS[g.gate], linewidth=0.6, linestyle=":")
        ax.axhline(0.0, color="#888888", linewidth=0.5)
        ax.set_xlabel("unit")
        integer_ticks(ax.xaxis)
        ax.set_ylabel("bias")
        ax.legend(frameon=False, fontsize=7, ncols=2)
        uri = svg_uri(fig)
    return EmbeddedFigure(uri, f"Bias of every unit for each gate of {layer}")


def spectra_chart(la: LayerAnalysis) -> EmbeddedFigure | None:
    """Singular values of W_g and U_g, and the eigenvalues of U_g with the unit circle."""
    import matplotlib

    if not la.spectra or all(sp.U is None and sp.W is None for sp in la.spectra):
        return None
    with matplotlib.rc_context(RC):
        fig = new_figure(10.0, 2.8, wspace=0.4)
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
            integer_ticks(ax.xaxis)
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
            png_uri(fig)
            if any(sp.U is not None and len(sp.U.singular_values) > 64 for sp in la.spectra)
            else svg_uri(fig)
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
    g = t.gate
    series = [(f"at rest: {g} = act(b_{g})", t.resting_tau, "#D55E00")]
    if t.probe_tau is not None:
        series.append((f"on the probe: mean {g}", t.probe_tau, "#0072B2"))
    finite = [v for _, taus, _ in series for v in taus if v is not None]
    if not finite:
        return None
    hi = max(max(finite), 2.0)
    bins = [float(b) for b in np.geomspace(1.0, hi * 1.05, 30)]
    with matplotlib.rc_context(RC):
        fig = new_figure(5.0, 2.4)
        ax = fig.subplots()
        for label, taus, color in series:
            vals = [v for v in taus if v is not None]
            ax.hist(vals, bins=bins, histtype="step", color=color, label=label, linewidth=1.2)
        ax.set_xscale("log")
        ax.set_xlabel(f"memory time constant τ = 1/(1 − {g}) [steps]")
        ax.set_ylabel("units")
        ax.legend(frameon=False, fontsize=7)
        uri = svg_uri(fig)
    return EmbeddedFigure(
        uri,
        f"Histogram of the {GATE_NAMES[g]}-gate memory time constants of {la.weights.label}",
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
    with matplotlib.rc_context(RC):
        fig = new_figure(10.0, 2.2)
        axes = fig.subplots(1, len(a.gates))
        for ax, ga in zip(axes, a.gates):
            edges = np.asarray(ga.hist_edges)
            counts = np.asarray(ga.hist_counts, float)
            total = counts.sum() or 1.0
            ax.stairs(counts / total, edges, fill=True, color=GATE_COLORS[ga.gate], alpha=0.8)
            ax.set_title(f"{ga.gate} ({GATE_NAMES[ga.gate]}) mean {ga.mean:.2f}")
            ax.set_xlabel("activation")
        axes[0].set_ylabel("fraction of values")
        hist = EmbeddedFigure(
            svg_uri(fig), f"Distribution of each gate's activations of {label} on the probe data"
        )

        fig = new_figure(10.0, 2.6)
        axes = fig.subplots(1, len(a.gates), sharex=True, sharey=True)
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
            svg_uri(fig),
            f"Saturation of each gate of {label}: per unit, the fraction of probe steps "
            "left- versus right-saturated",
        )

        shown = [(a.h, "hidden state h_t")]
        if a.c is not None:  # a GRU has no cell state
            shown.append((a.c, "cell state c_t"))
        fig = new_figure(10.0 if len(shown) == 2 else 5.5, 2.8)
        axes = fig.subplots(1, len(shown), squeeze=False)[0]
        for ax, (arr, name) in zip(axes, shown):
            m = pool_max_abs(arr.T)
            vmax = finite_max_abs([m])
            im = ax.imshow(
                m, cmap=DIVERGING, vmin=-vmax, vmax=vmax, aspect="auto", interpolation="nearest"
            )
            ax.set_title(f"{name}, sequence {a.sequence}")
            ax.set_xlabel("step" if m.shape[1] == arr.shape[0] else "step (pooled)")
            ax.set_ylabel("unit" if m.shape[0] == arr.shape[1] else "unit (pooled)")
            integer_ticks(ax.xaxis)
            integer_ticks(ax.yaxis)
            fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
        states = EmbeddedFigure(
            png_uri(fig),
            f"Heatmaps of the {' and '.join(n.split(' ')[0] for _, n in shown)} states of "
            f"{label} over probe sequence {a.sequence}",
        )
    return hist, sat, states


def layer_figures(la: LayerAnalysis, row_labels: Sequence[str] | None = None) -> LayerFigures:
    """Every figure of one layer section."""
    gates = layer_gates(la.weights)
    label = la.weights.label
    names = row_labels
    if names is None and la.features:
        names = [f.name for f in la.features]
    letters = [g.gate for g in gates]
    heat_w, note_w = heatmaps([g.W for g in gates], "W", names, label, letters)
    heat_u, note_u = heatmaps([g.U for g in gates], "U", None, label, letters)
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
