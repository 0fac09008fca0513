"""Regenerate docs/report.png: the demo report in headless Chromium (Debian's chromium).

python scripts/screenshot.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        page_path = Path(tmp) / "demo.html"
        subprocess.run(
            [sys.executable, "-m", "lstm_report", "demo", "-q", "-o", str(page_path)], check=True
        )
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(page_path.as_uri())
            page.screenshot(path=str(ROOT / "docs" / "report.png"))
            browser.close()
    print(f"wrote {ROOT / 'docs' / 'report.png'}")


if __name__ == "__main__":
    main()
