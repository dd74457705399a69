"""Taxonomy-aware, content-defined chunking: determinism, limits, bounded memory."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talaria_storage.errors import ConfigError
from talaria_storage.sequences.canonical import sequence_hash
from talaria_storage.sequences.chunking import (
    ChunkingPolicy,
    PlannedChunk,
    TaxonChunker,
    plan_chunks,
    record_size,
)
from talaria_storage.sequences.fasta import FastaRecord, read_fasta
from talaria_storage.sequences.taxonomy import taxon_from_header

POLICY = ChunkingPolicy(min_size=2_000, target_size=6_000, max_size=12_000, memory_budget=50_000)


def make_records(count: int, seed: int, taxa: int = 5) -> list[tuple[FastaRecord, int, bytes]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        residues = bytes(rng.choice(b"ACDEFGHIKLMNPQRSTVWY") for _ in range(rng.randint(20, 400)))
        record = FastaRecord(f"s{seed}_{i}".encode(), residues)
        out.append((record, rng.randint(1, taxa), sequence_hash(residues).digest))
    return out


def chunk_set(
    items, policy: ChunkingPolicy = POLICY
) -> set[tuple[tuple[FastaRecord, ...], tuple[int, ...]]]:
    return {(c.records, c.taxids) for c in plan_chunks(items, policy)}


def test_every_record_lands_in_exactly_one_chunk() -> None:
    items = make_records(500, 1)
    ordinals = sorted(o for c in plan_chunks(items, POLICY) for o in c.ordinals)
    assert ordinals == list(range(500))


def test_chunks_hold_records_of_one_taxon_unless_packed_tails() -> None:
    chunks = list(plan_chunks(make_records(800, 2), POLICY))
    big = [c for c in chunks if c.size >= POLICY.min_size and len(c.taxa) == 1]
    assert big and all(len(set(c.taxids)) == 1 for c in big)


def test_chunk_sizes_respect_max_and_min_except_the_last_pack() -> None:
    chunks = list(plan_chunks(make_records(800, 3), POLICY))
    assert all(c.size <= POLICY.max_size for c in chunks)
    assert sum(c.size < POLICY.min_size for c in chunks) <= 1


def test_a_record_larger_than_max_size_is_a_chunk_of_its_own() -> None:
    huge = FastaRecord(b"huge", b"A" * 20_000)
    items = make_records(50, 4, taxa=1) + [(huge, 1, hashlib.sha256(b"x").digest())]
    chunks = list(plan_chunks(items, POLICY))
    assert any(c.records == (huge,) for c in chunks)


def test_same_records_give_the_same_chunks() -> None:
    items = make_records(600, 5)
    assert [c.records for c in plan_chunks(items, POLICY)] == [
        c.records for c in plan_chunks(items, POLICY)
    ]


def test_a_taxon_keeps_its_chunks_when_other_taxa_change() -> None:
    items = make_records(600, 6, taxa=3)
    changed = [it for it in items if it[1] != 2] + make_records(
        300, 99, taxa=1
    )  # taxon 2 dropped, taxon 1 grows
    changed = [(r, 3 if t == 3 else 1, h) for r, t, h in changed]

    def own(chunks):  # taxon 3's chunks; a tail under min_size may be packed with neighbours
        return {c.records for c in chunks if c.taxa == (3,) and c.size >= POLICY.min_size}

    before = own(plan_chunks(items, POLICY))
    assert before and before == own(plan_chunks(changed, POLICY))


def test_interleaving_of_taxa_does_not_change_the_chunks() -> None:
    items = make_records(600, 7)
    by_taxon = sorted(items, key=lambda it: it[1])  # stable: each taxon keeps its order
    assert chunk_set(items) == chunk_set(by_taxon)


def test_an_insertion_disturbs_only_nearby_chunks_of_its_group() -> None:
    items = make_records(2000, 8, taxa=1)
    extra = make_records(1, 1234, taxa=1)
    edited = items[:1000] + extra + items[1000:]
    before = chunk_set(items)
    after = chunk_set(edited)
    assert len(before - after) <= 3 and len(after - before) <= 3
    assert len(before & after) >= len(before) - 3


def test_small_taxa_are_packed_together() -> None:
    items = make_records(200, 9, taxa=150)
    chunks = list(plan_chunks(items, POLICY))
    assert any(len(c.taxa) > 1 for c in chunks)
    assert len(chunks) < 150


def test_spilling_to_disk_gives_the_same_chunks(tmp_path: Path) -> None:
    items = make_records(1500, 10, taxa=40)
    tight = ChunkingPolicy(min_size=2_000, target_size=6_000, max_size=12_000, memory_budget=12_000)
    roomy = ChunkingPolicy(
        min_size=2_000, target_size=6_000, max_size=12_000, memory_budget=1 << 30
    )
    chunker = TaxonChunker(tight, spill_dir=str(tmp_path))
    spilled: list[PlannedChunk] = []
    for item in items:
        spilled.extend(chunker.add(*item))
    spilled.extend(chunker.finish())
    assert chunker.spilled_bytes > 0
    assert {(c.records, c.ordinals) for c in spilled} == {
        (c.records, c.ordinals) for c in plan_chunks(items, roomy)
    }


def test_policy_limits_are_validated() -> None:
    with pytest.raises(ConfigError):
        ChunkingPolicy(min_size=10, target_size=5, max_size=20)
    with pytest.raises(ConfigError):
        ChunkingPolicy(min_size=1, target_size=5, max_size=20, memory_budget=10)


def test_record_size_counts_header_and_residues() -> None:
    assert record_size(FastaRecord(b"abc", b"ACGT")) == 7 + 16


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 400), st.integers(0, 10_000), st.integers(1, 30))
def test_chunking_is_a_partition_in_group_order(count: int, seed: int, taxa: int) -> None:
    items = make_records(count, seed, taxa)
    chunks = list(plan_chunks(items, POLICY))
    seen = sorted(o for c in chunks for o in c.ordinals)
    assert seen == list(range(count))
    for chunk in chunks:  # inside a chunk, a taxon's records keep input order
        for taxon in chunk.taxa:
            own = [o for o, t in zip(chunk.ordinals, chunk.taxids) if t == taxon]
            assert own == sorted(own)


@pytest.mark.shared_data
def test_uniprot_proteomes_chunk_by_their_ox_taxon(shared_data: Path) -> None:
    path = shared_data / "protein/uniprot_proteomes/UP000002717-S.elongatus.fasta.gz"
    items = [
        (r, taxon_from_header(r.header) or 0, sequence_hash(r.residues)) for r in read_fasta(path)
    ]
    chunks = list(
        plan_chunks(items, ChunkingPolicy(min_size=100_000, target_size=300_000, max_size=1 << 20))
    )
    assert {c.taxa for c in chunks} == {(1140,)}
    assert len(chunks) > 1
