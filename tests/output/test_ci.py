"""Issue 26 items 2 and 5: $GITHUB_STEP_SUMMARY, --junit and --fail-if, on PyTorch weights
written by hand as safetensors (no framework needed), checked against the JSON parsed back."""

from __future__ import annotations

import json
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cli import main
from lstm_report.errors import ExpressionError
from lstm_report.model.analyses import ModelAnalysis
from lstm_report.model.mechanism import MemoryHorizon
from lstm_report.model.report import ReportData
from lstm_report.output.alerts import evaluate
from lstm_report.output.fail_if import known, parse
from lstm_report.output.junit import CHECKS


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> Path:
    """The safetensors format: 8-byte little-endian header length, JSON header, data."""
    header: dict[str, Any] = {}
    blobs = []
    at = 0
    for name, arr in tensors.items():
        raw = np.ascontiguousarray(arr, "<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(arr.shape),
            "data_offsets": [at, at + len(raw)],
        }
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    return path


def lstm_tensors(
    prefix: str, n_in: int, units: int, seed: int, scale: float = 0.3
) -> dict[str, np.ndarray]:
    """One layer of a torch nn.LSTM (gates i, f, g, o stacked on the first axis)."""
    rng = np.random.default_rng(seed)
    return {
        f"{prefix}.weight_ih_l0": rng.normal(0, scale, (4 * units, n_in)),
        f"{prefix}.weight_hh_l0": rng.normal(0, scale, (4 * units, units)),
        f"{prefix}.bias_ih_l0": rng.normal(0, 0.1, 4 * units),
        f"{prefix}.bias_hh_l0": rng.normal(0, 0.1, 4 * units),
    }


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    """Two LSTMs: 'calm' (small weights) and 'wild' (a large recurrent matrix, and a NaN)."""
    tensors = {**lstm_tensors("calm", 3, 4, 0, 0.1), **lstm_tensors("wild<&>", 3, 4, 1, 2.0)}
    tensors["wild<&>.weight_ih_l0"][0, 0] = np.nan
    return write_safetensors(tmp_path / "two.safetensors", tensors)


def _build(tmp_path: Path, model: Path, *extra: str, env: Any = None) -> tuple[int, dict[str, Any]]:
    code = main(
        [
            "build",
            str(model),
            "-o",
            str(tmp_path / "r.html"),
            "--json",
            str(tmp_path / "r.json"),
            "-q",
            *extra,
        ]
    )
    return code, json.loads((tmp_path / "r.json").read_text())


# -- JUnit -----------------------------------------------------------------------------------

TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]{0,3})?")
"""The time attribute's pattern in the JUnit schema pytest follows (SUREFIRE_TIME)."""

SCHEMA: dict[str, tuple[set[str], set[str], set[str]]] = {
    # element: (required attributes, allowed attributes, allowed children)
    "testsuites": (set(), {"name", "time", "tests", "failures", "errors"}, {"testsuite"}),
    "testsuite": (
        {"name", "tests", "failures", "errors"},
        {
            "name",
            "tests",
            "failures",
            "errors",
            "group",
            "time",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
            "version",
        },
        {"testsuite", "properties", "testcase", "system-out", "system-err"},
    ),
    "testcase": (
        {"name"},
        {"name", "time", "classname", "group"},
        {"skipped", "error", "failure", "system-out", "system-err"},
    ),
    "failure": (set(), {"type", "message"}, set()),
    "error": (set(), {"type", "message"}, set()),
    "skipped": (set(), {"type", "message"}, set()),
    "system-out": (set(), set(), set()),
    "system-err": (set(), set(), set()),
}


def check_schema(el: ET.Element) -> None:
    """The JUnit XML schema (junit-10.xsd, as pytest's xunit2 output): every element known,
    required attributes present, no other attribute, children only where allowed."""
    assert el.tag in SCHEMA, el.tag
    required, allowed, children = SCHEMA[el.tag]
    assert required <= set(el.attrib), (el.tag, el.attrib)
    assert set(el.attrib) <= allowed, (el.tag, el.attrib)
    if "time" in el.attrib and el.tag != "testcase":
        assert TIME.fullmatch(el.attrib["time"]), el.attrib["time"]
    for child in el:
        assert child.tag in children, (el.tag, child.tag)
        check_schema(child)


