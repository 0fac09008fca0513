"""Paths every test shares, wherever its file sits in the tree that mirrors lstm_report/."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
"""This folder: tests/."""
REPO = TESTS.parent
"""The checkout: README.md, configs/, templates/, docs/."""
FIXTURES = TESTS / "fixtures"
"""Files made once by scripts in the repo (tests/fixtures/*/make_*.py), with the outputs of
the frameworks that made them."""
