"""Writing a stored look-up table: rows sorted and cut into partition objects.

The format and the reader are :mod:`talaria_storage.index.lookup_table`;
this half sorts and cuts the hundreds of thousands of rows of an import.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.lazy_module import LazyModule
from talaria_storage.index.lookup_table import (
    PARTITION_ROWS,
    FingerprintFilter,
    LookupIndexRef,
    LookupLayer,
    LookupPartition,
    LookupTableDamaged,
    LookupTableRef,
    OrdinalMap,
    decode_partition,
    fingerprint_bytes,
    partition_header,
    spread,
    value_bytes,
)

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy")  # imported on first use: a look-up never needs it (core.lazy_module)


def _planes(values: np.ndarray, width: int) -> bytes:
    """``values`` as ``width`` byte planes, most significant first."""
    as_bytes = values.astype(">u8").view(np.uint8).reshape(-1, 8)[:, 8 - width :]
    return np.ascontiguousarray(as_bytes.T).tobytes()


def encode_partition(fingerprints: np.ndarray, values: np.ndarray, width: int, value_width: int) -> bytes:
    """One partition's bytes: sorted truncated fingerprints and their values (see the module docstring)."""
    first = int(fingerprints[0]) if len(fingerprints) else 0
    head = partition_header(width, value_width, len(fingerprints), first)
    return head + _planes(fingerprints, width) + _planes(values, value_width)


def write_lookup_table(
    store_chunk: Callable[[bytes], SHA256Hash],
    fingerprints: np.ndarray,
    values: np.ndarray,
    *,
    partition_rows: int = PARTITION_ROWS,
    width: int | None = None,
) -> LookupTableRef:
    """Sort the rows, cut them into partitions, store each with ``store_chunk``; the table's ref.

    ``fingerprints`` are 64-bit (:func:`name_fingerprint`, :func:`digest_fingerprint`);
    ``values`` the record ordinals. Equal rows are kept once. ``width``: fingerprint
    bytes to keep (default :func:`fingerprint_bytes` of the rows).
    """
    rows = len(fingerprints)
    width = width or fingerprint_bytes(rows)
    shift = np.uint64(64 - 8 * width)
    truncated = np.asarray(fingerprints, dtype=np.uint64) >> shift
    values = np.asarray(values, dtype=np.uint64)
    value_width = value_bytes(int(values.max()) if rows else 0)
    if width + value_width <= 8:
        # Each row as one integer, fingerprint above value: one sort of them orders the rows as
        # lexsort does, in a fifteenth of its time (uniprot15's 414,070 rows: 6 against 88 ms,
        # at the end of every import, in its main process).
        bits = np.uint64(8 * value_width)
        packed = np.unique((truncated << bits) | values)
        truncated, values = packed >> bits, packed & ((np.uint64(1) << bits) - np.uint64(1))
    else:
        order = np.lexsort((values, truncated))
        truncated, values = truncated[order], values[order]
        if rows:
            keep = np.ones(rows, dtype=bool)
            keep[1:] = (truncated[1:] != truncated[:-1]) | (values[1:] != values[:-1])
            truncated, values = truncated[keep], values[keep]
    rows = len(truncated)
    partitions: list[LookupPartition] = []
    start = 0
    while start < rows:
        end = min(rows, start + partition_rows)
        if end < rows:  # never split one fingerprint's rows: move the cut past them
            end = int(np.searchsorted(truncated, truncated[end - 1], side="right"))
        data = encode_partition(truncated[start:end], values[start:end], width, value_width)
        partitions.append(LookupPartition(int(truncated[start]), store_chunk(data), len(data), end - start))
        start = end
    return LookupTableRef(width, value_width, rows, tuple(partitions))


