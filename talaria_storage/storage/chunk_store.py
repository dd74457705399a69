"""ChunkStore: content-addressed, deduplicated, verified chunks over any :class:`Backend`.

A chunk's key is ``<prefix><sha256 of its uncompressed bytes>`` and its object
is a frame (see :mod:`talaria_storage.storage.frame`). Guarantees:

* **dedup** - storing bytes already present writes nothing and counts a
  dedup hit; concurrent writers of the same bytes race through the backend's
  create-only write, so exactly one object is written and the losers count
  as hits too;
* **freshening** - a dedup hit on an object older than ``freshen_after``
  seconds touches it (:meth:`Backend.touch`), as git freshens the objects it
  re-uses, so gc's grace period restarts for an object a writer is about to
  reference again (:meth:`ChunkStore.freshen` does the same for a batch);
* **integrity** - every read decodes and re-hashes; a difference raises
  :class:`HashMismatch` and a broken frame :class:`CompressionError`, so a
  wrong byte is never returned;
* **verification** - :meth:`ChunkStore.verify_all` checks every object and
  reports each bad one instead of stopping at the first;
* **GC** - :meth:`ChunkStore.gc` deletes what is not referenced, sparing
  objects younger than a grace period so a concurrent writer that has stored
  chunks but not yet written its ref is never robbed.

Dedup counters cover the writes of this process; everything else in
:class:`StorageStats` is read from the backend, so it is true for the store
whoever wrote it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from talaria_storage.core.errors import (
    BackendError,
    ChunkNotFound,
    CompressionError,
    HashMismatch,
    InvalidHash,
    ObjectNotFound,
)
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import CHUNKS
from talaria_storage.core.traits import ChunkStorage
from talaria_storage.core.types import (
    ChunkMetadata,
    CodecStats,
    GCResult,
    StorageChunkInfo,
    StorageStats,
    VerificationError,
    VerificationProblem,
)
from talaria_storage.storage import frame
from talaria_storage.storage.backend import Backend, ObjectInfo, touched_since
from talaria_storage.storage.chunk_ranges import HEAD_BYTES, REMOTE_RANGES_BEFORE_WHOLE, ChunkRanges
from talaria_storage.storage.codecs import Codec, NoneCodec, ZstdCodec

T = TypeVar("T")
R = TypeVar("R")

_UNCOMPRESSED = NoneCodec()

#: Default age (seconds) past which a re-used object is freshened. gc's grace period must be
#: longer than this plus a writer's longest pause between re-using an object and publishing the
#: ref that keeps it (docs/concurrency.md); the default grace is 3,600 s.
FRESHEN_AFTER_SECONDS = 600.0

#: Candidates gc stats again and deletes per round: the writer's window is one such round trip.
#: Where deletes are not conditional (S3, filesystem, RocksDB) that window is a batch's stats
#: and delete: 256 made it ~0.6 s against a local emulator (one request per object, 8 at a time),
#: wide enough for the stress run's writers; 32 makes it ~80 ms, for 8x the delete rounds.
GC_BATCH = 32


@dataclass(frozen=True, slots=True)
class GCPlan:
    """The listing phase of a gc: each candidate's listing and hash (None: not a chunk name)."""

    candidates: list[tuple[ObjectInfo, SHA256Hash | None]]
    kept: int
    young: int


