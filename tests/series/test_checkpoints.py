"""Issues 12 and 13: a series one checkpoint at a time: the cache by content hash, work
units on a pool or a Dask cluster, and a pool that survives a killed worker."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lstm_report.cli import main
from lstm_report.config.yaml_file import load_config
from lstm_report.errors import LstmReportError
from lstm_report.fileio import cachekey
from lstm_report.fileio import digests as file_digests
from lstm_report.fileio.digests import FileDigests, file_stat
from lstm_report.pipeline import build_report
from lstm_report.series import schedule
from lstm_report.series.codec import CheckpointFigures, entry_json, parse_entry
from lstm_report.series.keys import FORMAT
from lstm_report.series.runners import Runner, serial, series_points
from lstm_report.series.store import MAX_ENTRY, Cache, CacheWarning
from lstm_report.series.units import PointUnit, run_unit
from lstm_report.sweep.engines.local import WORKER_DIED, LocalPool, cores
from lstm_report.sweep.run import run_batch
from lstm_report.sweep.worker import build_unit

GENERATED = "2024-01-02 03:04 UTC"


@pytest.fixture(scope="module")
def ckpts(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven checkpoints of a two-layer model whose weights drift at random."""
    # Keras' initialisers draw their seeds from Python's random module: leave its state as
    # the modules after this one expect it (some of their models depend on it).
    state = random.getstate()
    try:
        return _save_checkpoints(keras, tmp_path_factory.mktemp("series"))
    finally:
        random.setstate(state)


def _save_checkpoints(keras: Any, d: Path) -> Path:
    m = keras.Sequential(
        [
            keras.Input((4, 3)),
            keras.layers.LSTM(5, return_sequences=True, name="enc"),
            keras.layers.GRU(4, name="dec"),
            keras.layers.Dense(1),
        ]
    )
    rng = np.random.default_rng(7)
    weights = [rng.normal(0, 0.4, w.shape).astype(w.dtype) for w in m.get_weights()]
    for epoch in range(1, 8):
        weights = [w + rng.normal(0, 0.05, w.shape).astype(w.dtype) for w in weights]
        m.set_weights(weights)
        m.save(d / f"epoch_{epoch}.keras")
    return d


def _run(tmp: Path, ckpts: Path, epochs: Sequence[int], layers: str = "") -> Path:
    """A run folder with copies of the given checkpoints and a config naming them all."""
    d = tmp / "run"
    d.mkdir(exist_ok=True)
    for e in epochs:
        shutil.copy(ckpts / f"epoch_{e}.keras", d / f"epoch_{e}.keras")
    (d / "config.yaml").write_text(
        f"models:\n  - path: epoch_*.keras\n    name: run\n{layers}"
        "compare:\n  - {baseline: run@epoch_2, candidate: run}\n"
    )
    return d / "config.yaml"


def _counting(log: list[int]) -> Runner:
    """The serial runner, noting which checkpoint each unit reduces (by file name)."""

    def run(units: Sequence[PointUnit]) -> Iterator[Any]:
        for u in units:
            log.extend(int(p.stem.split("_")[1]) for p in u.files)
        yield from serial(units)

    return run


def _points(cfg: Path, cache: Cache | None, log: list[int]) -> tuple[Any, ...]:
    spec = load_config(cfg).models[0]
    keep = [("enc", "forward"), ("dec", "forward")]
    return series_points(spec, keep, cache, _counting(log))


def _build(cfg: Path, out: Path, **kw: Any) -> tuple[bytes, bytes]:
    build_report(cfg, output=out / "r.html", json_path=out / "r.json", generated=GENERATED, **kw)
    return (out / "r.html").read_bytes(), (out / "r.json").read_bytes()


