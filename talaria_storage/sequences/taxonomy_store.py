"""The NCBI taxonomy as a versioned object of the store, and chunks looked up by taxon.

Stored taxdumps (:class:`TaxonomyCatalog`)
------------------------------------------
A taxdump folder is parsed with :meth:`Taxonomy.from_taxdump` and serialised
with :meth:`Taxonomy.to_bytes` (deterministic), then stored like every other
object, in the same order :class:`VersionCatalog` uses (DESIGN.md §3):

1. the serialised taxonomy goes to ``chunks/<sha256>`` (content-addressed:
   importing the same taxdump twice stores one object);
2. ``taxonomy/dumps/<version>`` is created, create-only, so a version name is
   never re-pointed at other content;
3. ``taxonomy/dumps/HEAD`` moves last, by compare-and-swap from the HEAD read
   when the import began.

The refs live under their own top-level ``taxonomy/`` namespace, so no
database name can collide with them, and :meth:`VersionCatalog.reachable`
marks them so GC keeps every stored taxdump. A database manifest names the
taxdump it was labelled with in :attr:`Manifest.taxonomy` (the same object).

Merged ids resolve to their current id; deleted and unknown ids raise
:class:`TaxonNotCurrent`, which names the taxdump version that says so.

Chunks by taxon (:class:`TaxonomyIndexedStore`)
-----------------------------------------------
The :class:`TaxonomyStorage` trait over a store. Its taxon index is not a
separate database: it is read from manifests, which already record the taxa
of every chunk (:attr:`ChunkEntry.taxa`):

* every manifest named by a ``refs/`` ref (every version of every database);
* one *labels manifest*, named by ``taxonomy/labels``, which holds the chunks
  stored through :meth:`TaxonomyIndexedStore.store_taxonomy_chunk`. Each call
  stores the chunk, then a new labels manifest listing it, then moves the ref
  by compare-and-swap, so the labels survive restarts and GC keeps the chunks.
  Rewriting the list costs O(labelled chunks) per call: the trait is for
  modest numbers of chunks; bulk imports go through :class:`SequenceDatabase`,
  whose manifests carry the taxa already.

Descendant queries use the stored taxdump (HEAD, or the version given), and
labels that are merged ids count as their current id.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from talaria_storage.core.errors import (
    ChunkNotFound,
    InputFormatError,
    InvalidKey,
    RefConflict,
    StorageError,
    UnknownTaxon,
    VersionNotFound,
)
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import (
    CHUNKS,
    REDUCTIONS,
    TAXONOMY_DUMPS,
    TAXONOMY_LABELS,
    taxonomy_key,
)
from talaria_storage.core.traits import TaxonomyStorage
from talaria_storage.core.types import TaxonomyAwareChunk, TaxonomyStats
from talaria_storage.sequences.manifest import ChunkEntry, Manifest
from talaria_storage.sequences.taxonomy import Taxonomy
from talaria_storage.sequences.versions import HEAD, VersionCatalog, default_version
from talaria_storage.storage.chunk_store import ChunkStore
from talaria_storage.storage.store import Store

LABELS_DATABASE = "taxonomy-labels"  # the database field of the labels manifest (never a ref under refs/)
_CAS_ATTEMPTS = 16


class TaxonNotCurrent(UnknownTaxon):
    """A taxid that a stored taxdump version lists as deleted, or does not know at all."""

    def __init__(self, taxid: int, deleted: bool, version: str, resolved: int | None = None) -> None:
        super().__init__(taxid, deleted)
        self.version = version
        self.resolved = resolved if resolved is not None else taxid

    def __str__(self) -> str:
        via = f" (merged into {self.resolved})" if self.resolved != self.taxid else ""
        if self.deleted:
            return (
                f"taxon {self.taxid}{via} was deleted in taxdump version {self.version} (delnodes.dmp): "
                "relabel the records that carry it, or query a taxdump version that still has it"
            )
        return (
            f"taxon {self.taxid}{via} is not in taxdump version {self.version}: check the id, or import a "
            "newer taxdump with 'talaria-storage taxonomy import DIR'"
        )


@dataclass(frozen=True, slots=True)
class TaxonomyVersion:
    """One stored taxdump version: its name and the ``chunks/`` object holding it."""

    version: str
    object: SHA256Hash
    is_head: bool


class TaxonomyCatalog:
    """Stored taxdump versions of one store: import, list, load (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._loaded: dict[SHA256Hash, Taxonomy] = {}  # objects are immutable, so caching is safe

    # -- writing --------------------------------------------------------------------------------

    def import_taxdump(
        self, directory: str | os.PathLike[str], version: str | None = None, *, force: bool = False
    ) -> TaxonomyVersion:
        """Parse a taxdump folder, store it, name it ``version`` and make it HEAD.

        ``version`` defaults to the UTC time (``YYYYmmddTHHMMSSZ``). Re-importing
        the same dump under the same name is a no-op; another dump under a taken
        name is a :class:`RefConflict` unless ``force``.
        """
        version = version or default_version()
        if version == HEAD:
            raise InvalidKey("invalid taxonomy version 'HEAD': that name is the current-version pointer")
        version_key = taxonomy_key(version)
        head_key = taxonomy_key(HEAD)
        if not os.path.isdir(directory):
            raise InputFormatError(
                os.fspath(directory), None, "not a folder: give the taxdump folder that holds nodes.dmp (and names.dmp)"
            )
        expected_head = self.store.refs.get(head_key)
        taxonomy = Taxonomy.from_taxdump(directory)
        # The serialised form is zstd-compressed already: store it as is.
        h = self.store.store_chunk(taxonomy.to_bytes(), compress=False)
        self._loaded[h] = taxonomy
        self.store.refs.publish(
            version_key, head_key, h, expected_head, force=force,
            taken="that taxonomy version name is taken: choose another version, or pass --force",
        )
        return TaxonomyVersion(version, h, True)

    # -- reading --------------------------------------------------------------------------------

    def versions(self) -> list[TaxonomyVersion]:
        """Every stored taxdump version, sorted by name (default names sort by import time)."""
        refs = self.store.refs.list(TAXONOMY_DUMPS)
        head = refs.pop(taxonomy_key(HEAD), None)
        return sorted(
            (TaxonomyVersion(key[len(TAXONOMY_DUMPS):], h, h == head) for key, h in refs.items()),
            key=lambda v: v.version,
        )

    def head(self) -> TaxonomyVersion | None:
        """The current taxdump version, or None when no taxdump was imported.

        When several names share HEAD's object, the last by name is reported.
        """
        h = self.store.refs.get(taxonomy_key(HEAD))
        if h is None:
            return None
        names = [v.version for v in self.versions() if v.object == h]
        return TaxonomyVersion(names[-1] if names else HEAD, h, True)

    def resolve_version(self, version: str | None = None) -> TaxonomyVersion:
        """The stored version ``version`` names (HEAD when None); :class:`VersionNotFound` otherwise."""
        if version is None or version == HEAD:
            found = self.head()
            if found is None:
                raise VersionNotFound(
                    f"no taxonomy is stored in {self.store.location}: import one with "
                    "'talaria-storage taxonomy import DIR'"
                )
            return found
        h = self.store.refs.get(taxonomy_key(version))
        if h is None:
            known = ", ".join(v.version for v in self.versions()) or "none yet"
            raise VersionNotFound(f"taxonomy version '{version}' does not exist (versions: {known})")
        current = self.store.refs.get(taxonomy_key(HEAD))
        return TaxonomyVersion(version, h, h == current)

    def load(self, version: str | None = None) -> Taxonomy:
        """The taxonomy of ``version`` (HEAD when None), cached per object."""
        found = self.resolve_version(version)
        return self.load_object(found.object, f"taxonomy version '{found.version}'")

    def load_object(self, h: SHA256Hash, what: str = "taxonomy object") -> Taxonomy:
        """A stored taxonomy by object hash (e.g. :attr:`Manifest.taxonomy`), cached."""
        cached = self._loaded.get(h)
        if cached is not None:
            return cached
        try:
            raw = self.store.get_chunk(h)
        except ChunkNotFound:
            raise StorageError(
                f"{what} names object {h.to_hex()}, which is missing from {self.store.location}: "
                "pull it from a remote or re-import the taxdump"
            ) from None
        taxonomy = self._loaded[h] = Taxonomy.from_bytes(raw)
        return taxonomy

    def resolve(self, taxid: int, version: str | None = None) -> int:
        """The current id of ``taxid`` (merged ids followed); deleted or unknown: :class:`TaxonNotCurrent`."""
        found = self.resolve_version(version)
        taxonomy = self.load_object(found.object, f"taxonomy version '{found.version}'")
        try:
            return taxonomy.resolve(taxid)
        except UnknownTaxon as exc:
            raise TaxonNotCurrent(taxid, exc.deleted, found.version, exc.taxid) from None

    def descendants(self, taxid: int, version: str | None = None, *, include_self: bool = True) -> list[int]:
        """Every current taxid under ``taxid`` (resolved first; see :meth:`resolve`)."""
        current = self.resolve(taxid, version)
        return self.load(version).descendants(current, include_self=include_self)


class TaxonomyIndexedStore(ChunkStore, TaxonomyStorage):
    """The :class:`TaxonomyStorage` trait over a store's chunks, manifests and taxdump.

    Chunk operations are those of the store's ``chunks/`` namespace; taxa come
    from manifests (see the module docstring). ``taxonomy_version`` pins the
    taxdump used for descendant queries (default: HEAD at query time).
    """

    def __init__(self, store: Store, *, taxonomy_version: str | None = None) -> None:
        super().__init__(store.backend, store.codec, prefix=CHUNKS, threads=store.threads)
        self.store = store
        self.taxonomy_version = taxonomy_version
        self.taxonomies = TaxonomyCatalog(store)
        self._catalog = VersionCatalog(store)
        self._manifests: dict[SHA256Hash, Manifest] = {}
        self._labels_for: frozenset[SHA256Hash] | None = None
        self._labels: dict[SHA256Hash, tuple[frozenset[int], int]] = {}

    # -- TaxonomyStorage ------------------------------------------------------------------------

    def store_taxonomy_chunk(self, data: bytes, taxon_ids: Iterable[int], record_count: int) -> SHA256Hash:
        # docstring inherited
        if record_count < 0:
            raise ValueError(f"record_count must be >= 0, got {record_count}")
        taxa = frozenset(int(t) for t in taxon_ids if t)  # 0 means "no taxon", as in manifests
        if any(t < 0 for t in taxa):
            raise ValueError(f"taxon ids are positive NCBI ids, got {sorted(taxa)}")
        h = self.store_chunk(data)  # the object first, the ref that keeps it last
        for _ in range(_CAS_ATTEMPTS):
            current = self.store.refs.get(TAXONOMY_LABELS)
            entries = {e.hash: e for e in self._manifest(current).chunks} if current else {}
            old = entries.get(h)
            merged = ChunkEntry(h, tuple(sorted(taxa.union(old.taxa if old else ()))), record_count, 0, len(data))
            if old == merged:
                return h
            entries[h] = merged
            labels = Manifest(
                database=LABELS_DATABASE, version="labels", created=time.time(), sources=(),
                chunks=tuple(entries[k] for k in sorted(entries)),
            )
            new = self.store.manifests.store_chunk(labels.to_bytes())
            if self.store.refs.compare_and_swap(TAXONOMY_LABELS, current, new):
                return h
        raise RefConflict(
            TAXONOMY_LABELS, None, None,
            hint=f"{_CAS_ATTEMPTS} concurrent writers kept moving it; the chunk is stored, re-run to label it",
        )

    def get_taxonomy_chunk(self, hash: SHA256Hash) -> TaxonomyAwareChunk:
        # docstring inherited; a chunk no manifest labels has no taxa and a record count of 0
        data = self.get_chunk(hash)
        taxa, records = self._chunk_labels().get(hash, (frozenset(), 0))
        return TaxonomyAwareChunk(hash, tuple(sorted(taxa)), records, len(data), data)

    def find_chunks_by_taxon(self, taxon_id: int, descendants: bool = False) -> list[SHA256Hash]:
        # docstring inherited; sorted by hash
        taxonomy = self._taxonomy(required=descendants)
        if descendants:
            wanted = set(self.taxonomies.descendants(taxon_id, self.taxonomy_version))
        else:
            wanted = {_current(taxonomy, taxon_id)}
        return sorted(
            h for h, (taxa, _) in self._chunk_labels().items()
            if any(_current(taxonomy, t) in wanted for t in taxa)
        )

    def get_taxonomy_stats(self) -> TaxonomyStats:
        # docstring inherited; counts labels as recorded (merged ids are not folded)
        labels = self._chunk_labels()
        per_taxon: Counter[int] = Counter(t for taxa, _ in labels.values() for t in taxa)
        return TaxonomyStats(
            total_taxa=len(per_taxon),
            total_chunks=len(labels),
            chunks_per_taxon=dict(sorted(per_taxon.items())),
            unclassified_chunks=sum(1 for taxa, _ in labels.values() if not taxa),
        )

    # -- internals ------------------------------------------------------------------------------

    def _manifest(self, h: SHA256Hash) -> Manifest:
        if h not in self._manifests:
            self._manifests[h] = self._catalog.load(h)
        return self._manifests[h]

    def _chunk_labels(self) -> dict[SHA256Hash, tuple[frozenset[int], int]]:
        """chunk hash -> (taxa, records) over every manifest a ref names; rebuilt when a ref moved."""
        named = {h for key, h in self._catalog.manifest_refs().items() if not key.startswith(REDUCTIONS)}
        key = frozenset(named)
        if key != self._labels_for:
            labels: dict[SHA256Hash, tuple[frozenset[int], int]] = {}
            for h in sorted(named):
                for entry in self._manifest(h).chunks:
                    taxa, records = labels.get(entry.hash, (frozenset(), 0))
                    labels[entry.hash] = (taxa.union(entry.taxa), max(records, entry.records))
            self._labels, self._labels_for = labels, key
        return self._labels

    def _taxonomy(self, *, required: bool) -> Taxonomy | None:
        """The pinned or HEAD taxdump; None when none is stored and it is optional."""
        if not required and self.taxonomy_version is None and self.taxonomies.head() is None:
            return None
        return self.taxonomies.load(self.taxonomy_version)


def _current(taxonomy: Taxonomy | None, taxid: int) -> int:
    """``taxid`` with a merged id replaced by its current id (anything else unchanged)."""
    if taxonomy is None or taxonomy.status(taxid) != "merged":
        return taxid
    try:
        return taxonomy.resolve(taxid)
    except UnknownTaxon:
        return taxid
