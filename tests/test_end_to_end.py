"""The whole job through the CLI and the Python API: pages, JSON, errors, escaping, safety."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report import build_report
from lstm_report.cli import main
from tests.conftest import write_config


class PageParser(HTMLParser):
    """Collects what a structural check needs: ids, links, sources, sections, scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.layer_sections = 0
        self.tags: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if a.get("id"):
            self.ids.append(a["id"] or "")
        if "href" in a:
            self.hrefs.append(a["href"] or "")
        if "src" in a:
            self.srcs.append(a["src"] or "")
        if tag == "section" and "layer" in (a.get("class") or "").split():
            self.layer_sections += 1
        if tag == "script":
            self.scripts.append(a)
        if tag in ("link", "iframe", "object", "embed", "base"):
            raise AssertionError(f"unexpected <{tag}> in a self-contained page")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> PageParser:
    p = PageParser()
    p.feed(html)
    return p


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process: for what only a process shows (what a TensorFlow import
    prints, exit statuses of signals). Everything else calls ``main`` in this process."""
    return subprocess.run(
        [sys.executable, "-m", "lstm_report", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def run_main(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The CLI in this process: its exit status and everything written to stderr, at the
    file-descriptor level too (so a library writing to fd 2 would show)."""
    capfd.readouterr()
    code = main(list(args))
    return code, capfd.readouterr().err


@pytest.fixture()
def nasty_config(tmp_path: Path, complex_model: Any) -> Path:
    return write_config(
        tmp_path,
        f"""
title: "<script>alert('t')</script> & \\"quotes\\""
models:
  - path: {complex_model.path}
    name: "m<1> & 'co'"
    feature_names: ["<b>open</b>", "a&b", "\\"q\\"", "x'y", "</script>"]
""",
    )


def test_build_writes_page_and_json(nasty_config: Path, tmp_path: Path, complex_model: Any) -> None:
    out = tmp_path / "out" / "report.html"  # the folder does not exist yet
    res = build_report(nasty_config, output=out, json_path=tmp_path / "m.json")
    html = out.read_text(encoding="utf-8")
    page = parse(html)

    # escaping: user strings never reach the page raw
    assert "<script>alert" not in html and "<b>open</b>" not in html
    # LSTMs and a GRU: the page explains both layouts.
    assert "<h2>How Keras stores LSTMs and GRUs</h2>" in html
    assert "<b>z</b> (update)" in html and "<b>f</b> (forget)" in html
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt; &amp; &#34;quotes&#34;" in html
    assert "m&lt;1&gt; &amp; &#39;co&#39;" in html
    # the only script is the JSON data block, and nothing in it can close it early
    # the data block, and one small inline script (sortable tables); nothing loaded by src
    assert page.scripts == [{"type": "application/json", "id": "lstm-report-data"}, {}]
    assert html.count("<script>") == 1
    blob = html.split('<script type="application/json" id="lstm-report-data">')[1].split(
        "</script>"
    )[0]
    assert "<" not in blob
    assert json.loads(blob) == res.data

    # self-contained: every link is internal, every source is a data URI
    assert page.srcs and all(s.startswith("data:image/") for s in page.srcs)
    assert all(h.startswith("#") for h in page.hrefs)
    assert not re.search(r"url\(\s*['\"]?(?!data:|#)", html)
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    # every internal link lands somewhere, ids are unique
    assert len(page.ids) == len(set(page.ids))
    assert {h[1:] for h in page.hrefs} <= set(page.ids)
    # one section per analysed layer: inner LSTM, both halves of the Bidirectional, the GRU
    assert page.layer_sections == 4
    text = " ".join(page.text)
    assert "GRU" in text and "not analysed" not in text

    data = json.loads((tmp_path / "m.json").read_text())
    assert data == res.data


