"""Hostile files, built from good ones: each tries to make a report read another file, wait
forever, or allocate gigabytes. Used by tests/test_hostile.py; see docs/formats.md
("Hostile files: what is refused and why").
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

SECRET_MARK = b"SECRET-7f3a9c-MUST-NOT-LEAK"
SECRET_VALUE = 31337.0
"""The secret files hold this float32 value (and the mark): neither may reach any output."""

GiB = 2**30


def write_secrets(d: Path) -> tuple[Path, Path]:
    """A raw secret file and an HDF5 secret file (one dataset per shape used below)."""
    raw = d / "secret.bin"
    raw.write_bytes(np.full(4096, SECRET_VALUE, "<f4").tobytes() + SECRET_MARK)
    h5 = d / "secret.h5"
    with h5py.File(h5, "w") as f:
        for shape in ((5, 16), (4, 16), (16,), (3, 20), (5, 20), (20,)):
            f[_shape_name(shape)] = np.full(shape, SECRET_VALUE, "<f4")
        f.attrs["mark"] = SECRET_MARK
    return raw, h5


def _shape_name(shape: tuple[int, ...]) -> str:
    return "d" + "x".join(map(str, shape))


# --- running the CLI on them ----------------------------------------------------------------


def _limit_memory() -> None:
    # A reader that believed a declared size, or inflated a bomb, dies here.
    resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))


def run_cli(config: Path, tmp: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    try:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "lstm_report",
                "build",
                str(config),
                "-o",
                str(out / "r.html"),
                "--json",
                str(out / "r.json"),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_limit_memory,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"no answer within {timeout} s (waiting forever or inflating a bomb)")


def assert_refused(r: subprocess.CompletedProcess[str], tmp: Path, *names: str) -> str:
    """Exit 1, one line naming every name, no internal error, nothing written, no secret."""
    lines = r.stderr.splitlines()
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-2000:]
    assert "internal error" not in lines[0] and "Traceback" not in r.stderr, lines[0]
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert not any((tmp / "out").iterdir()), "a report was written"
    assert_no_secret(r.stdout + r.stderr)
    return lines[0]


def assert_no_secret(text: str) -> None:
    assert SECRET_MARK.decode() not in text
    assert str(int(SECRET_VALUE)) not in text


# --- editing the HDF5 file of a model ------------------------------------------------------


def rezip(src: Path, dst: Path, edit: Callable[[Path], None]) -> Path:
    """Copy a .keras zip (members stored, as Keras writes them), editing its weights file."""
    work = dst.with_suffix(".work")
    work.mkdir()
    with zipfile.ZipFile(src) as zf:
        zf.extractall(work)
    edit(work / "model.weights.h5")
    with zipfile.ZipFile(dst, "w") as zf:
        for name in ("metadata.json", "config.json", "model.weights.h5"):
            zf.write(work / name, name)
    shutil.rmtree(work)
    return dst


def edit_h5(src: Path, dst: Path, edit: Callable[[Path], None]) -> Path:
    shutil.copy(src, dst)
    edit(dst)
    return dst


def external_storage(dataset: str, secret_raw: Path) -> Callable[[Path], None]:
    """The dataset's bytes live in secret_raw (h5py ``external=``)."""

    def edit(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            shape, dtype = f[dataset].shape, f[dataset].dtype
            del f[dataset]
            size = int(np.prod(shape)) * dtype.itemsize
            f.create_dataset(dataset, shape, dtype, external=[(str(secret_raw), 0, size)])

    return edit


def virtual(dataset: str, secret_h5: Path) -> Callable[[Path], None]:
    """The dataset is a virtual dataset mapping a dataset of secret_h5."""

    def edit(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            shape, dtype = f[dataset].shape, f[dataset].dtype
            del f[dataset]
            layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
            layout[...] = h5py.VirtualSource(str(secret_h5), _shape_name(shape), shape=shape)
            f.create_virtual_dataset(dataset, layout)

    return edit


def external_link(dataset: str, secret_h5: Path) -> Callable[[Path], None]:
    """The dataset's name is an external link to a dataset of secret_h5."""

    def edit(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            shape = f[dataset].shape
            del f[dataset]
            f[dataset] = h5py.ExternalLink(str(secret_h5), "/" + _shape_name(shape))

    return edit


def soft_link_cycle(group: str) -> Callable[[Path], None]:
    """Two soft links in group pointing at each other, and one pointing at itself."""

    def edit(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            f[f"{group}/ping"] = h5py.SoftLink(f"/{group}/pong")
            f[f"{group}/pong"] = h5py.SoftLink(f"/{group}/ping")
            f[f"{group}/self"] = h5py.SoftLink(f"/{group}/self")

    return edit


def gzip_bomb_lstm(group: str, names: tuple[str, str, str]) -> Callable[[Path], None]:
    """An LSTM of 1024 units on 262144 inputs (4 GiB of kernel), gzip-compressed, a few KB stored:
    the shapes are consistent, only the stored bytes give it away."""

    def edit(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            for name, shape in zip(names, ((262144, 4096), (1024, 4096), (4096,))):
                del f[f"{group}/{name}"]
                ds = f.create_dataset(
                    f"{group}/{name}", shape, "<f4", chunks=True, compression="gzip"
                )
                ds[(0,) * len(shape)] = 0.5  # one chunk written, the rest declared

    return edit


def config_edit(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    """Edit the model_config attribute of a legacy .h5 file (JSON)."""

    def run(h5: Path) -> None:
        with h5py.File(h5, "r+") as f:
            cfg = json.loads(f.attrs["model_config"])
            edit(cfg)
            f.attrs["model_config"] = json.dumps(cfg)

    return run


def with_config(src: Path, dst: Path, config: bytes) -> Path:
    """A copy of a .keras zip with another config.json."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = config if item.filename == "config.json" else zin.read(item)
            zout.writestr(item.filename, data)
    return dst


def nested_models(depth: int) -> dict:
    """A Sequential holding a Sequential holding ... depth levels, an LSTM at the bottom."""
    node: dict = {
        "module": "keras.layers",
        "class_name": "LSTM",
        "config": {"name": "lstm", "units": 4},
    }
    for i in range(depth):
        node = {
            "module": "keras",
            "class_name": "Sequential",
            "config": {"name": f"seq_{i}", "layers": [node]},
        }
    return node


def nested_models_json(depth: int) -> str:
    """nested_models(depth) as JSON text, built without recursion: json.dumps itself
    recurses once per level and may hit the interpreter's limit first."""
    text = json.dumps(nested_models(0))
    for i in range(depth):
        head = {"module": "keras", "class_name": "Sequential", "config": {"name": f"seq_{i}"}}
        opening = json.dumps(head)[:-2] + ', "layers": ['
        text = opening + text + "]}}"
    return text


# --- zip files with decompression bombs ----------------------------------------------------


def deflate_bomb(prefix: bytes, total: int, fill: bytes = b" ") -> tuple[bytes, int]:
    """A raw deflate stream of prefix, then fill up to exactly total bytes, and its CRC-32,
    built in a second: one self-contained compressed MiB of fill, repeated."""
    unit = fill * 2**20
    n, rest = divmod(total - len(prefix), len(unit))

    def part(data: bytes) -> bytes:  # byte-aligned, refers to nothing before it
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(zlib.Z_FULL_FLUSH)

    block = part(unit)
    out = [part(prefix)] + [block] * n + [part(fill * rest)]
    out.append(zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH))
    crc = zlib.crc32(prefix)
    for _ in range(n):
        crc = zlib.crc32(unit, crc)
    return b"".join(out), zlib.crc32(fill * rest, crc)


def write_raw_zip(
    path: Path, members: list[tuple[str, int, bytes, int, int]], flags: int = 0
) -> Path:
    """A zip of (name, method, data as stored, crc, declared size): headers say what we say."""
    out = bytearray()
    central = bytearray()
    for name, method, data, crc, size in members:
        offset = len(out)
        nb = name.encode()
        out += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, len(data), size, len(nb), 0
        )
        out += nb + data
        central += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            flags,
            method,
            0,
            0x21,
            crc,
            len(data),
            size,
            len(nb),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += nb
    n = len(members)
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(central), len(out), 0)
    path.write_bytes(bytes(out + central + eocd))
    return path


def keras_with_headers(src: Path, dst: Path, method: int, flags: int, size_delta: int) -> Path:
    """A copy of a .keras zip whose config.json has odd headers: another compression method
    number, flag bits (1: encrypted; for every member, config.json comes first), a declared
    size off by size_delta."""
    members = []
    with zipfile.ZipFile(src) as zf:
        for name in ("config.json", "metadata.json", "model.weights.h5"):
            data = zf.read(name)
            odd = name == "config.json"
            members.append(
                (
                    name,
                    method if odd else zipfile.ZIP_STORED,
                    data,
                    zlib.crc32(data),
                    len(data) + (size_delta if odd else 0),
                )
            )
    return write_raw_zip(dst, members, flags)


def keras_with_bomb(
    src: Path, dst: Path, member: str, total: int = 2 * GiB, lie: bool = False
) -> Path:
    """A copy of a .keras zip whose member inflates to total bytes (its real content, then
    padding: spaces for JSON, zeros for HDF5; an unknown member is added, empty at first).
    lie: the headers declare the real size only."""
    members = []
    with zipfile.ZipFile(src) as zf:
        names = ["metadata.json", "config.json", "model.weights.h5"]
        for name in names + ([] if member in names else [member]):
            data = zf.read(name) if name in names else b""
            if name == member:
                fill = b"\0" if name.endswith(".h5") else b" "
                bomb, crc = deflate_bomb(data, total, fill)
                size = len(data) if lie else total
                members.append((name, zipfile.ZIP_DEFLATED, bomb, crc, size))
            else:
                members.append((name, zipfile.ZIP_STORED, data, zlib.crc32(data), len(data)))
    return write_raw_zip(dst, members)


# --- probe files ---------------------------------------------------------------------------


def npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """The header of an .npy file of this shape (the data is for the caller to add, or not)."""
    import io

    buf = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def npz_bomb(path: Path, shape: tuple[int, ...]) -> Path:
    """A compressed .npz whose one member is an honest .npy of zeros inflating to gigabytes."""
    header = npy_header(shape)
    total = len(header) + int(np.prod(shape)) * 4
    bomb, crc = deflate_bomb(header, total, b"\0")
    return write_raw_zip(path, [("x.npy", zipfile.ZIP_DEFLATED, bomb, crc, total)])


# --- markup a browser reads differently from Python's html.parser (issue 21) ----------------

_IMG = "<img src=data:image/png;base64,AA onerror=alert(1)>"
"""A broken PNG: the browser runs onerror, unless the page's policy forbids handlers."""
HOSTILE_MARKUP = {
    "empty comment": f"<!-->{_IMG}-->",
    "comment closed by --!>": f"<!-- x --!>{_IMG} -->",
    "CDATA": f"<![CDATA[ >{_IMG} ]]>",
    "noscript": f'<noscript><p title="</noscript>{_IMG}"></noscript>',
}
"""Each, inserted into a genuine report, hides an event handler from html.parser."""


def with_markup(page: str, markup: str) -> str:
    """The genuine page with markup inserted at the end of its <main>."""
    assert page.count("</main>") == 1
    return page.replace("</main>", markup + "</main>")


# --- PyTorch pickles, written without torch ------------------------------------------------


class FloatStorage:
    """Pickled as torch.FloatStorage (see torch_pickle); so are the other storage types."""


class ComplexFloatStorage:
    pass


class BoolStorage:
    pass


def _rebuild_tensor_v2(*args: object) -> None:
    """Pickled as torch._utils._rebuild_tensor_v2; never called."""
    raise AssertionError("a stand-in")


class Storage:
    """A storage as torch.save names it: a persistent id ("storage", type, key, "cpu", numel)."""

    def __init__(self, key: str, numel: int, kind: type = FloatStorage) -> None:
        self.key, self.numel, self.kind = key, numel, kind


class Tensor:
    """A view of a storage, pickled as torch.save pickles a tensor."""

    def __init__(self, storage: Storage, shape: tuple[int, ...], offset: int = 0) -> None:
        self.storage, self.shape, self.offset = storage, shape, offset

    def __reduce__(self) -> object:
        stride = tuple(int(np.prod(self.shape[i + 1 :])) for i in range(len(self.shape)))
        args = (self.storage, self.offset, self.shape, stride, False, OrderedDict())
        return (_rebuild_tensor_v2, args)


_TORCH_NAMES = {
    b"ctests.hostile\n_rebuild_tensor_v2\n": b"ctorch._utils\n_rebuild_tensor_v2\n",
    **{
        f"ctests.hostile\n{kind.__name__}\n".encode(): f"ctorch\n{kind.__name__}\n".encode()
        for kind in (FloatStorage, ComplexFloatStorage, BoolStorage)
    },
}


def torch_pickle(obj: object) -> bytes:
    """data.pkl of a torch.save file holding obj (protocol 2: globals are text, the memo
    shares every object pickled twice, as torch.save's pickler does)."""
    import io
    import pickle

    class Pickler(pickle.Pickler):
        def persistent_id(self, o: object) -> object:
            if isinstance(o, Storage):
                return ("storage", o.kind, o.key, "cpu", o.numel)
            return None

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    data = buf.getvalue()
    for ours, torch_name in _TORCH_NAMES.items():
        data = data.replace(ours, torch_name)
    return data


def torch_zip(
    path: Path, data_pkl: bytes, storages: dict[str, bytes], byteorder: bytes = b"little"
) -> Path:
    """A torch.save zip (members stored) of data.pkl and storages by key."""
    stem = path.stem
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{stem}/data.pkl", data_pkl)
        zf.writestr(f"{stem}/byteorder", byteorder)
        for key, raw in storages.items():
            zf.writestr(f"{stem}/data/{key}", raw)
    return path


def lstm_state(storage: Storage, units: int, inputs: int, prefix: str = "") -> OrderedDict:
    """An nn.LSTM's weight_ih_l0 and weight_hh_l0, both views from the start of storage."""
    return OrderedDict(
        [
            (f"{prefix}weight_ih_l0", Tensor(storage, (4 * units, inputs))),
            (f"{prefix}weight_hh_l0", Tensor(storage, (4 * units, units))),
        ]
    )


def memo_bomb_pt(path: Path, levels: int = 16, fanout: int = 10) -> Path:
    """One small LSTM state dict inside lists nested levels deep, each holding fanout
    references to the list below (the memo makes them BINGETs): fanout**levels paths."""
    storage = Storage("0", 4 * 2 * 3)
    node: object = lstm_state(storage, 2, 1)
    for _ in range(levels):
        node = [node] * fanout
    return torch_zip(path, torch_pickle(node), {"0": np.zeros(24, "<f4").tobytes()})


# --- ONNX files, written with onnx.helper or byte by byte -----------------------------------


def onnx_shared_weights(path: Path, nodes: int, hidden: int, inputs: int) -> Path:
    """nodes LSTM nodes, every one reading the same W and R initializers."""
    from onnx import TensorProto, helper, numpy_helper, save

    W = numpy_helper.from_array(np.zeros((1, 4 * hidden, inputs), np.float32), "W")
    R = numpy_helper.from_array(np.zeros((1, 4 * hidden, hidden), np.float32), "R")
    graph = helper.make_graph(
        [
            helper.make_node("LSTM", ["X", "W", "R"], [f"Y{i}"], hidden_size=hidden)
            for i in range(nodes)
        ],
        "shared",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 1, inputs])],
        [helper.make_tensor_value_info("Y0", TensorProto.FLOAT, None)],
        [W, R],
    )
    save(helper.make_model(graph), str(path))
    return path


def onnx_empty_nodes(path: Path, total: int = 80 * 10**6, entry: bytes = b"\x0a\x00") -> Path:
    """A ModelProto whose graph is total bytes of one empty entry repeated: by default
    GraphProto.node (field 1), 2 bytes each; b"\x6a\x00" for value_info (field 13)."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    body = entry * (total // len(entry))
    path.write_bytes(b"\x08\x08" + b"\x3a" + varint(len(body)) + body)  # ir_version, graph
    return path


def safetensors_file(path: Path, header: bytes, data: bytes = b"") -> Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path
