"""Deterministic, taxonomy-aware chunking of a record stream.

Records are grouped by taxon. Inside a group, in input order, a chunk ends
after a record when the chunk has reached ``min_size`` bytes and the
record's *own* sequence hash says so (a content-defined boundary); it also
ends before a record that would push it past ``max_size``. Every decision
depends only on the records of that group and their order, never on where
the group sits in the input or on other taxa, so a new release that leaves
a taxon's records unchanged produces the same chunks -- the same chunk
hashes -- for it, and only changed groups are stored again. A change inside
a large group disturbs the chunk it falls in and at most a couple after it:
boundaries fall back into step at the first boundary record past
``min_size`` after the change (as in content-defined chunking of byte
streams, here at record granularity, so a record is never split).

Boundary rule: with ``h`` the first 8 bytes of the record's sequence hash as
an unsigned integer and ``s`` the record's size (:func:`record_size`), the
record closes its chunk when ``h * (target_size - min_size) < s * 2**64``. A
boundary is thus as likely as the record is large, so the mean chunk size is
about ``target_size`` whatever the mix of record lengths (proteins or
genomes).

Sizes count a record's residues (and qualities) plus a fixed 64 bytes, never
its header: a release that rewrites headers (ResFinder did, twice, for all
3,077 records) then cuts its chunks exactly where the previous release did,
so its sequence packs are the same objects and only the small record chunks
are stored again (see :mod:`talaria_storage.sequences.record_chunk`). The
64 bytes stand for the header and bookkeeping, so a chunk of empty records
stays bounded too.

Small groups. The last, unfinished chunk of each group (the *tail*) is only
known at the end of the input. A tail of at least ``min_size`` is a chunk of
its own; smaller tails (a taxon with a few sequences, as most of a 16S set)
are packed together, in ascending taxid order, into shared chunks that end
after the first tail that brings them to ``min_size`` (or before one that
would exceed ``max_size``). A change to a small taxon therefore re-packs the
chunks from it until the packing falls back into step, which happens after
a few chunks for tails of varied sizes (the same coalescence that makes the
"Kruskal count" card trick work); a chunk's manifest entry lists all its taxa.

Bounded memory. The open (not yet cut) records of every group are kept in
memory up to ``memory_budget`` bytes; past that, all open records are
appended to a temporary spill file and read back when their group closes a
chunk or at the end. This keeps the result identical to the unbounded
computation -- spilling changes where records wait, never where chunks end
-- at the price of writing and reading the spilled records once. The
alternative, flushing the largest group early, needs no disk but makes
chunk boundaries depend on the input order of *other* taxa, which would
defeat incremental storage of a reordered release. Per taxon, only a few
counters and the list of its spilled segments stay in memory.

A group keeps its records as columns -- headers, residues (and FASTQ ``+``
lines and qualities) each in one growing ``bytearray``, newline-separated,
plus arrays of ordinals and keys and a list of (shared) layouts -- not as
record objects. Measured on a 1 GB UniProt-like import: record objects cost
~240 bytes each beyond their text, and because records of different taxa
are freed at different times, they kept Python's small-object arenas (and
so the process's memory) from shrinking: 450 MB peak, against the ~200 MB
actually live. Columns cost ~40 bytes a record, live in a few large
buffers that are freed whole, and spill to disk as a few large pickles.
Records are rebuilt only when a planned chunk's :attr:`PlannedChunk.records`
is asked for.

The record order inside a chunk is the input order of its group (packed
tails: by taxid, then input order). Each planned chunk carries the input
ordinals of its records so the database layer can restore file order for a
byte-exact export, and an optional caller-supplied *key* per record (the
database passes the key it deduplicates sequences by).
"""

from __future__ import annotations

import pickle
import tempfile
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import BinaryIO

from talaria_storage.core.errors import ConfigError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.formats.fasta import FastaRecord, FastqRecord, Layout, SequenceRecord

_PER_RECORD_WEIGHT = 64  # stands for a header and the per-record tables (see the module docstring)
# What a buffered record costs in memory beyond its bytes: two separators, a layout pointer,
# an ordinal and a 16-byte key in the group's columns, plus slack.
_PER_RECORD_MEMORY = 40


