"""Typed errors. Library code raises these; only the CLI prints them."""

from __future__ import annotations


class LstmReportError(Exception):
    """Base class: the message is one line that says what went wrong and where."""


class ConfigError(LstmReportError):
    """The config (or a CLI option standing in for it) is invalid."""


class ModelLoadError(LstmReportError):
    """A model file is missing, unreadable, unsafe or not a Keras model."""


class CorruptModelError(ModelLoadError):
    """The file is damaged or hostile (data missing, impossible, or kept outside the file):
    refused outright, no reader tries it."""


class UnsafeModelError(ModelLoadError):
    """The model needs unsafe deserialization (e.g. a Lambda layer) and no opt-in was given."""


class AnalysisError(LstmReportError):
    """The weights cannot be analysed (e.g. shapes inconsistent with an LSTM)."""


class OutputError(LstmReportError):
    """The report or JSON cannot be written."""
