"""The key that authenticates what lstm-report caches: one random secret per user.

A cache entry's key is computable from public inputs (the checkpoint's hash, the version),
so anyone who can write into a cache folder could plant figures for a checkpoint. Every
entry is therefore stored with an HMAC-SHA256 of its text under a random key kept in
``$XDG_CACHE_HOME/lstm-report/cache.key`` (created 0600 on first use, never in a site
folder, which gets published). An entry without the right MAC is not one of ours.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from lstm_report._resources import cache_dir

KEY_FILE = "cache.key"
KEY_BYTES = 32

_loaded: dict[str, bytes] = {}


class KeyUnusable(Exception):
    """The key file exists but cannot be trusted (or cannot be created); says why."""


def key_path() -> Path:
    """Where this user's cache key lives."""
    return cache_dir() / KEY_FILE


def secret() -> bytes:
    """This user's cache key, created on first use. Raises KeyUnusable."""
    path = key_path()
    known = _loaded.get(str(path))
    if known is not None:
        return known
    try:
        value = _read(path)
    except FileNotFoundError:
        value = _create(path)
    _loaded[str(path)] = value
    return value


def _read(path: Path) -> bytes:
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyUnusable(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyUnusable(f"{path}: not a regular file")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise KeyUnusable(f"{path}: belongs to another user")
        if st.st_mode & 0o077:
            raise KeyUnusable(f"{path}: others may read or write it (mode {st.st_mode & 0o777:o})")
        data = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != KEY_BYTES:
        raise KeyUnusable(f"{path}: not {KEY_BYTES} bytes")
    return data


def _create(path: Path) -> bytes:
    """Write a new key 0600, atomically: a process that loses the race reads the winner's."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        value = secrets.token_bytes(KEY_BYTES)
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(value)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)  # never replaces a key another process made meanwhile
        except FileExistsError:
            return _read(path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    except OSError as exc:
        raise KeyUnusable(f"{path}: cannot be created ({exc.strerror or exc})") from None
    return value


def mac(key: bytes, text: bytes) -> str:
    """HMAC-SHA256 of text, as hex."""
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def seal(key: bytes, text: str) -> str:
    """The text as stored: its MAC on the first line, then the text."""
    return f"{mac(key, text.encode('utf-8'))}\n{text}"


def unseal(key: bytes, stored: bytes) -> bytes | None:
    """The text of a sealed file, or None when its MAC is not right."""
    head, sep, text = stored.partition(b"\n")
    if not sep or not hmac.compare_digest(head, mac(key, text).encode("ascii")):
        return None
    return text
