"""Reductions: delta chunks and reduction profiles as objects and refs of one store.

Words used here (the rest of the vocabulary is in :mod:`talaria_storage.core.types`):

delta chunk
    A :class:`DeltaChunk` stored in ``chunks/`` (format: :mod:`.delta_chunks`).
    Its bytes are opaque to this layer beyond the child and reference hashes:
    decoding a delta needs the codec of ``talaria_storage.reduction``.
profile
    The ref ``reductions/<database>/<profile>``, naming a stored reduction.
stored reduction
    The object a profile names, in ``manifests/``: the caller's
    :class:`ReductionManifest` plus what the store adds, the hash of the
    profile's delta index (:mod:`.delta_index`) and ``previous``, the
    reduction the profile named before this one replaced it (None for the
    first). ``previous`` lets sync fast-forward a remote's profile instead of
    calling every update a conflict; gc does not keep it alive.

Publishing follows DESIGN.md §3: every object the manifest lists must already
be stored; the delta index is written next, then the stored reduction, and
the ref moves last, by compare-and-swap from the hash the caller built on. A
crash leaves only unreferenced objects.

The stored reduction is canonical JSON (sorted keys, no spaces), so the same
reduction of the same version always has the same hash; republishing the
content a profile already names writes nothing and returns its hash.

This layer sits below ``sequences`` and ``reduction``: it knows no database
manifests (the layers above expand ``source_manifest``, see
:meth:`VersionCatalog.reachable`) and no delta codec (see :class:`DeltaCheck`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from talaria_storage.core.errors import (
    ChunkNotFound,
    InvalidHash,
    ProfileNotFound,
    RefConflict,
    StorageError,
)
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import REDUCTIONS, reduction_key, reduction_prefix
from talaria_storage.core.types import DeltaChunk, ReductionManifest, VerificationError
from talaria_storage.storage import delta_chunks, delta_index
from talaria_storage.storage.chunk_store import ChunkStore
from talaria_storage.storage.delta_index import DeltaIndex, ObjectCache, Partition
from talaria_storage.storage.refs import RefStore

FORMAT = "talaria-reduction"
FORMAT_VERSION = 1
#: Bytes of child hashes remembered from this process's store_delta_chunk calls, so that
#: publishing a profile need not read its delta chunks back (beyond it they are re-read).
RECENT_BUDGET = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredReduction:
    """A profile's object as stored (see the module docstring)."""

    hash: SHA256Hash
    manifest: ReductionManifest
    delta_index: SHA256Hash
    previous: SHA256Hash | None

    @property
    def key(self) -> str:
        """The ref that names (or named) it."""
        return reduction_key(self.manifest.database, self.manifest.profile)

    def listed_objects(self) -> dict[SHA256Hash, str]:
        """The ``chunks/`` objects the manifest names, with what each is (the index's partitions aside)."""
        found: dict[SHA256Hash, str] = {self.delta_index: "delta index"}
        for kind, hashes in (
            ("reference chunk", self.manifest.reference_chunks),
            ("delta chunk", self.manifest.delta_chunks),
            ("reduction object", self.manifest.objects),
        ):
            for h in hashes:
                found.setdefault(h, kind)
        return found


class DeltaCheck(Protocol):
    """The hook verify calls for every delta chunk of every profile, to check what only the codec can.

    ``talaria_storage.reduction`` implements it (each delta decodes, against
    its reference, to the sequence whose hash it claims) and the caller of
    :func:`talaria_storage.sequences.integrity.verify_store` passes it in:
    this layer and the sequences layer sit below the codec, so neither can
    import it.
    """

    def __call__(
        self, profile: StoredReduction, delta_hash: SHA256Hash, chunk: DeltaChunk, /
    ) -> Iterable[VerificationError]: ...


def _hexes(hashes: Iterable[SHA256Hash]) -> list[str]:
    return [h.to_hex() for h in hashes]


def _body(manifest: ReductionManifest) -> dict[str, Any]:
    """The manifest's part of the stored JSON."""
    return {
        "database": manifest.database,
        "profile": manifest.profile,
        "source_manifest": manifest.source_manifest.to_hex() if manifest.source_manifest else None,
        "source_version": manifest.source_version,
        "reference_chunks": _hexes(manifest.reference_chunks),
        "delta_chunks": _hexes(manifest.delta_chunks),
        "objects": _hexes(manifest.objects),
        "parameters": manifest.parameters,
        "statistics": manifest.statistics,
        "tool_version": manifest.tool_version,
    }


