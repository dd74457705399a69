"""Store lifecycle (store.json), refs by compare-and-swap, and the location registry."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.core.errors import ConfigError, MissingExtra, StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.storage.refs import RefStore
from talaria_storage.storage.registry import open_backend
from talaria_storage.storage.store import Store

A = SHA256Hash.compute(b"a")
B = SHA256Hash.compute(b"b")


def test_initialise_writes_store_json_once(tmp_path: Path) -> None:
    store = Store(FilesystemBackend(tmp_path))
    assert store.initialise() is True
    assert store.initialise() is False
    assert store.metadata()["format_version"] == 1  # type: ignore[index]


def test_an_uninitialised_location_names_the_init_command(tmp_path: Path) -> None:
    store = Store(FilesystemBackend(tmp_path))
    with pytest.raises(StorageError, match="init"):
        store.require_initialised()


def test_a_store_json_from_another_program_is_refused(tmp_path: Path) -> None:
    backend = FilesystemBackend(tmp_path)
    backend.put("store.json", b'{"format": "something-else"}')
    with pytest.raises(StorageError, match="not a talaria-storage store"):
        Store(backend).metadata()


def test_a_newer_store_format_asks_for_an_upgrade(tmp_path: Path) -> None:
    backend = FilesystemBackend(tmp_path)
    backend.put("store.json", b'{"format": "talaria-storage", "format_version": 99}')
    with pytest.raises(StorageError, match="upgrade"):
        Store(backend).metadata()


def test_chunks_and_manifests_live_in_separate_namespaces() -> None:
    store = Store(MemoryBackend())
    h = store.manifests.store_chunk(b"manifest")
    assert store.manifests.has_chunk(h) and not store.has_chunk(h)


def test_a_ref_reads_back_the_hash_it_was_set_to() -> None:
    refs = RefStore(MemoryBackend())
    refs.set("refs/db/HEAD", A)
    assert refs.get("refs/db/HEAD") == A


def test_a_missing_ref_is_none() -> None:
    assert RefStore(MemoryBackend()).get("refs/db/HEAD") is None


def test_ref_compare_and_swap_moves_only_from_the_expected_hash() -> None:
    refs = RefStore(MemoryBackend())
    assert refs.compare_and_swap("refs/db/HEAD", None, A)
    assert not refs.compare_and_swap("refs/db/HEAD", None, B)
    assert not refs.compare_and_swap("refs/db/HEAD", B, B)
    assert refs.compare_and_swap("refs/db/HEAD", A, B)
    assert refs.get("refs/db/HEAD") == B


def test_a_corrupt_ref_is_reported_not_trusted() -> None:
    backend = MemoryBackend()
    backend.put("refs/db/HEAD", b"garbage")
    with pytest.raises(StorageError, match="corrupt"):
        RefStore(backend).get("refs/db/HEAD")


def test_refs_list_by_prefix() -> None:
    refs = RefStore(MemoryBackend())
    refs.set("refs/db/HEAD", A)
    refs.set("refs/db/v1", A)
    refs.set("refs/other/HEAD", B)
    assert refs.list("refs/db/") == {"refs/db/HEAD": A, "refs/db/v1": A}


def test_an_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="s3://"):
        open_backend("ftp://host/path")


def test_a_bucket_location_without_a_bucket_is_refused() -> None:
    with pytest.raises(ConfigError, match="bucket"):
        open_backend("s3://")


def test_a_missing_sdk_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "boto3" else real(name, *a))
    with pytest.raises(MissingExtra, match=r"install talaria-storage\[s3\]"):
        open_backend("s3://bucket/prefix")


def _create(args: tuple[str, int]) -> bool:
    root, i = args
    return FilesystemBackend(root).put_if_absent("refs/race/HEAD", f"process {i}".encode())


def _swap(args: tuple[str, int]) -> bool:
    root, i = args
    return FilesystemBackend(root).compare_and_swap("refs/race/HEAD", b"base", f"process {i}".encode())


def test_sixteen_processes_creating_one_ref_have_one_winner(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(8) as pool:
        results = pool.map(_create, [(str(tmp_path), i) for i in range(16)])
    assert results.count(True) == 1
    assert FilesystemBackend(tmp_path).get("refs/race/HEAD") == f"process {results.index(True)}".encode()


def test_sixteen_processes_swapping_one_ref_have_one_winner(tmp_path: Path) -> None:
    FilesystemBackend(tmp_path).put("refs/race/HEAD", b"base")
    with multiprocessing.get_context("fork").Pool(8) as pool:
        results = pool.map(_swap, [(str(tmp_path), i) for i in range(16)])
    assert results.count(True) == 1
