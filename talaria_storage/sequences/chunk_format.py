"""The serialised forms of sequence records: record chunks (formats 2 and 3) and sequence packs.

A chunk of records is stored as two kinds of content-addressed objects:

* a **record chunk** holds what is particular to each occurrence of a
  sequence -- header, line layout, taxid, FASTQ ``+`` line -- and, per
  record, a *reference* ``(pack, slot)`` to its residues;
* a **sequence pack** holds residues (and FASTQ qualities): each distinct
  sequence once, in *slots* numbered from 0. A FASTA slot holds the
  *canonical* residues (upper case, no whitespace: the sequence's identity),
  so a soft-masked and an upper-case copy of one sequence share a slot; the
  record chunk keeps, per record, the *residue edit* that gives its residues
  back as written. A FASTQ slot holds residues and qualities as written.

Why two objects: a release that only rewrites headers (ResFinder did, twice)
re-stores the small record chunks and none of the residues, and a sequence
carried by several records -- in one chunk, in different chunks or files of
one import -- is stored once; each occurrence keeps its own header, accession
and taxon. A record chunk lists the packs it refers to (its *pack table*) by
SHA-256; entry 0 is normally the chunk's *own* pack, which holds the residues
first seen in that chunk, and later entries are packs of earlier chunks of the
same import, or of earlier versions (of any database in the store), that
already hold some of its sequences. Which occurrence is "first" is decided
in the import's deterministic chunk order (see
:mod:`talaria_storage.sequences.importing`) and by which sequences the
store's live versions held when the import began
(:mod:`talaria_storage.sequences.stored_sequences`), so the same input into
stores with the same history -- two empty stores, say -- gives the same
objects.

As in the Nucleotide Archival Format, the parts of the records are kept in
separate *streams* -- headers, layouts, taxids, references; lengths,
residues, qualities -- because each kind compresses far better beside its
own kind than interleaved as in FASTA text.

Container (both objects; integers little-endian)::

    magic        4 bytes  b"TSQC" record chunk, b"TSQP" sequence pack
    version      u8       2 or 3 (record chunk), 1 (sequence pack)
    kind         u8       0 = FASTA, 1 = FASTQ
    reserved     u16      0
    count        u32      records (chunk) or slots (pack)
    streams      u8       number of stream entries that follow
    stream entry, repeated:
      id         u8       see below
      blocks     u32      number of blocks
      block entry, repeated:
        encoding u8       0 empty, 1 zstd, 2 zstd of 4-bit nucleotides,
                          3 zstd of 2-bit nucleotides, 4 zstd against the
                          chunk's dictionary (stream 12)
        raw      u32      bytes once decoded
        stored   u32      bytes in the payload
    payload      the blocks' stored bytes, in entry order, nothing between them

Each stream is a list of independently compressed blocks. Small streams have
one block; residues and qualities are cut into blocks of ``block_size`` raw
bytes (default 1 MiB), so one record is read by decoding the chunk's small
streams, the pack's lengths and only the one or two residue blocks its slot
lies in -- never a whole large pack.

Record chunk streams, once decoded:

* 1 headers, 7 plus lines -- the lines joined by ``b"\\n"`` (a header never
  contains a newline);
* 3 layout table -- the distinct layouts, each encoded as: u8 flags (1 final
  newline, 2 CRLF, 4 explicit line lengths, 8 explicit terminators), varint
  wrap, then when flagged a varint count and varint line lengths, a varint
  count and one byte per terminator (0 none, 1 LF, 2 CRLF); the table is in
  first-use order;
* 4 layout index -- u32 per record, its row in the layout table;
* 5 taxids -- u32 per record (0 = none);
* 9 pack table -- 32-byte SHA-256 per referenced pack;
* 10 references -- per record a varint ``p``: 0 means "the next new slot of
  pack 0" (slots taken in record order, the common case, so the stream is
  nearly all zeros), otherwise ``p - 1`` is the pack table index and a varint
  slot follows;
* 11 residue edits (format 3 only) -- per record a varint length, then its
  edit (empty when the residues as written are canonical): a varint count
  of lower-case runs, each a varint gap and a varint length over the
  canonical residues, then a varint count of whitespace runs, each a varint
  gap (canonical residues since the previous run), a varint length and the
  bytes. Soft-masked genomes need a few bytes per masked run; protein sets
  need none;
* 12 dictionary chunks (format 3 only) -- u8 depth, the 32-byte SHA-256 the
  chunk would have standing alone, then the 32-byte SHA-256 of each
  dictionary chunk: earlier record chunks (the previous release's) whose
  headers and references streams, decoded and joined by newlines, are the
  zstd raw-content dictionaries of this chunk's headers and references
  blocks of encoding 4. Releases of a database mostly repeat their
  records, so these compress to a fraction (ResFinder: a release's
  28 KB of headers to 0.1-5 KB when a few records change). A dictionary
  chunk may have a dictionary itself; depth is 1 + the deepest of them,
  at most ``MAX_DICTIONARY_DEPTH``, which bounds what reading one chunk
  decodes. A block is compressed against the dictionary only when that
  makes it at most ``DICTIONARY_GAIN`` of its size alone.

Sequence pack streams: 2 lengths (u32 per slot), 6 residues and 8 qualities
(the slots' bytes concatenated).

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

Reading one record (:meth:`ChunkReader.record`) decodes what it needs
and keeps it for the next: the chunk's headers, layouts and pack table;
of the references, only the explicit entries (:meth:`ChunkReader.ref`:
every zero byte's slot follows from how many entries precede it); of the
pack its record refers to, the lengths and the block(s) its slot lies in.
A packed nucleotide block is decompressed whole (its checksum covers the
frame) but kept packed, and only the record's range is unpacked. Decoded
residue and quality blocks can live in an :class:`LRUCache` shared by the
readers of many packs, bounded by bytes (the sequence database does this).

Integrity: every zstd block carries its content checksum (4 bytes), so a
block read on its own -- from a byte range of a stored object, which the
chunk store's SHA-256 cannot cover -- is still verified. A bad block is a
:class:`CompressionError`, never wrong residues. A reference to a slot a
pack does not have is one too.

Versions: a record chunk is written as format 3 only when some record needs
a residue edit or a block is compressed against a dictionary, else as
format 2, so a first import of canonical data gives the same objects as
before either existed, and a reader that knows only format 2 refuses a
chunk it would misread. Record chunks of format 1
(residues inside the chunk) were written only by pre-releases; reading one
is a :class:`CompressionError` that says to re-import, never a misreading.

Determinism: the same records, references, dictionary chunks and codec
give the same bytes. zstd runs with fixed parameters (level, no threads,
content size and checksum written, no dictionary id), a dictionary only as
stream 12 names it, no timestamps, and every table is in
record (slot) order. The bytes depend on the zstd library's output, which is
stable within a library version; another libzstd may encode the same records
differently (decoding is unaffected, but the objects' hashes change, so a
release re-imported after a libzstd upgrade is stored again instead of
deduplicated).
"""

from __future__ import annotations

import binascii
import hashlib
import re
import struct
import sys
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat

import zstandard

from talaria_storage.core.errors import CompressionError, ConfigError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.formats.fasta import (
    CRLF,
    LF,
    FastaRecord,
    FastqRecord,
    Layout,
    SequenceRecord,
    _regular_layout,
)
from talaria_storage.sequences.canonical import RESIDUE_SPACES

CHUNK_MAGIC = b"TSQC"
PACK_MAGIC = b"TSQP"
MAGIC = CHUNK_MAGIC  # the record chunk's magic, under its historical name
CHUNK_VERSION = 3  # written only when a record needs residue edits; otherwise 2 (see "Versions")
CHUNK_VERSION_PLAIN = 2
PACK_VERSION = 1
KIND_FASTA = 0
KIND_FASTQ = 1

HEADERS, LENGTHS, LAYOUT_TABLE, LAYOUT_INDEX, TAXIDS, RESIDUES, PLUS, QUALITIES = range(1, 9)
PACK_TABLE, REFS, EDITS, DICTIONARY = 9, 10, 11, 12
STORED, ZSTD, NUC4, NUC2, ZSTD_DICT = range(5)

