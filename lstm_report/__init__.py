"""lstm-report: explain what a trained recurrent network (LSTM or GRU; Keras, PyTorch, ONNX)
has learned, from its weights.

The package imports nothing heavy at start-up: ``lstm-report --help`` and config
validation must not pay for TensorFlow (or even numpy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lstm_report._version import __version__

__all__ = ["__version__", "build_report", "BuildResult", "show"]

if TYPE_CHECKING:
    from lstm_report.integrations.show import show
    from lstm_report.pipeline import BuildResult, build_report


def __getattr__(name: str) -> Any:
    # Lazy re-export: importing the package stays cheap.
    if name in ("build_report", "BuildResult"):
        from lstm_report import pipeline

        return getattr(pipeline, name)
    if name == "show":
        from lstm_report.integrations.show import show

        return show
    raise AttributeError(f"module 'lstm_report' has no attribute {name!r}")
