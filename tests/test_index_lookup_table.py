"""The stored look-up table's format: partitions round-trip, are cut between fingerprints, and
a damaged one is reported, never read as rows."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.index.lookup_table import (
    FingerprintFilter,
    LookupPartition,
    LookupTable,
    LookupTableDamaged,
    LookupTableRef,
    decode_partition,
    fingerprint_bytes,
    name_fingerprint,
)
from talaria_storage.index.lookup_table_writer import (
    encode_partition,
    fingerprint_filter,
    write_lookup_table,
)
from talaria_storage.storage.store import Store


def _table(keys: list[int], values: list[int], rows: int = 16384) -> tuple[Store, LookupTable]:
    store = Store(MemoryBackend())
    ref = write_lookup_table(
        store.store_chunk, np.array(keys, dtype=np.uint64), np.array(values, dtype=np.uint64), partition_rows=rows
    )
    return store, LookupTable(store.get_chunk, ref, "db@v1")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**24 - 1)), max_size=300))
def test_every_row_is_found_by_its_fingerprint(rows: list[tuple[int, int]]) -> None:
    _, table = _table([k for k, _ in rows], [v for _, v in rows], rows=16)
    for key, value in rows:
        assert value in table.find(key)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**40 - 1), min_size=1, max_size=200).map(sorted), st.integers(1, 8), st.integers(1, 5))
def test_a_partition_decodes_to_the_rows_it_was_made_of(keys: list[int], width: int, value_width: int) -> None:
    keys = [k % (1 << (8 * width)) for k in keys]
    keys.sort()
    values = [k % (1 << (8 * value_width)) for k in keys]
    fingerprints, decoded = decode_partition(
        encode_partition(np.array(keys, dtype=np.uint64), np.array(values, dtype=np.uint64), width, value_width)
    )
    assert list(fingerprints) == keys and list(decoded) == values


def _format_1_partition(keys: list[int], values: list[int], width: int, value_width: int) -> bytes:
    """A partition as format 1 wrote it: the fingerprints' deltas in the planes (written by hand here)."""
    def planes(numbers: list[int], size: int) -> bytes:
        return b"".join(bytes((n >> (8 * (size - 1 - plane))) & 0xFF for n in numbers) for plane in range(size))

    first = keys[0]
    deltas = [key - before for before, key in zip([first, *keys], keys)]
    head = b"TLKP" + bytes([1, width, value_width, 0]) + len(keys).to_bytes(4, "big") + first.to_bytes(8, "big")
    return head + planes(deltas, width) + planes(values, value_width)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=200).map(sorted))
def test_a_format_1_partition_still_decodes_to_its_rows(keys: list[int]) -> None:
    values = [k % 65536 for k in keys]
    fingerprints, decoded = decode_partition(_format_1_partition(keys, values, 4, 2))
    assert list(fingerprints) == keys and list(decoded) == values


def test_a_new_partition_is_format_2() -> None:
    assert encode_partition(np.array([3, 9], dtype=np.uint64), np.array([0, 1], dtype=np.uint64), 4, 2)[4] == 2


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**24 - 1)), max_size=200),
    st.sampled_from([2, 4, 5, 6, 8]),  # 8: fingerprint and value do not fit one integer (lexsort)
)
def test_a_table_holds_each_distinct_row_once_in_order(rows: list[tuple[int, int]], width: int) -> None:
    store = Store(MemoryBackend())
    ref = write_lookup_table(
        store.store_chunk, np.array([k for k, _ in rows], dtype=np.uint64),
        np.array([v for _, v in rows], dtype=np.uint64), partition_rows=16, width=width,
    )
    stored = []
    for part in ref.partitions:
        fingerprints, values = decode_partition(store.get_chunk(part.hash))
        stored += zip(fingerprints, values)
    assert stored == sorted({(k >> (64 - 8 * width), v) for k, v in rows})


def test_the_rows_of_one_fingerprint_stay_in_one_partition() -> None:
    keys = [5 << 40] * 40 + [k << 40 for k in range(100, 140)]
    _, table = _table(keys, list(range(80)), rows=16)
    assert sorted(table.find(5 << 40)) == list(range(40))
    assert table.ref.partitions[0].rows == 40