def record_size(record: SequenceRecord) -> int:
    """A record's weight in every chunk size limit: residues (and qualities) plus 64 bytes.

    Headers are not counted, so header edits never move chunk boundaries.
    """
    if isinstance(record, FastqRecord):
        return 2 * len(record.residues) + _PER_RECORD_WEIGHT
    return len(record.residues) + _PER_RECORD_WEIGHT


@dataclass(frozen=True, slots=True)
class ChunkingPolicy:
    """Size limits of chunks, in uncompressed record bytes (see :func:`record_size`)."""

    min_size: int = 1 << 20
    target_size: int = 4 << 20
    max_size: int = 16 << 20
    memory_budget: int = 128 << 20  # open records held before spilling (see "Bounded memory")

    def __post_init__(self) -> None:
        if not 0 < self.min_size < self.target_size <= self.max_size:
            raise ConfigError(
                "chunking needs 0 < min_size < target_size <= max_size, got "
                f"{self.min_size}, {self.target_size}, {self.max_size}"
            )
        if self.memory_budget < self.max_size:
            raise ConfigError(
                f"chunking memory_budget ({self.memory_budget}) must be at least max_size "
                f"({self.max_size})"
            )

    @classmethod
    def bounded(cls, min_size: int, max_size: int) -> ChunkingPolicy:
        """The policy ``[optimization] min_chunk_size`` and ``max_chunk_size`` ask for.

        The mean chunk size (``target_size``) stays at its default of 4 MiB
        when the bounds allow it, else it moves to the nearest bound that does:
        twice ``min_size`` (mean sizes sit well above the minimum, as in
        content-defined chunking of byte streams), at most ``max_size``. Equal
        bounds cut every chunk at ``max_size``: the boundary rule has no room
        left between them, so ``min_size`` becomes ``max_size - 1``.
        """
        if not 0 < min_size <= max_size:
            raise ConfigError(f"chunking needs 0 < min_chunk_size <= max_chunk_size, got {min_size}, {max_size}")
        low = min(min_size, max_size - 1)
        defaults = cls()
        target = min(max_size, max(defaults.target_size, 2 * low))
        return cls(low, target, max_size, max(defaults.memory_budget, max_size))

    def is_boundary(self, seq_hash: bytes, size: int) -> bool:
        """True when a record with this hash and size closes its chunk (past min_size)."""
        return hash_prefix(seq_hash) * (self.target_size - self.min_size) < size << 64


def hash_prefix(seq_hash: bytes) -> int:
    """What the boundary rule reads of a sequence hash: its first 8 bytes, big-endian."""
    return int.from_bytes(seq_hash[:8], "big")


@dataclass(frozen=True, slots=True)
class PlannedChunk:
    """Records that go into one chunk, as columns, with their taxids, input positions and keys.

    ``headers``, ``residues`` (and for FASTQ ``plus``, ``qualities``) hold
    one entry per record, each followed by a newline; ``keys`` holds the
    fixed-width keys the caller passed, concatenated.
    """

    headers: bytes
    residues: bytes
    layouts: tuple[Layout, ...]
    taxids: tuple[int, ...]
    ordinals: tuple[int, ...]
    size: int
    keys: bytes = b""
    plus: bytes | None = None
    qualities: bytes | None = None

    def __len__(self) -> int:
        return len(self.ordinals)

    @property
    def fastq(self) -> bool:
        return self.plus is not None

    @property
    def taxa(self) -> tuple[int, ...]:
        """Distinct taxids, ascending."""
        return tuple(sorted(set(self.taxids)))

    def column(self, name: str) -> list[bytes]:
        """One entry per record of ``headers``, ``residues``, ``plus`` or ``qualities``."""
        data = getattr(self, name)
        return data.split(b"\n")[:-1] if data else []

    @property
    def records(self) -> tuple[SequenceRecord, ...]:
        """The records, rebuilt from the columns."""
        headers, residues = self.column("headers"), self.column("residues")
        if self.fastq:
            return tuple(
                map(FastqRecord, headers, residues, self.column("plus"), self.column("qualities"), self.layouts)
            )
        return tuple(map(FastaRecord, headers, residues, self.layouts))


