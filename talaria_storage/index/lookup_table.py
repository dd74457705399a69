"""LookupTable: a version's look-up index, stored in the store as immutable objects.

An import writes, beside its record chunks, a table from the fingerprint
of every key a record answers to (its names and its sequence's digests,
see :mod:`talaria_storage.sequences.identifiers`) to the record's ordinal
in the version (records numbered in manifest chunk order). The table is
sorted by fingerprint and cut into *partitions* of about
:data:`PARTITION_ROWS` rows, each a content-addressed object; the manifest
lists every partition with its first fingerprint (the fence keys, as an
SSTable's index block does), so a look-up reads the manifest, then one
partition, then the record's chunk: nothing is built, in a fresh process or
against a remote store, and gc, verify and sync see the partitions as
objects the version needs.

Why fingerprints, not keys. A table of the keys themselves (UniProt's
first words, 64-hex digests) was 4-6x larger than the fingerprints. A
fingerprint is the top ``fingerprint_bytes`` bytes of a 64-bit hash of the
key (a digest key is its own hash: its first eight bytes), wide enough that
a key meets another key's fingerprint about once in a thousand look-ups; the
layer above checks every candidate against the record itself (the name is
in its header, the digest is its sequence's), so a collision costs one more
record read, never a wrong record.

Why this layout. Measured on uniprot15 (82,814 records, 414,070 keys),
rows in byte planes (the high planes of sorted fingerprints are long runs)
then zstd: about 4.5 bytes per row with 4-byte fingerprints; at the store's
default codec the table is 1.85 MB, 9 % of the database's other objects
(``benchmarks/bench_lookups.py``). Format 1 stored the fingerprints'
deltas, 6 % smaller (1.74 MB), but a partition then decoded through a
running sum of 16,384 Python integers: 0.5 ms of its 0.54, and a fifth of
the instructions of 1,000 cold look-ups (callgrind). Format 2 planes hold
the fingerprints themselves, and decode in C (slice assignment) alone.
Format 1 partitions are still read. The ordinals are the part that does
not compress (a permutation: log2(records) bits each, whatever the layout),
which is also why a minimal perfect hash would save only the fingerprint
bytes' share. A partition decodes by slice assignments of its byte planes,
in C and without numpy (whose import would cost a fresh process ~50 ms),
and is then searched as plain arrays.

A partition object (compressed by the store's configured codec)::

    header   magic "TLKP", format 2, fingerprint bytes F, value bytes V,
             u32 rows, u64 first fingerprint                  (20 bytes)
    F planes the rows' fingerprints, most significant byte first
             (format 1: their deltas from the previous row's, the first's from the header's)
    V planes the rows' values (record ordinals), likewise

Rows with one fingerprint (a sequence many records carry) are never split
between two partitions, so one partition answers a fingerprint whole.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Any

import zstandard

from talaria_storage.core.errors import ChunkNotFound, CompressionError, HashMismatch, StorageError
from talaria_storage.core.hashing import SHA256Hash

FORMAT = 1
#: A partition's own format (its header's second field): 2 holds fingerprints, 1 their deltas.
PARTITION_FORMAT = 2
#: Rows per partition: ~65 KB of compressed partition on UniProt-like keys, so a look-up
#: against a remote store reads one small object, and a store of 10^9 rows has 60,000.
PARTITION_ROWS = 16384
#: Decoded partitions a table keeps (16 bytes a row: ~260 KB each).
CACHED_PARTITIONS = 64

_MAGIC = b"TLKP"
_HEAD = struct.Struct(">4sBBBxIQ")


class LookupTableDamaged(StorageError):
    """A partition of a stored look-up table is missing, fails its hash or does not decode."""


# Copied per name, never updated itself: a copy costs half of a new hash object made with its
# digest_size keyword (0.6 against 1.3 us), on every look-up and every record an import indexes.
_NAME_HASH = hashlib.blake2b(digest_size=8)


def name_fingerprint(name: bytes) -> int:
    """The 64-bit fingerprint of a name key (BLAKE2b with an 8-byte digest)."""
    found = _NAME_HASH.copy()
    found.update(name)
    return int.from_bytes(found.digest(), "big")


def digest_fingerprint(digest: bytes) -> int:
    """The fingerprint of a digest key: its own first 8 bytes (already uniformly spread)."""
    return int.from_bytes(digest[:8], "big")


def fingerprint_bytes(rows: int) -> int:
    """Fingerprint bytes kept per row: enough for ~1 chance collision per 1,000 look-ups (3 for
    ResFinder's 8,520 rows, 4 for UniProt's 414,070, 5 past 4 million)."""
    bits = max(rows, 1).bit_length() + 10
    return min(8, max(2, (bits + 7) // 8))


def value_bytes(largest: int) -> int:
    """Bytes for values up to ``largest`` (record ordinals: 3 covers 16.7 million records)."""
    return max(1, (max(largest, 0).bit_length() + 7) // 8)


@dataclass(frozen=True, slots=True)
class LookupPartition:
    """One partition object: its first fingerprint (truncated), hash, stored size and rows."""

    first: int
    hash: SHA256Hash
    size: int
    rows: int


@dataclass(frozen=True, slots=True)
class LookupTableRef:
    """What a manifest says about its look-up table: widths, row count and the partitions."""

    fingerprint_bytes: int
    value_bytes: int
    rows: int
    partitions: tuple[LookupPartition, ...]

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "fingerprint_bytes": self.fingerprint_bytes,
            "value_bytes": self.value_bytes,
            "rows": self.rows,
            "partitions": [[p.first, p.hash.to_hex(), p.size, p.rows] for p in self.partitions],
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> LookupTableRef:
        """Read a manifest's ``lookup`` section (ValueError/KeyError/TypeError when malformed)."""
        if int(doc["format"]) != FORMAT:
            raise ValueError(f"look-up table format {doc['format']} is not {FORMAT}")
        width, values = int(doc["fingerprint_bytes"]), int(doc["value_bytes"])
        if not (1 <= width <= 8 and 1 <= values <= 8):
            raise ValueError(f"look-up table widths {width}/{values} are out of range")
        partitions = tuple(
            LookupPartition(int(first), SHA256Hash.from_hex(h), int(size), int(rows))
            for first, h, size, rows in doc["partitions"]
        )
        if any(a.first > b.first for a, b in pairwise(partitions)):
            raise ValueError("look-up table partitions are not in fingerprint order")
        return cls(width, values, int(doc["rows"]), partitions)


