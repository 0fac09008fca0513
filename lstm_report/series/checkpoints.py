"""A checkpoint series one checkpoint at a time: work units, and a cache by content hash.

Every checkpoint of a series (a model entry whose path is a glob or a list) is reduced to
its per-gate figures (analysis.series: norms, the spectral radius of U_g, the median forget
timescale, the relative change since the previous checkpoint). A work unit, ``PointUnit``,
is a run of consecutive checkpoints that need reducing, read in turn, each once (plus the
checkpoint before the run, for its first change): ``build`` runs them on a local pool
(pools.LocalPool), ``batch`` on its engine (the local pool or Dask), and either runs them
here when there are few. What a unit computes for a checkpoint does not depend on how the
series was cut into units.

A unit's result is cached, keyed by the sha256 of the checkpoint's bytes, the sha256 of the
previous checkpoint's bytes (the relative change depends on it), lstm-report's version and
the options that change what is read (reader, unsafe, activations). An entry holds the
figures of each layer computed so far (a config's ``layers:`` decides which are needed) and
the list of every recurrent layer the checkpoint has. Entries are JSON, sealed with an
HMAC under this user's random key (lstm_report.fileio.cachekey), validated on reading (anything
unexpected, or a wrong MAC: ignored and recomputed) and written atomically, never through a
symbolic link.

Beside the entries, the cache remembers each checkpoint's sha256 by its folder, name and
``stat`` (size, modification and change times in ns, inode): a rerun hashes only files
that are new or changed (a write changes the change time, which no user can set back),
sealed the same way.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstm_report._version import __version__
from lstm_report.config.schema import ModelSpec, checkpoint_label
from lstm_report.errors import ConfigError, LstmReportError, one_line, shorten
from lstm_report.fileio.limits import open_regular, read_at_most
from lstm_report.model.layers import RecurrentLayer
from lstm_report.model.training import Checkpoint, GatePoint, LayerPoint
from lstm_report.readers.formats import format_of

if TYPE_CHECKING:
    from lstm_report.sweep.engines.local import LocalPool

FORMAT = 1
"""The entries' own format (part of every key)."""

MAX_ENTRY = 4 << 20
"""Bytes: a larger cache file is not read (it is not one of ours)."""

GATE_ORDERS = (("i", "f", "c", "o"), ("z", "r", "h"))
"""The gates an entry may hold per layer, in order: an LSTM's or a GRU's."""

POOL_MIN_SECONDS = 1.0
"""``build`` starts a local pool for a series only when its units would take longer than
this on one core (estimated from the layer sizes): starting workers costs about 0.5 s."""

_FIELDS = tuple(f.name for f in fields(GatePoint))

LayerId = tuple[str, str]
"""(layer name, direction)"""


@dataclass(frozen=True)
class Entry:
    """What is known of one checkpoint (given its previous one): its recurrent layers, and
    the figures of those computed so far."""

    layers: tuple[LayerId, ...]
    """Every LSTM and GRU of the checkpoint, in model order."""
    points: Mapping[LayerId, LayerPoint]

    def missing(self, wanted: Iterable[LayerId]) -> bool:
        return any(w in self.layers and w not in self.points for w in wanted)

    def merged(self, other: Entry) -> Entry:
        return Entry(self.layers, {**self.points, **other.points})


# -- keys and the JSON form -------------------------------------------------------------


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


def point_key(spec: ModelSpec, digest: str | None, previous: str | None, first: bool) -> str | None:
    """The cache key of a checkpoint's figures; None when a file could not be hashed."""
    if digest is None or (previous is None and not first):
        return None
    parts = {
        "format": FORMAT,
        "version": __version__,
        "file": digest,
        "previous": previous,
        "reader": spec.reader,
        "unsafe": spec.unsafe,
        "external_data": spec.external_data,
        "activations": [list(a) for a in spec.activations],
    }
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _number(x: float | None) -> Any:
    if x is None or math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _float(x: Any) -> float | None:
    if x is None:
        return None
    if type(x) is float:
        return x
    if x in ("nan", "inf", "-inf"):
        return float(x)
    raise ValueError("not a number")


def entry_json(key: str, entry: Entry) -> dict[str, Any]:
    points = []
    for (name, direction), p in entry.points.items():
        gates = [[g, [_number(getattr(v, f)) for f in _FIELDS]] for g, v in p.gates]
        points.append(
            {
                "name": name,
                "direction": direction,
                "tau_median": _number(p.tau_median),
                "gates": gates,
            }
        )
    return {
        "format": FORMAT,
        "key": key,
        "layers": [list(x) for x in entry.layers],
        "points": points,
    }