#: Layers a version's look-up index may read; past it, the small layers are folded into the
#: new one. Measured on the 14 ResFinder releases,
#: 2 layers stored 244 KB of tables, 3 layers 167 KB, 4 layers 165 KB (one whole table per
#: release: 684 KB). A look-up reads one partition of each layer that may hold its key: the
#: small layers carry a Bloom filter (FingerprintFilter), so a key of the big layer reads that
#: layer's partition alone (1 % of the time one more, a false positive). What else a layered
#: version's remote look-up reads is its record chunk's dictionary chain: bench_remote_cache's
#: third release took 10 requests, the ref, the manifest, one partition, the record chunk and
#: the four it is compressed against (two of each earlier release), the pack's head and block.
MAX_LAYERS = 3
#: A version writes one whole table when more than this share of its rows would be its own
#: layer, or when less than it of the earlier layers' rows are still live (removed records).
COMPACT_SHARE = 0.5
#: A version's own layer of at most this many rows gets a :class:`FingerprintFilter` (12.5 bytes a
#: row, base64, in the manifest: 40 KB at most), so a look-up of a record it does not hold skips
#: it. uniprot15 with 1 % of records changed: ~4,000 rows, a 5 KB filter.
FILTERED_ROWS = 32768
#: ... and only when it holds at most this share of the version's rows. A filter is copied into
#: every later manifest that keeps its layer, while the partition it lets a look-up skip is
#: read once: a release that rewrote a fifth of ResFinder's records kept 6 KB of filter in each
#: of its successors' manifests (its 14 releases: 45 KB of filters, 97.7 KB of manifests).
FILTERED_SHARE = 1 / 8


def build_lookup_index(
    store_chunk: Callable[[bytes], SHA256Hash],
    read: Callable[[SHA256Hash], bytes],
    fingerprints: np.ndarray,
    ordinals: np.ndarray,
    parent: LookupIndexRef | None = None,
    *,
    partition_rows: int = PARTITION_ROWS,
) -> LookupIndexRef:
    """A version's look-up index: its rows (64-bit ``fingerprints``, record ``ordinals``),
    layered over ``parent``'s (the version it was imported on) where that saves rows.

    A record of this version whose keys (names and digests) are exactly those of a record
    of the parent is not indexed again: the parent's layers are kept and read through an
    :class:`OrdinalMap` to this version's ordinals, and only the other records' rows make a
    new table. Records are matched by a 64-bit digest of their key fingerprints, so two
    records with different keys match by chance about once in 10^19 pairs (the record would
    then not be found by its keys; never a wrong one, since look-ups check every record).
    """
    fingerprints = np.asarray(fingerprints, dtype=np.uint64)
    ordinals = np.asarray(ordinals, dtype=np.uint64)
    if parent is not None and parent.layers:
        layered = _layered(store_chunk, read, fingerprints, ordinals, parent, partition_rows)
        if layered is not None:
            return layered
    table = write_lookup_table(store_chunk, fingerprints, ordinals, partition_rows=partition_rows)
    return LookupIndexRef((LookupLayer(table),))