def partition_header(width: int, value_width: int, rows: int, first: int) -> bytes:
    """The 20-byte header of a partition (see the module docstring)."""
    return _HEAD.pack(_MAGIC, PARTITION_FORMAT, width, value_width, rows, first)


def _from_planes(data: memoryview, rows: int, width: int) -> array:
    """``rows`` unsigned integers from ``width`` byte planes (most significant plane first).

    Without numpy, on purpose: a look-up in a fresh process would otherwise import it
    (~70 ms) to decode one partition. Each plane is dropped into its byte of the
    little-endian 8-byte words by one strided slice assignment, which runs in C: a
    partition of 16,384 rows decodes in about a millisecond.
    """
    words = bytearray(rows * 8)
    for plane in range(width):
        words[width - 1 - plane :: 8] = data[plane * rows : (plane + 1) * rows]
    out = array("Q", words)
    if sys.byteorder == "big":
        out.byteswap()
    return out


def decode_partition(data: bytes) -> tuple[array, array]:
    """(fingerprints, values) of a partition's bytes; ValueError when they are not one."""
    if len(data) < _HEAD.size:
        raise ValueError("shorter than a partition header")
    magic, fmt, width, value_width, rows, first = _HEAD.unpack_from(data)
    if magic != _MAGIC or fmt not in (1, PARTITION_FORMAT):
        raise ValueError("not a look-up table partition")
    if len(data) != _HEAD.size + rows * (width + value_width):
        raise ValueError(f"{len(data)} bytes do not hold {rows} rows of {width}+{value_width} bytes")
    body = memoryview(data)[_HEAD.size :]
    # Kept as plain arrays: a look-up is one bisect on them, ~10x cheaper than np.searchsorted
    # on a numpy array.
    fingerprints = _from_planes(body, rows, width)
    if fmt == 1:  # deltas from ``first``: their running sum
        fingerprints = array("Q", accumulate(fingerprints, initial=first))
        del fingerprints[0]
    return fingerprints, _from_planes(body[rows * width :], rows, value_width)


