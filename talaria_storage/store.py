"""Store: one store on one backend, with its namespaces.

A :class:`Store` *is* the chunk store of ``chunks/`` (it implements
:class:`ChunkStorage`) and carries the other namespaces of DESIGN.md §3:
``manifests`` (a second content-addressed ChunkStore) and ``refs``
(compare-and-swap pointers). ``store.json`` records the format version and
the defaults the store was created with; it is written once, create-only, so
two processes initialising the same location cannot disagree.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talaria_storage.backend import Backend
from talaria_storage.chunk_store import ChunkStore
from talaria_storage.codecs import Codec
from talaria_storage.errors import ObjectNotFound, StorageError
from talaria_storage.index import ChunkIndex, LazyIndex
from talaria_storage.keys import CHUNKS, MANIFESTS, STORE_META
from talaria_storage.processing import ProcessingStates
from talaria_storage.refs import RefStore
from talaria_storage.traits import RemoteStorage, StatefulStorage
from talaria_storage.types import (
    OperationType,
    ProcessingState,
    RemoteStatus,
    SourceInfo,
    SyncResult,
    VerificationError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from talaria_storage.config import StorageConfig
    from talaria_storage.hashing import SHA256Hash

STORE_FORMAT = "talaria-storage"
STORE_FORMAT_VERSION = 1

_log = logging.getLogger(__name__)


class Store(ChunkStore, RemoteStorage, StatefulStorage):
    """A store: chunks, manifests and refs on one backend."""

    def __init__(
        self,
        backend: Backend,
        codec: Codec | None = None,
        *,
        threads: int = 4,
        config: "StorageConfig | None" = None,
    ) -> None:
        super().__init__(backend, codec, prefix=CHUNKS, threads=threads)
        self.config = config
        self.manifests = ChunkStore(backend, self.codec, prefix=MANIFESTS, threads=threads)
        self.refs = RefStore(backend)
        # Opened on first use (LazyIndex is thread-safe), so commands that look nothing up
        # never open, lock or create it.
        self._lookup_index = LazyIndex(self._open_lookup_index)
        self._remote: Store | None = None

    def verify_all(self) -> list[VerificationError]:
        """Verify every chunk and every manifest (both are content-addressed frames)."""
        return sorted(super().verify_all() + self.manifests.verify_all(), key=lambda p: p.key)

    # -- lifecycle ------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any] | None:
        """The parsed ``store.json``, or None for an uninitialised location."""
        try:
            raw = self.backend.get(STORE_META)
        except ObjectNotFound:
            return None
        try:
            meta = json.loads(raw)
        except ValueError:
            raise StorageError(f"'{STORE_META}' in {self.location} is not valid JSON: the store is damaged") from None
        if meta.get("format") != STORE_FORMAT:
            raise StorageError(f"{self.location} is not a talaria-storage store ({STORE_META} says {meta.get('format')!r})")
        if int(meta.get("format_version", 0)) > STORE_FORMAT_VERSION:
            raise StorageError(
                f"{self.location} uses store format {meta['format_version']}; this version reads "
                f"{STORE_FORMAT_VERSION}: upgrade talaria-storage"
            )
        return meta

    def initialise(self) -> bool:
        """Write ``store.json`` if absent. True when this call created the store."""
        if self.metadata() is not None:
            return False
        meta = {
            "format": STORE_FORMAT,
            "format_version": STORE_FORMAT_VERSION,
            "created": time.time(),
            "codec": self.codec.to_dict(),
        }
        return self.backend.put_if_absent(STORE_META, json.dumps(meta, sort_keys=True).encode() + b"\n")

    def require_initialised(self) -> None:
        """Raise a one-line error naming the fix when the location holds no store."""
        if self.metadata() is None:
            raise StorageError(
                f"no store at {self.location}: create it with 'talaria-storage --store {self.location} init'"
            )

    def lookup_index(self) -> ChunkIndex:
        """The store's one lookup index, shared by all its databases, opened on first use.

        Where it lives (``[index] type`` chooses the kind; default RocksDB):
        a filesystem store keeps it in ``<root>/.index/`` (a leading dot is
        never an object key, so listing and sync never see it); any other
        persistent store under ``[cache] dir/index/<sha256 of the location>/``;
        a memory store, ``type = "memory"``, or a non-filesystem store built
        on a bare backend (no config, so no cache folder) in memory. The index only
        caches what the manifests say, keyed by manifest hash with a ``built``
        marker, so a stale or lost one is rebuilt, never trusted. If another
        process holds the RocksDB lock, this process falls back to a private
        in-memory index (correct, slower first look-up) rather than failing.
        """
        return self._lookup_index

    def _open_lookup_index(self) -> ChunkIndex:
        from talaria_storage.config import SCHEMA
        from talaria_storage.index import IndexBusy, open_index
        from talaria_storage.registry import parse_location

        kind = self.config.index.type if self.config is not None else SCHEMA["index"]["type"].default
        location = parse_location(self.location)
        if location.scheme == "file":
            folder = Path(location.path) / ".index"
        elif self.config is not None and location.scheme != "memory":
            digest = hashlib.sha256(self.location.encode()).hexdigest()
            folder = Path(self.config.cache.dir).expanduser() / "index" / digest
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

    def database(self, name: str) -> Any:
        """The sequence database ``name`` of this store (a :class:`SequenceDatabase`).

        Every database of one store shares :meth:`lookup_index`.
        """
        from talaria_storage.sequences.database import SequenceDatabase

        return SequenceDatabase(self, name, index=self.lookup_index(), threads=self.threads)

    def sweep_incomplete(self, older_than_seconds: float) -> int:
        """Remove what killed writes left behind (temporary files, multipart uploads); how many."""
        return self.backend.sweep_incomplete(older_than_seconds)

    def close(self) -> None:
        """Close the lookup index (if it was opened), then the backend. Safe to call twice."""
        self._lookup_index.close()
        self.backend.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.location!r}, codec={self.codec.to_dict()})"

    # -- RemoteStorage: this store and its remote (see talaria_storage.sync) ----------------------

    def attach_remote(self, remote: "Store") -> "Store":
        """Make ``remote`` (another store, on any backend) the remote of the methods below; returns self.

        The caller opens and closes it, e.g. from a ``[remote.NAME]`` of
        ``storage.toml``: ``store.attach_remote(open_store(store.config.remote("backup")))``.
        """
        if remote is self or remote.location == self.location:
            raise StorageError(f"a store cannot be its own remote ({self.location})")
        self._remote = remote
        return self

    @property
    def remote(self) -> "Store":
        """The attached remote; a one-line error naming :meth:`attach_remote` when there is none."""
        remote = self._remote
        if remote is None:
            raise StorageError(
                f"{self.location} has no remote: attach one with store.attach_remote(open_store(LOCATION)), "
                "or run 'talaria-storage sync push|pull LOCATION'"
            )
        return remote

    def fetch_chunks(self, hashes: Iterable[SHA256Hash]) -> int:
        # docstring inherited
        from talaria_storage.sync import copy_objects

        return copy_objects(self.remote, self, hashes, threads=self.threads)

    def push_chunks(self, hashes: Iterable[SHA256Hash]) -> int:
        # docstring inherited
        from talaria_storage.sync import copy_objects

        return copy_objects(self, self.remote, hashes, threads=self.threads)

    def sync(self) -> SyncResult:
        """Push every database of this store to the remote (:func:`talaria_storage.sync.push`)."""
        from talaria_storage.sync import push

        return push(self, self.remote)

    def get_remote_status(self) -> RemoteStatus:
        # docstring inherited
        from talaria_storage.sync import status, summarize

        return summarize(self.remote.location, status(self, self.remote))

    # -- StatefulStorage: resumable operations (see talaria_storage.processing) --------------------

    #: The operation the StatefulStorage methods act on; per Store instance, set by start_processing.
    _current_operation: str | None = None

    @functools.cached_property
    def states(self) -> ProcessingStates:
        """The processing states of this store (``state/``): resumable imports, syncs, jobs."""
        return ProcessingStates(self.backend)

    def start_processing(
        self,
        operation: OperationType,
        manifest_hash: SHA256Hash | None,
        manifest_version: str,
        total_chunks: int,
        source_info: SourceInfo,
    ) -> str:
        # docstring inherited
        state = self.states.start(
            operation,
            source_info,
            manifest_hash=manifest_hash,
            manifest_version=manifest_version,
            total_chunks=total_chunks,
        )
        self._current_operation = state.operation_id
        return state.operation_id

    def check_resumable(
        self,
        database: str,
        operation: OperationType,
        manifest_hash: SHA256Hash | None,
        manifest_version: str,
    ) -> ProcessingState | None:
        # docstring inherited
        return self.states.find(database, operation, manifest_hash, manifest_version)

    def update_processing_state(self, completed_chunks: Iterable[SHA256Hash]) -> None:
        # docstring inherited
        self.states.record_completed(self._require_operation("update_processing_state"), completed_chunks)

    def complete_processing(self) -> None:
        # docstring inherited
        self.states.complete(self._require_operation("complete_processing"))
        self._current_operation = None

    def _require_operation(self, method: str) -> str:
        if self._current_operation is None:
            raise StorageError(f"{method}() needs an operation in progress: call start_processing() first")
        return self._current_operation
