"""The delta index of a reduction profile: child -> delta chunk, reference -> delta chunks.

Why this shape. :meth:`DeltaStorage.find_delta_for_child` and
:meth:`DeltaStorage.get_deltas_for_reference` must work on every backend
without listing the store. Two designs were weighed:

* one empty marker object per entry (``deltas/by-child/<child>/<delta>``),
  found by a prefix listing: one PUT per member on S3, GCS or Azure (millions
  for a UniProt reduction), a namespace gc has to sweep entry by entry, and a
  listing request per look-up;
* immutable sorted tables stored as content-addressed objects, referenced
  from the reduction manifest: LevelDB's table layout (STYLE.md §13). Writing
  costs a few objects per profile; a look-up reads the small top object and
  one partition, both immutable and so cacheable forever; gc, sync and verify
  treat them like any other chunk; a partition whose entries did not change
  (``reduce --update``, two profiles of one database) is stored once.

The second is used. An index is two tables, each split into ``2**bits``
partitions by the leading bits of the key hash, with ``bits`` chosen so a
partition holds about :data:`PARTITION_ENTRIES` entries (keys are SHA-256, so
they spread evenly). Formats (version 1, little-endian)::

    top:        b"TDIX" u8 version, then per table (children, references):
                u8 bits  u64 entries  (2**bits) x partition hash[32]
    partition:  b"TDIP" u8 version  u32 count  count x (key[32] value[32]),
                sorted, no duplicates

Both are ``chunks/`` objects; the top object's hash is written in the
reduction manifest (:mod:`.reductions`).
"""

from __future__ import annotations

import bisect
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar, cast

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.storage.chunk_store import ChunkStore

TOP_MAGIC = b"TDIX"
PARTITION_MAGIC = b"TDIP"
FORMAT_VERSION = 1
#: Entries per partition aimed at: 2048 x 64 bytes = 128 KiB, one small read per look-up.
PARTITION_ENTRIES = 2048
#: At most 2**16 partitions per table (134 million entries at the aimed size).
MAX_BITS = 16
_ENTRY = 64
_HEAD = struct.Struct("<4sB")
_TABLE = struct.Struct("<BQ")
_COUNT = struct.Struct("<I")

Pair = tuple[SHA256Hash, SHA256Hash]
T = TypeVar("T")


def bits_for(entries: int) -> int:
    """The partition bits that keep a table's partitions near :data:`PARTITION_ENTRIES` entries."""
    bits = 0
    while bits < MAX_BITS and entries > PARTITION_ENTRIES << bits:
        bits += 1
    return bits


def _partition_of(key: bytes, bits: int) -> int:
    return int.from_bytes(key[:2], "big") >> (16 - bits) if bits else 0


@dataclass(frozen=True, slots=True)
class Table:
    """One table of an index: how it is split, and the partition objects."""

    bits: int
    entries: int
    partitions: tuple[SHA256Hash, ...]


@dataclass(frozen=True, slots=True)
class DeltaIndex:
    """A parsed top object: the children table and the references table."""

    children: Table
    references: Table

    def object_hashes(self) -> set[SHA256Hash]:
        """The partition objects this index needs (its top object is named by the manifest)."""
        return set(self.children.partitions) | set(self.references.partitions)


