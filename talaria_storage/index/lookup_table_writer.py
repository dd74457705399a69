"""Writing a stored look-up table: rows sorted and cut into partition objects.

The format and the reader are :mod:`talaria_storage.index.lookup_table`;
this half sorts and cuts the hundreds of thousands of rows of an import.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.index.lookup_table import (
    PARTITION_ROWS,
    LookupPartition,
    LookupTableRef,
    fingerprint_bytes,
    partition_header,
    value_bytes,
)


def _planes(values: np.ndarray, width: int) -> bytes:
    """``values`` as ``width`` byte planes, most significant first."""
    as_bytes = values.astype(">u8").view(np.uint8).reshape(-1, 8)[:, 8 - width :]
    return np.ascontiguousarray(as_bytes.T).tobytes()


def encode_partition(fingerprints: np.ndarray, values: np.ndarray, width: int, value_width: int) -> bytes:
    """One partition's bytes: sorted truncated fingerprints and their values (see the module docstring)."""
    first = int(fingerprints[0]) if len(fingerprints) else 0
    deltas = np.diff(fingerprints, prepend=np.uint64(first))
    head = partition_header(width, value_width, len(fingerprints), first)
    return head + _planes(deltas, width) + _planes(values, value_width)


def write_lookup_table(
    store_chunk: Callable[[bytes], SHA256Hash],
    fingerprints: np.ndarray,
    values: np.ndarray,
    *,
    partition_rows: int = PARTITION_ROWS,
) -> LookupTableRef:
    """Sort the rows, cut them into partitions, store each with ``store_chunk``; the table's ref.

    ``fingerprints`` are 64-bit (:func:`name_fingerprint`, :func:`digest_fingerprint`);
    ``values`` the record ordinals. Equal rows are kept once.
    """
    rows = len(fingerprints)
    width = fingerprint_bytes(rows)
    shift = np.uint64(64 - 8 * width)
    truncated = np.asarray(fingerprints, dtype=np.uint64) >> shift
    values = np.asarray(values, dtype=np.uint64)
    order = np.lexsort((values, truncated))
    truncated, values = truncated[order], values[order]
    if rows:
        keep = np.ones(rows, dtype=bool)
        keep[1:] = (truncated[1:] != truncated[:-1]) | (values[1:] != values[:-1])
        truncated, values = truncated[keep], values[keep]
        rows = len(truncated)
    value_width = value_bytes(int(values.max()) if rows else 0)
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
