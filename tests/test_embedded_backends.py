"""The Backend conformance suite on the two embedded backends."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.storage.chunk_store import ChunkStore
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


def test_sweep_incomplete_removes_old_temporary_files_and_spares_young_ones(tmp_path: Path) -> None:
    backend = FilesystemBackend(tmp_path / "store")
    backend.put("chunks/" + "a" * 64, b"object")
    tmp = tmp_path / "store" / ".tmp"
    old, young = tmp / "put-killed", tmp / "put-in-progress"
    old.write_bytes(b"half a write")
    young.write_bytes(b"a write still running")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))

    assert backend.sweep_incomplete(older_than_seconds=600) == 1
    assert not old.exists() and young.exists()
    assert backend.get("chunks/" + "a" * 64) == b"object"


def test_sweep_incomplete_is_a_no_op_on_a_store_that_never_wrote(tmp_path: Path) -> None:
    assert FilesystemBackend(tmp_path / "store").sweep_incomplete(0) == 0
