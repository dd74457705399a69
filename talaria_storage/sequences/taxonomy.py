"""NCBI Taxonomy: taxdump reader, a compact :class:`Taxonomy`, and taxon sources.

Formats read (each plain, gzip, zstd, bzip2 or xz; detected by magic bytes)
---------------------------------------------------------------------------
``nodes.dmp``
    ``tax_id \\t|\\t parent tax_id \\t|\\t rank \\t|\\t ...`` one node per line;
    the root (1) is its own parent. Only the first three columns are used.
``names.dmp``
    ``tax_id \\t|\\t name \\t|\\t unique name \\t|\\t name class \\t|``; only the
    ``scientific name`` rows are kept (one per node).
``merged.dmp``
    ``old_tax_id \\t|\\t new_tax_id \\t|``: ids folded into another node.
``delnodes.dmp``
    ``tax_id \\t|``: ids that no longer exist.
NCBI ``accession2taxid``
    Tab-separated with the header ``accession  accession.version  taxid  gi``.
Two-column map
    ``identifier <whitespace> taxid`` per line, no header (for example the
    Web of Life ``taxid.map``: genome id -> taxid).

Where a record's taxon comes from (``DESIGN.md`` section 4): UniProt's
``OX=<taxid>`` in the header (:func:`taxon_from_header`), an accession ->
taxid map (:class:`AccessionTaxonMap`, keyed by the accession that
:func:`~talaria_storage.sequences.identifiers.accession_from_header` extracts), or the caller.

Merged and deleted ids are never dropped silently: lookups follow
``merged.dmp`` to the current node, and a deleted or unknown id raises
:class:`UnknownTaxon` (``deleted`` tells which).

Serialised form (:meth:`Taxonomy.to_bytes`), deterministic and versioned so
a taxonomy can be stored as a content-addressed object::

    b"TTAX" | u8 format version (1) | zstd frame of the payload
    payload (all integers little-endian):
      u32 nodes, u32 ranks, u32 merged, u32 deleted, u32 name bytes
      ranks: u8 length + UTF-8 text each, sorted
      u32[nodes]   taxid deltas (taxids ascending, first delta from 0)
      u32[nodes]   parent taxid
      u8[nodes]    rank index
      u32[nodes]   name length in bytes
      name bytes   scientific names, UTF-8, concatenated in taxid order
      u32[merged]  old-id deltas (ascending) then u32[merged] new ids
      u32[deleted] deleted-id deltas (ascending)

Memory: the node table lives in flat ``array`` columns (about 13 bytes per
node plus the name bytes), not in a million Python objects, so the full 1M
node dumps load in a few seconds and take tens of MB. The children index
used by :meth:`Taxonomy.descendants` is built on first use.
"""

from __future__ import annotations

import operator
import os
import re
import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Collection, Iterable, Iterator
from itertools import accumulate, chain, islice, pairwise
from pathlib import Path

import zstandard

from talaria_storage.core.errors import InputFormatError, UnknownTaxon
from talaria_storage.formats.fasta import Source, open_input, source_name
from talaria_storage.formats.genbank import is_stored_flatfile, stored_taxon

FORMAT_MAGIC = b"TTAX"
FORMAT_VERSION = 1
DEFAULT_LEVEL = 9
ROOT = 1

# Patterns start with "\n" (blocks are scanned with one prepended) rather than "^" under
# re.M: the regex engine then jumps from newline to newline instead of trying every byte.
_NODE = re.compile(rb"\n(\d+)\t\|\t(\d+)\t\|\t([^\t\n]*)\t\|")
_NAME = re.compile(rb"\n(\d+)\t\|\t([^\t\n]*)\t\|\t[^\t\n]*\t\|\tscientific name\t\|")
_MERGED = re.compile(rb"\n(\d+)\t\|\t(\d+)\t\|")
_DELNODE = re.compile(rb"\n(\d+)\t\|")
_OX = re.compile(rb" OX=(\d+)")
_OX_ANYWHERE = re.compile(rb"(?:^|\s)OX=(\d+)")
_VERSION = re.compile(r"\.\d+$")


def _line_blocks(stream, block_size: int = 8 << 20) -> Iterator[tuple[bytes, int]]:
    """Yield (block of whole lines, number of its first line)."""
    rest = b""
    line = 1
    while True:
        data = stream.read(block_size)
        if not data:
            if rest:
                yield rest + b"\n", line
            return
        data = rest + data
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            continue
        block, rest = data[: cut + 1], data[cut + 1 :]
        yield block, line
        line += block.count(b"\n")


