"""Version manifests: what one version of a database is made of.

A manifest is stored content-addressed under ``manifests/<sha256>`` and named
by ``refs/<db>/<version>`` and ``refs/<db>/HEAD``. Its encoding is canonical
JSON (sorted keys, no insignificant whitespace, UTF-8), so equal content
always gives an equal hash.

Objects. A version needs more than its record chunks: each chunk's sequence
pack (the residues, see :mod:`talaria_storage.sequences.record_chunk`), the
packs of earlier versions its chunks reuse (``reused_packs``: sequences the
store already held, see :mod:`talaria_storage.sequences.stored_sequences`), the
per-file record order objects (``extra["files"][i]["order"]``) and the
taxonomy object, if any. :meth:`Manifest.objects` lists them all, with
their sizes, so GC marking, verification and sync can plan from the
manifest alone, without reading a chunk.

The Merkle root commits to the ordered chunk list (and through each record
chunk's pack table, to its packs). Leaves and inner nodes are
hashed with different one-byte prefixes (RFC 6962 style: ``0x00 || leaf``,
``0x01 || left || right``) so a leaf can never be passed off as an inner
node; an odd node is promoted unchanged to the next level; the root of an
empty list is SHA-256 of the empty string.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.index.lookup_table import LookupIndexRef

MANIFEST_FORMAT = "talaria-manifest"
MANIFEST_VERSION = 4  # 2: ``reused_packs`` ("packs"), ``dictionary_chunks``; 3: GenBank/EMBL sources; 4: ``lookup``
FLATFILE_FORMATS = ("genbank", "embl")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One input file of an import: its name, size and SHA-256 as read."""

    name: str
    size: int
    sha256: str
    format: str = "fasta"
    records: int = 0


@dataclass(frozen=True, slots=True)
class ChunkEntry:
    """One chunk of a version: its hash, the taxa of its records, sizes, and its own pack."""

    hash: SHA256Hash
    taxa: tuple[int, ...]
    records: int
    residues: int
    size: int  # serialised chunk bytes (what the chunk store hashed)
    file_index: int = 0  # which source file the chunk's records came from
    pack: SHA256Hash | None = None  # the sequence pack of residues first seen in this chunk
    pack_size: int = 0  # its serialised bytes


