"""The record chunk: what is particular to each occurrence of a sequence, and references to its residues.

A chunk of records is stored as two kinds of content-addressed objects:

* a **record chunk** holds what is particular to each occurrence of a
  sequence -- header, line layout, taxid, FASTQ ``+`` line -- and, per
  record, a *reference* ``(pack, slot)`` to its residues;
* a **sequence pack** holds residues (and FASTQ qualities): each distinct
  sequence once, in *slots* numbered from 0. A FASTA slot holds the
  *canonical* residues (upper case, no whitespace: the sequence's identity),
  so a soft-masked and an upper-case copy of one sequence share a slot; the
  record chunk keeps, per record, the *residue edit* that gives its residues
  back as written. A FASTQ slot holds residues and qualities as written.

Why two objects: a release that only rewrites headers (ResFinder did, twice)
re-stores the small record chunks and none of the residues, and a sequence
carried by several records -- in one chunk, in different chunks or files of
one import -- is stored once; each occurrence keeps its own header, accession
and taxon. A record chunk lists the packs it refers to (its *pack table*) by
SHA-256; entry 0 is normally the chunk's *own* pack, which holds the residues
first seen in that chunk, and later entries are packs of earlier chunks of the
same import, or of earlier versions (of any database in the store), that
already hold some of its sequences. Which occurrence is "first" is decided
in the import's deterministic chunk order (see
:mod:`talaria_storage.sequences.importing`) and by which sequences the
store's live versions held when the import began
(:mod:`talaria_storage.sequences.stored_sequences`), so the same input into
stores with the same history -- two empty stores, say -- gives the same
objects.

As in the Nucleotide Archival Format, the parts of the records are kept in
separate *streams* -- headers, layouts, taxids, references; lengths,
residues, qualities -- because each kind compresses far better beside its
own kind than interleaved as in FASTA text.

Record chunk streams, once decoded:

* 1 headers, 7 plus lines -- the lines joined by ``b"\\n"`` (a header never
  contains a newline);
* 3 layout table -- the distinct layouts, each encoded as: u8 flags (1 final
  newline, 2 CRLF, 4 explicit line lengths, 8 explicit terminators), varint
  wrap, then when flagged a varint count and varint line lengths, a varint
  count and one byte per terminator (0 none, 1 LF, 2 CRLF); the table is in
  first-use order;
* 4 layout index -- u32 per record, its row in the layout table;
* 5 taxids -- u32 per record (0 = none);
* 9 pack table -- 32-byte SHA-256 per referenced pack;
* 10 references -- per record a varint ``p``: 0 means "the next new slot of
  pack 0" (slots taken in record order, the common case, so the stream is
  nearly all zeros), otherwise ``p - 1`` is the pack table index and a varint
  slot follows;
* 11 residue edits (format 3 only) -- per record a varint length, then its
  edit (empty when the residues as written are canonical): a varint count
  of lower-case runs, each a varint gap and a varint length over the
  canonical residues, then a varint count of whitespace runs, each a varint
  gap (canonical residues since the previous run), a varint length and the
  bytes. Soft-masked genomes need a few bytes per masked run; protein sets
  need none;
* 12 dictionary chunks (format 3 only) -- u8 depth, the 32-byte SHA-256 the
  chunk would have standing alone, then the 32-byte SHA-256 of each
  dictionary chunk: earlier record chunks (the previous release's) whose
  headers and references streams, decoded and joined by newlines, are the
  zstd raw-content dictionaries of this chunk's headers and references
  blocks of encoding 4. Releases of a database mostly repeat their
  records, so these compress to a fraction (ResFinder: a release's
  28 KB of headers to 0.1-5 KB when a few records change). A dictionary
  chunk may have a dictionary itself; depth is 1 + the deepest of them,
  at most ``MAX_DICTIONARY_DEPTH``, which bounds what reading one chunk
  decodes. A block is compressed against the dictionary only when that
  makes it at most ``DICTIONARY_GAIN`` of its size alone.

Reading one record (:meth:`ChunkReader.record`) decodes what it needs
and keeps it for the next: the chunk's headers, layouts and pack table;
of the references, only the explicit entries (:meth:`ChunkReader.ref`:
every zero byte's slot follows from how many entries precede it); of the
pack its record refers to, the lengths and the block(s) its slot lies in.
A packed nucleotide block is decompressed whole (its checksum covers the
frame) but kept packed, and only the record's range is unpacked. Decoded
residue and quality blocks can live in an :class:`LRUCache` shared by the
readers of many packs, bounded by bytes (the sequence database does this).

Versions: a record chunk is written as format 3 only when some record needs
a residue edit or a block is compressed against a dictionary, else as
format 2, so a first import of canonical data gives the same objects as
before either existed, and a reader that knows only format 2 refuses a
chunk it would misread. Record chunks of format 1
(residues inside the chunk) were written only by pre-releases; reading one
is a :class:`CompressionError` that says to re-import, never a misreading.

The container, its blocks and their integrity: :mod:`~talaria_storage.sequences.streams`;
the packs the references point into: :mod:`~talaria_storage.sequences.sequence_pack`.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, repeat
from typing import NamedTuple

import zstandard

from talaria_storage.core.errors import CompressionError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.formats.fasta import (
    CRLF,
    LF,
    FastaRecord,
    FastqRecord,
    LabelledFastaRecord,
    LabelledFastqRecord,
    Layout,
    SequenceRecord,
    _regular_layout,
)
from talaria_storage.sequences.canonical import RESIDUE_SPACES
from talaria_storage.sequences.sequence_pack import PackReader, encode_pack
from talaria_storage.sequences.streams import (
    DEFAULT_CODEC,
    DICTIONARY,
    DICTIONARY_STREAMS,
    EDITS,
    HEADERS,
    KIND_FASTA,
    KIND_FASTQ,
    LAYOUT_INDEX,
    LAYOUT_TABLE,
    PACK_TABLE,
    PLUS,
    REFS,
    TAXIDS,
    ZSTD_DICT,
    Blocks,
    ChunkCodec,
    Compressors,
    Container,
    encode_block,
    encode_container,
)
from talaria_storage.sequences.varints import read_varint, u32s, varints

CHUNK_MAGIC = b"TSQC"
MAGIC = CHUNK_MAGIC  # the record chunk's magic, under its historical name
CHUNK_VERSION = 3  # written only when a record needs residue edits; otherwise 2 (see "Versions")
CHUNK_VERSION_PLAIN = 2

# A stream is compressed against a dictionary only when that brings it to at most this
# fraction of its size compressed alone.
DICTIONARY_GAIN = 0.75
# How many earlier chunks deep a chunk's headers may depend on (chunk A's dictionary is B,
# whose dictionary is C, ...): reading a chunk decodes at most this many header streams more.
MAX_DICTIONARY_DEPTH = 4


_EOL_CODE = {b"": 0, LF: 1, CRLF: 2}
_EOL_BYTES = (b"", LF, CRLF)


def _encode_layout(layout: Layout) -> bytes:
    flags = (1 if layout.final_eol else 0) | (2 if layout.eol == CRLF else 0)
    if layout.line_lengths is not None:
        flags |= 4
    if layout.line_eols is not None:
        flags |= 8
    out = bytes([flags]) + varints([layout.wrap])
    if layout.line_lengths is not None:
        out += varints([len(layout.line_lengths), *layout.line_lengths])
    if layout.line_eols is not None:
        out += varints([len(layout.line_eols)]) + bytes(_EOL_CODE[e] for e in layout.line_eols)
    return out


def _decode_layouts(data: bytes) -> list[Layout]:
    layouts = []
    at = 0
    while at < len(data):
        flags = data[at]
        wrap, at = read_varint(data, at + 1)
        lengths = eols = None
        if flags & 4:
            count, at = read_varint(data, at)
            items = []
            for _ in range(count):
                value, at = read_varint(data, at)
                items.append(value)
            lengths = tuple(items)
        if flags & 8:
            count, at = read_varint(data, at)
            eols = tuple(_EOL_BYTES[c] for c in data[at : at + count])
            at += count
        eol = CRLF if flags & 2 else LF
        final = bool(flags & 1)
        if lengths is None and eols is None:
            layouts.append(_regular_layout(wrap, final, eol))
        else:
            layouts.append(Layout(wrap, lengths, eol, final, eols))
    return layouts


def encode_chunk(
    headers: Sequence[bytes],
    layouts: Sequence[Layout],
    taxids: Sequence[int],
    refs: Sequence[tuple[int, int]],
    packs: Sequence[SHA256Hash | bytes],
    *,
    plus: Sequence[bytes] | None = None,
    codec: ChunkCodec = DEFAULT_CODEC,
    edits: Sequence[bytes] | None = None,
) -> bytes:
    """Serialise a record chunk.

    ``refs[i]`` is ``(pack table index, slot)`` of record ``i``'s residues;
    ``packs`` is the pack table (SHA-256 of each pack). ``plus`` (the ``+``
    lines) makes it a FASTQ chunk. ``edits[i]`` turns the slot's residues
    into record ``i``'s as written (see :func:`residue_edit`).
    """
    count = len(headers)
    if not len(layouts) == len(taxids) == len(refs) == count:
        raise ValueError(
            f"{count} headers, {len(layouts)} layouts, {len(taxids)} taxids and {len(refs)} references"
        )
    if plus is not None and len(plus) != count:
        raise ValueError("a FASTQ chunk needs one '+' line per record")
    layout_rows: dict[Layout, int] = {}
    layout_index = [layout_rows.setdefault(layout, len(layout_rows)) for layout in layouts]
    return encode_chunk_joined(
        b"\n".join(headers),
        count,
        list(layout_rows),
        layout_index,
        taxids,
        [pack << 32 | slot for pack, slot in refs],
        packs,
        plus=b"\n".join(plus) if plus is not None else None,
        codec=codec,
        edits=edits,
    )


def encode_chunk_joined(
    headers: bytes,
    count: int,
    layout_table: Sequence[Layout],
    layout_index: Sequence[int],
    taxids: Sequence[int],
    refs: Sequence[int],
    packs: Sequence[SHA256Hash | bytes],
    *,
    plus: bytes | None = None,
    codec: ChunkCodec = DEFAULT_CODEC,
    edits: Sequence[bytes] | None = None,
    dictionary: ChunkDictionary | None = None,
) -> bytes:
    """:func:`encode_chunk` on columns: headers (and ``+`` lines) joined by newlines, the
    distinct layouts and each record's row, references as ``pack << 32 | slot``.

    ``edits``: per record, the :func:`residue_edit` that turns its slot's
    canonical residues back into the residues as written (``b""``: none).
    ``dictionary``: earlier record chunks whose headers and references this
    chunk's are compressed against, where that pays (stream 12 in the module
    docstring).
    """
    plain = plain_chunk(
        headers, count, layout_table, layout_index, taxids, refs, packs, plus=plus, codec=codec, edits=edits
    )
    return plain.against(dictionary)[0]


def plain_chunk(
    headers: bytes,
    count: int,
    layout_table: Sequence[Layout],
    layout_index: Sequence[int],
    taxids: Sequence[int],
    refs: Sequence[int],
    packs: Sequence[SHA256Hash | bytes],
    *,
    plus: bytes | None = None,
    codec: ChunkCodec = DEFAULT_CODEC,
    edits: Sequence[bytes] | None = None,
) -> PlainChunk:
    """The record chunk standing alone (see :func:`encode_chunk_joined`)."""
    if count >= 1 << 32:
        raise ValueError("too many records for one chunk")
    if not len(layout_index) == len(taxids) == len(refs) == count:
        raise ValueError(f"{count} records, {len(layout_index)} layouts, {len(taxids)} taxids, {len(refs)} references")
    if headers.count(b"\n") != max(count - 1, 0) or (count == 0 and headers):
        raise ValueError("a header contains a newline")
    if plus is not None and plus.count(b"\n") != max(count - 1, 0):
        raise ValueError("a '+' line contains a newline")
    table = b"".join(p.digest if isinstance(p, SHA256Hash) else bytes(p) for p in packs)
    if len(table) != 32 * len(packs):
        raise ValueError("a pack table entry is not a 32-byte SHA-256")
    if layout_index and max(layout_index) >= len(layout_table):
        raise ValueError("a layout index points past the layout table")
    streams: list[tuple[int, bytes]] = [
        (HEADERS, headers),
        (LAYOUT_TABLE, b"".join(_encode_layout(layout) for layout in layout_table)),
        (LAYOUT_INDEX, u32s(layout_index)),
        (TAXIDS, u32s(taxids)),
        (PACK_TABLE, table),
        (REFS, _encode_refs(refs, len(packs))),
    ]
    if plus is not None:
        streams.append((PLUS, plus))
    version = CHUNK_VERSION_PLAIN
    if edits is not None and any(edits):
        if len(edits) != count:
            raise ValueError(f"{len(edits)} residue edits for {count} records")
        streams.append((EDITS, b"".join(varints([len(e)]) + e for e in edits)))
        version = CHUNK_VERSION
    compressors = Compressors(codec.long_distance)
    entries = [(sid, [encode_block(data, codec.meta_level, compressors)]) for sid, data in streams]
    kind = KIND_FASTA if plus is None else KIND_FASTQ
    return PlainChunk(encode_container(CHUNK_MAGIC, version, kind, count, entries), streams, entries, kind, count, codec)


@dataclass(frozen=True)
class PlainChunk:
    """A record chunk encoded standing alone (``data``), and what compressing it against a
    dictionary needs: an import first asks whether the plain chunk is one it already has."""

    data: bytes
    streams: list[tuple[int, bytes]]
    entries: list[tuple[int, Blocks]]
    kind: int
    count: int
    codec: ChunkCodec

    def against(self, dictionary: ChunkDictionary | None) -> tuple[bytes, tuple[bytes, ...]]:
        """(the chunk, the dictionary chunks it was compressed against: none when that did not pay)."""
        if dictionary is None or not dictionary.chunks:
            return self.data, ()
        level = self.codec.meta_level
        entries = list(self.entries)
        used = False
        for i, (sid, data) in enumerate(self.streams):
            if sid in DICTIONARY_STREAMS and data:
                against = dictionary.compress(sid, data, level)
                if len(against) <= DICTIONARY_GAIN * len(entries[i][1][0][2]):
                    entries[i] = (sid, [(ZSTD_DICT, len(data), against)])
                    used = True
        if not used:
            return self.data, ()
        # The chunk as it would stand alone is named too: an unchanged chunk of the next
        # release is then recognised as this one.
        table = bytes([dictionary.depth]) + hashlib.sha256(self.data).digest() + b"".join(dictionary.chunks)
        entries.append((DICTIONARY, [encode_block(table, level, Compressors(self.codec.long_distance))]))
        return encode_container(CHUNK_MAGIC, CHUNK_VERSION, self.kind, self.count, entries), dictionary.chunks


@dataclass(frozen=True)
class ChunkDictionary:
    """Earlier record chunks (32-byte SHA-256 each) and, per stream of
    ``DICTIONARY_STREAMS``, their streams joined (:func:`dictionary_text`): what
    a new chunk's headers and references may be compressed against (stream 12)."""

    chunks: tuple[bytes, ...]
    texts: tuple[bytes, ...]  # one per DICTIONARY_STREAMS entry
    depth: int = 1  # the new chunk's: 1 + the deepest of ``chunks`` (a stand-alone chunk is 0)

    def __post_init__(self) -> None:
        if not 1 <= self.depth <= MAX_DICTIONARY_DEPTH:
            raise ValueError(f"a chunk dictionary makes chunks 1 to {MAX_DICTIONARY_DEPTH} deep, not {self.depth}")
        if len(self.texts) != len(DICTIONARY_STREAMS):
            raise ValueError(f"a chunk dictionary has one text per stream of {DICTIONARY_STREAMS}")

    def compress(self, stream_id: int, data: bytes, level: int) -> bytes:
        params = zstandard.ZstdCompressionParameters.from_level(
            level, threads=0, write_content_size=1, write_checksum=1, write_dict_id=0
        )
        text = self.texts[DICTIONARY_STREAMS.index(stream_id)]
        found = zstandard.ZstdCompressionDict(text, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdCompressor(dict_data=found, compression_params=params).compress(data)


def dictionary_text(streams: Sequence[bytes]) -> bytes:
    """A stream's dictionary: the same stream of each dictionary chunk, joined by newlines."""
    return b"\n".join(streams)


_SPACE_RUN = re.compile(b"[" + re.escape(RESIDUE_SPACES) + b"]+")
_LOWER_RUN = re.compile(rb"[a-z]+")


def residue_edit(written: bytes) -> tuple[bytes, bytes]:
    """(canonical residues, the edit that gives ``written`` back); the edit is ``b""`` when
    ``written`` is canonical already (upper case, no whitespace), as nearly all are.

    The edit (stream 11 in the module docstring): a varint count of
    lower-case runs, each a varint gap and length over the canonical residues;
    then a varint count of whitespace runs, each a varint gap (canonical
    residues since the previous run), a varint length and the bytes.
    """
    spaces = [(m.start(), m.group()) for m in _SPACE_RUN.finditer(written)]
    stripped = written.translate(None, RESIDUE_SPACES) if spaces else written
    lower = [(m.start(), m.end()) for m in _LOWER_RUN.finditer(stripped)]
    if not spaces and not lower:
        return written, b""
    out = bytearray(varints([len(lower)]))
    at = 0
    for start, end in lower:
        out += varints((start - at, end - start))
        at = end
    out += varints([len(spaces)])
    removed = at = 0
    for start, run in spaces:
        position = start - removed  # where the run goes in the canonical residues
        out += varints((position - at, len(run)))
        out += run
        at = position
        removed += len(run)
    return stripped.upper(), bytes(out)


def apply_residue_edit(residues: bytes, edit: bytes) -> bytes:
    """The residues as written: :func:`residue_edit` undone on a slot's canonical residues."""
    if not edit:
        return residues
    count, at = read_varint(edit, 0)
    text = bytearray(residues)
    position = 0
    for _ in range(count):
        gap, at = read_varint(edit, at)
        length, at = read_varint(edit, at)
        position += gap
        if position + length > len(text):
            raise CompressionError("a residue edit runs past its sequence")
        text[position : position + length] = text[position : position + length].lower()
        position += length
    count, at = read_varint(edit, at)
    if count:
        pieces: list[bytes | bytearray] = []
        position = taken = 0
        for _ in range(count):
            gap, at = read_varint(edit, at)
            length, at = read_varint(edit, at)
            position += gap
            if position > len(text) or at + length > len(edit):
                raise CompressionError("a residue edit runs past its sequence")
            pieces += (text[taken:position], edit[at : at + length])
            at += length
            taken = position
        pieces.append(text[taken:])
        text = bytearray(b"".join(pieces))
    if at != len(edit):
        raise CompressionError("a residue edit has trailing bytes")
    return bytes(text)


def _encode_refs(refs: Sequence[int], packs: int) -> bytes:
    """References (``pack << 32 | slot``) as the varint stream of the module docstring."""
    if refs and refs[-1] == len(refs) - 1 and list(refs) == list(range(len(refs))):
        return bytes(len(refs))  # the common case: every record has its own new slot
    out = bytearray()
    next_new = 0
    for ref in refs:
        if ref == next_new:  # pack 0, the next new slot
            out.append(0)
            next_new += 1
            continue
        pack = ref >> 32
        if pack >= packs:
            raise ValueError(f"reference to pack {pack} of a pack table of {packs}")
        out += varints((pack + 1, ref & 0xFFFFFFFF))
    return bytes(out)


def encode_records(
    records: Sequence[SequenceRecord],
    taxids: Sequence[int] | None = None,
    codec: ChunkCodec = DEFAULT_CODEC,
) -> tuple[bytes, bytes]:
    """``records`` (all FASTA or all FASTQ) as (record chunk, its own pack), each distinct sequence once.

    The self-contained case: one chunk, one pack. The database import also
    points chunks at the packs of earlier chunks (see the module docstring).
    """
    count = len(records)
    if taxids is None:
        taxids = [0] * count
    if len(taxids) != count:
        raise ValueError(f"{len(taxids)} taxids for {count} records")
    fastq = bool(count) and isinstance(records[0], FastqRecord)
    if any(isinstance(r, FastqRecord) != fastq for r in records):
        raise ValueError("a chunk holds FASTA records or FASTQ records, not both")
    slots: dict[object, int] = {}
    refs: list[tuple[int, int]] = []
    edits: list[bytes] = []
    for record in records:
        if fastq:
            key: object = (record.residues, record.qualities)  # type: ignore[union-attr]
        else:
            key, edit = residue_edit(record.residues)
            edits.append(edit)
        refs.append((0, slots.setdefault(key, len(slots))))
    if fastq:
        pack = encode_pack([k[0] for k in slots], [k[1] for k in slots], codec)  # type: ignore[index]
    else:
        pack = encode_pack(list(slots), None, codec)  # type: ignore[arg-type]
    chunk = encode_chunk(
        [r.header for r in records],
        [r.layout for r in records],
        taxids,
        refs,
        [hashlib.sha256(pack).digest()],
        plus=[r.plus for r in records] if fastq else None,  # type: ignore[union-attr]
        codec=codec,
        edits=None if fastq else edits,
    )
    return chunk, pack


_new_tuple = tuple.__new__


class _LookupPlan(NamedTuple):
    """A record chunk's per-record streams, as :meth:`ChunkReader.record` reads them."""

    headers: list[bytes]
    layouts: list[Layout]
    layout_index: array
    taxids: array
    edits: list[bytes] | None  # None: no record has a residue edit
    pack_count: int
    implicit_refs: bool  # record i is slot i of pack 0 (see ChunkReader.ref)
    plus: list[bytes] | None  # a FASTQ chunk's plus lines


class ChunkReader(Container):
    """Random access to the records of one serialised record chunk.

    Residues come from the chunk's packs: methods that return records take
    the :class:`PackReader` of every pack table entry, in table order.
    """

    def __init__(self, data: bytes, dictionary: Callable[[list[SHA256Hash], int], bytes] | None = None) -> None:
        """``dictionary(chunks, stream id)`` gives the :func:`dictionary_text` of a stream of
        dictionary chunks, for a chunk compressed against them (the database reads them)."""
        super().__init__(data, CHUNK_MAGIC, CHUNK_VERSION, "sequence chunk", oldest=CHUNK_VERSION_PLAIN)
        self._dictionary = dictionary

    def dictionary_chunks(self) -> list[SHA256Hash]:
        """The record chunks whose headers this chunk's headers are compressed against (often none)."""
        if DICTIONARY not in self._streams:
            return []
        table = self._whole(DICTIONARY)[33:]
        if len(table) % 32 or not table:
            raise CompressionError(f"sequence chunk dictionary table is {len(table)} bytes, not a multiple of 32")
        return [SHA256Hash(table[i : i + 32]) for i in range(0, len(table), 32)]

    def plain_digest(self) -> bytes:
        """SHA-256 of this chunk as it would be stored standing alone (its own hash if it does)."""
        if DICTIONARY not in self._streams:
            return hashlib.sha256(self._data).digest()
        table = self._whole(DICTIONARY)
        if len(table) < 65:
            raise CompressionError(f"sequence chunk dictionary table is {len(table)} bytes, too short")
        return table[1:33]

    def dictionary_depth(self) -> int:
        """0 for a chunk that stands alone, else 1 + the deepest of its dictionary chunks."""
        if DICTIONARY not in self._streams:
            return 0
        depth = self._whole(DICTIONARY)[0]
        if not 1 <= depth <= MAX_DICTIONARY_DEPTH:
            raise CompressionError(f"sequence chunk claims a dictionary depth of {depth}")
        return depth

    def stream_size(self, stream_id: int) -> int:
        """Bytes of a stream once decoded (0 when the chunk has none), without decoding it."""
        stream = self._streams.get(stream_id)
        return sum(block[1] for block in stream.blocks) if stream is not None else 0

    def stream_text(self, stream_id: int) -> bytes:
        """A stream of ``DICTIONARY_STREAMS`` as stored, decoded (what a dictionary is made of)."""
        if stream_id not in DICTIONARY_STREAMS:
            raise ValueError(f"stream {stream_id} is not one a dictionary is made of")
        return self._whole(stream_id)

    def _dictionary_decompressor(self, stream_id: int) -> zstandard.ZstdDecompressor:
        if self._dictionary is None:
            raise CompressionError(
                "sequence chunk is compressed against earlier chunks: read it through its database"
            )
        text = self._dictionary(self.dictionary_chunks(), stream_id)
        found = zstandard.ZstdCompressionDict(text, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdDecompressor(dict_data=found)

    @property
    def nbytes(self) -> int:
        """About the bytes this reader holds once its small streams are decoded (for a cache's budget):
        the serialised chunk, the decoded streams and the per-record Python objects."""
        decoded = sum(b[1] for stream in self._streams.values() for b in stream.blocks)
        return len(self._data) + decoded + 100 * self._count

    # -- the chunk's own streams

    def header(self, index: int) -> bytes:
        """The header of record ``index`` (0 <= index < len)."""
        lines = self._cache.get(HEADERS)  # decoded already, as a rule: a look-up's check
        return (lines if lines is not None else self._lines(HEADERS))[index]  # type: ignore[index]

    def headers(self) -> list[bytes]:
        """Every header, without touching any residue."""
        return list(self._lines(HEADERS))

    def taxids(self) -> list[int]:
        return list(self._u32(TAXIDS))

    def taxid(self, index: int) -> int:
        """The taxon of record ``index`` (0: none), without copying every record's."""
        return self._u32(TAXIDS)[index]

    def _layout_table(self) -> list[Layout]:
        """The chunk's distinct layouts, decoded once (records name theirs by index)."""
        table = self._cache.get(-5)
        if table is None:
            table = self._cache[-5] = _decode_layouts(self._whole(LAYOUT_TABLE))
        return table  # type: ignore[return-value]

    def layouts(self) -> list[Layout]:
        """Every record's layout."""
        cached = self._cache.get(-2)  # per record, unlike the stream's own cache entry
        if cached is None:
            table = self._layout_table()
            try:
                cached = [table[i] for i in self._u32(LAYOUT_INDEX)]
            except IndexError:
                raise CompressionError("sequence chunk layout index points past its layout table") from None
            self._cache[-2] = cached
        return cached  # type: ignore[return-value]

    def plus_lines(self) -> list[bytes]:
        if not self.fastq:
            raise ValueError("a FASTA chunk has no plus lines")
        return list(self._lines(PLUS))

    def pack_hashes(self) -> list[SHA256Hash]:
        """The pack table: the SHA-256 of every pack the records refer to."""
        cached = self._cache.get(PACK_TABLE)
        if cached is None:
            table = self._whole(PACK_TABLE)
            if len(table) % 32:
                raise CompressionError(f"sequence chunk pack table is {len(table)} bytes, not a multiple of 32")
            cached = [SHA256Hash(table[i : i + 32]) for i in range(0, len(table), 32)]
            self._cache[PACK_TABLE] = cached
        return list(cached)  # type: ignore[call-overload]

    def _pack_count(self) -> int:
        cached = self._cache.get(PACK_TABLE)
        return len(cached) if cached is not None else len(self.pack_hashes())  # type: ignore[arg-type]

    def _implicit_refs(self) -> bool:
        """True when record ``i`` is slot ``i`` of pack 0 for every ``i`` (the stream is all
        zeros): one record is then found without decoding every reference."""
        cached = self._cache.get(-3)
        if cached is None:
            data = self._whole(REFS)
            cached = len(data) == self._count and data.count(0) == len(data) and len(self.pack_hashes()) > 0
            self._cache[-3] = cached
        return bool(cached)

    def ref(self, index: int) -> tuple[int, int]:
        """``(pack table index, slot)`` of record ``index``'s residues (0 <= index < len).

        Decodes only the references that are not "the next new slot of pack
        0" (the few records whose sequence an earlier record or chunk already
        holds); every other record's slot follows from how many of those
        come before it. Building every record's pair (:meth:`refs`) cost a
        UniProt chunk ~1.5 ms, a whole cold look-up budget of 60 ms for 1,000
        over 18 chunks.
        """
        full = self._cache.get(REFS)
        if full is not None:
            return full[index]  # type: ignore[index, no-any-return]
        table = self._cache.get(-4)
        if table is None:
            if self._implicit_refs():
                return 0, index
            table = self._cache[-4] = _ref_exceptions(self._whole(REFS), self._count, len(self.pack_hashes()))
        records: array
        packs: array
        slots: array
        records, packs, slots = table  # type: ignore[misc]
        k = bisect_left(records, index)
        if k < len(records) and records[k] == index:
            return packs[k], slots[k]
        return 0, index - k

    def refs(self) -> list[tuple[int, int]]:
        """``(pack table index, slot)`` of every record's residues."""
        cached = self._cache.get(REFS)
        if cached is None:
            cached = _decode_refs(self._whole(REFS), self._count, len(self.pack_hashes()))
            self._cache[REFS] = cached
        return cached  # type: ignore[return-value]

    def edits(self) -> list[bytes] | None:
        """Every record's residue edit, or None when the chunk has none (format 2)."""
        if EDITS not in self._streams:
            return None
        cached = self._cache.get(EDITS)
        if cached is None:
            data = self._whole(EDITS)
            edits: list[bytes] = []
            at = 0
            for _ in range(self._count):
                length, at = read_varint(data, at)
                edits.append(data[at : at + length])
                at += length
            if at != len(data):
                raise CompressionError("sequence chunk residue edits do not match its record count")
            cached = self._cache[EDITS] = edits
        return cached  # type: ignore[return-value]

    # -- records (residues from the packs)

    def _check_packs(self, packs: Sequence[PackReader]) -> None:
        if len(packs) != len(self.pack_hashes()):
            raise ValueError(f"{len(packs)} packs given for a pack table of {len(self.pack_hashes())}")
        for pack in packs:
            if pack.fastq != self.fastq:
                raise CompressionError("a FASTQ chunk refers to a FASTA pack, or the other way round")

    def _lookup_plan(self) -> _LookupPlan:
        """What :meth:`record` reads of every record, decoded once and held together: a
        look-up then costs a few list indexings, not a dozen stream-cache calls."""
        plan = self._cache.get(-6)
        if plan is None:
            edits = self.edits()
            plan = self._cache[-6] = _LookupPlan(
                self._lines(HEADERS), self._layout_table(), self._u32(LAYOUT_INDEX), self._u32(TAXIDS),  # type: ignore[arg-type]
                edits if edits is not None and any(edits) else None, self._pack_count(),
                self._implicit_refs(), self._lines(PLUS) if self.fastq else None,
            )
        return plan  # type: ignore[return-value]

    def record(self, index: int, packs: Sequence[PackReader], *, with_taxon: bool = False) -> SequenceRecord:
        """Record ``index``, decoding only what it needs (one slot of one pack); ``with_taxon``:
        labelled with its ``taxon_id`` (:class:`LabelledFastaRecord`), made so, not copied.

        Only the pack the record refers to is taken from ``packs`` (and
        checked), so ``packs`` may be a sequence that opens packs on access.
        """
        count = self._count
        if not 0 <= index < count:
            if not -count <= index < 0:
                raise IndexError(f"record {index} of a chunk of {count}")
            index += count
        headers, layouts, layout_index, taxids, edits, pack_count, implicit_refs, plus = self._lookup_plan()
        if len(packs) != pack_count:
            raise ValueError(f"{len(packs)} packs given for a pack table of {pack_count}")
        p, slot = (0, index) if implicit_refs else self.ref(index)
        pack = packs[p]
        if pack.fastq != self.fastq:
            raise CompressionError("a FASTQ chunk refers to a FASTA pack, or the other way round")
        try:
            layout = layouts[layout_index[index]]
        except IndexError:
            raise CompressionError("sequence chunk layout index points past its layout table") from None
        residues = pack.residues(slot)
        if edits is not None and edits[index]:
            residues = apply_residue_edit(residues, edits[index])
        out: SequenceRecord
        if plus is not None:
            fields = (headers[index], residues, plus[index], pack.qualities(slot), layout)
            out = LabelledFastqRecord(*fields) if with_taxon else FastqRecord(*fields)
        else:
            # tuple.__new__ rather than the named tuple's own __new__ (a Python function): the
            # same record, one interpreted call fewer on a look-up's path.
            out = _new_tuple(LabelledFastaRecord if with_taxon else FastaRecord, (headers[index], residues, layout))
        if with_taxon:
            out.taxon_id = taxids[index]  # type: ignore[union-attr]
        return out

    def records(self, packs: Sequence[PackReader]) -> list[SequenceRecord]:
        """Every record. Each residue block of a pack is decoded at most once: a pack the
        chunk refers to often is decoded whole, from others the slots are read in slot order."""
        self._check_packs(packs)
        refs = self.refs()
        wanted: list[set[int]] = [set() for _ in packs]
        for index, slot in refs:
            wanted[index].add(slot)
        found: list[dict[int, bytes] | list[bytes]] = []
        for reader, slots in zip(packs, wanted):
            if slots and max(slots) >= len(reader):
                raise CompressionError(f"reference to slot {max(slots)} of a sequence pack of {len(reader)}")
            if len(slots) >= reader.residue_blocks:
                found.append(reader.sequences())
            else:
                found.append({slot: reader.residues(slot) for slot in sorted(slots)})
        residues = [found[p][s] for p, s in refs]
        edits = self.edits()
        if edits is not None:
            residues = [apply_residue_edit(r, e) for r, e in zip(residues, edits)]
        headers = self._lines(HEADERS)
        layouts = self.layouts()
        if self.fastq:
            plus = self._lines(PLUS)
            return [
                FastqRecord(headers[i], residues[i], plus[i], packs[p].qualities(s), layouts[i])
                for i, (p, s) in enumerate(refs)
            ]
        return [FastaRecord(h, r, layout) for h, r, layout in zip(headers, residues, layouts)]


_NONZERO = re.compile(rb"[^\x00]")
# One reference that is not a zero byte: a varint pack index (>= 1, so its first byte is not 0),
# then a varint slot. It cannot start at a zero byte, so scanning a zero run is linear.
_REF_ENTRY = re.compile(rb"((?:[\x80-\xff]+[\x00-\x7f]|[\x01-\x7f]))([\x80-\xff]*[\x00-\x7f])")


def _varint_value(data: bytes) -> int:
    """The value of one whole varint."""
    value = 0
    for shift, byte in enumerate(data):
        value |= (byte & 0x7F) << (7 * shift)
    return value


def _ref_exceptions(data: bytes, count: int, packs: int) -> tuple[array, array, array]:
    """The references stream reduced to its explicit entries: (record indexes, pack indexes, slots).

    Every other record is a zero byte, "the next new slot of pack 0": record
    ``i`` then has slot ``i - (explicit entries before it)``. The regex
    engine consumes the zero runs, so the Python work is per explicit entry.
    """
    parts = _REF_ENTRY.split(data)  # zero run, pack, slot, zero run, pack, slot, ..., zero run
    gaps, pack_bytes, slot_bytes = parts[0::3], parts[1::3], parts[2::3]
    zeros = [len(gap) for gap in gaps]
    if b"".join(gaps).count(0) != sum(zeros):  # the split keeps what is not an entry: it must be zeros
        raise CompressionError("sequence chunk references stream is corrupt (truncated varint)")
    records = array("I", [at + k for k, at in enumerate(accumulate(zeros[:-1]))])
    pack_of = array("I", [b[0] - 1 if len(b) == 1 else _varint_value(b) - 1 for b in pack_bytes])
    slots = [
        b[0] if len(b) == 1 else (b[0] & 0x7F) | b[1] << 7 if len(b) == 2 else _varint_value(b)
        for b in slot_bytes
    ]
    if pack_of and max(pack_of) >= packs:
        raise CompressionError(f"sequence chunk refers past its pack table of {packs}")
    try:
        slot_of = array("I", slots)
    except OverflowError:
        raise CompressionError(f"sequence chunk refers to slot {max(slots)}") from None
    total = sum(zeros) + len(slots)
    if total != count:
        raise CompressionError(f"sequence chunk has {total} references for {count} records")
    if count and packs == 0:
        raise CompressionError("sequence chunk has records but an empty pack table")
    return records, pack_of, slot_of


def _decode_refs(data: bytes, count: int, packs: int) -> list[tuple[int, int]]:
    """The references stream; runs of zeros (new slots of pack 0) are expanded in bulk."""
    refs: list[tuple[int, int]] = []
    next_new = 0
    at = 0
    while at < len(data):
        found = _NONZERO.search(data, at)
        zeros = (found.start() if found else len(data)) - at
        if zeros:
            refs.extend(zip(repeat(0), range(next_new, next_new + zeros)))
            next_new += zeros
            at += zeros
            continue
        pack, at = read_varint(data, at)
        slot, at = read_varint(data, at)
        if pack > packs:
            raise CompressionError(f"sequence chunk refers past its pack table of {packs}")
        refs.append((pack - 1, slot))
    if len(refs) != count:
        raise CompressionError(f"sequence chunk has {len(refs)} references for {count} records")
    if refs and packs == 0:
        raise CompressionError("sequence chunk has records but an empty pack table")
    return refs


def decode_records(chunk: bytes, *packs: bytes) -> tuple[list[SequenceRecord], list[int]]:
    """All records of a chunk and their taxids, given the bytes of the packs it refers to."""
    reader = ChunkReader(chunk)
    by_hash = {hashlib.sha256(p).digest(): p for p in packs}
    readers = []
    for h in reader.pack_hashes():
        data = by_hash.get(h.digest)
        if data is None:
            raise CompressionError(f"sequence pack {h.to_hex()} of the chunk is not among those given")
        readers.append(PackReader(data))
    return reader.records(readers), reader.taxids()