_STREAM_NAMES = {
    HEADERS: "headers",
    LENGTHS: "lengths",
    LAYOUT_TABLE: "layout table",
    LAYOUT_INDEX: "layout index",
    TAXIDS: "taxids",
    RESIDUES: "residues",
    PLUS: "plus lines",
    QUALITIES: "qualities",
    PACK_TABLE: "pack table",
    REFS: "references",
    EDITS: "residue edits",
    DICTIONARY: "dictionary chunks",
}
# Streams that may be compressed against the same streams of earlier chunks (stream 12), and
# the gain that must bring: at most this fraction of the stream compressed alone.
DICTIONARY_STREAMS = (HEADERS, REFS)
DICTIONARY_GAIN = 0.75
# How many earlier chunks deep a chunk's headers may depend on (chunk A's dictionary is B,
# whose dictionary is C, ...): reading a chunk decodes at most this many header streams more.
MAX_DICTIONARY_DEPTH = 4

_BLOCKS_KEPT = 4  # decoded residue (quality) blocks a reader keeps: random look-ups in one pack
_FIXED = struct.Struct("<4sBBHIB")
_STREAM = struct.Struct("<BI")
_BLOCK = struct.Struct("<BII")

# 4-bit nucleotide codes: ACGT first, so an ACGT letter has the same code in 2 and 4 bits.
_NUC16 = b"ACGTRYSWKMBDHVN-"
_TO_NUC = bytes.maketrans(_NUC16, bytes(range(16)))
_ACGT = b"ACGT"
_TO_NUC2 = bytes.maketrans(_NUC16, bytes([0, 1, 2, 3] + [0] * 12))
_LOWER_NUC16 = _NUC16.lower()
_LOWER_FLAGS = bytes(1 if 0x61 <= b <= 0x7A else 0 for b in range(256))
_NOT_ACGT_FLAGS = bytes(0 if b in _ACGT else 1 for b in range(256))
# Decoding (see _unpack_letters): a hex digit of a packed byte is one 4-bit code, or two 2-bit ones.
_HEX = b"0123456789abcdef"
_HEX_TO_NUC16 = bytes.maketrans(_HEX, _NUC16)
_HEX_TO_CODE_PAIR = bytes.maketrans(_HEX, bytes((v >> 2) << 4 | (v & 3) for v in range(16)))
_HEX_TO_ACGT = bytes.maketrans(_HEX[:4], _ACGT)


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
    distance matcher (window 128 MiB) for blocks of several MiB.
    ``redundant_level`` (17) re-compresses a nucleotide block that level
    ``nucleotide_level`` already brings under 2 bits a base -- a redundant
    gene set (ResFinder, 16S/23S), never a genome -- where zstd's
    optimal-parsing levels find the long near-repeats between similar genes
    (ResFinder: 11.6 -> 14.8x, past xz -9's 14.3x; WoL 16S: 16.6 -> ~24x;
    at 2-5 MB/s for those blocks; 16 and 17 are where zstd switches to its
    ultra strategies: level 15 gives 12.7x and 19.5x). Such sets are small
    beside proteomes and genomes, whose speed is unchanged; set it to
    ``nucleotide_level`` to import them fast. Decoding speed does not depend
    on the level. Figures and commands: ``benchmarks/bench_formats.py``,
    ``benchmarks/README.md``.
    """

    level: int = 2
    meta_level: int = 9
    block_size: int = 1 << 20
    pack_nucleotides: bool = True
    long_distance: bool = False
    nucleotide_level: int = 3
    redundant_level: int = 17

    def __post_init__(self) -> None:
        for name in ("level", "meta_level", "nucleotide_level", "redundant_level"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 22:
                raise ConfigError(f"chunk codec {name} must be an integer 1..22, got {value!r}")
        if not isinstance(self.block_size, int) or not 4096 <= self.block_size <= 1 << 30:
            raise ConfigError(
                f"chunk codec block_size must be 4096..2**30 bytes, got {self.block_size!r}"
            )

    def to_dict(self) -> dict[str, object]:
        return {
            "name": "tsqc2",
            "level": self.level,
            "meta_level": self.meta_level,
            "block_size": self.block_size,
            "pack_nucleotides": self.pack_nucleotides,
            "long_distance": self.long_distance,
            "nucleotide_level": self.nucleotide_level,
            "redundant_level": self.redundant_level,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ChunkCodec:
        if data.get("name") != "tsqc2":
            raise ConfigError(f"not a tsqc2 chunk codec description: {data!r}")
        unknown = set(data) - {
            "name",
            "level",
            "meta_level",
            "block_size",
            "pack_nucleotides",
            "long_distance",
            "nucleotide_level",
            "redundant_level",
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


def _unpack_letters(packed: bytes, bits: int) -> bytes:
    """The letters of packed 4-bit or 2-bit codes (the inverse of :func:`_pack` and the code tables).

    ``hexlify`` splits every byte into its two nibbles, most significant
    first, in C: for 4-bit codes a translate of the hex digits gives the
    letters; for 2-bit codes each digit is first turned into the byte whose
    hex digits are its two 2-bit halves, and hexlified again. Three to five
    linear C passes: ~4x faster than unpacking through big integers and
    translating codes to letters (1 MiB of 2-bit codes: 2 ms against 7.6 ms).
    The tail padding becomes letters too; the caller trims it.
    """
    if bits == 4:
        return binascii.hexlify(packed).translate(_HEX_TO_NUC16)
    return binascii.hexlify(binascii.hexlify(packed).translate(_HEX_TO_CODE_PAIR)).translate(_HEX_TO_ACGT)


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


def _span_table(runs: Sequence[int], count: int, what: str) -> tuple[list[int], list[int]]:
    """(starts, ends) of the stretches of alternating run lengths, checked to lie inside ``count``."""
    if len(runs) % 2:
        raise CompressionError(f"nucleotide block {what} has an odd number of run lengths")
    starts: list[int] = []
    ends: list[int] = []
    at = 0
    for start, length in _run_spans(runs):
        starts.append(start)
        ends.append(start + length)
        at = start + length
    if at > count:
        raise CompressionError(f"nucleotide block {what} reach past its {count} letters")
    return starts, ends


class _NucleotideBlock:
    """A 4-bit or 2-bit nucleotide block held packed; letters are made only for the range asked for.

    The zstd frame is decompressed (and its checksum verified) once, whole;
    what is kept is the packed payload -- a half or a quarter of the
    letters -- and the case and exception stretches. A look-up then unpacks
    only its own record's codes: on rRNA sets (WoL 16S/23S, one 0.2-1 MiB
    block per pack, all packed) unpacking whole blocks was most of a
    look-up's time.
    """

    __slots__ = ("_bits", "_case", "_codes_at", "_letters", "_odd", "_odd_at", "_payload", "_per", "count")

    def __init__(self, payload: bytes, encoding: int, count: int) -> None:
        case_runs, at = _read_runs(payload, 0)
        self._case = _span_table(case_runs, count, "case runs")
        if encoding == NUC4:
            self._bits = 4
            self._odd: tuple[list[int], list[int]] = ([], [])
            self._odd_at: list[int] = []
            self._letters = b""
        else:
            self._bits = 2
            odd_runs, at = _read_runs(payload, at)
            size, at = _read_varint(payload, at)
            self._letters = payload[at : at + size]
            self._odd = _span_table(odd_runs, count, "exception runs")
            self._odd_at = list(accumulate((e - s for s, e in zip(*self._odd)), initial=0))
            if len(self._letters) != size or self._odd_at[-1] != size:
                raise CompressionError(
                    f"nucleotide block has {len(self._letters)} exception letters for runs of {self._odd_at[-1]}"
                )
            at += size
        self._per = 8 // self._bits
        self._payload = payload  # the codes are its tail, from _codes_at: not copied
        self._codes_at = at
        if len(payload) - at != -(-count // self._per):
            raise CompressionError(
                f"nucleotide block packs {len(payload) - at} bytes of codes for {count} letters"
            )
        self.count = count

    @property
    def nbytes(self) -> int:
        """Bytes held (for a cache's budget)."""
        return len(self._payload) + len(self._letters) + 24 * (len(self._case[0]) + len(self._odd[0]))

    def slice(self, start: int, end: int) -> bytes:
        """Letters ``[start, end)`` (0 <= start <= end <= count), case and exceptions restored."""
        per = self._per
        first = start // per
        at = self._codes_at
        letters = _unpack_letters(self._payload[at + first : at - (-end // per)], self._bits)
        skip = start - first * per
        if skip or len(letters) != end - start:
            letters = letters[skip : skip + end - start]
        odd_starts, odd_ends = self._odd
        case_starts, case_ends = self._case
        odd = bisect_right(odd_ends, start)
        case = bisect_right(case_ends, start)
        if (odd == len(odd_starts) or odd_starts[odd] >= end) and (
            case == len(case_starts) or case_starts[case] >= end
        ):
            return letters  # no exception or lower-case stretch in the range: the common case
        out = bytearray(letters)
        while odd < len(odd_starts) and odd_starts[odd] < end:
            a, b = max(odd_starts[odd], start), min(odd_ends[odd], end)
            at = self._odd_at[odd] + a - odd_starts[odd]
            out[a - start : b - start] = self._letters[at : at + b - a]
            odd += 1
        while case < len(case_starts) and case_starts[case] < end:
            a, b = max(case_starts[case], start) - start, min(case_ends[case], end) - start
            out[a:b] = out[a:b].lower()
            case += 1
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
    redundant_level: int = 3,
) -> tuple[int, int, bytes]:
    """Encode one block: (encoding, raw size, stored bytes).

    Nucleotide blocks are tried as raw text and as one packed form (see the
    module docstring) and the smaller is kept. Even when zstd does not
    shrink a block it is kept as a zstd frame, for its checksum; only an
    empty block is stored as nothing.
    """
    if not data:
        return STORED, 0, b""
    # Protein (or spaces, '*', ...): a sample tells at once, sparing a pass over the block.
    if not nucleotides or data[:4096].upper().translate(None, _NUC16):
        return ZSTD, len(data), compressors.compress(data, level)
    upper = data.upper()
    if upper.translate(None, _NUC16):
        return ZSTD, len(data), compressors.compress(data, level)
    raw = compressors.compress(data, nucleotide_level)
    # Under 2 bits a base, raw text is already exploiting repeats (a gene set): 4-bit
    # codes may still help, 2-bit ones break repeats at odd offsets. Over it (a genome),
    # 2-bit codes are the ones that beat raw text.
    bits = 4 if len(raw) * 4 < len(data) else 2
    if bits == 4 and redundant_level > nucleotide_level:
        # A redundant gene set: worth the slow optimal-parsing levels (see ChunkCodec); the
        # packed codes below still win on some (near-identical alleles), so both compete.
        slow = compressors.compress(data, redundant_level)
        raw = slow if len(slow) < len(raw) else raw
    payload = _nucleotide_payload(data, upper, bits)
    if payload is None:
        bits, payload = 4, _nucleotide_payload(data, upper, 4)
    packed = compressors.compress(payload, nucleotide_level)  # type: ignore[arg-type]
    if len(packed) < len(raw):
        return (NUC4 if bits == 4 else NUC2), len(data), packed
    return ZSTD, len(data), raw



DEFAULT_CODEC = ChunkCodec()
_Blocks = list[tuple[int, int, bytes]]  # (encoding, raw size, stored bytes) per block


def _blocked(data: bytes, codec: ChunkCodec, compressors: _Compressors, nucleotides: bool) -> _Blocks:
    """A residue or quality stream cut into ``codec.block_size`` blocks (none when empty)."""
    size = codec.block_size
    return [
        _block(
            data[at : at + size], codec.level, compressors, nucleotides, codec.nucleotide_level,
            codec.redundant_level,
        )
        for at in range(0, len(data), size)
    ]



def _container(magic: bytes, version: int, kind: int, count: int, entries: list[tuple[int, _Blocks]]) -> bytes:
    head = [_FIXED.pack(magic, version, kind, 0, count, len(entries))]
    payload: list[bytes] = []
    for stream_id, blocks in entries:
        head.append(_STREAM.pack(stream_id, len(blocks)))
        for encoding, raw, stored in blocks:
            head.append(_BLOCK.pack(encoding, raw, len(stored)))
            payload.append(stored)
    return b"".join(head + payload)


def encode_pack(
    sequences: Sequence[bytes],
    qualities: Sequence[bytes] | None = None,
    codec: ChunkCodec = DEFAULT_CODEC,
) -> bytes:
    """Serialise a sequence pack: slot ``i`` holds ``sequences[i]`` (and ``qualities[i]`` for FASTQ).

    The caller decides which strings go in (each distinct one once, in the
    order its records were first met); this function only lays them out.
    """
    if qualities is not None and (
        len(qualities) != len(sequences) or any(len(q) != len(s) for q, s in zip(qualities, sequences))
    ):
        raise ValueError("a FASTQ pack needs one quality string per sequence, of its length")
    return encode_pack_joined(
        b"".join(sequences),
        [len(s) for s in sequences],
        b"".join(qualities) if qualities is not None else None,
        codec,
    )


def encode_pack_joined(
    residues: bytes, lengths: Sequence[int], qualities: bytes | None, codec: ChunkCodec = DEFAULT_CODEC
) -> bytes:
    """:func:`encode_pack` on the slots already concatenated (``lengths``: bytes per slot).

    The import's workers receive slots this way: one ``bytes`` pickles far
    faster than a list of thousands.
    """
    count = len(lengths)
    if count >= 1 << 32:
        raise ValueError("too many slots for one sequence pack")
    if sum(lengths) != len(residues) or (qualities is not None and len(qualities) != len(residues)):
        raise ValueError("pack lengths do not add up to its residues (or qualities)")
    compressors = _Compressors(codec.long_distance)
    entries: list[tuple[int, _Blocks]] = [
        (LENGTHS, [_block(_u32s(lengths), codec.meta_level, compressors)]),
        (RESIDUES, _blocked(residues, codec, compressors, codec.pack_nucleotides)),
    ]
    if qualities is not None:
        entries.append((QUALITIES, _blocked(qualities, codec, compressors, False)))
    kind = KIND_FASTA if qualities is None else KIND_FASTQ
    return _container(PACK_MAGIC, PACK_VERSION, kind, count, entries)


def encode_chunk(
    headers: Sequence[bytes],
    layouts: Sequence[Layout],
    taxids: Sequence[int],
    refs: Sequence[tuple[int, int]],
    packs: Sequence[SHA256Hash | bytes],
    *,
    plus: Sequence[bytes] | None = None,
    codec: ChunkCodec = DEFAULT_CODEC,
    edits: Sequence[bytes] | None = None,
) -> bytes:
    """Serialise a record chunk.

    ``refs[i]`` is ``(pack table index, slot)`` of record ``i``'s residues;
    ``packs`` is the pack table (SHA-256 of each pack). ``plus`` (the ``+``
    lines) makes it a FASTQ chunk. ``edits[i]`` turns the slot's residues
    into record ``i``'s as written (see :func:`residue_edit`).
    """
    count = len(headers)
    if not len(layouts) == len(taxids) == len(refs) == count:
        raise ValueError(
            f"{count} headers, {len(layouts)} layouts, {len(taxids)} taxids and {len(refs)} references"
        )
    if plus is not None and len(plus) != count:
        raise ValueError("a FASTQ chunk needs one '+' line per record")
    layout_rows: dict[Layout, int] = {}
    layout_index = [layout_rows.setdefault(layout, len(layout_rows)) for layout in layouts]
    return encode_chunk_joined(
        b"\n".join(headers),
        count,
        list(layout_rows),
        layout_index,
        taxids,
        [pack << 32 | slot for pack, slot in refs],
        packs,
        plus=b"\n".join(plus) if plus is not None else None,
        codec=codec,
        edits=edits,
    )


def encode_chunk_joined(
    headers: bytes,
    count: int,
    layout_table: Sequence[Layout],
    layout_index: Sequence[int],
    taxids: Sequence[int],
    refs: Sequence[int],
    packs: Sequence[SHA256Hash | bytes],
    *,
    plus: bytes | None = None,
    codec: ChunkCodec = DEFAULT_CODEC,
    edits: Sequence[bytes] | None = None,
    dictionary: ChunkDictionary | None = None,
) -> bytes:
    """:func:`encode_chunk` on columns: headers (and ``+`` lines) joined by newlines, the
    distinct layouts and each record's row, references as ``pack << 32 | slot``.

    ``edits``: per record, the :func:`residue_edit` that turns its slot's
    canonical residues back into the residues as written (``b""``: none).
    ``dictionary``: earlier record chunks whose headers and references this
    chunk's are compressed against, where that pays (stream 12 in the module
    docstring).
    """
    plain = plain_chunk(
        headers, count, layout_table, layout_index, taxids, refs, packs, plus=plus, codec=codec, edits=edits
    )
    return plain.against(dictionary)[0]


def plain_chunk(
    headers: bytes,
    count: int,
    layout_table: Sequence[Layout],
    layout_index: Sequence[int],
    taxids: Sequence[int],
    refs: Sequence[int],
    packs: Sequence[SHA256Hash | bytes],
    *,
    plus: bytes | None = None,
    codec: ChunkCodec = DEFAULT_CODEC,
    edits: Sequence[bytes] | None = None,
) -> PlainChunk:
    """The record chunk standing alone (see :func:`encode_chunk_joined`)."""
    if count >= 1 << 32:
        raise ValueError("too many records for one chunk")
    if not len(layout_index) == len(taxids) == len(refs) == count:
        raise ValueError(f"{count} records, {len(layout_index)} layouts, {len(taxids)} taxids, {len(refs)} references")
    if headers.count(b"\n") != max(count - 1, 0) or (count == 0 and headers):
        raise ValueError("a header contains a newline")
    if plus is not None and plus.count(b"\n") != max(count - 1, 0):
        raise ValueError("a '+' line contains a newline")
    table = b"".join(p.digest if isinstance(p, SHA256Hash) else bytes(p) for p in packs)
    if len(table) != 32 * len(packs):
        raise ValueError("a pack table entry is not a 32-byte SHA-256")
    if layout_index and max(layout_index) >= len(layout_table):
        raise ValueError("a layout index points past the layout table")
    streams: list[tuple[int, bytes]] = [
        (HEADERS, headers),
        (LAYOUT_TABLE, b"".join(_encode_layout(layout) for layout in layout_table)),
        (LAYOUT_INDEX, _u32s(layout_index)),
        (TAXIDS, _u32s(taxids)),
        (PACK_TABLE, table),
        (REFS, _encode_refs(refs, len(packs))),
    ]
    if plus is not None:
        streams.append((PLUS, plus))
    version = CHUNK_VERSION_PLAIN
    if edits is not None and any(edits):
        if len(edits) != count:
            raise ValueError(f"{len(edits)} residue edits for {count} records")
        streams.append((EDITS, b"".join(_varints([len(e)]) + e for e in edits)))
        version = CHUNK_VERSION
    compressors = _Compressors(codec.long_distance)
    entries = [(sid, [_block(data, codec.meta_level, compressors)]) for sid, data in streams]
    kind = KIND_FASTA if plus is None else KIND_FASTQ
    return PlainChunk(_container(CHUNK_MAGIC, version, kind, count, entries), streams, entries, kind, count, codec)


@dataclass(frozen=True)
class PlainChunk:
    """A record chunk encoded standing alone (``data``), and what compressing it against a
    dictionary needs: an import first asks whether the plain chunk is one it already has."""

    data: bytes
    streams: list[tuple[int, bytes]]
    entries: list[tuple[int, _Blocks]]
    kind: int
    count: int
    codec: ChunkCodec

    def against(self, dictionary: ChunkDictionary | None) -> tuple[bytes, tuple[bytes, ...]]:
        """(the chunk, the dictionary chunks it was compressed against: none when that did not pay)."""
        if dictionary is None or not dictionary.chunks:
            return self.data, ()
        level = self.codec.meta_level
        entries = list(self.entries)
        used = False
        for i, (sid, data) in enumerate(self.streams):
            if sid in DICTIONARY_STREAMS and data:
                against = dictionary.compress(sid, data, level)
                if len(against) <= DICTIONARY_GAIN * len(entries[i][1][0][2]):
                    entries[i] = (sid, [(ZSTD_DICT, len(data), against)])
                    used = True
        if not used:
            return self.data, ()
        # The chunk as it would stand alone is named too: an unchanged chunk of the next
        # release is then recognised as this one.
        table = bytes([dictionary.depth]) + hashlib.sha256(self.data).digest() + b"".join(dictionary.chunks)
        entries.append((DICTIONARY, [_block(table, level, _Compressors(self.codec.long_distance))]))
        return _container(CHUNK_MAGIC, CHUNK_VERSION, self.kind, self.count, entries), dictionary.chunks


@dataclass(frozen=True)
class ChunkDictionary:
    """Earlier record chunks (32-byte SHA-256 each) and, per stream of
    ``DICTIONARY_STREAMS``, their streams joined (:func:`dictionary_text`): what
    a new chunk's headers and references may be compressed against (stream 12)."""

    chunks: tuple[bytes, ...]
    texts: tuple[bytes, ...]  # one per DICTIONARY_STREAMS entry
    depth: int = 1  # the new chunk's: 1 + the deepest of ``chunks`` (a stand-alone chunk is 0)

    def __post_init__(self) -> None:
        if not 1 <= self.depth <= MAX_DICTIONARY_DEPTH:
            raise ValueError(f"a chunk dictionary makes chunks 1 to {MAX_DICTIONARY_DEPTH} deep, not {self.depth}")
        if len(self.texts) != len(DICTIONARY_STREAMS):
            raise ValueError(f"a chunk dictionary has one text per stream of {DICTIONARY_STREAMS}")

    def compress(self, stream_id: int, data: bytes, level: int) -> bytes:
        params = zstandard.ZstdCompressionParameters.from_level(
            level, threads=0, write_content_size=1, write_checksum=1, write_dict_id=0
        )
        text = self.texts[DICTIONARY_STREAMS.index(stream_id)]
        found = zstandard.ZstdCompressionDict(text, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdCompressor(dict_data=found, compression_params=params).compress(data)


def dictionary_text(streams: Sequence[bytes]) -> bytes:
    """A stream's dictionary: the same stream of each dictionary chunk, joined by newlines."""
    return b"\n".join(streams)


_SPACE_RUN = re.compile(b"[" + re.escape(RESIDUE_SPACES) + b"]+")
_LOWER_RUN = re.compile(rb"[a-z]+")


def residue_edit(written: bytes) -> tuple[bytes, bytes]:
    """(canonical residues, the edit that gives ``written`` back); the edit is ``b""`` when
    ``written`` is canonical already (upper case, no whitespace), as nearly all are.

    The edit (stream 11 in the module docstring): a varint count of
    lower-case runs, each a varint gap and length over the canonical residues;
    then a varint count of whitespace runs, each a varint gap (canonical
    residues since the previous run), a varint length and the bytes.
    """
    spaces = [(m.start(), m.group()) for m in _SPACE_RUN.finditer(written)]
    stripped = written.translate(None, RESIDUE_SPACES) if spaces else written
    lower = [(m.start(), m.end()) for m in _LOWER_RUN.finditer(stripped)]
    if not spaces and not lower:
        return written, b""
    out = bytearray(_varints([len(lower)]))
    at = 0
    for start, end in lower:
        out += _varints((start - at, end - start))
        at = end
    out += _varints([len(spaces)])
    removed = at = 0
    for start, run in spaces:
        position = start - removed  # where the run goes in the canonical residues
        out += _varints((position - at, len(run)))
        out += run
        at = position
        removed += len(run)
    return stripped.upper(), bytes(out)


def apply_residue_edit(residues: bytes, edit: bytes) -> bytes:
    """The residues as written: :func:`residue_edit` undone on a slot's canonical residues."""
    if not edit:
        return residues
    count, at = _read_varint(edit, 0)
    text = bytearray(residues)
    position = 0
    for _ in range(count):
        gap, at = _read_varint(edit, at)
        length, at = _read_varint(edit, at)
        position += gap
        if position + length > len(text):
            raise CompressionError("a residue edit runs past its sequence")
        text[position : position + length] = text[position : position + length].lower()
        position += length
    count, at = _read_varint(edit, at)
    if count:
        pieces: list[bytes | bytearray] = []
        position = taken = 0
        for _ in range(count):
            gap, at = _read_varint(edit, at)
            length, at = _read_varint(edit, at)
            position += gap
            if position > len(text) or at + length > len(edit):
                raise CompressionError("a residue edit runs past its sequence")
            pieces += (text[taken:position], edit[at : at + length])
            at += length
            taken = position
        pieces.append(text[taken:])
        text = bytearray(b"".join(pieces))
    if at != len(edit):
        raise CompressionError("a residue edit has trailing bytes")
    return bytes(text)


def _encode_refs(refs: Sequence[int], packs: int) -> bytes:
    """References (``pack << 32 | slot``) as the varint stream of the module docstring."""
    if refs and refs[-1] == len(refs) - 1 and list(refs) == list(range(len(refs))):
        return bytes(len(refs))  # the common case: every record has its own new slot
    out = bytearray()
    next_new = 0
    for ref in refs:
        if ref == next_new:  # pack 0, the next new slot
            out.append(0)
            next_new += 1
            continue
        pack = ref >> 32
        if pack >= packs:
            raise ValueError(f"reference to pack {pack} of a pack table of {packs}")
        out += _varints((pack + 1, ref & 0xFFFFFFFF))
    return bytes(out)


def encode_records(
    records: Sequence[SequenceRecord],
    taxids: Sequence[int] | None = None,
    codec: ChunkCodec = DEFAULT_CODEC,
) -> tuple[bytes, bytes]:
    """``records`` (all FASTA or all FASTQ) as (record chunk, its own pack), each distinct sequence once.

    The self-contained case: one chunk, one pack. The database import also
    points chunks at the packs of earlier chunks (see the module docstring).
    """
    count = len(records)
    if taxids is None:
        taxids = [0] * count
    if len(taxids) != count:
        raise ValueError(f"{len(taxids)} taxids for {count} records")
    fastq = bool(count) and isinstance(records[0], FastqRecord)
    if any(isinstance(r, FastqRecord) != fastq for r in records):
        raise ValueError("a chunk holds FASTA records or FASTQ records, not both")
    slots: dict[object, int] = {}
    refs: list[tuple[int, int]] = []
    edits: list[bytes] = []
    for record in records:
        if fastq:
            key: object = (record.residues, record.qualities)  # type: ignore[union-attr]
        else:
            key, edit = residue_edit(record.residues)
            edits.append(edit)
        refs.append((0, slots.setdefault(key, len(slots))))
    if fastq:
        pack = encode_pack([k[0] for k in slots], [k[1] for k in slots], codec)  # type: ignore[index]
    else:
        pack = encode_pack(list(slots), None, codec)  # type: ignore[arg-type]
    chunk = encode_chunk(
        [r.header for r in records],
        [r.layout for r in records],
        taxids,
        refs,
        [hashlib.sha256(pack).digest()],
        plus=[r.plus for r in records] if fastq else None,  # type: ignore[union-attr]
        codec=codec,
        edits=None if fastq else edits,
    )
    return chunk, pack


# --------------------------------------------------------------------------- decoding


class LRUCache:
    """A map that drops its least recently used entries once they hold more than ``budget`` bytes.

    Readers share one for decoded residue and quality blocks (see
    :class:`PackReader`), keyed by ``(owner, stream id, block index)``; the
    sequence database also keeps its open chunk and pack readers in one.
    Sizes are what the caller says an entry holds. An entry larger than the
    whole budget is not kept. Safe to share between threads.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        """The value of ``key`` (now the most recently used), or None."""
        # No lock: a look-up's hot path. Each OrderedDict call is atomic under the GIL; an
        # entry another thread drops in between is still returned, just not moved.
        found = self._entries.get(key)
        if found is None:
            return None
        try:
            self._entries.move_to_end(key)
        except KeyError:
            pass
        return found[0]

    def put(self, key: Hashable, value: object, size: int) -> None:
        """Keep ``value`` under ``key``, dropping the least recently used entries past the budget."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.budget:
                return
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.budget:
                self._bytes -= self._entries.popitem(last=False)[1][1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes held, as the callers counted them."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


_Decoded = bytes | _NucleotideBlock  # a decoded block: its bytes, or a nucleotide block still packed
_DECOMPRESSORS = threading.local()


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's zstd decompressor. Making one (and its first use) costs ~17 us: a cold
    look-up opens a reader per record chunk and pack, so readers share them (one per thread,
    as a decompressor must not be used by two threads at once)."""
    found: zstandard.ZstdDecompressor | None = getattr(_DECOMPRESSORS, "zstd", None)
    if found is None:
        found = _DECOMPRESSORS.zstd = zstandard.ZstdDecompressor()
    return found



@dataclass(frozen=True, slots=True)
class _Stream:
    blocks: tuple[tuple[int, int, int, int], ...]  # (encoding, raw, offset, stored) per block
    raw_starts: tuple[int, ...]  # raw offset of each block in the decoded stream


class _Container:
    """The stream table of a record chunk or sequence pack, and block decoding.

    Streams are decoded on first use and kept; residue and quality blocks
    are decoded one at a time, as the records asked for need them. They are
    kept in ``blocks``, an :class:`LRUCache` shared with other readers, under
    ``(owner, stream id, block index)`` -- ``owner`` names this object (its
    SHA-256) -- or, without one, in the reader itself (the last
    ``_BLOCKS_KEPT`` blocks, so reading slots in order decodes each block
    once).
    """

    def __init__(
        self,
        data: bytes,
        magic: bytes,
        version: int,
        what: str,
        *,
        blocks: LRUCache | None = None,
        owner: Hashable | None = None,
        oldest: int | None = None,
    ) -> None:
        if blocks is not None and owner is None:
            raise ValueError("a shared block cache needs an owner naming the object (its hash)")
        self._shared = blocks
        self._owner = owner
        self._what = what
        self._data = memoryview(data)
        try:
            found, found_version, kind, _, count, n_streams = _FIXED.unpack_from(data, 0)
        except struct.error as exc:
            raise CompressionError(f"{what} too short for its header") from exc
        if found != magic:
            raise CompressionError(f"not a {what} (magic {bytes(found)!r}, expected {magic!r})")
        if not (oldest or version) <= found_version <= version:
            if found_version < version:
                raise CompressionError(
                    f"{what} format {found_version} was written by a pre-release of talaria-storage "
                    f"and is no longer read (this version reads format {oldest or version} to {version}): "
                    "re-import the database"
                )
            raise CompressionError(
                f"{what} format {found_version} is newer than this talaria-storage reads "
                f"({version}): upgrade talaria-storage"
            )
        if kind not in (KIND_FASTA, KIND_FASTQ):
            raise CompressionError(f"unknown {what} kind {kind}")
        self.kind = kind
        self._count = count
        at = _FIXED.size
        entries: list[tuple[int, list[tuple[int, int, int]]]] = []
        try:
            for _ in range(n_streams):
                stream_id, n_blocks = _STREAM.unpack_from(data, at)
                at += _STREAM.size
                table = []
                for _ in range(n_blocks):
                    table.append(_BLOCK.unpack_from(data, at))
                    at += _BLOCK.size
                entries.append((stream_id, table))
        except struct.error as exc:
            raise CompressionError(f"{what} stream table is truncated") from exc
        self._streams: dict[int, _Stream] = {}
        offset = at
        for stream_id, table in entries:
            placed = []
            for encoding, raw, stored in table:
                placed.append((encoding, raw, offset, stored))
                offset += stored
            starts = tuple(accumulate([0] + [raw for _, raw, _ in table[:-1]])) if table else ()
            self._streams[stream_id] = _Stream(tuple(placed), starts)
        if offset != len(data):
            raise CompressionError(
                f"{what} payload is {len(data) - at} bytes, its stream table says {offset - at}"
            )
        self._cache: dict[int, object] = {}
        self._block_cache: dict[tuple[int, int], _Decoded] = {}

    def __len__(self) -> int:
        return self._count

    @property
    def fastq(self) -> bool:
        return self.kind == KIND_FASTQ

    def _name(self, stream_id: int) -> str:
        return _STREAM_NAMES.get(stream_id, f"stream {stream_id}")

    def _decoded(self, stream_id: int, index: int) -> _Decoded:
        """Block ``index`` of a stream, decoded as far as reading any range of it needs.

        That is its bytes, except for a packed nucleotide block: its codes are
        kept packed and unpacked per range asked for (:class:`_NucleotideBlock`).
        """
        shared = self._shared if stream_id in (RESIDUES, QUALITIES) else None
        key: Hashable = (stream_id, index) if shared is None else (self._owner, stream_id, index)
        cached = self._block_cache.get(key) if shared is None else shared.get(key)  # type: ignore[call-overload]
        if cached is not None:
            return cached  # type: ignore[return-value]
        encoding, raw, offset, stored = self._streams[stream_id].blocks[index]
        payload = self._data[offset : offset + stored]
        out: _Decoded
        try:
            if encoding == STORED:
                out = bytes(payload)
            elif encoding == ZSTD:
                out = _decompressor().decompress(payload)
            elif encoding in (NUC4, NUC2):
                out = _NucleotideBlock(_decompressor().decompress(payload), encoding, raw)
            elif encoding == ZSTD_DICT and stream_id in DICTIONARY_STREAMS:
                out = self._dictionary_decompressor(stream_id).decompress(payload)
            else:
                raise CompressionError(f"unknown block encoding {encoding} in {self._what}")
        except zstandard.ZstdError as exc:
            raise CompressionError(
                f"corrupt {self._name(stream_id)} block {index} in {self._what}: {exc}"
            ) from exc
        except CompressionError as exc:
            raise CompressionError(f"{self._name(stream_id)} block {index} in {self._what}: {exc}") from None
        decoded = len(out) if isinstance(out, bytes) else out.count
        if decoded != raw:
            raise CompressionError(
                f"{self._name(stream_id)} block {index} of a {self._what} decodes to {decoded} bytes, "
                f"expected {raw}"
            )
        if shared is not None:
            shared.put(key, out, len(out) if isinstance(out, bytes) else out.nbytes)
            return out
        if stream_id in (RESIDUES, QUALITIES):  # keep the last few blocks of a large stream
            held = [k for k in self._block_cache if k[0] == stream_id]
            for old in held[: max(0, len(held) - _BLOCKS_KEPT + 1)]:
                del self._block_cache[old]
        self._block_cache[key] = out  # type: ignore[index]
        return out

    def _dictionary_decompressor(self, stream_id: int) -> zstandard.ZstdDecompressor:
        raise CompressionError(f"a {self._what} has no dictionary")

    def _decode_block(self, stream_id: int, index: int) -> bytes:
        """Block ``index`` of a stream, as bytes."""
        block = self._decoded(stream_id, index)
        return block if isinstance(block, bytes) else block.slice(0, block.count)

    def _stream(self, stream_id: int) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise CompressionError(f"{self._what} has no {self._name(stream_id)} stream")
        return stream

    def _whole(self, stream_id: int) -> bytes:
        stream = self._stream(stream_id)
        return b"".join(self._decode_block(stream_id, i) for i in range(len(stream.blocks)))

    def _range(self, stream_id: int, start: int, end: int) -> bytes:
        """Bytes [start, end) of a blocked stream, decoding only the blocks they lie in
        (and of a packed nucleotide block, unpacking only the range)."""
        if start == end:
            return b""
        stream = self._stream(stream_id)
        if end > (stream.raw_starts[-1] + stream.blocks[-1][1] if stream.blocks else 0):
            raise CompressionError(f"{self._what} {self._name(stream_id)} stream is shorter than its lengths say")
        first = bisect_right(stream.raw_starts, start) - 1
        base = stream.raw_starts[first]
        if end - base <= stream.blocks[first][1]:  # the common case: one block
            block = self._decoded(stream_id, first)
            if isinstance(block, bytes):
                return block[start - base : end - base]
            return block.slice(start - base, end - base)
        last = bisect_right(stream.raw_starts, end - 1) - 1
        parts = []
        for i in range(first, last + 1):
            base = stream.raw_starts[i]
            lo, hi = max(start - base, 0), min(end - base, stream.blocks[i][1])
            block = self._decoded(stream_id, i)
            parts.append(block[lo:hi] if isinstance(block, bytes) else block.slice(lo, hi))
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _lines(self, stream_id: int) -> list[bytes]:
        cached = self._cache.get(stream_id)
        if cached is None:
            cached = self._whole(stream_id).split(b"\n") if self._count else []
            if len(cached) != self._count:
                raise CompressionError(
                    f"{self._what} {self._name(stream_id)} stream has {len(cached)} lines for "
                    f"{self._count} records"
                )
            self._cache[stream_id] = cached
        return cached  # type: ignore[return-value]

    def _u32(self, stream_id: int) -> array:
        cached = self._cache.get(stream_id)
        if cached is None:
            cached = _from_u32s(self._whole(stream_id))
            if len(cached) != self._count:
                raise CompressionError(
                    f"{self._what} {self._name(stream_id)} stream has {len(cached)} values for "
                    f"{self._count} entries"
                )
            self._cache[stream_id] = cached
        return cached  # type: ignore[return-value]


class PackReader(_Container):
    """Random access to the slots of one serialised sequence pack.

    ``blocks``: an :class:`LRUCache` for decoded residue and quality blocks,
    shared with the readers of other packs (``owner``: this pack's hash, its
    key there); without one the reader keeps its last few blocks itself.
    """

    def __init__(self, data: bytes, *, blocks: LRUCache | None = None, owner: Hashable | None = None) -> None:
        super().__init__(data, PACK_MAGIC, PACK_VERSION, "sequence pack", blocks=blocks, owner=owner)
        self._sequences: list[bytes] | None = None

    @property
    def nbytes(self) -> int:
        """Bytes this reader holds besides the shared block cache: the serialised pack, its offsets."""
        return len(self._data) + 16 * self._count

    def lengths(self) -> list[int]:
        return list(self._u32(LENGTHS))

    @property
    def residue_blocks(self) -> int:
        """How many blocks the residues are stored in."""
        return len(self._stream(RESIDUES).blocks) if RESIDUES in self._streams else 0

    def _offsets(self) -> array:
        cached = self._cache.get(-1)
        if cached is None:
            cached = array("Q", [0])
            cached.extend(accumulate(self._u32(LENGTHS)))
            self._cache[-1] = cached
        return cached  # type: ignore[return-value]

    def _slot(self, slot: int) -> tuple[int, int]:
        if not 0 <= slot < self._count:
            raise CompressionError(f"reference to slot {slot} of a sequence pack of {self._count}")
        offsets = self._offsets()
        return offsets[slot], offsets[slot + 1]

    def residues(self, slot: int, start: int = 0, end: int | None = None) -> bytes:
        """Residues ``[start:end]`` of ``slot`` (as written, case kept), decoding only their blocks.

        A 1 kb region of a chromosome costs one block, not the chromosome.
        """
        first, last = self._slot(slot)
        if start == 0 and end is None:
            return self._range(RESIDUES, first, last)
        begin, stop, _ = slice(start, end).indices(last - first)
        return self._range(RESIDUES, first + begin, first + max(begin, stop))

    def qualities(self, slot: int) -> bytes:
        if not self.fastq:
            raise ValueError("a FASTA sequence pack has no qualities")
        first, last = self._slot(slot)
        return self._range(QUALITIES, first, last)

    def sequences(self) -> list[bytes]:
        """Every slot's residues, decoding the residue stream once (kept for later calls)."""
        if self._sequences is None:
            self._sequences = self._split(RESIDUES)
        return self._sequences

    def all_qualities(self) -> list[bytes]:
        if not self.fastq:
            raise ValueError("a FASTA sequence pack has no qualities")
        return self._split(QUALITIES)

    def _split(self, stream_id: int) -> list[bytes]:
        offsets = self._offsets()
        data = self._whole(stream_id) if self._count else b""
        if len(data) != offsets[-1]:
            raise CompressionError(
                f"sequence pack {self._name(stream_id)} stream has {len(data)} bytes, its lengths say {offsets[-1]}"
            )
        return [data[offsets[i] : offsets[i + 1]] for i in range(self._count)]


class ChunkReader(_Container):
    """Random access to the records of one serialised record chunk.

    Residues come from the chunk's packs: methods that return records take
    the :class:`PackReader` of every pack table entry, in table order.
    """

    def __init__(self, data: bytes, dictionary: Callable[[list[SHA256Hash], int], bytes] | None = None) -> None:
        """``dictionary(chunks, stream id)`` gives the :func:`dictionary_text` of a stream of
        dictionary chunks, for a chunk compressed against them (the database reads them)."""
        super().__init__(data, CHUNK_MAGIC, CHUNK_VERSION, "sequence chunk", oldest=CHUNK_VERSION_PLAIN)
        self._dictionary = dictionary

    def dictionary_chunks(self) -> list[SHA256Hash]:
        """The record chunks whose headers this chunk's headers are compressed against (often none)."""
        if DICTIONARY not in self._streams:
            return []
        table = self._whole(DICTIONARY)[33:]
        if len(table) % 32 or not table:
            raise CompressionError(f"sequence chunk dictionary table is {len(table)} bytes, not a multiple of 32")
        return [SHA256Hash(table[i : i + 32]) for i in range(0, len(table), 32)]

    def plain_digest(self) -> bytes:
        """SHA-256 of this chunk as it would be stored standing alone (its own hash if it does)."""
        if DICTIONARY not in self._streams:
            return hashlib.sha256(self._data).digest()
        table = self._whole(DICTIONARY)
        if len(table) < 65:
            raise CompressionError(f"sequence chunk dictionary table is {len(table)} bytes, too short")
        return table[1:33]

    def dictionary_depth(self) -> int:
        """0 for a chunk that stands alone, else 1 + the deepest of its dictionary chunks."""
        if DICTIONARY not in self._streams:
            return 0
        depth = self._whole(DICTIONARY)[0]
        if not 1 <= depth <= MAX_DICTIONARY_DEPTH:
            raise CompressionError(f"sequence chunk claims a dictionary depth of {depth}")
        return depth

    def stream_size(self, stream_id: int) -> int:
        """Bytes of a stream once decoded (0 when the chunk has none), without decoding it."""
        stream = self._streams.get(stream_id)
        return sum(block[1] for block in stream.blocks) if stream is not None else 0

    def stream_text(self, stream_id: int) -> bytes:
        """A stream of ``DICTIONARY_STREAMS`` as stored, decoded (what a dictionary is made of)."""
        if stream_id not in DICTIONARY_STREAMS:
            raise ValueError(f"stream {stream_id} is not one a dictionary is made of")
        return self._whole(stream_id)

    def _dictionary_decompressor(self, stream_id: int) -> zstandard.ZstdDecompressor:
        if self._dictionary is None:
            raise CompressionError(
                "sequence chunk is compressed against earlier chunks: read it through its database"
            )
        text = self._dictionary(self.dictionary_chunks(), stream_id)
        found = zstandard.ZstdCompressionDict(text, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdDecompressor(dict_data=found)

    @property
    def nbytes(self) -> int:
        """About the bytes this reader holds once its small streams are decoded (for a cache's budget):
        the serialised chunk, the decoded streams and the per-record Python objects."""
        decoded = sum(b[1] for stream in self._streams.values() for b in stream.blocks)
        return len(self._data) + decoded + 100 * self._count

    # -- the chunk's own streams

    def header(self, index: int) -> bytes:
        """The header of record ``index`` (0 <= index < len)."""
        return self._lines(HEADERS)[index]

    def headers(self) -> list[bytes]:
        """Every header, without touching any residue."""
        return list(self._lines(HEADERS))

    def taxids(self) -> list[int]:
        return list(self._u32(TAXIDS))

    def layout(self, index: int) -> Layout:
        """The layout of record ``index`` (0 <= index < len), without building every record's."""
        table = self._cache.get(-5)
        if table is None:
            table = self._cache[-5] = _decode_layouts(self._whole(LAYOUT_TABLE))
        try:
            return table[self._u32(LAYOUT_INDEX)[index]]  # type: ignore[index]
        except IndexError:
            raise CompressionError("sequence chunk layout index points past its layout table") from None

    def layouts(self) -> list[Layout]:
        """Every record's layout."""
        cached = self._cache.get(-2)  # per record, unlike the stream's own cache entry
        if cached is None:
            table = _decode_layouts(self._whole(LAYOUT_TABLE))
            try:
                cached = [table[i] for i in self._u32(LAYOUT_INDEX)]
            except IndexError:
                raise CompressionError("sequence chunk layout index points past its layout table") from None
            self._cache[-2] = cached
        return cached  # type: ignore[return-value]

    def plus_lines(self) -> list[bytes]:
        if not self.fastq:
            raise ValueError("a FASTA chunk has no plus lines")
        return list(self._lines(PLUS))

    def pack_hashes(self) -> list[SHA256Hash]:
        """The pack table: the SHA-256 of every pack the records refer to."""
        cached = self._cache.get(PACK_TABLE)
        if cached is None:
            table = self._whole(PACK_TABLE)
            if len(table) % 32:
                raise CompressionError(f"sequence chunk pack table is {len(table)} bytes, not a multiple of 32")
            cached = [SHA256Hash(table[i : i + 32]) for i in range(0, len(table), 32)]
            self._cache[PACK_TABLE] = cached
        return list(cached)  # type: ignore[call-overload]

    def _pack_count(self) -> int:
        cached = self._cache.get(PACK_TABLE)
        return len(cached) if cached is not None else len(self.pack_hashes())  # type: ignore[arg-type]

    def _implicit_refs(self) -> bool:
        """True when record ``i`` is slot ``i`` of pack 0 for every ``i`` (the stream is all
        zeros): one record is then found without decoding every reference."""
        cached = self._cache.get(-3)
        if cached is None:
            data = self._whole(REFS)
            cached = len(data) == self._count and data.count(0) == len(data) and len(self.pack_hashes()) > 0
            self._cache[-3] = cached
        return bool(cached)

    def ref(self, index: int) -> tuple[int, int]:
        """``(pack table index, slot)`` of record ``index``'s residues (0 <= index < len).

        Decodes only the references that are not "the next new slot of pack
        0" (the few records whose sequence an earlier record or chunk already
        holds); every other record's slot follows from how many of those
        come before it. Building every record's pair (:meth:`refs`) cost a
        UniProt chunk ~1.5 ms, a whole cold look-up budget of 60 ms for 1,000
        over 18 chunks.
        """
        full = self._cache.get(REFS)
        if full is not None:
            return full[index]  # type: ignore[index, no-any-return]
        if self._implicit_refs():
            return 0, index
        table = self._cache.get(-4)
        if table is None:
            table = self._cache[-4] = _ref_exceptions(self._whole(REFS), self._count, len(self.pack_hashes()))
        records: array
        packs: array
        slots: array
        records, packs, slots = table  # type: ignore[misc]
        k = bisect_left(records, index)
        if k < len(records) and records[k] == index:
            return packs[k], slots[k]
        return 0, index - k

    def refs(self) -> list[tuple[int, int]]:
        """``(pack table index, slot)`` of every record's residues."""
        cached = self._cache.get(REFS)
        if cached is None:
            cached = _decode_refs(self._whole(REFS), self._count, len(self.pack_hashes()))
            self._cache[REFS] = cached
        return cached  # type: ignore[return-value]

    def edit(self, index: int) -> bytes:
        """Record ``index``'s residue edit (``b""``: its residues are its slot's, as stored)."""
        edits = self.edits()
        return edits[index] if edits is not None else b""

    def edits(self) -> list[bytes] | None:
        """Every record's residue edit, or None when the chunk has none (format 2)."""
        if EDITS not in self._streams:
            return None
        cached = self._cache.get(EDITS)
        if cached is None:
            data = self._whole(EDITS)
            edits: list[bytes] = []
            at = 0
            for _ in range(self._count):
                length, at = _read_varint(data, at)
                edits.append(data[at : at + length])
                at += length
            if at != len(data):
                raise CompressionError("sequence chunk residue edits do not match its record count")
            cached = self._cache[EDITS] = edits
        return cached  # type: ignore[return-value]

    # -- records (residues from the packs)

    def _check_packs(self, packs: Sequence[PackReader]) -> None:
        if len(packs) != len(self.pack_hashes()):
            raise ValueError(f"{len(packs)} packs given for a pack table of {len(self.pack_hashes())}")
        for pack in packs:
            if pack.fastq != self.fastq:
                raise CompressionError("a FASTQ chunk refers to a FASTA pack, or the other way round")

    def record(self, index: int, packs: Sequence[PackReader]) -> SequenceRecord:
        """Record ``index``, decoding only what it needs (one slot of one pack).

        Only the pack the record refers to is taken from ``packs`` (and
        checked), so ``packs`` may be a sequence that opens packs on access.
        """
        if not -self._count <= index < self._count:
            raise IndexError(f"record {index} of a chunk of {self._count}")
        index %= self._count
        if len(packs) != self._pack_count():
            raise ValueError(f"{len(packs)} packs given for a pack table of {self._pack_count()}")
        p, slot = self.ref(index)
        pack = packs[p]
        if pack.fastq != self.fastq:
            raise CompressionError("a FASTQ chunk refers to a FASTA pack, or the other way round")
        layout = self.layout(index)
        header = self._lines(HEADERS)[index]
        residues = apply_residue_edit(pack.residues(slot), self.edit(index))
        if self.fastq:
            return FastqRecord(header, residues, self._lines(PLUS)[index], pack.qualities(slot), layout)
        return FastaRecord(header, residues, layout)

    def records(self, packs: Sequence[PackReader]) -> list[SequenceRecord]:
        """Every record. Each residue block of a pack is decoded at most once: a pack the
        chunk refers to often is decoded whole, from others the slots are read in slot order."""
        self._check_packs(packs)
        refs = self.refs()
        wanted: list[set[int]] = [set() for _ in packs]
        for index, slot in refs:
            wanted[index].add(slot)
        found: list[dict[int, bytes] | list[bytes]] = []
        for reader, slots in zip(packs, wanted):
            if slots and max(slots) >= len(reader):
                raise CompressionError(f"reference to slot {max(slots)} of a sequence pack of {len(reader)}")
            if len(slots) >= reader.residue_blocks:
                found.append(reader.sequences())
            else:
                found.append({slot: reader.residues(slot) for slot in sorted(slots)})
        residues = [found[p][s] for p, s in refs]
        edits = self.edits()
        if edits is not None:
            residues = [apply_residue_edit(r, e) for r, e in zip(residues, edits)]
        headers = self._lines(HEADERS)
        layouts = self.layouts()
        if self.fastq:
            plus = self._lines(PLUS)
            return [
                FastqRecord(headers[i], residues[i], plus[i], packs[p].qualities(s), layouts[i])
                for i, (p, s) in enumerate(refs)
            ]
        return [FastaRecord(h, r, layout) for h, r, layout in zip(headers, residues, layouts)]


_NONZERO = re.compile(rb"[^\x00]")
# One reference that is not a zero byte: a varint pack index (>= 1, so its first byte is not 0),
# then a varint slot. It cannot start at a zero byte, so scanning a zero run is linear.
_REF_ENTRY = re.compile(rb"((?:[\x80-\xff]+[\x00-\x7f]|[\x01-\x7f]))([\x80-\xff]*[\x00-\x7f])")


def _varint_value(data: bytes) -> int:
    """The value of one whole varint."""
    value = 0
    for shift, byte in enumerate(data):
        value |= (byte & 0x7F) << (7 * shift)
    return value


def _ref_exceptions(data: bytes, count: int, packs: int) -> tuple[array, array, array]:
    """The references stream reduced to its explicit entries: (record indexes, pack indexes, slots).

    Every other record is a zero byte, "the next new slot of pack 0": record
    ``i`` then has slot ``i - (explicit entries before it)``. The regex
    engine consumes the zero runs, so the Python work is per explicit entry.
    """
    parts = _REF_ENTRY.split(data)  # zero run, pack, slot, zero run, pack, slot, ..., zero run
    gaps, pack_bytes, slot_bytes = parts[0::3], parts[1::3], parts[2::3]
    zeros = [len(gap) for gap in gaps]
    if b"".join(gaps).count(0) != sum(zeros):  # the split keeps what is not an entry: it must be zeros
        raise CompressionError("sequence chunk references stream is corrupt (truncated varint)")
    records = array("I", [at + k for k, at in enumerate(accumulate(zeros[:-1]))])
    pack_of = array("I", [b[0] - 1 if len(b) == 1 else _varint_value(b) - 1 for b in pack_bytes])
    slots = [
        b[0] if len(b) == 1 else (b[0] & 0x7F) | b[1] << 7 if len(b) == 2 else _varint_value(b)
        for b in slot_bytes
    ]
    if pack_of and max(pack_of) >= packs:
        raise CompressionError(f"sequence chunk refers past its pack table of {packs}")
    try:
        slot_of = array("I", slots)
    except OverflowError:
        raise CompressionError(f"sequence chunk refers to slot {max(slots)}") from None
    total = sum(zeros) + len(slots)
    if total != count:
        raise CompressionError(f"sequence chunk has {total} references for {count} records")
    if count and packs == 0:
        raise CompressionError("sequence chunk has records but an empty pack table")
    return records, pack_of, slot_of


def _decode_refs(data: bytes, count: int, packs: int) -> list[tuple[int, int]]:
    """The references stream; runs of zeros (new slots of pack 0) are expanded in bulk."""
    refs: list[tuple[int, int]] = []
    next_new = 0
    at = 0
    while at < len(data):
        found = _NONZERO.search(data, at)
        zeros = (found.start() if found else len(data)) - at
        if zeros:
            refs.extend(zip(repeat(0), range(next_new, next_new + zeros)))
            next_new += zeros
            at += zeros
            continue
        pack, at = _read_varint(data, at)
        slot, at = _read_varint(data, at)
        if pack > packs:
            raise CompressionError(f"sequence chunk refers past its pack table of {packs}")
        refs.append((pack - 1, slot))
    if len(refs) != count:
        raise CompressionError(f"sequence chunk has {len(refs)} references for {count} records")
    if refs and packs == 0:
        raise CompressionError("sequence chunk has records but an empty pack table")
    return refs


def decode_records(chunk: bytes, *packs: bytes) -> tuple[list[SequenceRecord], list[int]]:
    """All records of a chunk and their taxids, given the bytes of the packs it refers to."""
    reader = ChunkReader(chunk)
    by_hash = {hashlib.sha256(p).digest(): p for p in packs}
    readers = []
    for h in reader.pack_hashes():
        data = by_hash.get(h.digest)
        if data is None:
            raise CompressionError(f"sequence pack {h.to_hex()} of the chunk is not among those given")
        readers.append(PackReader(data))
    return reader.records(readers), reader.taxids()
