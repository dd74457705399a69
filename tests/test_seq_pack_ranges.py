"""A sequence pack read by byte ranges gives what the whole pack gives, reads only the blocks its slots
lie in, and refuses (and drops from the cache) a block that fails its check; protein residues are cut
in small blocks, nucleotides in large ones."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from talaria_storage.backends.faults import RequestCountingBackend
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.core.errors import CompressionError, ConfigError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.sequences.sequence_pack import PackReader, encode_pack
from talaria_storage.sequences.streams import RESIDUES, ChunkCodec
from talaria_storage.storage.cache import CachedBackend, ObjectCache
from talaria_storage.storage.chunk_ranges import ChunkRanges
from talaria_storage.storage.store import Store

AMINO = b"ACDEFGHIKLMNPQRSTVWY"
_RANDOM = random.Random(11)
PROTEINS = [bytes(_RANDOM.choices(AMINO, k=300 + i % 700)) for i in range(600)]


def _stored(store: Store, sequences: list[bytes]) -> SHA256Hash:
    return store.store_chunk(encode_pack(sequences), compress=False)


def test_a_pack_read_by_ranges_gives_every_slot_the_whole_pack_gives() -> None:
    store = Store(MemoryBackend())
    h = _stored(store, PROTEINS)
    ranged = store.open_ranges(h)
    assert isinstance(ranged, ChunkRanges)
    reader = PackReader(ranged)
    assert [reader.residues(slot) for slot in range(len(PROTEINS))] == PROTEINS
    assert reader.residues(5, 10, 50) == PROTEINS[5][10:50]


def test_one_slot_read_by_ranges_reads_its_block_and_the_pack_table_only() -> None:
    counting = RequestCountingBackend(MemoryBackend())
    store = Store(counting)
    h = _stored(store, PROTEINS)
    counting.reset()
    reader = PackReader(store.open_ranges(h))
    assert reader.residues(len(PROTEINS) // 2) == PROTEINS[len(PROTEINS) // 2]
    assert counting.counts == {"get_range": 2}


def test_every_sequence_of_a_ranged_pack_reads_the_pack_once_whole_and_hashed() -> None:
    counting = RequestCountingBackend(MemoryBackend())
    store = Store(counting)
    h = _stored(store, PROTEINS)
    counting.reset()
    assert PackReader(store.open_ranges(h)).sequences() == PROTEINS
    assert counting.counts == {"get_range": 2}  # the first read, then the rest


def test_a_corrupt_block_read_by_range_is_refused_and_its_cached_range_dropped(tmp_path: Path) -> None:
    remote = RequestCountingBackend(FilesystemBackend(str(tmp_path / "remote")))
    h = _stored(Store(remote), PROTEINS)
    key = "chunks/" + h.to_hex()
    stored = bytearray(remote.get(key))
    stored[len(stored) // 2] ^= 0xFF
    remote.put(key, bytes(stored))
    store = Store(CachedBackend(remote, ObjectCache(tmp_path / "cache", 1 << 26, 0)))
    slot = len(PROTEINS) // 2
    reads = []
    for _ in range(2):
        remote.reset()
        reader = PackReader(store.open_ranges(h))
        with pytest.raises(CompressionError, match="sequence pack"):
            [reader.residues(s) for s in range(slot - 60, slot + 60)]
        reads.append(remote.counts.get("get_range", 0))
    # The second reader read from the remote all the first one did: no cached range was served.
    assert reads[0] >= 2 and reads[1] == reads[0]


def test_protein_residues_are_cut_in_protein_blocks_and_nucleotides_in_large_ones() -> None:
    codec = ChunkCodec(block_size=1 << 18, protein_block_size=1 << 14)
    dna = [bytes(_RANDOM.choices(b"ACGT", k=1000)) for _ in range(300)]
    protein_blocks = PackReader(encode_pack(PROTEINS, codec=codec))._streams[RESIDUES].blocks
    dna_blocks = PackReader(encode_pack(dna, codec=codec))._streams[RESIDUES].blocks
    assert max(raw for _, raw, _, _ in protein_blocks) == 1 << 14
    assert len(dna_blocks) == 2 and dna_blocks[0][1] == 1 << 18


def test_a_block_size_below_the_protein_block_size_applies_to_proteins_too() -> None:
    blocks = PackReader(encode_pack(PROTEINS, codec=ChunkCodec(block_size=4096)))._streams[RESIDUES].blocks
    assert max(raw for _, raw, _, _ in blocks) == 4096


def test_the_protein_block_size_is_validated_and_round_trips_as_data() -> None:
    codec = ChunkCodec(protein_block_size=1 << 15)
    assert ChunkCodec.from_dict(codec.to_dict()) == codec
    with pytest.raises(ConfigError, match="protein_block_size"):
        ChunkCodec(protein_block_size=100)
