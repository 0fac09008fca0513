"""Issue 12: `lstm-report batch`: isolated failures, incremental reruns, Dask = local pool."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from lstm_report.cli import main
from lstm_report.errors import ConfigError
from lstm_report.sweep.manifest import MANIFEST
from lstm_report.sweep.plan import page_names
from lstm_report.sweep.run import run_batch
from tests.test_end_to_end import parse

GENERATED = "2024-01-02 03:04 UTC"


def _runs(root: Path, model: Path, n: int) -> Path:
    """runs/r1..rN, each a config and its own copy of the model."""
    for i in range(1, n + 1):
        d = root / "runs" / f"r{i}"
        d.mkdir(parents=True)
        shutil.copy(model, d / "m.keras")
        (d / "config.yaml").write_text(f"title: run {i}\nmodels: [{{path: m.keras, name: r{i}}}]\n")
    return root / "runs"


def _files(site: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((site / "reports").iterdir())}


def test_one_broken_run_never_stops_the_others(
    simple_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    runs = _runs(tmp_path, simple_model.path, 3)
    (runs / "r4").mkdir()
    (runs / "r4" / "config.yaml").write_text("models: [{path: m.keras, bogus: 1}]\n")
    monkeypatch.chdir(tmp_path)
    site = tmp_path / "site"
    assert main(["batch", "runs/*/config.yaml", "-o", str(site), "--jobs", "2", "--json"]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: runs/r4/config.yaml: models[0].bogus: unknown key (valid keys: path, name, "
        "layers, feature_names, unsafe, probe, reader, activations, external_data, pad_token, vocabulary, dynamics)"
    ]
    assert "Traceback" not in err
    # one progress line per run built, with the count, the time and what is left
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert len(progress) == 3 and progress[-1].startswith("[3/3 ")
    assert all(
        re.match(r"\[\d/3 \d+\.\d s(, about .* left)?\] built runs/r\d/config.yaml \(", line)
        for line in progress
    )
    assert err.splitlines()[-1].startswith(f"wrote {site / 'index.html'}: 3 built, 1 failed in ")
    assert sorted(_files(site)) == [
        f"r{i}__config{s}" for i in (1, 2, 3) for s in (".html", ".json", ".md")
    ]
    index = (site / "index.html").read_text()
    page = parse(index)
    assert sorted({h for h in page.hrefs if not h.startswith("#")}) == [
        f"reports/r{i}__config.html" for i in (1, 2, 3)
    ]
    # the failure is a row of the index, with its message
    assert 'class="badge error">failed</span> runs/r4/config.yaml' in index
    assert "unknown key" in index
    # the sweep columns and the chart, with no script but the sorting one
    for heading in ("Top input", "Memory τ", "Findings", "Largest change"):
        assert f">{heading}</th>" in index
    assert 'class="step-bars"' in index and index.count("<script") == 1
    # a Markdown summary beside each page links to it
    assert "[Full report](r1__config.html)" in (site / "reports" / "r1__config.md").read_text()


def test_quiet_prints_only_the_errors(
    simple_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = _runs(tmp_path, simple_model.path, 1)
    (runs / "bad.yaml").write_text("models: [\n")
    site = tmp_path / "site"
    code = main(
        ["batch", str(runs / "r1" / "config.yaml"), str(runs / "bad.yaml"), "-o", str(site), "-q"]
    )
    assert code == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {runs / 'bad.yaml'}:2: invalid YAML")
    assert main(["batch", str(runs / "r1" / "config.yaml"), "-o", str(site), "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_rerun_rebuilds_nothing_then_exactly_the_changed_run(
    simple_model: Any, complex_model: Any, tmp_path: Path
) -> None:
    runs = _runs(tmp_path, simple_model.path, 3)
    site = tmp_path / "site"
    pattern = str(runs / "*" / "config.yaml")
    first = run_batch([pattern], site, jobs=2, generated=GENERATED)
    assert [o.status for o in first.outcomes] == ["built"] * 3
    pages = _files(site)
    stamps = {p.name: p.stat().st_mtime_ns for p in (site / "reports").iterdir()}

    events: list[Any] = []
    again = run_batch([pattern], site, jobs=2, progress=events.append)
    assert [o.status for o in again.outcomes] == ["reused"] * 3
    assert again.engine == "none" and [e.outcome.status for e in events] == ["reused"] * 3
    assert {p.name: p.stat().st_mtime_ns for p in (site / "reports").iterdir()} == stamps
    assert _files(site) == pages

    # another model in r2's file: exactly r2 is rebuilt
    shutil.copy(complex_model.path, runs / "r2" / "m.keras")
    third = run_batch([pattern], site, jobs=2, generated=GENERATED)
    assert [(o.name, o.status) for o in third.outcomes] == [
        ("r1__config", "reused"),
        ("r2__config", "built"),
        ("r3__config", "reused"),
    ]
    now = _files(site)
    assert now["r2__config.html"] != pages["r2__config.html"]
    assert {k: v for k, v in now.items() if "r2" not in k} == {
        k: v for k, v in pages.items() if "r2" not in k
    }
    # the same bytes, a new modification time: rebuilt too (the key has size, time and hash)
    later = time.time() + 5
    import os

    os.utime(runs / "r3" / "config.yaml", (later, later))
    fourth = run_batch([pattern], site, jobs=1, generated=GENERATED)
    assert [o.status for o in fourth.outcomes] == ["reused", "reused", "built"]
    assert _files(site)["r3__config.html"] == pages["r3__config.html"]  # a pure function

    # a run dropped from the batch: its pages go, the manifest forgets it
    shutil.rmtree(runs / "r3")
    fifth = run_batch([pattern], site, jobs=1)
    assert [o.status for o in fifth.outcomes] == ["reused", "reused"]
    assert sorted(_files(site)) == [f"r{i}__config{s}" for i in (1, 2) for s in (".html", ".md")]
    manifest = json.loads((site / MANIFEST).read_text())
    assert [r["name"] for r in manifest["runs"]] == ["r1__config", "r2__config"]


def test_dask_cluster_writes_the_same_bytes_as_the_local_pool(
    simple_model: Any, tmp_path: Path, dask_scheduler: str
) -> None:
    runs = _runs(tmp_path, simple_model.path, 3)
    (runs / "broken.yaml").write_text("models: [{path: missing.keras}]\n")
    pattern = str(runs / "**" / "*.yaml")
    local = run_batch([pattern], tmp_path / "local", jobs=2, json=True, generated=GENERATED)
    remote = run_batch(
        [pattern],
        tmp_path / "dask",
        scheduler=dask_scheduler,
        json=True,
        generated=GENERATED,
    )
    assert remote.engine.startswith("dask ")
    assert [(o.name, o.status) for o in remote.outcomes] == [
        (o.name, o.status) for o in local.outcomes
    ]
    assert [o.status for o in local.outcomes].count("built") == 3
    assert remote.failed[0].message == local.failed[0].message
    assert "missing.keras" in remote.failed[0].message
    assert _files(tmp_path / "dask") == _files(tmp_path / "local")
    assert (tmp_path / "dask" / "index.html").read_bytes() == (
        tmp_path / "local" / "index.html"
    ).read_bytes()


def test_arguments_and_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"runs/\*\.yaml: matches no file"):
        run_batch([str(tmp_path / "runs/*.yaml")], tmp_path / "site")
    with pytest.raises(ConfigError, match="no such file"):
        run_batch([str(tmp_path / "none.yaml")], tmp_path / "site")
    (tmp_path / "a.yaml").write_text("models: [m.keras]\n")
    with pytest.raises(ConfigError, match="--jobs: applies to the local pool"):
        run_batch([str(tmp_path / "a.yaml")], tmp_path / "site", jobs=2, scheduler="tcp://x:1")
    assert page_names(["runs/a/config.yaml", "runs/b/config.yaml", "runs/b/config.yml"]) == [
        "a__config",
        "b__config",
        "b__config-2",
    ]
    assert page_names(["x/my run.keras"]) == ["my_run"]


def test_scheduler_that_does_not_answer(
    simple_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    monkeypatch.setattr("lstm_report.sweep.engines.dask.CONNECT_TIMEOUT", "1s")
    runs = _runs(tmp_path, simple_model.path, 1)
    with pytest.raises(ConfigError, match="tcp://127.0.0.1:9: cannot connect"):
        run_batch(
            [str(runs / "r1" / "config.yaml")], tmp_path / "site", scheduler="tcp://127.0.0.1:9"
        )


BAD_HREFS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "https://x.example/config.html",
    "//x.example/config.html",
    "/etc/passwd",
    "../secret.html",
    "reports/../../secret.html",
    "reports/sub/config.html",
    "reports/config.html#x",
    "reports/config.htm",
    1,
]


def test_a_tampered_manifest_never_puts_a_foreign_link_in_the_index(
    simple_model: Any, tmp_path: Path
) -> None:
    """Rows reused from the manifest are checked as read: a href that is not a page of the
    site (reports/NAME.html) makes the row untrusted, and the run is built again."""
    runs = _runs(tmp_path, simple_model.path, 1)
    site = tmp_path / "site"
    pattern = str(runs / "*" / "config.yaml")
    assert [o.status for o in run_batch([pattern], site, jobs=1).outcomes] == ["built"]
    good = json.loads((site / MANIFEST).read_text())
    for href in ("javascript:alert(1)", "https://x.example/config.html", "reports/../x.html"):
        manifest = json.loads(json.dumps(good))
        manifest["runs"][0]["row"]["entry"]["href"] = href  # the key left right
        (site / MANIFEST).write_text(json.dumps(manifest))
        again = run_batch([pattern], site, jobs=1)
        assert [o.status for o in again.outcomes] == ["built"], href
        page = parse((site / "index.html").read_text())
        assert sorted({h for h in page.hrefs if not h.startswith("#")}) == ["reports/config.html"]
    assert [o.status for o in run_batch([pattern], site, jobs=1).outcomes] == ["reused"]


@pytest.mark.parametrize("href", BAD_HREFS)
def test_an_index_row_links_only_to_a_page_of_the_site(href: Any) -> None:
    from lstm_report.site.index import SiteEntry

    fields = dict(
        title="t",
        generated="g",
        models=(),
        layers=0,
        params=0,
        errors=0,
        warnings=0,
        largest_radius=None,
        headline="",
        source="s",
    )
    assert SiteEntry(href="reports/a-b_c.1.html", **fields).href == "reports/a-b_c.1.html"
    with pytest.raises(ValueError, match=r"^not a page of the site: "):
        SiteEntry(href=href, **fields)
