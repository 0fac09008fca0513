"""Report from inside Keras: ``from lstm_report.keras import ReportCallback``.

This module imports Keras (it subclasses ``keras.callbacks.Callback``); the rest of the
package does not need it.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from lstm_report.errors import ConfigError
from lstm_report.integrations.in_memory import check_model_options, options_config
from lstm_report.integrations.tracking import log_mlflow
from lstm_report.model.layers import ModelWeights
from lstm_report.pipeline import BuildResult, build_report
from lstm_report.readers.keras.load import from_model, refresh


class ReportCallback(keras.callbacks.Callback):
    """Write the lstm-report page of the model being trained, from memory (no saving).

    At the end of training the report is written to ``output``. With ``every=N`` the
    callback also keeps a snapshot of the LSTM weights every N epochs (a copy of those
    arrays only, a few milliseconds) and the final report plots them as a checkpoint
    series; ``write_every=True`` also rewrites the report at those epochs, in a background
    thread so that training does not wait for it.

    Other keyword arguments are config keys, as for one entry of ``models:`` plus
    ``title`` and ``checks``: e.g. ``feature_names=[...]``, ``layers=[...]``,
    ``probe="probe.npy"``. They are checked here (unknown keys) and when training begins
    (against the model), so that a mistake stops ``fit`` before the first epoch, not
    after the last. A report that fails to be written never costs the trained model: the
    callback warns, keeps the exception in ``error`` and training ends as usual;
    ``raise_errors=True`` makes it raise instead.

    ``mlflow=True`` logs the final report (and its JSON) as artifacts of the active MLflow
    run, under ``lstm-report/``, when ``mlflow`` is installed and a run is active (else it
    warns, once, why not); mlflow is never a requirement.
    """

    def __init__(
        self,
        output: str | Path,
        *,
        json_path: str | Path | None = None,
        every: int | None = None,
        write_every: bool = False,
        verify: bool | None = None,
        raise_errors: bool = False,
        mlflow: bool = False,
        **options: Any,
    ) -> None:
        super().__init__()
        if every is not None and (
            isinstance(every, bool) or not isinstance(every, int) or every < 1
        ):
            raise ConfigError(f"every: expected a positive number of epochs, got {every!r}")
        options_config(options, "model")  # unknown or malformed keys fail here, at once
        self.output = Path(output)
        self.json_path = json_path
        self.every = every
        self.write_every = write_every
        self.verify = verify
        self.raise_errors = raise_errors
        self.mlflow = mlflow
        self.error: Exception | None = None
        self.options: Mapping[str, Any] = options
        self.snapshots: list[tuple[str, ModelWeights]] = []
        self.result: BuildResult | None = None
        self._writer: threading.Thread | None = None
        self._template: ModelWeights | None = None

    def _snapshot(self, label: str) -> None:
        if self._template is None:  # the architecture, read once
            name = str(self.options.get("name", getattr(self.model, "name", "model")))
            self._template = from_model(self.model, name=name, path=label)
        self.snapshots.append((label, refresh(self.model, self._template)))

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        # The model is known now: layers, feature names and probe must fit it.
        name = str(self.options.get("name", getattr(self.model, "name", "model")))
        check_model_options(self.model, options_config(self.options, name))

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.every is None or (epoch + 1) % self.every:
            return
        self._snapshot(f"epoch {epoch + 1}")
        if self.write_every and (self._writer is None or not self._writer.is_alive()):
            # Skip this one if the previous report is still being written. The thread
            # reports the snapshot just taken, never the weights training is changing.
            snapshot = self.snapshots[-1][1]
            self._writer = threading.Thread(target=self._try_write, args=(snapshot,), daemon=True)
            self._writer.start()

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.join()
        self.result = self._try_write(None, final=True)
        if self.mlflow and self.result is not None:
            self._log_mlflow(self.result)

    def _log_mlflow(self, result: BuildResult) -> None:
        paths = [p for p in (result.html_path, result.json_path) if p is not None]
        try:
            why_not = log_mlflow(paths)
        except Exception as exc:  # the tracking server: never at the cost of the model
            if self.raise_errors:
                raise
            self.error = exc
            why_not = str(exc)
        if why_not is not None:
            warnings.warn(
                f"lstm-report: the report {self.output} was not logged to MLflow: {why_not}",
                RuntimeWarning,
                stacklevel=2,
            )

    def _try_write(self, snapshot: ModelWeights | None, final: bool = False) -> BuildResult | None:
        try:
            return self._write(snapshot, final)
        except Exception as exc:
            if self.raise_errors and final:
                raise
            self.error = exc
            warnings.warn(
                f"lstm-report: the report {self.output} was not written: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
            return None

    def _write(self, snapshot: ModelWeights | None, final: bool = False) -> BuildResult:
        series = list(self.snapshots)
        if final and self.every is not None:
            epochs = int(self.params.get("epochs", 0)) if self.params else 0
            if not series or series[-1][0] != f"epoch {epochs}":
                self._snapshot("end of training")
                series = list(self.snapshots)
        return build_report(
            self.model,
            output=self.output,
            json_path=self.json_path,
            verify=self.verify,
            options={**self.options, "series": series, "weights": snapshot},
        )
