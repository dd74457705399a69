"""GenBank and EMBL files in a database: imported as records, exported as their text or as FASTA."""

from __future__ import annotations

import gzip
import io
import shutil
from pathlib import Path

import pytest
import zstandard
from Bio import SeqIO
from talaria_storage.backends.memory import MemoryBackend
from typer.testing import CliRunner, Result

from talaria_storage import open_database
from talaria_storage.cli.main import app
from talaria_storage.core.errors import InputFormatError, StorageError
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.storage.store import Store

CORPUS = Path(__file__).parent / "data" / "flatfiles"
LEPTOSPIRA = "genbank/leptospira_kirschneri_H1_any2fasta_test.gbk.gz"


def _database(*paths: Path) -> SequenceDatabase:
    db = open_database(Store(MemoryBackend()), "db")
    db.import_files(list(paths), version="v1")
    return db


def _export(db: SequenceDatabase, **options: object) -> bytes:
    out = io.BytesIO()
    db.export(out, **options)  # type: ignore[arg-type]
    return out.getvalue()


def _cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_genbank_and_embl_files_export_byte_exact_in_import_order() -> None:
    files = [CORPUS / "two_records.gbk", CORPUS / "lower_sq.embl", CORPUS / "crlf.gbk"]
    db = _database(*files)
    assert _export(db) == b"".join(p.read_bytes() for p in files)


def test_compressed_genbank_exports_its_uncompressed_text(tmp_path: Path) -> None:
    text = (CORPUS / "two_records.gbk").read_bytes()
    (tmp_path / "a.gbk.gz").write_bytes(gzip.compress(text))
    (tmp_path / "b.gbk.zst").write_bytes(zstandard.ZstdCompressor().compress(text))
    db = _database(tmp_path / "a.gbk.gz", tmp_path / "b.gbk.zst")
    assert _export(db) == text + text


def test_a_record_is_found_by_its_accession_version_with_biopythons_residues() -> None:
    db = _database(CORPUS / "two_records.gbk")
    expected = {r.id: bytes(r.seq).upper() for r in SeqIO.parse(CORPUS / "two_records.gbk", "genbank")}
    for accession, residues in expected.items():
        [record] = db.get_all(accession)
        assert record.residues == residues


def test_the_taxon_comes_from_the_source_features_db_xref() -> None:
    db = _database(CORPUS / "two_records.gbk", CORPUS / "lower_sq.embl")
    assert [r.header.split()[0] for r in db.by_taxon(999002)] == [b"TSE00003.1"]


def test_export_as_fasta_writes_id_and_definition_in_lines_of_60() -> None:
    db = _database(CORPUS / "lower_sq.embl")
    expected = io.StringIO()
    SeqIO.write(SeqIO.parse(CORPUS / "lower_sq.embl", "embl"), expected, "fasta")
    assert _export(db, format="fasta") == expected.getvalue().encode()


def test_export_as_genbank_of_fasta_records_is_refused_naming_the_record(tmp_path: Path) -> None:
    path = tmp_path / "a.fa"
    path.write_bytes(b">seqA x\nACGT\n")
    db = _database(path)
    with pytest.raises(StorageError, match="record seqA was not imported from a GenBank file"):
        _export(db, format="genbank")


def test_a_refused_flat_file_publishes_nothing(tmp_path: Path) -> None:
    db = open_database(Store(MemoryBackend()), "db")
    with pytest.raises(InputFormatError, match="no ORIGIN sequence"):
        db.import_files([CORPUS / "two_records.gbk", CORPUS / "no_origin.gbk"], version="v1")
    assert db.versions() == []


@pytest.mark.shared_data
def test_shared_genbank_file_round_trips_and_gives_biopythons_records(shared_data: Path) -> None:
    path = shared_data / LEPTOSPIRA
    db = _database(path)
    assert _export(db) == gzip.decompress(path.read_bytes())
    with gzip.open(path, "rt") as handle:
        for parsed in SeqIO.parse(handle, "genbank"):
            [record] = db.get_all(parsed.id)
            assert record.residues == bytes(parsed.seq).upper()


# -- through the CLI -------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> str:
    path = str(tmp_path / "store")
    for args in (("init",), ("import", str(CORPUS / "two_records.gbk"), "--database", "gb")):
        result = _cli("--store", path, *args)
        assert result.exit_code == 0, result.output
    return path


def test_cli_get_shows_a_genbank_record_as_fasta_by_default(store: str) -> None:
    result = _cli("--store", store, "get", "TSP00002.1")
    assert result.stdout_bytes == b">TSP00002.1 hypothetical protein TT_0002 [Talariaella testii]\nMKTAYIAKQRQISFVKSHFSRQXE*\n"


def test_cli_get_format_genbank_gives_the_records_original_text(store: str) -> None:
    text = (CORPUS / "two_records.gbk").read_bytes()
    result = _cli("--store", store, "get", "TSP00002.1", "--format", "genbank")
    assert result.exit_code == 0, result.output
    assert text.endswith(result.stdout_bytes) and result.stdout_bytes.startswith(b"LOCUS       TSP00002")


def test_cli_export_format_genbank_is_byte_exact(store: str) -> None:
    result = _cli("--store", store, "export", "--database", "gb", "--format", "genbank")
    assert result.stdout_bytes == (CORPUS / "two_records.gbk").read_bytes()


def test_cli_import_of_a_flat_file_without_origin_is_one_error_line(store: str, tmp_path: Path) -> None:
    bad = tmp_path / "no_origin.gbk"
    shutil.copyfile(CORPUS / "no_origin.gbk", bad)
    result = _cli("--store", store, "import", str(bad), "--database", "gb2")
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if not line.startswith("read ")]
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}:1: the record has no ORIGIN sequence"), result.stderr
