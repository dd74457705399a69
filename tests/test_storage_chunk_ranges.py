"""A stored chunk read by byte ranges: only the bytes asked for cross the backend, a chunk that fits
the first read (or is compressed) comes back whole and hashed, and a remote reader that keeps asking
reads the rest once."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from talaria_storage.backends.faults import FaultInjectingBackend, RequestCountingBackend
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.core.errors import CompressionError, HashMismatch
from talaria_storage.storage.backend import Backend
from talaria_storage.storage.cache import CachedBackend, ObjectCache
from talaria_storage.storage.chunk_ranges import HEAD_BYTES, ChunkRanges
from talaria_storage.storage.codecs import ZstdCodec
from talaria_storage.storage.store import Store

CONTENT = random.Random(7).randbytes(5 * HEAD_BYTES)


class _NoNativeRanges(MemoryBackend):
    @property
    def supports_native_ranges(self) -> bool:
        return False


def _stored(backend: Backend, content: bytes = CONTENT) -> tuple[Store, RequestCountingBackend, object]:
    counting = RequestCountingBackend(backend)
    store = Store(counting)
    h = store.store_chunk(content, compress=False)
    counting.reset()
    return store, counting, h


def test_a_range_reads_only_its_bytes_after_the_first_read() -> None:
    store, counting, h = _stored(MemoryBackend())
    ranges = store.open_ranges(h)
    assert isinstance(ranges, ChunkRanges) and ranges.size == len(CONTENT)
    assert ranges.read(3 * HEAD_BYTES, 3 * HEAD_BYTES + 100) == CONTENT[3 * HEAD_BYTES : 3 * HEAD_BYTES + 100]
    assert counting.counts == {"get_range": 2}


def test_bytes_within_the_first_read_need_no_request() -> None:
    store, counting, h = _stored(MemoryBackend())
    ranges = store.open_ranges(h)
    assert isinstance(ranges, ChunkRanges)
    assert ranges.read(10, 20) == CONTENT[10:20]
    assert counting.counts == {"get_range": 1}


def test_a_chunk_that_fits_the_first_read_comes_back_whole_and_hashed() -> None:
    store, _, h = _stored(MemoryBackend(), b"small chunk")
    assert store.open_ranges(h) == b"small chunk"


def test_a_small_chunk_that_fails_its_hash_is_refused() -> None:
    backend = MemoryBackend()
    store, _, h = _stored(backend, b"small chunk")
    key = store.key_for(h)  # type: ignore[arg-type]
    backend.put(key, backend.get(key)[:-1] + b"K")
    with pytest.raises(HashMismatch):
        store.open_ranges(h)


def test_a_compressed_chunk_comes_back_whole() -> None:
    counting = RequestCountingBackend(MemoryBackend())
    store = Store(counting, ZstdCodec(3))
    h = store.store_chunk(CONTENT)
    assert store.open_ranges(h) == CONTENT


def test_a_backend_without_native_ranges_reads_the_chunk_whole() -> None:
    store, counting, h = _stored(_NoNativeRanges())
    assert store.open_ranges(h) == CONTENT
    assert "get_range" not in counting.counts


def test_the_whole_content_is_checked_against_the_chunk_hash() -> None:
    backend = MemoryBackend()
    store, _, h = _stored(backend)
    key = store.key_for(h)  # type: ignore[arg-type]
    stored = backend.get(key)
    backend.put(key, stored[:-1] + bytes([stored[-1] ^ 1]))
    ranges = store.open_ranges(h)
    assert isinstance(ranges, ChunkRanges)
    with pytest.raises(HashMismatch):
        ranges.whole()


def test_a_truncated_object_is_an_error_naming_it() -> None:
    backend = MemoryBackend()
    store, _, h = _stored(backend)
    key = store.key_for(h)  # type: ignore[arg-type]
    backend.put(key, backend.get(key)[: 3 * HEAD_BYTES])
    ranges = store.open_ranges(h)
    assert isinstance(ranges, ChunkRanges)
    with pytest.raises(CompressionError, match=key):
        ranges.read(4 * HEAD_BYTES, 4 * HEAD_BYTES + 10)


def test_a_local_reader_keeps_reading_ranges() -> None:
    store, counting, h = _stored(MemoryBackend())
    ranges = store.open_ranges(h)
    assert isinstance(ranges, ChunkRanges)
    for at in range(HEAD_BYTES, 5 * HEAD_BYTES, HEAD_BYTES):
        ranges.read(at, at + 10)
    assert counting.counts == {"get_range": 5}


def test_a_remote_reader_reads_the_rest_whole_after_one_range() -> None:
    remote = FaultInjectingBackend(MemoryBackend(), latency_seconds=0.001)
    store, counting, h = _stored(remote)
    ranges = store.open_ranges(h)
    assert isinstance(ranges, ChunkRanges)
    for at in range(HEAD_BYTES, 5 * HEAD_BYTES, HEAD_BYTES):
        assert ranges.read(at, at + 10) == CONTENT[at : at + 10]
    assert counting.counts == {"get_range": 3}  # the first read, one range, then the rest


def test_a_range_read_through_the_cache_is_not_read_again(tmp_path: Path) -> None:
    remote = RequestCountingBackend(FilesystemBackend(str(tmp_path / "remote")))
    key = "chunks/" + "c" * 64
    remote.put(key, b"0123456789")
    for _ in range(2):
        assert CachedBackend(remote, ObjectCache(tmp_path / "cache", 1 << 20, 0)).get_range(key, 2, 5) == b"234"
    assert remote.counts == {"put": 1, "get_range": 1}


def test_forgetting_an_object_drops_its_cached_ranges(tmp_path: Path) -> None:
    remote = RequestCountingBackend(FilesystemBackend(str(tmp_path / "remote")))
    key = "chunks/" + "d" * 64
    remote.put(key, b"0123456789")
    backend = CachedBackend(remote, ObjectCache(tmp_path / "cache", 1 << 20, 0))
    backend.get_range(key, 2, 5)
    backend.forget(key)
    backend.get_range(key, 2, 5)
    assert remote.counts["get_range"] == 2
