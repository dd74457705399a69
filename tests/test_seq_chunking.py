"""Taxonomy-aware, content-defined chunking: determinism, limits, bounded memory."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talaria_storage.core.errors import ConfigError
from talaria_storage.formats.fasta import FastaRecord, FastqRecord, read_fasta
from talaria_storage.sequences.canonical import sequence_hash
from talaria_storage.sequences.chunking import (
    ChunkingPolicy,
    PlannedChunk,
    TaxonChunker,
    hash_prefix,
    plan_chunks,
    record_size,
)
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


def test_record_size_counts_residues_and_a_fixed_weight_not_the_header() -> None:
    assert record_size(FastaRecord(b"abc", b"ACGT")) == 4 + 64
    assert record_size(FastaRecord(b"a much longer header", b"ACGT")) == 4 + 64


def test_rewriting_every_header_keeps_every_chunk_boundary() -> None:
    items = make_records(800, 11, taxa=3)
    renamed = [(FastaRecord(b"renamed " * 5 + r.header, r.residues), t, h) for r, t, h in items]
    assert [c.ordinals for c in plan_chunks(items, POLICY)] == [
        c.ordinals for c in plan_chunks(renamed, POLICY)
    ]


def test_keys_travel_with_their_records() -> None:
    chunker = TaxonChunker(POLICY)
    planned: list[PlannedChunk] = []
    for ordinal, (record, taxid, digest) in enumerate(make_records(300, 12)):
        planned.extend(chunker.add(record, taxid, digest, key=b"%08d" % ordinal))
    planned.extend(chunker.finish())
    assert all(c.keys == b"".join(b"%08d" % o for o in c.ordinals) for c in planned)


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


def test_a_batch_gives_the_same_chunks_as_one_record_at_a_time(tmp_path: Path) -> None:
    items = make_records(1500, 13, taxa=40)
    tight = ChunkingPolicy(min_size=2_000, target_size=6_000, max_size=12_000, memory_budget=12_000)
    one, batch = TaxonChunker(tight, str(tmp_path)), TaxonChunker(tight, str(tmp_path))
    singly = [c for r, t, h in items for c in one.add(r, t, h, key=h[:4])] + list(one.finish())
    batched = []
    for at in range(0, len(items), 100):
        part = items[at : at + 100]
        batched += batch.extend(
            [r.header for r, _, _ in part],
            [r.residues for r, _, _ in part],
            [r.layout for r, _, _ in part],
            [t for _, t, _ in part],
            [hash_prefix(h) for _, _, h in part],
            b"".join(h[:4] for _, _, h in part),
        )
    batched += batch.finish()
    assert batched == singly


def test_fastq_records_are_chunked_with_their_qualities() -> None:
    reads = [FastqRecord(b"r%d" % i, b"ACGT" * 50, b"", b"I" * 200) for i in range(100)]
    chunks = list(plan_chunks([(r, 0, sequence_hash(r.residues).digest) for r in reads], POLICY))
    assert [r for c in chunks for r in c.records] == reads


def test_a_newline_in_a_sequence_is_refused() -> None:
    with pytest.raises(ValueError, match="newline"):
        list(plan_chunks([(FastaRecord(b"a", b"AC\nGT"), 0, b"\x00" * 32)], POLICY))


def reference_chunks(items: list[tuple[FastaRecord, int, bytes]], policy: ChunkingPolicy) -> list[tuple[int, ...]]:
    """The module docstring's rule, one record at a time, nothing clever: ordinals per chunk."""
    open_: dict[int, tuple[list[int], int]] = {}
    out: list[tuple[int, ...]] = []
    for ordinal, (record, taxid, digest) in enumerate(items):
        size = record_size(record)
        ordinals, total = open_.get(taxid, ([], 0))
        if total and total + size > policy.max_size:
            out.append(tuple(ordinals))
            ordinals, total = [], 0
        ordinals, total = [*ordinals, ordinal], total + size
        if total >= policy.min_size and policy.is_boundary(digest, size):
            out.append(tuple(ordinals))
            ordinals, total = [], 0
        open_[taxid] = (ordinals, total)
    pack: list[int] = []
    pack_size = 0
    for taxid in sorted(open_):
        ordinals, total = open_[taxid]
        if not total:
            continue
        if total >= policy.min_size:
            out.append(tuple(ordinals))
            continue
        if pack and pack_size + total > policy.max_size:
            out.append(tuple(pack))
            pack, pack_size = [], 0
        pack, pack_size = pack + ordinals, pack_size + total
        if pack_size >= policy.min_size:
            out.append(tuple(pack))
            pack, pack_size = [], 0
    if pack:
        out.append(tuple(pack))
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 600), st.integers(0, 10_000), st.integers(1, 8), st.sampled_from([1, 7, 100, 1000]))
def test_batches_cut_exactly_where_the_rule_says(count: int, seed: int, taxa: int, batch: int) -> None:
    rng = random.Random(seed)
    items = make_records(count, seed, taxa)
    for _ in range(count // 50):  # some records larger than max_size
        _record, taxid, digest = items[rng.randrange(len(items))]
        items.append((FastaRecord(b"big", b"W" * rng.randint(5_000, 30_000)), taxid, digest))
    rng.shuffle(items)
    chunker = TaxonChunker(POLICY)
    planned = []
    for at in range(0, len(items), batch):
        part = items[at : at + batch]
        planned += chunker.extend(
            [r.header for r, _, _ in part], [r.residues for r, _, _ in part], [r.layout for r, _, _ in part],
            [t for _, t, _ in part], [hash_prefix(h) for _, _, h in part],
        )
    planned += chunker.finish()
    assert [c.ordinals for c in planned] == reference_chunks(items, POLICY)