def _matches(
    blocks: Iterable[tuple[bytes, int]],
    pattern: re.Pattern[bytes],
    name: str,
    what: str,
    strict: bool = True,
) -> Iterator[list]:
    """Yield, block by block, every match of a ``"\\n"``-anchored ``pattern``.

    With ``strict`` every non-blank line must match; the first that does not
    is reported with its line number (looked for only when the match count
    says something is off, so sound files pay one ``findall`` per block).
    """
    for block, first_line in blocks:
        found = pattern.findall(b"\n" + block)
        lines = block.count(b"\n") - block.count(b"\n\n") - block.startswith(b"\n")
        if strict and len(found) != lines:
            for n, text in enumerate(block.split(b"\n")[:-1]):
                if text.strip() and not pattern.match(b"\n" + text + b"\n"):
                    raise InputFormatError(
                        name, first_line + n, f"not a {what} line: {text[:60]!r}"
                    )
        yield found


def _scan(path: Source, pattern: re.Pattern[bytes], what: str, strict: bool = True):
    """Every match of ``pattern`` in a (possibly compressed) file, block by block."""
    with open_input(path) as stream:
        yield from _matches(_line_blocks(stream), pattern, source_name(path, None), what, strict)


class Taxonomy:
    """An NCBI taxonomy snapshot: parents, ranks, scientific names, merged and deleted ids.

    Taxids given to the lookup methods may be merged ids; they are followed
    to the current node. Deleted or unknown ids raise :class:`UnknownTaxon`.
    """

    __slots__ = (
        "_child_start",
        "_children",
        "_deleted",
        "_index",
        "_merged",
        "_name_offsets",
        "_names",
        "_parents",
        "_rank_codes",
        "_ranks",
        "_taxids",
    )

    def __init__(
        self,
        taxids: array,
        parents: array,
        rank_codes: bytes,
        ranks: tuple[str, ...],
        names: bytes,
        name_offsets: array,
        merged: dict[int, int],
        deleted: array,
    ) -> None:
        """Build from columns sorted by taxid (use :meth:`from_taxdump` or :meth:`from_bytes`)."""
        self._taxids = taxids
        self._parents = parents
        self._rank_codes = rank_codes
        self._ranks = ranks
        self._names = names
        self._name_offsets = name_offsets
        self._merged = merged
        self._deleted = deleted
        self._index = _dense_index(taxids)
        self._child_start: array | None = None
        self._children: array | None = None

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_taxdump(
        cls,
        directory: str | os.PathLike[str] | None = None,
        *,
        nodes: Source | None = None,
        names: Source | None = None,
        merged: Source | None = None,
        delnodes: Source | None = None,
    ) -> Taxonomy:
        """Read a taxdump: a folder holding ``nodes.dmp`` (+ optional ``names``, ``merged``,
        ``delnodes``; each may end in ``.gz``/``.zst``/...) or the files given one by one."""
        if directory is not None:
            folder = Path(directory)

            def find(stem: str) -> Path | None:
                hits = sorted(folder.glob(stem + "*"))
                return hits[0] if hits else None

            nodes = nodes or find("nodes.dmp")
            names = names or find("names.dmp")
            merged = merged or find("merged.dmp")
            delnodes = delnodes or find("delnodes.dmp")
        if nodes is None:
            raise InputFormatError(str(directory), None, "no nodes.dmp found")

        taxids = array("I")
        parents = array("I")
        codes = bytearray()
        rank_of: dict[bytes, int] = {}
        for found in _scan(nodes, _NODE, "nodes.dmp"):
            if not found:
                continue
            ids, ups, rank_names = zip(*found)
            taxids.extend(map(int, ids))
            parents.extend(map(int, ups))
            for rank in set(rank_names).difference(rank_of):
                rank_of[rank] = len(rank_of) + 1
            codes.extend(map(rank_of.__getitem__, rank_names))
        if len(rank_of) > 255:
            raise InputFormatError(source_name(nodes, None), None, "more than 255 distinct ranks")
        # Rank codes in sorted order, so the serialised bytes do not depend on line order.
        ordered = sorted(rank_of)
        remap = bytearray(256)
        for new, rank in enumerate(ordered):
            remap[rank_of[rank]] = new
        rank_codes = bytes(codes).translate(bytes(remap))
        ranks = tuple(rank.decode("utf-8", "replace") for rank in ordered)

        if not all(map(operator.lt, taxids, islice(taxids, 1, None))):
            order = sorted(range(len(taxids)), key=taxids.__getitem__)
            for a, b in pairwise(order):
                if taxids[a] == taxids[b]:
                    raise InputFormatError(
                        source_name(nodes, None), None, f"taxon {taxids[a]} appears twice"
                    )
            taxids = array("I", [taxids[i] for i in order])
            parents = array("I", [parents[i] for i in order])
            rank_codes = bytes(rank_codes[i] for i in order)

        name_list = [b""] * len(taxids)
        if names is not None:
            index = _dense_index(taxids)
            top = len(index)
            for found in _scan(names, _NAME, "names.dmp", strict=False):
                for taxid, text in found:
                    t = int(taxid)
                    if t < top and index[t] >= 0:
                        name_list[index[t]] = text
        name_offsets = array("I", [0])
        name_offsets.extend(accumulate(map(len, name_list)))

        merged_map: dict[int, int] = {}
        if merged is not None:
            for found in _scan(merged, _MERGED, "merged.dmp"):
                merged_map.update((int(a), int(b)) for a, b in found)
        deleted = array("I")
        if delnodes is not None:
            for found in _scan(delnodes, _DELNODE, "delnodes.dmp"):
                deleted.extend(int(x) for x in found)
            deleted = array("I", sorted(set(deleted)))
        return cls(
            taxids,
            parents,
            rank_codes,
            ranks,
            b"".join(name_list),
            name_offsets,
            merged_map,
            deleted,
        )

    # ------------------------------------------------------------------ serialisation

    def to_bytes(self, level: int = DEFAULT_LEVEL) -> bytes:
        """The deterministic serialised form (see the module docstring)."""
        n = len(self._taxids)
        deltas = array("I", [self._taxids[0]] if n else [])
        deltas.extend(b - a for a, b in zip(self._taxids, self._taxids[1:]))
        lengths = array("I", [b - a for a, b in zip(self._name_offsets, self._name_offsets[1:])])
        old = sorted(self._merged)
        old_deltas = array("I", [b - a for a, b in zip([0] + old, old)])
        new = array("I", [self._merged[k] for k in old])
        del_deltas = array("I", [b - a for a, b in zip([0] + list(self._deleted), self._deleted)])
        rank_bytes = [r.encode("utf-8") for r in self._ranks]
        parts = [
            struct.pack("<5I", n, len(rank_bytes), len(old), len(self._deleted), len(self._names)),
            b"".join(bytes([len(r)]) + r for r in rank_bytes),
            _le(deltas),
            _le(self._parents),
            bytes(self._rank_codes),
            _le(lengths),
            self._names,
            _le(old_deltas),
            _le(new),
            _le(del_deltas),
        ]
        params = zstandard.ZstdCompressionParameters.from_level(
            level,
            window_log=27,
            enable_ldm=True,
            threads=0,
            write_checksum=1,
            write_content_size=1,
        )
        payload = b"".join(parts)
        frame = zstandard.ZstdCompressor(compression_params=params).compress(payload)
        return FORMAT_MAGIC + bytes([FORMAT_VERSION]) + frame

    @classmethod
    def from_bytes(cls, data: bytes) -> Taxonomy:
        """Rebuild a :class:`Taxonomy` from :meth:`to_bytes` output."""
        if data[:4] != FORMAT_MAGIC:
            raise InputFormatError("<taxonomy object>", None, "not a serialised taxonomy")
        if data[4:5] != bytes([FORMAT_VERSION]):
            raise InputFormatError(
                "<taxonomy object>", None, f"unknown taxonomy format version {data[4:5]!r}"
            )
        try:
            payload = zstandard.ZstdDecompressor().decompress(data[5:])
        except zstandard.ZstdError as exc:
            raise InputFormatError(
                "<taxonomy object>", None, f"corrupt taxonomy object ({exc})"
            ) from exc
        n, n_ranks, n_merged, n_deleted, n_name_bytes = struct.unpack_from("<5I", payload)
        at = 20
        ranks = []
        for _ in range(n_ranks):
            size = payload[at]
            ranks.append(payload[at + 1 : at + 1 + size].decode("utf-8"))
            at += 1 + size

        def take(count: int, code: str = "I") -> array:
            nonlocal at
            out = array(code)
            out.frombytes(payload[at : at + count * out.itemsize])
            if sys.byteorder == "big":
                out.byteswap()
            at += count * out.itemsize
            return out

        taxids = array("I", accumulate(take(n)))
        parents = take(n)
        rank_codes = payload[at : at + n]
        at += n
        lengths = take(n)
        names = payload[at : at + n_name_bytes]
        at += n_name_bytes
        offsets = array("I", [0])
        offsets.extend(accumulate(lengths))
        old = list(accumulate(take(n_merged)))
        new = take(n_merged)
        deleted = array("I", accumulate(take(n_deleted)))
        return cls(
            taxids,
            parents,
            bytes(rank_codes),
            tuple(ranks),
            bytes(names),
            offsets,
            dict(zip(old, new)),
            deleted,
        )

    # ------------------------------------------------------------------ lookups

    def __len__(self) -> int:
        return len(self._taxids)

    def __contains__(self, taxid: object) -> bool:
        """True for a current node (merged and deleted ids are not nodes)."""
        return isinstance(taxid, int) and 0 <= taxid < len(self._index) and self._index[taxid] >= 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Taxonomy):
            return NotImplemented
        return (
            self._taxids == other._taxids
            and self._parents == other._parents
            and self._rank_codes == other._rank_codes
            and self._ranks == other._ranks
            and self._names == other._names
            and self._name_offsets == other._name_offsets
            and self._merged == other._merged
            and self._deleted == other._deleted
        )

    __hash__ = None  # type: ignore[assignment]

    def taxids(self) -> Iterator[int]:
        """Every current taxid, ascending."""
        return iter(self._taxids)

    @property
    def merged(self) -> dict[int, int]:
        """Copy of the merged-id map (old -> new)."""
        return dict(self._merged)

    @property
    def deleted(self) -> tuple[int, ...]:
        """Deleted taxids, ascending."""
        return tuple(self._deleted)

    def is_deleted(self, taxid: int) -> bool:
        at = bisect_left(self._deleted, taxid)
        return at < len(self._deleted) and self._deleted[at] == taxid

    def status(self, taxid: int) -> str:
        """``"current"``, ``"merged"``, ``"deleted"`` or ``"unknown"``."""
        if taxid in self:
            return "current"
        if taxid in self._merged:
            return "merged"
        if self.is_deleted(taxid):
            return "deleted"
        return "unknown"

    def resolve(self, taxid: int) -> int:
        """The current taxid for ``taxid``, following merged.dmp; deleted/unknown raise."""
        if taxid in self:
            return taxid
        seen = 0
        while taxid in self._merged and seen < 32:  # merges can chain across releases
            taxid = self._merged[taxid]
            seen += 1
            if taxid in self:
                return taxid
        raise UnknownTaxon(taxid, deleted=self.is_deleted(taxid))

    def _node(self, taxid: int) -> int:
        if not (isinstance(taxid, int) and 0 <= taxid < len(self._index)) or self._index[taxid] < 0:
            taxid = self.resolve(taxid)
        return self._index[taxid]

    def parent(self, taxid: int) -> int:
        """Parent taxid (the root's parent is the root itself, as in nodes.dmp)."""
        return self._parents[self._node(taxid)]

    def rank(self, taxid: int) -> str:
        return self._ranks[self._rank_codes[self._node(taxid)]]

    def name(self, taxid: int) -> str:
        """Scientific name ('' when names.dmp was not read)."""
        i = self._node(taxid)
        return self._names[self._name_offsets[i] : self._name_offsets[i + 1]].decode(
            "utf-8", "replace"
        )

    def lineage(self, taxid: int) -> list[int]:
        """Taxids from the root down to ``taxid`` (resolved), both included."""
        i = self._node(taxid)
        path = [self._taxids[i]]
        for _ in range(1000):
            parent = self._parents[i]
            if parent == path[-1]:
                break
            path.append(parent)
            j = self._index[parent] if parent < len(self._index) else -1
            if j < 0:
                break  # a parent missing from nodes.dmp: stop at it rather than loop
            i = j
        path.reverse()
        return path

    def is_ancestor(self, ancestor: int, taxid: int) -> bool:
        """True when ``ancestor`` is ``taxid`` or lies on its lineage."""
        return self.resolve(ancestor) in self.lineage(taxid)

    def _child_index(self) -> tuple[array, array]:
        """(start per node, children) in CSR form, built on first use."""
        if self._child_start is None or self._children is None:
            self._build_children()
        return self._child_start, self._children  # type: ignore[return-value]

    def _build_children(self) -> None:
        n = len(self._taxids)
        counts = array("I", bytes(4 * (n + 1)))
        parent_index = array("i", [-1]) * n
        index = self._index
        parents = self._parents
        for i in range(n):
            p = parents[i]
            j = index[p] if p < len(index) else -1
            if j >= 0 and p != self._taxids[i]:
                parent_index[i] = j
                counts[j + 1] += 1
        start = array("I", accumulate(counts))
        fill = array("I", start)
        children = array("I", bytes(4 * start[-1]))
        for i in range(n):
            j = parent_index[i]
            if j >= 0:
                children[fill[j]] = i
                fill[j] += 1
        self._child_start = start
        self._children = children

    def children(self, taxid: int) -> list[int]:
        """Direct children taxids, ascending."""
        start, children = self._child_index()
        taxids = self._taxids
        i = self._node(taxid)
        return [taxids[c] for c in children[start[i] : start[i + 1]]]

    def descendants(self, taxid: int, *, include_self: bool = True) -> list[int]:
        """Every taxid in the subtree under ``taxid`` (breadth first)."""
        start, children = self._child_index()
        taxids = self._taxids
        root = self._node(taxid)
        queue = [root]
        for i in queue:  # the list grows while it is walked: a breadth-first search
            queue.extend(children[start[i] : start[i + 1]])
        if not include_self:
            queue = queue[1:]
        return [taxids[i] for i in queue]


