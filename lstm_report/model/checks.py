"""The thresholds of the health findings (``checks:`` in the config)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Checks:
    """Thresholds of the health findings (``checks:`` in the config)."""

    spectral_radius_max: float = 1.5
    """A recurrent matrix U_g with a larger spectral radius may amplify the state: warning."""
    dead_unit_norm: float = 1e-3
    """A unit whose incoming weights (all gates, W, U and b) have a smaller L2 norm is dead."""
    saturation_fraction: float = 0.99
    """A unit whose gate is saturated on at least this fraction of probe steps: warning."""
    duplicate_cosine: float = 0.99
    """Two units whose incoming weight vectors have a larger cosine similarity: warning."""
    verify_tolerance: float = 1e-4
    """Largest acceptable |numpy replay - Keras| on the verification inputs."""
