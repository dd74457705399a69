"""The container both stored sequence objects use: a table of streams, each a list of compressed blocks.

Two kinds of object share it: the record chunk (:mod:`~talaria_storage.sequences.record_chunk`)
and the sequence pack (:mod:`~talaria_storage.sequences.sequence_pack`).

Container (both objects; integers little-endian)::

    magic        4 bytes  b"TSQC" record chunk, b"TSQP" sequence pack
    version      u8       2 or 3 (record chunk), 1 (sequence pack)
    kind         u8       0 = FASTA, 1 = FASTQ
    reserved     u16      0
    count        u32      records (chunk) or slots (pack)
    streams      u8       number of stream entries that follow
    stream entry, repeated:
      id         u8       the stream (each object's module lists its streams)
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

Integrity: every zstd block carries its content checksum (4 bytes), so a
block read on its own -- from a byte range of a stored object, which the
chunk store's SHA-256 cannot cover -- is still verified. A bad block is a
:class:`CompressionError`, never wrong residues. A reference to a slot a
pack does not have is one too.

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

import struct
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from itertools import accumulate

import zstandard

from talaria_storage.core.errors import CompressionError, ConfigError
from talaria_storage.sequences.nucleotide_blocks import NUC16, NucleotideBlock, nucleotide_payload
from talaria_storage.sequences.varints import from_u32s
from talaria_storage.storage.chunk_ranges import ChunkRanges
from talaria_storage.storage.codecs import DEFAULT_ZSTD_LEVEL, ZSTD_MAX_LEVEL, ZSTD_MIN_LEVEL

KIND_FASTA = 0
KIND_FASTQ = 1

HEADERS, LENGTHS, LAYOUT_TABLE, LAYOUT_INDEX, TAXIDS, RESIDUES, PLUS, QUALITIES = range(1, 9)
PACK_TABLE, REFS, EDITS, DICTIONARY, SLOT_ORDER = 9, 10, 11, 12, 13
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
    SLOT_ORDER: "slot order",
}
# Streams that may be compressed against the same streams of earlier chunks (block encoding 4;
# which chunks, a record chunk's stream 12 says: see talaria_storage.sequences.record_chunk).
DICTIONARY_STREAMS = (HEADERS, REFS)

_BLOCKS_KEPT = 4  # decoded residue (quality) blocks a reader keeps: random look-ups in one pack
_FIXED = struct.Struct("<4sBBHIB")
_STREAM = struct.Struct("<BI")
_BLOCK = struct.Struct("<BII")


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
    single-record read cheaper. ``protein_block_size`` caps it for residues
    that are not nucleotides: protein text has no long repeats for large
    blocks to find (uniprot15's residues in 64 KiB blocks are 1.2 % larger
    than in 1 MiB ones), and a look-up that reads one block by range from a
    remote store then reads ~8 KB, not ~500 KB
    (:mod:`talaria_storage.storage.chunk_ranges`). 16 KiB, not 64: 1,000
    cold look-ups on uniprot15 decoded ~560 blocks of 64 KiB (36 MB) for
    ~0.35 MB of residues, and zstd's decoding was a third of the pass's
    instructions (callgrind: the pass takes 651 M at 16 KiB against 744 M;
    8 KiB gives 619 M); the store grows 0.3 % (8 KiB: 0.65 %). In time the
    gain is smaller than in instructions: a checksummed block of
    protein-like text decodes in 14-19 us at 16 KiB and 27-34 us at 64 KiB
    (best of 7, three runs), so ~850 blocks take ~13 ms where ~560 took
    ~16; a remote look-up reads 12 % fewer bytes. ``long_distance`` turns on zstd's long
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
    protein_block_size: int = 1 << 14
    pack_nucleotides: bool = True
    long_distance: bool = False
    nucleotide_level: int = 3
    redundant_level: int = 17

    def __post_init__(self) -> None:
        for name in ("level", "meta_level", "nucleotide_level", "redundant_level"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 22:
                raise ConfigError(f"chunk codec {name} must be an integer 1..22, got {value!r}")
        for name in ("block_size", "protein_block_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 4096 <= value <= 1 << 30:
                raise ConfigError(f"chunk codec {name} must be 4096..2**30 bytes, got {value!r}")

    def to_dict(self) -> dict[str, object]:
        return {
            "name": "tsqc2",
            "level": self.level,
            "meta_level": self.meta_level,
            "block_size": self.block_size,
            "protein_block_size": self.protein_block_size,
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
            "protein_block_size",
            "pack_nucleotides",
            "long_distance",
            "nucleotide_level",
            "redundant_level",
        }
        if unknown:
            raise ConfigError(f"unknown chunk codec keys {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k != "name"})  # type: ignore[arg-type]


class Compressors:
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


def _not_nucleotides(data: bytes) -> bool:
    """Protein (or spaces, '*', ...): a sample tells at once, sparing a pass over the data."""
    return bool(data[:4096].upper().translate(None, NUC16))


def encode_block(
    data: bytes,
    level: int,
    compressors: Compressors,
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
    if not nucleotides or _not_nucleotides(data):
        return ZSTD, len(data), compressors.compress(data, level)
    upper = data.upper()
    if upper.translate(None, NUC16):
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
    payload = nucleotide_payload(data, upper, bits)
    if payload is None:
        bits, payload = 4, nucleotide_payload(data, upper, 4)
    packed = compressors.compress(payload, nucleotide_level)  # type: ignore[arg-type]
    if len(packed) < len(raw):
        return (NUC4 if bits == 4 else NUC2), len(data), packed
    return ZSTD, len(data), raw



DEFAULT_CODEC = ChunkCodec()


def configured_codec(compression: str, level: int | None) -> ChunkCodec:
    """The sequence codec ``[storage] compression`` and ``compression_level`` ask for.

    Record chunks and sequence packs compress themselves, stream by stream
    (their frames are codec ``none``), with levels chosen by measurement for
    each kind of stream (see :class:`ChunkCodec`: residues 2, headers and
    small streams 9, nucleotides 3, redundant gene sets 17). Those are the
    levels at the default ``compression_level`` (3); another level moves
    every one of them by the same step, clamped to zstd's 1-22, so level 1
    imports faster and larger, level 19 slower and smaller, and the streams
    keep their measured order. The streams hold zstd blocks only, so
    ``compression = "lz4"``, ``"snappy"`` or ``"none"`` cannot apply inside
    them: the sequence codec overrides it with its default levels (the
    other objects -- manifests, reduction and taxonomy objects -- use the
    configured codec), and ``stats`` shows the levels each version used.
    """
    if compression != "zstd" or level is None:
        return ChunkCodec()
    step = level - DEFAULT_ZSTD_LEVEL
    if step == 0:
        return ChunkCodec()
    base = ChunkCodec()

    def moved(value: int) -> int:
        return max(ZSTD_MIN_LEVEL, min(ZSTD_MAX_LEVEL, value + step))

    return ChunkCodec(
        level=moved(base.level),
        meta_level=moved(base.meta_level),
        block_size=base.block_size,
        protein_block_size=base.protein_block_size,
        pack_nucleotides=base.pack_nucleotides,
        long_distance=base.long_distance,
        nucleotide_level=moved(base.nucleotide_level),
        redundant_level=moved(base.redundant_level),
    )


Blocks = list[tuple[int, int, bytes]]  # (encoding, raw size, stored bytes) per block


def encode_blocked(
    data: bytes, codec: ChunkCodec, compressors: Compressors, nucleotides: bool, *, residues: bool = False
) -> Blocks:
    """A residue or quality stream cut into ``codec.block_size`` blocks (none when empty); residues
    whose first letters are not nucleotides in ``codec.protein_block_size`` blocks, if smaller."""
    size = codec.block_size
    if residues and _not_nucleotides(data):
        size = min(size, codec.protein_block_size)
    return [
        encode_block(
            data[at : at + size], codec.level, compressors, nucleotides, codec.nucleotide_level,
            codec.redundant_level,
        )
        for at in range(0, len(data), size)
    ]



def encode_container(magic: bytes, version: int, kind: int, count: int, entries: list[tuple[int, Blocks]]) -> bytes:
    head = [_FIXED.pack(magic, version, kind, 0, count, len(entries))]
    payload: list[bytes] = []
    for stream_id, blocks in entries:
        head.append(_STREAM.pack(stream_id, len(blocks)))
        for encoding, raw, stored in blocks:
            head.append(_BLOCK.pack(encoding, raw, len(stored)))
            payload.append(stored)
    return b"".join(head + payload)


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
        entries = self._entries
        found = entries.get(key)
        if found is None:
            return None
        try:
            entries.move_to_end(key)
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


Decoded = bytes | NucleotideBlock  # a decoded block: its bytes, or a nucleotide block still packed
_DECOMPRESSORS = threading.local()


def decompressor() -> zstandard.ZstdDecompressor:
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


def _stream_table(head: bytes | memoryview, n_streams: int) -> tuple[int, list[tuple[int, list[tuple[int, int, int]]]]]:
    """Where the payload starts, and per stream its id and its blocks' (encoding, raw, stored);
    :class:`struct.error` when ``head`` ends inside the table."""
    at = _FIXED.size
    entries: list[tuple[int, list[tuple[int, int, int]]]] = []
    for _ in range(n_streams):
        stream_id, n_blocks = _STREAM.unpack_from(head, at)
        at += _STREAM.size
        table = []
        for _ in range(n_blocks):
            table.append(_BLOCK.unpack_from(head, at))
            at += _BLOCK.size
        entries.append((stream_id, table))
    return at, entries


class Container:
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
        data: bytes | ChunkRanges,
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
        # A container read by ranges (a large pack of a remote store) holds its stream table;
        # its blocks are read as they are decoded (storage.chunk_ranges).
        if isinstance(data, ChunkRanges):
            self._ranges: ChunkRanges | None = data
            self._data = memoryview(data.head)
            size = data.size
        else:
            self._ranges = None
            self._data = memoryview(data)
            size = len(data)
        head = self._data
        try:
            found, found_version, kind, _, count, n_streams = _FIXED.unpack_from(head, 0)
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
        #: A FASTQ container (a plain attribute: a look-up asks three times per record).
        self.fastq = kind == KIND_FASTQ
        self._count = count
        while True:
            try:
                at, entries = _stream_table(head, n_streams)
                break
            except struct.error as exc:
                if self._ranges is None or len(head) >= size:
                    raise CompressionError(f"{what} stream table is truncated") from exc
                # A stream table longer than the first read (a pack of thousands of blocks).
                head = memoryview(self._ranges.read(0, min(size, 4 * len(head))))
        self._streams: dict[int, _Stream] = {}
        offset = at
        for stream_id, table in entries:
            placed = []
            for encoding, raw, stored in table:
                placed.append((encoding, raw, offset, stored))
                offset += stored
            starts = tuple(accumulate([0] + [raw for _, raw, _ in table[:-1]])) if table else ()
            self._streams[stream_id] = _Stream(tuple(placed), starts)
        if offset != size:
            raise CompressionError(
                f"{what} payload is {size - at} bytes, its stream table says {offset - at}"
            )
        self._cache: dict[int, object] = {}
        self._block_cache: dict[tuple[int, int], Decoded] = {}

    def __len__(self) -> int:
        return self._count

    @property
    def object_bytes(self) -> int:
        """Bytes of the serialised object: what this reader holds, at most (one read by ranges
        holds less until it reads the rest whole)."""
        return len(self._data) if self._ranges is None else self._ranges.size

    def _name(self, stream_id: int) -> str:
        return _STREAM_NAMES.get(stream_id, f"stream {stream_id}")

    def _decoded(self, stream_id: int, index: int) -> Decoded:
        """Block ``index`` of a stream, decoded as far as reading any range of it needs.

        That is its bytes, except for a packed nucleotide block: its codes are
        kept packed and unpacked per range asked for (:class:`NucleotideBlock`).
        """
        shared = self._shared if stream_id in (RESIDUES, QUALITIES) else None
        key: Hashable = (stream_id, index) if shared is None else (self._owner, stream_id, index)
        cached = self._block_cache.get(key) if shared is None else shared.get(key)  # type: ignore[call-overload]
        if cached is not None:
            return cached  # type: ignore[return-value]
        encoding, raw, offset, stored = self._streams[stream_id].blocks[index]
        if self._ranges is None:
            payload: bytes | memoryview = self._data[offset : offset + stored]
        else:
            payload = self._ranges.read(offset, offset + stored)
        out: Decoded
        try:
            if encoding == STORED:
                out = bytes(payload)
            elif encoding == ZSTD:
                out = decompressor().decompress(payload)
            elif encoding in (NUC4, NUC2):
                out = NucleotideBlock(decompressor().decompress(payload), 4 if encoding == NUC4 else 2, raw)
            elif encoding == ZSTD_DICT and stream_id in DICTIONARY_STREAMS:
                out = self._dictionary_decompressor(stream_id).decompress(payload)
            else:
                raise CompressionError(f"unknown block encoding {encoding} in {self._what}")
        except zstandard.ZstdError as exc:
            self._discard()
            raise CompressionError(
                f"corrupt {self._name(stream_id)} block {index} in {self._what}: {exc}"
            ) from exc
        except CompressionError as exc:
            self._discard()
            raise CompressionError(f"{self._name(stream_id)} block {index} in {self._what}: {exc}") from None
        decoded = len(out) if isinstance(out, bytes) else out.count
        if decoded != raw:
            self._discard()
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

    def _discard(self) -> None:
        """A block failed its check: a cached copy of its byte range is not served again (a
        container read whole was checked by the chunk store's SHA-256 already)."""
        if self._ranges is not None:
            self._ranges.discard()

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
        if self._ranges is not None and len(stream.blocks) > 1:
            # All of a large stream (an export, a repack): one read of the whole object, hashed.
            self._data = memoryview(self._ranges.whole())
            self._ranges = None
        return b"".join(self._decode_block(stream_id, i) for i in range(len(stream.blocks)))

    def _range(self, stream_id: int, start: int, end: int) -> bytes:
        """Bytes [start, end) of a blocked stream, decoding only the blocks they lie in
        (and of a packed nucleotide block, unpacking only the range)."""
        if start == end:
            return b""
        stream = self._streams.get(stream_id) or self._stream(stream_id)
        if end > (stream.raw_starts[-1] + stream.blocks[-1][1] if stream.blocks else 0):
            raise CompressionError(f"{self._what} {self._name(stream_id)} stream is shorter than its lengths say")
        first = bisect_right(stream.raw_starts, start) - 1
        base = stream.raw_starts[first]
        if end - base <= stream.blocks[first][1]:  # the common case: one block
            shared = self._shared
            block = shared.get((self._owner, stream_id, first)) if shared is not None else None  # a warm look-up
            if block is None:
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
            cached = from_u32s(self._whole(stream_id))
            if len(cached) != self._count:
                raise CompressionError(
                    f"{self._what} {self._name(stream_id)} stream has {len(cached)} values for "
                    f"{self._count} entries"
                )
            self._cache[stream_id] = cached
        return cached  # type: ignore[return-value]
