"""How input files become stored objects: parse, label, chunk, pack sequences, encode, store.

One import (:meth:`SequenceDatabase.import_files`) runs one :class:`ImportRun`
over its files in order. Per file:

1. **Parse** -- the decompressed input is cut into pieces at record
   boundaries; each piece is parsed, every record gets its canonical
   sequence hash, its dedup key and (for ``OX=`` headers) its taxon. This is
   most of the CPU work of an import, and pieces are independent, so with a
   process pool it runs in the workers, several pieces in flight, while the
   main process only decompresses (in a background thread) and cuts.
   FASTQ, and every input when there is no pool, is parsed in the main
   process.
2. **Chunk** -- records go through :class:`TaxonChunker` in input order, in
   the main process (its decisions depend on everything before them). A
   plain FASTA file larger than ``SEGMENT_BYTES`` is chunked in segments
   (:func:`~talaria_storage.formats.fasta.segment_starts`): a new chunker at
   the first record past each 256 MB, so that a byte range of segments can
   be imported on its own (a Dask shard, :mod:`.sharded_import`) into the
   objects the whole file gives. It also bounds the chunker's buffer per
   file. Files up to 256 MB are one segment.
3. **Pack** -- for each chunk, in the order the chunker emits them,
   :class:`SequencePacker` decides where each record's residues live: a
   residue string met for the first time takes the next slot of the chunk's
   own pack; one met before refers to the slot that already holds it, in
   this chunk's pack or an earlier chunk's; one that a live version of the
   store already holds (:class:`~.stored_sequences.StoredSequences`, asked once per chunk in
   one batched index read) refers to that version's pack. The order is the
   chunker's, which depends only on the input, so the objects depend only
   on the input and on the sequences the store held when the import began.
   Dedup keys of this import are remembered for a window of recently seen
   sequences (two generations of ``window`` keys, ~120 bytes each), which
   bounds memory on inputs of any size at the price of storing a sequence
   again when its previous occurrence in the same import is very far back.
   Each new pack's keys are added to the store-wide map as it is encoded.
4. **Encode** -- each chunk's pack and record chunk
   (:mod:`talaria_storage.sequences.record_chunk`) are serialised in the
   pool; a chunk that refers to an earlier chunk's pack waits for that
   pack's hash.
5. **Store** -- objects are written from a thread pool (backends block on
   I/O); every object is in the store before the manifest that names it is
   published. The per-file record order (:class:`OrderBuilder`) is built
   as chunks are placed, and stored at the end of the file. Each stored
   object is recorded in the import's processing state (one small write per
   chunk, :mod:`talaria_storage.storage.processing`): a killed import leaves that
   state, which keeps its objects from GC, and its re-run skips them.

Bounded memory: a few pieces and chunks are in flight at a time (encoded
objects waiting for a slow backend hold the import back instead of piling
up), the chunker buffers at most its memory budget (then spills), the dedup
window is fixed, and the record order costs a few integers per run. A 1 GB
FASTA imports in a few hundred MB; figures in ``benchmarks/README.md``.

Why processes and not threads: on UniProt proteomes the profile is parse
and per-record bookkeeping (Python, holding the GIL) and zstd (which
releases it); threads gave about one core of work on two. CPU per 51 MB
of UniProt (cProfile and ``resource``): decompression 0.25 s (a thread of
the main process), parse 0.6 s, hashing and labelling 0.35 s, encoding
0.65 s (workers), chunking and packing 0.6 s (main), pickling 0.3 s.
Workers receive and return columns (newline-joined ``bytes`` and arrays),
never record objects: pickling 82,814 records as named tuples took 0.68 s,
as three lists 0.10 s, as joined bytes a few milliseconds.
Workers are forked (on Linux) when the pool starts, before this import
starts any thread of its own: a fork costs ~0.03 s where ``forkserver``
costs 0.65 s and ``spawn`` 1.1 s (measured here), which would be most of a
50 MB import. Small inputs (under ``POOL_THRESHOLD`` bytes on disk) are
imported without a pool. Both paths give the same bytes.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import itertools
import multiprocessing
import os
import re
import sys
import threading
from array import array
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from talaria_storage.core.errors import InputFormatError
from talaria_storage.core.forking import freeze_inherited_objects
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.lazy_module import LazyModule
from talaria_storage.formats.fasta import (
    FastqRecord,
    Layout,
    SequenceRecord,
    _complete_blocks,
    open_input,
    read_fasta,
    read_fastq,
    segment_starts,
    sniff_format,
)
from talaria_storage.formats.genbank import Flavour, read_flatfile, to_stored
from talaria_storage.sequences.canonical import canonical, is_canonical, sequence_keys
from talaria_storage.sequences.chunking import (
    ChunkingPolicy,
    PlannedChunk,
    TaxonChunker,
    hash_prefix,
)
from talaria_storage.sequences.identifiers import record_fingerprints
from talaria_storage.sequences.manifest import ChunkEntry, SourceFile
from talaria_storage.sequences.order import OrderBuilder, encode_order
from talaria_storage.sequences.record_chunk import (
    MAX_DICTIONARY_DEPTH,
    ChunkDictionary,
    dictionary_text,
    plain_chunk,
    residue_edit,
)
from talaria_storage.sequences.sequence_pack import encode_pack_joined
from talaria_storage.sequences.streams import ChunkCodec
from talaria_storage.sequences.taxonomy import taxon_from_header

if TYPE_CHECKING:
    import numpy as np

    from talaria_storage.sequences.stored_sequences import StoredSequences
    from talaria_storage.storage.store import Store
else:
    np = LazyModule("numpy")  # imported on first use: a look-up never needs it (core.lazy_module)

POOL_THRESHOLD = 2 << 20  # bytes of input on disk from which a process pool pays off
PIECE_SIZE = 2 << 20  # decompressed bytes per parse task
#: A plain FASTA file is chunked in segments of about this many bytes (see the module docstring).
#: Changing it changes the objects an import of a larger file writes.
SEGMENT_BYTES = 256 << 20
DEDUP_WINDOW = 1 << 17  # dedup keys per generation (two generations are kept)
REUSED = 1 << 31  # first pack ordinal of packs reused from earlier versions (see SequencePacker)

Labeller = Callable[[bytes], int]


# --------------------------------------------------------------------------- parsing


class Parsed(NamedTuple):
    """Parsed records of one piece, as columns: a few large ``bytes`` pickle far faster
    than lists of small ones (see the module docstring)."""

    records: int
    headers: bytes  # joined by newlines (no header contains one)
    residues: bytes  # joined by newlines (no residues contain one)
    layouts: list[Layout]
    taxids: array | None  # None: the main process labels them (mapping files stay there)
    prefixes: array  # per record, hash_prefix of its canonical sequence SHA-256 (for the chunker)
    keys: bytes  # dedup key per record (see sequence_keys), 16 bytes each
    plus: bytes | None = None  # FASTQ only, joined by newlines
    qualities: bytes | None = None
    # The look-up table's keys (identifiers.record_fingerprints), every record's in turn, and
    # how many each record has.
    lookup: array | None = None
    lookup_counts: array | None = None


def describe(
    records: list[SequenceRecord], label: Labeller | None, declared: re.Pattern[bytes] | None = None
) -> Parsed:
    """The columns of parsed records (digests, keys, and taxids when ``label`` is given);
    ``declared``: the ``--id-regex`` whose matches are look-up keys too."""
    fastq = bool(records) and isinstance(records[0], FastqRecord)
    prefixes = array("Q")
    keys: list[bytes] = []
    lookup = array("Q")
    counts = array("I")
    if fastq:
        for record in records:
            digest, key = sequence_keys(record.residues, record.qualities)  # type: ignore[union-attr]
            prefixes.append(hash_prefix(digest))
            keys.append(key)
            found = record_fingerprints(record.header, canonical(record.residues), digest, declared)
            lookup.extend(found)
            counts.append(len(found))
    else:
        # sequence_keys inlined for the common case (canonical residues): a fifth of a worker's time
        sha256 = hashlib.sha256
        from_bytes = int.from_bytes
        for record in records:
            residues = record.residues
            if residues.isupper() and 0x20 not in residues and 0x09 not in residues:  # by value: see identifiers
                digest = sha256(residues).digest()
                key = digest[:16]
            else:
                digest, key = sequence_keys(residues)
                residues = canonical(residues)
            prefixes.append(from_bytes(digest[:8], "big"))
            keys.append(key)
            found = record_fingerprints(record.header, residues, digest, declared)
            lookup.extend(found)
            counts.append(len(found))
    return Parsed(
        len(records),
        b"\n".join([r.header for r in records]),
        b"\n".join([r.residues for r in records]),
        [r.layout for r in records],
        array("I", [label(r.header) for r in records]) if label is not None else None,
        prefixes,
        b"".join(keys),
        b"\n".join([r.plus for r in records]) if fastq else None,  # type: ignore[union-attr]
        b"\n".join([r.qualities for r in records]) if fastq else None,  # type: ignore[union-attr]
        lookup,
        counts,
    )


class ParseFailure(NamedTuple):
    """An InputFormatError raised in a worker, as data (its constructor does not unpickle)."""

    line: int | None
    problem: str


def header_labeller(fallback: int) -> Labeller:
    """Taxon from the header's ``OX=``, else ``fallback``."""

    def label(header: bytes) -> int:
        found = taxon_from_header(header)
        return found if found is not None else fallback

    return label


