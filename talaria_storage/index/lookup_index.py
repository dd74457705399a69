"""The lookup index a store's databases share: where it lives, and opening it once per store.

Where it lives (``[index] type`` chooses the kind; default RocksDB): a
filesystem store keeps it in ``<root>/.index/`` (a leading dot is never an
object key, so listing and sync never see it); any other persistent store
under ``[cache] dir/index/<sha256 of the location>/``; a memory store,
``type = "memory"``, or a non-filesystem store built on a bare backend (no
config, so no cache folder) in memory. The index only caches what the
manifests say, keyed by manifest hash with a ``built`` marker, so a stale or
lost one is rebuilt, never trusted. If another process holds the RocksDB
lock, this process falls back to a private in-memory index (correct, slower
first look-up) rather than failing.
"""

from __future__ import annotations

import hashlib
import logging
from functools import partial
from pathlib import Path

from talaria_storage.config.settings import SCHEMA, StorageConfig
from talaria_storage.index.local_index import ChunkIndex, IndexBusy, LazyIndex, open_index
from talaria_storage.storage.registry import parse_location
from talaria_storage.storage.store import Store

_log = logging.getLogger(__name__)

#: The name under which a store keeps its lookup index (:meth:`Store.resource`).
RESOURCE = "lookup-index"


def lookup_index(store: Store) -> LazyIndex:
    """The store's one lookup index, shared by all its databases and closed with the store.

    It is opened on first use (:class:`LazyIndex`), so commands that look
    nothing up never open, lock or create it.
    """
    return store.resource(RESOURCE, lambda: LazyIndex(partial(_open, store)))


def _open(store: Store) -> ChunkIndex:
    config = store.config if isinstance(store.config, StorageConfig) else None
    kind = config.index.type if config is not None else SCHEMA["index"]["type"].default
    location = parse_location(store.location)
    if location.scheme == "file":
        folder: Path | None = Path(location.path) / ".index"
    elif config is not None and location.scheme != "memory":
        digest = hashlib.sha256(store.location.encode()).hexdigest()
        folder = Path(config.cache.dir).expanduser() / "index" / digest
    else:
        # A memory store, or a store built on a backend without a config and so without a
        # cache folder of its own: the index lives as long as the store object does.
        kind, folder = "memory", None
    if kind == "memory":
        return open_index("memory", None)
    try:
        return open_index(kind, folder)
    except IndexBusy as exc:
        _log.warning("%s; using a private in-memory index for this process", exc)
        return open_index("memory", None)
