"""What a hostile input file may cost: every limit, and the helpers that read within them.

A report may be built on a CI server from a file anyone submitted, so every config, model and
probe file is read as if it were hostile. The limits are documented in docs/formats.md
("Hostile files: what is refused and why"); change both together.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

MiB = 2**20

MAX_CONFIG_BYTES = 10 * MiB
"""A YAML config larger than this is refused (a real one is a few kilobytes)."""

MAX_MODEL_CONFIG_BYTES = 32 * MiB
"""A stored model architecture (``config.json``, the ``model_config`` attribute) larger than
this is refused; a model of a thousand layers needs about 2 MiB."""

MAX_METADATA_BYTES = 1 * MiB
"""``metadata.json`` of a ``.keras`` zip holds a version and a date: 1 MiB is plenty."""

MAX_JSON_DEPTH = 100
"""JSON nested deeper than this is refused before any code walks it (a Keras config with a
nested model inside a Bidirectional is 13 levels deep; every nested model adds 3 to 6)."""

MAX_INFLATION = 1000
"""A compressed HDF5 dataset may declare at most this many times the bytes it stores (gzip
cannot do much better, even on zeros), unless it declares at most DATASET_INFLATION_FLOOR;
all the compressed datasets of a file together likewise, unless they declare at most
FILE_INFLATION_FLOOR."""

DATASET_INFLATION_FLOOR = 1 * MiB
FILE_INFLATION_FLOOR = 64 * MiB

MAX_HDF5_LINKS = 200_000
"""An HDF5 file with more links (names of groups and datasets) is refused: checking each
takes time, up to 0.1 ms inside a zip (a model of 300 layers, trained with Adam, has 2,400)."""

ZIP_MAX_RATIO = 100
"""A compressed member of a ``.keras`` or ``.npz`` zip may inflate to at most this many times
its compressed size (real weights deflate about 1.1×, Keras' JSON 5 to 10×), unless it
inflates to at most ZIP_RATIO_FLOOR."""

ZIP_RATIO_FLOOR = 16 * MiB

ZIP_SPOOL_BYTES = 64 * MiB
"""A compressed ``model.weights.h5`` is inflated into memory up to this size, then into a
temporary file (Keras stores it uncompressed; that is read in place)."""

MAX_PROBE_BYTES = 256 * MiB
"""Probe data may declare at most this many bytes (the replay of every LSTM over it needs
several times as much again)."""


MAX_RECURRENT_LAYERS = 1000
"""A model file yielding more recurrent layers (one direction of one layer each) is refused
before their weights are read: a report of 1,000 layers is already unreadable."""

MAX_TENSORS = 50_000
"""A PyTorch or safetensors file naming more tensors is refused (a state dict of 1,000
bidirectional LSTM layers names 8,000)."""

MATERIALISE_FACTOR = 4
MATERIALISE_FLOOR = 64 * MiB
"""The weights read from a PyTorch, safetensors or ONNX file may take at most
MATERIALISE_FACTOR times the file's size in memory (bfloat16 widens 2×; a tensor, or an
ONNX initializer, used twice counts twice), unless they take at most MATERIALISE_FLOOR:
views of one storage, or nodes sharing one initializer, cannot make a small file huge."""

MAX_PICKLE_OPCODES = 2_000_000
"""A torch.save ``data.pkl`` of more opcodes is refused before it is unpickled (a training
checkpoint takes about 35 a tensor; the scan reads about a million a second)."""

MAX_SAFETENSORS_HEADER_ITEMS = 2_000_000
"""A safetensors header may hold at most this many JSON values (counted, as an upper bound,
from its brackets and commas before it is parsed; a tensor's entry holds about 10)."""

MAX_SAFETENSORS_DEPTH = 10
"""A safetensors header is 3 levels deep (header, entry, shape): deeper than this is refused
before it is parsed."""

MAX_ONNX_BYTES = 2 * 2**30
"""Protobuf's own limit on a message: an ONNX file larger than this cannot be read (its
weights belong in an external data file)."""

MAX_ONNX_NODES = 100_000
"""An ONNX main graph of more nodes is refused before it is parsed."""

MAX_ONNX_ITEMS = 1_000_000
"""An ONNX file may hold at most this many messages and strings (nodes, attributes,
inputs, value infos, ...; counted from the wire format before it is parsed): each costs
hundreds of bytes once parsed, however few bytes it takes in the file."""

MAX_ONNX_VARINT_BYTES = 64 * MiB
"""Packed integer lists (dims, int64_data, ints attributes) may take at most this many
bytes of an ONNX file: each byte can be an 8-byte integer once parsed."""

MAX_PAGE_BYTES = 64 * MiB
"""``site`` skips (with a warning) a page larger than this; a report of 100 layers with
every figure is a few MiB."""

MAX_MANIFEST_BYTES = 64 * MiB
"""``batch`` refuses a site manifest (``.lstm-report-batch.json``) larger than this; each
run takes about a kilobyte."""


class NotRegularFileError(OSError):
    """The path is a FIFO, a device or a socket: reading it could wait forever or never end."""


def open_regular(path: str | Path, *, follow_symlinks: bool = True) -> IO[bytes]:
    """Open a regular file for reading; refuse anything else before reading a byte.

    Raises FileNotFoundError, IsADirectoryError, NotRegularFileError or another OSError
    (also for a symlink, with ``follow_symlinks=False``). The path is checked with stat
    before it is opened (opening a FIFO for reading waits for a writer), and opened without
    blocking and checked again, in case it changed meanwhile.
    """
    _check_regular(os.stat(path, follow_symlinks=follow_symlinks).st_mode, path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        _check_regular(os.fstat(fd).st_mode, path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_hostile(
    path: str | Path,
    *,
    unreadable: Callable[[str], Exception],
    missing: Callable[[], Exception] | None = None,
    directory: Callable[[], Exception] | None = None,
    special: Callable[[str], Exception] | None = None,
    follow_symlinks: bool = True,
) -> IO[bytes]:
    """open_regular(path), each way it can fail raised as the caller's error, without the
    OSError's traceback: ``missing()``, ``directory()``, ``special(what)`` for a FIFO, device
    or socket (what: ``not a regular file (a FIFO)``), else ``unreadable(why)`` (why: the
    OS's words), which also stands in for a kind the caller gives no error for."""
    try:
        return open_regular(path, follow_symlinks=follow_symlinks)
    except FileNotFoundError as exc:
        error = missing() if missing is not None else unreadable(_why(exc))
    except IsADirectoryError as exc:
        error = directory() if directory is not None else unreadable(_why(exc))
    except NotRegularFileError as exc:
        error = special(str(exc)) if special is not None else unreadable(_why(exc))
    except OSError as exc:
        error = unreadable(_why(exc))
    raise error from None


def _why(exc: OSError) -> str:
    return str(exc.strerror or exc)


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_regular(mode: int, path: str | Path) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "is a directory", str(path))
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    raise NotRegularFileError(f"not a regular file ({kind})")


def read_at_most(fh: IO[bytes] | Any, limit: int) -> bytes | None:
    """All of fh if it holds at most limit bytes, else None (having read limit + 1 at most)."""
    chunks = []
    left = limit + 1
    while left > 0:
        chunk = fh.read(min(left, MiB))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return None if left <= 0 else b"".join(chunks)


class TooLargeError(OSError):
    """The file holds more bytes than the limit for what it is."""


def read_regular(path: str | Path, limit: int, *, follow_symlinks: bool = True) -> bytes:
    """All of a regular file of at most limit bytes (open_regular, then read_at_most).

    Raises what open_regular raises, or TooLargeError (from its size, before reading, or
    when it grows past limit while read).
    """
    with open_regular(path, follow_symlinks=follow_symlinks) as fh:
        size = os.fstat(fh.fileno()).st_size
        data = None if size > limit else read_at_most(fh, limit)
    if data is None:
        raise TooLargeError(f"larger than {size_text(limit)}")
    return data


def weights_problem(layers: int, nbytes: int, file_size: int) -> str | None:
    """What is wrong with reading this many recurrent layers and bytes of weights from a
    file of file_size bytes (MAX_RECURRENT_LAYERS, MATERIALISE_FACTOR), or None."""
    if layers > MAX_RECURRENT_LAYERS:
        return (
            f"{layers:,} recurrent layers (each direction of each layer counts), more than "
            f"{MAX_RECURRENT_LAYERS:,}"
        )
    if nbytes > max(MATERIALISE_FLOOR, MATERIALISE_FACTOR * file_size):
        return (
            f"its weights would take {size_text(nbytes)} once read, more than "
            f"{MATERIALISE_FACTOR}× the file's {size_text(file_size)} (a tensor read again "
            "for each use: views of one storage, or nodes sharing one initializer)"
        )
    return None


ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def zip_member_problem(info: zipfile.ZipInfo, limit: int | None = None) -> str | None:
    """What is wrong with a zip member, from its headers alone (before a byte is inflated):
    encrypted, an unknown method, more than limit bytes once inflated, or more than
    ZIP_MAX_RATIO times its compressed size (above ZIP_RATIO_FLOOR). None if nothing.

    The headers may lie about the inflated size: read the member with read_at_most.
    """
    if info.flag_bits & 0x1:
        return "is encrypted"
    if info.compress_type not in ZIP_METHODS:
        return f"uses compression method {info.compress_type}, which cannot be read"
    if limit is not None and info.file_size > limit:
        return f"is {size_text(info.file_size)} once inflated; the limit is {size_text(limit)}"
    if info.compress_type == zipfile.ZIP_STORED:
        if info.file_size != info.compress_size:
            return (
                f"is stored uncompressed, but its headers give two sizes ({info.file_size:,} "
                f"and {info.compress_size:,} bytes): a damaged file"
            )
    elif info.file_size > max(ZIP_RATIO_FLOOR, ZIP_MAX_RATIO * info.compress_size):
        return (
            f"inflates from {size_text(info.compress_size)} to {size_text(info.file_size)}, "
            f"more than {ZIP_MAX_RATIO}× (and more than {size_text(ZIP_RATIO_FLOOR)}): "
            "refused as a decompression bomb"
        )
    return None


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if lists and dicts nest deeper than limit (measured without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list, tuple)))
    return False


def size_text(n: int) -> str:
    """1,234 bytes / 3.2 MiB / 4.0 GiB: sizes in messages."""
    if n < MiB:
        return f"{n:,} bytes"
    if n < 2**30:
        return f"{n / MiB:.1f} MiB".replace(".0 MiB", " MiB")
    return f"{n / 2**30:,.1f} GiB".replace(".0 GiB", " GiB")
