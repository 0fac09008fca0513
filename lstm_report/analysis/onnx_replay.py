"""An ONNX model's whole graph on the probe, run by onnx's numpy reference evaluator
(onnxruntime where installed): the model's prediction, for the importance.

The graph was checked by its reader (readers/onnx/whole_graph.py): one input, one output, every
weight inside the file, standard operators only; nothing in it is Python code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lstm_report.errors import AnalysisError
from lstm_report.model.graph import ModelGraph


def onnx_forward(
    g: ModelGraph,
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str | None]:
    """What runs the graph on (sequences, steps, features) inputs and returns its (first)
    output with sequences first, and how the output was taken; or None and why not."""
    if g.onnx is None or g.stop is not None:
        return None, g.stop or "the ONNX graph cannot be run"
    run = _session(g.onnx)
    if run is None:
        return None, "running the whole ONNX graph needs the onnx package"
    batch_first = g.onnx_batch_first

    def raw(x: np.ndarray) -> np.ndarray:
        feed = np.asarray(x, np.float32)
        try:
            return np.asarray(run(feed if batch_first else feed.transpose(1, 0, 2)))
        except Exception as exc:  # the evaluators raise many kinds
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise AnalysisError(f"the ONNX graph does not run on the probe: {first}") from None

    # Which output axis holds the sequences: the one whose size follows their number
    # (learnt on the first call, by running one sequence as well).
    axis: list[int] = []

    def forward(x: np.ndarray) -> np.ndarray:
        out = raw(x)
        if not axis:
            other = raw(x[:1]) if x.shape[0] > 1 else out
            sizes = [i for i in range(out.ndim) if out.shape[i] != other.shape[i]]
            axis.append(sizes[0] if sizes else 0)
        return np.moveaxis(out, axis[0], 0)

    return forward, g.note


def _session(data: bytes) -> Callable[[np.ndarray], Any] | None:
    try:  # onnxruntime, where installed: far faster than the reference evaluator
        import onnxruntime as ort  # optional and heavy: used where installed

        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return lambda x: sess.run(None, {name: x})[0]
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 (a graph onnxruntime refuses: try the reference one)
        pass
    try:
        import onnx  # optional: only ONNX models replay here
        from onnx.reference import ReferenceEvaluator  # optional: as onnx
    except ImportError:
        return None
    model = onnx.load_from_string(data)
    ev: Any = ReferenceEvaluator(model)
    init = {t.name for t in model.graph.initializer}
    name = next(i.name for i in model.graph.input if i.name not in init)
    return lambda x: ev.run(None, {name: x})[0]
