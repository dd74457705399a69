"""Value types shared by the traits (frozen dataclasses; no behaviour beyond validation).

Glossary:

chunk
    An immutable blob named by the SHA-256 of its uncompressed bytes.
manifest
    The description of one database version (its chunks, taxa, sources), itself a chunk-like
    content-addressed object.
ref
    A mutable pointer (``refs/<db>/<version>``, ``refs/<db>/HEAD``) to a manifest hash, moved
    only by compare-and-swap.
delta
    A sequence stored as an edit script against a reference sequence.
reduction
    A named profile choosing reference sequences and storing the rest as deltas.
taxon
    An NCBI Taxonomy id (an ``int``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from talaria_storage.core.hashing import SHA256Hash


@dataclass(frozen=True, slots=True)
class StorageChunkInfo:
    """A listed chunk: its hash and stored (framed, compressed) size in bytes."""

    hash: SHA256Hash
    size: int


@dataclass(frozen=True, slots=True)
class ChunkMetadata:
    """What the frame header says about one chunk."""

    hash: SHA256Hash
    size: int  # uncompressed bytes
    stored_size: int  # framed bytes on the backend
    codec: str
    modified: float = 0.0


@dataclass(frozen=True, slots=True)
class CodecStats:
    objects: int = 0
    stored_bytes: int = 0
    logical_bytes: int = 0


@dataclass(frozen=True, slots=True)
class StorageStats:
    """Totals over every chunk in a store. Dedup counters cover this process's writes."""

    total_chunks: int
    stored_bytes: int
    logical_bytes: int
    dedup_hits: int = 0
    dedup_bytes_saved: int = 0
    per_codec: dict[str, CodecStats] = field(default_factory=dict)
    unreadable: int = 0

    @property
    def compression_ratio(self) -> float:
        """logical / stored; 1.0 for an empty store."""
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 1.0


@dataclass(frozen=True, slots=True)
class GCResult:
    """What a garbage collection removed (or would remove, on a dry run)."""

    removed: int
    freed_bytes: int
    kept: int
    spared_young: int = 0
    dry_run: bool = False
    removed_hashes: tuple[SHA256Hash, ...] = ()
    incomplete_removed: int = 0  # leftovers of killed writes (temp files, multipart uploads)


class VerificationProblem(str, enum.Enum):
    MISMATCH = "hash-mismatch"
    CORRUPT_FRAME = "corrupt-frame"
    UNKNOWN_CODEC = "unknown-codec"
    UNREADABLE = "unreadable"
    MISSING = "missing"
    BAD_KEY = "bad-key"


@dataclass(frozen=True, slots=True)
class VerificationError:
    """One bad object found by ``verify_all``; the verification itself does not raise."""

    key: str
    problem: VerificationProblem
    message: str
    hash: SHA256Hash | None = None


@dataclass(frozen=True, slots=True)
class TaxonomyStats:
    total_taxa: int
    total_chunks: int
    chunks_per_taxon: dict[int, int] = field(default_factory=dict)
    unclassified_chunks: int = 0


@dataclass(frozen=True, slots=True)
class SyncResult:
    """Outcome of moving objects and refs between two stores."""

    objects_copied: int = 0
    bytes_copied: int = 0
    objects_skipped: int = 0
    retried: int = 0
    refs_updated: tuple[str, ...] = ()
    duration_seconds: float = 0.0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    """What differs between a store and its remote, per ref."""

    remote: str
    in_sync: tuple[str, ...] = ()
    local_ahead: tuple[str, ...] = ()
    remote_ahead: tuple[str, ...] = ()
    diverged: tuple[str, ...] = ()
    missing_remote_objects: int = 0
    missing_local_objects: int = 0


class OperationType(str, enum.Enum):
    IMPORT = "import"
    SYNC_PUSH = "sync-push"
    SYNC_PULL = "sync-pull"
    REDUCE = "reduce"
    OPTIMIZE = "optimize"
    VERIFY = "verify"
    GC = "gc"
    JOB = "job"


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """Where an operation's input came from."""

    database: str
    source: str = ""
    version: str = ""
    files: tuple[tuple[str, int, str], ...] = ()  # (name, size, sha256 hex)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProcessingState:
    """Progress of a resumable operation, kept in the store under ``state/<operation_id>``."""

    operation_id: str
    operation: OperationType
    database: str
    manifest_hash: SHA256Hash | None
    manifest_version: str
    total_chunks: int
    completed_chunks: frozenset[SHA256Hash]
    source_info: SourceInfo
    started: float
    updated: float

    @property
    def is_complete(self) -> bool:
        return len(self.completed_chunks) >= self.total_chunks

    @property
    def remaining(self) -> int:
        return max(0, self.total_chunks - len(self.completed_chunks))


@dataclass(frozen=True, slots=True)
class DeltaRecord:
    """One sequence stored as an edit script against a reference sequence.

    ``ops`` is opaque to the store: its format belongs to the delta codec
    (``talaria_storage.reduction``), which alone can decode it back to the
    sequence whose SHA-256 is ``child_hash``. ``identity`` is the fraction of
    identical residues the reduction measured (over the shorter sequence), when
    it recorded one.
    """

    child_id: str
    child_hash: SHA256Hash
    reference_hash: SHA256Hash
    ops: bytes
    taxon_id: int | None = None
    identity: float | None = None


@dataclass(frozen=True, slots=True)
class DeltaChunk:
    """A group of deltas that share one reference (every record's ``reference_hash`` is this one's).

    Stored as one content-addressed object in ``chunks/``; the store keeps the
    records in the order given, so the same records give the same hash.
    """

    reference_hash: SHA256Hash
    deltas: tuple[DeltaRecord, ...]


@dataclass(frozen=True, slots=True)
class ReductionManifest:
    """A reduction profile of one database version: its references, its deltas, how it was made.

    Stored content-addressed in ``manifests/`` and named by the ref
    ``reductions/<database>/<profile>``. Every field is part of the stored
    bytes, so the same reduction of the same version always has the same hash
    (there is deliberately no creation time). The store reads only the hashes:

    * ``source_manifest``: the manifest of the version that was reduced
      (``source_version`` names it); the profile keeps it, and all it reaches,
      alive through gc and carries it through sync;
    * ``reference_chunks``, ``delta_chunks`` (:class:`DeltaChunk` objects) and
      ``objects`` (any other ``chunks/`` object the reduction layer needs:
      member tables, the taxdump of a taxonomy-aware reduction): all must be
      stored before the manifest; gc keeps them, sync copies them, verify
      checks them.

    ``parameters`` and ``statistics`` are JSON values (str keys; tuples read
    back as lists); their meaning is the reduction layer's.
    """

    database: str
    profile: str
    source_manifest: SHA256Hash | None
    source_version: str
    reference_chunks: tuple[SHA256Hash, ...] = ()
    delta_chunks: tuple[SHA256Hash, ...] = ()
    objects: tuple[SHA256Hash, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    statistics: dict[str, Any] = field(default_factory=dict)
    tool_version: str = ""


@dataclass(frozen=True, slots=True)
class TaxonomyAwareChunk:
    """A chunk of sequence records that all belong to the listed taxa."""

    hash: SHA256Hash
    taxon_ids: tuple[int, ...]
    record_count: int
    size: int
    data: bytes = b""
