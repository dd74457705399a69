"""SequenceDatabase: import FASTA/FASTQ files as versions, export them byte-exactly, look records up.

Import (DESIGN.md §4)
---------------------
Records are streamed (bounded memory), labelled with a taxon and chunked by
:class:`talaria_storage.sequences.chunking.TaxonChunker` (grouped by taxon,
content-defined boundaries from each record's canonical sequence hash, small
taxa packed together; see that module). Records of different files never
share a chunk: the chunker is run once per file.

Each chunk becomes a record chunk (headers, layouts, taxids, references) and
a sequence pack of the residues first seen in it; an identical sequence met
again -- in the same chunk, another chunk or another file of the import, or
already held by a version of any database in the store -- is stored once and
referred to (:mod:`talaria_storage.sequences.record_chunk`,
:mod:`talaria_storage.sequences.stored_sequences`).
Both are stored with ``store_chunk(data, compress=False)`` (the format
compresses itself). The pipeline that does this, with a process pool for
large inputs, is :mod:`talaria_storage.sequences.importing`.
The original record order of each file is an *order object* (see
:mod:`talaria_storage.sequences.order`) stored in ``chunks/`` and named by
``manifest.extra["files"][i]["order"]``. The manifest is published through
:meth:`VersionCatalog.publish` against the HEAD read when the import began;
a failed import publishes nothing (its stored objects are unreferenced and
collectable) and can simply be re-run.

Look-ups go through the look-up index each import stores with its version
(:mod:`talaria_storage.index.lookup_table`; what keys a record has is
:mod:`talaria_storage.sequences.identifiers`): one partition per layer,
then the record, checked against the identifier. Versions imported before
it (or with ``lookup_table=False``, or whose table is damaged) use a local
:class:`ChunkIndex` built lazily per manifest from the chunks; a ``built``
marker key, written last, says such an index is whole (see
``SequenceDatabase._ensure_index``).
``db.get`` resolves the version on every call, so it sees a new HEAD; a
:class:`DatabaseSnapshot` (``db.snapshot()``) resolves it once, for many
look-ups in one version.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import struct
import time
import weakref
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from talaria_storage.config.open_store import open_store
from talaria_storage.config.settings import StorageConfig
from talaria_storage.core.errors import (
    AmbiguousIdentifier,
    ChunkNotFound,
    CompressionError,
    InputFormatError,
    RecordNotFound,
    RefConflict,
    StorageError,
)
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import ref_key
from talaria_storage.core.lazy_module import LazyModule
from talaria_storage.core.types import OperationType, ProcessingState, SourceInfo
from talaria_storage.formats.fasta import (
    FastaRecord,
    FastqRecord,
    SequenceRecord,
    format_record,
    labelled,
    residue_bytes,
    write_records,
)
from talaria_storage.formats.genbank import (
    MARK,
    fasta_of,
    from_stored,
    is_stored_flatfile,
    stored_flavour,
)
from talaria_storage.index.local_index import ChunkIndex, open_index
from talaria_storage.index.lookup_index import lookup_index
from talaria_storage.index.lookup_table import (
    LookupIndex,
    LookupIndexRef,
    LookupTableDamaged,
    digest_fingerprint,
    name_fingerprint,
)
from talaria_storage.index.lookup_table_writer import build_lookup_index
from talaria_storage.sequences.canonical import (
    SequenceDigests,
    SequenceId,
    canonical,
    digests,
    sequence_id_in,
)
from talaria_storage.sequences.identifiers import (
    EXACT,
    accession_from_header,
    declared_pattern,
    name_match,
    probe_names,
    record_names,
)
from talaria_storage.sequences.manifest import ChunkEntry, Manifest, SourceFile
from talaria_storage.sequences.order import decode_order
from talaria_storage.sequences.record_chunk import ChunkReader, dictionary_text
from talaria_storage.sequences.sequence_pack import PackReader
from talaria_storage.sequences.stored_sequences import StoredSequences
from talaria_storage.sequences.streams import (
    DICTIONARY_STREAMS,
    ChunkCodec,
    LRUCache,
    configured_codec,
)
from talaria_storage.sequences.taxonomy import AccessionTaxonMap, Taxonomy
from talaria_storage.sequences.versions import HEAD, VersionCatalog, VersionInfo, default_version
from talaria_storage.sequences.worker_store import address_of
from talaria_storage.storage.store import Store

if TYPE_CHECKING:
    import multiprocessing

    from talaria_storage.sequences import chunking as chunk_policy
    from talaria_storage.sequences import importing, sharded_import
else:
    # Imported on first use (core.lazy_module): the import pipeline and its process pool are
    # about 30 ms of a fresh process's start-up, and a look-up never runs them.
    importing = LazyModule("talaria_storage.sequences.importing")
    sharded_import = LazyModule("talaria_storage.sequences.sharded_import")
    multiprocessing = LazyModule("multiprocessing")
    chunk_policy = LazyModule("talaria_storage.sequences.chunking")

_log = logging.getLogger(__name__)

CHUNK_CACHE_BYTES = 128 << 20  # decoded records kept for export and look-ups
MAX_PROCESSES = 4  # automatic import workers at most

_POS = struct.Struct(">II")  # (chunk index, record index), big-endian: an index value is a run of them
# Look-ups (see SequenceDatabase.snapshot and the "index" section): open record chunks and
# sequence packs, and decoded residue blocks, are kept by bytes. UniProt's 15 proteomes (51 MB
# of FASTA) need ~40 MB of readers and ~37 MB of blocks for every look-up to hit the caches.
READER_CACHE_BYTES = 96 << 20
BLOCK_CACHE_BYTES = 64 << 20
# How index entries are laid out (see SequenceDatabase._ensure_index); 3: every Ctrl-A id; 4: the names of
# identifiers.indexed_names (bare accessions, entry names), each candidate checked against its header
INDEX_LAYOUT = 4
INDEX_BUILD_KEYS = 1 << 18  # index entries gathered in memory before they are written (and merged)


@dataclass(frozen=True, slots=True)
class ImportResult:
    database: str
    version: str
    manifest: SHA256Hash
    records: int
    chunks: int
    new_chunks: int
    new_bytes: int
    input_bytes: int
    logical_bytes: int
    seconds: float
    packs: int = 0  # sequence packs the version's chunks own
    new_packs: int = 0  # of which were not in the store yet (new_bytes counts them too)
    reused_packs: int = 0  # packs of earlier versions holding sequences this version carries


@dataclass(frozen=True, slots=True)
class RecordEntry:
    """One record of a version as look-ups, diffs and indexes see it (no residues)."""

    accession: str
    header: bytes
    sequence: SHA256Hash  # canonical sequence hash (upper case, no whitespace)
    taxid: int  # 0 = none
    chunk: int  # index into the manifest's chunk list
    index: int  # record index inside that chunk
    refget: str = ""  # the sequence's refget id, "SQ.<sha512t24u>" (sequence collections need it)
    length: int = 0  # canonical residues


@dataclass(frozen=True, slots=True)
class DatabaseStats:
    database: str
    version: str
    records: int
    unique_sequences: int
    residues: int
    chunks: int
    # distinct record chunks, sequence packs (its own and those it shares with other versions,
    # whole) and order objects, as serialised: what a copy of this version alone needs
    stored_bytes: int
    input_bytes: int  # source files as read (compressed, if they were)
    logical_bytes: int  # uncompressed FASTA/FASTQ bytes (what a byte-exact export writes)
    ratio: float  # logical_bytes / stored_bytes


class SequenceDatabase:
    """One named database in a store: its versions, import, export and look-ups.

    ``processes``: worker processes for an import (``None``: one per CPU, at
    most ``MAX_PROCESSES``, when the input is at least
    ``importing.POOL_THRESHOLD`` bytes on disk, else none; ``0``: never).
    ``threads``: threads writing objects to the store (and encoding, when
    there are no worker processes).
    """

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        index: ChunkIndex | None = None,
        codec: ChunkCodec | None = None,
        chunking: chunk_policy.ChunkingPolicy | None = None,
        threads: int = 4,
        processes: int | None = None,
        owns_store: bool = False,
        lookup_table: bool = True,
    ) -> None:
        self.store = store
        self.name = name
        self._owns_store = owns_store
        self.catalog = VersionCatalog(store)
        self.index = index if index is not None else open_index("memory", None)
        # [storage] compression/compression_level and [optimization] chunk bounds and
        # deduplication, when the store was opened from a configuration (see open_store).
        settings = store.config if isinstance(store.config, StorageConfig) else None
        self.codec = codec or (configured_codec(*settings.codec_spec) if settings else ChunkCodec())
        self._settings = settings
        self._chunking = chunking
        #: False: an import lends no sequence from what the store already holds (storage.toml
        #: ``[optimization] deduplication``); every version then stores all its sequences itself.
        self.deduplication = settings.optimization.deduplication if settings else True
        self.threads = max(1, threads)
        self.processes = processes
        #: False: imports write no stored look-up table; their versions are then looked up through
        #: the local index, built from the chunks (and read by releases before manifest format 4).
        self.lookup_table = lookup_table
        self._manifests: dict[SHA256Hash, Manifest] = {}
        # Decoded chunks, bounded by bytes: an export walks a file's runs, which for a file
        # whose taxa are interleaved jump between many chunks (WoL 23S: 85); a cache of a
        # few chunks decoded each of them once per run (3 MB/s), one that holds them all once.
        self._chunk_cache = LRUCache(CHUNK_CACHE_BYTES)
        # Open record chunks (b"c", digest) and sequence packs (b"p", digest), and the residue blocks
        # the packs decoded (shared: a look-up lands in any block of any pack), by bytes.
        self._readers = LRUCache(READER_CACHE_BYTES)
        self._blocks = LRUCache(BLOCK_CACHE_BYTES)
        self._resolve_dictionary = _dictionary_resolver(self)
        self._cache_size = 16  # packs whose slot digests an index build keeps (see _walk)
        # What look-ups into each version need, by manifest (see _version_lookup).
        self._lookups: dict[SHA256Hash, VersionLookup] = {}

    @property
    def chunking(self) -> chunk_policy.ChunkingPolicy:
        """How an import cuts records into chunks ([optimization] chunk bounds when the store was
        opened from a configuration), made on first use: a look-up never chunks, and the module
        cost a fresh process's first look-up ~6 ms to import."""
        if self._chunking is None:
            settings = self._settings
            self._chunking = (
                chunk_policy.ChunkingPolicy.bounded(settings.optimization.min_chunk_size, settings.optimization.max_chunk_size)
                if settings
                else chunk_policy.ChunkingPolicy()
            )
        return self._chunking

    # ------------------------------------------------------------------------------ import

    def import_files(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        version: str | None = None,
        taxonomy: str = "header",
        taxon: int | None = None,
        prefix_separator: str | None = None,
        progress: Callable[[int], None] | None = None,
        alphabet: str = "iupac",
        id_regex: str | None = None,
        executor: Any | None = None,
        created: float | None = None,
    ) -> ImportResult:
        """Import files as a new version and make it HEAD; see the module docstring.

        ``taxonomy``: ``"header"`` (UniProt ``OX=``; ``taxon`` is the fall-back), a path to
        an accession->taxid map (accession from the header; ``taxon`` is the fall-back), or
        ``"none"`` (every record gets ``taxon``, or no taxon). ``prefix_separator`` lets a map
        keyed by genome name label ``G000005825_1`` through ``G000005825`` (Web of Life).
        ``progress`` is called with the number of input bytes read since its last call.
        ``alphabet``: ``"iupac"`` refuses residues other than IUPAC letters, ``*``, ``-``
        and ``.`` (naming file, line and column); ``"any"`` keeps every printable byte.
        ``id_regex``: a regular expression whose matches in each header (its first group, if
        it has one) are look-up keys too (:mod:`~talaria_storage.sequences.identifiers`).
        ``executor``: a ``distributed.Client``; the files are parsed, packed and stored by its
        workers, straight into this store, and the version is the one this process would
        have written (:mod:`~talaria_storage.sequences.sharded_import`). ``created``: the
        manifest's creation time (default now), for a release pipeline that pins it.
        """
        try:
            residue_bytes(alphabet)  # an unknown alphabet fails before anything is read
            declared = declared_pattern(id_regex)
        except ValueError as exc:
            raise StorageError(str(exc)) from None
        started = time.perf_counter()
        files_in: list[str] = [str(os.fspath(p)) for p in paths]
        if not files_in:
            raise StorageError("nothing to import: give at least one file")
        auto_named = version is None
        version = version or default_version()
        expected_head = self.catalog.head(self.name)
        fallback = int(taxon or 0)
        header_taxa = taxonomy == "header"
        label: Callable[[bytes], int]
        if header_taxa:
            label = importing.header_labeller(fallback)
        elif taxonomy == "none":
            def label(header: bytes) -> int:
                return fallback
        else:
            mapping = AccessionTaxonMap.from_file(taxonomy, prefix_separator=prefix_separator)

            def label(header: bytes) -> int:
                found = mapping.get(accession_from_header(header))
                return found if found is not None else fallback

        sources: list[SourceFile] = []
        files: list[dict[str, Any]] = []
        address = address_of(self.store) if executor is not None else None
        state = self._start_state(files_in, version)
        sharded_import.check_executor(self.store, state.operation_id, sharded=executor is not None, begun=bool(state.completed_chunks))
        stored = StoredSequences(self.store, self.index)
        if self.deduplication:
            stored.refresh()  # without it the map lends nothing (deduplication = false)
        bases = self._dictionary_bases(expected_head)
        try:
            with importing.ImportRun(
                self.store, self.codec, self.chunking,
                processes=0 if executor is not None else self._processes_for(files_in), threads=self.threads,
                operation_id=state.operation_id, completed=state.completed_chunks, stored=stored,
                dictionary_bases=bases, alphabet=alphabet, declared=declared,
            ) as run:
                if address is None:
                    imported = run.import_files(files_in, label, header_taxa, fallback, progress)
                else:
                    task = sharded_import.ShardTask(
                        address, self.codec, self.chunking,
                        self.threads, state.operation_id, label, header_taxa, fallback, alphabet, declared,
                        state.completed_chunks, dict(stored.live), bases, DictionaryTexts(self.name),
                        segment_bytes=run.segment_bytes,
                    )
                    imported = sharded_import.import_sharded(executor, run, task, files_in, progress)
                for done in imported:
                    sources.append(done.source)
                    files.append({"name": done.source.name, "order": done.order.to_hex(),
                                  "order_size": done.order_size, "records": done.source.records,
                                  "bytes": done.logical_bytes})
                final = run.finish()
                lookup, unique = (
                    self._store_lookup_table(run, final, expected_head) if self.lookup_table else (None, None)
                )
        except InputFormatError:
            # The input itself is bad: a re-run needs a corrected file, so nothing is worth
            # resuming, and the objects stored so far become collectable orphans.
            self.store.states.complete(state.operation_id)
            raise
        manifest = Manifest(
            database=self.name,
            version=version,
            created=time.time() if created is None else created,
            sources=tuple(sources),
            chunks=tuple(final),
            parent=expected_head,
            extra={"files": files, "chunking": {"min": self.chunking.min_size, "target": self.chunking.target_size,
                                "max": self.chunking.max_size}, "codec": self.codec.to_dict(),
                   **({"unique_sequences": unique} if unique is not None else {}),
                   **({"id_regex": id_regex} if id_regex else {})},
            reused_packs=run.reused_packs(),
            dictionary_chunks=run.dictionary_chunks(),
            lookup=lookup,
        )
        for attempt in range(2, 100):
            try:
                manifest_hash = self.catalog.publish(manifest, expected_head)
                break
            except RefConflict as exc:
                # A name this import chose (the timestamp) taken by another import in the same
                # second: take the next free one. A name the user gave stays refused.
                if not auto_named or exc.ref != ref_key(self.name, manifest.version):
                    raise
                manifest = replace(manifest, version=f"{version}-{attempt}")
        else:
            raise StorageError(f"no free version name after {version}-99: give one with --version")
        version = manifest.version
        if executor is None:
            # A distributed import's new packs were mapped on its workers, not in this index:
            # without the marker the next import maps them here (StoredSequences.refresh).
            stored.mark(manifest_hash, manifest)
        self.store.states.complete(state.operation_id)
        return ImportResult(
            database=self.name, version=version, manifest=manifest_hash, records=manifest.records,
            chunks=len(final), new_chunks=run.new_chunks, new_bytes=run.new_bytes,
            input_bytes=sum(s.size for s in sources), logical_bytes=sum(f["bytes"] for f in files),
            seconds=time.perf_counter() - started,
            packs=sum(1 for e in final if e.pack is not None), new_packs=run.new_packs,
            reused_packs=len(manifest.reused_packs),
        )

    def _store_lookup_table(
        self, run: importing.ImportRun, entries: list[ChunkEntry], parent: SHA256Hash | None
    ) -> tuple[LookupIndexRef, int]:
        """Store the import's look-up index (before the manifest that names it, as every object),
        layered over ``parent``'s where that saves rows, and record its objects in the import's
        state; the index's ref and the number of distinct sequences."""
        fingerprints, ordinals, unique = run.lookup.table(entries)
        earlier = None
        if parent is not None:
            try:
                earlier = self._load(parent).lookup
            except StorageError:
                earlier = None  # an unreadable parent: this version's index stands alone
        try:
            ref = build_lookup_index(self.store.store_chunk, self.store.get_chunk, fingerprints, ordinals, earlier)
        except StorageError:  # a damaged partition of the parent's (ChunkNotFound, HashMismatch, ...)
            ref = build_lookup_index(self.store.store_chunk, self.store.get_chunk, fingerprints, ordinals)
        run.record_completed([p.hash for p in ref.partitions])
        return ref, unique

    def _start_state(self, paths: list[str], version: str) -> ProcessingState:
        """Start, or resume, this import's processing state (see :mod:`talaria_storage.storage.processing`).

        The identity is the database, the version and the input files' absolute
        paths and sizes. A killed import (even ``kill -9``) leaves the state: its
        stored objects stay out of GC's reach, and a re-run skips them. The
        completed set only names objects already in the store, so a false
        match (a file rewritten in place with the same size) costs nothing
        but a skipped existence check of objects that really are stored.
        """
        files = tuple((os.path.abspath(p), os.path.getsize(p), "") for p in paths)
        source = SourceInfo(self.name, source="import", version=version, files=files)
        return self.store.states.start(
            OperationType.IMPORT, source, manifest_hash=None, manifest_version=version, total_chunks=0
        )

    def _processes_for(self, paths: list[str]) -> int:
        """Worker processes for importing ``paths`` (see the class docstring)."""
        if multiprocessing.current_process().daemon:
            return 0  # a daemonic process (a pool worker itself) may not start children
        if self.processes is not None:
            return max(0, self.processes)
        cpus = os.cpu_count() or 1
        if cpus < 2:
            return 0
        try:
            size = sum(os.path.getsize(p) for p in paths)
        except OSError:
            return 0  # the import itself reports the unreadable file
        # Past ~4 workers the main process (chunking, packing) is the bottleneck.
        return min(cpus, MAX_PROCESSES) if size >= importing.POOL_THRESHOLD else 0

    def close(self) -> None:
        """Close the store, if :func:`open_database` opened it for this database; else nothing."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> SequenceDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ reading

    def versions(self) -> list[VersionInfo]:
        return self.catalog.versions(self.name)

    def manifest(self, version: str | None = None) -> tuple[SHA256Hash, Manifest]:
        h = self.store.refs.get(ref_key(self.name, version or HEAD))
        if h is None:
            return self.catalog.resolve(self.name, version)  # raises VersionNotFound with the known names
        return h, self._load(h)

    def _load(self, h: SHA256Hash) -> Manifest:
        """The manifest ``h``, read once per database (manifests are immutable)."""
        if h not in self._manifests:
            self._manifests[h] = self.catalog.load(h)
        return self._manifests[h]

    def snapshot(self, version: str | None = None) -> DatabaseSnapshot:
        """``version`` (HEAD when None) as it is now, pinned for look-ups; see :class:`DatabaseSnapshot`.

        Resolves the version once -- one read of its ref -- and checks (or
        builds) its index entries once; the snapshot's look-ups then read
        neither again. :meth:`get` makes one per call.
        """
        h, manifest = self.manifest(version)
        return DatabaseSnapshot(self, h, manifest)

    def _version_lookup(self, manifest_hash: SHA256Hash, manifest: Manifest) -> VersionLookup:
        """What look-ups into a version need, made once per database and version (``db.get``
        makes a snapshot per call)."""
        found = self._lookups.get(manifest_hash)
        if found is None:
            ref = manifest.lookup
            found = self._lookups[manifest_hash] = VersionLookup(
                None if ref is None else LookupIndex(self.store.get_chunk, ref, f"{self.name}@{manifest.version}"),
                list(accumulate((c.records for c in manifest.chunks), initial=0)),
                declared_pattern(manifest.extra.get("id_regex")),
            )
        return found

    def _pack(self, h: SHA256Hash) -> PackReader:
        """A sequence pack, from the reader cache (several chunks may refer to one pack).

        Its decoded residue blocks go to the database's shared block cache. A large pack is
        read by ranges (its stream table, then the blocks a look-up decodes: see
        :mod:`~talaria_storage.storage.chunk_ranges`), a small one whole.
        """
        cached = self._readers.get((b"p", h.digest))
        if cached is not None:
            return cached  # type: ignore[return-value]
        try:
            reader = PackReader(self.store.open_ranges(h), blocks=self._blocks, owner=h.digest)
        except ChunkNotFound:
            raise StorageError(
                f"sequence pack {h.to_hex()} of database '{self.name}' is missing from {self.store.location}: "
                "restore it from a remote (sync pull) or re-import the version"
            ) from None
        except CompressionError as exc:
            raise CompressionError(f"sequence pack {h.to_hex()} of database '{self.name}': {exc}") from None
        self._readers.put((b"p", h.digest), reader, reader.nbytes)
        return reader

    def _reader(self, h: SHA256Hash) -> tuple[ChunkReader, Sequence[PackReader]]:
        """A record chunk and the packs of its pack table, from the reader cache: look-ups that
        land in one chunk read and verify it once, and decode its small streams once.

        The packs are opened on first access (:class:`_Packs`): a look-up opens only the
        pack its record refers to, not every pack of earlier chunks the table lists. The
        cache holds the reader and its pack table, never the :class:`_Packs` (which refers
        back to this database): a reference cycle would leave a dropped database's caches
        to the cyclic GC, which then freed ~80 MB in the middle of the next look-ups.
        """
        cached = self._readers.get((b"c", h.digest))
        if cached is None:
            try:
                reader = ChunkReader(self.store.get_chunk(h), dictionary=self._resolve_dictionary)
                hashes = reader.pack_hashes()
            except CompressionError as exc:
                raise CompressionError(f"chunk {h.to_hex()} of database '{self.name}': {exc}") from None
            cached = (reader, hashes)
            self._readers.put((b"c", h.digest), cached, reader.nbytes)
        reader, hashes = cached  # type: ignore[misc]
        return reader, _Packs(self._pack, hashes)

    def _dictionary_text(self, hashes: list[SHA256Hash], stream_id: int) -> bytes:
        """What a chunk's stream was compressed against (record chunk stream 12)."""
        key = (b"d", stream_id, tuple(h.digest for h in hashes))
        cached = self._readers.get(key)
        if cached is not None:
            return cached  # type: ignore[return-value]
        parts = []
        for h in hashes:
            try:
                base, _ = self._reader(h)
            except ChunkNotFound:
                raise StorageError(
                    f"dictionary chunk {h.to_hex()} of database '{self.name}' is missing from {self.store.location}: "
                    "restore it from a remote (sync pull) or re-import the version"
                ) from None
            parts.append(base.stream_text(stream_id))  # a chain of dictionaries resolves here, depth-bounded
        text = dictionary_text(parts)
        self._readers.put(key, text, len(text))
        return text

    def _dictionary_bases(self, head: SHA256Hash | None) -> importing.DictionaryBases | None:
        """The previous version's record chunks, for the next one's (see
        :class:`DictionaryBases`); None without a previous version or when it cannot be read."""
        if head is None:
            return None
        try:
            manifest = self._load(head)
            bases: dict[SHA256Hash, importing.DictionaryBase] = {}
            for entry in manifest.chunks:
                if entry.hash not in bases:
                    reader, _ = self._reader(entry.hash)
                    bases[entry.hash] = importing.DictionaryBase(
                        entry.hash.digest, frozenset(entry.taxa),
                        sum(reader.stream_size(sid) + 1 for sid in DICTIONARY_STREAMS), entry.size,
                        reader.dictionary_depth(),
                        reader.plain_digest() if reader.dictionary_depth() else entry.hash.digest,
                    )
        except StorageError:
            return None  # the import still works, its chunks just stand alone

        return importing.DictionaryBases(list(bases.values()), self.dictionary_texts, inherited=manifest.dictionary_chunks)

    def dictionary_texts(self, digest: bytes) -> tuple[bytes, ...]:
        """The streams of record chunk ``digest`` that a new chunk may be compressed against."""
        reader, _ = self._reader(SHA256Hash(digest))
        return tuple(reader.stream_text(sid) for sid in DICTIONARY_STREAMS)

    def _chunk(self, h: SHA256Hash) -> list[SequenceRecord]:
        cached = self._chunk_cache.get(h)
        if cached is not None:
            return cached  # type: ignore[return-value]
        reader, packs = self._reader(h)
        records = reader.records(packs)
        self._chunk_cache.put(h, records, sum(len(r.header) + len(r.residues) for r in records) + 100 * len(records))
        return records

    def _record_at(self, manifest: Manifest, ci: int, ri: int, *, with_taxon: bool = False) -> SequenceRecord:
        """Record ``ri`` of chunk ``ci``: from a chunk an export decoded whole, else read alone;
        ``with_taxon``: labelled with its ``taxon_id``."""
        h = manifest.chunks[ci].hash
        if self._chunk_cache:
            cached = self._chunk_cache.get(h)
            if cached is not None:
                record: SequenceRecord = cached[ri]  # type: ignore[index]
                return labelled(record, self._reader(h)[0].taxid(ri)) if with_taxon else record
        reader, packs = self._reader(h)
        return reader.record(ri, packs, with_taxon=with_taxon)

    def canonical_slot(self, manifest: Manifest, ci: int, ri: int) -> tuple[PackReader, int] | None:
        """The sequence pack and slot holding record ``ri`` of chunk ``ci``'s canonical residues,
        or None for a FASTQ record (its slot holds the residues as written, beside the qualities).

        A FASTA slot holds canonical residues (upper case, no whitespace; the record chunk keeps
        each record's residue edit, see :func:`~talaria_storage.sequences.canonical.sequence_keys`),
        so a range of it is read with ``pack.residues(slot, start, end)``, which decodes only the
        blocks the range lies in (the refget server's sub-sequences).
        """
        reader, packs = self._reader(manifest.chunks[ci].hash)
        if reader.fastq:
            return None
        p, slot = reader.ref(ri)
        return packs[p], slot

    def record_header(self, manifest: Manifest, ci: int, ri: int) -> bytes:
        """Record ``ri`` of chunk ``ci``'s header (without ``>``), decoding none of its residues."""
        reader, _ = self._reader(manifest.chunks[ci].hash)
        return reader.header(ri)

    def records(
        self, *, version: str | None = None, file_index: int | None = None, with_taxa: bool = False
    ) -> Iterator[SequenceRecord]:
        """Records in original order (every file in import order, or one file). ``with_taxa``:
        each carries ``taxon_id``, as a looked-up record does (iteration does; export, which
        writes bytes only, does not pay for it)."""
        _, manifest = self.manifest(version)
        files = manifest.extra.get("files", [])
        chosen = range(len(files)) if file_index is None else [file_index]
        for i in chosen:
            if not 0 <= i < len(files):
                raise IndexError(f"{self.name}@{manifest.version} has {len(files)} file(s); no file {i}")
            runs = decode_order(self.store.get_chunk(SHA256Hash.from_hex(files[i]["order"])))
            for ci, first, length in runs:
                h = manifest.chunks[ci].hash
                records = self._chunk(h)
                if with_taxa:
                    taxa = self._reader(h)[0].taxids()
                    yield from (labelled(records[ri], taxa[ri]) for ri in range(first, first + length))
                else:
                    yield from records[first : first + length]

    def __iter__(self) -> Iterator[SequenceRecord]:
        return self.records(with_taxa=True)

    def _walk(
        self, manifest: Manifest
    ) -> Iterator[tuple[int, ChunkReader, Sequence[PackReader], list[SequenceDigests]]]:
        """Per chunk: its index, reader, packs and the digests of each record's sequence.

        Digests are computed once per pack slot, not per record: a sequence
        carried by many records (or chunks) is hashed once, and of another
        chunk's pack only the slots referred to are read.
        """
        by_pack: OrderedDict[SHA256Hash, dict[int, SequenceDigests]] = OrderedDict()
        for ci, entry in enumerate(manifest.chunks):
            reader, packs = self._reader(entry.hash)
            tables: list[dict[int, SequenceDigests]] = []
            for h in reader.pack_hashes():
                table = by_pack.get(h)
                if table is None:
                    table = by_pack[h] = {}
                    if len(by_pack) > self._cache_size:
                        by_pack.popitem(last=False)
                else:
                    by_pack.move_to_end(h)
                tables.append(table)
            refs = reader.refs()
            need: list[set[int]] = [set() for _ in packs]
            for p, slot in refs:
                if slot not in tables[p]:
                    need[p].add(slot)
            try:
                for pack, table, slots in zip(packs, tables, need):
                    if not slots:
                        continue
                    if max(slots) >= len(pack):
                        raise CompressionError(f"reference to slot {max(slots)} of a sequence pack of {len(pack)}")
                    if len(slots) >= pack.residue_blocks:  # decode each block once, whole
                        sequences = pack.sequences()
                        table.update((slot, digests(sequences[slot])) for slot in slots)
                    else:  # a few slots: their blocks only, in slot order
                        table.update((slot, digests(pack.residues(slot))) for slot in sorted(slots))
            except CompressionError as exc:
                raise CompressionError(f"chunk {entry.hash.to_hex()} of database '{self.name}': {exc}") from None
            yield ci, reader, packs, [tables[p][slot] for p, slot in refs]

    def entries(self, version: str | None = None) -> Iterator[RecordEntry]:
        """Every record of a version, in manifest chunk order, as a :class:`RecordEntry`.

        This is the stable way for other modules (diff, index, taxonomy) to walk a
        version without knowing how chunks are laid out. Residues are decoded
        once per pack, and each distinct sequence is hashed once.
        """
        _, manifest = self.manifest(version)
        for ci, reader, _, found in self._walk(manifest):
            for ri, (header, taxid, d) in enumerate(zip(reader.headers(), reader.taxids(), found)):
                yield RecordEntry(accession_from_header(header), header, d.sha256, taxid, ci, ri, d.refget, d.length)

    def sequence_entries(self, version: str | None = None) -> Iterator[tuple[RecordEntry, bytes | None]]:
        """:meth:`entries`, each with its canonical residues the first time its sequence is met
        (None for every later record carrying the same sequence).

        What a reduction reads: every distinct sequence once, with all the
        records that carry it, in one pass over the version's chunks.
        """
        _, manifest = self.manifest(version)
        seen: set[bytes] = set()
        for ci, reader, packs, found in self._walk(manifest):
            taxids = reader.taxids()
            for ri, (header, (p, slot), d) in enumerate(zip(reader.headers(), reader.refs(), found)):
                residues = None
                if d.sha256.digest not in seen:
                    seen.add(d.sha256.digest)
                    residues = canonical(packs[p].residues(slot))
                entry = RecordEntry(accession_from_header(header), header, d.sha256, taxids[ri], ci, ri, d.refget, d.length)
                yield entry, residues

    def export(
        self,
        out: BinaryIO,
        *,
        version: str | None = None,
        file_index: int | None = None,
        normalized: bool = False,
        width: int = 60,
        taxon: int | None = None,
        descendants: bool = False,
        taxonomy: Taxonomy | None = None,
        format: str | None = None,
    ) -> int:
        """Write records to ``out``; return bytes written.

        Default: byte-exact (the imported files, concatenated in import order, or
        ``file_index``; GenBank and EMBL files as their original text). ``normalized``:
        upper-case residues without whitespace, one line terminator ``\\n``, sequence lines
        of ``width``. ``taxon``: only the records of that taxon (with ``descendants``, of
        its subtree: needs ``taxonomy``), in chunk order. ``format``: ``"fasta"`` writes
        GenBank/EMBL records as FASTA (``>id definition``, residues upper case in lines of
        60, as Biopython's FASTA writer does) and FASTA records as they are; ``"genbank"``
        or ``"embl"`` asks for records imported from that format, byte-exact.
        """
        if taxon is not None:
            records: Iterable[SequenceRecord] = self.by_taxon(
                taxon, descendants=descendants, taxonomy=taxonomy, version=version
            )
        else:
            records = self.records(version=version, file_index=file_index)
        if normalized:
            return write_records(records, out, lambda r: _normalized(r, width))
        return write_records(records, out, record_formatter(format))

    def by_taxon(
        self,
        taxid: int,
        descendants: bool = False,
        *,
        taxonomy: Taxonomy | None = None,
        version: str | None = None,
    ) -> Iterator[SequenceRecord]:
        """Records labelled ``taxid`` (or, with ``descendants``, any taxon below it)."""
        if descendants:
            if taxonomy is None:
                raise StorageError("by_taxon(descendants=True) needs a Taxonomy (taxdump) to know the subtree")
            wanted = set(taxonomy.descendants(taxid))
        else:
            wanted = {taxid}
        _, manifest = self.manifest(version)
        for entry in manifest.chunks:
            if wanted.intersection(entry.taxa):
                reader, packs = self._reader(entry.hash)
                for record, t in zip(reader.records(packs), reader.taxids()):
                    if t in wanted:
                        yield record

    # ------------------------------------------------------------------------------ index

    def _prefix(self, manifest_hash: SHA256Hash) -> bytes:
        return b"m/" + manifest_hash.to_hex().encode() + b"/"

    def rebuild_index(self, version: str | None = None) -> dict[str, Any]:
        """Drop a version's look-up entries and build them again from its chunks (``index
        rebuild``); the entries are keyed by manifest, so no other version is touched."""
        h, manifest = self.manifest(version)
        self.index.delete_prefix(self._prefix(h))
        return self._ensure_index(h, manifest)

    def _ensure_index(self, manifest_hash: SHA256Hash, manifest: Manifest) -> dict[str, Any]:
        """Build a version's index entries unless whole ones are there; return its marker's info.

        Keys, under ``P = m/<manifest hex>/``; each is read with one point get,
        and its value is the positions of every record it names (u32 chunk
        index, u32 record index, big-endian, 8 bytes each, ascending)::

            P acc/<name>           P sha/<32-byte SHA-256>
            P sq/<refget SQ. id>   P md5/<16-byte MD5>
            P built                JSON {"unique_sequences": n, "layout": 4}, written last

        A name is one of the header's bare accessions or entry names
        (:func:`~talaria_storage.sequences.identifiers.indexed_names`); a look-up
        checks each candidate against its header, as it does the stored table's.

        Entries are trusted only under a marker of this layout: without one
        (a build that was interrupted) or with another (layout 1 kept one key
        per position, read with prefix scans, and its marker has no
        ``layout``), the version's entries are dropped and built again from
        its chunks. (The reverse is not guarded: a release that wrote layout
        1 trusts a layout-2 index and finds nothing in it; after going back
        to one, run ``talaria-storage index rebuild``.) Memory is bounded: up to
        ``INDEX_BUILD_KEYS`` keys are gathered, then written; a key an earlier
        batch wrote (an accession or sequence met again in a later chunk)
        gets the earlier positions in front, read back with one ``get_many``.
        """
        prefix = self._prefix(manifest_hash)
        marker = self.index.get(prefix + b"built")
        if marker is not None:
            info: dict[str, Any] = json.loads(marker)
            if info.get("layout") == INDEX_LAYOUT:
                return info
        self.index.delete_prefix(prefix)  # never trust a half-built index, or one of another layout
        sha = prefix + b"sha/"
        pending: dict[bytes, bytearray] = {}
        unique = 0
        written = False
        declared = declared_pattern(manifest.extra.get("id_regex"))
        for ci, reader, _, found in self._walk(manifest):
            for ri, (header, d) in enumerate(zip(reader.headers(), found)):
                pos = _POS.pack(ci, ri)
                accessions = [prefix + b"acc/" + name for name in record_names(header, declared)]
                for key in (
                    *accessions,
                    sha + d.sha256.digest,
                    prefix + b"sq/" + d.refget.encode(),
                    prefix + b"md5/" + bytes.fromhex(d.md5),
                ):
                    held = pending.get(key)
                    if held is None:
                        pending[key] = bytearray(pos)
                    else:
                        held += pos
            if len(pending) >= INDEX_BUILD_KEYS:
                unique += self._write_index_batch(pending, sha, merge=written)
                written = True
                pending = {}
        unique += self._write_index_batch(pending, sha, merge=written)
        info = {"unique_sequences": unique, "layout": INDEX_LAYOUT}
        self.index.write_batch([(prefix + b"built", json.dumps(info).encode())])
        return info

    def _write_index_batch(self, pending: dict[bytes, bytearray], sha_prefix: bytes, *, merge: bool) -> int:
        """Write gathered index entries (after those of earlier batches, with ``merge``); return
        how many of the ``sha_prefix`` keys are new (distinct sequences not counted before)."""
        keys = list(pending)
        earlier: list[bytes | None] = self.index.get_many(keys) if merge else [None] * len(keys)
        new_sequences = 0
        puts: list[tuple[bytes, bytes]] = []
        for key, before in zip(keys, earlier):
            if before is None:
                new_sequences += key.startswith(sha_prefix)
                puts.append((key, bytes(pending[key])))
            else:
                puts.append((key, before + pending[key]))
        self.index.write_batch(puts)
        return new_sequences

    def get_all(self, identifier: str, version: str | None = None) -> list[SequenceRecord]:
        """Every record ``identifier`` names (see :meth:`DatabaseSnapshot.positions`), in manifest order.

        Each call resolves ``version`` (HEAD when None) anew, reading its ref,
        so it sees a version published a moment ago by this process or any
        other writer. For many look-ups in one version take a
        :meth:`snapshot`, which resolves it once (about half the time of a
        warm look-up was that read).
        """
        return self.snapshot(version).get_all(identifier)

    def get(self, identifier: str, version: str | None = None) -> SequenceRecord:
        """The one record ``identifier`` names: :class:`RecordNotFound` naming the version when
        none does, :class:`AmbiguousIdentifier` listing them when several do (see :meth:`get_all`)."""
        return self.snapshot(version).get(identifier)

    def __getitem__(self, identifier: str) -> SequenceRecord:
        """``db[identifier]``: :meth:`get` in HEAD."""
        return self.get(identifier)

    def __contains__(self, identifier: object) -> bool:
        return isinstance(identifier, str) and bool(self.snapshot().positions(identifier))

    def __len__(self) -> int:
        """Records in HEAD."""
        return self.manifest()[1].records

    def keys(self, version: str | None = None) -> Iterator[str]:
        """Every record's id (its header's first word) in file order, as pyfastx's ``keys()``."""
        return self.snapshot(version).keys()

    def get_many(self, identifiers: Iterable[str], version: str | None = None) -> dict[str, list[SequenceRecord]]:
        """Records of many identifiers at once, each chunk decoded once (see :meth:`DatabaseSnapshot.get_many`)."""
        return self.snapshot(version).get_many(identifiers)

    def fetch(self, identifier: str, start: int = 0, end: int | None = None, version: str | None = None) -> str:
        """Residues ``[start, end)`` (0-based) of the record ``identifier`` names, canonical
        (upper case); only the blocks of its pack the range lies in are decoded."""
        return self.snapshot(version).fetch(identifier, start, end)

    def to_seqrecords(self, version: str | None = None) -> Iterator[Any]:
        """Every record as a Biopython ``SeqRecord``, in file order (``SeqIO.write`` takes them)."""
        return (record.to_seqrecord() for record in self.records(version=version, with_taxa=True))

    # ------------------------------------------------------------------------------ stats

    def stats(self, version: str | None = None) -> DatabaseStats:
        h, manifest = self.manifest(version)
        info = manifest.extra if "unique_sequences" in manifest.extra else self._ensure_index(h, manifest)
        stored = manifest.stored_bytes  # distinct record chunks, sequence packs and order objects
        input_bytes = sum(s.size for s in manifest.sources)
        logical = sum(int(f.get("bytes", 0)) for f in manifest.extra.get("files", []))
        return DatabaseStats(
            database=self.name, version=manifest.version, records=manifest.records,
            unique_sequences=int(info["unique_sequences"]), residues=manifest.residues,
            chunks=len({c.hash for c in manifest.chunks}), stored_bytes=stored, input_bytes=input_bytes, logical_bytes=logical,
            ratio=logical / stored if stored else 0.0,
        )


