"""Hand a written report to an experiment tracker the user already runs (MLflow).

Optional: ``mlflow`` is imported only when asked for, and only if it is installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

ARTIFACT_PATH = "lstm-report"
"""The folder of the run's artifacts that holds the report."""


def log_mlflow(paths: Sequence[Path], artifact_path: str = ARTIFACT_PATH) -> str | None:
    """Log the files as artifacts of the active MLflow run; return why not, if they were not
    (mlflow not installed, no active run). Errors of mlflow itself propagate."""
    try:
        import mlflow  # optional: only --mlflow needs it
    except ImportError:
        return "mlflow is not installed (pip install mlflow)"
    if mlflow.active_run() is None:
        return "no MLflow run is active (start one with mlflow.start_run())"
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)
    return None