class LookupTable:
    """Reads a stored look-up table: fingerprint -> candidate values, one partition per look-up.

    ``read`` returns an object's verified bytes (``Store.get_chunk``); ``where``
    names the version in errors. Decoded partitions are kept (up to
    :data:`CACHED_PARTITIONS`), so look-ups that land in one partition read it once.
    """

    def __init__(self, read: Callable[[SHA256Hash], bytes], ref: LookupTableRef, where: str) -> None:
        self._read = read
        self.ref = ref
        self.where = where
        #: A 64-bit fingerprint >> shift is this table's key (its kept fingerprint bytes).
        self.shift = 64 - 8 * ref.fingerprint_bytes
        self._firsts = [p.first for p in ref.partitions]
        self._decoded: OrderedDict[int, tuple[array, array]] = OrderedDict()

    def find(self, fingerprint: int) -> list[int]:
        """The values of every row whose fingerprint matches (candidates, to be checked)."""
        key = fingerprint >> self.shift
        i = bisect_right(self._firsts, key) - 1
        if i < 0:
            return []
        partition = self._decoded.get(i)
        if partition is None:
            partition = self._partition(i)
        else:
            self._decoded.move_to_end(i)
        fingerprints, values = partition
        at = bisect_left(fingerprints, key)
        found = []
        while at < len(fingerprints) and fingerprints[at] == key:  # one row, as a rule: no second bisection
            found.append(values[at])
            at += 1
        return found

    def _partition(self, i: int) -> tuple[array, array]:
        """Partition ``i`` read, checked and kept (:meth:`find` looks in the kept ones first)."""
        part = self.ref.partitions[i]
        try:
            found = decode_partition(self._read(part.hash))
        except (ChunkNotFound, HashMismatch, CompressionError, ValueError) as exc:
            raise LookupTableDamaged(
                f"look-up partition {part.hash.to_hex()} of {self.where} is unreadable ({exc}); "
                "look-ups fall back to the local index: restore the object (sync pull) or re-import"
            ) from None
        if len(found[0]) != part.rows:
            raise LookupTableDamaged(f"look-up partition {part.hash.to_hex()} of {self.where} has "
                                     f"{len(found[0])} rows, its manifest says {part.rows}")
        self._decoded[i] = found
        if len(self._decoded) > CACHED_PARTITIONS:
            self._decoded.popitem(last=False)
        return found


# ---------------------------------------------------------------------------- layers across versions


class OrdinalMap:
    """Where the records of an earlier version's table are in this version: runs of
    (first ordinal there, first ordinal here, length); an ordinal in no run is a record this
    version does not have (removed, or changed and indexed again in its own layer)."""

    __slots__ = ("_dst", "_len", "_src")

    _RUN = struct.Struct(">III")

    def __init__(self, runs: list[tuple[int, int, int]]) -> None:
        runs = sorted(runs)
        self._src = [r[0] for r in runs]
        self._dst = [r[1] for r in runs]
        self._len = [r[2] for r in runs]

    @property
    def runs(self) -> list[tuple[int, int, int]]:
        return list(zip(self._src, self._dst, self._len))

    def __call__(self, ordinal: int) -> int | None:
        i = bisect_right(self._src, ordinal) - 1
        if i < 0 or ordinal >= self._src[i] + self._len[i]:
            return None
        return self._dst[i] + ordinal - self._src[i]

    def to_text(self) -> str:
        """The runs, packed, compressed and base64-encoded (kept in the manifest: no extra object
        to read before a look-up)."""
        packed = b"".join(self._RUN.pack(*run) for run in self.runs)
        return base64.b64encode(zstandard.ZstdCompressor(level=19).compress(packed)).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> OrdinalMap:
        """The map :meth:`to_text` wrote; ValueError when ``text`` is not one."""
        try:
            packed = zstandard.ZstdDecompressor().decompress(base64.b64decode(text, validate=True))
        except zstandard.ZstdError as exc:
            raise ValueError(f"an ordinal map does not decompress ({exc})") from None
        if len(packed) % cls._RUN.size:
            raise ValueError("an ordinal map is not a whole number of runs")
        return cls(list(cls._RUN.iter_unpack(packed)))


_MASK64 = (1 << 64) - 1