def _encode_partition(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join([_HEAD.pack(PARTITION_MAGIC, FORMAT_VERSION), _COUNT.pack(len(pairs))] + [k + v for k, v in pairs])


def _write_table(store: ChunkStore, pairs: Iterable[Pair]) -> Table:
    entries = sorted({(key.digest, value.digest) for key, value in pairs})
    bits = bits_for(len(entries))
    buckets: list[list[tuple[bytes, bytes]]] = [[] for _ in range(1 << bits)]
    for key, value in entries:
        buckets[_partition_of(key, bits)].append((key, value))
    hashes = [store.store_chunk(_encode_partition(bucket)) for bucket in buckets]
    return Table(bits, len(entries), tuple(hashes))


def write(store: ChunkStore, by_child: Iterable[Pair], by_reference: Iterable[Pair]) -> SHA256Hash:
    """Store the partitions, then the top object, of the index of these (key, delta chunk) pairs."""
    tables = [_write_table(store, by_child), _write_table(store, by_reference)]
    out = [_HEAD.pack(TOP_MAGIC, FORMAT_VERSION)]
    for table in tables:
        out.append(_TABLE.pack(table.bits, table.entries))
        out.extend(h.digest for h in table.partitions)
    return store.store_chunk(b"".join(out))


def parse_top(data: bytes, where: str) -> DeltaIndex:
    """Parse a top object; a one-line error naming ``where`` when it is not one."""
    try:
        magic, version = _HEAD.unpack_from(data, 0)
        if magic != TOP_MAGIC or version != FORMAT_VERSION:
            raise ValueError(f"header {magic!r} v{version}")
        pos = _HEAD.size
        tables = []
        for _ in range(2):
            bits, entries = _TABLE.unpack_from(data, pos)
            pos += _TABLE.size
            if bits > MAX_BITS:
                raise ValueError(f"{bits} partition bits")
            count = 1 << bits
            hashes = tuple(SHA256Hash(data[pos + i * 32 : pos + (i + 1) * 32]) for i in range(count))
            pos += count * 32
            tables.append(Table(bits, entries, hashes))
        if pos != len(data):
            raise ValueError(f"{len(data) - pos} stray bytes")
    except (struct.error, ValueError) as exc:
        raise StorageError(f"{where} is not a delta index ({exc}): restore it from a remote or re-run reduce") from None
    return DeltaIndex(tables[0], tables[1])


@dataclass(frozen=True, slots=True)
class Partition:
    """A parsed partition: keys and values in sorted order, for binary search."""

    keys: list[bytes]
    values: list[bytes]

    def values_of(self, key: SHA256Hash) -> list[SHA256Hash]:
        """Every value recorded for ``key`` (sorted)."""
        i = bisect.bisect_left(self.keys, key.digest)
        found: list[SHA256Hash] = []
        while i < len(self.keys) and self.keys[i] == key.digest:
            found.append(SHA256Hash(self.values[i]))
            i += 1
        return found


def parse_partition(data: bytes, where: str) -> Partition:
    try:
        magic, version = _HEAD.unpack_from(data, 0)
        (count,) = _COUNT.unpack_from(data, _HEAD.size)
        start = _HEAD.size + _COUNT.size
        if magic != PARTITION_MAGIC or version != FORMAT_VERSION or len(data) != start + count * _ENTRY:
            raise ValueError(f"header {magic!r} v{version}, {count} entries in {len(data)} bytes")
    except (struct.error, ValueError) as exc:
        raise StorageError(f"{where} is not a delta index partition ({exc}): restore it or re-run reduce") from None
    keys = [data[start + i * _ENTRY : start + i * _ENTRY + 32] for i in range(count)]
    values = [data[start + i * _ENTRY + 32 : start + (i + 1) * _ENTRY] for i in range(count)]
    return Partition(keys, values)


def lookup(table: Table, key: SHA256Hash, partition: Callable[[SHA256Hash], Partition]) -> list[SHA256Hash]:
    """The values of ``key`` in ``table``, reading one partition through ``partition``."""
    if table.entries == 0:
        return []
    return partition(table.partitions[_partition_of(key.digest, table.bits)]).values_of(key)


class ObjectCache:
    """Parsed immutable objects by hash, least recently used dropped first.

    Content-addressed objects never change, so an entry is never stale; the
    bound only limits memory. (The sequences layer's LRU cache sits above this
    layer, so it cannot be imported here.)
    """

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, SHA256Hash], object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, kind: str, h: SHA256Hash, load: Callable[[], T]) -> T:
        """The ``kind`` object ``h``, parsed by ``load`` on first use."""
        key = (kind, h)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return cast(T, self._items[key])
        value = load()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value
