"""The ChunkStorage conformance suite on every real backend (chunks stored through each backend)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from talaria_storage.storage.chunk_store import ChunkStore
from talaria_storage.testing import ChunkStorageConformance


class TestRocksDBChunkStorage(ChunkStorageConformance):
    @pytest.fixture
    def chunk_storage(self, rocksdb_backend: Any) -> Iterator[ChunkStore]:
        yield ChunkStore(rocksdb_backend)


@pytest.mark.emulator
class TestS3ChunkStorage(ChunkStorageConformance):
    @pytest.fixture
    def chunk_storage(self, s3_backend: Any) -> Iterator[ChunkStore]:
        yield ChunkStore(s3_backend)


@pytest.mark.emulator
class TestGCSChunkStorage(ChunkStorageConformance):
    @pytest.fixture
    def chunk_storage(self, gcs_backend: Any) -> Iterator[ChunkStore]:
        yield ChunkStore(gcs_backend)


@pytest.mark.emulator
class TestAzureChunkStorage(ChunkStorageConformance):
    @pytest.fixture
    def chunk_storage(self, azure_backend: Any) -> Iterator[ChunkStore]:
        yield ChunkStore(azure_backend)
