"""What a store holds, and what of it is live: the facts every strategy plans from.

Terms (as in restic's ``prune``):

* **used** -- objects some ref reaches (a database version, a reduction
  profile, a taxonomy ref) or an unfinished operation's state protects:
  what gc keeps;
* **unused** -- every other object under ``chunks/`` and ``manifests/``:
  what gc deletes once it is older than the grace period;
* **version bytes** -- the distinct objects one version needs (its
  manifest's :meth:`~talaria_storage.sequences.manifest.Manifest.objects`);
  **new bytes** of a version -- those of them no older version of the same
  database needs (what importing it added).

Sizes are the objects' stored sizes (frame included), as the backend lists
them, so the figures hold whoever wrote the store.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from talaria_storage.core.errors import InvalidHash
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import CHUNKS, MANIFESTS, ref_key
from talaria_storage.sequences.manifest import Manifest
from talaria_storage.sequences.versions import HEAD, VersionCatalog
from talaria_storage.storage.backend import ObjectInfo
from talaria_storage.storage.store import Store


@dataclass(frozen=True, slots=True)
class VersionView:
    """One live database version: its names, its manifest and what it needs."""

    database: str
    version: str
    manifest_hash: SHA256Hash
    manifest: Manifest
    is_head: bool

    @property
    def refs(self) -> tuple[str, ...]:
        """The refs that name this version's manifest (its version ref and, when current, HEAD)."""
        named = (ref_key(self.database, self.version),)
        return named + ((ref_key(self.database, HEAD),) if self.is_head else ())


@dataclass(frozen=True, slots=True)
class PackView:
    """One live sequence pack: who stored it (its owner's codec) and which versions need it."""

    hash: SHA256Hash
    stored_bytes: int
    owner: VersionView | None  # the version whose record chunk lists it as its own pack
    users: tuple[VersionView, ...]  # every version that needs it, oldest first


@dataclass
class StoreAnalysis:
    """A snapshot of a store's objects, versions and packs (see the module docstring)."""

    location: str
    objects: dict[str, ObjectInfo]  # backend key -> listing, chunks/ and manifests/
    live: set[str]  # keys of used objects
    versions: list[VersionView]  # every database's versions, by database then oldest first
    packs: dict[SHA256Hash, PackView]
    kinds: dict[str, str] = field(default_factory=dict)  # key -> what it is ("sequence pack", ...)
    # (database, profile, statistics) of every reduction profile (see reduction.building)
    reductions: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    # -- totals ---------------------------------------------------------------------------------

    @property
    def used_bytes(self) -> int:
        return sum(self.objects[k].size for k in self.live if k in self.objects)

    @property
    def used_objects(self) -> int:
        return sum(1 for k in self.live if k in self.objects)

    @property
    def unused_keys(self) -> list[str]:
        return sorted(k for k in self.objects if k not in self.live)

    @property
    def unused_bytes(self) -> int:
        return sum(self.objects[k].size for k in self.unused_keys)

    @property
    def total_bytes(self) -> int:
        return sum(info.size for info in self.objects.values())

    def size_of(self, key: str) -> int:
        info = self.objects.get(key)
        return info.size if info is not None else 0

    def chunk_key(self, h: SHA256Hash) -> str:
        return CHUNKS + h.to_hex()

    # -- breakdowns (for the report) ------------------------------------------------------------

    def bytes_by_kind(self) -> dict[str, int]:
        """Used bytes per kind of object (record chunks, sequence packs, manifests, ...)."""
        out: Counter[str] = Counter()
        for key in self.live:
            if key in self.objects:
                out[self.kinds.get(key, "other")] += self.objects[key].size
        return dict(sorted(out.items()))

    def version_bytes(self) -> list[dict[str, Any]]:
        """Per version: the bytes it needs, and the bytes it added over older versions of its database."""
        rows = []
        seen: dict[str, set[SHA256Hash]] = {}
        for view in self.versions:
            before = seen.setdefault(view.database, set())
            objects = view.manifest.objects()
            need = sum(self.size_of(self.chunk_key(o.hash)) for o in objects)
            added = sum(self.size_of(self.chunk_key(o.hash)) for o in objects if o.hash not in before)
            before.update(o.hash for o in objects)
            rows.append({"database": view.database, "version": view.version, "bytes": need, "new_bytes": added,
                         "records": view.manifest.records, "codec": view.manifest.extra.get("codec")})
        return rows

    def database_bytes(self) -> dict[str, int]:
        """Per database: the distinct objects all its versions need."""
        found: dict[str, set[SHA256Hash]] = {}
        for view in self.versions:
            found.setdefault(view.database, set()).update(view.manifest.object_hashes())
        return {db: sum(self.size_of(self.chunk_key(h)) for h in hashes) for db, hashes in sorted(found.items())}

    def savings(self) -> dict[str, dict[str, int]]:
        """Per database, what each stage brings its versions down to: ``fasta`` (every version as
        the FASTA a byte-exact export writes), ``alone`` (each version's objects, compressed,
        counted once per version: what separate stores would hold) and ``stored`` (the distinct
        objects they share). Compression saves ``fasta - alone``; deduplication ``alone - stored``."""
        alone: dict[str, int] = {}
        fasta: dict[str, int] = {}
        for row, view in zip(self.version_bytes(), self.versions):
            alone[view.database] = alone.get(view.database, 0) + row["bytes"]
            logical = sum(int(f.get("bytes", 0)) for f in view.manifest.extra.get("files", []))
            fasta[view.database] = fasta.get(view.database, 0) + logical
        stored = self.database_bytes()
        return {db: {"fasta": fasta[db], "alone": alone[db], "stored": stored.get(db, 0)} for db in sorted(alone)}

    def delta_savings(self) -> list[dict[str, Any]]:
        """Per reduction profile: the residues of its members and the bytes of their deltas."""
        return [
            {"database": db, "profile": profile, "member_residues": int(stats.get("member_residues", 0)),
             "delta_bytes": int(stats.get("delta_bytes", 0))}
            for db, profile, stats in self.reductions
        ]

    def pack_sizes(self) -> list[int]:
        """Stored bytes of every live sequence pack (for the pack-size histogram)."""
        return sorted(p.stored_bytes for p in self.packs.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "objects": len(self.objects),
            "total_bytes": self.total_bytes,
            "used_objects": self.used_objects,
            "used_bytes": self.used_bytes,
            "unused_objects": len(self.unused_keys),
            "unused_bytes": self.unused_bytes,
            "bytes_by_kind": self.bytes_by_kind(),
            "databases": self.database_bytes(),
            "versions": self.version_bytes(),
            "packs": len(self.packs),
            "pack_bytes": sum(p.stored_bytes for p in self.packs.values()),
        }


