"""Write outputs atomically: a failed run leaves any previous report untouched, and an
output never replaces an input."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
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


def _stage(path: Path, text: str) -> Path:
    """Write text to a temporary file beside path; return the temporary path."""
    check_output_kind(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{path.parent}: cannot create output folder: {exc.strerror or exc}"
        ) from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
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
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
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
