"""Record order objects: where each record of a source file went, in file order.

Chunks group records by taxon, so the original order of a file is kept
apart, as a list of runs ``(chunk_index, first_record, run_length)``: the
next ``run_length`` records of the file are records ``first_record ..``
of chunk ``chunk_index`` of the manifest's chunk list.

Encoding (deterministic)::

    magic    4 bytes  b"TORD"
    version  u8       1
    payload  zstd (level 9, no checksum, content size written) of:
             varint record count, varint run count,
             then per run: varint chunk_index, varint first_record, varint run_length
"""

from __future__ import annotations

from collections.abc import Iterable

import zstandard

from talaria_storage.errors import StorageError

MAGIC = b"TORD"
VERSION = 1


def _varint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def encode_order(runs: Iterable[tuple[int, int, int]]) -> bytes:
    """Serialise runs (adjacent runs that continue each other are merged)."""
    merged: list[list[int]] = []
    for chunk, first, length in runs:
        if length <= 0:
            continue
        if merged and merged[-1][0] == chunk and merged[-1][1] + merged[-1][2] == first:
            merged[-1][2] += length
        else:
            merged.append([chunk, first, length])
    body = bytearray()
    _varint(sum(r[2] for r in merged), body)
    _varint(len(merged), body)
    for chunk, first, length in merged:
        _varint(chunk, body)
        _varint(first, body)
        _varint(length, body)
    params = zstandard.ZstdCompressionParameters.from_level(9, threads=0, write_checksum=0, write_content_size=1)
    return MAGIC + bytes([VERSION]) + zstandard.ZstdCompressor(compression_params=params).compress(bytes(body))


def decode_order(data: bytes) -> list[tuple[int, int, int]]:
    """The runs of an order object."""
    if data[:4] != MAGIC:
        raise StorageError("not a record order object (bad magic): the store is damaged")
    if data[4] > VERSION:
        raise StorageError(f"record order format {data[4]}: upgrade talaria-storage")
    body = zstandard.ZstdDecompressor().decompress(data[5:])
    values: list[int] = []
    value = shift = 0
    for byte in body:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
        else:
            values.append(value)
            value = shift = 0
    if len(values) < 2 or len(values) != 2 + 3 * values[1]:
        raise StorageError("record order object is truncated: the store is damaged")
    runs = [(values[i], values[i + 1], values[i + 2]) for i in range(2, len(values), 3)]
    if sum(r[2] for r in runs) != values[0]:
        raise StorageError("record order object does not add up: the store is damaged")
    return runs