def test_junit_one_case_per_model_layer_check(tmp_path: Path, model: Path) -> None:
    xml = tmp_path / "findings.xml"
    code, data = _build(tmp_path, model, "--junit", str(xml))
    assert code == 0
    text = xml.read_text(encoding="utf-8")
    root = ET.fromstring(text)  # strict: any malformed byte raises
    check_schema(root)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [m["name"] for m in data["models"]]
    cases = root.findall("testsuite/testcase")
    layers = [la for m in data["models"] for la in m["layers"]]
    assert len(layers) == 2
    assert len(cases) == len(layers) * len(CHECKS)
    assert {(c.get("classname"), c.get("name")) for c in cases} == {
        (f"{data['models'][0]['name']}.{la['name']}", code) for la in layers for code, _ in CHECKS
    }
    # Failing / erroring exactly where the JSON has a warning / an error finding.
    by_case = {(c.get("classname"), c.get("name")): c for c in cases}
    bad = {
        (f"{f['model']}.{f['layer']}", f["code"]): f["severity"]
        for f in data["findings"]
        if f["severity"] in ("warning", "error")
    }
    assert "error" in bad.values()  # the NaN
    for key, case in by_case.items():
        kinds = {child.tag for child in case} - {"system-out"}
        want = {"error": {"error"}, "warning": {"failure"}}.get(bad.get(key, ""), None)
        if want is not None:
            assert kinds == want, key
        else:
            assert kinds <= {"skipped"}, key
    n_err = sum(1 for v in bad.values() if v == "error")
    n_fail = sum(1 for v in bad.values() if v == "warning")
    assert (root.get("errors"), root.get("failures")) == (str(n_err), str(n_fail))
    assert root.get("tests") == str(len(cases))
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    assert suites[0].get("skipped") == str(skipped)
    # Names from the file are text, never markup.
    assert any("wild<&>" in (c.get("classname") or "") for c in cases)
    assert "wild&lt;&amp;&gt;" in text and "wild<&>" not in text


def test_junit_names_xml_cannot_carry_are_escaped(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "m.safetensors", lstm_tensors("a", 2, 3, 0))
    xml = tmp_path / "j.xml"
    assert (
        main(
            [
                "build",
                str(model),
                "--name",
                "bad\x01\x1bname",
                "-o",
                str(tmp_path / "r.html"),
                "--junit",
                str(xml),
                "-q",
            ]
        )
        == 0
    )
    root = ET.fromstring(xml.read_bytes())
    check_schema(root)
    assert root.find("testsuite").get("name") == "bad\\x01\\x1bname"  # type: ignore[union-attr]


def test_junit_output_may_not_be_an_input(tmp_path: Path, model: Path, capsys: Any) -> None:
    code = main(["build", str(model), "-o", str(tmp_path / "r.html"), "--junit", str(model)])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "JUnit" in err and len(err.splitlines()) == 1


# -- $GITHUB_STEP_SUMMARY --------------------------------------------------------------------


def test_step_summary_is_appended(tmp_path: Path, model: Path, monkeypatch: Any) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    md = tmp_path / "r.md"
    code, _ = _build(tmp_path, model, "--name", "run | *1*", "--markdown", str(md))
    assert code == 0
    text = summary.read_text()
    assert text.startswith("earlier step\n### ")
    # the Markdown summary of the same report, without the link to the page
    assert text == "earlier step\n" + md.read_text().replace("[Full report](r.html) · ", "")
    # the table has two columns on every row: the name's '|' is escaped
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows and all(len(re.split(r"(?<!\\)\|", r)) == 4 for r in rows)
    assert "run \\| \\*1\\*" in text
    # a second run appends again
    _build(tmp_path, model)
    assert summary.read_text().count("### ") == 2


def test_no_step_summary_opts_out(tmp_path: Path, model: Path, monkeypatch: Any) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    _build(tmp_path, model, "--no-step-summary")
    assert not summary.exists()


def test_step_summary_folder_warns_and_builds(
    tmp_path: Path, model: Path, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))
    code = main(["build", str(model), "-o", str(tmp_path / "r.html")])
    assert code == 0 and (tmp_path / "r.html").exists()
    err = capsys.readouterr().err
    assert "warning: $GITHUB_STEP_SUMMARY: " in err and "not a regular file" in err


def test_batch_appends_a_table_of_runs(tmp_path: Path, monkeypatch: Any) -> None:
    a = write_safetensors(tmp_path / "a.safetensors", lstm_tensors("x", 2, 3, 0))
    b = write_safetensors(tmp_path / "b|c.safetensors", lstm_tensors("x", 2, 3, 1, 3.0))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert (
        main(["batch", str(a), str(b), "-o", str(tmp_path / "site"), "--jobs", "1", "-q", "--json"])
        == 0
    )
    lines = summary.read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 2
    datas = sorted((tmp_path / "site" / "reports").glob("*.json"))
    assert len(datas) == 2
    radius = {}
    for p in datas:
        d = json.loads(p.read_text())
        radius[p.stem] = max(
            g["U"]["spectral_radius"]
            for la in d["models"][0]["layers"]
            for g in la["spectra"].values()
        )
    from lstm_report.templating import fmt_num

    assert len(set(radius.values())) == 2
    for row in rows:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        assert cells[1] == "built"
        name = re.sub(r"\\(.)", r"\1", cells[0])  # Markdown's escapes undone
        assert cells[3] == fmt_num(radius[name])


# -- --fail-if -------------------------------------------------------------------------------


def _spectral_max(data: dict[str, Any]) -> float:
    return max(
        g["U"]["spectral_radius"]
        for m in data["models"]
        for la in m["layers"]
        for g in la["spectra"].values()
    )