class VersionLookup(NamedTuple):
    """A version's look-up state: its stored index (None: it has none, or it is damaged), the
    first record ordinal of each chunk (and the total), and its ``--id-regex``."""

    table: LookupIndex | None
    starts: list[int]
    declared: re.Pattern[bytes] | None


class DatabaseSnapshot:
    """One version of a database, resolved once: look-ups that never re-read a ref.

    Made by :meth:`SequenceDatabase.snapshot`. ``SequenceDatabase.get``
    reads ``refs/<db>/HEAD`` on every call so that it sees a version
    published a moment ago; a snapshot pins the manifest it was made from,
    and its look-ups keep returning that version's records after an import
    (by this process or another) moves HEAD on -- take a new snapshot to
    see it. A version's manifest and objects are immutable, so a snapshot
    stays valid as long as they are in the store (a version deleted meanwhile
    is collected by GC after its grace period; a look-up that needs one of
    its objects then fails with :class:`StorageError` -- what the caches
    still hold is that version's -- and never returns other records).

    A version imported with a stored look-up table (``manifest.lookup``)
    answers from it: one partition and the record's chunk per look-up,
    nothing built. Each candidate the table gives is checked against the
    record (its header names the identifier, or its sequence has the
    digest), so a fingerprint collision or a damaged object never yields a
    wrong record; an unreadable partition falls back, with one warning, to
    the local index. Older versions use the local index, built once from
    the chunks when the snapshot is made. Snapshots share their database's
    caches, so they are cheap to make.
    """

    def __init__(self, database: SequenceDatabase, manifest_hash: SHA256Hash, manifest: Manifest) -> None:
        self.database = database
        self.manifest_hash = manifest_hash
        self.manifest = manifest
        lookup = database._version_lookup(manifest_hash, manifest)
        self._table, self._starts, self._declared = lookup
        if self._table is None:
            database._ensure_index(manifest_hash, manifest)
        self._prefix = database._prefix(manifest_hash)
        # The last record chunk a look-up read (chunk index, reader, packs): its header check
        # and its record then take the reader from the database's cache once, not twice.
        self._last_chunk: tuple[int, ChunkReader, Sequence[PackReader]] | None = None

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def where(self) -> str:
        return f"{self.database.name}@{self.manifest.version}"

    def positions(self, identifier: str) -> list[tuple[int, int]]:
        """(chunk index, record index) of every record ``identifier`` names, in manifest order.

        A digest (SHA-256 hex, ``SQ.``/``ga4gh:SQ.``, ``md5:``) is looked up
        as one; ``#N`` is the N-th record in file order (1-based); an
        identifier that is not a digest, or a digest no record has, as a
        name: a header's first word, an accession (without ``.version``: the
        records of its highest version), a UniProt entry name (see
        :mod:`talaria_storage.sequences.identifiers`); each Ctrl-A-joined
        part of an nr-style header is one. The empty string names nothing.
        """
        if not identifier:
            return []  # an empty header names nothing: such a record is found by digest or #N
        if identifier.startswith("#") and identifier[1:].isdigit():
            return self._at_position(int(identifier[1:]))
        sid = sequence_id_in(identifier) if isinstance(identifier, str) else None
        if self._table is not None:
            try:
                if sid is not None:
                    found = self._digest_positions(sid)
                    if found:
                        return found
                return self._name_positions(identifier, self._table_candidates)
            except LookupTableDamaged as exc:
                _log.warning("%s", exc)
                self._table = None
                lookups = self.database._lookups
                lookups[self.manifest_hash] = lookups[self.manifest_hash]._replace(table=None)
                self.database._ensure_index(self.manifest_hash, self.manifest)
        return self._index_positions(identifier, sid)

    def _table_candidates(self, key: bytes) -> list[tuple[int, int]]:
        """The records whose row in the stored table matches name ``key`` (to be checked)."""
        assert self._table is not None
        return self._places(self._table.find(name_fingerprint(key)))

    def _name_positions(
        self, identifier: str, candidates: Callable[[bytes], Iterable[tuple[int, int]]]
    ) -> list[tuple[int, int]]:
        """The records ``identifier`` names as a name: the ``candidates`` of each key it probes
        (:func:`~talaria_storage.sequences.identifiers.probe_names`), each checked against
        its header; the exact names, else the records of the highest ``.version``."""
        name = identifier.encode("utf-8", "surrogateescape")
        declared = self._declared
        keys = probe_names(name, declared)
        if len(keys) == 1:  # as a rule (one first word, no declared keys): no set, no sort
            found = list(candidates(keys[0]))
            if len(found) > 1:
                found.sort()
        else:
            found = sorted({position for key in keys for position in candidates(key)})
        exact: list[tuple[int, int]] = []
        versioned: list[tuple[int, tuple[int, int]]] = []
        for position in found:
            match = name_match(name, self._chunk_reader(position[0])[0].header(position[1]), declared)
            if match == EXACT:
                exact.append(position)
            elif match is not None:
                versioned.append((match, position))
        if exact or not versioned:
            return exact
        latest = max(v for v, _ in versioned)
        return [position for v, position in versioned if v == latest]

    def _digest_positions(self, sid: SequenceId) -> list[tuple[int, int]]:
        assert self._table is not None
        if sid.kind == "refget":
            digest = base64.urlsafe_b64decode(sid.value[3:])
        else:
            digest = bytes.fromhex(sid.value)
        found: list[tuple[int, int]] = []
        checked: dict[tuple[SHA256Hash, int], bool] = {}
        for ci, ri in self._places(self._table.find(digest_fingerprint(digest))):
            reader, packs = self._chunk_reader(ci)
            p, slot = reader.ref(ri)
            key = (reader.pack_hashes()[p], slot)
            if key not in checked:
                checked[key] = sid.matches(digests(packs[p].residues(slot)))
            if checked[key]:
                found.append((ci, ri))
        return found

    def _places(self, ordinals: Iterable[int]) -> list[tuple[int, int]]:
        """(chunk index, record index) of record ordinals, in order; ordinals past the version's
        records (a damaged table: a candidate is checked anyway) are left out."""
        starts = self._starts
        out = []
        for ordinal in sorted(ordinals):
            if ordinal < starts[-1]:
                ci = bisect_right(starts, ordinal) - 1
                out.append((ci, ordinal - starts[ci]))
        return out

    def _index_positions(self, identifier: str, sid: SequenceId | None) -> list[tuple[int, int]]:
        """:meth:`positions` through the local index (versions without a stored table)."""
        index = self.database.index
        value = None
        if sid is not None:
            if sid.kind == "sha256":
                value = index.get(self._prefix + b"sha/" + bytes.fromhex(sid.value))
            elif sid.kind == "md5":
                value = index.get(self._prefix + b"md5/" + bytes.fromhex(sid.value))
            else:
                value = index.get(self._prefix + b"sq/" + sid.value.encode())
            if value is not None:
                return list(_POS.iter_unpack(value))
        acc = self._prefix + b"acc/"
        return self._name_positions(identifier, lambda key: _POS.iter_unpack(index.get(acc + key) or b""))

    def _at_position(self, number: int) -> list[tuple[int, int]]:
        """(chunk, record) of the ``number``-th record (1-based) in file order, as export writes
        them: how a record without a name (an empty header) is reached. Reads the files' order
        objects up to that record, no record chunk."""
        if number < 1:
            return []
        seen = 0
        for ci, first, length in self._runs():
            if seen + length >= number:
                return [(ci, first + number - seen - 1)]
            seen += length
        return []

    def _runs(self) -> Iterator[tuple[int, int, int]]:
        """(chunk index, first record, records) runs of the version in file order."""
        for entry in self.manifest.extra.get("files", []):
            yield from decode_order(self.database.store.get_chunk(SHA256Hash.from_hex(entry["order"])))

    def _chunk_reader(self, ci: int) -> tuple[ChunkReader, Sequence[PackReader]]:
        """Record chunk ``ci``'s reader and packs (the database's :meth:`~SequenceDatabase._reader`)."""
        last = self._last_chunk
        if last is not None and last[0] == ci:
            return last[1], last[2]
        reader, packs = self.database._reader(self.manifest.chunks[ci].hash)
        self._last_chunk = (ci, reader, packs)
        return reader, packs

    def get_all(self, identifier: str) -> list[SequenceRecord]:
        """Records of this version named by ``identifier`` (see :meth:`positions`), each with its
        ``taxon_id``."""
        found = []
        for ci, ri in self.positions(identifier):
            reader, packs = self._chunk_reader(ci)
            found.append(reader.record(ri, packs, with_taxon=True))
        return found

    def get(self, identifier: str) -> SequenceRecord:
        """The one record ``identifier`` names (see :meth:`SequenceDatabase.get`)."""
        found = self.get_all(identifier)
        if len(found) == 1:
            return found[0]
        if not found:
            raise RecordNotFound(
                f"no record of {self.where} answers to {identifier!r}: give a header's first word, an "
                "accession (with or without .version), a UniProt entry name, a SHA-256, SQ./ga4gh:SQ. or "
                "md5: digest, or #N for the N-th record"
            )
        names = ", ".join(r.id or "(no id)" for r in found[:5]) + (", ..." if len(found) > 5 else "")
        raise AmbiguousIdentifier(
            f"{identifier!r} names {len(found)} records of {self.where} ({names}): "
            "get_all() gives them all, or ask by a more specific identifier"
        )

    def __getitem__(self, identifier: str) -> SequenceRecord:
        """``snapshot[identifier]``: :meth:`get`."""
        return self.get(identifier)

    def __contains__(self, identifier: object) -> bool:
        return isinstance(identifier, str) and bool(self.positions(identifier))

    def __len__(self) -> int:
        return self.manifest.records

    def __iter__(self) -> Iterator[SequenceRecord]:
        return self.database.records(version=self.manifest.version, with_taxa=True)

    def keys(self) -> Iterator[str]:
        """Every record's id (first word of its header) in file order; reads headers only."""
        for ci, first, length in self._runs():
            reader, _ = self.database._reader(self.manifest.chunks[ci].hash)
            for ri in range(first, first + length):
                words = reader.header(ri).partition(MARK)[0].split(None, 1)
                yield words[0].decode("utf-8", "replace") if words else ""

    def get_many(self, identifiers: Iterable[str]) -> dict[str, list[SequenceRecord]]:
        """identifier -> its records (:meth:`get_all`), for many at once: the positions are
        resolved first, then read chunk by chunk, a chunk that many of them fall in decoded
        whole and once (a few: each record's blocks alone)."""
        wanted = {identifier: self.positions(identifier) for identifier in dict.fromkeys(identifiers)}
        by_chunk: dict[int, set[int]] = {}
        for found in wanted.values():
            for ci, ri in found:
                by_chunk.setdefault(ci, set()).add(ri)
        read: dict[tuple[int, int], SequenceRecord] = {}
        db = self.database
        for ci, records in sorted(by_chunk.items()):
            entry = self.manifest.chunks[ci]
            if len(records) * 16 >= entry.records:
                whole = db._chunk(entry.hash)
                reader, _ = db._reader(entry.hash)
                read.update(((ci, ri), labelled(whole[ri], reader.taxid(ri))) for ri in records)
            else:
                read.update(((ci, ri), db._record_at(self.manifest, ci, ri, with_taxon=True)) for ri in sorted(records))
        return {identifier: [read[p] for p in found] for identifier, found in wanted.items()}

    def fetch(self, identifier: str, start: int = 0, end: int | None = None) -> str:
        """Canonical residues ``[start, end)`` of the one record ``identifier`` names (see
        :meth:`SequenceDatabase.fetch`)."""
        positions = self.positions(identifier)
        if len(positions) != 1:
            self.get(identifier)  # the error that says why (none, or which several)
        ci, ri = positions[0]
        slot = self.database.canonical_slot(self.manifest, ci, ri)
        if slot is None:  # FASTQ: the slot holds residues as written
            return canonical(self.database._record_at(self.manifest, ci, ri).residues)[start:end].decode("ascii")
        pack, index = slot
        return pack.residues(index, max(start, 0), None if end is None else max(end, 0)).decode("ascii")

    def residues_of(self, sequence: SHA256Hash) -> bytes | None:
        """The canonical residues of the sequence whose SHA-256 is ``sequence``, or None when no
        record of this version carries it; decodes only the blocks its pack slot lies in."""
        positions = self.positions(sequence.to_hex())
        if not positions:
            return None
        ci, ri = positions[0]
        reader, packs = self.database._reader(self.manifest.chunks[ci].hash)
        p, slot = reader.ref(ri)
        return canonical(packs[p].residues(slot))