def test_json_contract(nasty_config: Path, tmp_path: Path, complex_model: Any) -> None:
    res = build_report(nasty_config, output=tmp_path / "r.html", json_path=tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["schema_version"] == 1
    assert data["title"] == "<script>alert('t')</script> & \"quotes\""
    (model,) = data["models"]
    assert model["name"] == "m<1> & 'co'"
    assert model["path"] == complex_model.path.name  # no local absolute path
    layers = {(x["name"], x["direction"]): x for x in model["layers"]}
    assert set(layers) == {
        ("encoder/inner_lstm", "forward"),
        ("bi", "forward"),
        ("bi", "backward"),
        ("gru", "forward"),
    }
    inner = layers[("encoder/inner_lstm", "forward")]
    assert (inner["kind"], inner["units"], inner["input_dim"]) == ("LSTM", 4, 5)
    assert list(inner["gates"]) == ["i", "f", "c", "o"]
    kernel, rk, bias = (
        complex_model.model.get_layer("encoder").get_layer("inner_lstm").get_weights()
    )
    u = 4
    for k, g in enumerate("ifco"):
        W = kernel[:, k * u : (k + 1) * u].astype(np.float64)
        U = rk[:, k * u : (k + 1) * u].astype(np.float64)
        b = bias[k * u : (k + 1) * u].astype(np.float64)
        st = inner["gates"][g]
        assert st["W"]["shape"] == [5, 4] and st["U"]["shape"] == [4, 4] and st["b"]["shape"] == [4]
        assert st["W"]["fro"] == pytest.approx(np.linalg.norm(W))
        assert st["U"]["spectral"] == pytest.approx(np.linalg.norm(U, 2))
        assert st["b"]["l1"] == pytest.approx(np.abs(b).sum())
        assert st["W"]["max_abs"] == pytest.approx(np.abs(W).max())
        assert st["U"]["mean"] == pytest.approx(U.mean())
        assert st["W"]["std"] == pytest.approx(W.std())
        assert st["W"]["nonfinite"] == 0
        assert "spectral" not in st["b"]
    fi = inner["feature_importance"]
    assert [f["name"] for f in fi] == ["<b>open</b>", "a&b", '"q"', "x'y", "</script>"]
    for j, f in enumerate(fi):
        assert f["value"] == pytest.approx(np.linalg.norm(kernel[j].astype(np.float64)))
    # the Bidirectional has no bias and does not read the input
    assert layers[("bi", "backward")]["gates"]["f"]["b"] is None
    assert layers[("bi", "backward")]["feature_importance"] is None
    assert model["not_analysed"] == []
    gru = layers[("gru", "forward")]
    assert gru["kind"] == "GRU" and gru["reset_after"] is True and list(gru["gates"]) == list("zrh")
    assert all(set(g) == {"W", "U", "b", "b_rec"} for g in gru["gates"].values())
    assert "b_rec" not in inner["gates"]["i"]  # a Keras LSTM has one bias: keys as before
    assert res.json_path == tmp_path / "r.json"


def test_nonfinite_weights_flagged_and_strict_json(keras: Any, tmp_path: Path) -> None:
    m = keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(2, name="lstm")])
    k, rk, b = m.get_weights()
    k[0, 1] = np.nan
    rk[1, 5] = np.inf
    m.set_weights([k, rk, b])
    m.save(tmp_path / "nan.keras")
    cfg = write_config(tmp_path, "models: [nan.keras]\n")
    build_report(cfg, output=tmp_path / "r.html", json_path=tmp_path / "r.json")
    text = (tmp_path / "r.json").read_text()
    assert not re.search(r":\s*-?(NaN|Infinity)", text)
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    gates = data["models"][0]["layers"][0]["gates"]
    assert gates["i"]["W"]["nonfinite"] == 1 and gates["i"]["W"]["fro"] is None
    assert gates["o"]["U"]["nonfinite"] == 0  # column 5 of 8 with 2 units is gate c
    assert gates["c"]["U"]["nonfinite"] == 1 and gates["c"]["U"]["spectral"] is None
    (finding,) = data["findings"]
    assert finding == {
        "severity": "error",
        "code": "nonfinite-weights",
        "model": "nan.keras",
        "layer": "lstm",
        "message": "2 non-finite weights (NaN or Inf) in W_i (1), U_c (1); the layer's output "
        "is undefined and its norms cannot be computed.",
    }
    html = (tmp_path / "r.html").read_text()
    assert "2 non-finite weights" in html and "n/a" in html