def parse_fasta_piece(
    path: str, piece: bytes, first_line: int, header_taxa: bool, fallback: int, alphabet: str = "iupac",
    declared: re.Pattern[bytes] | None = None,
) -> Parsed | ParseFailure:
    """Worker task: parse one piece of FASTA text (whole records) into columns."""
    try:
        records: list[SequenceRecord] = list(read_fasta(io.BytesIO(piece), name=path, alphabet=alphabet))
    except InputFormatError as exc:
        line = exc.line + first_line - 1 if exc.line is not None else None
        return ParseFailure(line, exc.problem)
    return describe(records, header_labeller(fallback) if header_taxa else None, declared)


# --------------------------------------------------------------------------- packing


class SequencePacker:
    """Decides which pack slot holds each record's residues; see the module docstring.

    Locations are ints, ``pack ordinal << 32 | slot``. Ordinals below
    ``REUSED`` count the packs of this import in chunk order; from
    ``REUSED`` up they number the packs of earlier versions that ``stored``
    says already hold a sequence (:mod:`talaria_storage.sequences.stored_sequences`),
    in order of first use.
    """

    def __init__(self, window: int = DEDUP_WINDOW, stored: StoredSequences | None = None) -> None:
        self._window = window
        self._stored = stored
        self._current: dict[bytes, int] = {}
        self._previous: dict[bytes, int] = {}
        self.packs = 0  # packs assigned so far
        self._reused: dict[bytes, int] = {}  # reused pack digest -> its ordinal
        self.reused: list[bytes] = []  # reused pack digests, in order of first use

    def assign(self, keys: Sequence[bytes]) -> tuple[int | None, list[int], list[int]]:
        """(own pack ordinal or None when every sequence is known, new record indexes, locations)."""
        own = self.packs
        new: list[int] = []
        locations: list[int] = []
        current, previous = self._current, self._previous
        found = self._in_store(keys)
        for index, key in enumerate(keys):
            location = current.get(key)
            if location is None:
                location = previous.get(key)
                if location is None:
                    hit = found.get(key)
                    if hit is not None:
                        location = self._reused_ordinal(hit[0]) << 32 | hit[1]
                    else:
                        location = own << 32 | len(new)
                        new.append(index)
                current[key] = location  # a key seen again moves to the newer generation
                if len(current) >= self._window:
                    self._previous = previous = current
                    self._current = current = {}
            locations.append(location)
        if not new:
            return None, new, locations
        self.packs += 1
        return own, new, locations

    def window(self) -> tuple[dict[bytes, int], dict[bytes, int]]:
        """The dedup window: (newer, older generation), key -> location."""
        return self._current, self._previous

    def resume(
        self, packs: int, current: dict[bytes, int], previous: dict[bytes, int], reused: list[bytes]
    ) -> None:
        """Continue where another packer of this import left off (its :meth:`window`, counts, reuse)."""
        self.packs, self._current, self._previous = packs, current, previous
        self.reused = reused
        self._reused = {digest: REUSED + i for i, digest in enumerate(reused)}

    def _in_store(self, keys: Sequence[bytes]) -> dict[bytes, tuple[bytes, int]]:
        """Where earlier versions hold the keys this import has not met (one batched index read)."""
        if self._stored is None or not self._stored.live:
            return {}
        current, previous = self._current, self._previous
        return self._stored.find([k for k in keys if k not in current and k not in previous])

    def _reused_ordinal(self, digest: bytes) -> int:
        ordinal = self._reused.get(digest)
        if ordinal is None:
            ordinal = self._reused[digest] = REUSED + len(self.reused)
            self.reused.append(digest)
        return ordinal


