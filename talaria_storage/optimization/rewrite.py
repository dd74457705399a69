"""Re-pointing versions at new sequence packs: how every rewriting strategy changes a store.

A record chunk names the packs its residues are in by SHA-256 (its *pack
table*, see :mod:`talaria_storage.sequences.record_chunk`), so a pack that is
merged, recompressed or found to duplicate another cannot be replaced in
place: each record chunk that refers to it is encoded again with the new
pack table and references, which gives it a new name, and so each version
that lists it gets a new manifest. A :class:`PackMoves` says where every slot
of every replaced pack now lives; :class:`VersionRewriter` does the rest:

1. the strategy has stored the new packs (objects first);
2. each affected version, oldest first per database, gets its record chunks
   encoded again -- same headers, layouts, taxa, residue edits and
   dictionary chunks (mapped to their own new names), new references --
   and stored;
3. before anything names them, every record of the new chunks is compared
   with the record of the old chunk it replaces (headers, residues, layout:
   what a byte-exact export writes); a difference stops the run with
   nothing published;
4. the new manifest is stored, then each ref that named the old manifest
   moves to it by compare-and-swap: the version ref first, HEAD last. A ref
   another writer moved meanwhile stops the run with a one-line error; what
   was published so far stays, the rest is unreferenced and collectable.

Old objects are never deleted here: they become unused, and only gc
removes them, after its grace period. A run cut off anywhere leaves every
version readable -- each ref names either its old or its new manifest --
and a re-run plans again from what the store then holds. The one state
between two refs (version ref moved, HEAD not yet) is finished by
:func:`finish_interrupted`, which the optimizer runs first: a new manifest
records the one it replaced (``extra["rewritten_from"]``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import REFS, ref_key
from talaria_storage.formats.fasta import Layout
from talaria_storage.optimization.analysis import StoreAnalysis, VersionView
from talaria_storage.sequences.manifest import ChunkEntry, Manifest
from talaria_storage.sequences.record_chunk import (
    ChunkDictionary,
    ChunkReader,
    dictionary_text,
    plain_chunk,
)
from talaria_storage.sequences.sequence_pack import PackReader, encode_pack
from talaria_storage.sequences.streams import DICTIONARY_STREAMS, ChunkCodec
from talaria_storage.sequences.versions import HEAD, VersionCatalog
from talaria_storage.storage.store import Store


class RewriteConflict(StorageError):
    """A ref moved while the optimizer was rewriting the version it names."""


@dataclass
class PackMoves:
    """Where the slots of replaced packs now live, and the packs that take their place.

    ``slots[old][i]`` is ``(new pack, slot)`` of old slot ``i``;
    ``successor[old]`` is the pack that becomes the record chunk's *own* pack
    where ``old`` was (None: the chunk has no own pack any more, its slots
    all live in other versions' packs); ``sizes`` are the new packs'
    serialised bytes. ``codec_for(view)`` is the codec a version's record
    chunks are encoded with (None: the one its manifest records).
    """

    slots: dict[SHA256Hash, list[tuple[SHA256Hash, int]]] = field(default_factory=dict)
    successor: dict[SHA256Hash, SHA256Hash | None] = field(default_factory=dict)
    sizes: dict[SHA256Hash, int] = field(default_factory=dict)
    codec_for: Callable[[VersionView], ChunkCodec | None] = lambda view: None

    def move(self, old: SHA256Hash, to: list[tuple[SHA256Hash, int]], successor: SHA256Hash | None) -> None:
        self.slots[old] = to
        self.successor[old] = successor

    def __bool__(self) -> bool:
        return bool(self.slots)


@dataclass
class RewriteResult:
    """What a rewrite did: versions moved to new manifests, objects written and objects replaced."""

    versions: list[tuple[str, str, SHA256Hash, SHA256Hash]] = field(default_factory=list)  # db, version, old, new
    written: list[SHA256Hash] = field(default_factory=list)  # new chunks (packs are the strategy's)
    manifests: list[SHA256Hash] = field(default_factory=list)
    replaced_chunks: set[SHA256Hash] = field(default_factory=set)


def version_codec(manifest: Manifest) -> ChunkCodec:
    """The sequence codec a version's objects were encoded with (its manifest records it)."""
    spec = manifest.extra.get("codec")
    return ChunkCodec.from_dict(spec) if isinstance(spec, dict) else ChunkCodec()


def store_pack(store: Store, sequences: Sequence[bytes], qualities: Sequence[bytes] | None, codec: ChunkCodec) -> tuple[SHA256Hash, int]:
    """Encode and store a sequence pack (a dedup hit when it exists); its hash and serialised size."""
    data = encode_pack(list(sequences), list(qualities) if qualities is not None else None, codec)
    return store.store_chunk(data, compress=False), len(data)


class VersionRewriter:
    """Encodes the record chunks of affected versions again and publishes their new manifests."""

    def __init__(self, store: Store, analysis: StoreAnalysis, moves: PackMoves) -> None:
        self.store = store
        self.analysis = analysis
        self.moves = moves
        self.catalog = VersionCatalog(store)
        self._readers: dict[SHA256Hash, ChunkReader] = {}
        self._texts: dict[tuple[tuple[bytes, ...], int], bytes] = {}
        self._packs: dict[SHA256Hash, PackReader] = {}
        self._chunks: dict[tuple[SHA256Hash, ChunkCodec], tuple[SHA256Hash, int, tuple[bytes, ...]]] = {}
        self.chunk_map: dict[SHA256Hash, SHA256Hash] = {}
        self.manifest_map: dict[SHA256Hash, SHA256Hash] = {}
        self.sizes: dict[SHA256Hash, int] = dict(moves.sizes)
        for view in analysis.versions:
            for obj in view.manifest.objects():
                if obj.size:
                    self.sizes.setdefault(obj.hash, obj.size)

    # -- deciding ---------------------------------------------------------------------------------

    def affected(self, view: VersionView) -> bool:
        """True when the version needs a replaced pack, a rewritten chunk, or another chunk codec."""
        if any(o.hash in self.moves.slots or o.hash in self.chunk_map for o in view.manifest.objects()):
            return True
        wanted = self.moves.codec_for(view)
        return wanted is not None and wanted != version_codec(view.manifest)

    # -- doing ------------------------------------------------------------------------------------

    def run(self, verify: bool = True) -> RewriteResult:
        result = RewriteResult()
        refs = self.store.refs.list(REFS)
        for view in self.analysis.versions:
            if view.manifest_hash in self.manifest_map or not self.affected(view):
                continue
            manifest = self._rewrite(view, result, verify)
            new = self._publish(view, manifest, refs)
            self.manifest_map[view.manifest_hash] = new
            result.versions.append((view.database, view.version, view.manifest_hash, new))
            result.manifests.append(new)
        result.replaced_chunks = {old for old, new in self.chunk_map.items() if old != new}
        return result

    def _rewrite(self, view: VersionView, result: RewriteResult, verify: bool) -> Manifest:
        manifest = view.manifest
        codec = self.moves.codec_for(view) or version_codec(manifest)
        entries: list[ChunkEntry] = []
        own_packs: set[SHA256Hash] = set()
        used_dictionaries: dict[bytes, None] = {}
        referenced: dict[SHA256Hash, None] = {}
        for entry in manifest.chunks:
            new_hash, size, dictionaries, table = self._chunk(entry, codec, result)
            own = entry.pack
            if own is not None and own in self.moves.successor:
                own = self.moves.successor[own]
            if own is not None and own not in table:
                own = None
            entries.append(dataclasses.replace(entry, hash=new_hash, size=size, pack=own,
                                               pack_size=self.sizes.get(own, 0) if own is not None else 0))
            if own is not None:
                own_packs.add(own)
            used_dictionaries.update(dict.fromkeys(dictionaries))
            referenced.update(dict.fromkeys(table))
            if verify:
                self._compare(entry, new_hash)
        dictionaries = self._closure([SHA256Hash(d) for d in used_dictionaries])
        extra = dict(manifest.extra)
        extra["codec"] = codec.to_dict()
        extra["rewritten_from"] = view.manifest_hash.to_hex()
        parent = self.manifest_map.get(manifest.parent, manifest.parent) if manifest.parent else None
        return dataclasses.replace(
            manifest,
            chunks=tuple(entries),
            parent=parent,
            extra=extra,
            reused_packs=tuple((p, self.sizes.get(p, 0)) for p in referenced if p not in own_packs),
            dictionary_chunks=tuple((d, self.sizes.get(d, 0)) for d in dictionaries),
        )

    def _chunk(
        self, entry: ChunkEntry, codec: ChunkCodec, result: RewriteResult
    ) -> tuple[SHA256Hash, int, tuple[bytes, ...], list[SHA256Hash]]:
        """The record chunk ``entry`` names, encoded again: (hash, size, dictionary chunks used, pack table)."""
        key = (entry.hash, codec)
        done = self._chunks.get(key)
        if done is not None:
            new_hash, size, dictionaries = done
            return new_hash, size, dictionaries, self._reader(new_hash).pack_hashes()
        reader = self._reader(entry.hash)
        table = reader.pack_hashes()
        own = entry.pack
        if own is not None and own in self.moves.successor:
            own = self.moves.successor[own]
        located: list[tuple[SHA256Hash, int]] = []
        for p, slot in reader.refs():
            pack = table[p]
            moved = self.moves.slots.get(pack)
            located.append(moved[slot] if moved is not None else (pack, slot))
        order: dict[SHA256Hash, int] = {}
        if own is not None and any(pack == own for pack, _ in located):
            order[own] = 0
        for pack, _ in located:
            order.setdefault(pack, len(order))
        layouts = reader.layouts()
        rows: dict[Layout, int] = {}
        layout_index = [rows.setdefault(layout, len(rows)) for layout in layouts]
        plain = plain_chunk(
            b"\n".join(reader.headers()),
            len(reader),
            list(rows),
            layout_index,
            reader.taxids(),
            [order[pack] << 32 | slot for pack, slot in located],
            list(order),
            plus=b"\n".join(reader.plus_lines()) if reader.fastq else None,
            codec=codec,
            edits=reader.edits(),
        )
        data, dictionaries = plain.against(self._dictionary(reader))
        new_hash = self.store.store_chunk(data, compress=False)
        self.sizes[new_hash] = len(data)
        self._chunks[key] = (new_hash, len(data), dictionaries)
        self.chunk_map[entry.hash] = new_hash
        if new_hash != entry.hash:
            result.written.append(new_hash)
        return new_hash, len(data), dictionaries, list(order)

    def _dictionary(self, reader: ChunkReader) -> ChunkDictionary | None:
        """The chunk's dictionary with each dictionary chunk replaced by its new self, if any."""
        old = reader.dictionary_chunks()
        if not old:
            return None
        new = [self.chunk_map.get(h, h) for h in old]
        texts = tuple(self._text(new, sid) for sid in DICTIONARY_STREAMS)
        return ChunkDictionary(tuple(h.digest for h in new), texts, reader.dictionary_depth())

    def _closure(self, chunks: list[SHA256Hash]) -> list[SHA256Hash]:
        """``chunks`` and, recursively, their own dictionary chunks (a reader of one needs them all)."""
        out: dict[SHA256Hash, None] = {}
        todo = list(chunks)
        while todo:
            h = todo.pop(0)
            if h in out:
                continue
            out[h] = None
            todo.extend(self._reader(h).dictionary_chunks())
        return list(out)

    def _compare(self, old: ChunkEntry, new_hash: SHA256Hash) -> None:
        """Stop unless the new chunk gives back exactly the old chunk's records."""
        before = self._records(old.hash)
        after = self._records(new_hash)
        if before != after:
            raise StorageError(
                f"optimizer stopped before publishing: record chunk {new_hash.to_hex()} does not give back the "
                f"records of {old.hash.to_hex()}; nothing was published for this version (please report it)"
            )

    def _records(self, h: SHA256Hash) -> list[object]:
        reader = self._reader(h)
        packs = [self._pack(p) for p in reader.pack_hashes()]
        return list(reader.records(packs))

    def _pack(self, h: SHA256Hash) -> PackReader:
        found = self._packs.get(h)
        if found is None:
            if len(self._packs) > 256:
                self._packs.clear()
            found = self._packs[h] = PackReader(self.store.get_chunk(h))
        return found

    def _reader(self, h: SHA256Hash) -> ChunkReader:
        found = self._readers.get(h)
        if found is None:
            if len(self._readers) > 4096:
                self._readers.clear()
            data = self.store.get_chunk(h)
            self.sizes.setdefault(h, len(data))
            found = self._readers[h] = ChunkReader(data, self._dictionary_text)
        return found

    def _dictionary_text(self, hashes: list[SHA256Hash], stream_id: int) -> bytes:
        return self._text(hashes, stream_id)

    def _text(self, hashes: list[SHA256Hash], stream_id: int) -> bytes:
        key = (tuple(h.digest for h in hashes), stream_id)
        found = self._texts.get(key)
        if found is None:
            found = self._texts[key] = dictionary_text([self._reader(h).stream_text(stream_id) for h in hashes])
        return found

    def _publish(self, view: VersionView, manifest: Manifest, refs: dict[str, SHA256Hash]) -> SHA256Hash:
        """Store the manifest, then move every ref that named the old one (HEAD last)."""
        needed = manifest.object_hashes()
        held = self.store.present(needed)
        missing = [h for h in needed if h not in held]
        if missing:
            raise StorageError(
                f"optimizer stopped before publishing {view.database}@{view.version}: {len(missing)} object(s) "
                f"are missing, e.g. {missing[0].to_hex()}"
            )
        new = self.store.manifests.store_chunk(manifest.to_bytes())
        head = ref_key(view.database, HEAD)
        names = sorted((k for k, h in refs.items() if h == view.manifest_hash), key=lambda k: (k == head, k))
        for key in names:
            if not self.store.refs.compare_and_swap(key, view.manifest_hash, new):
                raise RewriteConflict(
                    f"optimizer stopped: ref '{key}' was moved by another writer while {view.database}@{view.version} "
                    "was rewritten; the versions published so far are complete, re-run optimize to finish"
                )
            refs[key] = new
        return new


def finish_interrupted(store: Store) -> list[str]:
    """Move a HEAD left on a manifest that a rewrite already replaced (the run stopped between refs).

    Returns the HEAD refs moved. A HEAD names a manifest no version ref
    names only in that moment, or when the version was deleted; only the
    first case is touched: the version ref of the same name names a
    manifest that records it replaced HEAD's (``extra["rewritten_from"]``).
    """
    catalog = VersionCatalog(store)
    refs = store.refs.list(REFS)
    moved = []
    for database in catalog.databases():
        head_key = ref_key(database, HEAD)
        head = refs.get(head_key)
        if head is None or any(h == head for k, h in refs.items() if k.startswith(f"{REFS}{database}/") and k != head_key):
            continue
        try:
            old = catalog.load(head)
        except StorageError:
            continue
        named = refs.get(ref_key(database, old.version))
        if named is None:
            continue
        if catalog.load(named).extra.get("rewritten_from") == head.to_hex() and store.refs.compare_and_swap(
            head_key, head, named
        ):
            moved.append(head_key)
    return moved