def parse_entry(raw: Any, key: str) -> Entry | None:
    """The entry ``raw`` holds, if it is a well-formed entry for ``key``; else None."""
    try:
        if not isinstance(raw, dict) or set(raw) != {"format", "key", "layers", "points"}:
            return None
        if raw["format"] != FORMAT or raw["key"] != key:
            return None
        layers: list[LayerId] = []
        for item in raw["layers"]:
            if not (isinstance(item, list) and len(item) == 2):
                return None
            name, direction = item
            if not (isinstance(name, str) and direction in ("forward", "backward")):
                return None
            layers.append((name, direction))
        if len(set(layers)) != len(layers):
            return None
        points: dict[LayerId, LayerPoint] = {}
        for p in raw["points"]:
            if not isinstance(p, dict) or set(p) != {"name", "direction", "tau_median", "gates"}:
                return None
            ident = (p["name"], p["direction"])
            if ident not in layers or ident in points:
                return None
            if not all(isinstance(g, list) and len(g) == 2 for g in p["gates"]):
                return None
            if tuple(g for g, _ in p["gates"]) not in GATE_ORDERS:
                return None
            gates = []
            for g, values in p["gates"]:
                if not isinstance(values, list) or len(values) != len(_FIELDS):
                    return None
                gates.append((g, GatePoint(*(_float(v) for v in values))))
            points[ident] = LayerPoint(ident[0], ident[1], tuple(gates), _float(p["tau_median"]))
        return Entry(tuple(layers), points)
    except (TypeError, ValueError, KeyError):
        return None


# -- where entries live -----------------------------------------------------------------


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
        self._new: dict[str, Entry] = {}
        self._secret: bytes | None = None
        self._failed: set[str] = set()
        """Keys whose entry failed authentication: checked again once rewritten."""
        self._warned: set[str] = set()
        self._seen: dict[str, Entry | None] = {}
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
            from lstm_report.fileio import cachekey

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

    def get(self, key: str | None) -> Entry | None:
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
        from lstm_report.fileio.cachekey import mac

        assert self.folder is not None and self._secret is not None
        # Named by a MAC of the folder: a published cache never shows a local path.
        return self.folder / "files" / f"{mac(self._secret, folder.encode('utf-8'))[:40]}.stat"

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
        from lstm_report.fileio.cachekey import unseal

        assert self._secret is not None
        stored = _read_bytes(path)
        text = unseal(self._secret, stored) if stored is not None else None
        if text is None:
            return None
        try:
            return json.loads(text.decode("utf-8"))
        except (ValueError, RecursionError):
            return None

    def _read(self, key: str) -> Any:
        from lstm_report.fileio.cachekey import unseal

        assert self._secret is not None
        stored = _read_bytes(self._path(key))
        if stored is None:
            return None
        text = unseal(self._secret, stored)
        if text is None:
            self._failed.add(key)
            return None
        try:
            return json.loads(text.decode("utf-8"))
        except (ValueError, RecursionError):
            return None

    def put(self, key: str, entry: Entry) -> None:
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
        from lstm_report.fileio.cachekey import seal
        from lstm_report.fileio.write import write_files

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
                write_files(
                    [(path, seal(self._secret, json.dumps(entry_json(k, e), sort_keys=True)))]
                )
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
        from lstm_report.fileio.cachekey import seal
        from lstm_report.fileio.write import write_files

        assert self._secret is not None
        changed, self._changed = self._changed, set()
        for folder in sorted(changed):
            path = self._files_path(folder)
            if _link_below(self.root, path.parent) is not None:
                continue
            text = json.dumps({"format": FORMAT, "files": self._files[folder]}, sort_keys=True)
            try:
                write_files([(path, seal(self._secret, text))])
            except LstmReportError:
                return  # only a rerun's speed depends on it (the entries warn)


Stat = tuple[int, int, int, int]
"""What tells that a file changed: size, modification and change times in ns, inode."""


def file_stat(path: Path) -> Stat | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


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
    from lstm_report._resources import cache_dir

    return cache_dir() / "checkpoints"


# -- the work unit ----------------------------------------------------------------------


