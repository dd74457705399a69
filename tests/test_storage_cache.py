"""The remote-object cache: immutable objects kept by size, refs only for their TTL, never a stale answer
to the questions writers, gc and verify ask."""

from __future__ import annotations

import logging
import multiprocessing
import os
from pathlib import Path

import pytest
from talaria_storage.backends.faults import RequestCountingBackend
from talaria_storage.backends.filesystem import FilesystemBackend

from talaria_storage import open_database, open_store
from talaria_storage.core.errors import HashMismatch
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.storage.cache import CachedBackend, ObjectCache
from talaria_storage.storage.store import Store

MiB = 1 << 20


def _remote(tmp_path: Path) -> RequestCountingBackend:
    return RequestCountingBackend(FilesystemBackend(str(tmp_path / "remote")))


def _cached(remote: RequestCountingBackend, folder: Path, size: int = 64 * MiB, ttl: int = 0) -> CachedBackend:
    return CachedBackend(remote, ObjectCache(folder, size, ttl))


def test_a_second_reader_gets_objects_from_the_cache_not_the_remote(tmp_path: Path) -> None:
    remote = _remote(tmp_path)
    remote.put("chunks/" + "a" * 64, b"object bytes")
    _cached(remote, tmp_path / "cache").get("chunks/" + "a" * 64)
    remote.reset()
    assert _cached(remote, tmp_path / "cache").get("chunks/" + "a" * 64) == b"object bytes"
    assert remote.total == 0


def test_a_range_of_a_cached_object_is_cut_from_the_copy(tmp_path: Path) -> None:
    remote = _remote(tmp_path)
    remote.put("manifests/" + "b" * 64, b"0123456789")
    backend = _cached(remote, tmp_path / "cache")
    backend.get("manifests/" + "b" * 64)
    remote.reset()
    assert backend.get_range("manifests/" + "b" * 64, 2, 5) == b"234"
    assert remote.total == 0


def test_refs_are_read_from_the_remote_every_time_by_default(tmp_path: Path) -> None:
    remote = _remote(tmp_path)
    backend = _cached(remote, tmp_path / "cache")
    remote.put("refs/db/HEAD", b"one")
    assert backend.get("refs/db/HEAD") == b"one"
    remote.put("refs/db/HEAD", b"two")
    assert backend.get("refs/db/HEAD") == b"two"


def test_with_a_ttl_a_ref_read_is_reused_until_this_process_writes_it(tmp_path: Path) -> None:
    remote = _remote(tmp_path)
    backend = _cached(remote, tmp_path / "cache", ttl=3600)
    remote.put("refs/db/HEAD", b"one")
    first = backend.read_versioned("refs/db/HEAD")
    assert first is not None
    remote.reset()
    assert backend.read_versioned("refs/db/HEAD") == first and remote.total == 0
    backend.put_if_version("refs/db/HEAD", b"two", first.version)
    found = backend.read_versioned("refs/db/HEAD")
    assert found is not None and found.data == b"two"


def test_a_failed_compare_and_swap_drops_the_cached_ref_so_the_retry_reads_the_remote(tmp_path: Path) -> None:
    remote = _remote(tmp_path)
    backend = _cached(remote, tmp_path / "cache", ttl=3600)
    remote.put("refs/db/HEAD", b"one")
    stale = backend.read_versioned("refs/db/HEAD")
    assert stale is not None
    remote.put("refs/db/HEAD", b"moved by another writer")
    assert backend.compare_and_swap("refs/db/HEAD", b"one", b"mine") is False
    found = backend.read_versioned("refs/db/HEAD")
    assert found is not None and found.data == b"moved by another writer"


def test_exists_asks_the_remote_even_for_a_cached_object(tmp_path: Path) -> None:
    remote = _remote(tmp_path)
    key = "chunks/" + "c" * 64
    remote.put(key, b"x")
    backend = _cached(remote, tmp_path / "cache")
    backend.get(key)
    remote.delete(key)  # collected by another process's gc
    assert backend.exists(key) is False


def test_a_cached_copy_that_fails_its_hash_is_dropped_and_read_again(tmp_path: Path) -> None:
    remote = _remote(tmp_path)
    store = Store(_cached(remote, tmp_path / "cache"))
    h = store.store_chunk(b"the real content")
    other = Store(FilesystemBackend(str(tmp_path / "other")))
    wrong_frame = other.get_framed(other.store_chunk(b"something else"))
    cache = ObjectCache(tmp_path / "cache", 64 * MiB, 0)
    cache.put("chunks/" + h.to_hex(), wrong_frame)
    with pytest.raises(HashMismatch):
        store.get_chunk(h)
    assert store.get_chunk(h) == b"the real content"
    assert cache.get("chunks/" + h.to_hex()) == remote.get("chunks/" + h.to_hex())


