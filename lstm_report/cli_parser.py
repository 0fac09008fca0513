"""The command line's arguments: one small function per subcommand (help texts are the
documentation: docs/cli.md quotes them)."""

from __future__ import annotations

import argparse
from typing import Any

from lstm_report._version import __version__
from lstm_report.errors import ExpressionError
from lstm_report.output.fail_if import Condition
from lstm_report.output.fail_if import parse as parse_condition
from lstm_report.readers.formats import suffix_text


def parser() -> argparse.ArgumentParser:
    """The parser of ``lstm-report``: every subcommand and its options."""
    parser = argparse.ArgumentParser(
        prog="lstm-report",
        description="Explain what a trained recurrent network (LSTM or GRU, from Keras, "
        "PyTorch or ONNX) has learned from its weights: "
        "per-gate matrices, norms, spectra and figures, as one self-contained HTML page.",
    )
    parser.add_argument("--version", action="version", version=f"lstm-report {__version__}")
    # Options shared by the commands: every command's, those of every command that reads
    # models (build, demo, batch), and those of a single report (build, demo).
    basic = _basic()
    reading = _reading()
    common = _common(basic, reading)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_build(sub, common)
    _add_demo(sub, common)
    _add_site(sub, basic)
    _add_batch(sub, [basic, reading])
    _add_figures(sub, [basic, reading])
    return parser


def _basic() -> argparse.ArgumentParser:
    """Every command's options."""
    basic = argparse.ArgumentParser(add_help=False)
    basic.add_argument("--debug", action="store_true", help="show the Python traceback on errors")
    basic.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return basic


def _reading() -> argparse.ArgumentParser:
    """The options of every command that reads models."""
    reading = argparse.ArgumentParser(add_help=False)
    reading.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay every layer in numpy and compare with Keras (default: when the model "
        "was read through Keras)",
    )
    reading.add_argument(
        "--reader",
        choices=("auto", "direct", "keras"),
        help="how to read model files: direct (h5py, no TensorFlow), keras, or auto "
        "(direct where it can, else Keras; the default)",
    )
    reading.add_argument(
        "--unsafe",
        action="store_true",
        help="allow models whose layers run Python code on load (Lambda layers); "
        "only for files you trust",
    )
    reading.add_argument(
        "--allow-external-data",
        action="store_true",
        help="let ONNX models read external data from any file in their folder, not only "
        "the data file made for them (model.onnx.data); only for folders you trust",
    )
    return reading


def _common(
    basic: argparse.ArgumentParser, reading: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """The options of a single report (build, demo)."""
    common = argparse.ArgumentParser(add_help=False, parents=[basic, reading])
    common.add_argument(
        "--json", metavar="PATH", dest="json_path", help="also write the report data as JSON"
    )
    common.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        help="exit with status 3 if a finding of this severity or worse exists "
        "(the report is still written)",
    )
    common.add_argument(
        "--fail-if",
        metavar="EXPR",
        action="append",
        type=_condition,
        help="exit with status 3 if EXPR holds for the report's numbers, e.g. "
        "'max_spectral_radius > 1.2' or 'importance[a] < importance[b]' (repeatable; "
        "the report is still written; docs/ci.md lists the quantities)",
    )
    common.add_argument(
        "--junit",
        metavar="PATH",
        help="also write the findings as JUnit XML: one test case per model, layer and check",
    )
    common.add_argument(
        "--no-step-summary",
        action="store_true",
        help="do not append the Markdown summary to $GITHUB_STEP_SUMMARY (appended when set)",
    )
    common.add_argument(
        "--no-cache",
        action="store_true",
        help="read no cached figures of checkpoints: compute every one afresh (and store "
        "nothing); for build, the cache is in $XDG_CACHE_HOME/lstm-report/checkpoints",
    )
    common.add_argument(
        "--no-dynamics",
        dest="dynamics",
        action="store_false",
        help="skip the probe's dynamics: Lyapunov exponents, fixed points, slow manifolds "
        "and unit ablation (faster for large layers; as each model's 'dynamics: false')",
    )
    return common


def _add_build(sub: Any, common: argparse.ArgumentParser) -> None:
    build = sub.add_parser(
        "build",
        parents=[common],
        help="build a report from a YAML config or a model file",
        description="Build the report described by a YAML config file, or the report of one "
        f"model file ({suffix_text()}) with default settings.",
    )
    build.add_argument(
        "config",
        metavar="CONFIG_OR_MODEL",
        help="YAML config naming the models and layers to report on, or a model file",
    )
    build.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="HTML file to write (default: the config's 'output', else NAME.html in the "
        "current folder, NAME being the config's file name or, for a model file, --name "
        "or the model file's name)",
    )
    build.add_argument(
        "--markdown",
        metavar="PATH",
        help="also write a short Markdown summary (takeaways, findings, headline numbers, "
        "a link to the page), e.g. for a pull-request comment or $GITHUB_STEP_SUMMARY",
    )
    build.add_argument(
        "--baseline",
        metavar="OLD.json",
        help="also compare each model with its entry in a report's JSON written earlier "
        "(--json): the numbers the JSON keeps, without the old model file",
    )
    _add_model_file_options(build)


