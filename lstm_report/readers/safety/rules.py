"""The safety rules for hostile model files (docs/formats.md, "Hostile files").

They run in ``inspect_file``, before any reader (the direct one or Keras) reads a byte of
data: an HDF5 file may not make the report read another file, loop, or inflate past the
limits in lstm_report/fileio/limits.py, and neither may a member of a ``.keras`` zip. Everything
is checked from metadata first; no link is followed.
"""

from __future__ import annotations

import io
import math
import os
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

from lstm_report.errors import CorruptModelError
from lstm_report.fileio.limits import (
    DATASET_INFLATION_FLOOR,
    FILE_INFLATION_FLOOR,
    MAX_HDF5_LINKS,
    MAX_INFLATION,
    ZIP_SPOOL_BYTES,
    MiB,
    read_at_most,
    size_text,
    zip_member_problem,
)
from lstm_report.readers.formats import ZIP_SIGNATURE

OWN_BYTES = "refused: a model file may only use its own bytes"


def check_hdf5(f: Any, label: str) -> None:
    """Refuse an HDF5 file (an open h5py.File) that reading could make unsafe.

    * at most MAX_HDF5_LINKS links; no external link, no user-defined link, no soft link
      that does not resolve (a cycle, or a missing target): links are walked with H5Lvisit,
      which follows none, and soft links are resolved only once no link leads elsewhere;
    * no dataset keeping its data in external raw files or mapping other files (virtual);
    * no uncompressed dataset storing fewer bytes than its shape declares;
    * no compressed dataset declaring more than MAX_INFLATION times what it stores, alone
      (above DATASET_INFLATION_FLOOR) or all of them together (above FILE_INFLATION_FLOOR).

    label starts every message: it names the file. Raises CorruptModelError.
    """
    # Two walks, each stopping at the first problem (a callback may not raise: it returns
    # the message). Nothing is listed, so a file of a million links costs no memory.
    walk = _Walks(f, label)
    for visit in (walk.links, walk.objects):
        problem = f.id.links.visit(visit, info=True)
        if problem:
            raise CorruptModelError(f"{label}: {problem}")
    declared, stored = walk.compressed
    if declared > max(FILE_INFLATION_FLOOR, MAX_INFLATION * stored):
        raise CorruptModelError(
            f"{label}: compressed datasets declare {size_text(declared)} in all (the most: "
            f"{walk.worst[1]}) but store {size_text(stored)}, more than {MAX_INFLATION}× and "
            f"more than {size_text(FILE_INFLATION_FLOOR)}: refused as a decompression bomb"
        )


class _Walks:
    """check_hdf5's two walks over a file's links (H5Lvisit callbacks) and what they count."""

    def __init__(self, f: Any, label: str) -> None:
        from h5py import h5d, h5l, h5o  # h5py is loaded only when an HDF5 file is read

        self.f, self.label = f, label
        self.h5d, self.h5l, self.h5o = h5d, h5l, h5o
        self.count = 0
        self.compressed = [0, 0]  # declared, stored
        self.worst = (0.0, "")

    def links(self, name: bytes, info: Any) -> str | None:
        """The first walk: how many links, and of which types."""
        h5l = self.h5l
        self.count += 1
        if self.count > MAX_HDF5_LINKS:
            return f"has more than {MAX_HDF5_LINKS:,} links; refused"
        if info.type == h5l.TYPE_EXTERNAL:
            return f"{show(name)} is an external link to another file; {OWN_BYTES}"
        if info.type not in (h5l.TYPE_HARD, h5l.TYPE_SOFT):
            return f"{show(name)} is a user-defined link (type {info.type}); {OWN_BYTES}"
        return None

    def objects(self, name: bytes, info: Any) -> str | None:
        """The second walk: each soft link resolves, each dataset is checked."""
        try:
            return self._check_object(name, info.type)
        except Exception as exc:  # must not escape the callback: h5py would mangle it
            return f"cannot check {show(name)} ({type(exc).__name__}: {exc}); damaged file"

    def _check_object(self, name: bytes, kind: int) -> str | None:
        f, h5o = self.f, self.h5o
        if kind == self.h5l.TYPE_SOFT:
            try:  # resolving follows soft links, at most 16 in a row: a cycle fails, not loops
                h5o.get_info(f.id, name)
            except (KeyError, RuntimeError, OSError, ValueError):
                target = show(f.id.links.get_val(name))
                return (
                    f"soft link {show(name)} -> {target} does not resolve (a cycle, or a "
                    "missing target); damaged file"
                )
            return None
        if h5o.get_info(f.id, name).type != h5o.TYPE_DATASET:
            return None
        try:
            dsid = self.h5d.open(f.id, name)
            size, kept, filtered = check_dataset(dsid, show(name), self.label)
        except CorruptModelError as exc:
            return str(exc).removeprefix(f"{self.label}: ")
        if filtered:
            self.compressed[0] += size
            self.compressed[1] += kept
            self.worst = max(self.worst, (size / max(kept, 1), show(name)))
        return None


