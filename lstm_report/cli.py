"""The command line. The only module that prints errors or decides the exit status."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from lstm_report import __version__
from lstm_report.errors import LstmReportError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-report",
        description="Explain what a trained Keras LSTM has learned from its weights: "
        "per-gate matrices, norms, spectra and figures, as one self-contained HTML page.",
    )
    parser.add_argument("--version", action="version", version=f"lstm-report {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the Python traceback on errors")
    common.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    common.add_argument(
        "--json", metavar="PATH", dest="json_path", help="also write the report data as JSON"
    )
    common.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay every layer in numpy and compare with Keras (default: when the model "
        "was read through Keras)",
    )
    common.add_argument(
        "--reader",
        choices=("auto", "direct", "keras"),
        help="how to read model files: direct (h5py, no TensorFlow), keras, or auto "
        "(direct where it can, else Keras; the default)",
    )
    common.add_argument(
        "--fail-on",
        choices=("error", "warning"),
        help="exit with status 3 if a finding of this severity or worse exists "
        "(the report is still written)",
    )
    common.add_argument(
        "--unsafe",
        action="store_true",
        help="allow models whose layers run Python code on load (Lambda layers); "
        "only for files you trust",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    build = sub.add_parser(
        "build",
        parents=[common],
        help="build a report from a YAML config",
        description="Build the report described by a YAML config file.",
    )
    build.add_argument("config", help="YAML config naming the models and layers to report on")
    build.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="HTML file to write (default: the config's 'output', else CONFIG-NAME.html)",
    )

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
    site = sub.add_parser(
        "site",
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
    site.add_argument("--debug", action="store_true", help="show the Python traceback on errors")
    site.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except LstmReportError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {_printable(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line, unless --debug
        if args.debug:
            traceback.print_exc()
        first = _printable((str(exc).strip().splitlines() or [""])[0])
        print(
            f"error: internal error: {type(exc).__name__}: {first} "
            "(rerun with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> int:
    from lstm_report.pipeline import build_report

    progress = None if args.quiet else _Progress()
    if args.command == "site":
        from lstm_report.site import build_site

        index, skipped = build_site(args.reports_dir, args.output)
        if not args.quiet:
            for path in skipped:
                print(_printable(f"skipped {path}: not an lstm-report page"), file=sys.stderr)
            print(f"wrote {index}", file=sys.stderr)
        return EXIT_OK
    if args.command == "demo":
        from lstm_report.resources import demo_config

        config = demo_config()
    else:
        config = args.config
    result = build_report(
        config,
        output=args.output,
        json_path=args.json_path,
        unsafe=args.unsafe,
        verify=args.verify,
        reader=args.reader,
        progress=progress,
        processes=True,
    )
    findings = result.report.findings
    if not args.quiet:
        print(f"wrote {result.html_path}", file=sys.stderr)
        if result.json_path is not None:
            print(f"wrote {result.json_path}", file=sys.stderr)
        for f in findings:
            if f.severity in ("error", "warning"):
                print(
                    _printable(f"{f.severity}: {f.model} › {f.layer}: {f.message} [{f.code}]"),
                    file=sys.stderr,
                )
    if args.fail_on is not None:
        worst = {"error": ("error",), "warning": ("error", "warning")}[args.fail_on]
        if any(f.severity in worst for f in findings):
            return EXIT_FINDINGS
    return EXIT_OK


def _printable(text: str) -> str:
    """One line without terminal escapes: messages quote names taken from hostile files."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


class _Progress:
    """Stage messages on stderr, for a terminal only, and only once a run takes a moment."""

    DELAY = 0.5

    def __init__(self) -> None:
        import time

        self._clock = time.monotonic
        self._start = self._clock()
        self._tty = sys.stderr.isatty()

    def __call__(self, message: str) -> None:
        elapsed = self._clock() - self._start
        if self._tty and elapsed >= self.DELAY:
            print(f"[{elapsed:5.1f}s] {message}", file=sys.stderr, flush=True)