def test_verify_reads_the_remote_past_a_good_cached_copy(tmp_path: Path) -> None:
    remote = _remote(tmp_path)
    store = Store(_cached(remote, tmp_path / "cache"))
    h = store.store_chunk(b"content that will rot remotely")
    store.get_chunk(h)  # now cached
    framed = bytearray(remote.get("chunks/" + h.to_hex()))
    framed[-1] ^= 0xFF
    remote.put("chunks/" + h.to_hex(), bytes(framed))
    assert [p.hash for p in store.verify_all()] == [h]


def test_the_cache_stays_within_its_size_by_evicting_the_least_recently_used(tmp_path: Path) -> None:
    remote = _remote(tmp_path)
    backend = _cached(remote, tmp_path / "cache", size=1 * MiB)
    for i in range(12):
        remote.put(f"chunks/{i:064x}", os.urandom(256 * 1024))
        backend.get(f"chunks/{i:064x}")
    assert backend.cache.size_bytes <= 1 * MiB + 256 * 1024
    remote.reset()
    backend.get(f"chunks/{11:064x}")
    assert remote.total == 0  # the newest is kept


def test_an_unwritable_cache_folder_reads_uncached_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    remote = _remote(tmp_path)
    remote.put("chunks/" + "d" * 64, b"still readable")
    with caplog.at_level(logging.WARNING):
        backend = _cached(remote, blocker / "cache")
        assert backend.get("chunks/" + "d" * 64) == b"still readable"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not-a-folder" in warnings[0] and "TALARIA_CACHE_DIR" in warnings[0]


def _read_all(folder: str, remote: str, keys: list[str]) -> list[bytes]:
    backend = CachedBackend(FilesystemBackend(remote), ObjectCache(Path(folder), 64 * MiB, 0))
    return [backend.get(key) for key in keys]


def test_several_processes_share_one_cache_folder(tmp_path: Path) -> None:
    remote = FilesystemBackend(str(tmp_path / "remote"))
    keys = [f"chunks/{i:064x}" for i in range(20)]
    for i, key in enumerate(keys):
        remote.put(key, bytes([i]) * 5000)
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        results = pool.starmap(_read_all, [(str(tmp_path / "cache"), str(tmp_path / "remote"), keys)] * 4)
    assert all(r == [bytes([i]) * 5000 for i in range(20)] for r in results)


# -- open_store ------------------------------------------------------------------------------------


def test_open_store_caches_a_store_with_round_trips_and_not_a_local_folder(tmp_path: Path) -> None:
    with open_store(f"faults+file://{tmp_path / 'slow'}?latency=0.001") as slow:
        assert isinstance(slow.backend, CachedBackend)
    with open_store(str(tmp_path / "local")) as local:
        assert not isinstance(local.backend, CachedBackend)


def test_cache_enabled_false_reads_the_remote_directly(tmp_path: Path) -> None:
    config = tmp_path / "storage.toml"
    config.write_text("[cache]\nenabled = false\n")
    with open_store(f"faults+file://{tmp_path / 'slow'}?latency=0.001", config_path=config) as store:
        assert store.backend.location.endswith("slow") and not isinstance(store.backend, CachedBackend)


def test_a_database_read_again_in_a_new_store_fetches_no_object_twice(tmp_path: Path) -> None:
    location = f"faults+file://{tmp_path / 'slow'}?latency=0.001"
    fasta = tmp_path / "in.fa"
    fasta.write_bytes(b">a one\nACGTACGT\n>b two\nMKVLAA\n")
    with open_store(location) as store:
        open_database(store, "db").import_files([fasta], version="v1")
    object_reads = []
    for _ in range(2):
        with open_store(location) as store:
            assert isinstance(store.backend, CachedBackend)
            counter = RequestCountingBackend(store.backend.inner)
            store.backend.inner = counter
            assert [r.header for r in open_database(store, "db").records()] == [b"a one", b"b two"]
            object_reads.append(counter.counts.get("get", 0) + counter.counts.get("get_many", 0))
    assert object_reads[1] < object_reads[0]


def test_sha_of_the_cached_object_is_what_its_key_names(tmp_path: Path) -> None:
    remote = _remote(tmp_path)
    store = Store(_cached(remote, tmp_path / "cache"))
    h = store.store_chunk(b"abc")
    assert h == SHA256Hash.compute(b"abc") and store.get_chunk(h) == b"abc"