def test_layer_selection_and_errors(complex_model: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f"models:\n  - path: {complex_model.path}\n    layers: [bi]\n")
    res = build_report(cfg, output=tmp_path / "r.html")
    assert [(la.weights.name, la.weights.direction) for la in res.report.models[0].layers] == [
        ("bi", "forward"),
        ("bi", "backward"),
    ]
    bad = write_config(
        tmp_path,
        f"models:\n  - path: {complex_model.path}\n    name: run42\n    layers: [bi, lstm_3]\n",
        "bad.yaml",
    )
    with pytest.raises(
        Exception,
        match=r"^models\[0\]\.layers\[1\]: no LSTM or GRU layer named 'lstm_3' in complex\.keras; LSTM and GRU layers: encoder/inner_lstm, bi, gru$",
    ):
        build_report(bad, output=tmp_path / "r2.html")
    gru = write_config(
        tmp_path, f"models:\n  - path: {complex_model.path}\n    layers: [gru]\n", "gru.yaml"
    )
    res = build_report(gru, output=tmp_path / "r3.html")
    assert [la.weights.kind for la in res.report.models[0].layers] == ["GRU"]


def test_feature_names_must_match_input_dim(simple_model: Any, tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path, f"models:\n  - path: {simple_model.path}\n    feature_names: [a, b]\n"
    )
    with pytest.raises(
        Exception,
        match=r"^models\[0\]\.feature_names: 2 names given, but LSTM 'lstm' in simple\.keras reads 5 input features$",
    ):
        build_report(cfg, output=tmp_path / "r.html")


def test_default_feature_names(simple_model: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f"models: [{simple_model.path}]\n")
    res = build_report(cfg, output=tmp_path / "r.html")
    fi = res.data["models"][0]["layers"][0]["feature_importance"]
    assert [f["name"] for f in fi] == ["x0", "x1", "x2", "x3", "x4"]