@dataclass(frozen=True)
class PointUnit:
    """A run of consecutive checkpoints to reduce, in a worker: everything it needs (no
    file of ours). Each file is read once, in turn, the one before it kept for its change."""

    spec: ModelSpec
    """The model entry, its ``path`` the run's first checkpoint (how to read it, which
    layers)."""
    previous: Path | None
    """The checkpoint before the run (read for the first one's change), or None."""
    first: bool
    """Whether the run starts the series."""
    version: str
    label: str = ""
    """The run and checkpoints, for Dask's task names."""
    paths: tuple[Path, ...] = ()
    """The run's checkpoints, in order (none: just ``spec.path``)."""
    start: int = 0
    """The index of the run's first checkpoint in its series."""
    known: tuple[tuple[Stat, str] | None, ...] = ()
    """For ``previous`` (if any) and each of ``paths``: the stat and sha256 the plan saw;
    a file whose stat is still that is not hashed again."""

    @property
    def files(self) -> tuple[Path, ...]:
        return self.paths or (self.spec.path,)


@dataclass(frozen=True)
class PointResult:
    points: tuple[tuple[str | None, dict[str, Any]], ...] = ()
    """(key, entry in JSON form) of each checkpoint of the unit, in order, up to a failure."""
    error: str | None = None
    failed: int | None = None
    """The series index of the checkpoint that could not be reduced (with ``error``)."""
    traceback: str | None = None


def wanted_layers(spec: ModelSpec, lstms: Sequence[RecurrentLayer]) -> list[RecurrentLayer]:
    """The layers whose figures a unit computes: those the config names (all by default).
    (The analysed layers are those of the last checkpoint; the others are never shown.)"""
    return [w for w in lstms if spec.layers is None or w.name in spec.layers]


def reduce(weights: Any, before: Any, layers: Sequence[RecurrentLayer]) -> Entry:
    """The figures of ``layers`` of one checkpoint (``before``: the previous one, or None)."""
    from threadpoolctl import threadpool_limits

    from lstm_report.analysis.series import layer_point

    prev = {(w.name, w.direction): w for w in before.layers} if before is not None else {}
    # One BLAS thread: the checkpoints are the parallelism, and a multi-threaded eigenvalue
    # problem of this size is slower on a busy machine (measured: 4x on 2 cores).
    with threadpool_limits(limits=1, user_api="blas"):
        points = {
            (w.name, w.direction): layer_point(w, prev.get((w.name, w.direction))) for w in layers
        }
    return Entry(tuple((w.name, w.direction) for w in weights.layers), points)


ONE_AT_A_TIME = threading.Lock()
"""One unit at a time per process, checkpoint or report (batch.build_unit): a Dask worker
with several threads would otherwise run them side by side, and process-wide settings
(BLAS threads, warning filters) are not theirs to share."""


def same_version(version: str) -> None:
    """Raise ConfigError in a worker whose lstm-report is not the batch's ``version``."""
    if version != __version__:
        raise ConfigError(
            f"this worker runs lstm-report {__version__}, the batch {version}; "
            "install the same version on every worker"
        )


def run_unit(unit: PointUnit) -> PointResult:
    """Read a run of checkpoints (and the one before it) and reduce them, in a worker;
    never raises: a failure ends the unit, with the figures computed so far."""
    import traceback
    import warnings

    done: list[tuple[str | None, dict[str, Any]]] = []
    at = [unit.start]
    with ONE_AT_A_TIME:
        try:
            same_version(unit.version)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                done.extend(_run(unit, at))
                return PointResult(tuple(done))
        except Exception as exc:
            return PointResult(
                tuple(done), unit_error(exc), failed=at[0], traceback=traceback.format_exc()
            )


