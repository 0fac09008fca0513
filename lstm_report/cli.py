"""The command line. The only module that prints errors or decides the exit status.

cli_parser.py holds the arguments, cli_commands.py what each subcommand does.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

from lstm_report._resources import cache_environment
from lstm_report.cli_parser import parser, printable
from lstm_report.errors import ExpressionError, LstmReportError, one_line, shorten
from lstm_report.fileio.write import remove_temporaries
from lstm_report.output.ci import append_step_summary, step_summary_path

if TYPE_CHECKING:
    from lstm_report.pipeline import BuildResult
    from lstm_report.sweep.run import BatchProgress as Progress

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``finally`` runs."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    args = parser().parse_args(argv)
    restore = _catch_signals()
    try:
        with _warnings_as_lines(quiet=args.quiet), _cache_environment():
            return _run(args)
    except LstmReportError as exc:
        if args.debug:
            traceback.print_exc()
        print(one_line(f"error: {printable(str(exc))}"), file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ExpressionError) else EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except Terminated:
        print("error: terminated", file=sys.stderr)
        return EXIT_SIGTERM
    except Exception as exc:  # a bug: still one line, unless --debug
        if args.debug:
            traceback.print_exc()
        first = printable((str(exc).strip().splitlines() or [""])[0])
        print(
            one_line(
                f"error: internal error: {type(exc).__name__}: {shorten(first, 200)} "
                "(rerun with --debug for details)"
            ),
            file=sys.stderr,
        )
        return EXIT_ERROR
    finally:
        remove_temporaries()
        restore()


@contextlib.contextmanager
def _cache_environment() -> Iterator[None]:
    """Keras and matplotlib write their files under our cache folder, not the home folder
    (set before either is imported; restored afterwards for in-process callers)."""
    added = cache_environment()
    os.environ.update(added)
    try:
        yield
    finally:
        for var in added:
            os.environ.pop(var, None)


_SILENT_WARNINGS: tuple[type[Warning], ...] = (
    DeprecationWarning,
    PendingDeprecationWarning,
    FutureWarning,
    ImportWarning,
    ResourceWarning,
    SyntaxWarning,
    BytesWarning,
)
"""Warnings for the developers of the libraries we use, not for the user of a report."""


@contextlib.contextmanager
def _warnings_as_lines(*, quiet: bool) -> Iterator[None]:
    """Python warnings from the libraries: nothing under -q (nor their logged warnings);
    else one ``warning:`` line each for those that tell the user something."""
    with warnings.catch_warnings(), _logging_disabled(logging.WARNING if quiet else None):
        if quiet:
            warnings.simplefilter("ignore")
        else:
            for category in _SILENT_WARNINGS:
                warnings.simplefilter("ignore", category)
            # numpy's floating-point notes: the findings say which weights are not finite
            warnings.filterwarnings("ignore", message=".*encountered in", category=RuntimeWarning)
            warnings.showwarning = _show_warning
        yield


@contextlib.contextmanager
def _logging_disabled(level: int | None) -> Iterator[None]:
    """Under -q, the libraries' log records up to ``level`` (WARNING: every library's
    warnings, TensorFlow's among them) are dropped for the run; errors still print."""
    if level is None:
        yield
        return
    before = logging.root.manager.disable
    logging.disable(max(level, before))
    try:
        yield
    finally:
        logging.disable(before)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    text = (str(message).strip().splitlines() or [category.__name__])[0]
    try:
        print(one_line(f"warning: {shorten(text, 200)}"), file=file or sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # stderr closed: nowhere to warn


def _catch_signals() -> Callable[[], None]:
    """SIGINT and SIGTERM become exceptions in the main thread: a batch's workers are stopped
    and temporary files removed on the way out. Returns what restores the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != owner:  # a forked worker before it reset its handlers
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        # One is enough: a second Ctrl-C must not interrupt the cleanup.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            if old is not None:
                signal.signal(sig, old)

    return restore


def _run(args: argparse.Namespace) -> int:
    """Run the subcommand; print what it wrote; return the exit status."""
    from lstm_report import cli_commands as commands  # YAML and the stages: not for --help

    progress = None if args.quiet else _Progress()
    if args.command == "batch":
        return _batch(args)
    if args.command == "figures":
        written = commands.figures(args, progress)
        if not args.quiet:
            print(
                f"wrote {len(written)} figures and figures.json to {args.output}", file=sys.stderr
            )
        return EXIT_OK
    if args.command == "site":
        return _site(args)
    result = commands.build(args, progress)
    if not args.quiet:
        _print_result(result)
    if not args.no_step_summary:
        _step_summary(lambda: commands.report_summary(result.report), quiet=args.quiet)
    failed = commands.failing_conditions(args.fail_if or [], result.report)  # a bad one: exit 2
    if not args.quiet:
        for c in failed:
            print(printable(f"failed: --fail-if {c.text!r} holds"), file=sys.stderr)
    if args.fail_on is not None and commands.fails_on(result.report.findings, args.fail_on):
        return EXIT_FINDINGS
    return EXIT_FINDINGS if failed else EXIT_OK


def _print_result(result: BuildResult) -> None:
    """The run's warnings, the files written, and the findings worth a look."""
    for warning in result.report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"wrote {result.html_path}", file=sys.stderr)
    if result.json_path is not None:
        print(f"wrote {result.json_path}", file=sys.stderr)
    if result.markdown_path is not None:
        print(f"wrote {result.markdown_path}", file=sys.stderr)
    if result.junit_path is not None:
        print(f"wrote {result.junit_path}", file=sys.stderr)
    for f in result.report.findings:
        if f.severity in ("error", "warning"):
            print(
                printable(f"{f.severity}: {f.model} › {f.layer}: {f.message} [{f.code}]"),
                file=sys.stderr,
            )


