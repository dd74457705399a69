"""Store: one store on one backend, with its namespaces.

A :class:`Store` *is* the chunk store of ``chunks/`` (it implements
:class:`ChunkStorage`) and carries the other namespaces of DESIGN.md §3:
``manifests`` (a second content-addressed ChunkStore), ``refs``
(compare-and-swap pointers) and ``reductions`` (delta chunks and reduction
profiles, :mod:`talaria_storage.storage.reductions`, through which it
implements :class:`ReductionStorage`). ``store.json`` records the format version and
the defaults the store was created with; it is written once, create-only, so
two processes initialising the same location cannot disagree.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from talaria_storage.core.errors import ObjectNotFound, StorageError
from talaria_storage.core.keys import CHUNKS, MANIFESTS, STORE_META
from talaria_storage.core.traits import ReductionStorage, StatefulStorage
from talaria_storage.core.types import (
    DeltaChunk,
    OperationType,
    ProcessingState,
    ReductionManifest,
    SourceInfo,
    VerificationError,
)
from talaria_storage.storage.backend import Backend
from talaria_storage.storage.chunk_store import FRESHEN_AFTER_SECONDS, ChunkStore
from talaria_storage.storage.codecs import Codec
from talaria_storage.storage.processing import ProcessingStates
from talaria_storage.storage.reductions import Reductions
from talaria_storage.storage.refs import RefStore

if TYPE_CHECKING:
    from collections.abc import Iterable

    from talaria_storage.core.hashing import SHA256Hash

STORE_FORMAT = "talaria-storage"
STORE_FORMAT_VERSION = 1

_R = TypeVar("_R")


class Store(ChunkStore, ReductionStorage, StatefulStorage):
    """A store: chunks, manifests, refs and reduction profiles on one backend."""

    def __init__(
        self,
        backend: Backend,
        codec: Codec | None = None,
        *,
        threads: int = 4,
        config: object | None = None,
        freshen_after: float = FRESHEN_AFTER_SECONDS,
    ) -> None:
        super().__init__(backend, codec, prefix=CHUNKS, threads=threads, freshen_after=freshen_after)
        #: The settings this store was opened with (``open_store`` passes its ``StorageConfig``),
        #: for the layers above that keep things beside the store (the lookup index). Opaque here:
        #: the storage layer never reads them, so it needs no import of the config layer above it.
        self.config = config
        self.manifests = ChunkStore(
            backend, self.codec, prefix=MANIFESTS, threads=threads, freshen_after=freshen_after
        )
        self.refs = RefStore(backend)
        #: Delta chunks and reduction profiles (the ReductionStorage methods below go here).
        self.reductions = Reductions(self, self.manifests, self.refs)
        self._resources: dict[str, Any] = {}
        self._resources_lock = threading.Lock()

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

    def resource(self, name: str, opener: Callable[[], _R]) -> _R:
        """The object ``name`` that a layer above keeps with this store, opened by ``opener`` on first use.

        One per store and name, shared by every caller (the sequence
        databases of one store share their lookup index this way), and closed
        with the store, last opened first. The store does not know what the
        objects are: it only needs them to have ``close()``.
        """
        with self._resources_lock:
            if name not in self._resources:
                self._resources[name] = opener()
            return self._resources[name]

    def sweep_incomplete(self, older_than_seconds: float) -> int:
        """Remove what killed writes left behind (temporary files, multipart uploads); how many."""
        return self.backend.sweep_incomplete(older_than_seconds)

    def close(self) -> None:
        """Close the resources opened with this store (last first), then the backend. Safe to call twice."""
        with self._resources_lock:
            resources, self._resources = list(self._resources.values()), {}
        for resource in reversed(resources):
            resource.close()
        self.backend.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.location!r}, codec={self.codec.to_dict()})"

    # -- DeltaStorage / ReductionStorage (see talaria_storage.storage.reductions) ---------------------

    def store_delta_chunk(self, chunk: DeltaChunk) -> SHA256Hash:
        # docstring inherited
        return self.reductions.store_delta_chunk(chunk)

    def get_delta_chunk(self, hash: SHA256Hash) -> DeltaChunk:
        # docstring inherited
        return self.reductions.get_delta_chunk(hash)

    def find_delta_for_child(self, child_hash: SHA256Hash) -> SHA256Hash | None:
        # docstring inherited
        return self.reductions.find_delta_for_child(child_hash)

    def get_deltas_for_reference(self, reference_hash: SHA256Hash) -> list[SHA256Hash]:
        # docstring inherited
        return self.reductions.find_deltas_for_reference(reference_hash)

    def store_reduction_manifest(
        self, manifest: ReductionManifest, expected: SHA256Hash | None = None, *, force: bool = False
    ) -> SHA256Hash:
        # docstring inherited
        return self.reductions.publish(manifest, expected, force=force)

    def get_reduction_by_profile(self, database: str, profile: str) -> ReductionManifest | None:
        # docstring inherited
        stored = self.reductions.stored(database, profile)
        return None if stored is None else stored.manifest

    def list_reduction_profiles(self, database: str) -> list[str]:
        # docstring inherited
        return self.reductions.profiles(database)

    def delete_reduction_profile(self, database: str, profile: str) -> bool:
        # docstring inherited
        return self.reductions.delete(database, profile)

    # -- StatefulStorage: resumable operations (see talaria_storage.storage.processing) --------------------

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