def _layered(
    store_chunk: Callable[[bytes], SHA256Hash],
    read: Callable[[SHA256Hash], bytes],
    fingerprints: np.ndarray,
    ordinals: np.ndarray,
    parent: LookupIndexRef,
    partition_rows: int,
) -> LookupIndexRef | None:
    """The layered index, or None when one whole table is the better choice.

    When the layers would pass :data:`MAX_LAYERS`, every kept layer but the
    largest is folded into the new one (its rows re-read, at its fingerprint
    width), as a log-structured merge folds its small runs and keeps the big
    one: a long history of small releases never rewrites the bulk of the table.
    """
    # Records are compared by the fingerprint bits every layer keeps (16 to 32 per key).
    bits = min(32, 8 * min(layer.table.fingerprint_bytes for layer in parent.layers))
    rows = [_rows(read, layer.table) for layer in parent.layers]
    to_parent = [_dense(layer.ordinals, values) for layer, (_, values) in zip(parent.layers, rows)]
    parent_top, parent_ord = [], []
    for layer, (fps, values), dense in zip(parent.layers, rows, to_parent):
        mapped = dense[values.astype(np.int64)] if len(values) else np.zeros(0, dtype=np.int64)
        keep = mapped >= 0
        parent_top.append(fps[keep] >> np.uint64(8 * layer.table.fingerprint_bytes - bits))
        parent_ord.append(mapped[keep].astype(np.uint64))
    parent_to_here = _match(
        _digests(np.concatenate(parent_top), np.concatenate(parent_ord)),
        _digests(fingerprints >> np.uint64(64 - bits), ordinals),
    )
    matched_here = np.zeros(int(ordinals.max()) + 1 if len(ordinals) else 0, dtype=bool)
    matched_here[parent_to_here[parent_to_here >= 0]] = True
    new = ~matched_here[ordinals.astype(np.int64)] if len(ordinals) else np.zeros(0, dtype=bool)
    if new.sum() > COMPACT_SHARE * len(ordinals):
        return None
    kept: list[tuple[LookupLayer, np.ndarray, np.ndarray, np.ndarray]] = []  # (layer, here, fps, values)
    live = total = 0
    for layer, (fps, values), dense in zip(parent.layers, rows, to_parent):
        reach = int(dense.max()) + 1 if len(dense) else 0
        if reach > len(parent_to_here):  # parent ordinals no live row named: nothing here
            parent_to_here = np.concatenate([parent_to_here, np.full(reach - len(parent_to_here), -1, dtype=np.int64)])
        here = np.where(dense >= 0, parent_to_here[np.maximum(dense, 0)], -1) if len(dense) else dense
        total += layer.table.rows
        alive = int((here[values.astype(np.int64)] >= 0).sum()) if len(values) else 0
        if alive:
            live += alive
            kept.append((layer, here, fps, values))
    if total and live < COMPACT_SHARE * total:
        return None
    own_fps, own_ords = fingerprints[new], ordinals[new]
    width = None
    if len(kept) + bool(new.any()) > MAX_LAYERS:
        base = max(kept, key=lambda k: k[0].table.rows)
        folded = [k for k in kept if k is not base]
        for layer, here, fps, values in folded:
            mapped = here[values.astype(np.int64)]
            keep = mapped >= 0
            own_fps = np.concatenate([own_fps, fps[keep] << np.uint64(64 - 8 * layer.table.fingerprint_bytes)])
            own_ords = np.concatenate([own_ords, mapped[keep].astype(np.uint64)])
        # A folded row keeps only its layer's fingerprint bytes: the merged table keeps no more.
        width = min([fingerprint_bytes(len(own_fps))] + [k[0].table.fingerprint_bytes for k in folded])
        if width < fingerprint_bytes(len(own_fps)) - 1:
            return None  # too narrow for its rows: one whole table instead
        kept = [base]
    layers = [LookupLayer(layer.table, OrdinalMap(_runs(here)), layer.filter) for layer, here, _, _ in kept]
    if len(own_fps):
        own = write_lookup_table(store_chunk, own_fps, own_ords, partition_rows=partition_rows, width=width)
        keys = own_fps >> np.uint64(64 - 8 * own.fingerprint_bytes)
        filtered = len(keys) <= min(FILTERED_ROWS, FILTERED_SHARE * len(fingerprints))
        layers.insert(0, LookupLayer(own, None, fingerprint_filter(keys) if filtered else None))
    return LookupIndexRef(tuple(layers))


