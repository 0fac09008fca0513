"""One recurrent layer's part of the JSON contract (``models[i].layers[j]``): statistics,
spectra, memory, dynamics and what the probe measured."""

from __future__ import annotations

from typing import Any

from lstm_report.cells.kinds import equations
from lstm_report.model.analyses import LayerAnalysis
from lstm_report.model.mechanism import Mechanism, ProbeActivity, UnitAblation
from lstm_report.model.stats import Dynamics, MatrixStats, Spectrum, Timescales, Verification


def stats_json(st: MatrixStats | None) -> dict[str, Any] | None:
    if st is None:
        return None
    out: dict[str, Any] = {
        "shape": list(st.shape),
        "fro": st.fro,
        "l1": st.l1,
        "max_abs": st.max_abs,
        "mean": st.mean,
        "std": st.std,
        "nonfinite": st.nonfinite,
    }
    if st.is_matrix:
        out["spectral"] = st.spectral
    return out


def spectrum_json(sp: Spectrum | None, *, recurrent: bool) -> dict[str, Any] | None:
    if sp is None:
        return None
    out: dict[str, Any] = {
        "singular_values": list(sp.singular_values),
        "stable_rank": sp.stable_rank,
    }
    if recurrent:
        out["spectral_radius"] = sp.spectral_radius
    n = len(sp.singular_values)
    computed: dict[str, Any] = {
        "singular_values": {"method": sp.singular_method, "count": n, "of": n}
    }
    if recurrent and sp.eigen_method is not None:
        computed["eigenvalues"] = {
            "method": sp.eigen_method,
            "which": "all" if sp.eigen_method == "dense" else "largest_magnitude",
            "count": len(sp.eigenvalues or ()),
            "of": sp.eigen_total,
            "tolerance": sp.eigen_tolerance,
        }
    out["computed"] = computed
    return out


def memory_json(t: Timescales | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "gate": t.gate,
        "resting_forget": list(t.resting_keep),
        "resting_tau": list(t.resting_tau),
        "forget_bias_shift": t.bias_shift,
        "probe_forget": None if t.probe_keep is None else list(t.probe_keep),
        "probe_tau": None if t.probe_tau is None else list(t.probe_tau),
    }


def gate_json(la: LayerAnalysis) -> dict[str, Any]:
    """Per gate: W, U, b and, where the layer has two biases (always for a GRU, null where
    it has one), b_rec."""
    two = la.weights.cell_kind == "GRU" or any(g.b_rec is not None for g in la.gates)
    return {
        g.gate: {
            "W": stats_json(g.W),
            "U": stats_json(g.U),
            "b": stats_json(g.b),
            **({"b_rec": stats_json(g.b_rec)} if two else {}),
        }
        for g in la.gates
    }


def _cell_extras(la: LayerAnalysis) -> dict[str, Any]:
    """The keys only some cells have: reset_after (GRU), projection and peepholes (LSTM)."""
    w, cell = la.weights, la.weights.cell
    out: dict[str, Any] = {}
    if cell.reset_after is not None:
        out["reset_after"] = cell.reset_after
    if la.projection is not None:
        out["projection"] = {"P": stats_json(la.projection), "output_dim": w.output_dim}
    if la.peepholes:
        out["peepholes"] = {name: stats_json(st) for name, st in la.peepholes}
    return out


def feature_importance_json(la: LayerAnalysis) -> list[dict[str, Any]] | None:
    """The input weight norms of a layer that reads the model input, per gate too."""
    if la.features is None:
        return None
    return [
        {
            "name": f.name,
            "value": f.value,
            "rank": f.rank,
            "per_gate": dict(zip(la.weights.gate_names, f.per_gate)),
        }
        for f in la.features
    ]


def verification_json(v: Verification | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {
        "max_abs_error": v.max_abs_error,
        "inputs": v.inputs,
        "tolerance": v.tolerance,
        "ok": v.ok,
        "error": v.error,
    }


def activations_json(a: ProbeActivity | None) -> dict[str, Any] | None:
    if a is None:
        return None
    return {
        ga.gate: {
            "mean": ga.mean,
            "left_saturated": ga.left_saturated,
            "right_saturated": ga.right_saturated,
        }
        for ga in a.gates
    }


def layer_json(la: LayerAnalysis) -> dict[str, Any]:
    w = la.weights
    cell = w.cell
    return {
        "name": w.name,
        "direction": w.direction,
        "kind": w.kind,
        "framework": w.framework,
        "units": w.units,
        "input_dim": w.input_dim,
        **_cell_extras(la),
        "equations": list(equations(cell)),
        "wrapper": w.wrapper,
        "activation": w.activation,
        "recurrent_activation": w.recurrent_activation,
        "use_bias": w.use_bias,
        "go_backwards": w.go_backwards,
        "reads_input": w.reads_input,
        "params": w.params,
        "gates": gate_json(la),
        "feature_importance": feature_importance_json(la),
        "verification": verification_json(la.verification),
        "spectra": {
            sp.gate: {
                "W": spectrum_json(sp.W, recurrent=False),
                "U": spectrum_json(sp.U, recurrent=True),
            }
            for sp in la.spectra
        },
        "memory": memory_json(la.timescales),
        "dynamics": dynamics_json(la.dynamics, la.mechanism),
        # The issue names this list layers[j].units, but "units" is the layer's unit count
        # since schema 1: the list goes beside it rather than change that key's type.
        "unit_ablation": units_json(la.units),
        "units_target": None if la.units is None else la.units.target,
        "units_target_reason": None if la.units is None else la.units.reason,
        "activations": activations_json(la.activity),
    }


def dynamics_json(d: Dynamics | None, mech: Mechanism | None = None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        **mechanism_json(mech),
        "state": d.state,
        "lyapunov": list(d.lyapunov),
        "lyapunov_spread": list(d.lyapunov_spread),
        "unstable": d.unstable,
        "jacobian_decay": list(d.jacobian_decay),
        "sequences": d.sequences,
        "steps": d.steps,
        "burn_in": d.burn_in,
        "directions": d.directions,
    }


def mechanism_json(mech: Mechanism | None) -> dict[str, Any]:
    """fixed_points, slow_manifold and how they were searched (all null without a search)."""
    if mech is None:
        return {"fixed_points": None, "slow_manifold": None, "fixed_point_search": None}
    sm = mech.slow_manifold
    return {
        "fixed_points": [
            {
                "kind": p.kind,
                "norm": p.norm,
                "residual": p.residual,
                "eigenvalues": [list(e) for e in p.eigenvalues],
                "stable": p.stable,
            }
            for p in mech.fixed_points
        ],
        "slow_manifold": (
            None
            if sm is None
            else {
                "dimension": sm.dimension,
                "explained": sm.explained,
                "eigenvalue_near_one": sm.eigenvalue_near_one,
                "input_drive": sm.input_drive,
            }
        ),
        "fixed_point_search": {
            "inputs": mech.inputs,
            "starts": mech.starts,
            "iterations": mech.iterations,
            "typical_q": mech.typical_q,
            "limited": mech.limited,
        },
    }


def units_json(u: UnitAblation | None) -> list[dict[str, Any]] | None:
    if u is None:
        return None
    return [
        {
            "unit": e.unit,
            "value": e.value,
            "low": e.low,
            "high": e.high,
            "tau": e.tau,
            "mean_activity": e.mean_activity,
            "saturated": e.saturated,
        }
        for e in u.units
    ]