def _add_model_file_options(build: argparse.ArgumentParser) -> None:
    """build's options for a model file named on the command line."""
    model_only = build.add_argument_group(
        "when CONFIG_OR_MODEL is a model file (a config says these itself)"
    )
    model_only.add_argument(
        "--name",
        help="the model's name in the report; the page is NAME.html in the current folder "
        "unless -o says otherwise (default: the model file's name)",
    )
    model_only.add_argument(
        "--probe",
        metavar="PATH",
        help="probe data for the model input: .npy, or .npz with one array",
    )
    model_only.add_argument(
        "--feature-names",
        metavar="A,B,...",
        type=_names,
        help="names of the input features, comma-separated, in input order",
    )
    model_only.add_argument(
        "--pad-token",
        metavar="N",
        type=int,
        help="token models: the id that blanks a token in the importance (default 0)",
    )


def _add_demo(sub: Any, common: argparse.ArgumentParser) -> None:
    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="build the report of the built-in demo model",
        description="Build the report of the built-in demo: a small LSTM trained on a synthetic "
        "task where only two of six input features matter.",
    )
    demo.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        default="lstm-report-demo.html",
        help="HTML file to write (default: %(default)s)",
    )


def _add_site(sub: Any, basic: argparse.ArgumentParser) -> None:
    site = sub.add_parser(
        "site",
        parents=[basic],
        help="build a static site from a folder of reports",
        description="Copy every lstm-report page under REPORTS_DIR into SITE_DIR/reports/ and "
        "write SITE_DIR/index.html, a sortable index built from the data the reports carry.",
    )
    site.add_argument("reports_dir", metavar="REPORTS_DIR", help="folder with report .html files")
    site.add_argument(
        "-o",
        "--output",
        metavar="SITE_DIR",
        default="site",
        help="folder to write the site to (default: %(default)s)",
    )
    site.add_argument(
        "--follow-links",
        action="store_true",
        help="also publish reports reached through symlinks that lead out of REPORTS_DIR "
        "(skipped by default)",
    )


def _add_figures(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    figures = sub.add_parser(
        "figures",
        parents=parents,
        help="write every figure of a report as its own PDF, PNG or SVG file (matplotlib)",
        description="Draw every figure of the report of CONFIG_OR_MODEL with matplotlib, from "
        "the same geometry as the page, one file each, and DIR/figures.json listing what each "
        "shows. Needs matplotlib (a dependency); nothing else imports it.",
    )
    figures.add_argument("config", metavar="CONFIG_OR_MODEL", help="YAML config or model file")
    figures.add_argument(
        "-o", "--output", metavar="DIR", required=True, help="folder to write the figures to"
    )
    figures.add_argument(
        "--format", choices=("pdf", "png", "svg"), default="pdf", help="default: %(default)s"
    )
    figures.add_argument(
        "--dpi", type=float, default=300.0, help="resolution of PNG files (default: %(default)s)"
    )
    model_only = figures.add_argument_group("when CONFIG_OR_MODEL is a model file")
    model_only.add_argument("--name", help="the model's name (default: the file's name)")
    model_only.add_argument("--probe", metavar="PATH", help="probe data: .npy or .npz")
    model_only.add_argument(
        "--feature-names", metavar="A,B,...", type=_names, help="names of the input features"
    )


def _add_batch(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    batch = sub.add_parser(
        "batch",
        parents=parents,
        help="build the reports of many configs or model files into a site",
        description="Build one report per config or model file (a sweep's runs) into "
        "SITE_DIR/reports/, with a Markdown summary beside each, and write SITE_DIR/index.html "
        "to compare them. Runs whose inputs did not change since the last batch into SITE_DIR "
        "are not rebuilt. A failed run never stops the others: exit status 1 if any failed.",
    )
    batch.add_argument(
        "configs",
        metavar="CONFIG_OR_GLOB",
        nargs="+",
        help="config files or model files, or quoted globs ('runs/*/config.yaml')",
    )
    batch.add_argument("-o", "--output", metavar="SITE_DIR", required=True, help="the site folder")
    batch.add_argument(
        "--jobs",
        metavar="N",
        type=int,
        help="reports built at once on this machine (default: the number of cores)",
    )
    batch.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="build on the Dask cluster of this scheduler (tcp://HOST:PORT) instead; needs "
        "pip install 'lstm-report[dask]' and workers that see the input files at the same paths",
    )
    batch.add_argument(
        "--json", action="store_true", help="also write each report's data as JSON beside it"
    )
    batch.add_argument(
        "--no-step-summary",
        action="store_true",
        help="do not append a table of the runs to $GITHUB_STEP_SUMMARY (appended when set)",
    )
    batch.add_argument(
        "--no-cache",
        action="store_true",
        help="rebuild every run and compute every checkpoint afresh: reuse no page and no "
        "cached checkpoint of an earlier batch into SITE_DIR, and cache nothing",
    )


def _condition(text: str) -> Condition:
    try:
        return parse_condition(text)
    except ExpressionError as exc:
        # argparse names the option itself: "argument --fail-if: 'EXPR': what is wrong"
        raise argparse.ArgumentTypeError(printable(str(exc).removeprefix("--fail-if "))) from None


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def printable(text: str) -> str:
    """One line without terminal escapes: messages quote names taken from hostile files."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
