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

import heapq
from array import array
from collections.abc import Iterable, Sequence

import zstandard

from talaria_storage.core.errors import StorageError

MAGIC = b"TORD"
VERSION = 1


def _varint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


_PARAMS = zstandard.ZstdCompressionParameters.from_level(9, threads=0, write_checksum=0, write_content_size=1)


def _compress(records: int, runs: Iterable[tuple[int, int, int]], count: int) -> bytes:
    body = bytearray()
    _varint(records, body)
    _varint(count, body)
    for chunk, first, length in runs:
        _varint(chunk, body)
        _varint(first, body)
        _varint(length, body)
    return MAGIC + bytes([VERSION]) + zstandard.ZstdCompressor(compression_params=_PARAMS).compress(bytes(body))


def encode_order(records: int, runs: Sequence[tuple[int, int, int]]) -> bytes:
    """The order object of a file of ``records`` records placed as ``runs``, in input order:
    (chunk entry, first index, records). A file imported in segments joins theirs."""
    if sum(length for _, _, length in runs) != records:
        raise StorageError(f"record order incomplete: runs place {sum(r[2] for r in runs)} of {records} records")
    return _compress(records, runs, len(runs))


class OrderBuilder:
    """Builds one file's runs while its records are placed in chunks, in any order.

    Chunks complete out of file order (a taxon's records wait for their chunk
    to fill), so placements arrive out of order. Each placement is kept as
    its runs of consecutive input ordinals, in arrays, and a heap of the
    placements' next runs moves runs to the result as soon as every earlier
    ordinal is placed. Memory is a few integers per *run*, never per record
    or per object: a proteome file placed chunk by chunk holds a handful of
    runs, and the worst case -- taxa interleaved record by record, every
    record a run of its own -- costs 28 bytes a record (16 pending, 12 in
    the result), where tuples in a dict cost ~300 and two 8-byte integers
    per record, the old way, 16 for every file, however orderly.
    """

    def __init__(self) -> None:
        # placement id -> (starts, lengths, first records, chunk index, cursor) of its pending runs
        self._pending: dict[int, tuple[array, array, array, int, int]] = {}
        self._heap: list[tuple[int, int]] = []  # (start of a placement's next pending run, placement id)
        self._placements = 0
        self._chunks = array("I")  # the result: adjacent runs that continue each other are merged
        self._firsts = array("I")
        self._lengths = array("I")
        self._next = 0  # the first ordinal not yet in the result

    def place(self, chunk_index: int, ordinals: Sequence[int]) -> None:
        """Records ``0..len(ordinals)-1`` of chunk ``chunk_index`` are input records ``ordinals``."""
        if not ordinals:
            return
        starts, lengths, firsts = array("Q"), array("I"), array("I")
        start = previous = ordinals[0]
        first = 0
        for index in range(1, len(ordinals)):
            ordinal = ordinals[index]
            if ordinal != previous + 1:
                starts.append(start)
                lengths.append(previous + 1 - start)
                firsts.append(first)
                start, first = ordinal, index
            previous = ordinal
        starts.append(start)
        lengths.append(previous + 1 - start)
        firsts.append(first)
        if any(starts[i] > starts[i + 1] for i in range(len(starts) - 1)):  # packed taxa: by taxon first
            order = sorted(range(len(starts)), key=starts.__getitem__)
            starts = array("Q", [starts[i] for i in order])
            lengths = array("I", [lengths[i] for i in order])
            firsts = array("I", [firsts[i] for i in order])
        pid = self._placements
        self._placements += 1
        self._pending[pid] = (starts, lengths, firsts, chunk_index, 0)
        heapq.heappush(self._heap, (starts[0], pid))
        self._advance()

    def _advance(self) -> None:
        heap, pending = self._heap, self._pending
        while heap and heap[0][0] == self._next:
            _, pid = heapq.heappop(heap)
            starts, lengths, firsts, chunk, cursor = pending[pid]
            self._emit(chunk, firsts[cursor], lengths[cursor])
            cursor += 1
            if cursor < len(starts):
                pending[pid] = (starts, lengths, firsts, chunk, cursor)
                heapq.heappush(heap, (starts[cursor], pid))
            else:
                del pending[pid]

    def _emit(self, chunk: int, first: int, length: int) -> None:
        if self._chunks and self._chunks[-1] == chunk and self._firsts[-1] + self._lengths[-1] == first:
            self._lengths[-1] += length
        else:
            self._chunks.append(chunk)
            self._firsts.append(first)
            self._lengths.append(length)
        self._next += length

    @property
    def placed(self) -> int:
        """Records in the finished runs (every input record, once the file is fully placed)."""
        return self._next

    def _check(self, records: int) -> None:
        if self._pending or self._next != records:
            raise StorageError(
                f"record order incomplete: {self._next} of {records} records placed, "
                f"{len(self._pending)} placement(s) waiting (a chunking bug, please report it)"
            )

    def runs(self, records: int) -> list[tuple[int, int, int]]:
        """The file's runs; ``records`` is how many the file had (a check that none is missing)."""
        self._check(records)
        return list(zip(self._chunks, self._firsts, self._lengths))


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