class ChunkStore(ChunkStorage):
    """Implements :class:`ChunkStorage` over a backend, under one key prefix."""

    def __init__(
        self,
        backend: Backend,
        codec: Codec | None = None,
        *,
        prefix: str = CHUNKS,
        threads: int = 4,
        freshen_after: float = FRESHEN_AFTER_SECONDS,
    ) -> None:
        if freshen_after < 0:
            raise ValueError(f"freshen_after must be >= 0 seconds, got {freshen_after}")
        self.backend = backend
        self.codec: Codec = codec if codec is not None else ZstdCodec()
        self.prefix = prefix
        self.threads = max(1, threads)
        self.freshen_after = freshen_after
        self._lock = threading.Lock()
        self._dedup_hits = 0
        self._dedup_bytes = 0

    @property
    def location(self) -> str:
        return self.backend.location

    def key_for(self, hash: SHA256Hash) -> str:
        """The backend key of a chunk."""
        return self.prefix + hash.to_hex()

    # -- ChunkStorage ---------------------------------------------------------------------------

    def store_chunk(self, data: bytes, compress: bool = True) -> SHA256Hash:
        # docstring inherited
        data = bytes(data)
        h = SHA256Hash.compute(data)
        key = self.key_for(h)
        if self._reuse(key):
            self._count_dedup(len(data))
            return h
        framed = frame.encode(data, self.codec if compress else _UNCOMPRESSED)
        if not self.backend.put_if_absent(key, framed):
            self._count_dedup(len(data))
        return h

    def get_chunk(self, hash: SHA256Hash) -> bytes:
        # docstring inherited
        key = self.key_for(hash)
        try:
            framed = self.backend.get(key)
        except ObjectNotFound:
            raise ChunkNotFound(hash, self.location) from None
        try:
            return self._decode_verified(key, hash, framed)
        except (HashMismatch, CompressionError):
            self.backend.forget(key)  # a cached copy that is bad is not served again
            raise

    def open_ranges(self, hash: SHA256Hash, head_bytes: int = HEAD_BYTES) -> ChunkRanges | bytes:
        """A chunk to be read by byte ranges of its content (:class:`ChunkRanges`), or its
        verified bytes when ranges would not help.

        Its bytes, as :meth:`get_chunk` gives them, when the first read of ``head_bytes``
        holds the whole object, when its frame is compressed (a range of a compressed
        frame is not a range of the content), or when the backend reads a range by reading
        the whole object anyway.
        """
        if not self.backend.supports_native_ranges:
            return self.get_chunk(hash)
        key = self.key_for(hash)
        try:
            first = self.backend.get_range(key, 0, frame.HEADER_SIZE + head_bytes)
        except ObjectNotFound:
            raise ChunkNotFound(hash, self.location) from None
        try:
            header = frame.decode_header(first)
        except CompressionError as exc:
            self.backend.forget(key)
            raise CompressionError(f"object '{key}' in {self.location}: {exc}") from exc
        if header.codec.id != NoneCodec.id:
            return self.get_chunk(hash)
        if len(first) >= frame.HEADER_SIZE + header.size:
            try:
                return self._decode_verified(key, hash, first[: frame.HEADER_SIZE + header.size])
            except (HashMismatch, CompressionError):
                self.backend.forget(key)
                raise
        return ChunkRanges(
            hash,
            key,
            header.size,
            first[frame.HEADER_SIZE :],
            lambda start, end: self.backend.get_range(key, start, end),
            whole_after=None if self.backend.is_local else REMOTE_RANGES_BEFORE_WHOLE,
            forget=lambda: self.backend.forget(key),
        )

    def has_chunk(self, hash: SHA256Hash) -> bool:
        # docstring inherited
        return self.backend.exists(self.key_for(hash))

    def present(self, hashes: Iterable[SHA256Hash]) -> set[SHA256Hash]:
        """The subset of ``hashes`` held here, asked in one batch (``Backend.exists_many``).

        For the sync planner: it asks a remote about candidates only, never lists it.
        """
        by_key = {self.key_for(h): h for h in hashes}
        return {by_key[key] for key in self.backend.exists_many(by_key)}

    def reuse(self, hash: SHA256Hash) -> bool:
        """:meth:`has_chunk` for a writer about to reference the chunk: an old one is freshened
        first. A writer that skips writing what is held asks this, never ``has_chunk``."""
        return self._reuse(self.key_for(hash))

    def freshen(self, hashes: Iterable[SHA256Hash]) -> set[SHA256Hash]:
        """The subset of ``hashes`` held here, each older than ``freshen_after`` touched first.

        For a writer about to publish a ref to objects it did not write itself
        (dedup hits, a parent version's look-up partitions, a remote's copies):
        one batched stat, then a touch of the old ones only, so a gc running
        beside it sees them young. An object that vanished before its touch is
        left out, as a missing one.
        """
        by_key = {self.key_for(h): h for h in hashes}
        infos = self.backend.stat_many(by_key)
        cutoff = time.time() - self.freshen_after
        old = [key for key, info in infos.items() if info.modified <= cutoff]
        gone = {key for key, touched in zip(old, self._parallel(self._touch, old)) if not touched}
        return {by_key[key] for key in infos if key not in gone}

    def enumerate_chunks(self) -> list[StorageChunkInfo]:
        # docstring inherited
        return [StorageChunkInfo(h, info.size) for h, info in self._listed() if h is not None]

    def verify_all(self) -> list[VerificationError]:
        # docstring inherited
        problems: list[VerificationError] = []
        listed = list(self._listed())
        for h, info in listed:
            if h is None:
                problems.append(
                    VerificationError(info.key, VerificationProblem.BAD_KEY, f"'{info.key}' is not a chunk name")
                )
        checks = self._parallel(self._verify_one, [(h, info) for h, info in listed if h is not None])
        problems.extend(p for p in checks if p is not None)
        return sorted(problems, key=lambda p: p.key)

    def get_stats(self) -> StorageStats:
        # docstring inherited
        listed = [(h, info) for h, info in self._listed() if h is not None]
        headers = self._parallel(self._read_header, listed)
        per_codec: dict[str, CodecStats] = {}
        stored = logical = unreadable = 0
        for (_, info), header in zip(listed, headers):
            stored += info.size
            if header is None:
                unreadable += 1
                continue
            logical += header.size
            name = header.codec.name
            prev = per_codec.get(name, CodecStats())
            per_codec[name] = CodecStats(
                prev.objects + 1, prev.stored_bytes + info.size, prev.logical_bytes + header.size
            )
        with self._lock:
            hits, saved = self._dedup_hits, self._dedup_bytes
        return StorageStats(len(listed), stored, logical, hits, saved, per_codec, unreadable)

    def gc(
        self, referenced: Iterable[SHA256Hash], *, dry_run: bool = False, grace_seconds: float = 0.0
    ) -> GCResult:
        # docstring inherited
        return self.sweep(self.gc_candidates(referenced, grace_seconds), dry_run=dry_run, grace_seconds=grace_seconds)

    def gc_candidates(self, referenced: Iterable[SHA256Hash], grace_seconds: float) -> GCPlan:
        """What :meth:`gc` would delete, as listed now: unreferenced objects past the grace period."""
        keep = {self.key_for(h) for h in referenced}
        cutoff = time.time() - grace_seconds
        candidates: list[tuple[ObjectInfo, SHA256Hash | None]] = []
        kept = young = 0
        for h, info in self._listed():
            if info.key in keep:
                kept += 1
            elif grace_seconds > 0 and info.modified > cutoff:
                young += 1
            else:
                candidates.append((info, h))
        return GCPlan(candidates, kept, young)

    def sweep(
        self,
        plan: GCPlan,
        *,
        live: Collection[SHA256Hash] = frozenset(),
        dry_run: bool = False,
        grace_seconds: float = 0.0,
    ) -> GCResult:
        """Delete ``plan``'s candidates, but none in ``live`` (a mark taken after the listing).

        Each batch of :data:`GC_BATCH` is stat'ed again just before its delete,
        and an object a writer has freshened since the listing (its time moved
        past the listing's, or it is younger than the grace period) is spared.
        The delete itself is conditional where
        the backend can make it so (:meth:`Backend.delete_unchanged`: GCS, Azure),
        which closes the window; elsewhere the window left to a writer is one
        batch's stat-to-delete round trip, and :func:`collect_garbage` reports
        the rare object it loses there.
        """
        kept, young = plan.kept, plan.young
        removed: list[tuple[ObjectInfo, SHA256Hash | None]] = []
        todo = [(info, h) for info, h in plan.candidates if h is None or h not in live]
        kept += len(plan.candidates) - len(todo)
        for start in range(0, len(todo), GC_BATCH):
            batch = todo[start : start + GC_BATCH]
            if dry_run:
                removed.extend(batch)
                continue
            now = self.backend.stat_many([info.key for info, _ in batch])
            cutoff = time.time() - grace_seconds
            doomed = []
            for info, h in batch:
                current = now.get(info.key)
                if current is None:
                    continue  # gone already (another gc)
                # Freshened by a writer since it was listed. Told by the listing's time, not by
                # the grace period: a sweep that outlasts grace - freshen_after would otherwise
                # see an object a writer freshened (and published) at its start grown old again.
                if touched_since(info, current) or (grace_seconds > 0 and current.modified > cutoff):
                    young += 1
                else:
                    doomed.append((info, h))
            # A backend with conditional deletes spares what a writer touches even now.
            gone = {info.key for info in self.backend.delete_unchanged([info for info, _ in doomed])}
            young += len(doomed) - len(gone)
            removed.extend((info, h) for info, h in doomed if info.key in gone)
        return GCResult(
            removed=len(removed),
            freed_bytes=sum(info.size for info, _ in removed),
            kept=kept,
            spared_young=young,
            dry_run=dry_run,
            removed_hashes=tuple(h for _, h in removed if h is not None),
        )

    # -- extras ---------------------------------------------------------------------------------

    def chunk_metadata(self, hash: SHA256Hash) -> ChunkMetadata:
        """What the frame header says about one chunk (reads only the header where it can)."""
        key = self.key_for(hash)
        try:
            info = self.backend.stat(key)
            head = self.backend.get_range(key, 0, frame.HEADER_SIZE)
        except ObjectNotFound:
            raise ChunkNotFound(hash, self.location) from None
        header = frame.decode_header(head)
        return ChunkMetadata(hash, header.size, info.size, header.codec.name, info.modified)

    def get_framed(self, hash: SHA256Hash) -> bytes:
        """The stored frame as it is, for copying between stores without recompressing."""
        try:
            return self.backend.get(self.key_for(hash))
        except ObjectNotFound:
            raise ChunkNotFound(hash, self.location) from None

    def put_framed(self, hash: SHA256Hash, framed: bytes) -> bool:
        """Store a frame received from elsewhere after checking it decodes to ``hash``.

        True when this call wrote it; False when it was already present.
        """
        key = self.key_for(hash)
        self._decode_verified(key, hash, framed)
        if self.backend.put_if_absent(key, framed):
            return True
        if not self._reuse(key):  # collected between the create-only write and the stat
            return self.backend.put_if_absent(key, framed)
        return False

    def chunk_hashes(self) -> Iterator[SHA256Hash]:
        """Every chunk's hash, streamed from the backend listing."""
        return (h for h, _ in self._listed() if h is not None)

    # -- internals ------------------------------------------------------------------------------

    def _reuse(self, key: str) -> bool:
        """True when ``key`` holds an object, which is freshened when it is old."""
        try:
            info = self.backend.stat(key)
        except ObjectNotFound:
            return False
        if info.modified > time.time() - self.freshen_after:
            return True
        return self._touch(key)  # False: collected since the stat, so it is written again

    def _touch(self, key: str) -> bool:
        try:
            self.backend.touch(key)
        except ObjectNotFound:
            return False
        return True

    def _count_dedup(self, size: int) -> None:
        with self._lock:
            self._dedup_hits += 1
            self._dedup_bytes += size

    def _decode_verified(self, key: str, expected: SHA256Hash, framed: bytes) -> bytes:
        try:
            data, _ = frame.decode(framed)
        except CompressionError as exc:
            raise CompressionError(f"object '{key}' in {self.location}: {exc}") from exc
        actual = SHA256Hash.compute(data)
        if actual != expected:
            raise HashMismatch(expected, actual, key)
        return data

    def _listed(self) -> Iterator[tuple[SHA256Hash | None, ObjectInfo]]:
        """(hash, info) per object under the prefix; hash is None for a key that is not a hash."""
        for info in self.backend.list(self.prefix):
            try:
                yield SHA256Hash.from_hex(info.key[len(self.prefix):]), info
            except InvalidHash:
                yield None, info

    def _parallel(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        if self.backend.is_local or self.threads == 1 or len(items) < 2:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(fn, items))

    def _read_header(self, item: tuple[SHA256Hash | None, ObjectInfo]) -> frame.FrameHeader | None:
        try:
            return frame.decode_header(self.backend.get_range(item[1].key, 0, frame.HEADER_SIZE))
        except (CompressionError, ObjectNotFound, BackendError):
            return None

    def _verify_one(self, item: tuple[SHA256Hash | None, ObjectInfo]) -> VerificationError | None:
        h, info = item
        assert h is not None
        key = info.key
        try:
            framed = self.backend.origin.get(key)  # the remote's bytes, never a cached copy
        except ObjectNotFound:
            return VerificationError(key, VerificationProblem.MISSING, f"'{key}' vanished during verification", h)
        except BackendError as exc:
            return VerificationError(key, VerificationProblem.UNREADABLE, f"'{key}' is unreadable: {exc}", h)
        try:
            self._decode_verified(key, h, framed)
        except HashMismatch as exc:
            return VerificationError(key, VerificationProblem.MISMATCH, str(exc), h)
        except CompressionError as exc:
            kind = (
                VerificationProblem.UNKNOWN_CODEC
                if "unknown codec" in str(exc)
                else VerificationProblem.CORRUPT_FRAME
            )
            return VerificationError(key, kind, str(exc), h)
        return None
