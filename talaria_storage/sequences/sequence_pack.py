"""The sequence pack: the residues (and FASTQ qualities) of records, each distinct sequence once, in slots.

Sequence pack streams: 2 lengths (u32 per slot), 6 residues and 8 qualities
(the slots' bytes concatenated), and in format 2 only, 13 slot order (u32
per slot: the slots in the order their residues are laid out, see
:mod:`~talaria_storage.sequences.similarity_order`). Format 1 lays them out
in slot order. A FASTA pack whose sequences resemble one another across
blocks is written in both layouts and the smaller is kept (format 1 on a
tie), so the form is chosen per pack by its size, never by a setting.

The container, its blocks and their integrity: :mod:`~talaria_storage.sequences.streams`.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Sequence
from itertools import accumulate
from operator import add
from typing import TYPE_CHECKING

from talaria_storage.core.errors import CompressionError
from talaria_storage.core.lazy_module import LazyModule
from talaria_storage.sequences.streams import (
    DEFAULT_CODEC,
    KIND_FASTA,
    KIND_FASTQ,
    LENGTHS,
    QUALITIES,
    RESIDUES,
    SLOT_ORDER,
    Blocks,
    ChunkCodec,
    Compressors,
    Container,
    LRUCache,
    encode_block,
    encode_blocked,
    encode_container,
)
from talaria_storage.sequences.varints import u32s
from talaria_storage.storage.chunk_ranges import ChunkRanges

if TYPE_CHECKING:
    from talaria_storage.sequences import similarity_order as similarity
else:
    # Imported when a pack is written: a look-up only reads packs, and the ordering's k-mer
    # filter cost a fresh process's first look-up ~5 ms to import.
    similarity = LazyModule("talaria_storage.sequences.similarity_order")

PACK_MAGIC = b"TSQP"
PACK_VERSION = 2
"""The newest pack format: 2 may lay slots out in another order (stream 13); 1 never does."""
_IN_SLOT_ORDER = 1


def encode_pack(
    sequences: Sequence[bytes],
    qualities: Sequence[bytes] | None = None,
    codec: ChunkCodec = DEFAULT_CODEC,
) -> bytes:
    """Serialise a sequence pack: slot ``i`` holds ``sequences[i]`` (and ``qualities[i]`` for FASTQ).

    The caller decides which strings go in (each distinct one once, in the
    order its records were first met); this function only lays them out.
    """
    if qualities is not None and (
        len(qualities) != len(sequences) or any(len(q) != len(s) for q, s in zip(qualities, sequences))
    ):
        raise ValueError("a FASTQ pack needs one quality string per sequence, of its length")
    return encode_pack_joined(
        b"".join(sequences),
        [len(s) for s in sequences],
        b"".join(qualities) if qualities is not None else None,
        codec,
    )


def encode_pack_joined(
    residues: bytes, lengths: Sequence[int], qualities: bytes | None, codec: ChunkCodec = DEFAULT_CODEC
) -> bytes:
    """:func:`encode_pack` on the slots already concatenated (``lengths``: bytes per slot).

    The import's workers receive slots this way: one ``bytes`` pickles far
    faster than a list of thousands.
    """
    count = len(lengths)
    if count >= 1 << 32:
        raise ValueError("too many slots for one sequence pack")
    if sum(lengths) != len(residues) or (qualities is not None and len(qualities) != len(residues)):
        raise ValueError("pack lengths do not add up to its residues (or qualities)")
    plain = _encode_layout(residues, lengths, qualities, codec, None)
    # A FASTQ pack keeps record order (its qualities, not its residues, are most of it), and so does
    # a pack whose sequences resemble none in another block: neither has anything to gain.
    if qualities is not None or similarity.gains_from_long_matches(residues, codec.block_size) < similarity.LONG_MATCH_GAIN:
        return plain
    offsets = list(accumulate(lengths, initial=0))
    slots = [residues[offsets[i] : offsets[i + 1]] for i in range(count)]
    placement = similarity.similarity_order(slots)
    if placement is None:
        return plain
    laid_out = _encode_layout(b"".join([slots[i] for i in placement]), lengths, None, codec, placement)
    return laid_out if len(laid_out) < len(plain) else plain


def _encode_layout(
    residues: bytes, lengths: Sequence[int], qualities: bytes | None, codec: ChunkCodec, placement: list[int] | None
) -> bytes:
    """One pack: ``residues`` (and ``qualities``) laid out in slot order, or in ``placement``'s order."""
    compressors = Compressors(codec.long_distance)
    entries: list[tuple[int, Blocks]] = [
        (LENGTHS, [encode_block(u32s(lengths), codec.meta_level, compressors)]),
        (RESIDUES, encode_blocked(residues, codec, compressors, codec.pack_nucleotides, residues=True)),
    ]
    if qualities is not None:
        entries.append((QUALITIES, encode_blocked(qualities, codec, compressors, False)))
    version = _IN_SLOT_ORDER
    if placement is not None:
        entries.append((SLOT_ORDER, [encode_block(u32s(placement), codec.meta_level, compressors)]))
        version = PACK_VERSION
    kind = KIND_FASTA if qualities is None else KIND_FASTQ
    return encode_container(PACK_MAGIC, version, kind, len(lengths), entries)


