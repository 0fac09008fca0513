"""Where checkpoint figures live: in memory, or sealed files in a cache folder."""

from __future__ import annotations

import json
import os
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lstm_report._resources import cache_dir
from lstm_report.errors import LstmReportError
from lstm_report.fileio import cachekey
from lstm_report.fileio.digests import Stat
from lstm_report.fileio.limits import open_regular, read_at_most
from lstm_report.fileio.write import write_files
from lstm_report.series.codec import CheckpointFigures, entry_json, parse_entry
from lstm_report.series.keys import FORMAT

MAX_ENTRY = 4 << 20
"""Bytes: a larger cache file is not read (it is not one of ours)."""


class CacheWarning(UserWarning):
    """The checkpoint cache could not be written (the CLI prints one ``warning:`` line)."""


class Cache:
    """Entries by key: in memory (what a batch sends with a report unit), or also in a
    folder (``folder``/KEY[:2]/KEY.json). Reading never raises; writing is best effort.

    Entries in a folder are sealed with an HMAC under this user's key (cachekey): one
    that fails is ignored and recomputed, silently unless it fails again once rewritten.
    No symbolic link below ``root`` (default: the folder's parent) is ever followed.
    """

    def __init__(
        self,
        folder: Path | None = None,
        entries: Mapping[str, Any] | None = None,
        root: Path | None = None,
    ):
        self.folder = folder
        self.root = root if root is not None else (folder.parent if folder is not None else None)
        self._raw: dict[str, Any] = dict(entries or {})
        self._new: dict[str, CheckpointFigures] = {}
        self._secret: bytes | None = None
        self._failed: set[str] = set()
        """Keys whose entry failed authentication: checked again once rewritten."""
        self._warned: set[str] = set()
        self._seen: dict[str, CheckpointFigures | None] = {}
        """Entries read (or found missing) in this run: each file read once."""
        self._files: dict[str, dict[str, list[Any]]] = {}
        """Known digests by folder: file name -> [*Stat, sha256]."""
        self._changed: set[str] = set()
        """Folders whose known digests changed since the last save."""

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.json"

    def _warn(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(CacheWarning(message), stacklevel=3)

    def _usable(self) -> bool:
        """Whether the folder can be used: the key is there, and no link leads elsewhere."""
        if self.folder is None:
            return False
        if self._secret is None:
            try:
                self._secret = cachekey.secret()
            except cachekey.KeyUnusable as exc:
                self._warn("key", f"checkpoint cache: the key {exc}; figures are not cached")
                self.folder = None
                return False
        link = _link_below(self.root, self.folder)
        if link is not None:
            self._warn(
                "link",
                f"checkpoint cache: {link} is a symbolic link, never followed; figures are "
                "not cached",
            )
            self.folder = None
            return False
        return True

    def get(self, key: str | None) -> CheckpointFigures | None:
        if key is None:
            return None
        if key in self._new:
            return self._new[key]
        if key not in self._seen:
            raw = self._raw.get(key)
            if raw is None and self._usable():
                raw = self._read(key)
            self._seen[key] = parse_entry(raw, key) if raw is not None else None
        return self._seen[key]

    # -- known digests: a rerun hashes only new or changed files

    def _files_path(self, folder: str) -> Path:
        assert self.folder is not None and self._secret is not None
        # Named by a MAC of the folder: a published cache never shows a local path.
        name = cachekey.mac(self._secret, folder.encode("utf-8"))[:40]
        return self.folder / "files" / f"{name}.stat"

    def _known_in(self, folder: str) -> dict[str, list[Any]]:
        if folder not in self._files:
            self._files[folder] = {}
            if self._usable():
                self._files[folder] = _parse_files(self._read_sealed(self._files_path(folder)))
        return self._files[folder]

    def known_digest(self, path: Path, st: Stat) -> str | None:
        """The sha256 of ``path`` noted earlier, if the file's ``stat`` is still ``st``."""
        if self.folder is None:
            return None
        folder, name = os.path.split(os.path.abspath(path))
        known = self._known_in(folder).get(name)
        return known[4] if known is not None and tuple(known[:4]) == st else None

    def note_digest(self, path: Path, st: Stat, digest: str) -> None:
        """Remember ``path``'s sha256 for this ``stat`` (written by ``save``)."""
        if self.folder is None:
            return
        folder, name = os.path.split(os.path.abspath(path))
        known = self._known_in(folder)
        if known.get(name) != [*st, digest]:
            known[name] = [*st, digest]
            self._changed.add(folder)

    def _read_sealed(self, path: Path) -> Any:
        assert self._secret is not None
        stored = _read_bytes(path)
        text = cachekey.unseal(self._secret, stored) if stored is not None else None
        if text is None:
            return None
        try:
            return json.loads(text.decode("utf-8"))
        except (ValueError, RecursionError):
            return None

    def _read(self, key: str) -> Any:
        assert self._secret is not None
        stored = _read_bytes(self._path(key))
        if stored is None:
            return None
        text = cachekey.unseal(self._secret, stored)
        if text is None:
            self._failed.add(key)
            return None
        try:
            return json.loads(text.decode("utf-8"))
        except (ValueError, RecursionError):
            return None

    def put(self, key: str, entry: CheckpointFigures) -> None:
        old = self.get(key)
        self._new[key] = old.merged(entry) if old is not None else entry

    def raw(self, key: str) -> dict[str, Any] | None:
        """The JSON form of an entry, to send to a worker."""
        entry = self.get(key)
        return entry_json(key, entry) if entry is not None else None

    def save(self) -> None:
        """Write the entries added since the last save (atomically). A failed write stops
        this save and warns (CacheWarning), once per cache: the run goes on, and the
        figures are computed again next time."""

        new, self._new = self._new, {}
        self._raw.update({k: entry_json(k, e) for k, e in new.items()})
        self._seen.update(new)
        if (not new and not self._changed) or not self._usable():
            return
        assert self._secret is not None and self.folder is not None
        for k, e in new.items():
            path = self._path(k)
            if _link_below(self.root, path.parent) is not None:
                continue  # the folder changed since it was checked: never written through
            try:
                text = json.dumps(entry_json(k, e), sort_keys=True)
                write_files([(path, cachekey.seal(self._secret, text))])
            except LstmReportError as exc:
                self._warn(
                    "write",
                    f"cannot write the checkpoint cache in {self.folder} ({exc}); "
                    "the figures are computed again next time",
                )
                return
            if k in self._failed and self._read(k) is None:
                self._warn(
                    "again",
                    f"checkpoint cache: {path} fails authentication again right after it "
                    "was rewritten (something else writes into the cache?); its figures "
                    "are computed on every run",
                )
        self._save_files()

    def _save_files(self) -> None:
        assert self._secret is not None
        changed, self._changed = self._changed, set()
        for folder in sorted(changed):
            path = self._files_path(folder)
            if _link_below(self.root, path.parent) is not None:
                continue
            text = json.dumps({"format": FORMAT, "files": self._files[folder]}, sort_keys=True)
            try:
                write_files([(path, cachekey.seal(self._secret, text))])
            except LstmReportError:
                return  # only a rerun's speed depends on it (the entries warn)


def _parse_files(raw: Any) -> dict[str, list[Any]]:
    """The known digests of a folder's files, if ``raw`` is well formed; else none."""
    if not isinstance(raw, dict) or set(raw) != {"format", "files"} or raw["format"] != FORMAT:
        return {}
    files = raw["files"]
    if not isinstance(files, dict):
        return {}
    for name, row in files.items():
        if not (
            isinstance(name, str)
            and isinstance(row, list)
            and len(row) == 5
            and all(type(v) is int for v in row[:4])
            and isinstance(row[4], str)
            and len(row[4]) == 64
            and all(c in "0123456789abcdef" for c in row[4])
        ):
            return {}
    return files


def _link_below(root: Path | None, path: Path) -> Path | None:
    """The first symbolic link among path's components below root (root itself, chosen by
    the user, may be one), or None. Components that do not exist yet are no links."""
    if root is None:
        return None
    try:
        rel = path.relative_to(root)
    except ValueError:
        return path if path.is_symlink() else None
    current = root
    for part in rel.parts:
        current = current / part
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return current
        except FileNotFoundError:
            return None
        except OSError:
            return current
    return None


def _read_bytes(path: Path) -> bytes | None:
    """A regular file of at most MAX_ENTRY bytes, no link; None for anything else."""
    try:
        with open_regular(path, follow_symlinks=False) as fh:
            return read_at_most(fh, MAX_ENTRY)
    except OSError:
        return None


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/lstm-report/checkpoints`` (see resources.cache_dir)."""

    return cache_dir() / "checkpoints"