def fingerprint_filter(keys: np.ndarray) -> FingerprintFilter:
    """The :class:`FingerprintFilter` of a layer's keys (truncated fingerprints, ``uint64``)."""
    keys = np.unique(np.asarray(keys, dtype=np.uint64))
    bits = np.zeros(max(1, (FingerprintFilter.BITS_PER_ROW * len(keys) + 7) // 8), dtype=np.uint8)
    m = np.uint64(8 * len(bits))
    h = spread(keys)
    h1, h2 = h & np.uint64(0xFFFFFFFF), (h >> np.uint64(32)) | np.uint64(1)
    for i in range(FingerprintFilter.PROBES):
        b = (h1 + np.uint64(i) * h2) % m
        np.bitwise_or.at(bits, (b >> np.uint64(3)).astype(np.int64), (np.uint8(1) << (b & np.uint64(7)).astype(np.uint8)))
    return FingerprintFilter(bits.tobytes(), FingerprintFilter.PROBES)


def _rows(read: Callable[[SHA256Hash], bytes], table: LookupTableRef) -> tuple[np.ndarray, np.ndarray]:
    """(fingerprint as stored, value) of every row of a stored table."""
    fps, values = [], []
    for part in table.partitions:
        try:
            fingerprints, found = decode_partition(read(part.hash))
        except ValueError as exc:
            raise LookupTableDamaged(f"look-up partition {part.hash.to_hex()} does not decode ({exc})") from None
        fps.append(np.frombuffer(fingerprints, dtype=np.uint64))
        values.append(np.frombuffer(found, dtype=np.uint64))
    if not fps:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.uint64)
    return np.concatenate(fps), np.concatenate(values)


def _dense(ordinals: OrdinalMap | None, values: np.ndarray) -> np.ndarray:
    """value -> parent ordinal (-1: none) for every value up to the largest of ``values``."""
    size = int(values.max()) + 1 if len(values) else 0
    if ordinals is None:
        return np.arange(size, dtype=np.int64)
    dense = np.full(size, -1, dtype=np.int64)
    for src, dst, length in ordinals.runs:
        end = min(src + length, size)
        if src < end:
            dense[src:end] = np.arange(dst, dst + end - src, dtype=np.int64)
    return dense


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads each fingerprint over 64 bits before they are summed."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _digests(tops: np.ndarray, ordinals: np.ndarray) -> np.ndarray:
    """Per record ordinal, a digest of the set of its rows' fingerprints (0: no rows); ``tops``
    are at most 32 bits wide."""
    if not len(tops):
        return np.zeros(0, dtype=np.uint64)
    pairs = np.unique((ordinals.astype(np.uint64) << np.uint64(32)) | (tops & np.uint64(0xFFFFFFFF)))
    owner = (pairs >> np.uint64(32)).astype(np.int64)
    digests = np.zeros(int(owner.max()) + 1, dtype=np.uint64)
    np.add.at(digests, owner, _mix(pairs & np.uint64(0xFFFFFFFF)))
    return digests


def _match(before: np.ndarray, here: np.ndarray) -> np.ndarray:
    """Per ordinal of ``before``, the ordinal of ``here`` with the same digest (-1: none); records
    with one digest on both sides are paired in ordinal order."""
    result = np.full(len(before), -1, dtype=np.int64)
    b_ord = np.flatnonzero(before)
    h_ord = np.flatnonzero(here)
    if not len(b_ord) or not len(h_ord):
        return result
    b_order = b_ord[np.argsort(before[b_ord], kind="stable")]
    b_dig = before[b_order]
    h_order = h_ord[np.argsort(here[h_ord], kind="stable")]
    h_dig = here[h_order]
    h_rank = np.arange(len(h_dig)) - np.searchsorted(h_dig, h_dig, side="left")
    lo = np.searchsorted(b_dig, h_dig, side="left")
    hi = np.searchsorted(b_dig, h_dig, side="right")
    ok = h_rank < hi - lo
    result[b_order[lo[ok] + h_rank[ok]]] = h_order[ok]
    return result


def _runs(dense: np.ndarray) -> list[tuple[int, int, int]]:
    """A dense map (-1: none) as runs (first source, first destination, length)."""
    sources = np.flatnonzero(dense >= 0)
    if not len(sources):
        return []
    targets = dense[sources]
    breaks = np.flatnonzero((np.diff(sources) != 1) | (np.diff(targets) != 1)) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(sources)]])
    return [(int(sources[s]), int(targets[s]), int(e - s)) for s, e in zip(starts, ends)]
