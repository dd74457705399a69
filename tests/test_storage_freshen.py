"""Freshening: a writer that re-uses an old object touches it, so gc's grace period restarts for it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from talaria_storage.backends.faults import RequestCountingBackend
from talaria_storage.backends.filesystem import FilesystemBackend

from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.storage.chunk_store import ChunkStore
from talaria_storage.storage.codecs import NoneCodec

HOUR = 3600.0


def _store(tmp_path: Path, freshen_after: float = 600.0) -> ChunkStore:
    return ChunkStore(FilesystemBackend(tmp_path / "store"), NoneCodec(), freshen_after=freshen_after)


def _age(store: ChunkStore, h: SHA256Hash, seconds: float) -> None:
    (path,) = Path(store.backend.root).rglob(h.to_hex())  # type: ignore[attr-defined]
    then = time.time() - seconds
    os.utime(path, (then, then))


def _modified(store: ChunkStore, h: SHA256Hash) -> float:
    return store.backend.stat(store.key_for(h)).modified


def test_a_dedup_hit_on_an_old_object_makes_it_young(tmp_path: Path) -> None:
    store = _store(tmp_path)
    h = store.store_chunk(b"re-used pack")
    _age(store, h, 2 * HOUR)
    assert store.store_chunk(b"re-used pack") == h
    assert _modified(store, h) > time.time() - 60


def test_a_dedup_hit_on_a_young_object_does_not_write(tmp_path: Path) -> None:
    store = _store(tmp_path)
    h = store.store_chunk(b"fresh pack")
    _age(store, h, 60)
    counting = RequestCountingBackend(store.backend)
    store.backend = counting
    store.store_chunk(b"fresh pack")
    assert counting.counts.get("touch", 0) == 0
    assert _modified(store, h) < time.time() - 59


def test_freshen_returns_the_present_subset_and_touches_only_the_old(tmp_path: Path) -> None:
    store = _store(tmp_path)
    old, young = store.store_chunk(b"old"), store.store_chunk(b"young")
    _age(store, old, 2 * HOUR)
    _age(store, young, 60)
    absent = SHA256Hash.compute(b"never stored")
    assert store.freshen([old, young, absent]) == {old, young}
    assert _modified(store, old) > time.time() - 60
    assert _modified(store, young) < time.time() - 59


def test_freshen_after_zero_touches_every_reuse(tmp_path: Path) -> None:
    store = _store(tmp_path, freshen_after=0)
    h = store.store_chunk(b"pack")
    _age(store, h, 30)
    store.store_chunk(b"pack")
    assert _modified(store, h) > time.time() - 30


def test_a_framed_copy_onto_an_old_object_freshens_it(tmp_path: Path) -> None:
    source, dest = _store(tmp_path / "a"), _store(tmp_path / "b")
    h = source.store_chunk(b"copied by sync")
    dest.put_framed(h, source.get_framed(h))
    _age(dest, h, 2 * HOUR)
    assert dest.put_framed(h, source.get_framed(h)) is False
    assert _modified(dest, h) > time.time() - 60


def test_a_negative_freshen_age_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="freshen_after"):
        _store(tmp_path, freshen_after=-1)
