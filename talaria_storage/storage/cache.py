"""The remote-object cache: a local, size-bounded copy of what a remote store has been read for.

Why
    A pipeline that opens an S3/GCS/Azure store again and again should not
    fetch the same packs and manifests every time. Content-addressed objects
    (``chunks/``, ``manifests/``) never change once written, so a copy is
    valid for as long as it is kept (a byte range read of one, as a look-up
    reads a pack's table and one block, is kept as an entry of its own): the cache is bounded only by size, with
    least-recently-used eviction (``[cache] size_mb``). Refs do change; a ref
    read is reused only for ``[cache] ttl_seconds`` (0, the default: refs are
    always read from the remote, so a reader sees a version the moment it is
    published).
What it never does
    It never answers ``exists``/``list``/``stat`` from its copies: those are
    how writers decide what to upload and how gc and verify see the remote,
    and an object gc deleted remotely must not look present. Writes go
    straight through; a write of a ref, or a failed conditional write of one,
    drops that ref's cached read, so a writer retrying a compare-and-swap
    always reads the remote. ``verify`` reads :attr:`CachedBackend.origin`,
    past the cache. A copy that failed its hash check is dropped
    (:meth:`CachedBackend.forget`), so one bad download is not served forever.
Several processes
    Any number of processes may share one cache folder. It is a
    :class:`diskcache.Cache` (SQLite index, values as files written then
    renamed), which gives exactly what is needed -- process-safe, LRU-evicting,
    size-limited, per-entry expiry -- so it is not written here by hand. No
    lock is held while an object downloads: two processes missing the same
    object both fetch it and store the same bytes.
A broken cache folder
    If the folder cannot be created or written, reads go on uncached, and one
    warning names the folder and the key to change (``[cache] dir`` or
    ``TALARIA_CACHE_DIR``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import diskcache

from talaria_storage.core.keys import CHUNKS, MANIFESTS
from talaria_storage.storage.backend import Backend, ObjectInfo, Versioned, WrappingBackend

log = logging.getLogger(__name__)

#: Keys whose objects never change once written: cached until evicted.
IMMUTABLE_PREFIXES = (CHUNKS, MANIFESTS)

_CACHE_ERRORS = (OSError, sqlite3.Error, diskcache.Timeout)
_EVICTION_PROBE = "\x00evict"  # an empty entry whose writes make diskcache evict one entry each
_MAX_EVICTIONS = 10_000


class ObjectCache:
    """The on-disk cache of one remote store, shared by every process that opens it."""

    def __init__(self, folder: Path, size_bytes: int, ref_ttl_seconds: int) -> None:
        self.folder = folder
        self.ref_ttl_seconds = ref_ttl_seconds
        self._cache: diskcache.Cache | None
        try:
            # cull_limit=1: each write evicts at most one least-recently-used entry. diskcache's own
            # cull() evicts ten at a time, which empties a cache of a few large packs at once.
            self._cache = diskcache.Cache(
                str(folder),
                size_limit=size_bytes,
                eviction_policy="least-recently-used",
                cull_limit=1,
                tag_index=True,
            )
        except _CACHE_ERRORS as exc:
            self._disable(exc)

    def _disable(self, exc: BaseException) -> None:
        log.warning(
            "the cache folder %s is not usable (%s): reading uncached; set [cache] dir or "
            "TALARIA_CACHE_DIR to a writable folder",
            self.folder,
            exc,
        )
        self._cache = None

    @property
    def enabled(self) -> bool:
        return self._cache is not None

    def get(self, key: str) -> bytes | None:
        if self._cache is None:
            return None
        try:
            value = self._cache.get(key)
        except _CACHE_ERRORS as exc:
            self._disable(exc)
            return None
        return value if isinstance(value, bytes) else None

    def get_versioned(self, key: str) -> Versioned | None:
        if self._cache is None:
            return None
        try:
            value = self._cache.get("versioned:" + key)
        except _CACHE_ERRORS as exc:
            self._disable(exc)
            return None
        return Versioned(value[0], value[1]) if isinstance(value, tuple) else None

    def put(self, key: str, data: bytes, expire: int | None = None, tag: str | None = None) -> None:
        self._set(key, data, expire, tag)

    def put_versioned(self, key: str, found: Versioned) -> None:
        self._set("versioned:" + key, (found.data, found.version), self.ref_ttl_seconds)

    def drop(self, key: str) -> None:
        if self._cache is None:
            return
        try:
            self._cache.delete(key)
            self._cache.delete("versioned:" + key)
            if key.startswith(IMMUTABLE_PREFIXES):
                self._cache.evict(key)  # the object's cached ranges (tag_index: no scan)
        except _CACHE_ERRORS as exc:
            self._disable(exc)

    def _set(self, key: str, value: object, expire: int | None, tag: str | None = None) -> None:
        if self._cache is None:
            return
        try:
            self._cache.set(key, value, expire=expire, tag=tag)
            # A write evicts one entry; a large object may need more before the size holds again.
            evictions = 0
            while self._cache.volume() > self._cache.size_limit and evictions < _MAX_EVICTIONS:
                self._cache.set(_EVICTION_PROBE, b"")
                evictions += 1
            if evictions:
                self._cache.delete(_EVICTION_PROBE)
        except _CACHE_ERRORS as exc:
            self._disable(exc)

    @property
    def size_bytes(self) -> int:
        """Bytes the cache holds now (what ``size_mb`` bounds)."""
        return int(self._cache.volume()) if self._cache is not None else 0

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


class CachedBackend(WrappingBackend):
    """A remote backend read through an :class:`ObjectCache` (see the module docstring)."""

    def __init__(self, inner: Backend, cache: ObjectCache) -> None:
        super().__init__(inner)
        self.cache = cache

    @property
    def origin(self) -> Backend:
        return self.inner.origin

    # -- reads that the cache may answer --------------------------------------------------------

    def get(self, key: str) -> bytes:
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        data = self.inner.get(key)
        if key.startswith(IMMUTABLE_PREFIXES):
            self.cache.put(key, data)
        elif self.cache.ref_ttl_seconds > 0:
            self.cache.put(key, data, expire=self.cache.ref_ttl_seconds)
        return data

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if not key.startswith(IMMUTABLE_PREFIXES):
            return self.inner.get_range(key, start, end)
        cached = self.cache.get(key)
        if cached is not None:
            return cached[start:end]
        # A range is cached as itself (a look-up reads a pack's table and one block, the next
        # process the same ranges), tagged with its object's key so forget drops them all.
        name = f"{key}@{start}-{end}"
        cached = self.cache.get(name)
        if cached is not None:
            return cached
        data = self.inner.get_range(key, start, end)
        self.cache.put(name, data, tag=key)
        return data

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = list(keys)
        found = {key: data for key in wanted if (data := self.cache.get(key)) is not None}
        fetched = self.inner.get_many([key for key in wanted if key not in found])
        for key, data in fetched.items():
            if key.startswith(IMMUTABLE_PREFIXES):
                self.cache.put(key, data)
            elif self.cache.ref_ttl_seconds > 0:
                self.cache.put(key, data, expire=self.cache.ref_ttl_seconds)
        found.update(fetched)
        return found

    def read_versioned(self, key: str) -> Versioned | None:
        if self.cache.ref_ttl_seconds > 0:
            cached = self.cache.get_versioned(key)
            if cached is not None:
                return cached
        found = self.inner.read_versioned(key)
        if found is not None and self.cache.ref_ttl_seconds > 0:
            self.cache.put_versioned(key, found)
        return found

    def forget(self, key: str) -> None:
        self.cache.drop(key)

    # -- everything else goes to the remote -----------------------------------------------------

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        return self.inner.exists_many(keys)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def stat_many(self, keys: Iterable[str]) -> dict[str, ObjectInfo]:
        return self.inner.stat_many(keys)

    def put(self, key: str, data: bytes) -> None:
        self.cache.drop(key)
        self.inner.put(key, data)
        self.cache.drop(key)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self.inner.put_if_absent(key, data)

    def put_if_version(self, key: str, data: bytes, expected: str | None) -> str:
        self.cache.drop(key)
        try:
            return self.inner.put_if_version(key, data, expected)
        finally:
            self.cache.drop(key)

    def compare_and_swap(self, key: str, expected: bytes | None, new: bytes) -> bool:
        self.cache.drop(key)
        try:
            return self.inner.compare_and_swap(key, expected, new)
        finally:
            self.cache.drop(key)

    def delete(self, key: str) -> None:
        self.cache.drop(key)
        self.inner.delete(key)

    def delete_many(self, keys: Iterable[str]) -> None:
        wanted = list(keys)
        for key in wanted:
            self.cache.drop(key)
        self.inner.delete_many(wanted)

    def delete_unchanged(self, infos: Iterable[ObjectInfo]) -> list[ObjectInfo]:
        wanted = list(infos)
        for info in wanted:
            self.cache.drop(info.key)
        return self.inner.delete_unchanged(wanted)

    def sweep_incomplete(self, older_than_seconds: float) -> int:
        return self.inner.sweep_incomplete(older_than_seconds)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.cache.close()
