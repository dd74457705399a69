"""Similarity-ordered packs: alike sequences laid out side by side when that is smaller; reads stay exact."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from reduction_data import AMINO, mutate
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.core.errors import CompressionError
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.sequences.sequence_pack import PackReader, _encode_layout, encode_pack
from talaria_storage.sequences.similarity_order import gains_from_long_matches, similarity_order
from talaria_storage.sequences.streams import SLOT_ORDER, ChunkCodec
from talaria_storage.storage.store import Store

SMALL_BLOCKS = ChunkCodec(block_size=8192)


def scattered_families(seed: int = 1, families: int = 30, size: int = 8, length: int = 250) -> list[bytes]:
    """Variants of ``families`` proteins, interleaved so that no two of a family are neighbours."""
    rng = random.Random(seed)
    bases = ["".join(rng.choice(AMINO) for _ in range(length)) for _ in range(families)]
    variants = [mutate(rng, bases[i % families], 0.03).encode() for i in range(families * size)]
    return list(dict.fromkeys(variants))


def unrelated(seed: int = 2, count: int = 200, length: int = 250) -> list[bytes]:
    rng = random.Random(seed)
    return ["".join(rng.choice(AMINO) for _ in range(length)).encode() for _ in range(count)]


def test_scattered_families_are_laid_out_together_and_the_pack_is_smaller() -> None:
    sequences = scattered_families()
    pack = encode_pack(sequences, codec=SMALL_BLOCKS)
    plain = _encode_layout(b"".join(sequences), [len(s) for s in sequences], None, SMALL_BLOCKS, None)
    assert SLOT_ORDER in PackReader(pack)._streams
    assert len(pack) < 0.8 * len(plain)


def test_every_slot_and_range_of_a_laid_out_pack_reads_back() -> None:
    sequences = scattered_families()
    reader = PackReader(encode_pack(sequences, codec=SMALL_BLOCKS))
    assert [reader.residues(slot) for slot in range(len(sequences))] == sequences
    assert reader.residues(17, 40, 90) == sequences[17][40:90]
    assert reader.sequences() == sequences


def test_unrelated_sequences_keep_the_record_order() -> None:
    pack = encode_pack(unrelated(), codec=SMALL_BLOCKS)
    assert pack[4] == 1  # format 1: no slot order stream
    assert SLOT_ORDER not in PackReader(pack)._streams


def test_sequences_alike_only_in_length_are_never_neighbours() -> None:
    assert similarity_order(unrelated()) is None


def test_a_family_follows_its_longest_member() -> None:
    rng = random.Random(4)
    base = "".join(rng.choice(AMINO) for _ in range(300))
    longest = base.encode()
    shorter = base[:280].encode()
    strangers = unrelated(seed=5, count=3, length=290)
    placement = similarity_order([strangers[0], shorter, strangers[1], longest, strangers[2]])
    assert placement is not None
    assert placement.index(1) == placement.index(3) + 1


def test_the_layout_depends_only_on_the_sequences() -> None:
    sequences = scattered_families()
    assert encode_pack(sequences, codec=SMALL_BLOCKS) == encode_pack(list(sequences), codec=SMALL_BLOCKS)


def test_a_pack_with_nothing_alike_across_blocks_gains_nothing_from_long_matches() -> None:
    assert gains_from_long_matches(b"".join(unrelated()), 8192) < 0.03
    assert gains_from_long_matches(b"".join(scattered_families()), 8192) > 0.1


def test_fastq_packs_keep_the_record_order() -> None:
    sequences = scattered_families()
    pack = encode_pack(sequences, [b"I" * len(s) for s in sequences], codec=SMALL_BLOCKS)
    assert pack[4] == 1


def test_a_slot_order_that_is_not_a_permutation_is_refused() -> None:
    sequences = [b"MKV", b"MKVL", b"MQ"]
    broken = _encode_layout(b"".join(sequences), [3, 4, 2], None, SMALL_BLOCKS, [0, 0, 2])
    with pytest.raises(CompressionError, match="slot order stream is not an order of its slots"):
        PackReader(broken).residues(1)


def test_a_redundant_database_exports_byte_exact_from_laid_out_packs(tmp_path: Path) -> None:
    rng = random.Random(9)
    lines = []
    for number, residues in enumerate(scattered_families()):
        text = residues.decode()
        if number % 7 == 0:
            text = text[:20].lower() + text[20:]  # soft-masked: the edit is kept in the chunk
        lines.append(f">P{number:05d} family member {rng.randrange(1000)}")
        lines.extend(text[i : i + 60] for i in range(0, len(text), 60))
    original = ("\n".join(lines) + "\n").encode()
    (tmp_path / "families.fa").write_bytes(original)
    backend = MemoryBackend()
    db = SequenceDatabase(Store(backend), "fam", codec=SMALL_BLOCKS, processes=0)
    db.import_files([tmp_path / "families.fa"], version="v1")
    out = io.BytesIO()
    db.export(out, version="v1")
    assert out.getvalue() == original
    assert any(b"TSQP\x02" in backend.get(info.key) for info in backend.list())
    assert db["P00015"].residues == scattered_families()[15]
