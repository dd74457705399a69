"""Records a pipeline can use: Biopython's names, SeqRecords, and a database read as a mapping."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from Bio import SeqIO
from talaria_storage.backends.memory import MemoryBackend
from test_formats_genbank import GENBANK

import talaria_storage
from talaria_storage.core.errors import RecordNotFound
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.storage.store import Store

FASTA = (
    b">sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens OX=9606\n"
    b"MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADALTNAVAHV\nDDMPNALSALSDLHAHKL\n"
    b">tr|Q9XYZ1|Q9XYZ1_ECOLI soft masked OX=562\nmkvlAAAT\n"
    b">sp|P00001|CYC_HORSE Cytochrome c OX=9796\nMGDVEKGKKIFVQKCAQCHTVEKGGKHKTGPNLHGLFGRKTGQAPGFTYTDANKNKGITWKEETLMEYLENPKKYIPGTKMIFAGIKKK\n"
)
FASTQ = b"@read1 lane=1\nACGTTGCA\n+\nIIIIHHHG\n@read2\nGGGTTT\n+\n!!##$$\n"


def _db(tmp_path: Path, data: bytes, suffix: str = ".fa") -> SequenceDatabase:
    path = tmp_path / f"in{suffix}"
    path.write_bytes(data)
    db = SequenceDatabase(Store(MemoryBackend()), "db")
    db.import_files([path], version="v1", taxonomy="none")
    return db


def _biopython(records: object, format: str) -> str:
    out = io.StringIO()
    SeqIO.write(records, out, format)
    return out.getvalue()


def test_a_record_has_biopythons_id_description_and_seq(tmp_path: Path) -> None:
    record = _db(tmp_path, FASTA)["P69905"]
    assert record.id == "sp|P69905|HBA_HUMAN"
    assert record.description == "sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens OX=9606"
    assert record.seq.startswith("MVLSPADK") and record.seq.endswith("HAHKL") and len(record) == 92


def test_a_looked_up_record_carries_its_taxon(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_bytes(FASTA)
    db = SequenceDatabase(Store(MemoryBackend()), "db")
    db.import_files([path], version="v1")  # taxa from OX=
    record = db["P69905"]
    assert record.taxon_id == 9606 and db.get_many(["Q9XYZ1"])["Q9XYZ1"][0].taxon_id == 562
    assert record == tuple(record) and record.to_seqrecord().dbxrefs == ["taxon:9606"]


def test_an_iterated_record_carries_its_taxon_too(tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_bytes(FASTA)
    db = SequenceDatabase(Store(MemoryBackend()), "db")
    db.import_files([path], version="v1")
    by_id = {record.id: record.taxon_id for record in db}
    assert by_id["sp|P69905|HBA_HUMAN"] == 9606 and by_id == {r.id: r.taxon_id for r in db.snapshot()}
    assert [r.dbxrefs for r in db.to_seqrecords()][0] == ["taxon:9606"]


def test_seqrecords_write_as_biopython_writes_the_original_records(tmp_path: Path) -> None:
    db = _db(tmp_path, FASTA)
    original = list(SeqIO.parse(io.StringIO(FASTA.decode()), "fasta"))
    assert _biopython([db[r.id].to_seqrecord() for r in original], "fasta") == _biopython(original, "fasta")


def test_a_database_streams_seqrecords_in_file_order(tmp_path: Path) -> None:
    db = _db(tmp_path, FASTA)
    original = list(SeqIO.parse(io.StringIO(FASTA.decode()), "fasta"))
    assert _biopython(db.to_seqrecords(), "fasta") == _biopython(original, "fasta")


def test_parse_reads_a_database_as_seqio_parse_reads_a_file(tmp_path: Path) -> None:
    db = _db(tmp_path, FASTA)
    original = list(SeqIO.parse(io.StringIO(FASTA.decode()), "fasta"))
    assert _biopython(talaria_storage.parse(db), "fasta") == _biopython(original, "fasta")


def test_fastq_seqrecords_keep_their_qualities(tmp_path: Path) -> None:
    db = _db(tmp_path, FASTQ, ".fq")
    original = list(SeqIO.parse(io.StringIO(FASTQ.decode()), "fastq"))
    assert _biopython(db.to_seqrecords(), "fastq") == _biopython(original, "fastq") == FASTQ.decode()


def test_a_genbank_record_becomes_biopythons_genbank_record(tmp_path: Path) -> None:
    record = _db(tmp_path, GENBANK, ".gbk")["TEST0001.1"]
    assert record.id == "TEST0001.1"
    seqrecord = record.to_seqrecord()
    original = SeqIO.read(io.StringIO(GENBANK.decode()), "genbank")
    assert seqrecord.id == original.id and str(seqrecord.seq) == str(original.seq)
    assert seqrecord.features[0].qualifiers["db_xref"] == ["taxon:562"]
    assert _biopython([seqrecord], "genbank") == _biopython([original], "genbank")


def test_a_database_is_a_mapping_of_its_records(tmp_path: Path) -> None:
    db = _db(tmp_path, FASTA)
    assert len(db) == 3
    assert list(db.keys()) == ["sp|P69905|HBA_HUMAN", "tr|Q9XYZ1|Q9XYZ1_ECOLI", "sp|P00001|CYC_HORSE"]
    assert [r.id for r in db] == list(db.keys())
    assert "CYC_HORSE" in db and "NOPE" not in db and 17 not in db


def test_fetch_gives_a_sub_range_of_the_canonical_residues(tmp_path: Path) -> None:
    db = _db(tmp_path, FASTA)
    assert db.fetch("P69905", 0, 8) == "MVLSPADK"
    assert db.fetch("Q9XYZ1", 1, 4) == "KVL"  # canonical: upper case
    assert db.fetch("P00001", 100) == "" and db.fetch("P00001", 86) == "KKK"
    with pytest.raises(RecordNotFound):
        db.fetch("NOPE", 0, 3)


def test_get_many_answers_each_identifier(tmp_path: Path) -> None:
    db = _db(tmp_path, FASTA)
    found = db.get_many(["P00001", "NOPE", "HBA_HUMAN", "P00001"])
    assert list(found) == ["P00001", "NOPE", "HBA_HUMAN"]
    assert [r.id for r in found["P00001"]] == ["sp|P00001|CYC_HORSE"] and found["NOPE"] == []
    assert found["HBA_HUMAN"] == [db["P69905"]]


def test_get_many_decodes_a_chunk_it_reads_much_of_once(tmp_path: Path) -> None:
    db = _db(tmp_path, FASTA)
    calls: list[object] = []
    chunk = db._chunk
    db._chunk = lambda h: calls.append(h) or chunk(h)  # type: ignore[method-assign]
    db.get_many(["P69905", "Q9XYZ1", "P00001"])
    assert len(calls) == 1