def _canonical(doc: dict[str, Any], what: str) -> bytes:
    try:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise StorageError(
            f"{what}: parameters and statistics must be JSON values with str keys ({exc})"
        ) from None


def _parse(raw: bytes, h: SHA256Hash) -> StoredReduction:
    where = f"reduction manifest {h.to_hex()}"
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}")
        if int(doc["format_version"]) > FORMAT_VERSION:
            raise StorageError(
                f"{where} has format {doc['format_version']}; this version reads {FORMAT_VERSION}: upgrade talaria-storage"
            )

        def hashes(name: str) -> tuple[SHA256Hash, ...]:
            return tuple(SHA256Hash.from_hex(x) for x in doc[name])

        def optional(name: str) -> SHA256Hash | None:
            return SHA256Hash.from_hex(doc[name]) if doc[name] is not None else None

        manifest = ReductionManifest(
            database=str(doc["database"]),
            profile=str(doc["profile"]),
            source_manifest=optional("source_manifest"),
            source_version=str(doc["source_version"]),
            reference_chunks=hashes("reference_chunks"),
            delta_chunks=hashes("delta_chunks"),
            objects=hashes("objects"),
            parameters=dict(doc["parameters"]),
            statistics=dict(doc["statistics"]),
            tool_version=str(doc["tool_version"]),
        )
        return StoredReduction(h, manifest, SHA256Hash.from_hex(doc["delta_index"]), optional("previous"))
    except (ValueError, KeyError, TypeError, AttributeError, InvalidHash) as exc:
        raise StorageError(f"{where} is not a reduction manifest ({exc}): restore it from a remote or re-run reduce") from None


