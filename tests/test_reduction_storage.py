"""The ReductionStorage conformance suite on every backend, and its stored formats on random input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.types import DeltaChunk, DeltaRecord
from talaria_storage.storage import delta_chunks, delta_index
from talaria_storage.storage.backend import Backend
from talaria_storage.storage.store import Store
from talaria_storage.testing import ReductionStorageConformance


def _store(backend: Backend) -> Store:
    store = Store(backend)
    store.initialise()
    return store


class TestMemoryReductionStorage(ReductionStorageConformance):
    @pytest.fixture
    def reduction_storage(self) -> Iterator[Store]:
        yield _store(MemoryBackend())


class TestFilesystemReductionStorage(ReductionStorageConformance):
    @pytest.fixture
    def reduction_storage(self, tmp_path: Path) -> Iterator[Store]:
        yield _store(FilesystemBackend(tmp_path / "store"))


class TestRocksDBReductionStorage(ReductionStorageConformance):
    @pytest.fixture
    def reduction_storage(self, rocksdb_backend: Any) -> Iterator[Store]:
        yield _store(rocksdb_backend)


@pytest.mark.emulator
class TestS3ReductionStorage(ReductionStorageConformance):
    @pytest.fixture
    def reduction_storage(self, s3_backend: Any) -> Iterator[Store]:
        yield _store(s3_backend)


@pytest.mark.emulator
class TestGCSReductionStorage(ReductionStorageConformance):
    @pytest.fixture
    def reduction_storage(self, gcs_backend: Any) -> Iterator[Store]:
        yield _store(gcs_backend)


@pytest.mark.emulator
class TestAzureReductionStorage(ReductionStorageConformance):
    @pytest.fixture
    def reduction_storage(self, azure_backend: Any) -> Iterator[Store]:
        yield _store(azure_backend)


# -- the stored formats, on random input (no backend involved) ----------------------------------

digests = st.binary(min_size=32, max_size=32).map(SHA256Hash)
records = st.builds(
    DeltaRecord,
    child_id=st.text(max_size=20),
    child_hash=digests,
    reference_hash=st.just(SHA256Hash.compute(b"the reference")),
    ops=st.binary(max_size=64),
    taxon_id=st.none() | st.integers(-(2**63), 2**63 - 1),
    identity=st.none() | st.floats(allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(records, max_size=8))
def test_any_delta_chunk_decodes_to_what_was_encoded(deltas: list[DeltaRecord]) -> None:
    chunk = DeltaChunk(SHA256Hash.compute(b"the reference"), tuple(deltas))
    assert delta_chunks.decode(delta_chunks.encode(chunk), "test") == chunk


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(digests, digests), max_size=60))
def test_a_partitioned_index_answers_as_a_scan_of_its_pairs(pairs: list[tuple[SHA256Hash, SHA256Hash]]) -> None:
    store = Store(MemoryBackend())
    original = delta_index.PARTITION_ENTRIES
    delta_index.PARTITION_ENTRIES = 4  # many partitions from few pairs
    try:
        top = delta_index.parse_top(store.get_chunk(delta_index.write(store, pairs, [])), "test")
    finally:
        delta_index.PARTITION_ENTRIES = original

    def partition(h: SHA256Hash) -> delta_index.Partition:
        return delta_index.parse_partition(store.get_chunk(h), "test")

    for key, _ in pairs:
        assert delta_index.lookup(top.children, key, partition) == sorted({v for k, v in pairs if k == key})
    assert delta_index.lookup(top.references, SHA256Hash.compute(b"absent"), partition) == []
