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

import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import IO, cast

from lstm_report.errors import ModelLoadError
from lstm_report.readers.safety.rules import MemberWindow, stored_member

POLICY = "policy.pth"


def is_sb3(names: Collection[str]) -> bool:
    """The members of a stable-baselines3 saved model."""
    return "data" in names and POLICY in names


class MemberZip(zipfile.ZipFile):
    """A zip read from a window onto a stored member of another zip; closing it closes
    the window. ``member_size`` bounds what its entries may claim."""

    member_size: int
    window: MemberWindow

    def close(self) -> None:
        super().close()
        self.window.close()


def member_zip(path: Path, member: str) -> MemberZip:
    """The zip stored as ``member`` of the zip at ``path``, read in place.

    The member must be stored (sb3 never deflates), unencrypted, with equal sizes, and its
    local header must check out (safety.stored_member); nothing is copied."""
    with zipfile.ZipFile(path) as outer:
        try:
            info = outer.getinfo(member)
        except KeyError:
            raise ModelLoadError(f"{path.name}: no {member} inside") from None
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            raise ModelLoadError(
                f"{path.name}: {member} is compressed (stable-baselines3 stores it as is)"
            )
        window = stored_member(outer, info)
    if window is None or info.header_offset + info.file_size > path.stat().st_size:
        if window is not None:
            window.close()
        raise ModelLoadError(f"{path.name}: {member}'s zip entry is damaged or encrypted")
    try:
        zf = MemberZip(cast(IO[bytes], window))
    except zipfile.BadZipFile as exc:
        window.close()
        raise ModelLoadError(f"{path.name}: {member} is not a torch.save zip ({exc})") from None
    zf.window = window
    zf.member_size = info.file_size
    return zf