class PackReader(Container):
    """Random access to the slots of one serialised sequence pack.

    ``data``: the serialised pack, or a :class:`ChunkRanges` to read it by
    ranges (its stream table first, then only the blocks decoded).
    ``blocks``: an :class:`LRUCache` for decoded residue and quality blocks,
    shared with the readers of other packs (``owner``: this pack's hash, its
    key there); without one the reader keeps its last few blocks itself.
    """

    def __init__(self, data: bytes | ChunkRanges, *, blocks: LRUCache | None = None, owner: Hashable | None = None) -> None:
        super().__init__(
            data, PACK_MAGIC, PACK_VERSION, "sequence pack", blocks=blocks, owner=owner, oldest=_IN_SLOT_ORDER
        )
        self._sequences: list[bytes] | None = None
        self._starts: array | None = None
        self._bounds: tuple[array, array] | None = None

    @property
    def nbytes(self) -> int:
        """Bytes this reader holds besides the shared block cache, at most: the serialised pack,
        its offsets."""
        return self.object_bytes + 16 * self._count

    def lengths(self) -> list[int]:
        return list(self._u32(LENGTHS))

    @property
    def residue_blocks(self) -> int:
        """How many blocks the residues are stored in."""
        return len(self._stream(RESIDUES).blocks) if RESIDUES in self._streams else 0

    def _offsets(self) -> array:
        cached = self._cache.get(-1)
        if cached is None:
            cached = array("Q", [0])
            cached.extend(accumulate(self._u32(LENGTHS)))
            self._cache[-1] = cached
        return cached  # type: ignore[return-value]

    def _laid_out_starts(self) -> array | None:
        """Where each slot's residues start, when the pack lays them out in another order (else None)."""
        if SLOT_ORDER not in self._streams:
            return None
        if self._starts is None:
            # Plain arrays, not numpy: a look-up's first pack is read here, and numpy costs a
            # fresh process ~85 ms to import; a pack has a few thousand slots.
            placement = self._u32(SLOT_ORDER)
            if len(placement) != self._count or sorted(placement) != list(range(self._count)):
                raise CompressionError("sequence pack slot order stream is not an order of its slots")
            lengths = self._u32(LENGTHS)
            starts = array("Q", bytes(8 * self._count))
            at = 0
            for slot in placement:
                starts[slot] = at
                at += lengths[slot]
            self._starts = starts
        return self._starts

    def _slot(self, slot: int) -> tuple[int, int]:
        if not 0 <= slot < self._count:
            raise CompressionError(f"reference to slot {slot} of a sequence pack of {self._count}")
        starts, ends = self._bounds or self._slot_bounds()
        return starts[slot], ends[slot]

    def _slot_bounds(self) -> tuple[array, array]:
        """Where every slot's residues start and end in the residue stream, made once: a
        look-up then indexes two arrays (16 bytes a slot, counted in :attr:`nbytes`)."""
        starts = self._laid_out_starts()
        if starts is None:
            offsets = self._offsets()
            self._bounds = offsets, offsets[1:]  # starts keep the total at the end: unread
        else:
            self._bounds = starts, array("Q", map(add, starts, self._u32(LENGTHS)))
        return self._bounds

    def residues(self, slot: int, start: int = 0, end: int | None = None) -> bytes:
        """Residues ``[start:end]`` of ``slot`` (as written, case kept), decoding only their blocks.

        A 1 kb region of a chromosome costs one block, not the chromosome.
        """
        first, last = self._slot(slot)
        if start == 0 and end is None:
            return self._range(RESIDUES, first, last)
        begin, stop, _ = slice(start, end).indices(last - first)
        return self._range(RESIDUES, first + begin, first + max(begin, stop))

    def qualities(self, slot: int) -> bytes:
        if not self.fastq:
            raise ValueError("a FASTA sequence pack has no qualities")
        first, last = self._slot(slot)
        return self._range(QUALITIES, first, last)

    def sequences(self) -> list[bytes]:
        """Every slot's residues, decoding the residue stream once (kept for later calls)."""
        if self._sequences is None:
            self._sequences = self._split(RESIDUES)
        return self._sequences

    def all_qualities(self) -> list[bytes]:
        if not self.fastq:
            raise ValueError("a FASTA sequence pack has no qualities")
        return self._split(QUALITIES)

    def _split(self, stream_id: int) -> list[bytes]:
        offsets = self._offsets()
        data = self._whole(stream_id) if self._count else b""
        if len(data) != offsets[-1]:
            raise CompressionError(
                f"sequence pack {self._name(stream_id)} stream has {len(data)} bytes, its lengths say {offsets[-1]}"
            )
        starts = self._laid_out_starts()
        if starts is not None:
            lengths = self._u32(LENGTHS)
            return [data[starts[i] : starts[i] + lengths[i]] for i in range(self._count)]
        return [data[offsets[i] : offsets[i + 1]] for i in range(self._count)]