# --------------------------------------------------------------------------- encoding


class EncodeTask(NamedTuple):
    """Everything a worker needs to serialise one chunk and its own pack, as columns."""

    records: int
    headers: bytes  # joined by newlines
    layouts: list[Layout]
    taxids: array
    refs: array  # pack table index << 32 | slot; index 0 is the own pack when there is one
    residues: bytes  # the own pack's slots, concatenated (no own pack: no lengths)
    lengths: array
    qualities: bytes | None
    plus: bytes | None  # joined by newlines
    foreign: list[bytes]  # the pack table after the own pack: earlier chunks' pack hashes
    codec: ChunkCodec
    edits: list[bytes] | None = None  # per record, residues as written from canonical (FASTA)
    dictionary: ChunkDictionary | None = None  # earlier chunks its headers may compress against
    # The previous version's chunks by the hash each would have standing alone: an unchanged
    # chunk is then that chunk again, not a new object compressed against it.
    same_as: dict[bytes, bytes] | None = None


class Encoded(NamedTuple):
    pack: bytes | None
    pack_digest: bytes | None
    chunk: bytes
    chunk_digest: bytes
    dictionary: tuple[bytes, ...] = ()  # the dictionary chunks the chunk's headers were compressed against
    # True: the chunk is a chunk of the previous version (``chunk`` is empty, nothing to store)
    existing: bool = False


def encode_task(task: EncodeTask) -> Encoded:
    """Worker task: serialise a chunk's own pack, then the chunk that refers to it."""
    pack = pack_digest = None
    table = list(task.foreign)
    if task.lengths:
        pack = encode_pack_joined(task.residues, task.lengths, task.qualities, task.codec)
        pack_digest = hashlib.sha256(pack).digest()
        table.insert(0, pack_digest)
    rows: dict[Layout, int] = {}
    index = [rows.setdefault(layout, len(rows)) for layout in task.layouts]
    plain = plain_chunk(
        task.headers, task.records, list(rows), index, task.taxids, task.refs, table,
        plus=task.plus, codec=task.codec, edits=task.edits,
    )
    digest = hashlib.sha256(plain.data).digest()
    existing = (task.same_as or {}).get(digest)  # before any dictionary work: re-imports are mostly this
    if existing is not None:
        return Encoded(pack, pack_digest, b"", existing, existing=True)
    chunk, used = plain.against(task.dictionary)
    if chunk is not plain.data:
        digest = hashlib.sha256(chunk).digest()
    return Encoded(pack, pack_digest, chunk, digest, used)


def encode_in_worker(task: EncodeTask) -> Encoded:
    """:func:`encode_task` in a pool worker, which then returns its freed memory to the system."""
    try:
        return encode_task(task)
    finally:
        release_free_memory()


# --------------------------------------------------------------------------- header bases


@dataclass(frozen=True, slots=True)
class DictionaryBase:
    """A record chunk of the previous version, as a dictionary for the next one's chunks."""

    digest: bytes
    taxa: frozenset[int]  # its records' taxa, 0 left out
    text_size: int  # bytes of its streams of streams.DICTIONARY_STREAMS, decoded
    size: int  # its serialised bytes
    depth: int  # its dictionary depth (0: it stands alone)
    plain: bytes  # SHA-256 of it standing alone (its own digest when it does)


class DictionaryBases:
    """What a new version's record chunks may be compressed against: the previous version's.

    Releases of one database mostly repeat their records, so each new chunk's
    headers and references are compressed with the same streams of the
    previous version's chunks of the same taxa (no taxa: those without) as
    a zstd raw-content dictionary, up to ``limit`` bytes of them, in the
    previous manifest's order; a chunk whose records did not change at all
    is the previous chunk again (``same_as``), not a new object. Reading a
    chunk needs its dictionary chunks' streams, and theirs: a chain, at most
    ``record_chunk.MAX_DICTIONARY_DEPTH`` long, so chunks that deep are not
    offered (the next chunk stands alone and starts a new chain). The
    encoder keeps a dictionary only where it pays
    (``record_chunk.DICTIONARY_GAIN``). Measured on the 14 ResFinder
    releases: see ``benchmarks/README.md``.
    """

    def __init__(
        self,
        bases: Sequence[DictionaryBase],
        texts: Callable[[bytes], tuple[bytes, ...]],
        limit: int = 4 << 20,
        inherited: Sequence[tuple[SHA256Hash, int]] = (),
    ) -> None:
        """``texts(digest)``: a base's streams of ``DICTIONARY_STREAMS``, read when a
        dictionary is made (so memory holds a few dictionaries, never a whole release).
        ``inherited``: the previous version's own dictionary chunks, which a chunk that
        uses one of its chunks as a dictionary needs too (they are listed in its manifest)."""
        self._texts = texts
        self.inherited = tuple(inherited)
        self.depths = {base.digest: base.depth for base in bases}
        # An unchanged chunk has its previous chunk's taxa: a task gets only those candidates.
        self._same_as: dict[frozenset[int], dict[bytes, bytes]] = {}
        for base in bases:
            self._same_as.setdefault(base.taxa, {})[base.plain] = base.digest
        self._bases = [b for b in bases if b.depth < MAX_DICTIONARY_DEPTH]
        self._limit = limit
        self._by_taxon: dict[int, list[int]] = {}
        for i, base in enumerate(self._bases):
            for taxon in base.taxa or {0}:
                self._by_taxon.setdefault(taxon, []).append(i)
        self._made: dict[tuple[int, ...], ChunkDictionary] = {}
        self.sizes = {base.digest: base.size for base in bases}

    def __getstate__(self) -> dict[str, Any]:
        # Sent to Dask workers without the reader, which reads through this process's store:
        # a worker binds its own (rebind) before the import uses it.
        return {**self.__dict__, "_texts": None, "_made": {}}

    def rebind(self, texts: Callable[[bytes], tuple[bytes, ...]]) -> None:
        """Read the bases' streams with ``texts`` from now on (a worker's own store)."""
        self._texts = texts

    def same_as(self, taxa: Sequence[int]) -> dict[bytes, bytes]:
        """Previous chunks of exactly these taxa, by the SHA-256 each would have standing alone."""
        return self._same_as.get(frozenset(t for t in taxa if t), {})

    def for_taxa(self, taxa: Sequence[int]) -> ChunkDictionary | None:
        wanted = {t for t in taxa if t} or {0}
        candidates = sorted({i for t in wanted for i in self._by_taxon.get(t, ())})
        chosen: list[int] = []
        size = 0
        for i in candidates:
            size += self._bases[i].text_size
            if size > self._limit:
                break
            chosen.append(i)
        if not chosen:
            return None
        key = tuple(chosen)
        made = self._made.get(key)
        if made is None:
            self._made.clear()  # chunks of one taxon group come one after another: keep one
            digests = tuple(self._bases[i].digest for i in chosen)
            made = self._made[key] = ChunkDictionary(
                digests,
                tuple(dictionary_text(texts) for texts in zip(*(self._texts(d) for d in digests))),
                1 + max(self._bases[i].depth for i in chosen),
            )
        return made


