"""Which sequences a store already holds, and where: dedup across imports and databases.

Issue #3 asks that an identical sequence be stored once "however many
records, files or databases carry it". Inside one import the
:class:`~talaria_storage.sequences.importing.SequencePacker` window does
that; across imports -- the next release of a database, another database
in the same store -- this module does: before a residue string is put in a
new sequence pack, the import asks :class:`StoredSequences` whether a live
version already holds the same bytes, and if so the record chunk refers to
that pack's slot instead (a pack table entry, see
:mod:`talaria_storage.sequences.record_chunk`) and the version's manifest
lists the pack among its objects (``Manifest.reused_packs``), so GC, verify
and sync treat it like the version's own.

The map lives in the store's lookup index (:func:`~talaria_storage.index.lookup_index.lookup_index`),
beside the per-version look-up keys::

    s/k/<16-byte dedup key>   -> 32-byte pack SHA-256 || u32 slot
    s/m/<manifest SHA-256>    -> (32-byte pack SHA-256 || u64 size)*  every pack the version needs

The ``s/m/`` marker says that a version's own packs are in the map; it is
written after the version is published. Like everything in the index, the
map is a cache, never trusted on its own:

* a location is used only when its pack is needed by a version some ref
  names *when the import begins* (the marker values give that set without
  reading manifests), so an entry left by a deleted version, a failed
  import or an index copied from elsewhere costs a re-stored sequence,
  never a dangling reference;
* a live version without a marker (an index lost or built elsewhere, a
  version pulled by sync) has its own packs read and their slots hashed
  once, before the import uses the map (a pack it only reuses is mapped
  through the version that stored it; once that version is deleted, such
  a pack's sequences are stored again by the next import that meets them);
* the manifest that refers to a reused pack is published only if the pack
  is still in the store (``VersionCatalog.publish`` checks every object),
  and the import records the pack in its processing state as soon as it
  decides to use it, which makes the pack a GC root until the version is
  published. A version deleted and collected in the moment between the
  import's start and that record makes the import fail cleanly; a re-run
  stores the sequences again.

Determinism: the objects of an import depend on its input and on which
sequences the store's live versions held when it began -- the same input
into two empty stores, or into two stores with the same history, gives the
same chunk hashes; into a store that already holds some of its sequences,
smaller record chunks that refer to them, and packs of only the rest.
When one sequence is in several live packs (stored before this map
existed, or by two imports that ran at the same time), the map names the
one written last.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from talaria_storage.core.errors import ChunkNotFound, CompressionError, HashMismatch, StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import REFS
from talaria_storage.sequences.canonical import is_canonical, sequence_keys
from talaria_storage.sequences.sequence_pack import PackReader
from talaria_storage.sequences.versions import VersionCatalog

if TYPE_CHECKING:
    from talaria_storage.index.local_index import ChunkIndex
    from talaria_storage.sequences.manifest import Manifest
    from talaria_storage.storage.store import Store

KEY_PREFIX = b"s/k/"
MARKER_PREFIX = b"s/m/"
_LOCATION = struct.Struct("<32sI")
_PACK = struct.Struct("<32sQ")


class StoredSequences:
    """The store-wide map from dedup key to (pack, slot), restricted to live versions.

    ``live`` maps the SHA-256 digest of every sequence pack a version named
    by a ref needs to its size; it is read once, by :meth:`refresh`.
    """

    def __init__(self, store: Store, index: ChunkIndex) -> None:
        self.store = store
        self.index = index
        self.live: dict[bytes, int] = {}

    def refresh(self) -> None:
        """Read which packs the live versions need; map the slots of versions not yet in the map."""
        catalog = VersionCatalog(self.store)
        manifests = sorted(set(self.store.refs.list(REFS).values()), key=lambda h: h.digest)
        markers = self.index.get_many([MARKER_PREFIX + h.digest for h in manifests])
        live: dict[bytes, int] = {}
        for h, marker in zip(manifests, markers):
            if marker is None:
                try:
                    manifest = catalog.load(h)
                except StorageError:
                    continue  # a ref to a missing manifest: verify and gc name it; it lends nothing
                marker = self._map_version(h, manifest)
            for offset in range(0, len(marker), _PACK.size):
                digest, size = _PACK.unpack_from(marker, offset)
                live[digest] = size
        self.live = live

    def _map_version(self, manifest_hash: SHA256Hash, manifest: Manifest) -> bytes:
        """Hash the slots of a version's own packs into the map; the packs it may lend.

        A pack that is missing or damaged is left out -- never lent to a new
        version -- and the marker is not written, so once the pack is restored
        (``sync pull``) the next import maps it.
        """
        unreadable: set[bytes] = set()
        for entry in manifest.chunks:
            if entry.pack is None:
                continue
            try:
                pack = PackReader(self.store.get_chunk(entry.pack))
                residues = pack.sequences()
                qualities: Sequence[bytes | None] = pack.all_qualities() if pack.fastq else [None] * len(residues)
            except (ChunkNotFound, CompressionError, HashMismatch):
                unreadable.add(entry.pack.digest)
                continue
            # A FASTA slot is lent only if it holds canonical residues (packs written before
            # residue edits kept soft-masked letters in the slot): edits apply to canonical ones.
            self.add(
                entry.pack.digest,
                [
                    sequence_keys(r, q)[1] if q is not None or is_canonical(r) else None
                    for r, q in zip(residues, qualities)
                ],
            )
        if not unreadable:
            return self.mark(manifest_hash, manifest)
        return b"".join(
            _PACK.pack(digest, size) for digest, size in _packs(manifest) if digest not in unreadable
        )

    def find(self, keys: Sequence[bytes]) -> dict[bytes, tuple[bytes, int]]:
        """The live (pack digest, slot) of each key the store holds; absent keys are left out."""
        if not keys or not self.live:
            return {}
        found: dict[bytes, tuple[bytes, int]] = {}
        for key, value in zip(keys, self.index.get_many([KEY_PREFIX + k for k in keys])):
            if value is not None and len(value) == _LOCATION.size:
                digest, slot = _LOCATION.unpack(value)
                if digest in self.live:
                    found[key] = (digest, slot)
        return found

    def add(self, pack: bytes, keys: Iterable[bytes | None]) -> None:
        """Map each of ``keys`` to its slot (its position in ``keys``) of ``pack``; None: not lent."""
        self.index.write_batch(
            (KEY_PREFIX + key, _LOCATION.pack(pack, slot)) for slot, key in enumerate(keys) if key is not None
        )

    def mark(self, manifest_hash: SHA256Hash, manifest: Manifest) -> bytes:
        """Record that a version's own packs are mapped; the marker value (its packs and sizes)."""
        value = b"".join(_PACK.pack(digest, size) for digest, size in _packs(manifest))
        self.index.write_batch([(MARKER_PREFIX + manifest_hash.digest, value)])
        return value


def _packs(manifest: Manifest) -> list[tuple[bytes, int]]:
    """(digest, size) of every sequence pack a version needs: its own and those it reuses."""
    return [(o.hash.digest, o.size) for o in manifest.objects() if o.kind == "sequence pack"]