def test_cache_by_content_hash(ckpts: Path, tmp_path: Path) -> None:
    cfg = _run(tmp_path, ckpts, [1, 2, 3, 4, 5])
    folder = tmp_path / "cache"
    log: list[int] = []
    cold = _points(cfg, Cache(folder), log)
    assert log == [1, 2, 3, 4, 5]
    assert len(list(folder.glob("*/*.json"))) == 5
    # warm: nothing is computed, and every number is the same float
    log.clear()
    assert _points(cfg, Cache(folder), log) == cold and log == []
    # one more checkpoint: one unit
    shutil.copy(ckpts / "epoch_6.keras", cfg.parent / "epoch_6.keras")
    assert _points(cfg, Cache(folder), log)[:5] == cold and log == [6]
    # one inserted in the middle: it and the one after it (its relative change changed)
    (cfg.parent / "epoch_3.keras").rename(cfg.parent / "epoch_3b.keras")
    log.clear()
    after = _points(cfg, Cache(folder), log)
    assert [c.label for c in after] == [
        "epoch_1",
        "epoch_2",
        "epoch_3b",
        "epoch_4",
        "epoch_5",
        "epoch_6",
    ]
    assert log == []  # a renamed file is the same bytes after the same bytes
    (cfg.parent / "epoch_3b.keras").unlink()
    log.clear()
    _points(cfg, Cache(folder), log)
    assert log == [4]  # epoch_4 now follows epoch_2
    # the same bytes under another name, in another folder: still cached
    other = tmp_path / "other"
    other.mkdir()
    for e in (1, 2):
        shutil.copy(cfg.parent / f"epoch_{e}.keras", other / f"epoch_{e}.keras")
    (other / "config.yaml").write_text("models:\n  - path: epoch_*.keras\n")
    log.clear()
    _points(other / "config.yaml", Cache(folder), log)
    assert log == []


def test_changed_reading_options_or_layers(ckpts: Path, tmp_path: Path) -> None:
    cfg = _run(tmp_path, ckpts, [1, 2, 3], layers="    layers: [enc]\n")
    folder = tmp_path / "cache"
    log: list[int] = []
    spec = load_config(cfg).models[0]
    one = series_points(spec, [("enc", "forward")], Cache(folder), _counting(log))
    assert log == [1, 2, 3] and [la.name for la in one[0].layers] == ["enc"]
    # the other layer too: computed and merged into the same entries
    spec = load_config(_run(tmp_path, ckpts, [1, 2, 3])).models[0]
    log.clear()
    both = series_points(
        spec, [("enc", "forward"), ("dec", "forward")], Cache(folder), _counting(log)
    )
    assert log == [1, 2, 3] and [la.name for la in both[0].layers] == ["enc", "dec"]
    assert both[2].layers[0] == one[2].layers[0]
    log.clear()
    series_points(spec, [("enc", "forward")], Cache(folder), _counting(log))
    assert log == []
    # how a file is read is part of the key
    from dataclasses import replace

    log.clear()
    series_points(
        replace(spec, reader="direct"), [("enc", "forward")], Cache(folder), _counting(log)
    )
    assert log == [1, 2, 3]