class Reductions:
    """Delta chunks and reduction profiles over a store's ``chunks/``, ``manifests/`` and refs.

    Safe to share between threads. Parsed objects are cached by hash (they
    are immutable); refs are read afresh on every call.
    """

    def __init__(self, chunks: ChunkStore, manifests: ChunkStore, refs: RefStore) -> None:
        self.chunks = chunks
        self.manifests = manifests
        self.refs = refs
        self._cache = ObjectCache()
        self._recent: OrderedDict[SHA256Hash, tuple[SHA256Hash, bytes]] = OrderedDict()
        self._recent_bytes = 0
        self._lock = threading.Lock()

    # -- delta chunks ---------------------------------------------------------------------------

    def store_delta_chunk(self, chunk: DeltaChunk) -> SHA256Hash:
        """Store ``chunk`` in ``chunks/`` (a dedup hit when present) and remember its children for publishing."""
        h = self.chunks.store_chunk(delta_chunks.encode(chunk))
        children = b"".join(record.child_hash.digest for record in chunk.deltas)
        with self._lock:
            if h not in self._recent:
                self._recent[h] = (chunk.reference_hash, children)
                self._recent_bytes += len(children)
            while self._recent_bytes > RECENT_BUDGET and self._recent:
                _, (_, dropped) = self._recent.popitem(last=False)
                self._recent_bytes -= len(dropped)
        return h

    def get_delta_chunk(self, h: SHA256Hash) -> DeltaChunk:
        """Load and parse a delta chunk (``ChunkNotFound``; a one-line error for another kind of chunk)."""
        return delta_chunks.decode(self.chunks.get_chunk(h), f"chunk {h.to_hex()}")

    def _children_of(self, hashes: list[SHA256Hash]) -> dict[SHA256Hash, tuple[SHA256Hash, list[SHA256Hash]]]:
        """(reference, children) of each delta chunk: remembered, or read back (in parallel when remote)."""
        found: dict[SHA256Hash, tuple[SHA256Hash, list[SHA256Hash]]] = {}
        unknown: list[SHA256Hash] = []
        with self._lock:
            for h in hashes:
                if h in self._recent:
                    ref, packed = self._recent[h]
                    found[h] = (ref, [SHA256Hash(packed[i : i + 32]) for i in range(0, len(packed), 32)])
                else:
                    unknown.append(h)

        def read(h: SHA256Hash) -> tuple[SHA256Hash, tuple[SHA256Hash, list[SHA256Hash]]]:
            chunk = self.get_delta_chunk(h)
            return h, (chunk.reference_hash, [record.child_hash for record in chunk.deltas])

        if self.chunks.backend.is_local or len(unknown) < 2:
            found.update(read(h) for h in unknown)
        else:
            with ThreadPoolExecutor(self.chunks.threads) as pool:
                found.update(pool.map(read, unknown))
        return found

    # -- profiles -------------------------------------------------------------------------------

    def publish(self, manifest: ReductionManifest, expected: SHA256Hash | None = None, *, force: bool = False) -> SHA256Hash:
        """Store ``manifest`` and move its profile by compare-and-swap (see :meth:`ReductionStorage.store_reduction_manifest`)."""
        key = reduction_key(manifest.database, manifest.profile)
        what = f"reduction profile '{manifest.profile}' of '{manifest.database}'"
        body = _body(manifest)
        canonical = _canonical(body, what)
        current = self.refs.get(key)
        if current is not None:
            try:
                same = _canonical(_body(self.load(current, key).manifest), what) == canonical
            except StorageError:
                if not force:
                    raise
                same = False  # a damaged profile being replaced
            if same:
                return current  # the same reduction again: nothing to write
        if not force and current != expected:
            raise self._conflict(key, expected, current)
        self._require_objects(manifest, what)
        by_child: list[tuple[SHA256Hash, SHA256Hash]] = []
        by_reference: list[tuple[SHA256Hash, SHA256Hash]] = []
        for h, (reference, children) in self._children_of(list(dict.fromkeys(manifest.delta_chunks))).items():
            by_reference.append((reference, h))
            by_child.extend((child, h) for child in children)
        index = delta_index.write(self.chunks, by_child, by_reference)
        previous = current if force else expected
        doc = dict(body, format=FORMAT, format_version=FORMAT_VERSION, delta_index=index.to_hex(),
                   previous=previous.to_hex() if previous else None)
        h = self.manifests.store_chunk(_canonical(doc, what))
        if force:
            self.refs.set(key, h)
        else:
            self.refs.advance(key, expected, h, conflict=self._conflict)
        with self._lock:  # published: the index remembers them now
            for d in manifest.delta_chunks:
                entry = self._recent.pop(d, None)
                if entry is not None:
                    self._recent_bytes -= len(entry[1])
        return h

    @staticmethod
    def _conflict(key: str, expected: SHA256Hash | None, found: SHA256Hash | None) -> RefConflict:
        return RefConflict(
            key, expected.to_hex() if expected else None, found.to_hex() if found else None,
            hint="another reduction moved this profile: re-run reduce on top of it (or with --update), "
            "or pass --force to replace it",
        )

    def _require_objects(self, manifest: ReductionManifest, what: str) -> None:
        listed = {h: kind for kind, hashes in (
            ("reference chunk", manifest.reference_chunks),
            ("delta chunk", manifest.delta_chunks),
            ("reduction object", manifest.objects),
        ) for h in hashes}
        held = self.chunks.present(listed)  # one batched question
        missing = sorted(h for h in listed if h not in held)
        if missing:
            first = missing[0]
            raise StorageError(
                f"refusing to publish {what}: {len(missing)} listed object(s) are missing from "
                f"{self.chunks.location}, e.g. {listed[first]} {first.to_hex()}: store the objects first"
            )
        source = manifest.source_manifest
        if source is not None and not self.manifests.has_chunk(source):
            raise StorageError(
                f"refusing to publish {what}: its source version '{manifest.source_version}' (manifest "
                f"{source.to_hex()}) is not in {self.manifests.location}: import or pull that version first"
            )

    def load(self, h: SHA256Hash, named_by: str = "") -> StoredReduction:
        """The stored reduction ``h``; a one-line error (naming the ref ``named_by``) when missing or damaged."""

        def read() -> StoredReduction:
            try:
                raw = self.manifests.get_chunk(h)
            except ChunkNotFound:
                who = f"'{named_by}' names reduction manifest" if named_by else "reduction manifest"
                raise StorageError(
                    f"{who} {h.to_hex()}, which is missing from {self.manifests.location}: "
                    "pull it from a remote or re-run reduce"
                ) from None
            return _parse(raw, h)

        return self._cache.get("reduction", h, read)

    def current(self, database: str, profile: str) -> SHA256Hash | None:
        """The hash ``database``'s ``profile`` names, or None."""
        return self.refs.get(reduction_key(database, profile))

    def stored(self, database: str, profile: str) -> StoredReduction | None:
        """The stored reduction ``database``'s ``profile`` names, or None."""
        key = reduction_key(database, profile)
        h = self.refs.get(key)
        return None if h is None else self.load(h, key)

    def require(self, database: str, profile: str) -> StoredReduction:
        """Like :meth:`stored`, but an unknown profile is :class:`ProfileNotFound`, naming the known ones."""
        found = self.stored(database, profile)
        if found is None:
            known = ", ".join(self.profiles(database)) or "none yet"
            raise ProfileNotFound(
                f"database '{database}' has no reduction profile '{profile}' in {self.chunks.location} (profiles: {known})"
            )
        return found

    def profiles(self, database: str) -> list[str]:
        """Names of ``database``'s profiles, sorted (one listing of ``reductions/<database>/``)."""
        prefix = reduction_prefix(database)
        return sorted(info.key[len(prefix):] for info in self.refs.backend.list(prefix))

    def all_refs(self) -> dict[str, SHA256Hash]:
        """Every profile ref of the store with the hash it names."""
        return self.refs.list(REDUCTIONS)

    def delete(self, database: str, profile: str) -> bool:
        """Remove the profile's ref; True when it existed (its objects are left for gc)."""
        key = reduction_key(database, profile)
        if self.refs.get(key) is None:
            return False
        self.refs.delete(key)
        return True

    # -- look-ups -------------------------------------------------------------------------------

    def index(self, stored: StoredReduction) -> DeltaIndex:
        """The profile's delta index (its top object; cached)."""

        def read() -> DeltaIndex:
            where = f"delta index {stored.delta_index.to_hex()} of '{stored.key}'"
            try:
                raw = self.chunks.get_chunk(stored.delta_index)
            except ChunkNotFound:
                raise StorageError(
                    f"{where} is missing from {self.chunks.location}: pull the profile from a remote or re-run reduce"
                ) from None
            return delta_index.parse_top(raw, where)

        return self._cache.get("index", stored.delta_index, read)

    def _partition(self, h: SHA256Hash) -> Partition:
        return self._cache.get(
            "partition", h, lambda: delta_index.parse_partition(self.chunks.get_chunk(h), f"chunk {h.to_hex()}")
        )

    def delta_for_child(self, stored: StoredReduction, child: SHA256Hash) -> SHA256Hash | None:
        """The delta chunk of ``child`` in this profile (the smallest hash if several), or None."""
        found = delta_index.lookup(self.index(stored).children, child, self._partition)
        return min(found) if found else None

    def deltas_for_reference(self, stored: StoredReduction, reference: SHA256Hash) -> list[SHA256Hash]:
        """The delta chunks encoded against ``reference`` in this profile, sorted."""
        return sorted(delta_index.lookup(self.index(stored).references, reference, self._partition))

    def find_delta_for_child(self, child: SHA256Hash) -> SHA256Hash | None:
        """:meth:`delta_for_child` over every profile, in ref order; the first found."""
        for key, h in sorted(self.all_refs().items()):
            found = self.delta_for_child(self.load(h, key), child)
            if found is not None:
                return found
        return None

    def find_deltas_for_reference(self, reference: SHA256Hash) -> list[SHA256Hash]:
        """:meth:`deltas_for_reference` over every profile (each delta chunk once), sorted."""
        found: set[SHA256Hash] = set()
        for key, h in self.all_refs().items():
            found.update(self.deltas_for_reference(self.load(h, key), reference))
        return sorted(found)

    # -- reachability (gc, sync, verify) ---------------------------------------------------------

    def objects(self, stored: StoredReduction) -> dict[SHA256Hash, str]:
        """Every ``chunks/`` object the profile needs, with what it is: the listed ones and the
        index's partitions. Reads the index's top object (a one-line error when it is gone)."""
        found = stored.listed_objects()
        for h in sorted(self.index(stored).object_hashes()):
            found.setdefault(h, "delta index partition")
        return found