def spread(x: Any) -> Any:
    """splitmix64's finaliser on a 64-bit int, or elementwise on a numpy ``uint64`` array (the
    same arithmetic, masked to 64 bits), so a filter built with numpy is probed without it."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


class FingerprintFilter:
    """A Bloom filter of one small layer's keys (its truncated fingerprints), kept in the manifest.

    Why: a version layered over earlier ones reads one partition per layer,
    so against a remote store each layer is a request. A release that
    changed 1 % of the records has a small layer of its own; its filter
    (10 bits a row, 7 probes: about 1 false "maybe" in 120 look-ups) lets a
    look-up of any other record skip that layer without reading it. Written
    here, not taken from a Bloom-filter library: the keys are already
    uniform hashes, and the bits are part of the stored format, which a
    library's own hashing and serialisation would tie to its version.
    Probe ``i`` of a key sets bit ``(h1 + i * h2) mod bits`` of
    ``spread(key)`` = ``h2 << 32 | h1`` (``h2`` made odd), bit ``b`` being
    bit ``b % 8`` of byte ``b // 8``.
    """

    BITS_PER_ROW = 10
    PROBES = 7

    __slots__ = ("_bits", "_m", "probes")

    def __init__(self, bits: bytes, probes: int = PROBES) -> None:
        if not bits or not 1 <= probes <= 32:
            raise ValueError(f"a fingerprint filter needs bits and 1..32 probes, got {len(bits)} bytes, {probes}")
        self._bits = bits
        self._m = 8 * len(bits)
        self.probes = probes

    @property
    def nbytes(self) -> int:
        return len(self._bits)

    def may_contain(self, key: int) -> bool:
        """False when ``key`` is certainly not in the layer; True when it may be."""
        h = spread(key)
        h1, h2 = h & 0xFFFFFFFF, (h >> 32) | 1
        bits, m = self._bits, self._m
        for i in range(self.probes):
            b = (h1 + i * h2) % m
            if not bits[b >> 3] >> (b & 7) & 1:
                return False
        return True

    def to_text(self) -> str:
        return f"{self.probes}:" + base64.b64encode(self._bits).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> FingerprintFilter:
        """The filter :meth:`to_text` wrote; ValueError when ``text`` is not one."""
        probes, _, bits = text.partition(":")
        try:
            return cls(base64.b64decode(bits, validate=True), int(probes))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"a fingerprint filter does not decode ({exc})") from None


@dataclass(frozen=True, slots=True)
class LookupLayer:
    """One table of a version's look-up index: its own (``ordinals`` None: values are this
    version's ordinals) or an earlier version's, read through an :class:`OrdinalMap`; a small
    layer carries a :class:`FingerprintFilter` of its keys."""

    table: LookupTableRef
    ordinals: OrdinalMap | None = None
    filter: FingerprintFilter | None = None


@dataclass(frozen=True, slots=True)
class LookupIndexRef:
    """A manifest's ``lookup`` section: the layers a look-up reads, newest first.

    A new version whose records are mostly those of the version before
    indexes only its new or changed records in a table of its own, and reads
    the earlier tables through ordinal maps (see
    :func:`~talaria_storage.index.lookup_table_writer.build_lookup_index`):
    a release that changes 1 % of the records adds about that much table.
    """

    layers: tuple[LookupLayer, ...]

    @property
    def partitions(self) -> tuple[LookupPartition, ...]:
        """Every partition of every layer: the objects the version needs for look-ups."""
        return tuple(p for layer in self.layers for p in layer.table.partitions)

    @property
    def rows(self) -> int:
        return sum(layer.table.rows for layer in self.layers)

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "layers": [
                {
                    **layer.table.to_doc(),
                    "ordinals": None if layer.ordinals is None else layer.ordinals.to_text(),
                    **({} if layer.filter is None else {"filter": layer.filter.to_text()}),
                }
                for layer in self.layers
            ],
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> LookupIndexRef:
        """Read a manifest's ``lookup`` section (ValueError/KeyError/TypeError when malformed)."""
        if int(doc["format"]) != FORMAT:
            raise ValueError(f"look-up index format {doc['format']} is not {FORMAT}")
        layers = []
        for layer in doc["layers"]:
            ordinals, kept = layer.get("ordinals"), layer.get("filter")
            layers.append(
                LookupLayer(
                    LookupTableRef.from_doc(layer),
                    OrdinalMap.from_text(ordinals) if ordinals is not None else None,
                    FingerprintFilter.from_text(kept) if kept is not None else None,
                )
            )
        return cls(tuple(layers))


class LookupIndex:
    """Reads a version's look-up index: every layer's candidates, as this version's ordinals."""

    def __init__(self, read: Callable[[SHA256Hash], bytes], ref: LookupIndexRef, where: str) -> None:
        self.ref = ref
        self._layers = [
            (LookupTable(read, layer.table, where), layer.ordinals, layer.filter) for layer in ref.layers
        ]
        if len(self._layers) == 1 and self._layers[0][1] is None:
            # A version indexed in one table of its own (every first version): its ordinals are
            # this version's, and a look-up calls that table straight away.
            self.find = self._layers[0][0].find  # type: ignore[method-assign]

    def find(self, fingerprint: int) -> list[int]:
        """This version's ordinals of the rows matching ``fingerprint``, in every layer."""
        found: list[int] = []
        for table, ordinals, kept in self._layers:
            if kept is not None and not kept.may_contain(fingerprint >> table.shift):
                continue  # certainly not in this layer: its partition is not read
            values = table.find(fingerprint)
            if ordinals is None:
                found += values
            else:
                found += [o for o in map(ordinals, values) if o is not None]
        return found
