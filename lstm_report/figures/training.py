"""Figures across training: what changed between two models, and a checkpoint series."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstm_report.figures.encode import GATE_COLORS, RC, EmbeddedFigure, new_figure, svg_uri
from lstm_report.figures.layer import heatmaps
from lstm_report.gates import layer_gates
from lstm_report.model import GATE_NAMES, LayerDelta, Series


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
    letters = [g.gate for g in ga]
    dW, _ = heatmaps(
        [np.asarray(y.W, np.float64) - x.W for x, y in zip(ga, gb)], "ΔW", None, label, letters
    )
    dU, _ = heatmaps(
        [np.asarray(y.U, np.float64) - x.U for x, y in zip(ga, gb)], "ΔU", None, label, letters
    )
    with matplotlib.rc_context(RC):
        fig = new_figure(10.0, 2.2)
        axes = fig.subplots(1, len(ga))
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
            svg_uri(fig), f"Histograms of the weights of each gate of {label}, before and after"
        )

        fig = new_figure(4.6, 2.4)
        ax = fig.subplots()
        pos = np.arange(len(letters))
        fams = ["W", "U"] + [f for f in ("b", "b_rec") if getattr(ld.gates[0], f) is not None]
        width = 0.8 / len(fams)
        colors = {"W": "#0072B2", "U": "#E69F00", "b": "#555555", "b_rec": "#AAAAAA"}
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
        ax.set_xticks(pos, labels=[f"{g} ({GATE_NAMES[g]})" for g in letters])
        ax.set_ylabel("relative change ‖ΔA‖ / ‖A‖")
        ax.legend(frameon=False)
        rel = EmbeddedFigure(
            svg_uri(fig), f"Relative change of W, U and b per gate of {label}: which gate learned"
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

        with matplotlib.rc_context(RC):
            fig = new_figure(10.0, 2.9, bottom=0.8, wspace=0.3)
            ax_n, ax_r, ax_t, ax_c = fig.subplots(1, 4)
            first = next(r for r in rows if r is not None)
            for g in (name for name, _ in first.gates):
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
            ax_t.set_title("median memory τ at rest [steps]")
            ax_c.set_title("relative change since previous")
            ax_n.legend(frameon=False, fontsize=6)
            for ax in (ax_n, ax_r, ax_t, ax_c):
                ax.set_xticks(x, labels=labels, rotation=45, ha="right", fontsize=6)
                ax.set_ylim(bottom=0)  # from zero: a drift of 0.03 must not look like a cliff
            uri = svg_uri(fig)
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
                    f"Per-gate norms, spectral radii, memory timescale and change of {label} "
                    f"across {len(labels)} checkpoints",
                ),
            )
        )
    return tuple(out)