def analyze_store(store: Store) -> StoreAnalysis:
    """List ``chunks/`` and ``manifests/``, mark what the refs and live states reach, map versions and packs."""
    objects = {info.key: info for prefix in (CHUNKS, MANIFESTS) for info in store.backend.list(prefix)}
    catalog = VersionCatalog(store)
    chunks, manifests = catalog.reachable()
    roots = store.states.live_objects()
    live = {CHUNKS + h.to_hex() for h in chunks | roots} | {MANIFESTS + h.to_hex() for h in manifests | roots}
    kinds: dict[str, str] = {MANIFESTS + h.to_hex(): "manifest" for h in manifests}
    versions: list[VersionView] = []
    loaded: dict[SHA256Hash, Manifest] = {}
    for database in catalog.databases():
        for info in catalog.versions(database):
            manifest = loaded.get(info.manifest) or catalog.load(info.manifest)
            loaded[info.manifest] = manifest
            versions.append(VersionView(database, info.version, info.manifest, manifest, info.is_head))
    owners: dict[SHA256Hash, VersionView] = {}
    users: dict[SHA256Hash, list[VersionView]] = {}
    for view in versions:
        for entry in view.manifest.chunks:
            if entry.pack is not None:
                owners.setdefault(entry.pack, view)
        for obj in view.manifest.objects():
            kinds.setdefault(CHUNKS + obj.hash.to_hex(), obj.kind)
            if obj.kind == "sequence pack":
                users.setdefault(obj.hash, []).append(view)
    packs = {
        h: PackView(h, objects[CHUNKS + h.to_hex()].size, owners.get(h), tuple(found))
        for h, found in users.items()
        if CHUNKS + h.to_hex() in objects
    }
    reductions = []
    for database in catalog.databases():
        for profile in store.reductions.profiles(database):
            found = store.reductions.stored(database, profile)
            if found is not None:
                reductions.append((database, profile, dict(found.manifest.statistics)))
    return StoreAnalysis(store.location, objects, live, versions, packs, kinds, reductions)


def key_hash(key: str) -> SHA256Hash | None:
    """The hash a ``chunks/`` or ``manifests/`` key names, or None for any other key."""
    for prefix in (CHUNKS, MANIFESTS):
        if key.startswith(prefix):
            try:
                return SHA256Hash.from_hex(key[len(prefix):])
            except InvalidHash:
                return None
    return None
