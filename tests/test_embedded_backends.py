"""The Backend conformance suite on the two embedded backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend
from talaria_storage.chunk_store import ChunkStore
from talaria_storage.testing import BackendConformance, ChunkStorageConformance


class TestMemoryBackend(BackendConformance):
    @pytest.fixture
    def backend(self) -> Iterator[MemoryBackend]:
        yield MemoryBackend()


class TestFilesystemBackend(BackendConformance):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[FilesystemBackend]:
        yield FilesystemBackend(tmp_path / "store")


class TestMemoryChunkStorage(ChunkStorageConformance):
    @pytest.fixture
    def chunk_storage(self) -> Iterator[ChunkStore]:
        yield ChunkStore(MemoryBackend())


class TestFilesystemChunkStorage(ChunkStorageConformance):
    @pytest.fixture
    def chunk_storage(self, tmp_path: Path) -> Iterator[ChunkStore]:
        yield ChunkStore(FilesystemBackend(tmp_path / "store"))