def test_failed_run_leaves_previous_report_untouched(simple_model: Any, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_text("previous report")
    (tmp_path / "m.json").write_text("previous json")
    bad = write_config(tmp_path, "models: [missing.keras]\n")
    code = main(["build", str(bad), "-o", str(out), "--json", str(tmp_path / "m.json"), "-q"])
    assert code == 1
    assert out.read_text() == "previous report"
    assert (tmp_path / "m.json").read_text() == "previous json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "m.json", "report.html"]


def test_output_relative_to_config(simple_model: Any, tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    cfg = write_config(tmp_path / "exp", f"output: reports/r.html\nmodels: [{simple_model.path}]\n")
    res = build_report(cfg)
    assert res.html_path == tmp_path / "exp" / "reports" / "r.html"
    assert res.html_path.is_file()


def test_cli_error_is_one_line_without_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, "models:\n  - path: x.keras\n    layres: [a]\n")
    code, err = run_main(capfd, "build", str(cfg), "-o", str(tmp_path / "r.html"))
    assert code == 1
    assert (
        err
        == "error: models[0].layres: unknown key; did you mean 'layers'? (valid keys: path, name, layers, feature_names, unsafe, probe, reader, activations, external_data, pad_token, vocabulary, dynamics)\n"
    )
    assert not (tmp_path / "r.html").exists()


def test_cli_debug_shows_traceback(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(capfd, "build", str(tmp_path / "none.yaml"), "--debug")
    assert code == 1
    assert "Traceback" in err and err.rstrip().endswith("none.yaml: config file not found")


def test_cli_model_error_names_file(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.h5").write_bytes(b"\x00" * 100)
    cfg = write_config(tmp_path, "models: [junk.h5]\n")
    code, err = run_main(capfd, "build", str(cfg), "-o", str(tmp_path / "r.html"))
    assert code == 1
    assert (
        err.startswith("error: models[0] (junk.h5): ")
        and "junk.h5 is not a Keras model file" in err
    )
    assert err.count("\n") == 1


def test_cli_error_quoting_a_hostile_name_stays_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Names come from files anyone may submit: no line breaks, no terminal escapes.
    cfg = write_config(tmp_path, 'models: ["bad\\nerror: forged\\e(0.keras"]\n')
    code, err = run_main(capfd, "build", str(cfg), "-o", str(tmp_path / "r.html"))
    assert code == 1
    assert err.count("\n") == 1 and "\x1b" not in err, err
    assert "bad\\nerror: forged\\x1b(0.keras" in err


def test_help_does_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "from lstm_report.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "try:\n    main(['build', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib', 'numpy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in r.stdout, r.stdout + r.stderr


def test_unwritable_output_is_a_clear_error(
    simple_model: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() == 0:
        # root can write anywhere it has permission bits for; use a file where a folder should be
        (tmp_path / "blocker").write_text("x")
        target = tmp_path / "blocker" / "r.html"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = ro / "r.html"
    cfg = write_config(tmp_path, f"models: [{simple_model.path}]\n")
    code, err = run_main(capfd, "build", str(cfg), "-o", str(target))
    assert code == 1
    assert err.startswith("error: ") and "cannot create output folder" in err


@pytest.mark.slow
def test_demo_recovers_the_two_features(demo_run: Any) -> None:
    data = json.loads(demo_run.json.read_text())
    encoder = data["models"][0]["layers"][0]
    ranked = sorted(encoder["feature_importance"], key=lambda f: f["rank"])
    assert {f["name"] for f in ranked[:2]} == {"pressure", "humidity"}
    # and clearly so: the weaker of the two beats the best noise feature by a margin
    assert ranked[1]["value"] > 2 * ranked[2]["value"]
    assert all(math.isfinite(f["value"]) for f in ranked)
    # the demo shows every section: verification, probe activity, series, comparison
    for layer in data["models"][0]["layers"]:
        assert layer["verification"]["ok"] and layer["verification"]["inputs"] == "probe"
        assert layer["activations"] is not None
    assert len(data["models"][0]["series"]["checkpoints"]) == 4
    # LSTMs only: the page explains the LSTM layout, not the GRU one.
    html = demo_run.html.read_text()
    assert "<h2>How Keras stores an LSTM</h2>" in html and "(update)" not in html
    # measured on the probe, the two inputs the target uses lead by a wide margin
    measured = sorted(data["models"][0]["input_importance"]["features"], key=lambda f: -f["value"])
    assert [f["name"] for f in measured[:2]] == ["pressure", "humidity"]
    assert measured[1]["low"] > 20 * measured[2]["high"]
    assert data["comparisons"][0]["baseline"] == "demo@epoch_1"
    assert [m["name"] for m in data["models"]] == ["demo"]  # the checkpoint needs no entry


def test_page_markup_is_accessible(simple_model: Any, tmp_path: Path) -> None:
    # Headings keep their meaning (never inside a <summary>, whose role is a button);
    # tables are never hidden behind role="img"; a row-group header heads its own <tbody>.
    cfg = write_config(tmp_path, f"models: [{simple_model.path}]\n")
    html = build_report(cfg, output=tmp_path / "r.html").html_path.read_text()
    assert not re.search(r"<summary>[^<]*<h[1-6]", html)
    assert 'role="img"' not in html
    for table in re.findall(r"<table.*?</table>", html, re.S):
        for body in re.split(r"<tbody>", table)[1:]:
            assert body.count('scope="rowgroup"') <= 1, body[:200]


def test_page_shows_the_computed_numbers(simple_model: Any, tmp_path: Path) -> None:
    from lstm_report.templating import fmt_num

    cfg = write_config(tmp_path, f"models: [{simple_model.path}]\n")
    build_report(cfg, output=tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    kernel, rk, _ = simple_model.model.get_layer("lstm").get_weights()
    u = 4
    for k in range(4):
        W = kernel[:, k * u : (k + 1) * u].astype(np.float64)
        U = rk[:, k * u : (k + 1) * u].astype(np.float64)
        assert f'<td class="num">{fmt_num(float(np.linalg.norm(W)))}</td>' in html
        assert f'<td class="num">{fmt_num(float(np.linalg.norm(U, 2)))}</td>' in html
        # the norm bars carry the exact value on hover
        assert f'title="‖W_{"ifco"[k]}‖_F = {fmt_num(float(np.linalg.norm(W)))}"' in html
    # the equations use the layer's own activations, in Keras orientation
    assert "i_t  = sigmoid(x_t·W_i + h_(t−1)·U_i + b_i)" in html
    assert "h_t  = o_t ⊙ tanh(c_t)" in html


@pytest.mark.parametrize("args", [["--help"], ["build", "--help"], ["demo", "--help"]])
def test_help_at_every_level(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    assert "usage: lstm-report" in capsys.readouterr().out


def test_usage_error_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_progress_only_on_a_terminal(
    simple_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In process, with no delay, so that the result does not depend on how long a run takes.
    import pty

    from lstm_report import cli

    monkeypatch.setattr(cli._Progress, "DELAY", 0.0)
    cfg = write_config(tmp_path, f"models: [{simple_model.path}]\n")
    master, slave = pty.openpty()
    with os.fdopen(slave, "w") as tty:
        monkeypatch.setattr(sys, "stderr", tty)
        assert main(["build", str(cfg), "-o", str(tmp_path / "r.html")]) == 0
    os.set_blocking(master, False)
    text = os.read(master, 65536).decode()
    os.close(master)
    assert "s] reading simple.keras" in text and "s] rendering" in text, text
    piped = tmp_path / "stderr.txt"
    with piped.open("w") as not_a_tty:
        monkeypatch.setattr(sys, "stderr", not_a_tty)
        assert main(["build", str(cfg), "-o", str(tmp_path / "r2.html")]) == 0
    assert piped.read_text() == f"wrote {tmp_path / 'r2.html'}\n"


def test_progress_waits_for_a_moment(capsys: pytest.CaptureFixture[str]) -> None:
    from lstm_report import cli

    now = [100.0]
    progress = cli._Progress()
    progress._tty = True
    progress._clock = lambda: now[0]
    progress._start = 100.0
    now[0] = 100.4
    progress("early")
    now[0] = 100.5
    progress("late")
    assert capsys.readouterr().err == "[  0.5s] late\n"


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no overflow anywhere on the way
def test_huge_float64_weights_give_one_json_for_page_and_file(keras: Any, tmp_path: Path) -> None:
    # A legacy .h5 can hold float64 weights near 1e200: finite norms, the same JSON twice.
    m = keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(2, name="lstm", dtype="float64")])
    m.set_weights(
        [
            np.where(w.size and np.indices(w.shape).sum(0) % 2, 1e200, -1e200)
            for w in m.get_weights()
        ]
    )
    m.save(tmp_path / "big.h5")
    cfg = write_config(tmp_path, "models: [big.h5]\n")
    res = build_report(cfg, output=tmp_path / "r.html", json_path=tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    w_i = data["models"][0]["layers"][0]["gates"]["i"]["W"]
    assert w_i["fro"] == pytest.approx(1e200 * math.sqrt(4), rel=1e-12)  # 2 inputs x 2 units
    html = (tmp_path / "r.html").read_text()
    embedded = html.split('id="lstm-report-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded) == data == json.loads(json.dumps(res.data))


def test_error_during_background_keras_import_is_printed(simple_model: Any, tmp_path: Path) -> None:
    # verify: true starts importing TensorFlow in a thread; the second model's error comes
    # while that import runs and must still reach stderr.
    cfg = write_config(
        tmp_path,
        f"verify: true\nmodels:\n  - {simple_model.path}\n  - {tmp_path / 'missing.keras'}\n",
    )
    r = run_cli("build", str(cfg), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 1
    assert "error: models[1]" in r.stderr and "missing.keras" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr  # that line alone: TensorFlow stays quiet


def test_build_reads_a_model_file_directly(
    simple_model: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    probe = tmp_path / "probe.npy"
    np.save(probe, np.random.default_rng(0).normal(size=(3, 7, 5)).astype(np.float32))
    args = ["build", str(simple_model.path), "--name", "run42", "--probe", str(probe)]
    assert main([*args, "--feature-names", "a, b,c,d,e", "--json", "r.json", "-q"]) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    (model,) = data["models"]
    assert model["name"] == "run42" and model["path"] == simple_model.path.name
    (layer,) = model["layers"]
    assert [f["name"] for f in layer["feature_importance"]] == ["a", "b", "c", "d", "e"]
    assert layer["activations"] is not None  # the probe was used
    # --name names the page: NAME.html in the current folder, never the file's name
    assert (tmp_path / "run42.html").is_file() and not (tmp_path / "simple.html").exists()
    assert main(["build", str(simple_model.path), "-q"]) == 0
    assert (tmp_path / "simple.html").is_file()  # without --name: the file's name
    assert main(["build", str(simple_model.path), "--name", "../up/x", "-q"]) == 0
    assert (tmp_path / "_.._up_x.html").is_file()  # a name is never a path
    capsys.readouterr()
    assert main(["build", str(simple_model.path), "--feature-names", "a,b", "-q"]) == 1
    assert "2 names given" in capsys.readouterr().err


def test_model_file_flags_are_refused_with_a_config(
    simple_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, f"models: [{simple_model.path}]\n")
    assert main(["build", str(cfg), "--name", "x", "--probe", "p.npy"]) == 1
    assert capsys.readouterr().err == (
        f"error: {cfg}: --name, --probe apply only to a model file; in a config, set it in the "
        "model's entry\n"
    )


def test_silent_successes_warn_on_stderr(
    keras: Any, simple_model: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    dense.save(tmp_path / "dense.keras")
    emb = keras.Sequential(
        [keras.Input((5,)), keras.layers.Embedding(10, 3), keras.layers.LSTM(2, name="other")]
    )
    emb.save(tmp_path / "emb.keras")
    cfg = write_config(
        tmp_path,
        f"""
models:
  - dense.keras
  - {{path: emb.keras, feature_names: [a, b, c]}}
  - {{path: {simple_model.path}, name: simple}}
""",
    )
    out = str(tmp_path / "r.html")
    code, err = run_main(capfd, "build", str(cfg), "-o", out)
    assert code == 0, err
    assert err.splitlines()[:2] == [
        "warning: dense.keras: the model has no LSTM or GRU layer",
        "warning: emb.keras: feature_names are not shown: no analysed LSTM reads the model "
        "input directly",
    ]
    assert run_main(capfd, "build", str(cfg), "-o", out, "-q") == (0, "")
    # A comparison where nothing can be paired is not a success (tests/analysis/test_compare_matching.py)
    with cfg.open("a", encoding="utf-8") as fh:
        fh.write("compare: [{baseline: simple, candidate: emb.keras}]\n")
    code, err = run_main(capfd, "build", str(cfg), "-o", out, "-q")
    assert code == 1 and err.startswith("error: compare[0]: no layer of 'simple' matches"), err


def test_unread_feature_names_of_a_gru_say_gru(
    keras: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A GRU is no LSTM: the warning names the kind of the layers analysed."""
    emb = keras.Sequential(
        [keras.Input((5,)), keras.layers.Embedding(10, 3), keras.layers.GRU(2, name="g")]
    )
    emb.save(tmp_path / "emb.keras")
    cfg = write_config(tmp_path, "models:\n  - {path: emb.keras, feature_names: [a, b, c]}\n")
    code, err = run_main(capfd, "build", str(cfg), "-o", str(tmp_path / "r.html"))
    assert code == 0, err
    assert err.splitlines()[0] == (
        "warning: emb.keras: feature_names are not shown: no analysed GRU reads the model "
        "input directly"
    )


def test_progress_counts_the_models(
    simple_model: Any, legacy_h5_model: Any, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, f"models: [{simple_model.path}, {legacy_h5_model.path}]\n")
    said: list[str] = []
    build_report(cfg, output=tmp_path / "r.html", progress=said.append)
    assert "model 1/2: reading simple.keras" in said and "model 2/2: analysing legacy.h5" in said


def test_build_result_repr_is_short(complex_model: Any, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, f"models: [{complex_model.path}]\n")
    res = build_report(cfg, output=tmp_path / "r.html", json_path=tmp_path / "r.json")
    text = repr(res)
    assert len(text) < 300, len(text)
    assert text.startswith(f"BuildResult(html_path={str(tmp_path / 'r.html')!r}, json_path=")
    assert "models=1, layers=4, findings=" in text


def test_long_names_may_break_at_their_joints_only() -> None:
    # Issue 20: on a phone a path wraps after / _ . (a <wbr>), not one character per line;
    # the name stays literal text.
    from lstm_report.templating import breakable

    assert str(breakable("runs/a_b.keras")) == "runs/<wbr>a_<wbr>b.<wbr>keras"
    assert str(breakable("<b>/x")) == "&lt;b&gt;/<wbr>x"
    assert str(breakable("end.")) == "end."  # nothing to break before
