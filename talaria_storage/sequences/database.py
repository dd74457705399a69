"""SequenceDatabase: import FASTA/FASTQ files as versions, export them byte-exactly, look records up.

Import (DESIGN.md §4)
---------------------
Records are streamed (bounded memory), labelled with a taxon and chunked by
:class:`talaria_storage.sequences.chunking.TaxonChunker` (grouped by taxon,
content-defined boundaries from each record's canonical sequence hash, small
taxa packed together; see that module). Records of different files never
share a chunk: the chunker is run once per file.

Each chunk is encoded with :func:`chunk_format.encode_chunk` and stored with
``store_chunk(data, compress=False)`` (the chunk format compresses itself).
The original record order of each file is an *order object* (see
:mod:`talaria_storage.sequences.order`) stored in ``chunks/`` and named by
``manifest.extra["files"][i]["order"]``. The manifest is published through
:meth:`VersionCatalog.publish` against the HEAD read when the import began;
a failed import publishes nothing (its stored chunks are unreferenced and
collectable) and can simply be re-run.

Look-ups go through a :class:`ChunkIndex` built lazily per manifest from
the chunks; a ``built`` marker key, written last, says an index is whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from talaria_storage.errors import InputFormatError, StorageError
from talaria_storage.hashing import SHA256Hash
from talaria_storage.index import ChunkIndex, open_index
from talaria_storage.keys import ref_key
from talaria_storage.sequences.canonical import (
    InvalidSequenceId,
    digests,
    parse_sequence_id,
    sequence_hash,
)
from talaria_storage.sequences.chunk_format import ChunkCodec, ChunkReader, encode_chunk
from talaria_storage.sequences.chunking import ChunkingPolicy, PlannedChunk, TaxonChunker
from talaria_storage.sequences.fasta import (
    FastqRecord,
    SequenceRecord,
    open_input,
    read_fasta,
    read_fastq,
    sniff_format,
    write_records,
)
from talaria_storage.sequences.manifest import ChunkEntry, Manifest, SourceFile
from talaria_storage.sequences.order import decode_order, encode_order
from talaria_storage.sequences.taxonomy import (
    AccessionTaxonMap,
    Taxonomy,
    accession_from_header,
    taxon_from_header,
)
from talaria_storage.sequences.versions import HEAD, VersionCatalog, VersionInfo

if TYPE_CHECKING:
    from talaria_storage.store import Store

_POS = struct.Struct(">II")  # (chunk index, record index): big-endian so keys sort by position


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


@dataclass(frozen=True, slots=True)
class RecordEntry:
    """One record of a version as look-ups, diffs and indexes see it (no residues)."""

    accession: str
    header: bytes
    sequence: SHA256Hash  # canonical sequence hash (upper case, no whitespace)
    taxid: int  # 0 = none
    chunk: int  # index into the manifest's chunk list
    index: int  # record index inside that chunk


@dataclass(frozen=True, slots=True)
class DatabaseStats:
    database: str
    version: str
    records: int
    unique_sequences: int
    residues: int
    chunks: int
    stored_bytes: int  # distinct chunks + order objects, as serialised
    input_bytes: int  # source files as read (compressed, if they were)
    logical_bytes: int  # uncompressed FASTA/FASTQ bytes (what a byte-exact export writes)
    ratio: float  # logical_bytes / stored_bytes


class _HashingReader(io.RawIOBase):
    """Counts and hashes the raw bytes of an input file as they are read."""

    def __init__(self, raw: BinaryIO, hashed: bool = True) -> None:
        self.raw = raw
        self.sha = hashlib.sha256() if hashed else None
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        n = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            if self.sha is not None:
                self.sha.update(memoryview(buffer)[:n])
            self.size += n
        return n or 0

    def finish(self) -> None:
        buf = bytearray(1 << 20)
        while self.readinto(buf):
            pass


class SequenceDatabase:
    """One named database in a store: its versions, import, export and look-ups."""

    def __init__(
        self,
        store: Store,
        name: str,
        *,
        index: ChunkIndex | None = None,
        codec: ChunkCodec | None = None,
        chunking: ChunkingPolicy | None = None,
        threads: int = 4,
    ) -> None:
        self.store = store
        self.name = name
        self.catalog = VersionCatalog(store)
        self.index = index if index is not None else open_index("memory", None)
        self.codec = codec or ChunkCodec()
        self.chunking = chunking or ChunkingPolicy()
        self.threads = max(1, threads)
        self._manifests: dict[SHA256Hash, Manifest] = {}
        self._chunk_cache: OrderedDict[SHA256Hash, list[SequenceRecord]] = OrderedDict()
        self._cache_size = 16

    # ------------------------------------------------------------------------------ import

    def import_files(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        version: str | None = None,
        taxonomy: str = "header",
        taxon: int | None = None,
        prefix_separator: str | None = None,
    ) -> ImportResult:
        """Import files as a new version and make it HEAD; see the module docstring.

        ``taxonomy``: ``"header"`` (UniProt ``OX=``; ``taxon`` is the fall-back), a path to
        an accession->taxid map (accession from the header; ``taxon`` is the fall-back), or
        ``"none"`` (every record gets ``taxon``, or no taxon). ``prefix_separator`` lets a map
        keyed by genome name label ``G000005825_1`` through ``G000005825`` (Web of Life).
        """
        started = time.perf_counter()
        files_in: list[str] = [str(os.fspath(p)) for p in paths]
        if not files_in:
            raise StorageError("nothing to import: give at least one file")
        version = version or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        expected_head = self.catalog.head(self.name)
        fallback = int(taxon or 0)
        if taxonomy == "header":
            def label(header: bytes) -> int:
                found = taxon_from_header(header)
                return found if found is not None else fallback
        elif taxonomy == "none":
            def label(header: bytes) -> int:
                return fallback
        else:
            mapping = AccessionTaxonMap.from_file(taxonomy, prefix_separator=prefix_separator)

            def label(header: bytes) -> int:
                found = mapping.get(accession_from_header(header))
                return found if found is not None else fallback

        entries: list[ChunkEntry | Future[tuple[ChunkEntry, bool]]] = []
        sources: list[SourceFile] = []
        files: list[dict[str, Any]] = []
        new_chunks = new_bytes = 0
        with ThreadPoolExecutor(self.threads) as pool:
            for file_index, path in enumerate(files_in):
                source, order_hex, order_size, logical = self._import_file(path, file_index, label, entries, pool)
                sources.append(source)
                files.append({"name": source.name, "order": order_hex, "order_size": order_size,
                              "records": source.records, "bytes": logical})
            final: list[ChunkEntry] = []
            for item in entries:
                if isinstance(item, Future):
                    entry, new = item.result()
                    new_chunks += new
                    new_bytes += entry.size if new else 0
                    final.append(entry)
                else:
                    final.append(item)
        manifest = Manifest(
            database=self.name,
            version=version,
            created=time.time(),
            sources=tuple(sources),
            chunks=tuple(final),
            parent=expected_head,
            extra={"files": files, "chunking": {"min": self.chunking.min_size, "target": self.chunking.target_size,
                                "max": self.chunking.max_size}, "codec": self.codec.to_dict()},
        )
        manifest_hash = self.catalog.publish(manifest, expected_head)
        return ImportResult(
            database=self.name, version=version, manifest=manifest_hash, records=manifest.records,
            chunks=len(final), new_chunks=new_chunks, new_bytes=new_bytes,
            input_bytes=sum(s.size for s in sources), logical_bytes=sum(f["bytes"] for f in files), seconds=time.perf_counter() - started,
        )

    def _store_encoded(self, records: list[SequenceRecord], taxids: list[int], file_index: int) -> tuple[ChunkEntry, bool]:
        data = encode_chunk(records, taxids, self.codec)
        expected = SHA256Hash(hashlib.sha256(data).digest())
        new = not self.store.has_chunk(expected)
        h = self.store.store_chunk(data, compress=False)
        taxa = tuple(sorted({t for t in taxids if t}))
        entry = ChunkEntry(h, taxa, len(records), sum(len(r.residues) for r in records), len(data), file_index)
        return entry, new

    def _import_file(
        self,
        path: str,
        file_index: int,
        label: Callable[[bytes], int],
        entries: list[ChunkEntry | Future[tuple[ChunkEntry, bool]]],
        pool: ThreadPoolExecutor,
    ) -> tuple[SourceFile, str, int, int]:
        """Chunk one file into ``entries``; store its order object.

        Returns (source, order object hex, order object size, uncompressed bytes).
        """
        fmt = sniff_format(path)
        if fmt not in ("fasta", "fastq", "empty"):
            raise InputFormatError(path, 1, f"{fmt} input is not read byte-exactly; convert it to FASTA first")
        # where each input record went: ordinal -> (chunk index, record index)
        where_chunk = array("Q")
        where_record = array("Q")
        pending: list[Future[tuple[ChunkEntry, bool]]] = []
        count = 0
        logical = 0

        def place(planned: list[PlannedChunk]) -> None:
            for chunk in planned:
                ci = len(entries)
                grow = max(chunk.ordinals) + 1 - len(where_chunk)
                if grow > 0:
                    where_chunk.extend([0] * grow)
                    where_record.extend([0] * grow)
                for ri, ordinal in enumerate(chunk.ordinals):
                    where_chunk[ordinal] = ci
                    where_record[ordinal] = ri
                fut = pool.submit(self._store_encoded, list(chunk.records), list(chunk.taxids), file_index)
                entries.append(fut)
                pending.append(fut)
                if len(pending) > 2 * self.threads:
                    pending.pop(0).result()

        with open(path, "rb") as raw, TaxonChunker(self.chunking) as chunker:
            reader = _HashingReader(raw)
            if fmt != "empty":
                with open_input(io.BufferedReader(reader, buffer_size=1 << 20), name=path) as plain:
                    counter = _HashingReader(plain, hashed=False)  # counts the decompressed bytes
                    stream = io.BufferedReader(counter, buffer_size=1 << 20)
                    records: Iterator[SequenceRecord] = (
                        read_fasta(stream, name=path) if fmt == "fasta" else read_fastq(stream, name=path)
                    )
                    for record in records:
                        count += 1
                        done = chunker.add(record, label(record.header), sequence_hash(record.residues))
                        if done:
                            place(done)
                    counter.finish()
                    logical = counter.size
            reader.finish()
            place(chunker.finish())
        runs: list[tuple[int, int, int]] = []
        for ordinal in range(count):
            ci, ri = where_chunk[ordinal], where_record[ordinal]
            if runs and runs[-1][0] == ci and runs[-1][1] + runs[-1][2] == ri:
                last = runs[-1]
                runs[-1] = (ci, last[1], last[2] + 1)
            else:
                runs.append((ci, ri, 1))
        order = encode_order(runs)
        order_hash = self.store.store_chunk(order, compress=False)
        assert reader.sha is not None
        source = SourceFile(
            os.path.basename(path), reader.size, reader.sha.hexdigest(), "fastq" if fmt == "fastq" else "fasta", count
        )
        return source, order_hash.to_hex(), len(order), logical

    # ------------------------------------------------------------------------------ reading

    def versions(self) -> list[VersionInfo]:
        return self.catalog.versions(self.name)

    def manifest(self, version: str | None = None) -> tuple[SHA256Hash, Manifest]:
        h = self.store.refs.get(ref_key(self.name, version or HEAD))
        if h is None:
            return self.catalog.resolve(self.name, version)  # raises VersionNotFound with the known names
        if h not in self._manifests:
            self._manifests[h] = self.catalog.load(h)
        return h, self._manifests[h]

    def _chunk(self, h: SHA256Hash) -> list[SequenceRecord]:
        cached = self._chunk_cache.get(h)
        if cached is not None:
            self._chunk_cache.move_to_end(h)
            return cached
        records = ChunkReader(self.store.get_chunk(h)).records()
        self._chunk_cache[h] = records
        if len(self._chunk_cache) > self._cache_size:
            self._chunk_cache.popitem(last=False)
        return records

    def _record_at(self, manifest: Manifest, ci: int, ri: int) -> SequenceRecord:
        cached = self._chunk_cache.get(manifest.chunks[ci].hash)
        if cached is not None:
            return cached[ri]
        return ChunkReader(self.store.get_chunk(manifest.chunks[ci].hash)).record(ri)

    def records(self, *, version: str | None = None, file_index: int | None = None) -> Iterator[SequenceRecord]:
        """Records in original order (every file in import order, or one file)."""
        _, manifest = self.manifest(version)
        files = manifest.extra.get("files", [])
        chosen = range(len(files)) if file_index is None else [file_index]
        for i in chosen:
            if not 0 <= i < len(files):
                raise IndexError(f"{self.name}@{manifest.version} has {len(files)} file(s); no file {i}")
            runs = decode_order(self.store.get_chunk(SHA256Hash.from_hex(files[i]["order"])))
            for ci, first, length in runs:
                records = self._chunk(manifest.chunks[ci].hash)
                yield from records[first : first + length]

    def __iter__(self) -> Iterator[SequenceRecord]:
        return self.records()

    def entries(self, version: str | None = None) -> Iterator[RecordEntry]:
        """Every record of a version, in manifest chunk order, as a :class:`RecordEntry`.

        This is the stable way for other modules (diff, index, taxonomy) to walk a
        version without knowing how chunks are laid out.
        """
        _, manifest = self.manifest(version)
        for ci, entry in enumerate(manifest.chunks):
            reader = ChunkReader(self.store.get_chunk(entry.hash))
            for ri, (header, record, taxid) in enumerate(zip(reader.headers(), reader.records(), reader.taxids())):
                yield RecordEntry(
                    accession_from_header(header), header, sequence_hash(record.residues), taxid, ci, ri
                )

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
    ) -> int:
        """Write records to ``out``; return bytes written.

        Default: byte-exact (the imported files, concatenated in import order, or
        ``file_index``). ``normalized``: upper-case residues without whitespace, one line
        terminator ``\\n``, sequence lines of ``width``. ``taxon``: only the records of
        that taxon (with ``descendants``, of its subtree: needs ``taxonomy``), in chunk order.
        """
        if taxon is not None:
            records: Iterable[SequenceRecord] = self.by_taxon(
                taxon, descendants=descendants, taxonomy=taxonomy, version=version
            )
        else:
            records = self.records(version=version, file_index=file_index)
        if normalized:
            return write_records(records, out, lambda r: _normalized(r, width))
        return write_records(records, out)

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
                reader = ChunkReader(self.store.get_chunk(entry.hash))
                records = reader.records()
                for record, t in zip(records, reader.taxids()):
                    if t in wanted:
                        yield record

    # ------------------------------------------------------------------------------ index

    def _prefix(self, manifest_hash: SHA256Hash) -> bytes:
        return b"m/" + manifest_hash.to_hex().encode() + b"/"

    def _ensure_index(self, manifest_hash: SHA256Hash, manifest: Manifest) -> dict[str, Any]:
        prefix = self._prefix(manifest_hash)
        marker = self.index.get(prefix + b"built")
        if marker is not None:
            return json.loads(marker)
        self.index.delete_prefix(prefix)  # never trust a half-built index
        unique: set[bytes] = set()
        for ci, entry in enumerate(manifest.chunks):
            reader = ChunkReader(self.store.get_chunk(entry.hash))
            puts: list[tuple[bytes, bytes]] = []
            for ri, (header, record) in enumerate(zip(reader.headers(), reader.records())):
                pos = _POS.pack(ci, ri)
                d = digests(record.residues)
                unique.add(d.sha256.digest)
                acc = accession_from_header(header).encode("utf-8", "surrogateescape")
                puts.append((prefix + b"acc/" + acc + b"\x00" + pos, b""))
                puts.append((prefix + b"sha/" + d.sha256.digest + pos, b""))
                puts.append((prefix + b"sq/" + d.refget.encode() + b"\x00" + pos, b""))
                puts.append((prefix + b"md5/" + bytes.fromhex(d.md5) + pos, b""))
            self.index.write_batch(puts)
        info = {"unique_sequences": len(unique)}
        self.index.write_batch([(prefix + b"built", json.dumps(info).encode())])
        return info

    def _positions(self, key_prefix: bytes) -> list[tuple[int, int]]:
        return [_POS.unpack(key[-8:]) for key, _ in self.index.scan(key_prefix)]

    def get(self, identifier: str, version: str | None = None) -> list[SequenceRecord]:
        """Records named by an accession, a SHA-256 hex, ``SQ.``/``ga4gh:SQ.`` or ``md5:`` digest."""
        h, manifest = self.manifest(version)
        self._ensure_index(h, manifest)
        prefix = self._prefix(h)
        try:
            sid = parse_sequence_id(identifier)
        except InvalidSequenceId:
            sid = None
        positions: list[tuple[int, int]] = []
        if sid is not None:
            if sid.kind == "sha256":
                positions = self._positions(prefix + b"sha/" + bytes.fromhex(sid.value))
            elif sid.kind == "md5":
                positions = self._positions(prefix + b"md5/" + bytes.fromhex(sid.value))
            else:
                positions = self._positions(prefix + b"sq/" + sid.value.encode() + b"\x00")
        if not positions:
            acc = identifier.encode("utf-8", "surrogateescape")
            positions = self._positions(prefix + b"acc/" + acc + b"\x00")
        return [self._record_at(manifest, ci, ri) for ci, ri in positions]

    def __getitem__(self, accession: str) -> SequenceRecord:
        found = self.get(accession)
        if not found:
            raise KeyError(accession)
        return found[0]

    # ------------------------------------------------------------------------------ stats

    def stats(self, version: str | None = None) -> DatabaseStats:
        h, manifest = self.manifest(version)
        info = self._ensure_index(h, manifest)
        sizes = {c.hash: c.size for c in manifest.chunks}
        stored = sum(sizes.values()) + sum(int(f.get("order_size", 0)) for f in manifest.extra.get("files", []))
        input_bytes = sum(s.size for s in manifest.sources)
        logical = sum(int(f.get("bytes", 0)) for f in manifest.extra.get("files", []))
        return DatabaseStats(
            database=self.name, version=manifest.version, records=manifest.records,
            unique_sequences=int(info["unique_sequences"]), residues=manifest.residues,
            chunks=len(sizes), stored_bytes=stored, input_bytes=input_bytes, logical_bytes=logical,
            ratio=logical / stored if stored else 0.0,
        )


def _normalized(record: SequenceRecord, width: int) -> bytes:
    seq = record.residues.translate(None, b" \t\r\n\x0b\x0c").upper()
    if isinstance(record, FastqRecord):
        return b"@" + record.header + b"\n" + seq + b"\n+\n" + record.qualities + b"\n"
    lines = [b">" + record.header]
    if width and width > 0:
        lines.extend(seq[i : i + width] for i in range(0, len(seq), width))
    elif seq:
        lines.append(seq)
    return b"\n".join(lines) + b"\n"
