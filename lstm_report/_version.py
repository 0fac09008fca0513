"""The version of lstm-report, in one place (hatch reads it from here)."""

__version__ = "0.1.0"
