"""The storage traits: the abstract interfaces the engine's layers implement and consume.

They mirror the original trait hierarchy, in snake_case::

    ChunkStorage
      +-- DeltaStorage
      |     +-- ReductionStorage
      +-- TaxonomyStorage
      +-- RemoteStorage
      +-- StatefulStorage

Implementations subclass the big ABCs; consumers should depend on the
narrowest one they use (the sync planner needs ``ChunkStorage``, not a whole
database).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.types import (
    DeltaChunk,
    GCResult,
    OperationType,
    ProcessingState,
    ReductionManifest,
    RemoteStatus,
    SourceInfo,
    StorageChunkInfo,
    StorageStats,
    SyncResult,
    TaxonomyAwareChunk,
    TaxonomyStats,
    VerificationError,
)


class ChunkStorage(ABC):
    """Content-addressed, deduplicated, verified storage of immutable byte chunks."""

    @abstractmethod
    def store_chunk(self, data: bytes, compress: bool = True) -> SHA256Hash:
        """Store ``data`` and return SHA-256 of it (of the uncompressed bytes).

        Storing bytes that are already present writes nothing (a dedup hit).
        Idempotent and safe for concurrent writers of the same bytes.
        ``compress=False`` stores the bytes with the ``none`` codec.
        """

    @abstractmethod
    def get_chunk(self, hash: SHA256Hash) -> bytes:
        """Return the chunk's original bytes.

        Raises ``ChunkNotFound`` when absent and ``HashMismatch`` (or
        ``CompressionError`` for an undecodable frame) when the stored object
        is corrupt: a wrong byte is never returned.
        """

    @abstractmethod
    def has_chunk(self, hash: SHA256Hash) -> bool:
        """True when the chunk is present (its integrity is not checked)."""

    @abstractmethod
    def enumerate_chunks(self) -> list[StorageChunkInfo]:
        """Every chunk in the store with its stored size."""

    @abstractmethod
    def verify_all(self) -> list[VerificationError]:
        """Re-read and re-hash every chunk; report each bad one without stopping at the first."""

    @abstractmethod
    def get_stats(self) -> StorageStats:
        """Object count, stored and logical bytes, ratio, dedup counters, per-codec totals."""

    @abstractmethod
    def gc(
        self, referenced: Iterable[SHA256Hash], *, dry_run: bool = False, grace_seconds: float = 0.0
    ) -> GCResult:
        """Delete every chunk not in ``referenced`` and older than ``grace_seconds``.

        The grace period spares chunks a concurrent writer has stored but not
        yet referenced. ``dry_run`` reports without deleting.
        """


class DeltaStorage(ChunkStorage):
    """Chunks of sequences stored as edit scripts against reference sequences.

    A delta chunk is an ordinary content-addressed object; what makes it
    findable by child or by reference is the reduction profile that lists it
    (:meth:`ReductionStorage.store_reduction_manifest` indexes its deltas). A
    delta chunk no profile lists is unreferenced, like a chunk no version
    lists: the look-ups below do not see it and gc collects it after its grace
    period.
    """

    @abstractmethod
    def store_delta_chunk(self, chunk: DeltaChunk) -> SHA256Hash:
        """Store a delta chunk (idempotent) and return its hash; a profile that lists it makes it findable."""

    @abstractmethod
    def get_delta_chunk(self, hash: SHA256Hash) -> DeltaChunk:
        """Load a delta chunk (``ChunkNotFound`` when absent; a ``StorageError`` when it is another kind of chunk)."""

    @abstractmethod
    def find_delta_for_child(self, child_hash: SHA256Hash) -> SHA256Hash | None:
        """The delta chunk holding the sequence ``child_hash`` in some stored profile, or None."""

    @abstractmethod
    def get_deltas_for_reference(self, reference_hash: SHA256Hash) -> list[SHA256Hash]:
        """Every delta chunk encoded against ``reference_hash`` in any stored profile, sorted."""


class ReductionStorage(DeltaStorage):
    """Named reduction profiles, per database: references plus deltas, reproducible byte for byte.

    A profile is the ref ``reductions/<database>/<profile>`` naming a
    reduction manifest; it moves only by compare-and-swap.
    """

    @abstractmethod
    def store_reduction_manifest(
        self, manifest: ReductionManifest, expected: SHA256Hash | None = None, *, force: bool = False
    ) -> SHA256Hash:
        """Store the manifest and move its profile's ref from ``expected`` to it; returns the stored hash.

        ``expected`` is the hash the caller built on (None: the profile must
        not exist yet). Every object the manifest lists must already be
        stored. The same content as the profile already names is a no-op that
        returns the current hash; a ref found elsewhere raises ``RefConflict``
        and changes nothing, unless ``force``.
        """

    @abstractmethod
    def get_reduction_by_profile(self, database: str, profile: str) -> ReductionManifest | None:
        """The current manifest of ``database``'s ``profile``, or None."""

    @abstractmethod
    def list_reduction_profiles(self, database: str) -> list[str]:
        """Names of every stored profile of ``database``, sorted."""

    @abstractmethod
    def delete_reduction_profile(self, database: str, profile: str) -> bool:
        """Remove the profile's ref (its objects become collectable). True when it existed."""