def _site(args: argparse.Namespace) -> int:
    from lstm_report import cli_commands as commands  # YAML and the stages: not for --help

    index, skipped = commands.site(args)
    if not args.quiet:
        for s in skipped:
            line = f"{'warning: ' if s.warning else ''}skipped {s.path}: {s.reason}"
            print(one_line(printable(line)), file=sys.stderr)
        print(f"wrote {commands.display(index)}", file=sys.stderr)
    return EXIT_OK


def _batch(args: argparse.Namespace) -> int:
    from lstm_report import cli_commands as commands  # YAML and the stages: not for --help

    def report(p: Progress) -> None:
        o = p.outcome
        if o.status == "failed":
            if args.debug and o.traceback:
                print(o.traceback, file=sys.stderr, end="")
            print(one_line(f"error: {o.message}"), file=sys.stderr, flush=True)
        if args.quiet or o.status == "reused":
            return
        if p.done:
            left = f", about {_duration(p.left)} left" if p.left and p.done < p.total else ""
            print(
                f"[{p.done}/{p.total} {_duration(p.elapsed)}{left}] {o.status} {o.source} "
                f"({o.seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    result = commands.batch(args, report)
    if not args.no_step_summary:
        _step_summary(lambda: commands.batch_table(result), quiet=args.quiet)
    if not args.quiet:
        counts = ", ".join(
            f"{result.count(s)} {s}" for s in ("built", "reused", "failed") if result.count(s)
        )
        print(
            f"wrote {commands.display(result.index)}: {counts} in {_duration(result.seconds)}",
            file=sys.stderr,
        )
    return EXIT_ERROR if result.failed else EXIT_OK


def _duration(seconds: float | None) -> str:
    s = seconds or 0.0
    return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {int(s % 60):02d} s"


def _step_summary(text: Callable[[], str], *, quiet: bool) -> None:
    """Append to $GITHUB_STEP_SUMMARY where it is set; a warning (not a failure) if it cannot
    be written: the report is."""
    path = step_summary_path()
    if path is None:
        return
    try:
        append_step_summary(path, text())
    except LstmReportError as exc:
        if not quiet:
            print(one_line(f"warning: {printable(str(exc))}"), file=sys.stderr)


class _Progress:
    """Stage messages on stderr, for a terminal only, and only once a run takes a moment."""

    DELAY = 0.5

    def __init__(self) -> None:
        self._clock = time.monotonic
        self._start = self._clock()
        self._tty = sys.stderr.isatty()

    def __call__(self, message: str) -> None:
        elapsed = self._clock() - self._start
        if self._tty and elapsed >= self.DELAY:
            print(f"[{elapsed:5.1f}s] {message}", file=sys.stderr, flush=True)
