"""Report from inside Keras: ``from lstm_report.keras import ReportCallback``.

The public import path of the callback, which lives in integrations/keras_callback.py.
Importing this module imports Keras (the callback subclasses keras.callbacks.Callback).
"""

from __future__ import annotations

from lstm_report.integrations.keras_callback import ReportCallback

__all__ = ["ReportCallback"]
