"""The demo's numbers against the committed snapshot (scripts/update_golden.py regenerates it).

Floats compare with a relative tolerance of 1e-5: BLAS kernels differ in the last bits
between processors, the maths must not.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def close(a: Any, b: Any, where: str = "$") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        assert math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.slow
def test_demo_matches_snapshot(demo_run: Any) -> None:
    # The demo as `lstm-report demo` writes it (run once per session, see conftest.py).
    sys.path.insert(0, str(ROOT / "scripts"))
    from update_golden import GOLDEN, normalise

    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    close(normalise(json.loads(demo_run.json.read_text(encoding="utf-8"))), expected)


def test_close_notices_a_difference() -> None:
    close({"a": [1.0, {"b": 2}]}, {"a": [1.000001, {"b": 2}]})
    with pytest.raises(AssertionError, match=r"\$\.a\[0\]"):
        close({"a": [1.0]}, {"a": [1.001]})
    with pytest.raises(AssertionError, match="keys"):
        close({"a": 1}, {"b": 1})
