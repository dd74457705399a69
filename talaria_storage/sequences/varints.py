"""Integer encodings shared by the stored sequence formats: LEB128 varints and little-endian u32 arrays."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence

from talaria_storage.core.errors import CompressionError


def varints(values: Sequence[int]) -> bytes:
    out = bytearray()
    for value in values:
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise CompressionError("truncated varint in chunk")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def u32s(values: Sequence[int]) -> bytes:
    try:
        packed = array("I", values)
    except OverflowError as exc:
        raise ValueError("a chunk value does not fit in 32 bits") from exc
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def from_u32s(data: bytes) -> array:
    values = array("I")
    values.frombytes(data)
    if sys.byteorder == "big":
        values.byteswap()
    return values