@dataclass(slots=True)
class _Columns:
    """Open records of a group (or a spilled segment of them), column by column."""

    headers: bytearray = field(default_factory=bytearray)
    residues: bytearray = field(default_factory=bytearray)
    plus: bytearray | None = None
    qualities: bytearray | None = None
    layouts: list[Layout] = field(default_factory=list)
    ordinals: array = field(default_factory=lambda: array("Q"))
    keys: bytearray = field(default_factory=bytearray)

    def extend(self, other: _Columns) -> None:
        self.headers += other.headers
        self.residues += other.residues
        if other.plus is not None:
            if self.plus is None or self.qualities is None:
                self.plus, self.qualities = bytearray(), bytearray()
            assert other.qualities is not None
            self.plus += other.plus
            self.qualities += other.qualities
        self.layouts += other.layouts
        self.ordinals += other.ordinals
        self.keys += other.keys


@dataclass(slots=True)
class _Group:
    """The open (uncut) records of one taxon."""

    size: int = 0  # bytes since the group's last cut, spilled ones included
    columns: _Columns = field(default_factory=_Columns)  # in memory
    memory: int = 0  # estimated memory of ``columns``
    spilled: list[tuple[int, int]] = field(
        default_factory=list
    )  # (offset, length) in the spill file


class TaxonChunker:
    """Streaming chunker: feed records with :meth:`add` or :meth:`extend`, then iterate :meth:`finish`.

    They return (yield) the chunks completed by that call. ``spill_dir`` is where the
    temporary spill file goes (default: the system temporary folder); it is
    created only if the memory budget is exceeded and removed by
    :meth:`finish` or :meth:`close`. Keys, when given, must all have the same
    length (the import passes 16-byte digests).
    """

    def __init__(
        self, policy: ChunkingPolicy = ChunkingPolicy(), spill_dir: str | None = None
    ) -> None:
        self.policy = policy
        self._groups: dict[int, _Group] = {}
        self._memory = 0
        self._ordinal = 0
        self._spill: BinaryIO | None = None
        self._spill_dir = spill_dir
        self._fastq: bool | None = None
        self.spilled_bytes = 0  # for tests and reports: how much went to disk

    def add(
        self,
        record: SequenceRecord,
        taxid: int,
        seq_hash: SHA256Hash | bytes,
        key: bytes = b"",
    ) -> list[PlannedChunk]:
        """Add the next input record (``seq_hash``: its canonical sequence hash).

        ``key`` is carried along unchanged into :attr:`PlannedChunk.keys`.
        """
        digest = seq_hash.digest if isinstance(seq_hash, SHA256Hash) else seq_hash
        if isinstance(record, FastqRecord):
            return self.extend(
                [record.header], [record.residues], [record.layout], [taxid], [hash_prefix(digest)], key,
                plus=[record.plus], qualities=[record.qualities],
            )
        return self.extend([record.header], [record.residues], [record.layout], [taxid], [hash_prefix(digest)], key)

    def extend(
        self,
        headers: Sequence[bytes],
        residues: Sequence[bytes],
        layouts: Sequence[Layout],
        taxids: Sequence[int],
        prefixes: Sequence[int],
        keys: bytes = b"",
        *,
        plus: Sequence[bytes] | None = None,
        qualities: Sequence[bytes] | None = None,
    ) -> list[PlannedChunk]:
        """:meth:`add` for a batch of records given as columns (same result, much faster).

        ``prefixes`` are the first 8 bytes of each record's sequence hash as a
        big-endian unsigned integer (:func:`hash_prefix`), which is all the
        boundary rule reads; ``keys`` the records' keys concatenated. The
        import calls this for every record, in the main process: a loop of
        :meth:`add` steps was a fifth of that process's CPU time, so runs of
        records of one taxon are added in bulk (see :meth:`_add_run`).
        """
        count = len(headers)
        if not len(residues) == len(layouts) == len(taxids) == len(prefixes) == count:
            raise ValueError("extend needs as many residues, layouts, taxids and hash prefixes as headers")
        width = len(keys) // count if count else 0
        if width * count != len(keys):
            raise ValueError("keys must all have the same length")
        fastq = plus is not None
        if self._fastq is None and count:
            self._fastq = fastq
        elif count and self._fastq != fastq:
            raise ValueError("a chunker takes FASTA records or FASTQ records, not both")
        weight = 2 if fastq else 1
        weights = [weight * len(r) + _PER_RECORD_WEIGHT for r in residues]
        span = self.policy.target_size - self.policy.min_size
        closes = bytes([p * span < w << 64 for p, w in zip(prefixes, weights)])  # boundary rule
        out: list[PlannedChunk] = []
        start = 0
        while start < count:  # runs of records of one taxon, added in bulk
            taxid = taxids[start]
            end = start + 1
            while end < count and taxids[end] == taxid:
                end += 1
            self._add_run(taxid, start, end, headers, residues, layouts, keys, width, plus, qualities, weights, closes, out)
            start = end
        self._ordinal += count
        return out

    def _add_run(
        self,
        taxid: int,
        start: int,
        end: int,
        headers: Sequence[bytes],
        residues: Sequence[bytes],
        layouts: Sequence[Layout],
        keys: bytes,
        width: int,
        plus: Sequence[bytes] | None,
        qualities: Sequence[bytes] | None,
        weights: list[int],
        closes: bytes,
        out: list[PlannedChunk],
    ) -> None:
        """Add records ``start..end-1``, all of ``taxid``, cutting where :meth:`add` would.

        The same rule as one record at a time, found by bisection on the
        run's running total instead of a Python step per record: with ``S``
        the totals, the group's size after record ``k`` is ``base + S[k]``;
        the next cut is before the first record that would push a non-empty
        group past ``max_size``, or after the first record that closes a
        chunk (``closes``) once the group has reached ``min_size``.
        """
        policy = self.policy
        group = self._groups.get(taxid)
        if group is None:
            group = self._groups[taxid] = _Group()
        totals = list(accumulate(weights[start:end]))
        pos = start  # first record not yet added
        while pos < end:
            done = totals[pos - start - 1] if pos > start else 0  # run total before ``pos``
            base = group.size - done  # the group's size after record k is base + totals[k - start]
            # the first record whose addition would push a non-empty group past max_size
            over = bisect_right(totals, policy.max_size - base, pos - start) + start
            if over == pos and group.size == 0:
                over = min(pos + 1, end)  # an empty group takes even an oversized record
            # the first record after which the group is at least min_size and the record closes it
            reach = bisect_left(totals, policy.min_size - base, pos - start) + start
            close = closes.find(1, reach, end) if reach < end else -1
            if close != -1 and close < over:
                self._append(group, start, pos, close + 1, headers, residues, layouts, keys, width, plus, qualities, totals, base)
                out.append(self._cut(taxid, group))
                pos = close + 1
            elif over < end:
                if over > pos:
                    self._append(group, start, pos, over, headers, residues, layouts, keys, width, plus, qualities, totals, base)
                out.append(self._cut(taxid, group))
                pos = over
            else:
                self._append(group, start, pos, end, headers, residues, layouts, keys, width, plus, qualities, totals, base)
                pos = end
            if self._memory > policy.memory_budget:
                self._spill_all()

    def _append(
        self,
        group: _Group,
        start: int,
        first: int,
        stop: int,
        headers: Sequence[bytes],
        residues: Sequence[bytes],
        layouts: Sequence[Layout],
        keys: bytes,
        width: int,
        plus: Sequence[bytes] | None,
        qualities: Sequence[bytes] | None,
        totals: list[int],
        base: int,
    ) -> None:
        """Append records ``first..stop-1`` of the batch to ``group``'s columns."""
        columns = group.columns
        part = headers[first:stop]
        columns.headers += b"\n".join(part)
        columns.headers += b"\n"
        sequences = residues[first:stop]
        columns.residues += b"\n".join(sequences)
        columns.residues += b"\n"
        if plus is not None and qualities is not None:
            if columns.plus is None or columns.qualities is None:
                columns.plus, columns.qualities = bytearray(), bytearray()
            columns.plus += b"\n".join(plus[first:stop])
            columns.plus += b"\n"
            columns.qualities += b"\n".join(qualities[first:stop])
            columns.qualities += b"\n"
        columns.layouts.extend(layouts[first:stop])
        columns.ordinals.extend(range(self._ordinal + first, self._ordinal + stop))
        if width:
            columns.keys += keys[first * width : stop * width]
        size = base + totals[stop - 1 - start] - group.size  # the records' weights
        group.size += size
        memory = size + sum(map(len, part)) + (_PER_RECORD_MEMORY - _PER_RECORD_WEIGHT) * (stop - first)
        group.memory += memory
        self._memory += memory

    def finish(self) -> Iterator[PlannedChunk]:
        """Cut every group's tail (packing the small ones), then release the spill file.

        A generator: tails may add up to most of the input (a file of many
        small taxa), so they are read back from the spill file and handed
        out one chunk at a time, never all at once.
        """
        policy = self.policy
        pack: list[tuple[int, _Columns]] = []
        pack_size = 0
        try:
            for taxid in sorted(self._groups):
                group = self._groups[taxid]
                if not group.size:
                    continue
                if group.size >= policy.min_size:
                    yield self._cut(taxid, group)
                    continue
                if pack and pack_size + group.size > policy.max_size:
                    yield _planned(pack, pack_size)
                    pack, pack_size = [], 0
                pack.append((taxid, self._take(group)))
                pack_size += group.size
                group.size = 0
                if pack_size >= policy.min_size:
                    yield _planned(pack, pack_size)
                    pack, pack_size = [], 0
            if pack:
                yield _planned(pack, pack_size)
            self._groups.clear()
        finally:
            self.close()

    def close(self) -> None:
        """Drop the spill file (also done by :meth:`finish`)."""
        if self._spill is not None:
            self._spill.close()
            self._spill = None

    def __enter__(self) -> TaxonChunker:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals

    def _take(self, group: _Group) -> _Columns:
        """All open records of a group, spilled ones first (they came first), in input order."""
        columns = group.columns
        if group.spilled and self._spill is not None:
            joined = _Columns()
            for offset, length in group.spilled:
                self._spill.seek(offset)
                joined.extend(pickle.loads(self._spill.read(length)))
            joined.extend(columns)
            columns = joined
            group.spilled = []
        self._memory -= group.memory
        group.columns = _Columns()
        group.memory = 0
        return columns

    def _cut(self, taxid: int, group: _Group) -> PlannedChunk:
        size = group.size
        group.size = 0
        return _planned([(taxid, self._take(group))], size)

    def _spill_all(self) -> None:
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(  # noqa: SIM115 - closed by close()
                dir=self._spill_dir, prefix="talaria-chunking-"
            )
        spill = self._spill
        spill.seek(0, 2)
        for group in self._groups.values():
            if not group.columns.ordinals:
                continue
            data = pickle.dumps(group.columns, protocol=pickle.HIGHEST_PROTOCOL)
            group.spilled.append((spill.tell(), len(data)))
            spill.write(data)
            self.spilled_bytes += len(data)
            self._memory -= group.memory
            group.columns = _Columns()
            group.memory = 0


