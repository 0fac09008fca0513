"""A recurrent cell as a map of its full state, with its analytic Jacobian.

    s_t = F(s_(t−1), x_t)        s = (h, c) for an LSTM (h first), s = h for a GRU

Every variant a reader produces is covered: both biases of PyTorch and ONNX (added in an
LSTM, split by the reset gate in a GRU with reset_after), a PyTorch LSTM's projection P
(then h has P's width and c the units'), an LSTM's peepholes (ONNX P, TFLite inputs 9-11:
i and f read c_(t−1), o the new c_t, as in cells/lstm.py), GRU reset_after True and False,
and any activation in cells.activations. Vectors are rows, as in the cells' replays; a batch of
states is (..., n), a batch of tangent or adjoint vectors (..., k, n).

``step`` and ``jacobian`` are the public API (issue 24 builds fixed points on them);
``jvp`` (J·v, forward) and ``vjp`` (v·J, backward) are what the Lyapunov exponents and the
Jacobian decay use, without building J: k products cost k/n of J itself. The ``_z``
variants take the input side precomputed (``project``), as a replay does for all steps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lstm_report.cells.activations import activation_fn, activation_grad
from lstm_report.cells.base import CellWeights, flat_matmul
from lstm_report.errors import AnalysisError


class CellMap:
    """One cell (one direction of a layer) as s_t = F(s_(t−1), x_t); see the module doc."""

    def __init__(self, cell: CellWeights, dtype: type = np.float64) -> None:
        self.cell = cell
        self.dtype = dtype
        for name in (cell.activation, cell.recurrent_activation):
            if activation_fn(name) is None or activation_grad(name) is None:
                raise AnalysisError(f"{cell.label}: no Jacobian for activation {name!r}")
        self.act = _with_grad(cell.activation)
        self.rec = _with_grad(cell.recurrent_activation)
        W, U, b, b_rec = cell.stacked()
        self.W: np.ndarray = np.ascontiguousarray(W, dtype=dtype)
        self.U: np.ndarray = np.ascontiguousarray(U, dtype=dtype)  # C order: see replay_inputs
        self.UT: np.ndarray = np.ascontiguousarray(self.U.T)
        u = cell.units
        bias: np.ndarray = np.zeros(W.shape[1], dtype)
        for part in (b, b_rec if cell.kind == "LSTM" or not cell.reset_after else None):
            if part is not None:  # every bias outside the reset gate goes with the input
                bias = bias + part.astype(dtype)
        self.bias = bias
        self.b_rec: np.ndarray = (
            b_rec.astype(dtype)
            if cell.kind == "GRU" and cell.reset_after and b_rec is not None
            else np.zeros(3 * u, dtype)
        )
        self.P: np.ndarray | None = None if cell.P is None else cell.P.astype(dtype)
        self.PT: np.ndarray | None = None if self.P is None else np.ascontiguousarray(self.P.T)
        self.peep: np.ndarray | None = (
            None if cell.peepholes is None else cell.peepholes.astype(dtype)
        )
        """Rows P_i, P_f, P_o (3, units), or None."""
        self.units = u
        self.h_size = cell.output_dim
        """The first h_size entries of a state are h."""
        self.state_size = self.h_size + (u if cell.kind == "LSTM" else 0)

    # --- the public API ------------------------------------------------------------------

    def project(self, x: np.ndarray) -> np.ndarray:
        """The input side of every pre-activation, x·W + the biases outside the recurrence."""
        x = np.asarray(x, self.dtype)
        if x.shape[-1] != self.cell.input_dim:
            raise AnalysisError(
                f"{self.cell.label}: input has {x.shape[-1]} features, not {self.cell.input_dim}"
            )
        return flat_matmul(x, self.W) + self.bias

    def step(self, state: np.ndarray, x: np.ndarray) -> np.ndarray:
        """F(s, x): the next state, (..., n) from (..., n) and (..., input_dim)."""
        return self.step_z(self._state(state), self.project(x))

    def jacobian(self, state: np.ndarray, x: np.ndarray) -> np.ndarray:
        """∂F/∂s at (s, x): (..., n, n), J[..., a, b] = ∂s_next[a] / ∂s[b]."""
        s = self._state(state)
        eye: np.ndarray = np.broadcast_to(
            np.eye(self.state_size, dtype=self.dtype),
            (*s.shape[:-1], self.state_size, self.state_size),
        )
        _, jv = self.jvp_z(s, self.project(x), eye)  # row j is J·e_j, column j of J
        return np.swapaxes(jv, -1, -2)

    def split(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(h, c) of a state (c None for a GRU)."""
        if self.cell.kind == "GRU":
            return state, None
        return state[..., : self.h_size], state[..., self.h_size :]

    # --- with the input side precomputed ---------------------------------------------------

    def step_z(self, s: np.ndarray, zx: np.ndarray) -> np.ndarray:
        return self._forward(s, zx)[0]

    def jvp_z(self, s: np.ndarray, zx: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F(s), J·v) for tangents v (..., k, n): the next state and each row's image."""
        nxt, parts = self._forward(s, zx)
        if self.cell.kind == "LSTM":
            return nxt, self._lstm_jvp(parts, v)
        return nxt, self._gru_jvp(parts, v)

    def vjp_z(self, s: np.ndarray, zx: np.ndarray, a: np.ndarray) -> np.ndarray:
        """a·J for adjoints a (..., k, n): each row pulled back one step, to s."""
        _, parts = self._forward(s, zx)
        if self.cell.kind == "LSTM":
            return self._lstm_vjp(parts, a)
        return self._gru_vjp(parts, a)

    # --- the cells ---------------------------------------------------------------------------

    def _state(self, state: np.ndarray) -> np.ndarray:
        s: np.ndarray = np.asarray(state, self.dtype)
        if s.shape[-1] != self.state_size:
            raise AnalysisError(
                f"{self.cell.label}: state has {s.shape[-1]} values, not {self.state_size}"
            )
        return s

    def _forward(self, s: np.ndarray, zx: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        u = self.units
        if self.cell.kind == "LSTM":
            h, c = s[..., : self.h_size], s[..., self.h_size :]
            z = zx + _mm(h, self.U)
            zi, zf, zo = z[..., :u], z[..., u : 2 * u], z[..., 3 * u :]
            if self.peep is not None:  # i and f read c_(t−1), o the new c_t
                zi, zf = zi + self.peep[0] * c, zf + self.peep[1] * c
            i, di = self.rec(zi)
            f, df = self.rec(zf)
            g, dg = self.act(z[..., 2 * u : 3 * u])
            c_new = f * c + i * g
            o, do = self.rec(zo if self.peep is None else zo + self.peep[2] * c_new)
            ac, dac = self.act(c_new)
            m = o * ac
            h_new = m if self.P is None else _mm(m, self.P)
            parts = {
                "c": c, "i": i, "f": f, "o": o, "g": g, "ac": ac,
                "di": di, "df": df, "do": do, "dg": dg, "dac": dac,
            }  # fmt: skip
            return np.concatenate([h_new, c_new], axis=-1), parts
        h = s
        if self.cell.reset_after:
            hu = _mm(h, self.U) + self.b_rec
            r, dr = self.rec(zx[..., u : 2 * u] + hu[..., u : 2 * u])
            hu_n = hu[..., 2 * u :]
            n, dn = self.act(zx[..., 2 * u :] + r * hu_n)
        else:
            hu = _mm(h, self.U[:, : 2 * u])
            r, dr = self.rec(zx[..., u : 2 * u] + hu[..., u:])
            hu_n = np.zeros(0, self.dtype)
            n, dn = self.act(zx[..., 2 * u :] + _mm(r * h, self.U[:, 2 * u :]))
        z, dz = self.rec(zx[..., :u] + hu[..., :u])
        parts = {"h": h, "z": z, "r": r, "n": n, "hu_n": hu_n, "dz": dz, "dr": dr, "dn": dn}
        return z * h + (1.0 - z) * n, parts

    def _lstm_jvp(self, p: dict[str, np.ndarray], v: np.ndarray) -> np.ndarray:
        u, e = self.units, _rows
        dh, dc = v[..., : self.h_size], v[..., self.h_size :]
        dz = _mm(dh, self.U)
        dzi, dzf, dzo = dz[..., :u], dz[..., u : 2 * u], dz[..., 3 * u :]
        if self.peep is not None:
            dzi, dzf = dzi + self.peep[0] * dc, dzf + self.peep[1] * dc
        di = e(p["di"]) * dzi
        df = e(p["df"]) * dzf
        dg = e(p["dg"]) * dz[..., 2 * u : 3 * u]
        dc_new = e(p["f"]) * dc + e(p["c"]) * df + e(p["i"]) * dg + e(p["g"]) * di
        if self.peep is not None:
            dzo = dzo + self.peep[2] * dc_new
        do = e(p["do"]) * dzo
        dm = do * e(p["ac"]) + e(p["o"]) * e(p["dac"]) * dc_new
        dh_new = dm if self.P is None else _mm(dm, self.P)
        return np.concatenate([dh_new, dc_new], axis=-1)

    def _lstm_vjp(self, p: dict[str, np.ndarray], a: np.ndarray) -> np.ndarray:
        e = _rows
        ah, ac = a[..., : self.h_size], a[..., self.h_size :]
        am = ah if self.PT is None else _mm(ah, self.PT)
        a_zo = am * e(p["ac"]) * e(p["do"])
        ac_all = ac + am * e(p["o"]) * e(p["dac"])  # everything c_t reaches
        if self.peep is not None:
            ac_all = ac_all + a_zo * self.peep[2]
        a_zi = ac_all * e(p["g"]) * e(p["di"])
        a_zf = ac_all * e(p["c"]) * e(p["df"])
        az = np.concatenate([a_zi, a_zf, ac_all * e(p["i"]) * e(p["dg"]), a_zo], axis=-1)
        a_c = ac_all * e(p["f"])
        if self.peep is not None:
            a_c = a_c + a_zi * self.peep[0] + a_zf * self.peep[1]
        return np.concatenate([_mm(az, self.UT), a_c], axis=-1)

    def _gru_jvp(self, p: dict[str, np.ndarray], v: np.ndarray) -> np.ndarray:
        u, e = self.units, _rows
        z, h, n = e(p["z"]), e(p["h"]), e(p["n"])
        if self.cell.reset_after:
            dhu = _mm(v, self.U)
            dr = e(p["dr"]) * dhu[..., u : 2 * u]
            dn = e(p["dn"]) * (dr * e(p["hu_n"]) + e(p["r"]) * dhu[..., 2 * u :])
        else:
            dhu = _mm(v, self.U[:, : 2 * u])
            dr = e(p["dr"]) * dhu[..., u:]
            dn = e(p["dn"]) * _mm(dr * h + e(p["r"]) * v, self.U[:, 2 * u :])
        dz = e(p["dz"]) * dhu[..., :u]
        return np.asarray(z * v + (h - n) * dz + (1.0 - z) * dn)

    def _gru_vjp(self, p: dict[str, np.ndarray], a: np.ndarray) -> np.ndarray:
        u, e = self.units, _rows
        z, h, n, r = e(p["z"]), e(p["h"]), e(p["n"]), e(p["r"])
        a_z = a * (h - n) * e(p["dz"])
        a_n = a * (1.0 - z) * e(p["dn"])
        if self.cell.reset_after:
            a_r = a_n * e(p["hu_n"]) * e(p["dr"])
            a_hu = np.concatenate([a_z, a_r, a_n * r], axis=-1)
            return np.asarray(a * z + _mm(a_hu, self.UT))
        a_rh = _mm(a_n, self.UT[2 * u :])
        a_r = a_rh * h * e(p["dr"])
        a_hu = np.concatenate([a_z, a_r], axis=-1)
        return np.asarray(a * z + a_rh * r + _mm(a_hu, self.UT[: 2 * u]))


def _with_grad(name: str) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """z -> (act(z), act'(z)); sigmoid and tanh from their value, in one ufunc each
    (σ(z) = (1 + tanh(z/2))/2: the replay's two-branch sigmoid took a quarter of the time)."""
    if name == "sigmoid":

        def sigmoid(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            v = 0.5 + 0.5 * np.tanh(0.5 * z)
            return v, v * (1.0 - v)

        return sigmoid
    if name == "tanh":

        def tanh(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            v = np.tanh(z)
            return v, 1.0 - v * v

        return tanh
    fn, grad = activation_fn(name), activation_grad(name)
    assert fn is not None and grad is not None
    return lambda z: (fn(z), grad(z))


def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (..., m) @ b (m, p) as one 2-D product: numpy's stacked matmul of a strided slice
    does not reach BLAS (20x slower for a block of 64 x 8 vectors of 256)."""
    flat = np.ascontiguousarray(a).reshape(-1, a.shape[-1])
    return np.asarray(flat @ b).reshape(*a.shape[:-1], b.shape[1])


def _rows(x: np.ndarray) -> np.ndarray:
    """A per-state array (..., m) broadcast over a block of vectors (..., k, m)."""
    return x[..., None, :]


def cell_map(cell: CellWeights, dtype: type = np.float64) -> CellMap:
    """The cell as a state map with its Jacobian (AnalysisError for an activation without
    a derivative here)."""
    return CellMap(cell, dtype)
