"""Regenerate tests/golden/demo.json: the demo report's data, the snapshot of the maths.

    python scripts/update_golden.py

A change in the numbers shows up as a diff of this file, apart from template changes
(which the HTML structure tests cover). Volatile values are removed: absolute paths, the
generation time, and the verification errors (they depend on the machine's BLAS).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "demo.json"
VOLATILE = {"path", "generated", "generator", "max_abs_error"}


def normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def demo_data(tmp: Path) -> Any:
    """The demo's data as `lstm-report demo --json` writes it (the test compares the same)."""
    import subprocess

    out = tmp / "demo.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lstm_report",
            "demo",
            "-q",
            "-o",
            str(tmp / "demo.html"),
            "--json",
            str(out),
        ],
        check=True,
    )
    return normalise(json.loads(out.read_text(encoding="utf-8")))


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = demo_data(Path(tmp))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size:,} bytes)", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
