"""What an ONNX file would cost to parse, counted from its protobuf wire format first.

Protobuf turns every message and every repeated value into an object: an empty NodeProto
takes 2 bytes of a file and hundreds once parsed, so 80 MB of them take gigabytes. This
walks the bytes (https://protobuf.dev/programming-guides/encoding/) without building
anything, following the message fields of onnx.proto that can repeat or nest, and counts:
nodes of the main graph (MAX_ONNX_NODES), fields of any message (MAX_ONNX_ITEMS), and bytes
of packed integers (MAX_ONNX_VARINT_BYTES). Tensor data (raw_data, float_data) is skipped
in one step, so a file of large weights costs no more to walk than one of small ones.
"""

from __future__ import annotations

import functools

from lstm_report.fileio.limits import MAX_ONNX_ITEMS, MAX_ONNX_NODES, MAX_ONNX_VARINT_BYTES

Schema = dict[str, tuple[dict[int, str], frozenset[int]]]
"""For each message (its full name): which fields hold which messages, and which fields are
packed integer lists."""


@functools.cache
def onnx_schema() -> Schema:
    """The message fields of onnx.ModelProto and everything it holds, from onnx's own
    descriptors (so the walk follows the onnx package installed)."""
    # onnx (and the protobuf it brings) is optional: loaded only to read an ONNX file
    import onnx
    from google.protobuf.descriptor import FieldDescriptor  # protobuf comes with onnx: as above

    ints = (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT64)
    schema: Schema = {}
    pending = [onnx.ModelProto.DESCRIPTOR]
    while pending:
        d = pending.pop()
        if d.full_name in schema:
            continue
        subs = {f.number: f.message_type for f in d.fields if f.message_type is not None}
        packed = frozenset(f.number for f in d.fields if f.is_repeated and f.type in ints)
        schema[d.full_name] = ({n: m.full_name for n, m in subs.items()}, packed)
        pending.extend(subs.values())
    return schema


_MAX_DEPTH = 100
"""Protobuf's own recursion limit: a deeper file fails to parse anyway."""


class _Damaged(Exception):
    """The bytes are not protobuf: the parser will say so."""


def parse_cost_problem(data: bytes) -> str | None:
    """Why parsing data as an ONNX ModelProto would cost too much, or None.

    A file the walk cannot follow is left to the parser, which refuses it with its message.
    """
    try:
        return _walk(data, onnx_schema())
    except _Damaged:
        return None


def _walk(data: bytes, schema: Schema) -> str | None:
    items = nodes = packed = 0
    # (start, end, message name, depth); the main graph is the one at depth 1
    stack: list[tuple[int, int, str, int]] = [(0, len(data), "onnx.ModelProto", 0)]
    while stack:
        pos, end, kind, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise _Damaged
        fields, packs = schema[kind]
        main_graph = depth == 1 and kind == "onnx.GraphProto"
        while pos < end:
            key = data[pos]
            if key < 0x80:  # the usual one-byte key, read inline: this loop is the cost
                pos += 1
            else:
                key, pos = _varint(data, pos, end)
            field, wire = key >> 3, key & 7
            items += 1
            if items > MAX_ONNX_ITEMS:
                return (
                    f"it holds more than {MAX_ONNX_ITEMS:,} messages and values (nodes, "
                    "attributes, names, dimensions), which would take gigabytes once parsed"
                )
            if wire == 0:
                _, pos = _varint(data, pos, end)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length = data[pos] if pos < end else 0x80
                if length < 0x80:
                    pos += 1
                else:
                    length, pos = _varint(data, pos, end)
                if pos + length > end:
                    raise _Damaged
                sub = fields.get(field)
                if sub is not None:
                    stack.append((pos, pos + length, sub, depth + 1))
                    if main_graph and field == 1:
                        nodes += 1
                        if nodes > MAX_ONNX_NODES:
                            return f"its main graph has more than {MAX_ONNX_NODES:,} nodes"
                elif field in packs:
                    packed += length
                    if packed > MAX_ONNX_VARINT_BYTES:
                        return (
                            f"its packed integer lists take more than {MAX_ONNX_VARINT_BYTES:,} "
                            "bytes, up to 8 times as much once parsed"
                        )
                pos += length
            else:
                raise _Damaged  # groups (3, 4) are not used by ONNX; 6, 7 do not exist
        if pos != end:
            raise _Damaged
    return None


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Damaged
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
