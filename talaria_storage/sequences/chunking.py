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
an unsigned integer and ``s`` the record's size in bytes, the record closes
its chunk when ``h * (target_size - min_size) < s * 2**64``. A boundary is
thus as likely as the record is large, so the mean chunk size is about
``target_size`` whatever the mix of record lengths (proteins or genomes).

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

The record order inside a chunk is the input order of its group (packed
tails: by taxid, then input order). Each planned chunk carries the input
ordinals of its records so the database layer can restore file order for a
byte-exact export.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from talaria_storage.errors import ConfigError
from talaria_storage.hashing import SHA256Hash
from talaria_storage.sequences.fasta import FastqRecord, SequenceRecord

_PER_RECORD_OVERHEAD = 16  # lengths, layout index, taxid: what a record costs beyond its text


def record_size(record: SequenceRecord) -> int:
    """The bytes a record adds to a chunk, before compression (the unit of every size limit)."""
    size = len(record.header) + len(record.residues) + _PER_RECORD_OVERHEAD
    if isinstance(record, FastqRecord):
        size += len(record.plus) + len(record.qualities)
    return size


@dataclass(frozen=True, slots=True)
class ChunkingPolicy:
    """Size limits of chunks, in uncompressed record bytes (see :func:`record_size`)."""

    min_size: int = 1 << 20
    target_size: int = 4 << 20
    max_size: int = 16 << 20
    memory_budget: int = 256 << 20

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

    def is_boundary(self, seq_hash: bytes, size: int) -> bool:
        """True when a record with this hash and size closes its chunk (past min_size)."""
        return int.from_bytes(seq_hash[:8], "big") * (self.target_size - self.min_size) < size << 64


@dataclass(frozen=True, slots=True)
class PlannedChunk:
    """Records that go into one chunk, with their taxids and input positions."""

    records: tuple[SequenceRecord, ...]
    taxids: tuple[int, ...]
    ordinals: tuple[int, ...]
    size: int

    @property
    def taxa(self) -> tuple[int, ...]:
        """Distinct taxids, ascending."""
        return tuple(sorted(set(self.taxids)))


# One buffered record: (ordinal, size, record).
_Item = tuple[int, int, SequenceRecord]


@dataclass(slots=True)
class _Group:
    """The open (uncut) records of one taxon."""

    size: int = 0  # bytes since the group's last cut, spilled ones included
    items: list[_Item] = field(default_factory=list)  # in memory
    memory: int = 0  # bytes of ``items``
    spilled: list[tuple[int, int]] = field(
        default_factory=list
    )  # (offset, length) in the spill file


class TaxonChunker:
    """Streaming chunker: feed records with :meth:`add`, then call :meth:`finish`.

    Both return the chunks completed by that call. ``spill_dir`` is where the
    temporary spill file goes (default: the system temporary folder); it is
    created only if the memory budget is exceeded and removed by
    :meth:`finish` or :meth:`close`.
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
        self.spilled_bytes = 0  # for tests and reports: how much went to disk

    def add(
        self, record: SequenceRecord, taxid: int, seq_hash: SHA256Hash | bytes
    ) -> list[PlannedChunk]:
        """Add the next input record (``seq_hash``: its canonical sequence hash)."""
        digest = seq_hash.digest if isinstance(seq_hash, SHA256Hash) else seq_hash
        size = record_size(record)
        ordinal = self._ordinal
        self._ordinal += 1
        group = self._groups.get(taxid)
        if group is None:
            group = self._groups[taxid] = _Group()
        out: list[PlannedChunk] = []
        policy = self.policy
        if group.size and group.size + size > policy.max_size:
            out.append(self._cut(taxid, group))
        group.items.append((ordinal, size, record))
        group.size += size
        group.memory += size
        self._memory += size
        if group.size >= policy.min_size and policy.is_boundary(digest, size):
            out.append(self._cut(taxid, group))
        if self._memory > policy.memory_budget:
            self._spill_all()
        return out

    def finish(self) -> list[PlannedChunk]:
        """Cut every group's tail (packing the small ones) and release the spill file."""
        policy = self.policy
        out: list[PlannedChunk] = []
        pack: list[tuple[int, list[_Item]]] = []
        pack_size = 0
        for taxid in sorted(self._groups):
            group = self._groups[taxid]
            if not group.size:
                continue
            if group.size >= policy.min_size:
                out.append(self._cut(taxid, group))
                continue
            if pack and pack_size + group.size > policy.max_size:
                out.append(_planned_from_pack(pack))
                pack, pack_size = [], 0
            pack.append((taxid, self._take(group)))
            pack_size += group.size
            group.size = 0
            if pack_size >= policy.min_size:
                out.append(_planned_from_pack(pack))
                pack, pack_size = [], 0
        if pack:
            out.append(_planned_from_pack(pack))
        self._groups.clear()
        self.close()
        return out

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

    def _take(self, group: _Group) -> list[_Item]:
        """All open items of a group, spilled ones first (they came first), in input order."""
        items: list[_Item] = []
        if group.spilled and self._spill is not None:
            for offset, length in group.spilled:
                self._spill.seek(offset)
                items.extend(pickle.loads(self._spill.read(length)))
            group.spilled = []
        items.extend(group.items)
        self._memory -= group.memory
        group.items = []
        group.memory = 0
        return items

    def _cut(self, taxid: int, group: _Group) -> PlannedChunk:
        items = self._take(group)
        size = group.size
        group.size = 0
        return PlannedChunk(
            records=tuple(item[2] for item in items),
            taxids=(taxid,) * len(items),
            ordinals=tuple(item[0] for item in items),
            size=size,
        )

    def _spill_all(self) -> None:
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(  # noqa: SIM115 - closed by close()
                dir=self._spill_dir, prefix="talaria-chunking-"
            )
        spill = self._spill
        spill.seek(0, 2)
        for group in self._groups.values():
            if not group.items:
                continue
            data = pickle.dumps(group.items, protocol=pickle.HIGHEST_PROTOCOL)
            group.spilled.append((spill.tell(), len(data)))
            spill.write(data)
            self.spilled_bytes += len(data)
            self._memory -= group.memory
            group.items = []
            group.memory = 0


def _planned_from_pack(pack: list[tuple[int, list[_Item]]]) -> PlannedChunk:
    records: list[SequenceRecord] = []
    taxids: list[int] = []
    ordinals: list[int] = []
    size = 0
    for taxid, items in pack:
        for ordinal, item_size, record in items:
            records.append(record)
            taxids.append(taxid)
            ordinals.append(ordinal)
            size += item_size
    return PlannedChunk(tuple(records), tuple(taxids), tuple(ordinals), size)


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