def test_byte_identical_with_and_without_a_warm_cache_and_on_a_pool(
    ckpts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _run(tmp_path, ckpts, [1, 2, 3, 4, 5, 6, 7])
    for d in "abcd":
        (tmp_path / d).mkdir()
    folder = tmp_path / "cache"
    none = _build(cfg, tmp_path / "a", cache=False)
    assert not folder.exists()
    cold = _build(cfg, tmp_path / "b", cache=folder)
    assert len(_entries(folder)) == 7
    warm = _build(cfg, tmp_path / "c", cache=folder)
    # checkpoints as work units on a pool of one process per core (which the small series
    # would not start by itself)
    monkeypatch.setattr("lstm_report.series.follow.POOL_MIN_CHECKPOINTS", 2)
    monkeypatch.setattr("lstm_report.series.cost.POOL_MIN_SECONDS", 0.0)
    # units of three consecutive checkpoints (7 would be units of one on 2 cores)
    monkeypatch.setattr("lstm_report.series.schedule.unit_size", lambda count, jobs: 3)
    started: list[int] = []
    real = LocalPool.warm
    monkeypatch.setattr(
        LocalPool, "warm", lambda self, fn: (started.append(self.jobs), real(self, fn))
    )
    pooled = _build(cfg, tmp_path / "d", cache=False, processes=True)
    if cores() > 1:
        assert started == [cores()]
    assert none == cold == warm == pooled
    data = json.loads(cold[1])
    cps = data["models"][0]["series"]["checkpoints"]
    assert [c["name"] for c in cps] == [f"epoch_{e}" for e in range(1, 8)]
    assert cps[0]["layers"][0]["gates"]["i"]["relative_change"] is None
    assert cps[1]["layers"][1]["gates"]["z"]["relative_change"] > 0
    assert data["comparisons"][0]["baseline"] == "run@epoch_2"


def test_no_cache_on_the_command_line(ckpts: Path, tmp_path: Path) -> None:
    cfg = _run(tmp_path, ckpts, [1, 2])
    folder = Path(os.environ["XDG_CACHE_HOME"]) / "lstm-report" / "checkpoints"
    shutil.rmtree(folder, ignore_errors=True)
    assert main(["build", str(cfg), "-o", str(tmp_path / "r.html"), "-q", "--no-cache"]) == 0
    assert not folder.exists()
    assert main(["build", str(cfg), "-o", str(tmp_path / "r.html"), "-q"]) == 0
    assert len(_entries(folder)) == 2


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.json"))


def test_a_hostile_cache_is_ignored_and_recomputed(ckpts: Path, tmp_path: Path) -> None:
    cfg = _run(tmp_path, ckpts, [1, 2, 3])
    folder = tmp_path / "cache"
    log: list[int] = []
    good = _points(cfg, Cache(folder), log)
    files = _entries(folder)
    texts = [f.read_text() for f in files]
    raw = json.loads(texts[0].partition("\n")[2])  # after the MAC line

    def poisoned(change: Any) -> str:
        r = json.loads(json.dumps(raw))
        change(r)
        return json.dumps(r)

    def swap_gates(r: Any) -> None:
        r["points"][0]["gates"].reverse()

    def set_value(value: Any) -> Any:
        return lambda r: r["points"][0]["gates"][0][1].__setitem__(0, value)

    bad = [
        "",
        "{",
        "[]",
        "null",
        "[" * 100000,
        poisoned(lambda r: r.update(key="0" * 64)),  # another checkpoint's entry
        poisoned(lambda r: r.update(format=99)),
        poisoned(lambda r: r.update(extra=1)),
        poisoned(lambda r: r["layers"].append(["enc", "sideways"])),
        poisoned(lambda r: r["layers"].__setitem__(0, {"enc": 1, "forward": 2})),
        poisoned(lambda r: r["points"].append(r["points"][0])),  # a layer twice
        poisoned(swap_gates),
        poisoned(set_value("1.5")),
        poisoned(set_value(True)),
        poisoned(set_value(3)),
        poisoned(set_value([1.0])),
        poisoned(lambda r: r["points"][0]["gates"][0][1].append(1.0)),
        poisoned(lambda r: r["points"][0].update(tau_median={})),
        poisoned(lambda r: r["points"][0].update(name="ghost")),
    ]
    for text in bad:
        for f in files:
            # Sealed with the user's key: what is refused here is the entry's content.
            f.write_text(cachekey.seal(cachekey.secret(), text))
        log.clear()
        assert _points(cfg, Cache(folder), log) == good, text[:80]
        assert log == [1, 2, 3], text[:80]
        assert [f.read_text() for f in files] == texts  # rewritten whole
    # not a regular file, or too large: never read (a FIFO would block, /dev/zero never ends)
    target = files[0]
    for make in (
        lambda: os.mkfifo(target),
        lambda: target.symlink_to("/dev/zero"),
        lambda: target.write_bytes(b" " * (MAX_ENTRY + 1)),
    ):
        target.unlink()
        make()
        log.clear()
        with warnings.catch_warnings():  # a FIFO or a device is never replaced: it warns
            warnings.simplefilter("ignore", CacheWarning)
            assert _points(cfg, Cache(folder), log) == good
        assert len(log) == 1
    # a cache folder that cannot be written: the figures are computed, nothing breaks
    blocked = _unwritable_cache_folder(tmp_path / "blocked")
    log.clear()
    with pytest.warns(CacheWarning, match="cannot write the checkpoint cache"):
        assert _points(cfg, Cache(blocked), log) == good and log == [1, 2, 3]


def test_entries_round_trip_non_finite_numbers() -> None:
    from lstm_report.model.training import GatePoint, LayerPoint

    gates = tuple(
        (g, GatePoint(float("inf"), 1.0, None, float("nan"), -0.0)) for g in ("z", "r", "h")
    )
    entry = CheckpointFigures(
        (("g", "backward"),), {("g", "backward"): LayerPoint("g", "backward", gates, None)}
    )
    raw = json.loads(json.dumps(entry_json("k", entry), allow_nan=False))
    back = parse_entry(raw, "k")
    assert back is not None and parse_entry(raw, "other") is None
    p = back.points[("g", "backward")].gates[0][1]
    assert p.W_fro == float("inf") and p.b_fro is None and np.isnan(p.U_spectral_radius or 0.0)
    assert str(p.relative_change) == "-0.0"


# -- a pool that survives its workers -----------------------------------------------------


def _square_or_die(x: Any) -> Any:
    """A unit: x squared; ("die", path) kills its worker (SIGKILL), ("once", path) only the
    first time (it leaves path behind)."""
    if isinstance(x, tuple):
        kind, path = x
        if kind == "die" or not os.path.exists(path):
            Path(path).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return "survived"
    return x * x


def test_a_killed_worker_costs_only_its_own_unit(tmp_path: Path) -> None:
    pool = LocalPool(2)
    items: list[Any] = [*range(6), ("die", str(tmp_path / "d")), ("once", str(tmp_path / "o"))]
    items += [*range(6, 12)]
    for x in items:
        pool.submit(_square_or_die, x)
    try:
        got = {repr(item): (result, error) for item, result, error in pool.results()}
    finally:
        pool.close()
    assert got.pop(repr(items[6])) == (None, WORKER_DIED)
    assert got.pop(repr(items[7])) == ("survived", None)
    assert got == {repr(x): (x * x, None) for x in range(12)}


def _kill_run2(unit: Any) -> Any:
    """sweep.worker.build_unit, except that run r2's unit kills its worker every time."""
    if unit.name == "r2__config":
        os.kill(os.getpid(), signal.SIGKILL)
    return build_unit(unit)


def test_a_run_that_kills_its_worker_fails_alone(
    simple_model: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for i in (1, 2, 3):
        d = tmp_path / "runs" / f"r{i}"
        d.mkdir(parents=True)
        shutil.copy(simple_model.path, d / "m.keras")
        (d / "config.yaml").write_text(f"models: [{{path: m.keras, name: r{i}}}]\n")
    monkeypatch.setattr("lstm_report.sweep.run.build_unit", _kill_run2)
    monkeypatch.chdir(tmp_path)
    assert main(["batch", "runs/*/config.yaml", "-o", "site", "--jobs", "2"]) == 1
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: runs/r2/config.yaml: {WORKER_DIED}"
    ]
    assert sorted(p.name for p in (tmp_path / "site" / "reports").iterdir()) == [
        "r1__config.html",
        "r1__config.md",
        "r3__config.html",
        "r3__config.md",
    ]


def test_series_on_a_dask_cluster_and_the_local_pool(
    ckpts: Path, tmp_path: Path, dask_scheduler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # units of two consecutive checkpoints (these short series would be units of one)
    monkeypatch.setattr(schedule, "unit_size", lambda count, jobs: 2)
    runs = tmp_path / "runs"
    for name, epochs in (("a", [1, 2, 3, 4, 5]), ("b", [3, 4, 5, 6, 7])):
        d = runs / name
        d.mkdir(parents=True)
        for e in epochs:
            shutil.copy(ckpts / f"epoch_{e}.keras", d / f"epoch_{e}.keras")
        (d / "config.yaml").write_text("models:\n  - path: epoch_*.keras\n    name: run\n")
    (runs / "c").mkdir()
    (runs / "c" / "bad.keras").write_bytes(b"PK not a zip" * 10)
    (runs / "d").mkdir()
    os.mkfifo(runs / "d" / "fifo.keras")  # hashed without waiting for a writer
    (runs / "d" / "config.yaml").write_text(
        "models: [{path: [../a/epoch_1.keras, fifo.keras, ../a/epoch_2.keras]}]\n"
    )
    (runs / "c" / "config.yaml").write_text(
        "models: [{path: [../a/epoch_1.keras, bad.keras, ../a/epoch_2.keras]}]\n"
    )
    pattern = str(runs / "*" / "config.yaml")
    local = run_batch([pattern], tmp_path / "local", jobs=2, json=True, generated=GENERATED)
    remote = run_batch(
        [pattern],
        tmp_path / "dask",
        scheduler=dask_scheduler,
        json=True,
        generated=GENERATED,
    )
    assert [o.status for o in local.outcomes] == ["built", "built", "failed", "failed"]
    assert [o.status for o in remote.outcomes] == ["built", "built", "failed", "failed"]
    assert "fifo.keras is not a regular file (a FIFO)" in local.failed[1].message
    # the message of the first checkpoint that failed, as build says it
    with pytest.raises(LstmReportError) as raised:
        build_report(runs / "c" / "config.yaml", output=tmp_path / "c.html", cache=False)
    assert local.failed[0].message == f"{runs / 'c' / 'config.yaml'}: {raised.value}"
    assert "bad.keras" in str(raised.value)
    assert remote.failed[0].message == local.failed[0].message
    for site in ("local", "dask"):
        # a and b share three checkpoints, but b's first has no predecessor: 5 + 5 - 2
        assert len(_entries(tmp_path / site / ".lstm-report-cache" / "checkpoints")) == 8
    for name in ("a__config.html", "a__config.json", "b__config.html", "b__config.json"):
        assert (tmp_path / "dask" / "reports" / name).read_bytes() == (
            tmp_path / "local" / "reports" / name
        ).read_bytes()
    # the same page as build, with and without the batch's cache
    alone = tmp_path / "alone"
    alone.mkdir()
    build_report(
        runs / "a" / "config.yaml",
        output=alone / "a.html",
        json_path=alone / "a.json",
        generated=GENERATED,
        cache=False,
    )
    assert (alone / "a.json").read_bytes() == (
        tmp_path / "local" / "reports" / "a__config.json"
    ).read_bytes()
    # one more checkpoint in a: the run is rebuilt, with one checkpoint unit
    cache = tmp_path / "local" / ".lstm-report-cache" / "checkpoints"
    before = {p: p.stat().st_ino for p in _entries(cache)}
    shutil.copy(ckpts / "epoch_7.keras", runs / "a" / "epoch_7.keras")  # b: after epoch_6
    again = run_batch([pattern], tmp_path / "local", jobs=2, json=True, generated=GENERATED)
    assert [o.status for o in again.outcomes] == ["built", "reused", "failed", "failed"]
    after = {p: p.stat().st_ino for p in _entries(cache)}
    assert len(after) == 9 and {p: after[p] for p in before} == before  # none rewritten


def test_a_worker_of_another_version_refuses_its_units(tmp_path: Path) -> None:
    # A Dask worker may run another lstm-report: its figures or pages would not be ours.
    from lstm_report.sweep.plan import ReportUnit

    (tmp_path / "c.yaml").write_text("models: [missing.keras]\n")
    cfg = load_config(tmp_path / "c.yaml")
    point = run_unit(PointUnit(cfg.models[0], None, True, "0.0.0-other"))
    report = build_unit(ReportUnit("run", "c.yaml", cfg, "2024-01-01 00:00 UTC", "0.0.0-other"))
    for error in (point.error, report.error):
        assert error is not None and "install the same version on every worker" in error
        assert "the batch 0.0.0-other" in error


# --- issue 21: entries authenticated with the user's key; no link followed ---------------


def test_a_poisoned_entry_is_recomputed_silently(ckpts: Path, tmp_path: Path) -> None:
    """An entry edited in place (its key is computable from public inputs) or planted
    without the user's key changes nothing: recomputed, no warning, rewritten sealed."""
    import warnings

    cfg = _run(tmp_path, ckpts, [1, 2, 3])
    folder = tmp_path / "cache"
    log: list[int] = []
    good = _points(cfg, Cache(folder), log)
    files = _entries(folder)
    texts = [f.read_text() for f in files]
    mac, _, body = texts[0].partition("\n")
    assert len(mac) == 64 and json.loads(body)["format"] == FORMAT
    value = json.loads(body)["points"][0]["gates"][0][1][0]
    edited = body.replace(json.dumps(value), json.dumps(value * 100 + 1), 1)
    assert edited != body
    for text in (
        f"{mac}\n{edited}",  # a number edited, the MAC left as it was
        edited,  # an entry as the attacker would write it: no MAC
        f"{'0' * 64}\n{body}",  # the right entry, a wrong MAC
        f"{checkpoints_mac(b'another key', body)}\n{edited}",  # sealed with another key
    ):
        files[0].write_text(text)
        log.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning: a failing entry is recomputed quietly
            assert _points(cfg, Cache(folder), log) == good
        assert len(log) == 1
        assert [f.read_text() for f in files] == texts


def checkpoints_mac(key: bytes, text: str) -> str:
    """HMAC-SHA256 by the standard library, independently of cachekey."""
    import hashlib
    import hmac

    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def test_the_key_is_created_private_in_the_user_cache(
    ckpts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cfg = _run(tmp_path, ckpts, [1, 2])
    folder = tmp_path / "cache"
    _points(cfg, Cache(folder), [])
    key = tmp_path / "xdg" / "lstm-report" / "cache.key"
    st = key.lstat()
    assert st.st_mode & 0o777 == 0o600 and st.st_size == 32
    secret = key.read_bytes()
    for entry in _entries(folder):
        mac, _, body = entry.read_text().partition("\n")
        assert mac == checkpoints_mac(secret, body)
    # used again, not replaced
    log: list[int] = []
    _points(cfg, Cache(folder), log)
    assert log == [] and key.read_bytes() == secret


@pytest.mark.parametrize("how", ["group-readable", "symlink", "short"])
def test_a_key_that_cannot_be_trusted_turns_the_cache_off(
    ckpts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    key = tmp_path / "xdg" / "lstm-report" / "cache.key"
    key.parent.mkdir(parents=True)
    if how == "symlink":
        (tmp_path / "planted").write_bytes(b"k" * 32)
        (tmp_path / "planted").chmod(0o600)
        key.symlink_to(tmp_path / "planted")
    else:
        key.write_bytes(b"k" * (32 if how == "group-readable" else 5))
        key.chmod(0o640 if how == "group-readable" else 0o600)
    cfg = _run(tmp_path, ckpts, [1, 2])
    folder = tmp_path / "cache"
    log: list[int] = []
    with pytest.warns(UserWarning, match=r"^checkpoint cache: the key .*cache.key: .*not cached$"):
        good = _points(cfg, Cache(folder), log)
    assert log == [1, 2] and not folder.exists()
    assert good == _points(cfg, None, [])


def test_an_entry_that_keeps_failing_is_warned_about_once(
    ckpts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _run(tmp_path, ckpts, [1, 2, 3])
    folder = tmp_path / "cache"
    good = _points(cfg, Cache(folder), [])
    for f in _entries(folder):
        f.write_text("tampered")
    # What is written fails again at once: as when something else keeps rewriting it.
    monkeypatch.setattr(cachekey, "seal", lambda key, text: "0" * 64 + "\n" + text)
    with pytest.warns(UserWarning, match="fails authentication again") as record:
        assert _points(cfg, Cache(folder), []) == good
    assert len([w for w in record if "again" in str(w.message)]) == 1


def test_batch_cache_in_the_site_is_sealed_with_the_users_key_and_never_a_link(
    ckpts: Path, tmp_path: Path
) -> None:
    import os

    run = _run(tmp_path, ckpts, [1, 2, 3])
    (run.parent / "config.yaml").write_text("models:\n  - path: epoch_*.keras\n    name: run\n")
    site = tmp_path / "site"
    first = run_batch([str(run)], site, jobs=1, generated=GENERATED)
    assert [o.status for o in first.outcomes] == ["built"]
    entries = _entries(site / ".lstm-report-cache" / "checkpoints")
    assert len(entries) == 3
    secret = cachekey.secret()
    assert cachekey.key_path().parent != site and not list(site.rglob("*.key"))
    for entry in entries:
        mac, _, body = entry.read_text().partition("\n")
        assert mac == checkpoints_mac(secret, body)
    # The cache folder replaced by a link to a folder outside the site: never written
    # through (nor read), the report is still built, with a warning.
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(site / ".lstm-report-cache")
    os.symlink(outside, site / ".lstm-report-cache")
    (run.parent / "epoch_4.keras").write_bytes((ckpts / "epoch_4.keras").read_bytes())
    with pytest.warns(UserWarning, match=r"\.lstm-report-cache is a symbolic link, never followed"):
        third = run_batch([str(run)], site, jobs=1, generated=GENERATED)
    assert [o.status for o in third.outcomes] == ["built"] and list(outside.iterdir()) == []
    # the reports folder or the manifest as a link: refused before anything is written
    for name in ("reports", ".lstm-report-batch.json"):
        s2 = tmp_path / f"site-{name}"
        s2.mkdir()
        os.symlink(outside, s2 / name)
        with pytest.raises(LstmReportError, match=f"{name}: is a symbolic link; batch never"):
            run_batch([str(run)], s2, jobs=1, generated=GENERATED)
        assert list(outside.iterdir()) == []


def _unwritable_cache_folder(folder: Path) -> Path:
    """A cache folder whose every entry folder (the key's first two hex digits) is taken by
    a file: entries cannot be written, even by root, while the folder itself is fine."""
    folder.mkdir(parents=True)
    for a in "0123456789abcdef":
        for b in "0123456789abcdef":
            (folder / (a + b)).write_text("a file where an entry folder would be")
    return folder


def test_a_cache_that_cannot_be_written_warns_once(ckpts: Path, tmp_path: Path) -> None:
    cfg = _run(tmp_path, ckpts, [1, 2, 3])
    cache = Cache(_unwritable_cache_folder(tmp_path / "checkpoints"))
    with pytest.warns(CacheWarning, match="cannot write the checkpoint cache") as w:
        first = _points(cfg, cache, [])
        assert first == _points(cfg, None, [])  # the run went on, with the same figures
        _points(_run(tmp_path, ckpts, [1, 2, 3, 4]), cache, [])  # a second save: no second line
    assert len(w) == 1, [str(x.message) for x in w]


def test_cli_says_once_that_the_cache_cannot_be_written(
    ckpts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = tmp_path / "xdg"
    _unwritable_cache_folder(xdg / "lstm-report" / "checkpoints")
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    cfg = _run(tmp_path, ckpts, [1, 2, 3, 4])
    assert main(["build", str(cfg), "-o", str(tmp_path / "r.html")]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if "checkpoint cache" in x]
    assert len(lines) == 1 and lines[0].startswith("warning: cannot write"), lines


# --- issue 27: units of consecutive checkpoints, each file read once ---------------------


def test_units_are_runs_of_consecutive_checkpoints() -> None:
    from lstm_report.series.schedule import SeriesPlan, runs, unit_size

    assert runs([0, 1, 2, 4, 5, 7]) == [(0, 3), (4, 6), (7, 8)]
    assert runs([0, 1, 2, 3, 4, 6], 2) == [(0, 2), (2, 4), (4, 5), (6, 7)]
    assert runs([]) == [] and runs([3], 1) == [(3, 4)]
    assert unit_size(500, 2) == 32 and unit_size(40, 2) == 5 and unit_size(1, 8) == 1
    paths = tuple(Path(f"epoch_{k}.keras") for k in range(6))
    spec = load_config_text("models:\n  - path: [a.keras, b.keras]\n")
    known = tuple(((k, k, k, k), f"{k:064x}") for k in range(6))
    p = SeriesPlan(spec, paths, (None,) * 6, (0, 1, 3, 4, 5), known)
    first, second, third = p.units(2, "run@0")
    assert (first.start, first.files, first.previous, first.first) == (0, paths[:2], None, True)
    assert first.known == known[:2] and first.label == "run@0.0"
    # the second run starts after a cached checkpoint: it reads that one for its change
    assert (second.start, second.files, second.previous, second.first) == (
        3,
        paths[3:5],
        paths[2],
        False,
    )
    assert second.known == known[2:5]
    assert (third.start, third.files, third.previous, third.known) == (
        5,
        paths[5:],
        paths[4],
        known[4:],
    )
    assert [u.files for u in p.units()] == [paths[:2], paths[3:]]


def load_config_text(text: str) -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "c.yaml").write_text(text)
        return load_config(Path(d) / "c.yaml").models[0]


class _Reads:
    """The real reader and hasher, counting what each reads (by file name)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from lstm_report.readers import dispatch as readers

        self.models: list[str] = []
        self.hashes: list[str] = []
        read_model, file_digest = readers.read_model, file_digests.file_digest

        def counted_read(spec: Any, *a: Any, **kw: Any) -> Any:
            self.models.append(spec.path.name)
            return read_model(spec, *a, **kw)

        def counted_digest(path: Path) -> Any:
            self.hashes.append(Path(path).name)
            return file_digest(path)

        monkeypatch.setattr(readers, "read_model", counted_read)
        monkeypatch.setattr(file_digests, "file_digest", counted_digest)

    def clear(self) -> None:
        self.models.clear()
        self.hashes.clear()


def _reference(cfg: Path) -> list[Any]:
    """Each checkpoint's figures on its own: read it and the one before, reduce."""
    from dataclasses import replace

    from lstm_report.analysis.series import checkpoint_figures
    from lstm_report.readers.dispatch import read_model

    spec = load_config(cfg).models[0]
    assert spec.series is not None
    out, before = [], None
    for path in spec.series:
        weights = read_model(replace(spec, path=path))
        out.append(
            checkpoint_figures(path, weights, before, {("enc", "forward"), ("dec", "forward")})
        )
        before = weights
    return [c.layers for c in out]


def test_each_checkpoint_is_read_once_and_a_rerun_hashes_only_the_new_one(
    ckpts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _run(tmp_path, ckpts, [1, 2, 3, 4, 5, 6])
    expected = _reference(cfg)
    folder = tmp_path / "cache"
    keep = [("enc", "forward"), ("dec", "forward")]
    reads = _Reads(monkeypatch)
    spec = load_config(cfg).models[0]
    names = [f"epoch_{e}.keras" for e in range(1, 7)]

    # one process: one unit, every file read once and hashed once
    cache = Cache(folder)
    cold = series_points(spec, keep, cache, serial, FileDigests(cache))
    assert [c.layers for c in cold] == expected
    assert sorted(reads.models) == sorted(names) and sorted(reads.hashes) == sorted(names)

    # cut into units of two (as on a pool): only each unit's predecessor is read again,
    # and the figures are the same floats
    reads.clear()
    cut = series_points(spec, keep, None, serial, file_digests.file_digest, jobs=1)
    assert cut == cold
    assert sorted(reads.models) == sorted(names + ["epoch_2.keras", "epoch_4.keras"])

    # a rerun in a new process (new cache and digests) after one more checkpoint: nothing
    # is hashed but the new file (the cache remembers the others' digests by their stat),
    # and only it and its predecessor are read
    shutil.copy(ckpts / "epoch_7.keras", cfg.parent / "epoch_7.keras")
    reads.clear()
    cache = Cache(folder)
    again = series_points(spec_of(cfg), keep, cache, serial, FileDigests(cache))
    assert again[:6] == cold
    assert reads.hashes == ["epoch_7.keras"]
    assert reads.models == ["epoch_6.keras", "epoch_7.keras"]

    # a file rewritten in place, its size and modification time put back: its change time
    # tells, and it is hashed (and reduced) again
    path = cfg.parent / "epoch_3.keras"
    st = path.stat()
    path.write_bytes((ckpts / "epoch_4.keras").read_bytes()[: st.st_size].ljust(st.st_size, b"\0"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    reads.clear()
    cache = Cache(folder)
    assert FileDigests(cache)(path) != file_digests.file_digest(ckpts / "epoch_3.keras")
    assert reads.hashes == ["epoch_3.keras", "epoch_3.keras"]


def spec_of(cfg: Path) -> Any:
    return load_config(cfg).models[0]


def test_remembered_digests_are_sealed_and_name_no_path(ckpts: Path, tmp_path: Path) -> None:
    cfg = _run(tmp_path, ckpts, [1, 2])
    folder = tmp_path / "cache"
    cache = Cache(folder)
    digests = FileDigests(cache)
    true = digests(cfg.parent / "epoch_1.keras")
    digests(cfg.parent / "epoch_2.keras")
    cache.save()
    (stored,) = (folder / "files").iterdir()
    assert str(cfg.parent) not in stored.name and "run" not in stored.name
    # a digest changed in the file, its MAC not renewed: not believed, the file is hashed
    text = stored.read_text()
    assert true in text
    stored.write_text(text.replace(true, "0" * 64))
    cache = Cache(folder)
    st = file_stat(cfg.parent / "epoch_1.keras")
    assert st is not None and cache.known_digest(cfg.parent / "epoch_1.keras", st) is None
    assert FileDigests(cache)(cfg.parent / "epoch_1.keras") == true
