"""Checkpoint series of PyTorch (.pt, .pth), safetensors and ONNX files, written without
torch: the committed fixtures with every float32 array moved by a known, seeded step."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

FIX = Path(__file__).parent / "fixtures" / "frameworks"
SUFFIXES = (".pt", ".pth", ".safetensors", ".onnx")
STEP = 0.05


def _moved(raw: np.ndarray, epoch: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (raw + STEP * (epoch - 1) * rng.normal(size=raw.shape)).astype(raw.dtype)


def write_series(folder: Path, suffix: str, epochs: int = 3) -> list[Path]:
    """``folder``/epoch_1{suffix} ... epoch_{epochs}{suffix}: epoch 1 is the fixture."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for e in range(1, epochs + 1):
        path = folder / f"epoch_{e}{suffix}"
        if suffix in (".pt", ".pth"):
            _torch(path, e)
        elif suffix == ".safetensors":
            from safetensors.numpy import load_file, save_file

            arrays = load_file(str(FIX / "torch_state_dict.safetensors"))
            save_file({k: _moved(v, e, i) for i, (k, v) in enumerate(sorted(arrays.items()))}, path)
        else:
            import onnx
            from onnx import numpy_helper

            model = onnx.load(str(FIX / "onnx_lstm_bidirectional.onnx"))
            for i, init in enumerate(model.graph.initializer):
                moved = _moved(numpy_helper.to_array(init), e, i)
                init.CopyFrom(numpy_helper.from_array(moved, init.name))
            onnx.save(model, str(path))
        out.append(path)
    return out


def _torch(path: Path, epoch: int) -> None:
    # torch.save's zip: data.pkl names the storages data/0, data/1, ... (raw float32 here).
    with (
        zipfile.ZipFile(FIX / "torch_state_dict.pt") as zin,
        zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout,
    ):
        for info in zin.infolist():
            head, _, rest = info.filename.partition("/")
            raw = zin.read(info)
            if rest.startswith("data/"):
                k = int(rest.split("/")[1])
                raw = _moved(np.frombuffer(raw, "<f4"), epoch, k).tobytes()
            zout.writestr(f"{path.stem}/{rest}", raw)
