"""VersionCatalog: the databases of a store, their versions, and the refs that name them.

Ordering rules (DESIGN.md §3), which make crashes harmless:

1. every object a manifest needs (:meth:`Manifest.object_hashes`) must
   already be in the store;
2. the manifest is stored (content-addressed) next;
3. ``refs/<db>/<version>`` is created (create-only: a version name is never
   re-pointed at different content);
4. ``refs/<db>/HEAD`` moves last, by compare-and-swap from the HEAD the
   import started from. If another writer published meanwhile, the swap is
   retried over that writer's HEAD (:meth:`RefStore.publish`): both versions
   are published, and HEAD names the one whose publish finished last. A
   manifest's ``parent`` still names the HEAD its import started from.

A crash between any two steps leaves only unreferenced objects, which GC
collects after its grace period; never a ref to a missing object.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from talaria_storage.core.errors import ChunkNotFound, StorageError, VersionNotFound
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import (
    REDUCTIONS,
    REFS,
    TAXONOMY_DUMPS,
    TAXONOMY_LABELS,
    ref_key,
    validate_name,
)
from talaria_storage.sequences.manifest import Manifest
from talaria_storage.storage.store import Store

HEAD = "HEAD"


def default_version() -> str:
    """A version name when none is given: the UTC time, ``YYYYmmddTHHMMSSZ`` (sorts by time)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