# --------------------------------------------------------------------------- the run


@dataclass(slots=True)
class _Pending:
    """An encode task in flight and what its result becomes."""

    future: Future[Encoded]
    entry: int  # index in ImportRun.entries
    own: int | None  # pack ordinal of its own pack
    new_keys: list[bytes]  # the dedup keys of its own pack's slots, in slot order
    taxa: tuple[int, ...]
    records: int
    residues: int
    file_index: int


class LookupRows:
    """The stored look-up table's rows as an import gathers them.

    Parse workers compute each record's keys (:attr:`Parsed.lookup`), in
    input order; the chunker then sends records to chunks in another order.
    So per file the keys are kept in input order and joined, when the file
    ends, to where its records went: the runs of its record order
    (:class:`~talaria_storage.sequences.order.OrderBuilder`, chunk entry and
    index). :meth:`table` turns (entry, index) into the record's ordinal in
    the version once the chunk list is final. Memory: about 45 bytes a
    record (5 keys of 8 bytes, its place).
    """

    def __init__(self) -> None:
        self._keys: list[array] = []
        self._counts: list[array] = []
        self.fingerprints: list[np.ndarray] = []
        self._at: list[np.ndarray] = []
        self._sequences: list[np.ndarray] = []

    def add(self, parsed: Parsed) -> None:
        """A parsed piece of the current file (its records follow the earlier pieces')."""
        assert parsed.lookup is not None and parsed.lookup_counts is not None
        self._keys.append(parsed.lookup)
        self._counts.append(parsed.lookup_counts)

    def end_file(self, runs: Sequence[tuple[int, int, int]]) -> None:
        """Join the current file's keys to where its records went: its order's ``runs``
        ((chunk entry, first index, records), in input order)."""
        if self._keys and runs:
            keys = np.concatenate([np.frombuffer(k, dtype=np.uint64) for k in self._keys])
            counts = np.concatenate([np.frombuffer(c, dtype=np.uint32) for c in self._counts]).astype(np.int64)
            entries, firsts, lengths = (np.array(column, dtype=np.int64) for column in zip(*runs))
            offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            places = (np.repeat(entries, lengths) << 32) + np.repeat(firsts, lengths) + offsets
            self.fingerprints.append(keys)
            self._at.append(np.repeat(places.astype(np.uint64), counts))
            self._sequences.append(keys[np.cumsum(counts) - counts])  # each record's first key: its SHA-256
        self._keys, self._counts = [], []

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows of the files ended so far: (fingerprints, places, each record's SHA-256 key)."""
        def joined(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)

        return joined(self.fingerprints), joined(self._at), joined(self._sequences)

    def add_columns(self, fingerprints: np.ndarray, places: np.ndarray, sequences: np.ndarray) -> None:
        """Rows :meth:`columns` gave for files imported elsewhere, after those ended here."""
        if len(fingerprints):
            self.fingerprints.append(fingerprints)
            self._at.append(places)
            self._sequences.append(sequences)

    def table(self, entries: Sequence[ChunkEntry]) -> tuple[np.ndarray, np.ndarray, int]:
        """(fingerprints, record ordinals, distinct sequences) of the whole import."""
        if not self.fingerprints:
            empty = np.zeros(0, dtype=np.uint64)
            return empty, empty, 0
        base = np.concatenate([[0], np.cumsum([e.records for e in entries], dtype=np.uint64)]).astype(np.uint64)
        at = np.concatenate(self._at)
        ordinals = base[(at >> np.uint64(32)).astype(np.int64)] + (at & np.uint64(0xFFFFFFFF))
        unique = len(np.unique(np.concatenate(self._sequences)))
        return np.concatenate(self.fingerprints), ordinals, unique


@dataclass(frozen=True, slots=True)
class FileResult:
    source: SourceFile
    order: SHA256Hash
    order_size: int
    logical_bytes: int  # decompressed bytes


class _HashingReader(io.RawIOBase):
    """Counts (and optionally hashes) the raw bytes of a stream as they are read."""

    def __init__(
        self, raw: BinaryIO, hashed: bool = True, progress: Callable[[int], None] | None = None
    ) -> None:
        self.raw = raw
        self.progress = progress
        self.sha = hashlib.sha256() if hashed else None
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        n = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            if self.sha is not None:
                self.sha.update(memoryview(buffer)[:n])
            self.size += n
            if self.progress is not None:
                self.progress(n)
        return n or 0

    def finish(self) -> None:
        buf = bytearray(1 << 20)
        while self.readinto(buf):
            pass


def _malloc_trim() -> Callable[[], object]:
    """glibc's ``malloc_trim(0)``, or a no-op where there is none.

    Why: an import allocates and frees many buffers of 1-16 MB (pieces,
    chunk columns, pickled tasks) from several threads. glibc serves them
    from its heaps once its dynamic mmap threshold has risen, and freed
    space inside a heap is not returned to the system: a 1 GB import peaked
    at 357-369 MB resident in the main process with ~160 MB live. Trimming
    after each chunk (and in workers after each task) hands the free pages
    back: 331 MB, and 415 MB for main and workers together (PSS). A fixed
    mmap threshold (``MALLOC_MMAP_THRESHOLD_``) did better (253 MB) but cost
    35 % more CPU in page faults; a trim costs a few milliseconds a chunk.
    """
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


release_free_memory = _malloc_trim()


@dataclass(frozen=True, slots=True)
class FileSpan:
    """One segment of a file read on its own (a byte-range shard): bytes ``start`` to ``end``,
    beginning at line ``line``."""

    start: int
    end: int
    line: int


@dataclass(frozen=True, slots=True)
class FilePart:
    """What importing a :class:`FileSpan` gave: the runs of its records' order, its record count,
    and the line the next segment starts at. The parts of a file join into its order object."""

    index: int  # the file's place among the import's files
    runs: list[tuple[int, int, int]]
    records: int
    next_line: int


class _Limited:
    """The next ``size`` bytes of a stream, as a stream (one segment's)."""

    def __init__(self, stream: BinaryIO, size: int | None) -> None:
        self.stream = stream
        self.left = size

    def read(self, n: int = -1) -> bytes:
        if self.left is None:
            return self.stream.read(n)
        data = self.stream.read(self.left if n < 0 else min(n, self.left))
        self.left -= len(data)
        return data


class _FileInput:
    """One input file as it is read: its format, raw size and SHA-256, decompressed size.

    Opened on creation; :meth:`fasta_pieces` or :meth:`parse_here` reads it
    once; :meth:`result` (after reading) stores the order object and
    describes the file for the manifest. With a ``span``, only that segment
    is read (its size and SHA-256 are not the file's: :class:`FilePart`).
    """

    def __init__(
        self, path: str, index: int, progress: Callable[[int], None] | None, alphabet: str = "iupac",
        declared: re.Pattern[bytes] | None = None, segment_bytes: int = SEGMENT_BYTES, span: FileSpan | None = None,
    ) -> None:
        self.path = path
        self.index = index
        self.alphabet = alphabet
        self.declared = declared
        self.span = span
        self.fmt = sniff_format(path)
        self._stack = contextlib.ExitStack()
        raw = self._stack.enter_context(open(path, "rb"))  # noqa: SIM115 - closed by close()
        # The lengths of the segments read, the last None (to the end of the file).
        self.segments: list[int | None] = [None]
        if span is not None:
            raw.seek(span.start)
            self.segments = [span.end - span.start]
        elif self.fmt == "fasta":
            starts = segment_starts(path, segment_bytes)
            self.segments = [b - a for a, b in itertools.pairwise(starts)] + [None]
        self.next_line = span.line if span is not None else 1
        self._reader = _HashingReader(raw, hashed=span is None, progress=progress)
        self._counter: _HashingReader | None = None
        self._stream: BinaryIO | None = None
        if self.fmt != "empty":
            plain = self._stack.enter_context(open_input(io.BufferedReader(self._reader, buffer_size=1 << 20), name=path))
            self._counter = _HashingReader(plain, hashed=False)  # counts the decompressed bytes
            self._stream = io.BufferedReader(self._counter, buffer_size=1 << 20)
        self.size = self.logical = 0
        self.sha256 = ""
        self._closed = False

    @property
    def segmented(self) -> bool:
        """Read in segments, or a segment alone: its pieces are cut whatever the pool."""
        return self.span is not None or len(self.segments) > 1

    def fasta_pieces(self) -> Iterator[tuple[bytes, int] | None]:
        """(piece of whole records, its first line number); None where a segment ends."""
        assert self._stream is not None
        for number, size in enumerate(self.segments):
            if number:
                yield None
            for piece in _complete_blocks(_Limited(self._stream, size), PIECE_SIZE, b"\n>"):  # type: ignore[arg-type]
                yield piece, self.next_line
                self.next_line += piece.count(b"\n")

    def parse_here(self, label: Labeller) -> Iterator[Parsed]:
        """Parse in this process, in batches of about ``PIECE_SIZE`` bytes."""
        assert self._stream is not None
        records: Iterator[SequenceRecord]
        if self.fmt == "fasta":
            records = read_fasta(self._stream, name=self.path, alphabet=self.alphabet)
        elif self.fmt == "fastq":
            records = read_fastq(self._stream, name=self.path, alphabet=self.alphabet)
        else:  # GenBank or EMBL: stored FASTA-shaped, the flat-file text in the header (formats.genbank)
            flavour: Flavour = "embl" if self.fmt == "embl" else "genbank"
            records = map(to_stored, read_flatfile(self._stream, flavour, name=self.path))
        batch: list[SequenceRecord] = []
        size = 0
        for record in records:
            batch.append(record)
            size += len(record.residues) + len(record.header)
            if size >= PIECE_SIZE:
                yield describe(batch, label, self.declared)
                batch, size = [], 0
        if batch:
            yield describe(batch, label, self.declared)
        self.close()

    def close(self, complete: bool = True) -> None:
        """Close the file; with ``complete``, first read what is left, so that size and
        SHA-256 cover the whole file (an import that failed skips that, and so does a span)."""
        if self._closed:
            return
        self._closed = True
        try:
            if complete and self.span is None:
                if self._counter is not None:
                    self._counter.finish()
                    self.logical = self._counter.size
                self._reader.finish()
                self.size = self._reader.size
                assert self._reader.sha is not None
                self.sha256 = self._reader.sha.hexdigest()
        finally:
            self._stack.close()

    def read(self) -> FileRead:
        """What the manifest says of the file once it has been read whole."""
        self.close()
        return FileRead(self.path, self.index, self.fmt, self.size, self.sha256, self.logical)


@dataclass(frozen=True, slots=True)
class FileRead:
    """An input file as read: where, its place among the import's files, format, sizes, SHA-256."""

    path: str
    index: int
    fmt: str
    size: int  # bytes on disk
    sha256: str  # of the bytes on disk
    logical: int  # decompressed bytes

    def result(self, store: Store, runs: Sequence[tuple[int, int, int]], records: int) -> FileResult:
        """Store the file's record order (its segments' ``runs``, in input order); the file as
        its manifest entry describes it."""
        data = encode_order(records, runs)
        order_hash = store.store_chunk(data, compress=False)
        source = SourceFile(
            os.path.basename(self.path), self.size, self.sha256, "fasta" if self.fmt == "empty" else self.fmt, records
        )
        return FileResult(source, order_hash, len(data), self.logical)


@dataclass(slots=True)
class ImportCarry:
    """What one part of an import hands the next so that, run apart, the parts write the
    objects one run over all files writes: the packer's dedup window and pack numbering,
    the packs seen so far, the chunk entries before it, the dictionaries used."""

    entries: int = 0
    packs: int = 0
    current: dict[bytes, int] = field(default_factory=dict)
    previous: dict[bytes, int] = field(default_factory=dict)
    reused: list[bytes] = field(default_factory=list)
    reuse_recorded: int = 0
    pack_digest: dict[int, bytes] = field(default_factory=dict)
    dictionary_used: dict[bytes, None] = field(default_factory=dict)
    reused_deep: bool = False


def _pool_context() -> Any:
    """Fork where it exists and is safe (see the module docstring); ``forkserver`` when the
    program runs other threads (a Dask client's, a server's): a fork copies their locks held,
    and a child that needs one waits for ever (it hung the Dask tests). Elsewhere the default."""
    if sys.platform.startswith("linux"):
        if threading.active_count() == 1:
            freeze_inherited_objects()  # a child must not finalize the parent's RocksDB handles
            return multiprocessing.get_context("fork")
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context()


class ImportRun:
    """State of one import across its files: chunk entries, packs, pools. Use as a context manager."""

    def __init__(
        self,
        store: Store,
        codec: ChunkCodec,
        chunking: ChunkingPolicy,
        *,
        processes: int,
        threads: int,
        window: int = DEDUP_WINDOW,
        operation_id: str | None = None,
        completed: frozenset[SHA256Hash] = frozenset(),
        stored: StoredSequences | None = None,
        dictionary_bases: DictionaryBases | None = None,
        alphabet: str = "iupac",
        declared: re.Pattern[bytes] | None = None,
        pool: Executor | None = None,
        segment_bytes: int | None = None,
    ) -> None:
        self.alphabet = alphabet  # the residue bytes FASTA/FASTQ records may hold (formats.fasta.ALPHABETS)
        # A plain FASTA file is chunked in segments of this size (read when the run is made, so a
        # test or benchmark may set SEGMENT_BYTES; a Dask worker is given the client's).
        self.segment_bytes = SEGMENT_BYTES if segment_bytes is None else segment_bytes
        self.declared = declared  # --id-regex: its matches in each header are look-up keys too
        self.store = store
        # Resumable state (StatefulStorage): objects an interrupted run of the same import
        # already stored are skipped without asking the store, and each object stored is
        # recorded as completed, so the state also keeps it from GC until the import ends.
        self.operation_id = operation_id
        self.completed = completed
        self.codec = codec
        self.chunking = chunking
        self.processes = processes
        # Sequences earlier versions already hold are referred to, not stored again; the
        # packs this import makes are added to that map as they are encoded.
        self.stored = stored
        self.packer = SequencePacker(window, stored)
        self._reuse_recorded = 0
        self.dictionary_bases = dictionary_bases
        self._dictionary_used: dict[bytes, None] = {}  # dictionary chunks used, in order of first use
        self._reused_deep = False  # a chunk of the previous version that has a dictionary is reused
        self.entries: list[ChunkEntry | None] = []
        self._entry_base = 0  # chunk entries that earlier parts of this import made (see carry)
        self.lookup = LookupRows()
        self.part: FilePart | None = None  # after import_files with a span: what it read
        self.new_chunks = 0
        self.new_packs = 0
        self.new_bytes = 0
        # ``pool``: workers someone else runs (a Dask cluster, sharded_import) for the parse and
        # encode tasks, ``processes`` of them; this run neither starts nor stops them.
        self._pool: Executor | None = pool
        self._owns_pool = pool is None and processes > 0
        if self._owns_pool:
            self._pool = ProcessPoolExecutor(processes, mp_context=_pool_context())
            # Start the workers now, before this import starts threads (see the module docstring).
            self._pool.submit(int).result()
        self._io = ThreadPoolExecutor(max(1, threads), thread_name_prefix="talaria-store")
        self._encoder: Executor = self._pool if self._pool is not None else self._io
        self._inflight: deque[_Pending] = deque()
        self._owner: dict[int, _Pending] = {}  # pack ordinal -> task that encodes it
        self._pack_digest: dict[int, bytes] = {}
        self._stores: list[Future[None]] = []
        self._limit = max(1, processes or threads) + 1
        self._lock = threading.Lock()  # the counters are updated from the storing threads

    def __enter__(self) -> ImportRun:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        failed = exc[0] is not None
        self._io.shutdown(wait=True, cancel_futures=failed)
        if self._pool is not None and self._owns_pool:
            self._pool.shutdown(wait=True, cancel_futures=failed)

    # -- files

    def import_files(
        self,
        paths: Sequence[str],
        label: Labeller,
        header_taxa: bool,
        fallback: int,
        progress: Callable[[int], None] | None = None,
        first_index: int = 0,
        span: FileSpan | None = None,
    ) -> list[FileResult]:
        """Chunk, pack, encode and store the files, in order; store each file's order object.
        ``first_index``: the place of the first of ``paths`` among the import's files.
        ``span``: read only that segment of the one file given; no file result then, but
        :attr:`part`.

        With a pool, FASTA pieces are sent to the workers ahead of the
        records being chunked -- across file boundaries too, so that the
        workers are not idle while the main process finishes a file
        (UniProt proteomes are 15 files of 1-7 MB).
        """
        results: list[FileResult] = []
        ahead: deque[tuple[str, _FileInput, Any]] = deque()
        feed = self._feed(paths, header_taxa, fallback, progress, first_index, span)
        try:
            chunker, order = TaxonChunker(self.chunking), OrderBuilder()
            runs: list[tuple[int, int, int]] = []  # the file's, segment after segment
            count = records = 0  # in the segment, in the segments before it
            while True:
                self._top_up(ahead, feed)
                if not ahead:
                    break
                kind, source, item = ahead.popleft()
                if kind == "start":
                    chunker, order, runs, count, records = TaxonChunker(self.chunking), OrderBuilder(), [], 0, 0
                elif kind == "parsed":
                    count += self._chunk(_parsed(source.path, item.result()), chunker, order, source.index, label)
                elif kind == "inline":
                    for parsed in source.parse_here(label):
                        count += self._chunk(parsed, chunker, order, source.index, label)
                else:  # "segment" or "end": the segment's chunks are complete
                    runs += self._end_segment(chunker, order, count, source.index)
                    records, count = records + count, 0
                    if kind == "segment":
                        chunker, order = TaxonChunker(self.chunking), OrderBuilder()
                    elif source.span is not None:
                        self.part = FilePart(source.index, runs, records, source.next_line)
                        source.close(complete=False)
                    else:
                        results.append(self.end_file(source.read(), runs, records))
        finally:
            feed.close()
            for _, source, _ in ahead:
                source.close(complete=False)  # only after a failure: the loop empties it otherwise
        return results

    def _end_segment(
        self, chunker: TaxonChunker, order: OrderBuilder, count: int, file_index: int
    ) -> list[tuple[int, int, int]]:
        """Dispatch a segment's last chunks; the runs of its records' order."""
        for planned in chunker.finish():
            self._dispatch(planned, file_index, order)
        runs = order.runs(count)
        self.lookup.end_file(runs)
        return runs

    def end_file(self, read: FileRead, runs: Sequence[tuple[int, int, int]], records: int) -> FileResult:
        """Store a file's record order and record it: its manifest entry."""
        result = read.result(self.store, runs, records)
        self.record_completed([result.order])
        return result

    def carry(self) -> ImportCarry:
        """The state the next part of this import starts from (call after :meth:`finish`)."""
        packer = self.packer
        current, previous = packer.window()
        return ImportCarry(
            self._entry_base + len(self.entries), packer.packs, current, previous,
            packer.reused, self._reuse_recorded, self._pack_digest, self._dictionary_used, self._reused_deep,
        )

    def take(self, carry: ImportCarry, *, holds_entries: bool = False) -> None:
        """Continue the import an earlier part left as ``carry`` (before any file of this one);
        ``holds_entries``: this run holds the earlier parts' chunk entries itself (it merges them)."""
        self.packer.resume(carry.packs, carry.current, carry.previous, carry.reused)
        self._entry_base = 0 if holds_entries else carry.entries
        self._reuse_recorded = carry.reuse_recorded
        self._pack_digest = carry.pack_digest
        self._dictionary_used = carry.dictionary_used
        self._reused_deep = carry.reused_deep

    def _feed(
        self, paths: Sequence[str], header_taxa: bool, fallback: int, progress: Callable[[int], None] | None,
        first_index: int = 0, span: FileSpan | None = None,
    ) -> Generator[tuple[str, _FileInput, Any], None, None]:
        """(kind, file, item) in the order the main process consumes them; see import_files."""
        for index, path in enumerate(paths, first_index):
            source = _FileInput(path, index, progress, self.alphabet, self.declared, self.segment_bytes, span)
            try:
                yield "start", source, None
                if source.fmt == "fasta" and (self._pool is not None or source.segmented):
                    for cut in source.fasta_pieces():
                        if cut is None:
                            yield "segment", source, None
                            continue
                        piece, line = cut
                        arguments = (path, piece, line, header_taxa, fallback, self.alphabet, self.declared)
                        if self._pool is None:  # segments are cut as pieces, and parsed here
                            yield "parsed", source, _Ready(parse_fasta_piece(*arguments))
                        else:
                            yield "parsed", source, self._pool.submit(parse_fasta_piece, *arguments)
                    source.close()
                elif source.fmt != "empty":
                    yield "inline", source, None  # parsed by the main process when its turn comes
                else:
                    source.close()
                yield "end", source, None
            except BaseException:
                source.close(complete=False)
                raise

    def _top_up(self, ahead: deque[tuple[str, _FileInput, Any]], feed: Iterator[tuple[str, _FileInput, Any]]) -> None:
        """Keep up to a few parse tasks in flight, but never run past an inline file's turn."""
        limit = 2 * self.processes + 2
        while sum(1 for kind, _, _ in ahead if kind == "parsed") < limit:
            if ahead and ahead[-1][0] == "inline":
                return  # its stream is read by the main process; stop here until it is done
            item = next(feed, None)
            if item is None:
                return
            ahead.append(item)

    def _chunk(
        self, parsed: Parsed, chunker: TaxonChunker, order: OrderBuilder, file_index: int, label: Labeller
    ) -> int:
        """Feed one parsed piece to the chunker; dispatch the chunks it completes."""
        headers, residues = _split(parsed.headers, parsed.records), _split(parsed.residues, parsed.records)
        taxids: Sequence[int] | None = parsed.taxids
        self.lookup.add(parsed)
        if taxids is None:
            taxids = [label(h) for h in headers]
        done = chunker.extend(
            headers, residues, parsed.layouts, taxids, parsed.prefixes, parsed.keys,
            plus=_split(parsed.plus, parsed.records) if parsed.plus is not None else None,
            qualities=_split(parsed.qualities, parsed.records) if parsed.qualities is not None else None,
        )
        for planned in done:
            self._dispatch(planned, file_index, order)
        return parsed.records

    def finish(self) -> list[ChunkEntry]:
        """Wait for every chunk to be encoded and stored; the manifest's chunk list."""
        while self._inflight:
            self._complete(self._inflight.popleft())
        for future in self._stores:
            future.result()
        self._stores.clear()
        entries = [e for e in self.entries if e is not None]
        if len(entries) != len(self.entries):
            raise RuntimeError("an encoded chunk has no entry (an import bug, please report it)")
        return entries

    # -- chunks

    def _dispatch(self, planned: PlannedChunk, file_index: int, order: OrderBuilder) -> None:
        """Pack one planned chunk's sequences and send it to be encoded."""
        keys = [planned.keys[i : i + 16] for i in range(0, len(planned.keys), 16)]
        own, new, locations = self.packer.assign(keys)
        if len(self.packer.reused) > self._reuse_recorded:
            # A reused pack becomes a GC root of this import before any chunk refers to it.
            self.record_completed([SHA256Hash(d) for d in self.packer.reused[self._reuse_recorded :]])
            self._reuse_recorded = len(self.packer.reused)
        table: dict[int, int] = {} if own is None else {own: 0}
        foreign: list[bytes] = []
        refs: list[int] = []
        if own is not None and len(new) == len(locations):
            # every sequence is new: own pack (table index 0), slots 0..n-1 in record order
            refs = [location & 0xFFFFFFFF for location in locations]
        else:
            for location in locations:
                ordinal = location >> 32
                index = table.get(ordinal)
                if index is None:
                    index = table[ordinal] = len(table)
                    foreign.append(self._digest_of(ordinal))
                refs.append(index << 32 | (location & 0xFFFFFFFF))
        count = len(planned)
        edits: list[bytes] | None = None
        if planned.qualities is None and not is_canonical(planned.residues):
            # Soft-masked or spaced residues: the pack gets canonical residues, the chunk the edits.
            pairs = [residue_edit(r) for r in planned.column("residues")]
            edits = [edit for _, edit in pairs]
            residues = b"".join([pairs[i][0] for i in new])
            lengths = array("I", [len(pairs[i][0]) for i in new])
            qualities = None
        elif not new:  # every sequence is held already (a re-import): no own pack
            residues, lengths, qualities = b"", array("I"), None
        elif len(new) == count:
            residues, lengths = planned.residues.replace(b"\n", b""), None
            qualities = planned.qualities.replace(b"\n", b"") if planned.qualities is not None else None
        else:
            column = planned.column("residues")
            residues = b"".join([column[i] for i in new])
            lengths = array("I", [len(column[i]) for i in new])
            qualities = None
            if planned.qualities is not None:
                quality_column = planned.column("qualities")
                qualities = b"".join([quality_column[i] for i in new])
        if lengths is None:
            lengths = array("I", [len(r) for r in planned.column("residues")])
        task = EncodeTask(
            records=count,
            headers=planned.headers[:-1],
            layouts=list(planned.layouts),
            taxids=array("I", planned.taxids),
            refs=array("Q", refs),
            residues=residues,
            lengths=lengths,
            qualities=qualities,
            plus=planned.plus[:-1] if planned.plus is not None else None,
            foreign=foreign,
            codec=self.codec,
            edits=edits,
            dictionary=self.dictionary_bases.for_taxa(planned.taxa) if self.dictionary_bases is not None else None,
            same_as=self.dictionary_bases.same_as(planned.taxa) if self.dictionary_bases is not None else None,
        )
        entry = len(self.entries)
        self.entries.append(None)
        order.place(self._entry_base + entry, planned.ordinals)
        pending = _Pending(
            self._encoder.submit(encode_in_worker if self._pool is not None else encode_task, task),
            entry,
            own,
            [keys[i] for i in new] if self.stored is not None else [],
            tuple(t for t in planned.taxa if t),
            count,
            len(planned.residues) - count,
            file_index,
        )
        if own is not None:
            self._owner[own] = pending
        self._inflight.append(pending)
        while len(self._inflight) > self._limit:
            self._complete(self._inflight.popleft())
        release_free_memory()  # see _malloc_trim

    def _digest_of(self, ordinal: int) -> bytes:
        """The hash of pack ``ordinal``, waiting for its encoding if it is still running."""
        if ordinal >= REUSED:
            return self.packer.reused[ordinal - REUSED]
        digest = self._pack_digest.get(ordinal)
        if digest is None:
            self._complete(self._owner[ordinal])
            digest = self._pack_digest[ordinal]
        return digest

    def _complete(self, pending: _Pending) -> None:
        """Take an encoded chunk's result (once): record its entry and send its objects to storage."""
        if self.entries[pending.entry] is not None:
            return
        encoded = pending.future.result()
        pack = None
        if pending.own is not None:
            assert encoded.pack_digest is not None and encoded.pack is not None
            self._pack_digest[pending.own] = encoded.pack_digest
            del self._owner[pending.own]
            pack = SHA256Hash(encoded.pack_digest)
        size = len(encoded.chunk)
        # Earlier chunks this chunk is, or needs: recorded with its own objects (GC roots of
        # this import until the version that names them is published).
        earlier: list[SHA256Hash] = []
        if encoded.existing:
            assert self.dictionary_bases is not None
            size = self.dictionary_bases.sizes.get(encoded.chunk_digest, 0)
            self._reused_deep = self._reused_deep or self.dictionary_bases.depths.get(encoded.chunk_digest, 0) > 0
            earlier.append(SHA256Hash(encoded.chunk_digest))
        self.entries[pending.entry] = ChunkEntry(
            SHA256Hash(encoded.chunk_digest),
            pending.taxa,
            pending.records,
            pending.residues,
            size,
            pending.file_index,
            pack,
            len(encoded.pack) if encoded.pack is not None else 0,
        )
        fresh = [d for d in encoded.dictionary if d not in self._dictionary_used]
        self._dictionary_used.update(dict.fromkeys(fresh))
        earlier += [SHA256Hash(d) for d in fresh]
        self._stores.append(self._io.submit(self._store, encoded, pending.new_keys, earlier))
        # Back-pressure: encoded objects wait in memory until written, so a slow backend
        # (fsync per object, a remote bucket) must slow the import down, not fill memory.
        while len(self._stores) > self._limit:
            self._stores.pop(0).result()  # also raises a storage failure now, not at the end

    def reused_packs(self) -> tuple[tuple[SHA256Hash, int], ...]:
        """The packs of earlier versions this import's chunks refer to, with their sizes."""
        live = self.stored.live if self.stored is not None else {}
        return tuple((SHA256Hash(d), live.get(d, 0)) for d in self.packer.reused)

    def dictionary_chunks(self) -> tuple[tuple[SHA256Hash, int], ...]:
        """The earlier record chunks this version's headers need, with sizes: those its chunks
        were compressed against and, when one of those has a dictionary, the chunks it needs."""
        bases = self.dictionary_bases
        if bases is None or not (self._dictionary_used or self._reused_deep):
            return ()
        needed = [(SHA256Hash(d), bases.sizes.get(d, 0)) for d in self._dictionary_used]
        if self._reused_deep or any(bases.depths.get(d, 0) for d in self._dictionary_used):
            named = {h for h, _ in needed}
            needed += [(h, size) for h, size in bases.inherited if h not in named]
        return tuple(needed)

    def _store(self, encoded: Encoded, new_keys: list[bytes], earlier: list[SHA256Hash]) -> None:
        """Write a chunk's objects (storing thread), record them and the ``earlier`` chunks it
        needs in one state write, and map its own pack's sequences for later imports."""
        store = self.store
        done: list[SHA256Hash] = list(earlier)
        for data, digest, is_pack in ((encoded.pack, encoded.pack_digest, True), (encoded.chunk, encoded.chunk_digest, False)):
            if data is None or digest is None or (not is_pack and encoded.existing):
                continue
            h = SHA256Hash(digest)
            if h in self.completed:
                continue  # stored and recorded by an interrupted run of this import
            if not store.reuse(h):  # a held one is freshened, so a gc beside this import spares it
                store.store_chunk(data, compress=False)
                with self._lock:
                    if is_pack:
                        self.new_packs += 1
                    else:
                        self.new_chunks += 1
                    self.new_bytes += len(data)
            done.append(h)
        if self.stored is not None and encoded.pack_digest is not None:
            self.stored.add(encoded.pack_digest, new_keys)
        self.record_completed(done)

    def record_completed(self, hashes: list[SHA256Hash]) -> None:
        """Record stored objects in the import's processing state (one small write), if it has one."""
        if self.operation_id is not None and hashes:
            self.store.states.record_completed(self.operation_id, hashes)


class _Ready:
    """A result computed here, shaped as the future a pool would have given."""

    def __init__(self, value: Parsed | ParseFailure) -> None:
        self.value = value

    def result(self) -> Parsed | ParseFailure:
        return self.value


def _split(joined: bytes, count: int) -> list[bytes]:
    """The entries of a newline-joined column of ``count`` entries."""
    return joined.split(b"\n") if count else []


def _parsed(path: str, result: Parsed | ParseFailure) -> Parsed:
    if isinstance(result, ParseFailure):
        raise InputFormatError(path, result.line, result.problem)
    return result