class TaxonomyStorage(ChunkStorage):
    """Chunks labelled with the taxa of the records they hold."""

    @abstractmethod
    def store_taxonomy_chunk(self, data: bytes, taxon_ids: Iterable[int], record_count: int) -> SHA256Hash:
        """Store a chunk and index it under each taxon."""

    @abstractmethod
    def get_taxonomy_chunk(self, hash: SHA256Hash) -> TaxonomyAwareChunk:
        """The chunk with its taxa and record count."""

    @abstractmethod
    def find_chunks_by_taxon(self, taxon_id: int, descendants: bool = False) -> list[SHA256Hash]:
        """Chunks holding records of ``taxon_id`` (and of its descendants, if asked)."""

    @abstractmethod
    def get_taxonomy_stats(self) -> TaxonomyStats:
        """Taxa and chunk counts."""


class RemoteStorage(ChunkStorage):
    """A store that can exchange chunks and refs with another store (its remote)."""

    @abstractmethod
    def fetch_chunks(self, hashes: Iterable[SHA256Hash]) -> int:
        """Copy the named chunks from the remote, verifying each; returns how many were copied."""

    @abstractmethod
    def push_chunks(self, hashes: Iterable[SHA256Hash]) -> int:
        """Copy the named chunks to the remote, skipping those it has; returns how many were copied."""

    @abstractmethod
    def sync(self) -> SyncResult:
        """Bring the remote up to date with this store's refs (objects first, refs last)."""

    @abstractmethod
    def get_remote_status(self) -> RemoteStatus:
        """What is missing on which side, per ref."""


class StatefulStorage(ChunkStorage):
    """Resumable operations whose progress survives process death."""

    @abstractmethod
    def start_processing(
        self,
        operation: OperationType,
        manifest_hash: SHA256Hash | None,
        manifest_version: str,
        total_chunks: int,
        source_info: SourceInfo,
    ) -> str:
        """Record a new (or resumed) operation and make it current; returns its id."""

    @abstractmethod
    def check_resumable(
        self,
        database: str,
        operation: OperationType,
        manifest_hash: SHA256Hash | None,
        manifest_version: str,
    ) -> ProcessingState | None:
        """The unfinished state of the same operation on the same input, or None."""

    @abstractmethod
    def update_processing_state(self, completed_chunks: Iterable[SHA256Hash]) -> None:
        """Add chunks to the current operation's completed set, durably."""

    @abstractmethod
    def complete_processing(self) -> None:
        """Mark the current operation finished and remove its state."""