@dataclass(frozen=True, slots=True)
class VersionInfo:
    database: str
    version: str
    manifest: SHA256Hash
    is_head: bool


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@VERSION`` -> (name, version or None)."""
    name, _, version = spec.partition("@")
    validate_name(name, "database name")
    if version:
        validate_name(version, "version")
    return name, version or None


class VersionCatalog:
    """Reads and publishes database versions in one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reading --------------------------------------------------------------------------------

    def databases(self) -> list[str]:
        """Names of every database that has a HEAD."""
        return sorted({key.split("/")[1] for key in self.store.refs.list(REFS) if key.endswith("/" + HEAD)})

    def versions(self, database: str) -> list[VersionInfo]:
        """Every named version of ``database`` (oldest first by manifest creation time)."""
        refs = self.store.refs.list(f"{REFS}{validate_name(database, 'database name')}/")
        head = refs.get(ref_key(database, HEAD))
        infos = [
            VersionInfo(database, key.rsplit("/", 1)[1], h, h == head)
            for key, h in refs.items()
            if not key.endswith("/" + HEAD)
        ]
        created = {info.manifest: self.load(info.manifest).created for info in infos}
        return sorted(infos, key=lambda i: (created[i.manifest], i.version))

    def head(self, database: str) -> SHA256Hash | None:
        return self.store.refs.get(ref_key(database, HEAD))

    def resolve(self, database: str, version: str | None = None) -> tuple[SHA256Hash, Manifest]:
        """The manifest of ``database@version`` (HEAD when version is None)."""
        key = ref_key(database, version or HEAD)
        h = self.store.refs.get(key)
        if h is None:
            if self.head(database) is None:
                known = ", ".join(self.databases()) or "none yet"
                raise VersionNotFound(f"database '{database}' does not exist in {self.store.location} (databases: {known})")
            names = ", ".join(v.version for v in self.versions(database))
            raise VersionNotFound(f"database '{database}' has no version '{version}' (versions: {names})")
        return h, self.load(h)

    def load(self, manifest_hash: SHA256Hash) -> Manifest:
        try:
            raw = self.store.manifests.get_chunk(manifest_hash)
        except ChunkNotFound:
            raise StorageError(
                f"manifest {manifest_hash.to_hex()} is referenced but missing from {self.store.location}: "
                "pull it from a remote or re-import"
            ) from None
        return Manifest.from_bytes(raw, f"manifest {manifest_hash.to_hex()[:12]}")

    # -- writing --------------------------------------------------------------------------------

    def publish(self, manifest: Manifest, expected_head: SHA256Hash | None, *, force: bool = False) -> SHA256Hash:
        """Store ``manifest`` and point its version ref and HEAD at it (see the module docstring)."""
        needed = manifest.object_hashes()
        # One batched question, not one request per object; the old ones (dedup hits, the
        # parent's look-up partitions) are freshened, so a gc beside this publish spares them.
        held = self.store.freshen(needed)
        missing = [h for h in needed if h not in held]
        if missing:
            raise StorageError(
                f"refusing to publish {manifest.database}@{manifest.version}: {len(missing)} object(s) are missing, "
                f"e.g. {missing[0].to_hex()}"
            )
        h = self.store.manifests.store_chunk(manifest.to_bytes())
        version_key = ref_key(manifest.database, manifest.version)
        if not force:
            same = self._same_import(version_key, manifest, h)
            if same is not None:
                return same
        self.store.refs.publish(
            version_key, ref_key(manifest.database, HEAD), h, expected_head,
            force=force, taken="that version name is taken: choose another --version, or pass --force to re-point it",
        )
        return h

    def _same_import(self, version_key: str, manifest: Manifest, new: SHA256Hash) -> SHA256Hash | None:
        """What a re-import of the files ``version_key`` was imported from does to that name.

        Such a re-run completes instead of being told the name is taken: when
        the version is intact (its objects all present: the re-run has just
        written any that were missing) it stays as it is, and its manifest
        hash is returned; when it is damaged (a gc that removed what a writer
        re-used inside its last round trip says so, and ``verify`` finds it),
        the ref moves to ``new`` by compare-and-swap from the damaged
        manifest, so of two repairs racing one wins, and None lets the publish
        go on. A name imported from other files stays refused (None, and the
        publish raises).
        """
        found = self.store.refs.get(version_key)
        if found is None or found == new:
            return None
        if self.store.manifests.has_chunk(found):
            existing = self.load(found)
            if existing.sources != manifest.sources:
                return None
            needed = existing.object_hashes()
            if self.store.freshen(needed) >= set(needed):
                return found
        self.store.refs.advance(version_key, found, new)
        return None

    def delete_version(self, database: str, version: str) -> None:
        """Remove a version's ref (its objects become collectable). HEAD cannot be deleted this way."""
        key = ref_key(database, version)
        if self.store.refs.get(key) is None:
            raise VersionNotFound(f"database '{database}' has no version '{version}'")
        self.store.refs.delete(key)

    # -- reachability ---------------------------------------------------------------------------

    def manifest_refs(self) -> dict[str, SHA256Hash]:
        """Every ref that names a manifest: database versions, reduction profiles, taxonomy labels."""
        named = dict(self.store.refs.list(REFS))
        named.update(self.store.refs.list(REDUCTIONS))
        labels = self.store.refs.get(TAXONOMY_LABELS)
        if labels is not None:
            named[TAXONOMY_LABELS] = labels
        return named

    def reachable(
        self, earlier: tuple[set[SHA256Hash], set[SHA256Hash]] | None = None
    ) -> tuple[set[SHA256Hash], set[SHA256Hash]]:
        """(chunks, manifests) reachable from every ref: the GC mark phase.

        ``earlier`` is a previous mark's result: its manifests are not read
        again, so marking once more after a listing costs only the refs that
        moved since.

        A reduction profile (``reductions/<db>/<profile>``) marks its stored
        reduction, every object it lists, its delta index
        (:meth:`Reductions.objects`) and the version it reduced, with all that
        version reaches: a profile stays expandable after that version's
        ref is deleted. Taxonomy refs mark their objects too:
        ``taxonomy/dumps/...`` name stored taxdumps (chunks),
        ``taxonomy/labels`` a manifest of taxon-labelled chunks (see
        :mod:`.taxonomy_store`).
        """
        chunks, manifests = (set(earlier[0]), set(earlier[1])) if earlier is not None else (set(), set())
        sources: dict[SHA256Hash, str] = {}
        for key, h in self.manifest_refs().items():
            if h in manifests:
                continue
            manifests.add(h)
            if key.startswith(REDUCTIONS):
                stored = self.store.reductions.load(h, key)
                chunks.update(self.store.reductions.objects(stored))
                if stored.manifest.source_manifest is not None:
                    sources.setdefault(stored.manifest.source_manifest, key)
            else:
                # Record chunks, their sequence packs, per-file record order objects, taxonomy.
                chunks.update(self.load(h).object_hashes())
        for h, key in sorted(sources.items()):
            if h in manifests:
                continue
            manifests.add(h)
            if not self.store.manifests.has_chunk(h):
                raise StorageError(
                    f"reduction profile '{key}' names source manifest {h.to_hex()}, which is missing from "
                    f"{self.store.location}: pull it from a remote, or delete the profile"
                )
            chunks.update(self.load(h).object_hashes())
        chunks.update(self.store.refs.list(TAXONOMY_DUMPS).values())  # stored taxdumps
        return chunks, manifests
