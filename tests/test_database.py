"""SequenceDatabase: byte-exact import/export, deterministic chunks, versions, look-ups."""

from __future__ import annotations

import gzip
import io
import random
import re
from dataclasses import replace
from pathlib import Path

import pytest
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage import open_database
from talaria_storage.core.errors import HashMismatch, InputFormatError, StorageError
from talaria_storage.formats.fasta import open_input, segment_starts
from talaria_storage.index.local_index import open_index
from talaria_storage.sequences import importing
from talaria_storage.sequences.canonical import digests, sequence_hash
from talaria_storage.sequences.chunking import ChunkingPolicy
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.sequences.manifest import Manifest
from talaria_storage.sequences.order import OrderBuilder
from talaria_storage.sequences.record_chunk import ChunkReader
from talaria_storage.sequences.sequence_pack import PackReader
from talaria_storage.sequences.taxonomy import Taxonomy
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.store import Store
from talaria_storage.testing.emulators import require_sdk


def _store() -> Store:
    return Store(MemoryBackend())


def _plain(path: Path) -> bytes:
    with open_input(path) as stream:
        return stream.read()


def _round_trip(tmp_path: Path, data: bytes, name: str = "in.fa", **kwargs) -> bytes:
    path = tmp_path / name
    path.write_bytes(data)
    db = open_database(_store(), "db")
    db.import_files([path], version="v1", **kwargs)
    out = io.BytesIO()
    db.export(out)
    return out.getvalue()


FASTA_CASES = {
    "soft_masking": b">chr1 masked\nACGTacgtNNNNacgtACGT\nacgtACG\n>chr2\nacgt\n",
    "trailing_spaces": b">seq1 desc  \t\nACGT  \nAC GT\n>seq2 \nMKV\n",
    "crlf": b">a x\r\nACGTACGT\r\nACG\r\n>b\r\nMKVLA\r\n",
    "mixed_eol": b">a\r\nACGT\nAC\r\n>b\nAA\n",
    "odd_wrapping": b">a\nACG\nACGTACGT\nA\n\nAC\n>b\nACGTA\nACGTA\nAC\n",
    "duplicates": b">a\nMKVL\n>a\nMKVL\n>b\nmkvl\n>a\nMKVL\n",
    "no_final_newline": b">a\nACGT\n>b\nACGTAC",
    "empty_record": b">empty\n>a\nACGT\n>end\n",
}


@pytest.mark.parametrize("case", sorted(FASTA_CASES))
def test_generated_fasta_round_trips_byte_exactly(tmp_path: Path, case: str) -> None:
    alphabet = "any" if case == "trailing_spaces" else "iupac"  # spaces are residues only with "any"
    assert _round_trip(tmp_path, FASTA_CASES[case], alphabet=alphabet) == FASTA_CASES[case]


def test_generated_fastq_round_trips_byte_exactly(tmp_path: Path) -> None:
    data = (
        b"@r1 lane1\nACGTacgt\n+\nIIIIHHHH\n"
        b"@r2\r\nNNAC\r\n+r2\r\n!!#$\r\n"
        b"@r1 lane1\nACGTacgt\n+\nIIIIHHHH\n"
        b"@r3\nA\n+\nI"
    )
    assert _round_trip(tmp_path, data, "in.fq") == data


def test_many_taxa_interleaved_round_trip_byte_exactly(tmp_path: Path) -> None:
    data = b"".join(b">p%d OX=%d\n%s\n" % (i, 100 + i % 7, b"MKV" * (i % 50 + 1)) for i in range(3000))
    assert _round_trip(tmp_path, data) == data


def test_empty_file_round_trips(tmp_path: Path) -> None:
    assert _round_trip(tmp_path, b"") == b""


