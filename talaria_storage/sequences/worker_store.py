"""The store as a Dask worker opens it: the client's settings, checked to name the same store.

A worker of an import or a verify (:mod:`~talaria_storage.sequences.sharded_import`,
:mod:`~talaria_storage.sequences.integrity`) writes and reads the shared
store itself, so it must open the store the client has open: the client
sends its :class:`StoreAddress` (its ``StorageConfig`` and the SHA-256 of
its ``store.json``) with every task. Each worker process opens a store once
and keeps it. A worker that cannot open it, or finds another store at that
location (a local path that is not shared, say), stops with one line naming
the location, before it writes anything.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from talaria_storage.config.open_store import open_store
from talaria_storage.config.settings import StorageConfig
from talaria_storage.core.errors import StorageError
from talaria_storage.core.keys import STORE_META
from talaria_storage.index.local_index import MemoryIndex
from talaria_storage.sequences.stored_sequences import StoredSequences
from talaria_storage.storage.store import Store


@dataclass(frozen=True)
class StoreAddress:
    """How a worker opens the client's store, and how it knows it is that store."""

    config: StorageConfig
    meta: str  # SHA-256 of the client's store.json
    location: str  # for messages


def address_of(store: Store) -> StoreAddress:
    """The address workers open ``store`` by; refused for a store they cannot share."""
    config = store.config
    if not isinstance(config, StorageConfig):
        raise StorageError(
            f"Dask workers open the store from its location, and {store.location} was not opened from one: "
            "open it with open_store or open_database given a path, URL or storage.toml"
        )
    if config.location.startswith("memory"):
        raise StorageError("Dask workers cannot share a memory store: use a path or a bucket")
    return StoreAddress(config, meta_digest(store), store.location)


def meta_digest(store: Store) -> str:
    """SHA-256 of the store's ``store.json``: what tells one store from another at one address."""
    return hashlib.sha256(store.backend.get(STORE_META)).hexdigest()


_stores: dict[tuple[str, str], Store] = {}  # by (location, store.json digest)
_maps: dict[tuple[str, str, frozenset[bytes]], StoredSequences] = {}
_lock = threading.Lock()


def worker_store(address: StoreAddress) -> Store:
    """The store at ``address``, opened once per worker process and checked to be the client's."""
    with _lock:
        store = _stores.get((address.location, address.meta))
        if store is None:
            try:
                store = open_store(address.config, create=False)
            except StorageError as exc:
                raise StorageError(f"a Dask worker cannot open the store {address.location}: {exc}") from None
            if meta_digest(store) != address.meta:
                store.close()
                raise StorageError(
                    f"a Dask worker finds another store at {address.location} than the client's: give the "
                    "workers a location they share with it (a bucket, or a shared file system path)"
                )
            _stores[address.location, address.meta] = store
        return store


def worker_sequences(address: StoreAddress, live: dict[bytes, int]) -> StoredSequences | None:
    """The store-wide sequence map restricted to ``live``, built once per worker process.

    A worker has no copy of the client's look-up index, so it maps the live
    versions' packs itself (:meth:`StoredSequences.refresh` over an empty
    in-memory index reads each of them once).
    """
    if not live:
        return None
    store = worker_store(address)
    key = (address.location, address.meta, frozenset(live))
    with _lock:
        stored = _maps.get(key)
        if stored is None:
            stored = StoredSequences(store, MemoryIndex())
            stored.refresh()
            stored.live = dict(live)  # what the client saw: a version published since lends nothing
            _maps[key] = stored
    return stored