def _dense_index(taxids: array) -> array:
    """taxid -> row in the sorted node columns, -1 where there is no node."""
    index = array("i", [-1]) * ((taxids[-1] + 1) if len(taxids) else 1)
    for i, taxid in enumerate(taxids):
        index[taxid] = i
    return index


def _le(values: array) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


# ---------------------------------------------------------------------- header fields


def taxon_from_header(header: bytes) -> int | None:
    """The UniProt ``OX=<taxid>`` of a header (of a stored GenBank/EMBL record: its ``/db_xref="taxon:N"``), or None."""
    at = header.find(b" OX=")  # a plain find first: a regex search per header costs 4x more
    if at < 0 and is_stored_flatfile(header):
        return stored_taxon(header)  # a GenBank/EMBL record: its source feature's taxon
    found = _OX.match(header, at) if at >= 0 else _OX_ANYWHERE.search(header)
    return int(found.group(1)) if found else None


# ---------------------------------------------------------------------- accession maps


class AccessionTaxonMap:
    """Accession -> taxid, with the fall-backs real identifiers need.

    :meth:`get` tries the accession as given, then without its ``.version``,
    then, when ``prefix_separator`` is set, the part before the *last*
    separator (Web of Life 16S ids ``G000005825_1`` -> genome ``G000005825``).
    """

    def __init__(self, mapping: dict[str, int], *, prefix_separator: str | None = None) -> None:
        self._map = mapping
        self.prefix_separator = prefix_separator

    def __len__(self) -> int:
        return len(self._map)

    def get(self, accession: str) -> int | None:
        found = self._map.get(accession)
        if found is not None:
            return found
        bare = _VERSION.sub("", accession)
        if bare != accession:
            found = self._map.get(bare)
            if found is not None:
                return found
        if self.prefix_separator and self.prefix_separator in accession:
            return self._map.get(accession.rpartition(self.prefix_separator)[0])
        return None

    @classmethod
    def from_file(
        cls,
        source: Source,
        *,
        prefix_separator: str | None = None,
        wanted: Collection[str] | None = None,
    ) -> AccessionTaxonMap:
        """Load an NCBI ``accession2taxid`` file or a two-column map (told apart by the header).

        ``wanted`` keeps only those accessions (bare, without version): the
        full NCBI files hold hundreds of millions of rows, so a database
        import passes the accessions it saw instead of loading them all.
        """
        mapping: dict[str, int] = {}
        for accession, taxid in iter_accession_taxids(source):
            if wanted is None or accession in wanted:
                mapping[accession] = taxid
        return cls(mapping, prefix_separator=prefix_separator)


_NCBI_HEADER = b"accession\taccession.version\ttaxid\tgi"
_NCBI_ROW = re.compile(rb"\n([^\t\n]+)\t[^\t\n]*\t(\d+)(?:\t[^\n]*|\r)?(?=\n)")
_PAIR_ROW = re.compile(rb"\n(\S+)[ \t]+(\d+)[ \t\r]*(?=\n)")


def iter_accession_taxids(source: Source) -> Iterator[tuple[str, int]]:
    """Stream (accession, taxid) from an accession2taxid file or a two-column map.

    For NCBI's layout the bare ``accession`` column is the key (lookups strip
    the version). A row that fits neither layout is an :class:`InputFormatError`.
    """
    name = source_name(source, None)
    with open_input(source) as stream:
        blocks = _line_blocks(stream)
        first = next(blocks, None)
        if first is None:
            return
        block, line = first
        pattern = _PAIR_ROW
        if block.startswith(_NCBI_HEADER):
            pattern = _NCBI_ROW
            block, line = block[block.index(b"\n") + 1 :], 2
        for found in _matches(chain([(block, line)], blocks), pattern, name, "accession/taxid"):
            yield from [(acc.decode("utf-8", "surrogateescape"), int(tax)) for acc, tax in found]
