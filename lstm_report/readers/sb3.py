"""A stable-baselines3 / sb3-contrib saved model (``model.save()``), read without sb3.

``stable_baselines3/common/save_util.py`` (``save_to_zip_file``) writes a zip, members
stored (not deflated)::

    data                    JSON: the constructor's arguments, many as cloudpickle blobs
                            (never decoded here: unpickling them would run code)
    policy.pth              torch.save(policy.state_dict()): a torch.save zip of its own
    policy.optimizer.pth    torch.save(optimizer.state_dict())
    pytorch_variables.pth   torch.save of extra tensors (e.g. SAC's log_ent_coef)
    _stable_baselines3_version, system_info.txt

Only ``policy.pth`` is read, in place: a window onto its bytes inside the outer file is
opened as a zip, so nothing is copied or extracted. sb3-contrib's RecurrentPPO keeps its
LSTMs as ``lstm_actor``, ``lstm_critic`` or ``shared_lstm`` (``sb3_contrib/common/
recurrent/policies.py``), plain ``nn.LSTM`` modules, so the report names them
``lstm_actor.l0``.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

from lstm_report.errors import ModelLoadError

POLICY = "policy.pth"
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader, 30 bytes


def is_sb3(names: Collection[str]) -> bool:
    """The members of a stable-baselines3 saved model."""
    return "data" in names and POLICY in names


class Window(io.RawIOBase):
    """``length`` bytes of ``raw`` from ``start``, as a seekable read-only file."""

    def __init__(self, raw: BinaryIO, start: int, length: int) -> None:
        self._raw = raw
        self._start = start
        self.length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.length}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = max(0, min(len(buffer), self.length - self._pos))
        if n == 0:
            return 0
        self._raw.seek(self._start + self._pos)
        data = self._raw.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _MemberZip(zipfile.ZipFile):
    """A zip read from a `Window`; closing it closes the outer file."""

    window: Window

    def close(self) -> None:
        super().close()
        self.window.close()


def member_zip(path: Path, member: str) -> zipfile.ZipFile:
    """The zip stored as ``member`` of the zip at ``path``, read in place.

    The member must be stored (sb3 never deflates), unencrypted, with equal sizes, and lie
    inside the file; its local header is checked before its bytes are used."""
    with zipfile.ZipFile(path) as outer:
        try:
            info = outer.getinfo(member)
        except KeyError:
            raise ModelLoadError(f"{path.name}: no {member} inside") from None
    if info.flag_bits & 0x1:
        raise ModelLoadError(f"{path.name}: {member} is encrypted")
    if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
        raise ModelLoadError(
            f"{path.name}: {member} is compressed (stable-baselines3 stores it as is)"
        )
    raw = path.open("rb")
    try:
        size = path.stat().st_size
        raw.seek(info.header_offset)
        header = raw.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise ModelLoadError(f"{path.name}: {member}'s local header is damaged")
        fields = _LOCAL_HEADER.unpack(header)
        start = info.header_offset + _LOCAL_HEADER.size + fields[10] + fields[11]
        if start + info.file_size > size:
            raise ModelLoadError(f"{path.name}: {member} runs past the end of the file")
        window = Window(raw, start, info.file_size)
        try:
            zf = _MemberZip(window)
        except zipfile.BadZipFile as exc:
            raise ModelLoadError(f"{path.name}: {member} is not a torch.save zip ({exc})") from None
        zf.window = window
        return zf
    except BaseException:
        raw.close()
        raise