def test_fail_if_exits_3_when_true_0_when_false(tmp_path: Path, model: Path, capsys: Any) -> None:
    code, data = _build(tmp_path, model)
    rho = _spectral_max(data)
    assert _build(tmp_path, model, "--fail-if", f"max_spectral_radius > {rho * 0.999}")[0] == 3
    assert _build(tmp_path, model, "--fail-if", f"max_spectral_radius > {rho * 1.001}")[0] == 0
    assert _build(tmp_path, model, "--fail-if", f"max_spectral_radius >= {rho}")[0] == 3
    # repeatable: any true one fails
    assert _build(tmp_path, model, "--fail-if", "layers > 5", "--fail-if", "errors >= 1")[0] == 3
    assert _build(tmp_path, model, "--fail-if", "layers > 5", "--fail-if", "errors > 1")[0] == 0
    assert (
        _build(tmp_path, model, "--fail-if", "layers == 2 and not (errors == 0 or warnings < 0)")[0]
        == 3
    )


def test_fail_if_matches_an_independent_radius(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    t = lstm_tensors("only", 2, 3, 3)
    u = rng.normal(0, 1, (12, 3))
    t["only.weight_hh_l0"] = u
    model = write_safetensors(tmp_path / "m.safetensors", t)
    # torch stacks i, f, g, o; our U_g is the transpose of each block: same eigenvalues
    rho = max(float(np.max(np.abs(np.linalg.eigvals(u[k * 3 : (k + 1) * 3])))) for k in range(4))
    assert _build(tmp_path, model, "--fail-if", f"max_spectral_radius > {rho - 1e-4}")[0] == 3
    assert _build(tmp_path, model, "--fail-if", f"max_spectral_radius > {rho + 1e-4}")[0] == 0


def test_fail_if_importance_compares_features(tmp_path: Path) -> None:
    t = lstm_tensors("only", 3, 4, 5)
    t["only.weight_ih_l0"][:, 1] *= 10  # the second input drives every gate
    t["only.weight_ih_l0"][:, 2] *= 0.01
    model = write_safetensors(tmp_path / "m.safetensors", t)
    names = ["pressure", "noise_a", "noise_b"]
    flags = ["--feature-names", ",".join(names)]
    code, data = _build(tmp_path, model, *flags)
    values = {f["name"]: f["value"] for f in data["models"][0]["layers"][0]["feature_importance"]}
    assert values["noise_a"] > values["pressure"] > values["noise_b"]
    assert (
        _build(tmp_path, model, *flags, "--fail-if", "importance[pressure] < importance[noise_a]")[
            0
        ]
        == 3
    )
    assert (
        _build(
            tmp_path, model, *flags, "--fail-if", "importance[pressure] < importance['noise_b']"
        )[0]
        == 0
    )


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("max_radius > 1", "unknown quantity 'max_radius' (known: max_spectral_radius, memory_tau"),
        ("max_spectral_radius >", "expected a number or a quantity, found the end"),
        ("max_spectral_radius 1.2", "expected a comparison"),
        ("max_spectral_radius > 1 2", "unexpected '2' at character 25"),
        ("__import__('os') > 1", "unknown quantity '__import__'"),
        ("errors > 0 and", "found the end"),
        ("(errors > 0", "expected ')'"),
        ("", "the expression is empty"),
        ("errors ; 1", "unexpected ';' at character 8"),
        ("importance > 1", "expected '[' after importance"),
    ],
)
def test_bad_expression_is_a_usage_error(
    expr: str, message: str, capsys: Any, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["build", str(tmp_path / "never-read.safetensors"), "--fail-if", expr])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_unknown_feature_lists_the_inputs(tmp_path: Path, model: Path, capsys: Any) -> None:
    code, _ = _build(tmp_path, model, "--fail-if", "importance[pressure] > 0")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(
        "error: --fail-if 'importance[pressure] > 0': importance[pressure]: no input feature 'pressure' (inputs: x0, x1, x2)"
    )
    assert (tmp_path / "r.html").exists()  # the report was written


def test_memory_horizon_without_probe_says_so(tmp_path: Path, model: Path, capsys: Any) -> None:
    assert _build(tmp_path, model, "--fail-if", "memory_horizon < 10")[0] == 2
    assert "no memory horizon; it is measured on a probe" in capsys.readouterr().err


def test_memory_horizon_is_read_where_the_report_has_one() -> None:
    m = ModelAnalysis(
        name="m",
        path=Path("m.keras"),
        layers=(),
        others=(),
        total_params=None,
        recurrent_params=0,
        reader="direct",
        anchor="m0",
        memory_horizon=MemoryHorizon(steps=7, of=20, share=0.9),
    )
    data = ReportData(title="t", generated="now", version="0", models=(m,))
    assert evaluate(parse("memory_horizon < 10"), data) is True
    assert evaluate(parse("memory_horizon < 7"), data) is False
    with pytest.raises(ExpressionError, match="max_relative_change: the report has no value"):
        evaluate(parse("max_relative_change > 0"), data)


def test_every_known_quantity_parses() -> None:
    for name in known().split(", "):
        parse(name.replace("FEATURE", "x") + " > 0")


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(ExpressionError, match="nested more than"):
        parse("not " * 60 + "errors > 0")
    with pytest.raises(ExpressionError, match="characters"):
        parse("(" * 5000)
