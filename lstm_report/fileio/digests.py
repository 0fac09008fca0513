"""One content-digest memo: the sha256 of input files, each hashed once per build or batch."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol

from lstm_report.fileio.limits import open_regular

Stat = tuple[int, int, int, int]
"""What tells that a file changed: size, modification and change times in ns, inode."""

Fingerprint = list[str | int | None]
"""[path, size, mtime in ns, sha256], as a batch's run key holds it (None: unknown)."""


def file_digest(path: Path) -> str | None:
    """sha256 of a regular file's bytes, or None if it is not one or cannot be read (the
    reader then says why). Never blocks on a FIFO."""
    h = hashlib.sha256()
    try:
        with open_regular(path) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except (OSError, ValueError):
        return None
    return h.hexdigest()


def file_stat(path: Path) -> Stat | None:
    """The file's Stat, or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class DigestStore(Protocol):
    """Where digests are remembered between runs (the checkpoint cache)."""

    def known_digest(self, path: Path, st: Stat) -> str | None: ...

    def note_digest(self, path: Path, st: Stat, digest: str) -> None: ...


class FileDigests:
    """sha256 of files, each hashed once (by path and stat), and not at all when ``store``
    remembers it for the file's stat (a rerun hashes only new or changed files)."""

    def __init__(self, store: DigestStore | None = None) -> None:
        self.store = store
        self._seen: dict[tuple[str, Stat], str | None] = {}

    def __call__(self, path: Path) -> str | None:
        known = self.known(path)
        return known[1] if known is not None else None

    def known(self, path: Path) -> tuple[Stat, str] | None:
        """The file's stat and the sha256 of its bytes, or None (not a readable regular
        file, or one that changed while it was hashed)."""
        st = file_stat(path)
        if st is None:
            return None
        digest = self._digest(path, st)
        return (st, digest) if digest is not None else None

    def fingerprint(self, path: Path) -> Fingerprint:
        """[path, size, mtime in ns, sha256], or [path, None, None, None] if unreadable (the
        run then fails with the reader's own message)."""
        st = file_stat(path)
        if st is None:
            return [str(path), None, None, None]
        return [str(path), st[0], st[1], self._digest(path, st)]

    def _digest(self, path: Path, st: Stat) -> str | None:
        ident = (os.path.abspath(path), st)
        if ident not in self._seen:
            digest = self.store.known_digest(path, st) if self.store is not None else None
            if digest is None:
                digest = file_digest(path)
                if digest is not None and file_stat(path) != st:
                    digest = None  # written to while hashed: hashed again next time
                if digest is not None and self.store is not None:
                    self.store.note_digest(path, st, digest)
            self._seen[ident] = digest
        return self._seen[ident]