class _Packs(Sequence[PackReader]):
    """The packs of a record chunk's pack table, each opened (through the database's reader
    cache) when first asked for, so a record's look-up opens only its own pack."""

    __slots__ = ("_hashes", "_open")

    def __init__(self, open_pack: Callable[[SHA256Hash], PackReader], hashes: list[SHA256Hash]) -> None:
        self._open = open_pack
        self._hashes = hashes

    def __len__(self) -> int:
        return len(self._hashes)

    def __getitem__(self, index: int) -> PackReader:  # type: ignore[override]
        return self._open(self._hashes[index])

    def __iter__(self) -> Iterator[PackReader]:
        return (self._open(h) for h in self._hashes)


EXPORT_FORMATS = ("fasta", "genbank", "embl")


def record_formatter(format: str | None = None) -> Callable[[SequenceRecord], bytes]:
    """How export writes a stored record: byte-exact (None) or in one of ``EXPORT_FORMATS``."""
    if format is None:
        return _exact
    if format not in EXPORT_FORMATS:
        raise StorageError(f"unknown export format {format!r}: use one of {', '.join(EXPORT_FORMATS)}")
    if format == "fasta":
        return _as_fasta
    return lambda record: _as_flatfile(record, format)


def _exact(record: SequenceRecord) -> bytes:
    if isinstance(record, FastaRecord) and is_stored_flatfile(record.header):
        return from_stored(record)
    return format_record(record)