@dataclass(frozen=True, slots=True)
class ManifestObject:
    """One ``chunks/`` object a version needs: what it is, its hash and size (0 = not recorded)."""

    # "chunk", "sequence pack", "dictionary chunk", "record order object", "look-up partition"
    # or "taxonomy object"
    kind: str
    hash: SHA256Hash
    size: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """A database version."""

    database: str
    version: str
    created: float
    sources: tuple[SourceFile, ...]
    chunks: tuple[ChunkEntry, ...]
    parent: SHA256Hash | None = None
    taxonomy: SHA256Hash | None = None  # stored taxdump used to label records, if any
    extra: dict[str, Any] = field(default_factory=dict)
    # Sequence packs of other versions (of this or another database) that this version's
    # record chunks refer to, with their sizes: sequences the store already held when this
    # version was imported (see :mod:`talaria_storage.sequences.stored_sequences`).
    reused_packs: tuple[tuple[SHA256Hash, int], ...] = ()
    # Record chunks of earlier versions whose headers this version's chunks are compressed
    # against (see stream 12 in :mod:`talaria_storage.sequences.record_chunk`), with sizes.
    dictionary_chunks: tuple[tuple[SHA256Hash, int], ...] = ()
    # The version's stored look-up table (:mod:`talaria_storage.index.lookup_table`): every
    # record's names and digests -> its ordinal; None for versions imported before it existed.
    lookup: LookupIndexRef | None = None

    @property
    def merkle_root(self) -> SHA256Hash:
        return merkle_root([c.hash for c in self.chunks])

    @property
    def records(self) -> int:
        return sum(c.records for c in self.chunks)

    @property
    def residues(self) -> int:
        return sum(c.residues for c in self.chunks)

    def chunk_hashes(self) -> list[SHA256Hash]:
        """The record chunks only; :meth:`object_hashes` is everything the version needs."""
        return [c.hash for c in self.chunks]

    def objects(self) -> list[ManifestObject]:
        """Every ``chunks/`` object this version needs, each once, in a stable order.

        Record chunks and their own packs (in chunk order), the packs reused
        from other versions, the record order object of each source file, then
        the taxonomy object. A chunk's pack table names its own pack, packs of
        earlier chunks of its import (listed as those chunks' own packs) and
        reused packs; nothing else.
        """
        seen: set[SHA256Hash] = set()
        out: list[ManifestObject] = []

        def add(kind: str, h: SHA256Hash, size: int) -> None:
            if h not in seen:
                seen.add(h)
                out.append(ManifestObject(kind, h, size))

        for entry in self.chunks:
            add("chunk", entry.hash, entry.size)
            if entry.pack is not None:
                add("sequence pack", entry.pack, entry.pack_size)
        for pack, size in self.reused_packs:
            add("sequence pack", pack, size)
        for chunk, size in self.dictionary_chunks:
            add("dictionary chunk", chunk, size)
        for file in self.extra.get("files", []):
            if file.get("order"):
                add("record order object", SHA256Hash.from_hex(file["order"]), int(file.get("order_size", 0)))
        if self.lookup is not None:
            for part in self.lookup.partitions:
                add("look-up partition", part.hash, part.size)
        if self.taxonomy is not None:
            add("taxonomy object", self.taxonomy, 0)
        return out

    def object_hashes(self) -> list[SHA256Hash]:
        """The hashes of :meth:`objects`: what GC must keep and a sync must copy for this version."""
        return [o.hash for o in self.objects()]

    @property
    def stored_bytes(self) -> int:
        """Bytes of the distinct objects this version holds (chunks, packs, order objects)."""
        return sum(o.size for o in self.objects())

    # -- encoding -------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            # Version 1 readers know no reused packs: a GC of theirs would delete them. Version 2
            # readers would export a GenBank/EMBL source's stored headers as FASTA headers.
            "format_version": self._format_version(),
            "database": self.database,
            "version": self.version,
            "created": self.created,
            "parent": self.parent.to_hex() if self.parent else None,
            "taxonomy": self.taxonomy.to_hex() if self.taxonomy else None,
            "sources": [
                {"name": s.name, "size": s.size, "sha256": s.sha256, "format": s.format, "records": s.records}
                for s in self.sources
            ],
            "chunks": [chunk_row(c) for c in self.chunks],
            "merkle_root": self.merkle_root.to_hex(),
            "extra": self.extra,
        }
        if self.reused_packs:
            doc["packs"] = [[h.to_hex(), size] for h, size in self.reused_packs]
        if self.dictionary_chunks:
            doc["dictionaries"] = [[h.to_hex(), size] for h, size in self.dictionary_chunks]
        if self.lookup is not None:
            doc["lookup"] = self.lookup.to_doc()
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def _format_version(self) -> int:
        """The oldest manifest format that reads this manifest right (see ``MANIFEST_VERSION``)."""
        if self.lookup is not None:
            return 4  # an older reader's GC would delete the look-up partitions
        if any(s.format in FLATFILE_FORMATS for s in self.sources):
            return 3
        return 2 if self.reused_packs or self.dictionary_chunks else 1

    @classmethod
    def from_bytes(cls, raw: bytes, where: str = "manifest") -> Manifest:
        try:
            doc = json.loads(raw)
            if doc.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"format is {doc.get('format')!r}")
            if int(doc["format_version"]) > MANIFEST_VERSION:
                raise StorageError(f"{where} has manifest format {doc['format_version']}: upgrade talaria-storage")
            manifest = cls(
                database=doc["database"],
                version=doc["version"],
                created=float(doc["created"]),
                parent=SHA256Hash.from_hex(doc["parent"]) if doc.get("parent") else None,
                taxonomy=SHA256Hash.from_hex(doc["taxonomy"]) if doc.get("taxonomy") else None,
                sources=tuple(SourceFile(**s) for s in doc["sources"]),
                chunks=tuple(chunk_from_row(row) for row in doc["chunks"]),
                extra=doc.get("extra", {}),
                reused_packs=tuple((SHA256Hash.from_hex(h), int(size)) for h, size in doc.get("packs", [])),
                dictionary_chunks=tuple(
                    (SHA256Hash.from_hex(h), int(size)) for h, size in doc.get("dictionaries", [])
                ),
                lookup=LookupIndexRef.from_doc(doc["lookup"]) if doc.get("lookup") else None,
            )
        except StorageError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"{where} is not a valid manifest ({exc}): the store is damaged") from None
        if manifest.merkle_root.to_hex() != doc.get("merkle_root"):
            raise StorageError(f"{where}: Merkle root does not match its chunk list; the manifest is corrupt")
        return manifest


def chunk_row(c: ChunkEntry) -> list[Any]:
    """A chunk list row: hash, taxa, records, residues, size, file index[, pack, pack size]."""
    row: list[Any] = [c.hash.to_hex(), list(c.taxa), c.records, c.residues, c.size, c.file_index]
    if c.pack is not None:
        row += [c.pack.to_hex(), c.pack_size]
    return row


def chunk_from_row(row: list[Any]) -> ChunkEntry:
    if len(row) not in (6, 8):
        raise ValueError(f"a chunk row has 6 or 8 fields, not {len(row)}")
    h, taxa, records, residues, size, file_index = row[:6]
    pack, pack_size = (SHA256Hash.from_hex(row[6]), int(row[7])) if len(row) == 8 else (None, 0)
    return ChunkEntry(SHA256Hash.from_hex(h), tuple(taxa), records, residues, size, file_index, pack, pack_size)


def _leaf(h: SHA256Hash) -> bytes:
    return hashlib.sha256(b"\x00" + h.digest).digest()


def _inner(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(hashes: list[SHA256Hash]) -> SHA256Hash:
    """Merkle root over an ordered list of hashes (see the module docstring)."""
    if not hashes:
        return SHA256Hash(hashlib.sha256(b"").digest())
    level = [_leaf(h) for h in hashes]
    while len(level) > 1:
        nxt = [_inner(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return SHA256Hash(level[0])
