"""Write outputs atomically: a failed run leaves any previous report untouched, and an
output never replaces an input."""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from lstm_report.errors import OutputError

Labelled = tuple[str, Path]
"""(what it is, for messages: "the HTML output", "the model of models[0]"; its path)"""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _identity(path: Path) -> tuple[Path, tuple[int, int] | None]:
    """The resolved path (symlinks and .. followed) and, if it exists, (device, inode)."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        resolved = Path(os.path.abspath(path))
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return resolved, None
    return resolved, (st.st_dev, st.st_ino)


def _same(a: tuple[Path, tuple[int, int] | None], b: tuple[Path, tuple[int, int] | None]) -> bool:
    return a[0] == b[0] or (a[1] is not None and a[1] == b[1])


def same_file(a: Path, b: Path) -> bool:
    """Whether a and b name the same file: same resolved path, or os.path.samefile."""
    return _same(_identity(a), _identity(b))


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_output_kind(path: Path) -> None:
    """Refuse an output path that exists and is not a regular file (folder, FIFO, device)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return  # absent (or unreachable): writing it says what is wrong
    if stat.S_ISDIR(mode):
        raise OutputError(f"{path}: is a directory; give a file name for the output")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise OutputError(
            f"{path}: is {kind}, not a regular file; refusing to replace it with the output"
        )


def check_outputs(outputs: Sequence[Labelled], inputs: Iterable[Labelled]) -> None:
    """Refuse, before any work: an output that is a folder, FIFO or device; two outputs
    that are the same file; an output that is the same file as an input."""
    seen: list[tuple[str, Path, tuple[Path, tuple[int, int] | None]]] = []
    for label, path in outputs:
        check_output_kind(path)
        ident = _identity(path)
        for other_label, other, other_ident in seen:
            if _same(ident, other_ident):
                raise OutputError(
                    f"{path}: {label} is the same file as {other_label} {other}; "
                    "give each output its own file"
                )
        seen.append((label, path, ident))
    for in_label, in_path in inputs:
        in_ident = _identity(in_path)
        for label, path, ident in seen:
            if _same(ident, in_ident):
                raise OutputError(
                    f"{path}: {label} is the same file as {in_label} {in_path}; "
                    "an output never replaces an input"
                )


TEMP_TAG = "lstm-report"
"""Temporary files are named ``.NAME.lstm-report-PID-RANDOM.tmp``: recognisably ours."""

STALE_AFTER = 60.0
"""A temporary file of ours whose process is gone and that is older than this (seconds) is
left over from a killed run (SIGKILL): the next run into its folder removes it."""

_TEMP_NAME = re.compile(r"^\..+\." + TEMP_TAG + r"-(\d+)-[^.]+\.tmp$")

_pending: set[Path] = set()
"""Temporary files this process has created and not yet renamed or removed."""


def remove_temporaries() -> None:
    """Remove every temporary file this process still has (on a signal or an error)."""
    for tmp in list(_pending):
        with contextlib.suppress(OSError):
            tmp.unlink()
        _pending.discard(tmp)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale(folder: Path) -> None:
    """Remove our temporary files left in folder by runs that were killed."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    now = time.time()
    for name in names:
        m = _TEMP_NAME.match(name)
        if m is None or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            p = folder / name
            if stat.S_ISREG(p.lstat().st_mode) and now - p.lstat().st_mtime > STALE_AFTER:
                p.unlink()


def _stage(path: Path, text: str) -> Path:
    """Write text to a temporary file beside path; return the temporary path."""
    check_output_kind(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{path.parent}: cannot create output folder: {exc.strerror or exc}"
        ) from None
    remove_stale(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.{TEMP_TAG}-{os.getpid()}-", suffix=".tmp", dir=path.parent
        )
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    _pending.add(Path(tmp))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes 0600 files: a rebuilt report keeps the mode of the one it
        # replaces; a new one gets the permissions a plain open() would.
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
    except BaseException as exc:  # an interrupt or a bug too: never leave the file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _pending.discard(Path(tmp))
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise
    return Path(tmp)


def write_files(outputs: Sequence[tuple[Path, str]]) -> None:
    """Write every (path, text) pair; nothing is replaced until all are fully written."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in outputs:
            staged.append((_stage(path, text), path))
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
            _pending.discard(tmp)
