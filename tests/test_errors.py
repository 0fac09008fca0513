"""Error messages stay one line of reasonable length, however large the values they quote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cli import main
from lstm_report.config.yaml_file import load_config
from lstm_report.errors import ConfigError, listing, one_line, quote, shorten
from tests.conftest import write_config
from tests.test_end_to_end import run_main


def test_helpers() -> None:
    assert quote("abc") == "'abc'"
    assert quote("x" * 1000) == repr("x" * 60) + "… (1,000 characters)"
    assert shorten("y" * 61) == "y" * 60 + "… (61 characters)"
    assert listing([]) == "none"
    assert listing(["a", "b"]) == "a, b"
    assert listing(f"n{i}" for i in range(10_000)) == "n0, n1, n2, n3, n4, … and 9,995 more"
    assert one_line("a\nb") == "a b"
    assert len(one_line("z" * 100_000)) <= 1000


@pytest.mark.parametrize(
    ("template", "start"),
    [
        (
            "reader: {big}\nmodels: [a.keras]\n",
            "reader: expected one of auto, direct, keras, got a string ('xxx",
        ),
        ("? {big}\n: 1\nmodels: [a.keras]\n", "xxxxx"),
        (
            "models: [{{path: a.keras, name: {big}}}, {{path: b.keras, name: {big}}}]\n",
            "models[1].name: duplicate model name 'xxx",
        ),
    ],
)
def test_long_config_values_are_shortened(tmp_path: Path, template: str, start: str) -> None:
    cfg = write_config(tmp_path, template.format(big="x" * 200_000))
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    message = str(info.value)
    assert message.startswith(start) and len(message) < 400, message[:500]
    assert "(200,000 characters)" in message


def test_npz_with_many_arrays_lists_a_few(
    simple_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.savez(tmp_path / "probe.npz", **{f"array_{i}": np.zeros(1) for i in range(10_000)})
    cfg = write_config(tmp_path, f"models: [{{path: {simple_model.path}, probe: probe.npz}}]\n")
    assert main(["build", str(cfg), "-o", str(tmp_path / "r.html"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 400, err[:500]
    assert (
        "holds 10000 arrays (array_0, array_1, array_2, array_3, array_4, … and 9,995 more)" in err
    )


def test_cli_caps_the_error_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, "models: [" + "d/" * 50_000 + "m.keras]\n")
    code, err = run_main(capfd, "build", str(cfg), "-o", str(tmp_path / "r.html"))
    assert code == 1
    assert err.startswith("error: models[0]") and err.count("\n") == 1
    assert len(err) <= 1001, len(err)
