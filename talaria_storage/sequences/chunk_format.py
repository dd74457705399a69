"""The serialised form of a chunk of sequence records (format version 1).

A chunk holds a list of FASTA or FASTQ records (with their byte-exact
layouts, see :mod:`talaria_storage.sequences.fasta`) and one taxid per
record. As in the Nucleotide Archival Format, the parts of the records are
kept in separate *streams* -- headers, residue lengths, layouts, taxids,
residues (and for FASTQ the ``+`` lines and qualities) -- because each kind
compresses far better beside its own kind than interleaved as in FASTA text.

Each stream is a list of independently compressed *blocks*. Small streams
have one block; residues and qualities are cut into blocks of
``block_size`` raw bytes (default 1 MiB, a measured trade-off, see
``benchmarks/bench_formats.py``), so one record is read by decompressing
the headers/lengths streams and only the one or two residue blocks it lies
in -- never the whole chunk.

Byte layout (integers little-endian)::

    magic        4 bytes  b"TSQC"
    version      u8       1
    kind         u8       0 = FASTA, 1 = FASTQ
    reserved     u16      0
    records      u32      number of records
    streams      u8       number of stream entries that follow
    stream entry, repeated:
      id         u8       1 headers, 2 lengths, 3 layout table, 4 layout index,
                          5 taxids, 6 residues, 7 plus lines, 8 qualities
      blocks     u32      number of blocks
      block entry, repeated:
        encoding u8       0 empty, 1 zstd, 2 zstd of 4-bit nucleotides,
                          3 zstd of 2-bit nucleotides
        raw      u32      bytes once decoded
        stored   u32      bytes in the payload
    payload      the blocks' stored bytes, in entry order, nothing between them

Stream contents once decoded:

* headers, plus lines -- the lines joined by ``b"\\n"`` (a header never
  contains a newline);
* lengths -- u32 per record, residues per record;
* layout table -- the distinct layouts, each encoded as: u8 flags (1 final
  newline, 2 CRLF, 4 explicit line lengths, 8 explicit terminators), varint
  wrap, then when flagged a varint count and varint line lengths, a varint
  count and one byte per terminator (0 none, 1 LF, 2 CRLF); the table is in
  first-use order;
* layout index -- u32 per record, its row in the layout table;
* taxids -- u32 per record (0 = none);
* residues, qualities -- the records' residues (qualities) concatenated.

Nucleotide blocks: a residue block whose letters are all IUPAC nucleotide
codes (``ACGTRYSWKMBDHVN-`` in either case) may be stored as 4-bit codes,
two per byte, or -- when at most 1/16 of it is not ``ACGT`` -- as 2-bit
codes, four per byte, with the other letters kept as exception runs. Lower
case is kept as a run-length mask in front of the packed bytes. The raw
text is compressed first; under 2 bits a base (a redundant gene set) 4-bit
codes are tried, over it (a genome) 2-bit codes, and the smaller of raw and
packed is kept, per block. Measured: 2-bit wins on single genomes (E. coli,
P. falciparum), 4-bit or raw text on redundant gene sets (a repeat at an
odd offset no longer lines up once packed, which costs most at high levels). Payload layouts: 4-bit = case mask,
packed codes; 2-bit = case mask, exception runs, varint length and letters
of the exceptions, packed codes (exceptions packed as ``A``); a run list is
a varint count then varints of alternating outside/inside run lengths.

Integrity: every zstd block carries its content checksum (4 bytes), so a
block read on its own -- from a byte range of a stored chunk, which the chunk
store's SHA-256 cannot cover -- is still verified. A bad block is a
:class:`CompressionError`, never wrong residues.

Determinism: the same records and codec give the same bytes. zstd runs with
fixed parameters (level, no threads, content size and checksum written), no
dictionary, no timestamps, and every table is in record order. The bytes
depend on the zstd library's output, which is stable within a library
version; another libzstd may encode the same records differently (decoding
is unaffected, but the chunk's hash changes, so a release re-imported after
a libzstd upgrade is stored again instead of deduplicated).
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate

import zstandard

from talaria_storage.errors import CompressionError, ConfigError
from talaria_storage.sequences.fasta import (
    CRLF,
    LF,
    FastaRecord,
    FastqRecord,
    Layout,
    SequenceRecord,
    _regular_layout,
)

MAGIC = b"TSQC"
VERSION = 1
KIND_FASTA = 0
KIND_FASTQ = 1

HEADERS, LENGTHS, LAYOUT_TABLE, LAYOUT_INDEX, TAXIDS, RESIDUES, PLUS, QUALITIES = range(1, 9)
STORED, ZSTD, NUC4, NUC2 = range(4)

_STREAM_NAMES = {
    HEADERS: "headers",
    LENGTHS: "lengths",
    LAYOUT_TABLE: "layout table",
    LAYOUT_INDEX: "layout index",
    TAXIDS: "taxids",
    RESIDUES: "residues",
    PLUS: "plus lines",
    QUALITIES: "qualities",
}

_FIXED = struct.Struct("<4sBBHIB")
_STREAM = struct.Struct("<BI")
_BLOCK = struct.Struct("<BII")

# 4-bit nucleotide codes: ACGT first, so an ACGT letter has the same code in 2 and 4 bits.
_NUC16 = b"ACGTRYSWKMBDHVN-"
_TO_NUC = bytes.maketrans(_NUC16, bytes(range(16)))
_FROM_NUC = bytes.maketrans(bytes(range(16)), _NUC16)
_ACGT = b"ACGT"
_TO_NUC2 = bytes.maketrans(_NUC16, bytes([0, 1, 2, 3] + [0] * 12))
_LOWER_NUC16 = _NUC16.lower()
_LOWER_FLAGS = bytes(1 if 0x61 <= b <= 0x7A else 0 for b in range(256))
_NOT_ACGT_FLAGS = bytes(0 if b in _ACGT else 1 for b in range(256))


@dataclass(frozen=True, slots=True)
class ChunkCodec:
    """Compression parameters of a chunk; the defaults were chosen by measurement.

    ``level`` applies to residues and qualities. zstd level 2 is the default
    because on protein residues it is both smaller and 3.5x faster than level
    3 (UniProt proteomes in 1 MiB blocks: 19.85 MB at 376 MB/s against 20.35
    MB at 109 MB/s; levels 3-9 find short useless matches in protein text),
    and on nucleotides levels 1-3 are within 1% of each other -- except on
    redundant rRNA sets, where level 3 on raw text is 10% smaller than level
    2, hence ``nucleotide_level`` (3) for blocks that are nucleotides only
    (250 MB/s with every candidate encoding tried). ``meta_level``
    applies to headers and the small streams: headers repay a higher level
    (UniProt headers: 1.17 MB at level 9, 1.38 MB at level 3) and are a
    fifth of a UniProt file. ``block_size`` is the raw size of a residue
    block: larger compresses redundant sets better, smaller makes a
    single-record read cheaper. ``long_distance`` turns on zstd's long
    distance matcher (window 128 MiB) for blocks of several MiB. Figures and
    commands: ``benchmarks/bench_formats.py``.
    """

    level: int = 2
    meta_level: int = 9
    block_size: int = 1 << 20
    pack_nucleotides: bool = True
    long_distance: bool = False
    nucleotide_level: int = 3

    def __post_init__(self) -> None:
        for name in ("level", "meta_level", "nucleotide_level"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 22:
                raise ConfigError(f"chunk codec {name} must be an integer 1..22, got {value!r}")
        if not isinstance(self.block_size, int) or not 4096 <= self.block_size <= 1 << 30:
            raise ConfigError(
                f"chunk codec block_size must be 4096..2**30 bytes, got {self.block_size!r}"
            )

    def to_dict(self) -> dict[str, object]:
        return {
            "name": "tsqc1",
            "level": self.level,
            "meta_level": self.meta_level,
            "block_size": self.block_size,
            "pack_nucleotides": self.pack_nucleotides,
            "long_distance": self.long_distance,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ChunkCodec:
        if data.get("name") != "tsqc1":
            raise ConfigError(f"not a tsqc1 chunk codec description: {data!r}")
        unknown = set(data) - {
            "name",
            "level",
            "meta_level",
            "block_size",
            "pack_nucleotides",
            "long_distance",
        }
        if unknown:
            raise ConfigError(f"unknown chunk codec keys {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k != "name"})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- small encoders


def _varints(values: Sequence[int]) -> bytes:
    out = bytearray()
    for value in values:
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
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


def _u32s(values: Sequence[int]) -> bytes:
    try:
        packed = array("I", values)
    except OverflowError as exc:
        raise ValueError("a chunk value does not fit in 32 bits") from exc
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def _from_u32s(data: bytes) -> array:
    values = array("I")
    values.frombytes(data)
    if sys.byteorder == "big":
        values.byteswap()
    return values


_EOL_CODE = {b"": 0, LF: 1, CRLF: 2}
_EOL_BYTES = (b"", LF, CRLF)


def _encode_layout(layout: Layout) -> bytes:
    flags = (1 if layout.final_eol else 0) | (2 if layout.eol == CRLF else 0)
    if layout.line_lengths is not None:
        flags |= 4
    if layout.line_eols is not None:
        flags |= 8
    out = bytes([flags]) + _varints([layout.wrap])
    if layout.line_lengths is not None:
        out += _varints([len(layout.line_lengths), *layout.line_lengths])
    if layout.line_eols is not None:
        out += _varints([len(layout.line_eols)]) + bytes(_EOL_CODE[e] for e in layout.line_eols)
    return out


def _decode_layouts(data: bytes) -> list[Layout]:
    layouts = []
    at = 0
    while at < len(data):
        flags = data[at]
        wrap, at = _read_varint(data, at + 1)
        lengths = eols = None
        if flags & 4:
            count, at = _read_varint(data, at)
            items = []
            for _ in range(count):
                value, at = _read_varint(data, at)
                items.append(value)
            lengths = tuple(items)
        if flags & 8:
            count, at = _read_varint(data, at)
            eols = tuple(_EOL_BYTES[c] for c in data[at : at + count])
            at += count
        eol = CRLF if flags & 2 else LF
        final = bool(flags & 1)
        if lengths is None and eols is None:
            layouts.append(_regular_layout(wrap, final, eol))
        else:
            layouts.append(Layout(wrap, lengths, eol, final, eols))
    return layouts


# --------------------------------------------------------------------------- nucleotide packing


def _pack(codes: bytes, bits: int) -> bytes:
    """Pack byte values below 2**bits, most significant first, padding the tail with 0.

    Uses big-integer arithmetic on whole byte strings: the k-th code of every
    group is an interleaved slice, and shifting and adding the slices as
    integers puts each group in one byte with no carries, all at C speed.
    """
    per = 8 // bits
    codes += bytes(-len(codes) % per)
    value = 0
    for k in range(per):
        value = (value << bits) + int.from_bytes(codes[k::per], "big")
    return value.to_bytes(len(codes) // per, "big")


def _unpack(packed: bytes, bits: int, count: int) -> bytes:
    per = 8 // bits
    value = int.from_bytes(packed, "big")
    mask = int.from_bytes(bytes([(1 << bits) - 1]) * len(packed), "big")
    out = bytearray(len(packed) * per)
    for k in range(per - 1, -1, -1):
        out[k::per] = (value & mask).to_bytes(len(packed), "big")
        value >>= bits
    return bytes(out[:count])


def _runs(text: bytes, flags: bytes) -> list[int]:
    """Alternating run lengths (outside first) of the stretches of ``text`` whose bytes are flagged.

    ``flags`` is a translate table mapping each byte to 1 (in a stretch) or
    0. Splitting the flagged text at the 1s runs at C speed; the Python
    loop is per flagged byte, so it is cheap exactly when stretches are
    rare (runs of N, soft-masked repeats).
    """
    segments = text.translate(flags).split(b"\x01")
    runs: list[int] = []
    gap = len(segments[0])
    k = 1
    last = len(segments) - 1
    while k <= last:
        length = 1
        while k < last and not segments[k]:
            length += 1
            k += 1
        runs.append(gap)
        runs.append(length)
        gap = len(segments[k])
        k += 1
    return runs


def _read_runs(payload: bytes, at: int) -> tuple[list[int], int]:
    count, at = _read_varint(payload, at)
    runs = []
    for _ in range(count):
        value, at = _read_varint(payload, at)
        runs.append(value)
    return runs, at


def _nucleotide_payload(block: bytes, upper: bytes, bits: int) -> bytes | None:
    """The 4-bit or 2-bit payload of a nucleotide block (``upper``: the block upper-cased).

    4-bit: case mask, packed codes. 2-bit: case mask, exception runs
    (stretches that are not ACGT, such as runs of N) with their letters,
    packed codes (exceptions packed as A); None when more than 1/16 of the
    block would be exceptions.
    """
    # The run scans are the slow part; all-upper and all-lower blocks skip them.
    if upper == block:
        runs: list[int] = []
    elif block.islower() and not block.translate(None, _LOWER_NUC16):
        runs = [0, len(block)]
    else:
        runs = _runs(block, _LOWER_FLAGS)
    mask = _varints([len(runs)]) + _varints(runs)
    if bits == 4:
        return mask + _pack(upper.translate(_TO_NUC), 4)
    odd_count = len(upper.translate(None, _ACGT))
    if odd_count > len(block) // 16:
        return None
    odd = _runs(upper, _NOT_ACGT_FLAGS) if odd_count else []
    odd_letters = b"".join(upper[a : a + n] for a, n in _run_spans(odd))
    exceptions = _varints([len(odd)]) + _varints(odd) + _varints([len(odd_letters)]) + odd_letters
    return mask + exceptions + _pack(upper.translate(_TO_NUC2), 2)


def _run_spans(runs: Sequence[int]) -> Iterator[tuple[int, int]]:
    """(start, length) of the matched stretches described by alternating run lengths."""
    at = 0
    for k in range(0, len(runs), 2):
        at += runs[k]
        yield at, runs[k + 1]
        at += runs[k + 1]


def _decode_nucleotides(payload: bytes, encoding: int, count: int) -> bytes:
    case_runs, at = _read_runs(payload, 0)
    if encoding == NUC4:
        text = _unpack(payload[at:], 4, count).translate(_FROM_NUC)
    else:
        odd, at = _read_runs(payload, at)
        size, at = _read_varint(payload, at)
        letters = payload[at : at + size]
        out = bytearray(_unpack(payload[at + size :], 2, count).translate(_FROM_NUC))
        used = 0
        for start, length in _run_spans(odd):
            out[start : start + length] = letters[used : used + length]
            used += length
        text = bytes(out)
    if not case_runs:
        return text
    out = bytearray(text)
    for start, length in _run_spans(case_runs):
        out[start : start + length] = out[start : start + length].lower()
    return bytes(out)


# --------------------------------------------------------------------------- encoding


class _Compressors:
    """One zstd compressor per level, with fixed parameters (see the module docstring)."""

    def __init__(self, long_distance: bool = False) -> None:
        self._by_level: dict[int, zstandard.ZstdCompressor] = {}
        self._long = long_distance

    def compress(self, data: bytes, level: int) -> bytes:
        compressor = self._by_level.get(level)
        if compressor is None:
            extra = {"enable_ldm": True, "window_log": 27} if self._long else {}
            params = zstandard.ZstdCompressionParameters.from_level(
                level,
                threads=0,
                write_content_size=1,
                write_checksum=1,
                write_dict_id=0,
                **extra,
            )
            compressor = self._by_level[level] = zstandard.ZstdCompressor(compression_params=params)
        return compressor.compress(data)


def _block(
    data: bytes,
    level: int,
    compressors: _Compressors,
    nucleotides: bool = False,
    nucleotide_level: int = 3,
) -> tuple[int, int, bytes]:
    """Encode one block: (encoding, raw size, stored bytes).

    Nucleotide blocks are tried as raw text and as one packed form (see the
    module docstring) and the smaller is kept. Even when zstd does not
    shrink a block it is kept as a zstd frame, for its checksum; only an
    empty block is stored as nothing.
    """
    if not data:
        return STORED, 0, b""
    upper = data.upper() if nucleotides else b""
    if not nucleotides or upper.translate(None, _NUC16):  # protein, spaces, '*', ...
        return ZSTD, len(data), compressors.compress(data, level)
    raw = compressors.compress(data, nucleotide_level)
    # Under 2 bits a base, raw text is already exploiting repeats (a gene set): 4-bit
    # codes may still help, 2-bit ones break repeats at odd offsets. Over it (a genome),
    # 2-bit codes are the ones that beat raw text.
    bits = 4 if len(raw) * 4 < len(data) else 2
    payload = _nucleotide_payload(data, upper, bits)
    if payload is None:
        bits, payload = 4, _nucleotide_payload(data, upper, 4)
    packed = compressors.compress(payload, nucleotide_level)  # type: ignore[arg-type]
    if len(packed) < len(raw):
        return (NUC4 if bits == 4 else NUC2), len(data), packed
    return ZSTD, len(data), raw


def encode_chunk(
    records: Sequence[SequenceRecord],
    taxids: Sequence[int] | None = None,
    codec: ChunkCodec = ChunkCodec(),
) -> bytes:
    """Serialise ``records`` (all FASTA or all FASTQ) with one taxid each (0 = none)."""
    count = len(records)
    if taxids is None:
        taxids = [0] * count
    if len(taxids) != count:
        raise ValueError(f"{len(taxids)} taxids for {count} records")
    fastq = bool(count) and isinstance(records[0], FastqRecord)
    if any(isinstance(r, FastqRecord) != fastq for r in records):
        raise ValueError("a chunk holds FASTA records or FASTQ records, not both")
    if count >= 1 << 32:
        raise ValueError("too many records for one chunk")
    compressors = _Compressors(codec.long_distance)

    headers = b"\n".join(r.header for r in records)
    if headers.count(b"\n") != max(count - 1, 0):
        raise ValueError("a header contains a newline")
    layout_rows: dict[Layout, int] = {}
    layout_index = [layout_rows.setdefault(r.layout, len(layout_rows)) for r in records]
    layout_table = b"".join(_encode_layout(layout) for layout in layout_rows)

    single: list[tuple[int, bytes]] = [
        (HEADERS, headers),
        (LENGTHS, _u32s([len(r.residues) for r in records])),
        (LAYOUT_TABLE, layout_table),
        (LAYOUT_INDEX, _u32s(layout_index)),
        (TAXIDS, _u32s(taxids)),
    ]
    blocked: list[tuple[int, bytes]] = [(RESIDUES, b"".join(r.residues for r in records))]
    if fastq:
        plus = b"\n".join(r.plus for r in records)  # type: ignore[union-attr]
        if plus.count(b"\n") != count - 1:
            raise ValueError("a '+' line contains a newline")
        single.append((PLUS, plus))
        blocked.append((QUALITIES, b"".join(r.qualities for r in records)))  # type: ignore[union-attr]

    entries: list[tuple[int, list[tuple[int, int, bytes]]]] = []
    for stream_id, data in single:
        entries.append((stream_id, [_block(data, codec.meta_level, compressors, False)]))
    for stream_id, data in blocked:
        size = codec.block_size
        nucleotides = codec.pack_nucleotides and stream_id == RESIDUES
        blocks = [
            _block(
                data[at : at + size], codec.level, compressors, nucleotides, codec.nucleotide_level
            )
            for at in range(0, len(data), size)
        ]
        entries.append((stream_id, blocks))

    head = [
        _FIXED.pack(MAGIC, VERSION, KIND_FASTQ if fastq else KIND_FASTA, 0, count, len(entries))
    ]
    payload: list[bytes] = []
    for stream_id, blocks in entries:
        head.append(_STREAM.pack(stream_id, len(blocks)))
        for encoding, raw, stored in blocks:
            head.append(_BLOCK.pack(encoding, raw, len(stored)))
            payload.append(stored)
    return b"".join(head + payload)


# --------------------------------------------------------------------------- decoding


@dataclass(frozen=True, slots=True)
class _Stream:
    blocks: tuple[tuple[int, int, int, int], ...]  # (encoding, raw, offset, stored) per block
    raw_starts: tuple[int, ...]  # raw offset of each block in the decoded stream


class ChunkReader:
    """Random access to the records of one serialised chunk.

    Streams are decoded on first use and kept; residue and quality blocks
    are decoded one at a time, as the records asked for need them (the last
    decoded block is cached, so reading records in order decodes each block
    once).
    """

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        try:
            magic, version, kind, _, count, n_streams = _FIXED.unpack_from(data, 0)
        except struct.error as exc:
            raise CompressionError("chunk too short for its header") from exc
        if magic != MAGIC:
            raise CompressionError(f"not a sequence chunk (magic {bytes(magic)!r})")
        if version != VERSION:
            raise CompressionError(f"unsupported sequence chunk version {version}")
        if kind not in (KIND_FASTA, KIND_FASTQ):
            raise CompressionError(f"unknown chunk kind {kind}")
        self.kind = kind
        self._count = count
        at = _FIXED.size
        entries: list[tuple[int, list[tuple[int, int, int]]]] = []
        try:
            for _ in range(n_streams):
                stream_id, n_blocks = _STREAM.unpack_from(data, at)
                at += _STREAM.size
                blocks = []
                for _ in range(n_blocks):
                    blocks.append(_BLOCK.unpack_from(data, at))
                    at += _BLOCK.size
                entries.append((stream_id, blocks))
        except struct.error as exc:
            raise CompressionError("chunk stream table is truncated") from exc
        self._streams: dict[int, _Stream] = {}
        offset = at
        for stream_id, blocks in entries:
            placed = []
            for encoding, raw, stored in blocks:
                placed.append((encoding, raw, offset, stored))
                offset += stored
            starts = tuple(accumulate([0] + [raw for _, raw, _ in blocks[:-1]])) if blocks else ()
            self._streams[stream_id] = _Stream(tuple(placed), starts)
        if offset != len(data):
            raise CompressionError(
                f"chunk payload is {len(data) - at} bytes, its stream table says {offset - at}"
            )
        self._decoder = zstandard.ZstdDecompressor()
        self._cache: dict[int, object] = {}
        self._block_cache: dict[tuple[int, int], bytes] = {}

    def __len__(self) -> int:
        return self._count

    # -- streams

    def _decode_block(self, stream_id: int, index: int) -> bytes:
        key = (stream_id, index)
        cached = self._block_cache.get(key)
        if cached is not None:
            return cached
        encoding, raw, offset, stored = self._streams[stream_id].blocks[index]
        payload = self._data[offset : offset + stored]
        try:
            if encoding == STORED:
                out = bytes(payload)
            elif encoding == ZSTD:
                out = self._decoder.decompress(payload)
            elif encoding in (NUC4, NUC2):
                out = _decode_nucleotides(self._decoder.decompress(payload), encoding, raw)
            else:
                raise CompressionError(f"unknown block encoding {encoding}")
        except zstandard.ZstdError as exc:
            name = _STREAM_NAMES.get(stream_id, str(stream_id))
            raise CompressionError(f"corrupt {name} block {index} in chunk: {exc}") from exc
        if len(out) != raw:
            raise CompressionError(
                f"{_STREAM_NAMES.get(stream_id)} block {index} decodes to {len(out)} bytes, expected {raw}"
            )
        if stream_id in (RESIDUES, QUALITIES):
            self._block_cache = {k: v for k, v in self._block_cache.items() if k[0] != stream_id}
        self._block_cache[key] = out
        return out

    def _whole(self, stream_id: int) -> bytes:
        stream = self._streams.get(stream_id)
        if stream is None:
            if stream_id in (PLUS, QUALITIES) and self.kind == KIND_FASTA:
                raise ValueError("a FASTA chunk has no plus lines or qualities")
            raise CompressionError(f"chunk has no {_STREAM_NAMES.get(stream_id)} stream")
        return b"".join(self._decode_block(stream_id, i) for i in range(len(stream.blocks)))

    def _range(self, stream_id: int, start: int, end: int) -> bytes:
        """Bytes [start, end) of a blocked stream, decoding only the blocks they lie in."""
        if start == end:
            return b""
        stream = self._streams[stream_id]
        first = bisect_right(stream.raw_starts, start) - 1
        last = bisect_right(stream.raw_starts, end - 1) - 1
        parts = [self._decode_block(stream_id, i) for i in range(first, last + 1)]
        base = stream.raw_starts[first]
        joined = parts[0] if len(parts) == 1 else b"".join(parts)
        return joined[start - base : end - base]

    def _lines(self, stream_id: int) -> list[bytes]:
        cached = self._cache.get(stream_id)
        if cached is None:
            cached = self._whole(stream_id).split(b"\n") if self._count else []
            if len(cached) != self._count:
                raise CompressionError(
                    f"chunk {_STREAM_NAMES[stream_id]} stream has {len(cached)} lines for {self._count} records"
                )
            self._cache[stream_id] = cached
        return cached  # type: ignore[return-value]

    def _u32(self, stream_id: int) -> array:
        cached = self._cache.get(stream_id)
        if cached is None:
            cached = _from_u32s(self._whole(stream_id))
            if len(cached) != self._count:
                raise CompressionError(
                    f"chunk {_STREAM_NAMES[stream_id]} stream has {len(cached)} values for {self._count} records"
                )
            self._cache[stream_id] = cached
        return cached  # type: ignore[return-value]

    def _offsets(self) -> array:
        cached = self._cache.get(-1)
        if cached is None:
            cached = array("Q", [0])
            cached.extend(accumulate(self._u32(LENGTHS)))
            self._cache[-1] = cached
        return cached  # type: ignore[return-value]

    def _layouts(self) -> list[Layout]:
        cached = self._cache.get(LAYOUT_TABLE)
        if cached is None:
            cached = _decode_layouts(self._whole(LAYOUT_TABLE))
            self._cache[LAYOUT_TABLE] = cached
        return cached  # type: ignore[return-value]

    # -- public

    def headers(self) -> list[bytes]:
        """Every header, without decoding any residue."""
        return list(self._lines(HEADERS))

    def taxids(self) -> list[int]:
        return list(self._u32(TAXIDS))

    def lengths(self) -> list[int]:
        return list(self._u32(LENGTHS))

    def residues(self, index: int, start: int = 0, end: int | None = None) -> bytes:
        """Residues ``[start:end]`` of record ``index`` (as written, case kept).

        Only the blocks holding that range are decoded, so a 1 kb region of
        a chromosome costs one block, not the chromosome.
        """
        offsets = self._offsets()
        first, last = offsets[index], offsets[index + 1]
        length = last - first
        begin, stop, _ = slice(start, end).indices(length)
        return self._range(RESIDUES, first + begin, first + max(begin, stop))

    def record(self, index: int) -> SequenceRecord:
        """Record ``index``, decoding only what it needs."""
        if not -self._count <= index < self._count:
            raise IndexError(f"record {index} of a chunk of {self._count}")
        index %= self._count
        layout = self._layouts()[self._u32(LAYOUT_INDEX)[index]]
        header = self._lines(HEADERS)[index]
        residues = self.residues(index)
        if self.kind == KIND_FASTQ:
            offsets = self._offsets()
            quals = self._range(QUALITIES, offsets[index], offsets[index + 1])
            return FastqRecord(header, residues, self._lines(PLUS)[index], quals, layout)
        return FastaRecord(header, residues, layout)

    def __iter__(self) -> Iterator[SequenceRecord]:
        for i in range(self._count):
            yield self.record(i)

    def records(self) -> list[SequenceRecord]:
        """Every record, decoding each stream once."""
        headers = self._lines(HEADERS)
        table = self._layouts()
        index = self._u32(LAYOUT_INDEX)
        offsets = self._offsets()
        residues = self._whole(RESIDUES)
        if self.kind == KIND_FASTQ:
            plus = self._lines(PLUS)
            quals = self._whole(QUALITIES)
            return [
                FastqRecord(
                    headers[i],
                    residues[offsets[i] : offsets[i + 1]],
                    plus[i],
                    quals[offsets[i] : offsets[i + 1]],
                    table[index[i]],
                )
                for i in range(self._count)
            ]
        return [
            FastaRecord(headers[i], residues[offsets[i] : offsets[i + 1]], table[index[i]])
            for i in range(self._count)
        ]

    def stream_sizes(self) -> dict[str, tuple[int, int]]:
        """Per stream: (raw bytes, stored bytes); for measurements."""
        return {
            _STREAM_NAMES.get(sid, str(sid)): (
                sum(b[1] for b in stream.blocks),
                sum(b[3] for b in stream.blocks),
            )
            for sid, stream in self._streams.items()
        }


def decode_chunk(data: bytes) -> tuple[list[SequenceRecord], list[int]]:
    """All records of a chunk and their taxids."""
    reader = ChunkReader(data)
    return reader.records(), reader.taxids()
