"""`lstm-report demo` works from a non-editable install: templates and demo data are packaged."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(REPO),
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (whl,) = out.glob("*.whl")
    return whl


def test_wheel_carries_templates_and_demo(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "lstm_report/_resources/templates/report.html.jinja2",
        "lstm_report/_resources/templates/report.css",
        "lstm_report/_resources/configs/demo.yaml",
        "lstm_report/_resources/configs/demo/demo_lstm.keras",
    ):
        assert needed in names


@pytest.mark.slow
def test_demo_from_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    # The venv sees only the wheel: a PYTHONPATH naming the source checkout (as when the
    # tests run a worktree's code) would shadow it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The dependencies come from the environment running the tests, which may itself be a
    # venv (--system-site-packages would only see the base interpreter's packages). Plain
    # path lines: the .pth files there (e.g. an editable lstm-report) are not processed.
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    parents = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    Path(purelib, "_test_deps.pth").write_text("\n".join(parents) + "\n")
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        timeout=300,
        env=env,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run(
        [str(py), "-c", "import lstm_report; print(lstm_report.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert str(venv) in where  # the wheel's copy, not the source checkout
    r = subprocess.run(
        # --no-verify: what is checked here is the packaging; verification (which imports
        # TensorFlow) is covered by the demo tests on the source tree.
        [str(py), "-m", "lstm_report", "demo", "-q", "--no-verify"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert (work / "lstm-report-demo.html").stat().st_size > 10_000
