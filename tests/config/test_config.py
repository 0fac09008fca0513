"""Config parsing: every bad config pairs with the message it must give."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lstm_report.config.parse import parse_config
from lstm_report.config.schema import DEFAULT_TITLE
from lstm_report.config.yaml_file import load_config
from lstm_report.errors import ConfigError
from tests.hostile import assert_refused, run_cli


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_full_config(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
title: Sentiment LSTM, run 42
output: reports/run42.html
models:
  - path: models/run42.keras
    name: run42
    layers: [encoder/lstm, bi]
    feature_names: [open, high, low, close, volume]
  - other.h5
""",
        )
    )
    assert cfg.title == "Sentiment LSTM, run 42"
    assert cfg.output == tmp_path / "reports" / "run42.html"
    first, second = cfg.models
    assert first.path == tmp_path / "models" / "run42.keras"
    assert first.name == "run42"
    assert first.layers == ("encoder/lstm", "bi")
    assert first.feature_names == ("open", "high", "low", "close", "volume")
    assert first.unsafe is False
    assert second.name == "other.h5" and second.path == tmp_path / "other.h5"
    assert second.layers is None and second.feature_names is None


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "models:\n  - path: /abs/m.keras\n"))
    assert cfg.title == DEFAULT_TITLE
    assert cfg.output is None
    assert cfg.models[0].path == Path("/abs/m.keras")
    assert cfg.models[0].name == "m.keras"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: []", r"^models: the list is empty"),
        ("title: x", r"^models: required key is missing"),
        ("modles: [a.keras]", r"^modles: unknown key; did you mean 'models'\?"),
        ("models: [a.keras]\ntitel: x", r"^titel: unknown key; did you mean 'title'\?"),
        (
            "models:\n  - path: a.keras\n    layer: [x]",
            r"^models\[0\]\.layer: unknown key; did you mean 'layers'\?",
        ),
        (
            "models:\n  - path: a.keras\n    colour: red",
            r"^models\[0\]\.colour: unknown key \(valid keys: path, name",
        ),
        ("models:\n  - name: x", r"^models\[0\]\.path: required key is missing"),
        ("models:\n  - path: 3", r"^models\[0\]\.path: expected a string, got a number \(3\)"),
        ("models:\n  - path: ''", r"^models\[0\]\.path: must not be empty"),
        (
            "models:\n  - path: a.keras\n    layers: lstm",
            r"^models\[0\]\.layers: expected a list of strings, got a string",
        ),
        ("models:\n  - path: a.keras\n    layers: []", r"^models\[0\]\.layers: the list is empty"),
        (
            "models:\n  - path: a.keras\n    layers: [lstm, 7]",
            r"^models\[0\]\.layers\[1\]: expected a string, got a number \(7\)",
        ),
        (
            "models:\n  - path: a.keras\n    feature_names: [a, b, a]",
            r"^models\[0\]\.feature_names\[2\]: duplicate name 'a' \(also models\[0\]\.feature_names\[0\]\)",
        ),
        (
            "models:\n  - path: a.keras\n    unsafe: yes please",
            r"^models\[0\]\.unsafe: expected true or false",
        ),
        (
            "models:\n  - a.keras\n  - b/a.keras",
            r"^models\[1\]\.name: duplicate model name 'a.keras' \(also models\[0\]\)",
        ),
        ("models: a.keras", r"^models: expected a list, got a string"),
        (
            "models:\n  - [a.keras]",
            r"^models\[0\]: expected a mapping with at least 'path', got a list",
        ),
        ("- a\n- b", r"^config: expected a mapping at the top level, got a list"),
        ("title: [1]\nmodels: [a.keras]", r"^title: expected a string, got a list"),
    ],
)
def test_bad_config_messages(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    p = write(tmp_path, "title: ok\nmodels:\n  - path: a.keras\n   name: [oops\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml:4: invalid YAML: ") as info:
        load_config(p)
    assert "\n" not in str(info.value)


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    p = write(tmp_path, "models: [a.keras]\ntitle: one\ntitle: two\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml:3: invalid YAML: duplicate key 'title'"):
        load_config(p)


def test_merge_keys(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
models:
  - &run {path: a.keras, reader: direct, feature_names: [x, y], probe: p.npy}
  - <<: *run
    path: b.keras
  - {<<: *run, path: c.keras, reader: keras, feature_names: [u, v]}
""",
    )
    a, b, c = load_config(p).models
    assert (b.path.name, b.reader, b.feature_names) == ("b.keras", "direct", ("x", "y"))
    assert b.probe == a.probe
    assert (c.path.name, c.reader, c.feature_names) == ("c.keras", "keras", ("u", "v"))
    # a key written twice in the mapping itself is still an error, merged or not
    p = write(tmp_path, "models:\n  - &m {path: a.keras}\n  - {<<: *m, name: b, name: c}\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml:3: invalid YAML: duplicate key 'name'"):
        load_config(p)


def _bomb(kind: str) -> str:
    if kind == "laughs":  # 10 levels of 10 aliases: 10^10 values
        lines = ["title: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
        return "\n".join(lines) + "\nmodels: [*a9]\n"
    # 40 levels of merge keys doubling a mapping: 2^40 entries once flattened
    lines = ["models:", "  - &m0 {path: a.keras}"]
    lines += [f"  - &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}" for i in range(1, 40)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind", ["laughs", "merge"])
def test_alias_bombs_fail_fast(tmp_path: Path, kind: str) -> None:
    import time

    p = write(tmp_path, _bomb(kind))
    start = time.monotonic()
    with pytest.raises(
        ConfigError, match=r"invalid YAML: aliases expand to more than 1,000,000 values"
    ) as info:
        load_config(p)
    assert time.monotonic() - start < 2
    assert "\n" not in str(info.value)
    p = write(tmp_path, "models: &m [*m]\n")
    with pytest.raises(ConfigError, match=r"invalid YAML: an alias refers to its own anchor"):
        load_config(p)


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    p = write(tmp_path, "models: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(p)


def test_missing_and_empty_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"exp\.yaml: config is empty"):
        load_config(write(tmp_path, "# nothing\n"))
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_parse_mapping_resolves_against_base_dir(tmp_path: Path) -> None:
    cfg = parse_config({"models": [{"path": "m.keras"}]}, base_dir=tmp_path)
    assert cfg.models[0].path == tmp_path / "m.keras"


def test_example_config_is_valid() -> None:
    # configs/example.yaml documents every key: it must parse (its files need not exist)
    import yaml

    from lstm_report._resources import configs_dir

    data = yaml.safe_load((configs_dir() / "example.yaml").read_text())
    data["models"][1]["path"] = ["a.keras", "b.keras"]  # the glob would need real files
    cfg = parse_config(data, base_dir="/tmp")
    assert cfg.compare[0].baseline == "run42" and cfg.models[0].probe is not None
    assert cfg.compare[1].layers == (("encoder/lstm", "encoder.l0"),)


def test_models_per_config_limit(tmp_path: Path) -> None:
    import time

    from lstm_report.config.schema import MAX_MODELS

    assert MAX_MODELS == 1000
    ok = write(tmp_path, "models:\n" + "".join(f"  - m{i}.keras\n" for i in range(1000)))
    assert len(load_config(ok).models) == 1000
    message = (
        r"^models: more than 1,000 models; one config names at most 1,000 "
        r"\(split them into several configs; for sweeps, `lstm-report batch` builds one report "
        r"per config\)$"
    )
    with pytest.raises(ConfigError, match=message):
        load_config(
            write(tmp_path, "models:\n" + "".join(f"  - m{i}.keras\n" for i in range(1001)))
        )
    # 200,000 models (8 MB of YAML): refused at the first one too many, not after reading all
    big = write(
        tmp_path,
        "models:\n" + "".join(f"  - {{path: m{i}.keras, name: n{i}}}\n" for i in range(200_000)),
    )
    start = time.monotonic()
    with pytest.raises(ConfigError, match=message):
        load_config(big)
    assert time.monotonic() - start < 3
    with pytest.raises(ConfigError, match=r"^models: 1,001 models; one config names at most 1,000"):
        parse_config({"models": [f"m{i}.keras" for i in range(1001)]})


# --- hostile configs (issue 9): one line, never a hang, a MemoryError or an internal error ---


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/urandom"])
def test_config_that_is_not_a_regular_file(kind: str, tmp_path: Path) -> None:
    # In a subprocess: reading a FIFO waits forever, /dev/zero never ends.
    path = tmp_path / "fifo.yaml" if kind == "fifo" else Path(kind)
    if kind == "fifo":
        os.mkfifo(path)
    r = run_cli(path, tmp_path, timeout=30)
    line = assert_refused(r, tmp_path, str(path))
    assert "not a regular file" in line


def test_config_larger_than_10_mib(tmp_path: Path) -> None:
    p = write(tmp_path, "# padding\n" * (11 * 2**20 // 10) + "models: [x.keras]\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: config is larger than 10 MiB; refused"):
        load_config(p)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "title: x\nmodels:\n  - path: m.keras\n    probe: {path: p.npy, sequence: "
            + "9" * 5000
            + "}\n",
            r"exp\.yaml:4: invalid YAML: integer too long \(5,000 characters\)",
        ),
        ("models: " + "[" * 50_000 + "]" * 50_000, r"exp\.yaml: invalid YAML: nested too deeply"),
        ("title: 2001-13-45\nmodels: [a.keras]", r"exp\.yaml: invalid YAML: month must be in"),
    ],
    ids=["5000-digit integer", "deep nesting", "impossible date"],
)
def test_yaml_values_python_cannot_build(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_lone_surrogate_is_a_config_error(tmp_path: Path) -> None:
    # YAML's "\ud800" escape makes a string no page or JSON file can hold.
    p = write(tmp_path, 'title: "bad \\ud800 title"\nmodels: [{path: m.keras, name: "x\\udfff"}]\n')
    with pytest.raises(
        ConfigError,
        match=r"^(title|models\[0\]\.name): not valid text: a lone surrogate \(\\u(d800|dfff)\)",
    ):
        load_config(p)
