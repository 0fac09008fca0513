"""Issue 20: published pages name files as the config did, never by local absolute paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lstm_report.cli import main
from tests.framework_series import write_series
from tests.helpers import FIXTURES

FIX = FIXTURES / "frameworks"


def _outputs(out: Path) -> str:
    return "".join((out / f"r.{ext}").read_text(encoding="utf-8") for ext in ("html", "json", "md"))


def test_config_paths_are_shown_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home" / "someone"
    project = home / "project"
    write_series(project / "ckpt", ".safetensors")
    elsewhere = home / "elsewhere" / "half.safetensors"
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_bytes((FIX / "torch_half.safetensors").read_bytes())
    (project / "listed").mkdir()
    for n in (1, 2):
        (project / "listed" / f"s{n}.safetensors").write_bytes(
            (FIX / "torch_half.safetensors").read_bytes()
        )
    cfg = project / "config.yaml"
    cfg.write_text(
        "models:\n"
        "  - {path: ckpt/epoch_*.safetensors, name: run}\n"
        f"  - {{path: {elsewhere}, name: abs}}\n"
        "  - {path: [./listed/s1.safetensors, listed/../listed/s2.safetensors], name: listed}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)  # the config's folder, not the current one, is what counts
    args = ["build", str(cfg), "-q", "--no-cache", "-o", str(out / "r.html")]
    assert main([*args, "--json", str(out / "r.json"), "--markdown", str(out / "r.md")]) == 0
    assert capsys.readouterr().err == ""
    models = json.loads((out / "r.json").read_text())["models"]
    assert [m["path"] for m in models] == [
        "ckpt/epoch_3.safetensors",
        "half.safetensors",  # absolute in the config: the file name only
        "listed/s2.safetensors",
    ]
    assert [c["path"] for c in models[0]["series"]["checkpoints"]] == [
        f"ckpt/epoch_{n}.safetensors" for n in (1, 2, 3)
    ]
    assert [c["path"] for c in models[2]["series"]["checkpoints"]] == [
        "listed/s1.safetensors",
        "listed/s2.safetensors",
    ]
    text = _outputs(out)
    assert str(tmp_path) not in text and "someone" not in text
    # names may wrap at / _ . on a phone (a <wbr> there)
    assert "<code>ckpt/epoch_3.safetensors</code>" in text.replace("<wbr>", "")


def test_a_model_file_on_the_command_line_is_shown_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "models" / "net.safetensors"
    model.parent.mkdir()
    model.write_bytes((FIX / "torch_state_dict.safetensors").read_bytes())
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    for given in (str(model), "models/net.safetensors"):
        args = ["build", given, "-q", "-o", str(out / "r.html"), "--json", str(out / "r.json")]
        assert main([*args, "--markdown", str(out / "r.md")]) == 0
        (m,) = json.loads((out / "r.json").read_text())["models"]
        assert m["path"] == "net.safetensors"
        assert str(tmp_path) not in _outputs(out)