def check_dataset(dsid: Any, name: str, label: str) -> tuple[int, int, bool]:
    """(declared bytes, stored bytes, compressed) of a dataset (an h5py DatasetID), checked.

    Reads the dataset's creation properties and dataspace only: never its data, and never
    the files a virtual or external dataset names. Raises CorruptModelError.
    """
    from h5py import h5d, h5s  # h5py is loaded only when an HDF5 file is read

    dcpl = dsid.get_create_plist()
    externals = dcpl.get_external_count()
    if externals:
        raise CorruptModelError(
            f"{label}: dataset {name} keeps its data in {externals} external file(s), not in "
            f"this one; {OWN_BYTES}"
        )
    if dcpl.get_layout() == h5d.VIRTUAL:
        raise CorruptModelError(
            f"{label}: dataset {name} is a virtual dataset (its data lives in other files); "
            f"{OWN_BYTES}"
        )
    space = dsid.get_space()
    extent = space.get_simple_extent_type()
    shape = tuple(space.get_simple_extent_dims()) if extent == h5s.SIMPLE else ()
    count = 0 if extent == h5s.NULL else math.prod(shape)
    declared = count * dsid.get_type().get_size()
    stored = dsid.get_storage_size()
    compressed = dcpl.get_nfilters() > 0
    if not compressed and stored < declared:
        raise CorruptModelError(
            f"{label}: weights {name} declare shape {shape} ({declared:,} bytes) but the file "
            f"stores {stored:,} bytes of them (truncated or damaged file)"
        )
    if compressed and declared > max(DATASET_INFLATION_FLOOR, MAX_INFLATION * stored):
        raise CorruptModelError(
            f"{label}: compressed dataset {name} declares shape {shape} ({size_text(declared)}) "
            f"but stores {size_text(stored)}, more than {MAX_INFLATION}×: refused as a "
            "decompression bomb"
        )
    return declared, stored, compressed


def show(name: bytes | str, limit: int = 200) -> str:
    """An HDF5 name or link target for a message: decoded, shortened."""
    text = name.decode("utf-8", "backslashreplace") if isinstance(name, bytes) else name
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_member(zf: zipfile.ZipFile, name: str, limit: int, label: str) -> bytes:
    """A small member of a .keras zip (config.json, metadata.json), within limit bytes."""
    info = zf.getinfo(name)
    problem = zip_member_problem(info, limit)
    if problem is not None:
        raise CorruptModelError(f"{label}: {name} {problem}")
    with zf.open(info) as fh:
        data = read_at_most(fh, info.file_size)
    if data is None:
        raise CorruptModelError(f"{label}: {name} inflates past the size its header declares")
    return data


@contextmanager
def open_weights(
    zf: zipfile.ZipFile, label: str, member: str = "model.weights.h5"
) -> Iterator[IO[bytes]]:
    """The model.weights.h5 (or .npz) member of a .keras zip, as a seekable file.

    Keras stores it uncompressed: it is read in place. A compressed one (a zip tool's doing)
    is checked against the ratio limit, then inflated into memory up to ZIP_SPOOL_BYTES and
    into a temporary file beyond, stopping if it inflates past its declared size.
    """
    info = zf.getinfo(member)
    problem = zip_member_problem(info)
    if problem is not None:
        raise CorruptModelError(f"{label}: {member} {problem}")
    if info.compress_type == zipfile.ZIP_STORED:
        window = stored_member(zf, info)
        if window is not None:
            with window:
                yield cast(IO[bytes], window)  # a RawIOBase: what h5py needs of a file
            return
        with zf.open(info) as raw:
            yield raw
        return
    with tempfile.SpooledTemporaryFile(max_size=ZIP_SPOOL_BYTES) as copy:
        left = info.file_size + 1
        with zf.open(info) as src:
            while left > 0 and (chunk := src.read(min(left, MiB))):
                copy.write(chunk)
                left -= len(chunk)
        if left <= 0:
            raise CorruptModelError(f"{label}: {member} inflates past the size its header declares")
        copy.seek(0)
        yield copy


class MemberWindow(io.RawIOBase):
    """The bytes of a stored (uncompressed) zip member, read in place with pread.

    zipfile's own reader seeks backwards by reading the member again from its start: h5py,
    which seeks back and forth, made reading 52 MiB of weights cost about 0.5 s of seeking
    per pass (two passes: the safety check and the reader). The window never reads outside
    the member's declared bytes; a short file gives short reads (h5py reports truncation).
    """

    def __init__(self, fd: int, start: int, size: int) -> None:
        super().__init__()
        self._fd, self._start, self._size, self._pos = fd, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = max(0, min(len(view), self._size - self._pos))
        done = 0
        while done < want:  # straight into h5py's buffer: no copy of a 16 MiB kernel
            got = os.preadv(self._fd, [view[done:want]], self._start + self._pos + done)
            if not got:
                break
            done += got
        self._pos += done
        return done

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length


def stored_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> MemberWindow | None:
    """A window on a stored member's bytes, or None where the zip is not a plain file on disk
    or its local header does not check out (the caller then reads through zipfile, which
    raises the usual errors)."""
    fp = getattr(zf, "fp", None)
    try:
        fd = fp.fileno() if fp is not None else -1
    except (OSError, AttributeError, io.UnsupportedOperation):
        return None
    if fd < 0 or info.flag_bits & 0x1:  # encrypted: zipfile refuses it with its message
        return None
    head = os.pread(fd, _LOCAL_HEADER.size, info.header_offset)
    if len(head) < _LOCAL_HEADER.size:
        return None
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(head)
    name = os.pread(fd, name_len, info.header_offset + _LOCAL_HEADER.size)
    encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
    if signature != ZIP_SIGNATURE or name.decode(encoding, "replace") != info.orig_filename:
        return None  # zipfile's reader names the damage
    start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
    return MemberWindow(os.dup(fd), start, info.compress_size)