def _run(
    unit: PointUnit, at: list[int] | None = None
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """run_unit's work: the (key, entry) of each checkpoint in turn, computed before the
    next is read; raises the reader's own errors. ``at[0]``: the series index of the
    checkpoint being read (the one before the run: ``start - 1``)."""
    at = at if at is not None else [0]
    spec = unit.spec
    known = list(unit.known)
    before = before_digest = None
    if unit.previous is not None:
        at[0] = unit.start - 1
        before, before_digest = _read_one(spec, unit.previous, known.pop(0) if known else None)
    for j, path in enumerate(unit.files):
        at[0] = unit.start + j
        weights, digest = _read_one(spec, path, known[j] if j < len(known) else None)
        entry = reduce(weights, before, wanted_layers(spec, weights.layers))
        first = unit.first and j == 0
        key = point_key(spec, digest, before_digest, first)
        yield key, entry_json(key or "", entry)
        before, before_digest = weights, digest


def _read_one(
    spec: ModelSpec, path: Path, known: tuple[Stat, str] | None
) -> tuple[Any, str | None]:
    """A checkpoint's weights, and the sha256 of the bytes read: the plan's when the file's
    stat is what the plan saw, else hashed here; None when the file changed while read
    (its figures are then not cached)."""
    from lstm_report.readers.dispatch import read_model

    st = file_stat(path)
    weights = read_model(replace(spec, path=path))
    if st is None or file_stat(path) != st:
        return weights, None
    if known is not None and known[0] == st:
        return weights, known[1]
    digest = file_digest(path)
    return weights, digest if file_stat(path) == st else None


def unit_error(exc: BaseException) -> str:
    """A unit's failure as one line: our own message, or an internal error."""
    if isinstance(exc, LstmReportError):
        return one_line(str(exc))
    first = (str(exc).strip().splitlines() or [""])[0]
    return one_line(
        f"internal error: {type(exc).__name__}: {shorten(first, 200)} "
        "(rerun with --debug for details)"
    )


# -- a series, in the process that builds the report --------------------------------------


UNIT_MAX = 32
"""Checkpoints in a unit at most, on a pool: a unit re-reads the checkpoint before it, and
smaller units spread better over the workers."""


def unit_size(count: int, jobs: int) -> int:
    """How many checkpoints a unit holds when ``count`` are to be reduced on ``jobs``
    workers: about four units a worker (the last ones to finish are short), at most
    UNIT_MAX."""
    return max(1, min(UNIT_MAX, math.ceil(count / (4 * max(1, jobs)))))


def runs(todo: Sequence[int], size: int | None = None) -> list[tuple[int, int]]:
    """The units' (start, stop) ranges: the runs of consecutive indices of ``todo``
    (sorted), each cut into pieces of at most ``size`` (None: not cut)."""
    out: list[tuple[int, int]] = []
    for k in todo:
        if out and out[-1][1] == k and (size is None or k - out[-1][0] < size):
            out[-1] = (out[-1][0], k + 1)
        else:
            out.append((k, k + 1))
    return out


@dataclass(frozen=True)
class Plan:
    """A series' checkpoints, their keys, and which need a unit."""

    spec: ModelSpec
    paths: tuple[Path, ...]
    keys: tuple[str | None, ...]
    todo: tuple[int, ...]
    known: tuple[tuple[Stat, str] | None, ...] = ()
    """Each checkpoint's stat and sha256 as hashed (or remembered) by the plan."""

    def unit(self, start: int, stop: int, label: str = "") -> PointUnit:
        """The unit of checkpoints ``start`` to ``stop - 1``."""
        prev = self.paths[start - 1] if start else None
        known = self.known[start - 1 if start else 0 : stop] if self.known else ()
        return PointUnit(
            replace(self.spec, path=self.paths[start]),
            prev,
            start == 0,
            __version__,
            label,
            self.paths[start:stop],
            start,
            known,
        )

    def units(self, size: int | None = None, label: str = "") -> list[PointUnit]:
        """The units of ``todo``: runs of consecutive checkpoints of at most ``size``;
        ``label`` + ``.start`` names each."""
        return [self.unit(a, b, f"{label}.{a}" if label else "") for a, b in runs(self.todo, size)]


def plan(
    spec: ModelSpec,
    cache: Cache | None,
    wanted: Iterable[LayerId] | None = None,
    digest: Callable[[Path], str | None] | Digests = file_digest,
) -> Plan:
    """Hash every checkpoint and look it up. ``wanted``: the layers the report shows (None:
    those the config names, as a unit computes them)."""
    assert spec.series is not None
    paths = tuple(spec.series)
    known: tuple[tuple[Stat, str] | None, ...] = ()
    if isinstance(digest, Digests):
        known = tuple(digest.known(p) for p in paths)
        digests = [k[1] if k is not None else None for k in known]
    else:
        digests = [digest(p) for p in paths]
    keys = tuple(
        point_key(spec, d, digests[k - 1] if k else None, k == 0) for k, d in enumerate(digests)
    )
    todo = []
    for k, key in enumerate(keys):
        entry = cache.get(key) if cache is not None else None
        if entry is None:
            todo.append(k)
            continue
        need = (
            wanted
            if wanted is not None
            else [x for x in entry.layers if spec.layers is None or x[0] in spec.layers]
        )
        if entry.missing(need):
            todo.append(k)
    return Plan(spec, paths, keys, tuple(todo), known)


Runner = Callable[[Sequence[PointUnit]], Iterator[tuple[PointUnit, PointResult | None, str | None]]]


def serial(
    units: Sequence[PointUnit],
) -> Iterator[tuple[PointUnit, PointResult | None, str | None]]:
    """Units in this process, in order (each reads its checkpoints in turn); the first
    error is raised as it is."""
    for u in units:
        yield u, PointResult(tuple(_run(u))), None


def pooled(pool: LocalPool) -> Runner:
    """A runner on a local pool (its owner closes it)."""

    def run(
        units: Sequence[PointUnit],
    ) -> Iterator[tuple[PointUnit, PointResult | None, str | None]]:
        for u in units:
            pool.submit(run_unit, u)
        yield from pool.results()

    return run


def warm_up() -> None:
    """In a new worker: import what a unit needs while the builder reads and analyses."""
    import h5py  # noqa: F401
    import threadpoolctl  # noqa: F401

    import lstm_report.analysis.series  # noqa: F401
    import lstm_report.readers.keras.direct  # noqa: F401


def estimate(layers: Sequence[RecurrentLayer], count: int) -> float:
    """Seconds on one core for ``count`` checkpoints of these layers: an eigenvalue problem
    per gate (about 26 ms for 256 units, cubic), plus reading a file."""
    per = sum(
        (4 if w.cell_kind == "LSTM" else 3) * w.recurrent_kernel.shape[0] ** 3 * 1.5e-9
        for w in layers
    )
    return count * (per + 0.015)


class Digests:
    """sha256 of files, each hashed once per build (by path and stat), and not at all when
    ``cache`` remembers it for the file's stat (a rerun hashes only new or changed files)."""

    def __init__(self, cache: Cache | None = None) -> None:
        self.cache = cache
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
        ident = (os.path.abspath(path), st)
        if ident not in self._seen:
            digest = self.cache.known_digest(path, st) if self.cache is not None else None
            if digest is None:
                digest = file_digest(path)
                if digest is not None and file_stat(path) != st:
                    digest = None  # written to while hashed: hashed again next time
                if digest is not None and self.cache is not None:
                    self.cache.note_digest(path, st, digest)
            self._seen[ident] = digest
        digest = self._seen[ident]
        return (st, digest) if digest is not None else None


def series_points(
    spec: ModelSpec,
    keep: Sequence[LayerId],
    cache: Cache | None,
    runner: Runner,
    digest: Callable[[Path], str | None] | Digests = file_digest,
    jobs: int | None = None,
) -> tuple[Checkpoint, ...]:
    """The figures of every checkpoint of ``spec``'s series, from the cache or computed by
    ``runner`` in units of consecutive checkpoints (sized for ``jobs`` workers; None: each
    run of checkpoints to compute is one unit); new figures go into the cache. Raises the
    error of the first checkpoint (in series order) that could not be reduced."""
    p = plan(spec, cache, keep, digest)
    size = unit_size(len(p.todo), jobs) if jobs is not None else None
    store = cache if cache is not None else Cache()
    failed: dict[int, str] = {}
    found: dict[int, Entry] = {}
    for unit, result, error in runner(p.units(size)):
        for j, (key, raw) in enumerate(result.points if result is not None else ()):
            entry = parse_entry(raw, key or "")
            if entry is None:
                failed[unit.start + j] = (
                    "internal error: a checkpoint's figures did not come back whole"
                )
                break
            found[unit.start + j] = entry
            if key is not None:  # the key of the bytes the unit read
                store.put(key, entry)
        if error is not None or result is None:
            failed[unit.start] = error or "failed"
        elif result.error is not None:
            failed[result.failed if result.failed is not None else unit.start] = result.error
    if failed:
        store.save()
        first = min(failed)
        message = failed[first]
        if message == _worker_died():
            message = f"{p.paths[max(first, 0)]}: {message}"
        raise _Failed(message)
    store.save()
    out = []
    wanted = set(keep)
    # never a local absolute path (the page is published): as ModelSpec.shown_path says,
    # looked up once rather than once per checkpoint
    shown = dict(zip(p.paths, spec.shown))
    for k, path in enumerate(p.paths):
        entry = found.get(k) or store.get(p.keys[k])
        assert entry is not None
        layers = tuple(entry.points[x] for x in entry.layers if x in wanted)
        out.append(
            Checkpoint(path=shown.get(path, path.name), label=checkpoint_label(path), layers=layers)
        )
    return tuple(out)


def _worker_died() -> str:
    from lstm_report.sweep.engines.local import WORKER_DIED

    return WORKER_DIED


class _Failed(LstmReportError):
    """A checkpoint could not be reduced; the message is the unit's own."""


def label_of(name: str) -> str:
    """An in-memory snapshot's label: as named, without a model file's suffix if it has
    one (readers.formats), as a checkpoint file's label (config.checkpoint_label)."""
    return checkpoint_label(Path(name)) if format_of(name) is not None else name