def test_several_files_export_in_import_order_and_by_file_index(tmp_path: Path) -> None:
    a, b = tmp_path / "a.fa", tmp_path / "b.fq"
    a.write_bytes(b">x OX=1\nACGT\n>y OX=2\nAAAA\n")
    b.write_bytes(b"@q\nAC\n+\nII\n")
    db = open_database(_store(), "db")
    db.import_files([a, b], version="v1")
    out = io.BytesIO()
    db.export(out)
    assert out.getvalue() == a.read_bytes() + b.read_bytes()
    one = io.BytesIO()
    db.export(one, file_index=1)
    assert one.getvalue() == b.read_bytes()


def test_normalized_export_upper_cases_and_rewraps(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_bytes(b">a desc\r\nacg\r\nTAC\r\ngt\r\n")
    db = open_database(_store(), "db")
    db.import_files([path], version="v1")
    out = io.BytesIO()
    db.export(out, normalized=True, width=4)
    assert out.getvalue() == b">a desc\nACGT\nACGT\n"


def test_export_by_taxon_writes_only_that_taxon(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_bytes(b">a OX=9\nAA\n>b OX=7\nCC\n>c OX=9\nGG\n")
    db = open_database(_store(), "db")
    db.import_files([path], version="v1")
    out = io.BytesIO()
    db.export(out, taxon=9)
    assert out.getvalue() == b">a OX=9\nAA\n>c OX=9\nGG\n"


SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
BIG = {"pfalciparum_smalt_genome_1.fa.gz", "mmseqs2_example_DB.fasta.gz", "wol_23s_rRNA.fa.zst"}
MUST = ("UP000000625-E.coli.fasta.gz", "ecoli536_NC_008253.fna.gz", "wol_16s_rRNA.fa.zst",
        "pfalciparum_smalt_genome_1.fa.gz", "resfinder_2025-12-05_fa13a71.fasta.zst")


def _shared_fasta() -> list[str]:
    if not SHARED.is_dir():
        return []
    return [
        str(path.relative_to(SHARED))
        for path in sorted(SHARED.rglob("*"))
        if path.is_file() and re.search(r"\.(fa|fasta|fna|faa)(\.|$)", path.name)
    ]


def test_shared_fasta_set_includes_the_required_files(shared_data: Path) -> None:
    names = {Path(p).name for p in _shared_fasta()}
    assert set(MUST) <= names


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "relative",
    [pytest.param(p, marks=pytest.mark.slow) if Path(p).name in BIG else p for p in _shared_fasta()]
    or ["absent"],  # no shared data: the shared_data fixture skips (fails under CI=true)
)
def test_shared_fasta_round_trips_byte_exactly(shared_data: Path, relative: str) -> None:
    path = shared_data / relative
    db = open_database(_store(), "db")
    db.import_files([path], version="v1")
    out = io.BytesIO()
    db.export(out)
    assert out.getvalue() == _plain(path)


@pytest.mark.shared_data
def test_same_data_in_two_stores_gives_identical_chunks(shared_data: Path) -> None:
    path = shared_data / "protein" / "uniprot_proteomes" / "UP000000625-E.coli.fasta.gz"
    first, second = _store(), _store()
    r1 = open_database(first, "ecoli").import_files([path], version="v1")
    r2 = open_database(second, "ecoli").import_files([path], version="v1")
    m1 = VersionCatalog(first).load(r1.manifest)
    m2 = VersionCatalog(second).load(r2.manifest)
    assert m1.chunks == m2.chunks
    assert sorted(h.to_hex() for h in first.chunk_hashes()) == sorted(h.to_hex() for h in second.chunk_hashes())


@pytest.mark.shared_data
def test_second_release_restores_only_changed_chunks(shared_data: Path) -> None:
    folder = shared_data / "versions" / "resfinder"
    # 2019-07-17 -> 2019-08-24 changes a handful of records
    old, new = folder / "resfinder_2019-07-17_3ac00c4.fasta.zst", folder / "resfinder_2019-08-24_90177ae.fasta.zst"
    store = _store()
    # ResFinder is 3 MB: chunks smaller than the defaults so that it has more than one
    db = SequenceDatabase(store, "resfinder", chunking=ChunkingPolicy(64 << 10, 256 << 10, 4 << 20))
    first = db.import_files([old], version="2019-07-17")
    before = set(store.chunk_hashes())
    second = db.import_files([new], version="2019-08-24")
    added = set(store.chunk_hashes()) - before
    assert first.new_chunks == first.chunks
    assert second.new_chunks <= second.chunks // 4
    assert second.new_packs <= second.packs // 4
    partitions = {p.hash for p in VersionCatalog(store).load(second.manifest).lookup.partitions} - before
    # + the new file's order object and the look-up partitions holding a changed name
    assert len(added) == second.new_chunks + second.new_packs + 1 + len(partitions)
    out = io.BytesIO()
    db.export(out, version="2019-07-17")
    assert out.getvalue() == _plain(old)
    assert [v.version for v in db.versions()] == ["2019-07-17", "2019-08-24"]


def test_failed_import_leaves_no_ref_and_rerun_works(tmp_path: Path) -> None:
    store = _store()
    db = open_database(store, "db")
    good = b"".join(b">s%d\n%s\n" % (i, b"ACGT" * 50) for i in range(2000))
    bad = tmp_path / "in.fa"
    bad.write_bytes(good[: len(good) // 2] + b"\x00\x01garbage\n" + good[len(good) // 2 :])
    with pytest.raises(InputFormatError):
        db.import_files([bad], version="v1")
    assert store.refs.list("refs/") == {}
    bad.write_bytes(good)
    db.import_files([bad], version="v1")
    out = io.BytesIO()
    db.export(out)
    assert out.getvalue() == good


@pytest.fixture
def uniprot_like(tmp_path: Path):
    path = tmp_path / "up.fa"
    path.write_bytes(
        b">sp|P00001|A_ECOLI Alpha OS=E. coli OX=562 GN=a\nMKVLAT\n"
        b">sp|P00002|B_HUMAN Beta OS=H. sapiens OX=9606\nmkvlat\n"
        b">tr|Q00003|C_ECOLI Gamma OS=E. coli OX=562\nMAAAAA\n"
    )
    db = open_database(_store(), "up")
    db.import_files([path], version="v1")
    return db


def test_lookup_by_accession(uniprot_like) -> None:
    assert uniprot_like["Q00003"].residues == b"MAAAAA"
    with pytest.raises(KeyError):
        uniprot_like["NOPE"]


def test_lookup_by_sha256_finds_every_copy(uniprot_like) -> None:
    found = uniprot_like.get_all(digests(b"MKVLAT").sha256.to_hex())
    assert sorted(r.header[:9] for r in found) == [b"sp|P00001", b"sp|P00002"]


def test_lookup_by_refget_and_md5(uniprot_like) -> None:
    d = digests(b"MAAAAA")
    for ident in (d.refget, "ga4gh:" + d.refget, "md5:" + d.md5, d.md5):
        assert [r.header[:9] for r in uniprot_like.get_all(ident)] == [b"tr|Q00003"]


def test_by_taxon_uses_ox_headers(uniprot_like) -> None:
    assert [r.header[3:9] for r in uniprot_like.by_taxon(562)] == [b"P00001", b"Q00003"]
    assert [r.header[3:9] for r in uniprot_like.by_taxon(9606)] == [b"P00002"]


def test_iteration_follows_original_order(uniprot_like) -> None:
    assert [r.header[3:9] for r in uniprot_like] == [b"P00001", b"P00002", b"Q00003"]


def test_stats_count_records_and_unique_sequences(uniprot_like) -> None:
    stats = uniprot_like.stats()
    assert (stats.records, stats.unique_sequences, stats.residues) == (3, 2, 18)
    assert stats.stored_bytes > 0 and stats.logical_bytes > 0


def test_taxa_from_a_mapping_file_with_genome_prefixes(tmp_path: Path) -> None:
    fasta, mapping = tmp_path / "16s.fa", tmp_path / "taxid.map"
    fasta.write_bytes(b">G001_1\nACGT\n>G002_1\nGGGG\n>G001_2\nTTTT\n>G999_1\nCCCC\n")
    mapping.write_bytes(b"G001\t562\nG002\t1280\n")
    db = open_database(_store(), "wol")
    db.import_files([fasta], version="v1", taxonomy=str(mapping), prefix_separator="_")
    assert [r.header for r in db.by_taxon(562)] == [b"G001_1", b"G001_2"]
    assert [r.header for r in db.by_taxon(1280)] == [b"G002_1"]
    out = io.BytesIO()
    db.export(out)
    assert out.getvalue() == fasta.read_bytes()


def test_by_taxon_with_descendants_uses_the_taxonomy(tmp_path: Path) -> None:
    dump = tmp_path / "taxdump"
    dump.mkdir()
    row = "{}\t|\t{}\t|\t{}\t|\n"
    (dump / "nodes.dmp").write_text(
        row.format(1, 1, "no rank") + row.format(2, 1, "superkingdom")
        + row.format(562, 2, "species") + row.format(9606, 1, "species")
    )
    (dump / "names.dmp").write_text(
        "".join(f"{t}\t|\tname{t}\t|\t\t|\tscientific name\t|\n" for t in (1, 2, 562, 9606))
    )
    taxonomy = Taxonomy.from_taxdump(dump)
    fasta = tmp_path / "in.fa"
    fasta.write_bytes(b">a OX=562\nMK\n>b OX=9606\nMA\n>c OX=2\nMV\n")
    db = open_database(_store(), "db")
    db.import_files([fasta], version="v1")
    assert sorted(r.header[:1] for r in db.by_taxon(2, descendants=True, taxonomy=taxonomy)) == [b"a", b"c"]
    with pytest.raises(Exception, match="Taxonomy"):
        list(db.by_taxon(2, descendants=True))


def test_lookups_work_through_a_rocksdb_index_and_survive_reopening(tmp_path: Path) -> None:
    require_sdk("rocksdict", "rocksdb")  # skips locally without it; fails under CI=true
    store = _store()
    fasta = tmp_path / "in.fa"
    fasta.write_bytes(b">sp|P1|X OX=1\nMKV\n>sp|P2|Y OX=1\nMKA\n")
    db = SequenceDatabase(store, "db", index=open_index("rocksdb", tmp_path), lookup_table=False)
    db.import_files([fasta], version="v1")
    assert db["P2"].residues == b"MKA"
    db.index.close()
    again = SequenceDatabase(store, "db", index=open_index("rocksdb", tmp_path))
    assert again.get(digests(b"MKV").refget).header.startswith(b"sp|P1|")
    again.index.close()


def test_round_trip_is_byte_exact_when_the_chunker_spills_to_disk(tmp_path: Path) -> None:
    data = b"".join(b">p%d OX=%d\n%s\n" % (i, 100 + i % 13, b"MKVA" * (i % 40 + 1)) for i in range(4000))
    path = tmp_path / "in.fa"
    path.write_bytes(data)
    policy = ChunkingPolicy(min_size=2 << 10, target_size=8 << 10, max_size=16 << 10, memory_budget=16 << 10)
    db = SequenceDatabase(_store(), "db", chunking=policy)
    result = db.import_files([path], version="v1")
    assert result.chunks > 10
    out = io.BytesIO()
    db.export(out)
    assert out.getvalue() == data


def test_gc_marking_keeps_the_record_order_objects_export_needs(tmp_path) -> None:
    from talaria_storage.backends.memory import MemoryBackend

    from talaria_storage.sequences.versions import VersionCatalog
    from talaria_storage.storage.store import Store

    store = Store(MemoryBackend())
    store.initialise()
    source = tmp_path / "two-taxa.fasta"
    source.write_bytes(b">a OX=9606\nMKV\n>b OX=10090\nMKL\n>c OX=9606\nMKW\n")
    db = open_database(store, "gc")
    db.import_files([source])
    chunks, _ = VersionCatalog(store).reachable()
    store.gc(chunks)
    out = __import__("io").BytesIO()
    db.export(out)
    assert out.getvalue() == source.read_bytes()


# ----------------------------------------------------------------------- sequence packs


SMALL_CHUNKS = ChunkingPolicy(min_size=2 << 10, target_size=8 << 10, max_size=64 << 10)


def _proteins(count: int, seed: int, taxon: int, prefix: str = "p") -> list[bytes]:
    rng = random.Random(seed)
    return [
        b">%s%d OX=%d\n%s\n" % (prefix.encode(), i, taxon, bytes(rng.choice(b"ACDEFGHIKLMNPQRSTVWY") for _ in range(200)))
        for i in range(count)
    ]


def _pack_slots(store: Store, manifest: Manifest) -> list[bytes]:
    return [s for e in manifest.chunks if e.pack is not None for s in PackReader(store.get_chunk(e.pack)).sequences()]


def test_a_sequence_shared_by_records_in_different_chunks_is_stored_once(tmp_path: Path) -> None:
    shared = b">shared-in-9 OX=9\nMKVLATSHAREDSEQUENCE\n", b">shared-in-7 OX=7\nMKVLATSHAREDSEQUENCE\n"
    data = b"".join(_proteins(60, 1, 9) + [shared[0]] + _proteins(60, 2, 7) + [shared[1]])
    path = tmp_path / "in.fa"
    path.write_bytes(data)
    store = _store()
    db = SequenceDatabase(store, "db", chunking=SMALL_CHUNKS)
    db.import_files([path], version="v1")
    _, manifest = db.manifest()
    assert len({e.taxa for e in manifest.chunks}) >= 2
    assert _pack_slots(store, manifest).count(b"MKVLATSHAREDSEQUENCE") == 1
    found = db.get_all(digests(b"MKVLATSHAREDSEQUENCE").sha256.to_hex())
    assert sorted(r.header for r in found) == [b"shared-in-7 OX=7", b"shared-in-9 OX=9"]
    out = io.BytesIO()
    db.export(out)
    assert out.getvalue() == data


def test_identical_sequences_in_different_files_are_stored_once(tmp_path: Path) -> None:
    a, b = tmp_path / "a.fa", tmp_path / "b.fa"
    a.write_bytes(b">x OX=1\nMKVLAT\n>y OX=1\nMWWW\n")
    b.write_bytes(b">z other header OX=2\nMKVLAT\n")
    store = _store()
    db = SequenceDatabase(store, "db")
    db.import_files([a, b], version="v1")
    _, manifest = db.manifest()
    assert sorted(_pack_slots(store, manifest)) == [b"MKVLAT", b"MWWW"]
    assert [r.header for r in db.records(file_index=1)] == [b"z other header OX=2"]


def test_a_release_that_only_rewrites_headers_stores_no_new_sequence_pack(tmp_path: Path) -> None:
    records = _proteins(150, 3, 9) + _proteins(150, 4, 7)
    old, new = tmp_path / "old.fa", tmp_path / "new.fa"
    old.write_bytes(b"".join(records))
    new.write_bytes(b"".join(r.replace(b">", b">renamed|", 1) for r in records))
    db = SequenceDatabase(_store(), "db", chunking=SMALL_CHUNKS)
    first = db.import_files([old], version="v1")
    second = db.import_files([new], version="v2")
    assert first.new_packs == first.packs > 1
    assert second.new_packs == 0 and second.new_chunks == second.chunks
    for version, path in (("v1", old), ("v2", new)):
        out = io.BytesIO()
        db.export(out, version=version)
        assert out.getvalue() == path.read_bytes()


def _objects(store: Store) -> dict[str, bytes]:
    return {info.key: store.backend.get(info.key) for info in store.backend.list("chunks/")}


def test_the_same_input_gives_the_same_objects_in_two_stores_with_or_without_workers(tmp_path: Path) -> None:
    records = _proteins(200, 5, 9) + _proteins(200, 6, 7) + _proteins(200, 5, 9, prefix="again")  # repeats
    path = tmp_path / "in.fa"
    path.write_bytes(b"".join(records))
    stores = [_store(), _store()]
    results = [
        SequenceDatabase(stores[0], "db", chunking=SMALL_CHUNKS, processes=0).import_files([path], version="v1"),
        SequenceDatabase(stores[1], "db", chunking=SMALL_CHUNKS, processes=2).import_files([path], version="v1"),
    ]
    m0, m1 = (VersionCatalog(s).load(r.manifest) for s, r in zip(stores, results))
    assert m0.chunks == m1.chunks
    assert any(len(ChunkReader(stores[0].get_chunk(e.hash)).pack_hashes()) > 1 for e in m0.chunks)
    assert _objects(stores[0]) == _objects(stores[1])


def _segmented_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file of about 20 segments of 8 KB (a large file, scaled down)."""
    monkeypatch.setattr(importing, "SEGMENT_BYTES", 8 << 10)
    path = tmp_path / "in.fa"
    path.write_bytes(b"".join(_proteins(300, 5, 9) + _proteins(300, 6, 7) + _proteins(100, 5, 9, prefix="again")))
    return path


def test_a_file_larger_than_a_segment_is_chunked_segment_by_segment_and_exports_byte_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _segmented_input(tmp_path, monkeypatch)
    whole = SequenceDatabase(_store(), "db", chunking=SMALL_CHUNKS, processes=0)
    monkeypatch.setattr(importing, "SEGMENT_BYTES", 1 << 30)
    whole_manifest = VersionCatalog(whole.store).load(whole.import_files([path], version="v1").manifest)
    monkeypatch.undo()
    path = _segmented_input(tmp_path, monkeypatch)
    db = SequenceDatabase(_store(), "db", chunking=SMALL_CHUNKS, processes=0)
    manifest = VersionCatalog(db.store).load(db.import_files([path], version="v1").manifest)
    assert manifest.chunks != whole_manifest.chunks  # a new chunker at every segment
    out = io.BytesIO()
    db.export(out)
    assert out.getvalue() == path.read_bytes()


def test_a_segmented_file_gives_the_same_objects_with_or_without_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _segmented_input(tmp_path, monkeypatch)
    stores = [_store(), _store()]
    for store, processes in zip(stores, (0, 2)):
        SequenceDatabase(store, "db", chunking=SMALL_CHUNKS, processes=processes).import_files([path], version="v1")
    assert _objects(stores[0]) == _objects(stores[1])


def test_a_bad_record_in_a_later_segment_is_reported_at_its_line_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importing, "SEGMENT_BYTES", 4096)
    lines = [b">s%d OX=1\nMKVLA\n" % i for i in range(2000)]
    lines[1500] = b">bad OX=1\nMK\x01VLA\n"
    path = tmp_path / "in.fa"
    path.write_bytes(b"".join(lines))
    db = SequenceDatabase(_store(), "db", processes=0)
    with pytest.raises(InputFormatError) as caught:
        db.import_files([path], version="v1")
    assert caught.value.line == 3002


def test_a_compressed_file_is_one_segment(tmp_path: Path) -> None:
    path = tmp_path / "in.fa.gz"
    path.write_bytes(gzip.compress(b"".join(_proteins(2000, 5, 9)), mtime=0))
    assert segment_starts(path, 1024) == [0]


def test_a_fastq_file_is_one_segment_though_its_quality_lines_may_start_with_a_marker(tmp_path: Path) -> None:
    path = tmp_path / "in.fq"
    path.write_bytes(b"".join(b"@r%d\nACGT\n+\n>>>>\n" % i for i in range(2000)))
    assert segment_starts(path, 1024) == [0]


def test_a_bad_record_is_reported_at_its_line_when_workers_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importing, "PIECE_SIZE", 4096)  # many pieces, so the line is counted across them
    lines = [b">s%d OX=1\nMKVLA\n" % i for i in range(2000)]
    lines[1500] = b">bad OX=1\nMK\x01VLA\n"
    path = tmp_path / "in.fa"
    path.write_bytes(b"".join(lines))
    db = SequenceDatabase(_store(), "db", processes=2)
    with pytest.raises(InputFormatError) as caught:
        db.import_files([path], version="v1")
    assert caught.value.line == 3002 and str(path) in str(caught.value)
    assert db.store.refs.list("refs/") == {}


def _imported(tmp_path: Path) -> tuple[Store, SequenceDatabase, Manifest]:
    path = tmp_path / "in.fa"
    path.write_bytes(b"".join(_proteins(100, 7, 9)))
    store = _store()
    db = SequenceDatabase(store, "db")
    db.import_files([path], version="v1")
    return store, db, db.manifest()[1]


def test_a_corrupt_sequence_pack_is_a_clear_error(tmp_path: Path) -> None:
    store, db, manifest = _imported(tmp_path)
    key = store.key_for(manifest.chunks[0].pack)
    framed = bytearray(store.backend.get(key))
    framed[-40] ^= 0xFF
    store.backend.delete(key)
    store.backend.put(key, bytes(framed))
    with pytest.raises(HashMismatch, match=key):
        db.export(io.BytesIO())


def test_a_missing_sequence_pack_is_a_clear_error(tmp_path: Path) -> None:
    store, db, manifest = _imported(tmp_path)
    store.backend.delete(store.key_for(manifest.chunks[0].pack))
    with pytest.raises(StorageError, match=r"sequence pack [0-9a-f]{64} of database 'db' is missing"):
        db.export(io.BytesIO())


def test_the_manifest_lists_every_object_a_version_needs(tmp_path: Path) -> None:
    store, _, manifest = _imported(tmp_path)
    objects = manifest.objects()
    kinds = {o.kind for o in objects}
    assert kinds == {"chunk", "sequence pack", "record order object", "look-up partition"}
    assert set(manifest.object_hashes()) == set(store.chunk_hashes())
    assert all(o.size == len(store.get_chunk(o.hash)) for o in objects)
    assert manifest.stored_bytes == sum(o.size for o in objects)
    assert VersionCatalog(store).reachable()[0] == set(manifest.object_hashes())


def test_publishing_a_manifest_whose_pack_is_missing_is_refused(tmp_path: Path) -> None:
    store, _, manifest = _imported(tmp_path)
    store.backend.delete(store.key_for(manifest.chunks[0].pack))
    with pytest.raises(StorageError, match="refusing to publish"):
        VersionCatalog(store).publish(replace(manifest, version="v2"), VersionCatalog(store).head("db"))


def test_entries_give_each_record_its_canonical_sequence_hash(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_bytes(b">a OX=1\nmkvl\n>b OX=2\nMK VL\n>c OX=1\nMWW\n")
    db = SequenceDatabase(_store(), "db")
    db.import_files([path], version="v1", alphabet="any")
    entries = sorted(db.entries(), key=lambda e: e.accession)
    assert [e.sequence for e in entries] == [sequence_hash(b"MKVL"), sequence_hash(b"MKVL"), sequence_hash(b"MWW")]
    assert [e.taxid for e in entries] == [1, 2, 1]


def test_the_order_builder_keeps_runs_not_records() -> None:
    builder = OrderBuilder()
    builder.place(1, [3, 4, 5])  # placed before the records in front of it
    assert builder.placed == 0
    builder.place(0, [0, 1, 2, 6])
    assert builder.runs(7) == [(0, 0, 3), (1, 0, 3), (0, 3, 1)]
    with pytest.raises(StorageError, match="incomplete"):
        OrderBuilder().runs(1)