def test_a_key_that_is_absent_finds_nothing() -> None:
    _, table = _table([name_fingerprint(b"P12345")], [0])
    assert table.find(name_fingerprint(b"Q99999")) == []
    assert _table([], [])[1].find(1) == []


def test_fingerprints_widen_with_the_table() -> None:
    assert fingerprint_bytes(1000) == 3 and fingerprint_bytes(10_000) == 3 and fingerprint_bytes(10**6) == 4
    assert fingerprint_bytes(10**9) == 5


def test_a_manifest_section_round_trips_and_a_malformed_one_is_refused() -> None:
    _, table = _table([k << 40 for k in range(0, 10**6, 997)], list(range(1004)), rows=100)
    doc = table.ref.to_doc()
    assert LookupTableRef.from_doc(doc) == table.ref
    with pytest.raises(ValueError, match="not in fingerprint order"):
        LookupTableRef.from_doc({**doc, "partitions": doc["partitions"][::-1]})
    with pytest.raises(ValueError, match="format"):
        LookupTableRef.from_doc({**doc, "format": 9})


def test_a_missing_partition_is_reported_by_name() -> None:
    store, table = _table([1, 2, 3], [0, 1, 2])
    part = table.ref.partitions[0]
    store.backend.delete(store.key_for(part.hash))
    with pytest.raises(LookupTableDamaged, match=f"look-up partition {part.hash.to_hex()} of db@v1"):
        table.find(1)


def test_a_corrupt_partition_fails_its_hash_and_is_reported() -> None:
    store, table = _table([1, 2, 3], [0, 1, 2])
    key = store.key_for(table.ref.partitions[0].hash)
    framed = bytearray(store.backend.get(key))
    framed[-3] ^= 0xFF
    store.backend.delete(key)
    store.backend.put(key, bytes(framed))
    with pytest.raises(LookupTableDamaged, match="unreadable"):
        table.find(1)


def test_an_object_that_is_no_partition_is_refused() -> None:
    store = Store(MemoryBackend())
    h = store.store_chunk(b"not a partition at all")
    ref = LookupTableRef(4, 3, 1, (LookupPartition(0, h, 22, 1),))
    with pytest.raises(LookupTableDamaged, match="not a look-up table partition|shorter"):
        LookupTable(store.get_chunk, ref, "db@v1").find(0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, (1 << 40) - 1), min_size=1, max_size=3000))
def test_a_fingerprint_filter_holds_every_key_it_was_built_from(keys: list[int]) -> None:
    built = fingerprint_filter(np.array(keys, dtype=np.uint64))
    assert all(built.may_contain(key) for key in keys)


def test_a_fingerprint_filter_says_maybe_for_about_one_absent_key_in_a_hundred() -> None:
    rng = np.random.default_rng(3)
    built = fingerprint_filter(rng.integers(0, 1 << 40, 20000, dtype=np.uint64))
    absent = rng.integers(1 << 40, 1 << 41, 20000, dtype=np.uint64)
    assert sum(built.may_contain(int(key)) for key in absent) / len(absent) < 0.02
    assert built.nbytes == 10 * 20000 // 8


def test_a_fingerprint_filter_round_trips_as_text_and_a_malformed_one_is_refused() -> None:
    built = fingerprint_filter(np.arange(100, dtype=np.uint64))
    again = FingerprintFilter.from_text(built.to_text())
    assert all(again.may_contain(key) for key in range(100)) and again.to_text() == built.to_text()
    with pytest.raises(ValueError, match="fingerprint filter"):
        FingerprintFilter.from_text("7:not base64!")
    with pytest.raises(ValueError, match="fingerprint filter"):
        FingerprintFilter.from_text("x:AAAA")


@given(st.binary(max_size=300))
def test_a_name_fingerprint_is_the_first_eight_bytes_of_blake2b_of_the_name(name: bytes) -> None:
    # the stored format's definition, spelled out
    assert name_fingerprint(name) == int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big")
