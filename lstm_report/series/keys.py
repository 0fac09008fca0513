"""The cache key of a checkpoint's figures."""

from __future__ import annotations

import hashlib
import json

from lstm_report._version import __version__
from lstm_report.config.schema import ModelSpec

FORMAT = 1
"""The entries' own format (part of every key)."""


def point_key(spec: ModelSpec, digest: str | None, previous: str | None, first: bool) -> str | None:
    """The cache key of a checkpoint's figures; None when a file could not be hashed."""
    if digest is None or (previous is None and not first):
        return None
    parts = {
        "format": FORMAT,
        "version": __version__,
        "file": digest,
        "previous": previous,
        "reader": spec.reader,
        "unsafe": spec.unsafe,
        "external_data": spec.external_data,
        "activations": [list(a) for a in spec.activations],
    }
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
