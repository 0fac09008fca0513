"""Issue 12: ReportCallback(mlflow=True) logs the report to the active MLflow run."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integrations.test_keras_api import _model


def _fit(keras: Any, cb: Any) -> None:
    m = _model(keras)
    # Eagerly: what is checked here is what the callback logs, not training; tracing a new
    # train function for every test would cost more than the rest of the test.
    m.compile(optimizer="adam", loss="mse", run_eagerly=True)
    x = np.random.default_rng(0).normal(size=(8, 6, 3)).astype("float32")
    m.fit(x, np.zeros((8, 1)), epochs=1, verbose=0, callbacks=[cb])


class FakeMlflow(types.ModuleType):
    """What the callback uses of mlflow: active_run and log_artifact."""

    def __init__(self, active: bool, fail: bool = False) -> None:
        super().__init__("mlflow")
        self.active = active
        self.fail = fail
        self.logged: list[tuple[str, str | None]] = []

    def active_run(self) -> object | None:
        return object() if self.active else None

    def log_artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        if self.fail:
            raise ConnectionError("tracking server unreachable")
        self.logged.append((local_path, artifact_path))


def test_logs_the_report_and_json_to_the_active_run(
    keras: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lstm_report.keras import ReportCallback

    fake = FakeMlflow(active=True)
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    cb = ReportCallback(tmp_path / "r.html", json_path=tmp_path / "r.json", mlflow=True)
    _fit(keras, cb)
    assert fake.logged == [
        (str(tmp_path / "r.html"), "lstm-report"),
        (str(tmp_path / "r.json"), "lstm-report"),
    ]
    assert cb.error is None


@pytest.mark.parametrize(
    ("module", "reason"),
    [
        (None, "mlflow is not installed"),
        (FakeMlflow(active=False), "no MLflow run is active"),
        (FakeMlflow(active=True, fail=True), "tracking server unreachable"),
    ],
)
def test_never_costs_the_run(
    keras: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Any, reason: str
) -> None:
    from lstm_report.keras import ReportCallback

    monkeypatch.setitem(sys.modules, "mlflow", module)  # None: import mlflow fails
    cb = ReportCallback(tmp_path / "r.html", mlflow=True)
    with pytest.warns(RuntimeWarning, match=f"r.html was not logged to MLflow: {reason}"):
        _fit(keras, cb)
    assert cb.result is not None and cb.result.html_path.is_file()


def test_without_the_option_mlflow_is_not_imported(
    keras: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lstm_report.keras import ReportCallback

    fake = FakeMlflow(active=True)
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    _fit(keras, ReportCallback(tmp_path / "r.html"))
    assert fake.logged == []


def test_with_real_mlflow(keras: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip("mlflow")
    from lstm_report.keras import ReportCallback

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"file:{tmp_path / 'mlruns'}")
    with mlflow.start_run() as run:
        _fit(keras, ReportCallback(tmp_path / "r.html", mlflow=True))
    client = mlflow.tracking.MlflowClient()
    assert [a.path for a in client.list_artifacts(run.info.run_id, "lstm-report")] == [
        "lstm-report/r.html"
    ]