def _as_fasta(record: SequenceRecord) -> bytes:
    if isinstance(record, FastqRecord):
        raise StorageError("a FASTQ record has no FASTA form here: export it as it is, or use --normalized")
    if is_stored_flatfile(record.header):
        return fasta_of(record)
    return format_record(record)


def _as_flatfile(record: SequenceRecord, format: str) -> bytes:
    if isinstance(record, FastaRecord) and is_stored_flatfile(record.header) and stored_flavour(record) == format:
        return from_stored(record)
    name = record.header.split(maxsplit=1)[0].decode("utf-8", "replace") if record.header.strip() else "(no id)"
    kind = {"genbank": "a GenBank", "embl": "an EMBL"}[format]
    raise StorageError(
        f"record {name} was not imported from {kind} file, so there is no {format} text to give back: "
        "export it as FASTA (--format fasta) or byte-exact (no --format)"
    )


def _normalized(record: SequenceRecord, width: int) -> bytes:
    seq = record.residues.translate(None, b" \t\r\n\x0b\x0c").upper()
    if isinstance(record, FastqRecord):
        return b"@" + record.header + b"\n" + seq + b"\n+\n" + record.qualities + b"\n"
    lines = [b">" + record.header.partition(MARK)[0]]
    if width and width > 0:
        lines.extend(seq[i : i + width] for i in range(0, len(seq), width))
    elif seq:
        lines.append(seq)
    return b"\n".join(lines) + b"\n"