def _planned(parts: list[tuple[int, _Columns]], size: int) -> PlannedChunk:
    """One planned chunk of the columns of one or more groups (taxa in the order given)."""
    if len(parts) == 1:
        taxid, columns = parts[0]
        taxids: tuple[int, ...] = (taxid,) * len(columns.ordinals)
    else:
        columns = _Columns()
        taxid_list: list[int] = []
        for taxid, part in parts:
            columns.extend(part)
            taxid_list.extend([taxid] * len(part.ordinals))
        taxids = tuple(taxid_list)
    count = len(columns.ordinals)
    if columns.headers.count(b"\n") != count or columns.residues.count(b"\n") != count:
        raise ValueError("a header or a sequence contains a newline")
    return PlannedChunk(
        headers=bytes(columns.headers),
        residues=bytes(columns.residues),
        layouts=tuple(columns.layouts),
        taxids=taxids,
        ordinals=tuple(columns.ordinals),
        size=size,
        keys=bytes(columns.keys),
        plus=bytes(columns.plus) if columns.plus is not None else None,
        qualities=bytes(columns.qualities) if columns.qualities is not None else None,
    )


def plan_chunks(
    items: Iterable[tuple[SequenceRecord, int, SHA256Hash | bytes]],
    policy: ChunkingPolicy = ChunkingPolicy(),
    spill_dir: str | None = None,
) -> Iterator[PlannedChunk]:
    """Chunk a stream of (record, taxid, sequence hash); see the module docstring."""
    with TaxonChunker(policy, spill_dir) as chunker:
        for record, taxid, seq_hash in items:
            yield from chunker.add(record, taxid, seq_hash)
        yield from chunker.finish()
