"""Issue 26 item 3: compare with a saved report's JSON, checked against both JSONs parsed back
and against numpy on the weights."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cli import main
from tests.conftest import write_config
from tests.output.test_ci import lstm_tensors, write_safetensors


def _at(node: Any, key: str) -> Any:
    """The value at a row's key path in a layer's (or model's) JSON."""
    parts = key.split(".")
    if parts[0] in ("feature_importance", "input_importance"):
        items = node[parts[0]] if parts[0] == "feature_importance" else node[parts[0]]["features"]
        return next(f["value"] for f in items if f["name"] == parts[1])
    if parts[0] == "memory":
        import statistics

        return statistics.median(node["memory"][parts[1]])
    for p in parts:
        node = node[p]
    return node


@pytest.fixture()
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """Last week's run (a NaN in 'enc', a layer 'gone') and this week's ('new' added)."""
    old = {**lstm_tensors("enc", 3, 4, 0), **lstm_tensors("gone", 3, 4, 2)}
    old["enc.weight_hh_l0"][1, 1] = np.nan
    new = {**lstm_tensors("enc", 3, 4, 1), **lstm_tensors("new", 3, 4, 3)}
    return (
        write_safetensors(tmp_path / "old.safetensors", old),
        write_safetensors(tmp_path / "new.safetensors", new),
    )


def _build(tmp: Path, model: Path, stem: str, *extra: str) -> int:
    return main(
        [
            "build",
            str(model),
            "--name",
            "run",
            "-o",
            str(tmp / f"{stem}.html"),
            "--json",
            str(tmp / f"{stem}.json"),
            "-q",
            *extra,
        ]
    )


def test_build_baseline_compares_the_saved_numbers(tmp_path: Path, runs: tuple[Path, Path]) -> None:
    old_model, new_model = runs
    assert _build(tmp_path, old_model, "last-week") == 0
    os.remove(old_model)  # the old model file is not needed
    assert _build(tmp_path, new_model, "now", "--baseline", str(tmp_path / "last-week.json")) == 0
    old = json.loads((tmp_path / "last-week.json").read_text())
    now = json.loads((tmp_path / "now.json").read_text())
    assert now["comparisons"] == []
    (c,) = now["saved_comparisons"]
    assert c["saved"] == ["baseline"]
    assert (c["baseline"], c["candidate"]) == (str(tmp_path / "last-week.json"), "run")
    assert old["generated"] in c["sources"]["baseline"]
    (la,) = c["layers"]
    assert (la["name"], la["direction"]) == ("enc.l0", "forward")
    assert c["only_baseline"] == ["gone.l0 (forward)"] and c["only_candidate"] == [
        "new.l0 (forward)"
    ]
    before = next(x for x in old["models"][0]["layers"] if x["name"] == "enc.l0")
    after = next(x for x in now["models"][0]["layers"] if x["name"] == "enc.l0")
    keys = {r["key"] for r in la["values"]}
    assert {"gates.i.W.fro", "gates.f.U.spectral", "spectra.o.U.spectral_radius"} <= keys
    assert "memory.resting_tau.median" in keys
    checked = 0
    for r in la["values"]:
        b, a = r["baseline"], r["candidate"]
        try:
            want_b = _at(before, r["key"])
        except (KeyError, TypeError):
            want_b = None
        assert b == want_b, r["key"]
        assert a == _at(after, r["key"]), r["key"]
        if a is not None and b is not None:
            assert r["delta"] == pytest.approx(a - b)
            if b != 0:
                assert r["relative"] == pytest.approx((a - b) / abs(b))
            checked += 1
        else:
            assert r["delta"] is None
    assert checked > 40
    # ...and against numpy on this week's weights: torch's i block of weight_ih_l0
    w = lstm_tensors("enc", 3, 4, 1)["enc.weight_ih_l0"].astype("float32")[0:4]
    row = next(r for r in la["values"] if r["key"] == "gates.i.W.fro")
    assert row["candidate"] == pytest.approx(float(np.linalg.norm(w.astype(np.float64))), rel=1e-6)
    # the NaN in U_i last week (row 1 of weight_hh is gate i): its statistics were null, so nothing to compare there
    nan_row = next(r for r in la["values"] if r["key"] == "gates.i.U.fro")
    assert nan_row["baseline"] is None and nan_row["delta"] is None
    # findings: last week's non-finite weights are resolved
    resolved = {(f["layer"], f["code"]) for f in c["findings"]["resolved"]}
    assert ("enc.l0", "nonfinite-weights") in resolved
    assert all(f["layer"] != "gone.l0" for f in c["findings"]["new"])
    assert "‖ΔA‖_F, the relative change and the cosine of each matrix" in c["needs_model"]
    assert any(x.startswith("spectra") for x in c["compared"])
    page = (tmp_path / "now.html").read_text()
    assert "Compared with a saved report" in page and "Needs the model file" in page


def test_config_side_names_a_saved_report(tmp_path: Path, runs: tuple[Path, Path]) -> None:
    old_model, new_model = runs
    (tmp_path / "reports").mkdir()
    assert _build(tmp_path / "reports", old_model, "last-week") == 0
    cfg = write_config(
        tmp_path,
        f"models:\n  - {{path: {new_model}, name: run}}\n"
        "compare: [{baseline: reports/last-week.json, candidate: run}]\n",
    )
    out = tmp_path / "r.json"
    assert main(["build", str(cfg), "-o", str(tmp_path / "r.html"), "--json", str(out), "-q"]) == 0
    (c,) = json.loads(out.read_text())["saved_comparisons"]
    assert c["baseline"] == "reports/last-week.json" and c["baseline_model"] == "run"


def test_saved_report_may_be_the_candidate(tmp_path: Path, runs: tuple[Path, Path]) -> None:
    old_model, new_model = runs
    assert _build(tmp_path, new_model, "later") == 0
    cfg = write_config(
        tmp_path,
        f"models:\n  - {{path: {old_model}, name: run}}\n"
        "compare: [{baseline: run, candidate: later.json}]\n",
    )
    out = tmp_path / "r.json"
    assert main(["build", str(cfg), "-o", str(tmp_path / "r.html"), "--json", str(out), "-q"]) == 0
    (c,) = json.loads(out.read_text())["saved_comparisons"]
    assert c["saved"] == ["candidate"]
    assert {(f["layer"], f["code"]) for f in c["findings"]["resolved"]} >= {
        ("enc.l0", "nonfinite-weights")
    }


def _refused(tmp_path: Path, model: Path, baseline: Path, capsys: Any) -> str:
    capsys.readouterr()
    code = _build(tmp_path, model, "now", "--baseline", str(baseline))
    err = capsys.readouterr().err
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: --baseline: "), err
    assert "Traceback" not in err and "internal error" not in err
    return err


def test_another_schema_version_is_refused(
    tmp_path: Path, runs: tuple[Path, Path], capsys: Any
) -> None:
    _, model = runs
    assert _build(tmp_path, model, "old") == 0
    data = json.loads((tmp_path / "old.json").read_text())
    data["schema_version"] = 2
    (tmp_path / "old.json").write_text(json.dumps(data))
    err = _refused(tmp_path, model, tmp_path / "old.json", capsys)
    assert "schema_version 2; this lstm-report reads reports of schema_version 1" in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"schema_version": 1, "models": [], "x": NaN}', "NaN is not a JSON number"),
        ("[" * 200 + "]" * 200, "nested more than 100 levels deep"),
        ("[1, 2]", "it has no schema_version"),
        ('{"schema_version": true, "models": []}', "schema_version True"),
        ('{"schema_version": 1, "models": 3}', "models: expected a list, got int"),
        ('{"schema_version": 1, "models": []}', "models: the report has no model"),
        (
            '{"schema_version": 1, "models": [{"name": 5, "layers": []}]}',
            "models[0].name: expected a string, got int",
        ),
        (
            '{"schema_version": 1, "models": [{"name": "run", "layers": [{"name": "enc.l0", '
            '"direction": "forward", "gates": {"i": {"W": [1]}}}]}]}',
            "models[0].layers[0].gates.i.W: expected an object, got list",
        ),
        (
            '{"schema_version": 1, "models": [{"name": "run", "layers": []}], "findings": [{}]}',
            "findings[0].severity: expected a string",
        ),
        ("\xff\xfe", "not valid JSON"),
    ],
)
def test_hostile_saved_reports_are_refused(
    tmp_path: Path, runs: tuple[Path, Path], capsys: Any, text: str, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    err = _refused(tmp_path, runs[1], bad, capsys)
    assert message in err


def test_oversized_and_missing_saved_reports(
    tmp_path: Path, runs: tuple[Path, Path], capsys: Any, monkeypatch: Any
) -> None:
    import lstm_report.output.saved_report as saved_report

    big = tmp_path / "big.json"
    big.write_text('{"schema_version": 1, "pad": "' + "x" * 2000 + '"}')
    monkeypatch.setattr(saved_report, "MAX_BASELINE_BYTES", 1000)
    assert "larger than 1,000 bytes; refused" in _refused(tmp_path, runs[1], big, capsys)
    assert "no such file" in _refused(tmp_path, runs[1], tmp_path / "gone.json", capsys)
    assert "cannot read it: is a directory" in _refused(tmp_path, runs[1], tmp_path, capsys)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    assert "not a regular file (a FIFO)" in _refused(tmp_path, runs[1], fifo, capsys)


def test_saved_report_with_many_models_must_name_one(
    tmp_path: Path, runs: tuple[Path, Path], capsys: Any
) -> None:
    old_model, new_model = runs
    cfg = write_config(
        tmp_path,
        f"models:\n  - {{path: {old_model}, name: a}}\n  - {{path: {new_model}, name: b}}\n",
    )
    assert (
        main(
            [
                "build",
                str(cfg),
                "-o",
                str(tmp_path / "two.html"),
                "--json",
                str(tmp_path / "two.json"),
                "-q",
            ]
        )
        == 0
    )
    err = _refused(tmp_path, new_model, tmp_path / "two.json", capsys)
    assert "has 2 models (a, b) and none is named 'run'" in err


def test_baseline_may_not_be_overwritten(
    tmp_path: Path, runs: tuple[Path, Path], capsys: Any
) -> None:
    _, model = runs
    assert _build(tmp_path, model, "now") == 0
    code = _build(tmp_path, model, "now", "--baseline", str(tmp_path / "now.json"))
    assert code == 1
    assert "--baseline's baseline" in capsys.readouterr().err


def test_names_from_a_saved_report_are_text_on_the_page(
    tmp_path: Path, runs: tuple[Path, Path]
) -> None:
    _, model = runs
    assert _build(tmp_path, model, "old") == 0
    data = json.loads((tmp_path / "old.json").read_text())
    data["findings"] = [
        {
            "severity": "warning",
            "code": "<b>x</b>",
            "model": "run",
            "layer": "enc.l0",
            "message": "<script>alert(1)</script>",
        }
    ]
    data["generator"] = "<img src=x onerror=alert(1)>"
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert _build(tmp_path, model, "now", "--baseline", str(tmp_path / "old.json")) == 0
    page = (tmp_path / "now.html").read_text()
    assert "<script>alert(1)" not in page and "<img src=x" not in page and "<b>x</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_two_saved_reports_and_a_probe_on_one_side(tmp_path: Path, runs: tuple[Path, Path]) -> None:
    old_model, new_model = runs
    probe = tmp_path / "probe.npy"
    np.save(probe, np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32"))
    assert _build(tmp_path, old_model, "a") == 0
    assert _build(tmp_path, new_model, "b", "--probe", str(probe)) == 0
    cfg = write_config(
        tmp_path,
        f"models:\n  - {{path: {new_model}, name: run}}\ncompare: [{{baseline: a.json, candidate: b.json}}]\n",
    )
    out = tmp_path / "r.json"
    assert main(["build", str(cfg), "-o", str(tmp_path / "r.html"), "--json", str(out), "-q"]) == 0
    (c,) = json.loads(out.read_text())["saved_comparisons"]
    assert c["saved"] == ["baseline", "candidate"]
    b = json.loads((tmp_path / "b.json").read_text())
    assert b["models"][0]["layers"][0]["activations"] is not None
    assert "gate activations on the probe (mean) (one side only)" in c["not_compared"]
    assert not any(x.startswith("gate activations") for x in c["compared"])
    rows = {r["key"]: r for la in c["layers"] for r in la["values"]}
    assert rows["activations.i.mean"]["baseline"] is None
    assert (
        rows["activations.i.mean"]["candidate"]
        == b["models"][0]["layers"][0]["activations"]["i"]["mean"]
    )


def test_a_checkpoint_is_not_compared_with_a_saved_report(tmp_path: Path) -> None:
    from lstm_report.config.parse import parse_config
    from lstm_report.errors import ConfigError

    for n in (1, 2):
        write_safetensors(tmp_path / f"epoch_{n}.safetensors", lstm_tensors("enc", 3, 4, n))
    with pytest.raises(
        ConfigError, match=r"compare\[0\]\.candidate: a saved report is compared with a model"
    ):
        parse_config(
            {
                "models": [{"path": "epoch_*.safetensors", "name": "run"}],
                "compare": [{"baseline": "old.json", "candidate": "run@epoch_2"}],
            },
            base_dir=tmp_path,
        )


def test_markdown_summary_says_what_changed_since_the_saved_report(
    tmp_path: Path, runs: tuple[Path, Path]
) -> None:
    from lstm_report.templating import fmt_num

    old_model, new_model = runs
    assert _build(tmp_path, old_model, "old") == 0
    md = tmp_path / "now.md"
    assert (
        _build(
            tmp_path,
            new_model,
            "now",
            "--baseline",
            str(tmp_path / "old.json"),
            "--markdown",
            str(md),
        )
        == 0
    )
    (c,) = json.loads((tmp_path / "now.json").read_text())["saved_comparisons"]
    rows = [
        r
        for la in c["layers"]
        for r in la["values"]
        if r["key"].endswith(".U.spectral_radius") and r["delta"] is not None
    ]
    top = max(rows, key=lambda r: abs(r["delta"]))
    (line,) = [x for x in md.read_text().splitlines() if x.startswith("- ") and "→ run:" in x]
    assert (
        f"{len(c['findings']['new'])} new findings, {len(c['findings']['resolved'])} resolved"
        in line
    )
    assert len(c["findings"]["resolved"]) >= 1
    assert f"{fmt_num(top['baseline'])} → {fmt_num(top['candidate'])}" in line