def parse(db: SequenceDatabase, version: str | None = None) -> Iterator[Any]:
    """A version's records as Biopython ``SeqRecord`` objects in file order, as ``Bio.SeqIO.parse``
    gives a file's: ``SeqIO.write(talaria_storage.parse(db), out, "fasta")``."""
    return db.to_seqrecords(version)


@dataclass(frozen=True)
class DictionaryTexts:
    """Where a Dask worker reads the previous version's chunks a new chunk is compressed
    against: database ``name`` of the store it has open (see :class:`DictionaryBases`)."""

    name: str

    def bind(self, store: Store) -> Callable[[bytes], tuple[bytes, ...]]:
        return open_database(store, self.name).dictionary_texts


def open_database(
    store_or_location: Store | str | Path, name: str, *, kind: type[SequenceDatabase] | None = None
) -> SequenceDatabase:
    """The sequence database ``name`` of a store, or of the store a location names.

    ``kind`` is the class to open it as: a layer above adds to the database
    this way (the API's ``open_database`` gives a reducible database).

    Every database of one store shares the store's lookup index
    (:func:`~talaria_storage.index.lookup_index.lookup_index`). Given a
    location (``./store``, ``s3://bucket/prefix``, a ``storage.toml``), the
    store is opened as :func:`~talaria_storage.open_store` opens it and
    belongs to the database: :meth:`SequenceDatabase.close` (or a ``with``
    block) closes it.
    """
    if isinstance(store_or_location, Store):
        store, owned = store_or_location, False
    else:
        store, owned = open_store(store_or_location), True
    return (kind or SequenceDatabase)(store, name, index=lookup_index(store), threads=store.threads, owns_store=owned)


