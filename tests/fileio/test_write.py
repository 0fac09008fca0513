"""Outputs: written atomically, never over an input, never over a folder, FIFO or device,
keeping the mode of the report they replace."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report import build_report
from lstm_report.cli import main
from lstm_report.errors import OutputError
from tests.conftest import write_config


@pytest.fixture()
def setup(simple_model: Any, tmp_path: Path) -> Path:
    """A folder with its own copy of a model, a probe, a junk model and configs naming them."""
    shutil.copy(simple_model.path, tmp_path / "model.keras")
    np.save(tmp_path / "probe.npy", np.zeros((2, 7, 5), np.float32))
    (tmp_path / "junk.keras").write_bytes(b"\x00" * 100)
    write_config(tmp_path, "models: [{path: model.keras, probe: probe.npy}]\n", "c.yaml")
    write_config(tmp_path, "models: [junk.keras]\n", "junk.yaml")
    write_config(tmp_path, "models: [{path: [model.keras, junk.keras]}]\n", "series.yaml")
    (tmp_path / "sub").mkdir()
    return tmp_path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    ("config", "args", "label", "target"),
    [
        ("c.yaml", ["-o", "model.keras"], "the HTML output", "models[0]'s model"),
        ("c.yaml", ["--json", "model.keras"], "the JSON output", "models[0]'s model"),
        ("c.yaml", ["-o", "c.yaml"], "the HTML output", "the config"),
        ("c.yaml", ["-o", "probe.npy"], "the HTML output", "models[0]'s probe"),
        ("c.yaml", ["-o", "sub/../model.keras"], "the HTML output", "models[0]'s model"),
        ("c.yaml", ["-o", "link.keras"], "the HTML output", "models[0]'s model"),
        ("c.yaml", ["-o", "hard.keras"], "the HTML output", "models[0]'s model"),
        (
            "c.yaml",
            ["-o", "r.html", "--json", "sub/../r.html"],
            "the JSON output",
            "the HTML output",
        ),
        # before any work: the junk model would fail to read if it were read first
        ("junk.yaml", ["-o", "junk.keras"], "the HTML output", "models[0]'s model"),
        ("series.yaml", ["-o", "model.keras"], "the HTML output", "models[0]'s checkpoint 1"),
        ("series.yaml", ["--json", "junk.keras"], "the JSON output", "models[0]'s checkpoint 2"),
    ],
)
def test_an_output_never_replaces_an_input(
    setup: Path,
    config: str,
    args: list[str],
    label: str,
    target: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(setup)
    (setup / "link.keras").symlink_to(setup / "model.keras")
    os.link(setup / "model.keras", setup / "hard.keras")
    before = _snapshot(setup)
    assert main(["build", config, *args, "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f": {label} is the same file as {target} " in err, err
    named = [a for a in args if a not in ("-o", "--json")]
    assert all(a in err for a in named)  # both paths are named
    assert _snapshot(setup) == before and not (setup / "r.html").exists()


def test_refused_before_reading_models(setup: Path) -> None:
    # a folder or a FIFO as output: refused up front (the junk model is never read)
    (setup / "out").mkdir()
    with pytest.raises(OutputError, match=r"out: is a directory; give a file name"):
        build_report(setup / "junk.yaml", output=setup / "out")
    os.mkfifo(setup / "pipe.html")
    with pytest.raises(
        OutputError, match=r"pipe\.html: is a FIFO \(named pipe\), not a regular file"
    ):
        build_report(setup / "junk.yaml", output=setup / "pipe.html")
    with pytest.raises(OutputError, match=r"pipe\.html: is a FIFO"):
        build_report(setup / "c.yaml", output=setup / "r.html", json_path=setup / "pipe.html")
    assert stat.S_ISFIFO(os.stat(setup / "pipe.html").st_mode)
    assert not (setup / "r.html").exists()


def test_devices_are_refused() -> None:
    # never written, only checked: /dev/null must survive any test run
    from lstm_report.fileio.write import check_output_kind, check_outputs

    with pytest.raises(OutputError, match=r"/dev/null: is a character device, not a regular file"):
        check_output_kind(Path("/dev/null"))
    with pytest.raises(OutputError, match="is a character device"):
        check_outputs([("the HTML output", Path("/dev/null"))], [])


@pytest.mark.parametrize("mode", [0o600, 0o444, 0o640])
def test_rebuild_keeps_the_mode(setup: Path, mode: int) -> None:
    out = setup / "r.html"
    out.write_text("previous")
    out.chmod(mode)
    build_report(setup / "c.yaml", output=out, json_path=setup / "r.json")
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_new_files_follow_the_umask(setup: Path) -> None:
    old = os.umask(0o027)
    try:
        build_report(setup / "c.yaml", output=setup / "new.html")
    finally:
        os.umask(old)
    assert stat.S_IMODE((setup / "new.html").stat().st_mode) == 0o640