def rebuild_lookup_index(store: Store, database: str | None = None) -> list[dict[str, Any]]:
    """Rebuild the store's lookup index from the manifests (``talaria-storage index rebuild``).

    Every database (the index is dropped whole first, entries of deleted
    versions included) or one; the store-wide sequence map is refilled too.
    One row per version rebuilt: database, version, records, unique sequences.
    """
    catalog = VersionCatalog(store)
    if database is not None:
        catalog.resolve(database)  # unknown database: one line naming the known ones
        names = [database]
    else:
        names = catalog.databases()
        lookup_index(store).delete_prefix(b"")
    StoredSequences(store, lookup_index(store)).refresh()
    rows = []
    for name in names:
        db = open_database(store, name)
        for info in catalog.versions(name):
            built = db.rebuild_index(info.version)
            rows.append(
                {
                    "database": name,
                    "version": info.version,
                    "records": db.manifest(info.version)[1].records,
                    "unique_sequences": int(built["unique_sequences"]),
                }
            )
    return rows


def _dictionary_resolver(db: SequenceDatabase) -> Callable[[list[SHA256Hash], int], bytes]:
    """``db._dictionary_text`` for the chunk readers ``db`` caches, through a weak reference:
    a bound method would make a reference cycle (see ``SequenceDatabase._reader``)."""
    owner = weakref.ref(db)

    def resolve(hashes: list[SHA256Hash], stream_id: int) -> bytes:
        found = owner()
        if found is None:
            raise StorageError("the database this chunk was read through is closed; read it again")
        return found._dictionary_text(hashes, stream_id)

    return resolve
