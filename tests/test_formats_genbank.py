"""GenBank/EMBL conversion through Biopython."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from talaria_storage.core.errors import InputFormatError
from talaria_storage.formats.genbank import read_flatfile

GENBANK = b"""LOCUS       TEST0001                  12 bp    DNA     linear   BCT 01-JAN-2020
DEFINITION  A test sequence.
ACCESSION   TEST0001
VERSION     TEST0001.1
KEYWORDS    .
SOURCE      Escherichia coli
  ORGANISM  Escherichia coli
            Bacteria.
FEATURES             Location/Qualifiers
     source          1..12
                     /organism="Escherichia coli"
                     /db_xref="taxon:562"
ORIGIN
        1 acgtacgtac gt
//
"""


def test_genbank_record_gives_accession_description_taxon_and_sequence(tmp_path: Path) -> None:
    path = tmp_path / "t.gbk.gz"
    path.write_bytes(gzip.compress(GENBANK))
    [record] = list(read_flatfile(path))
    assert (record.accession, record.description, record.taxon, record.residues) == (
        "TEST0001.1",
        "A test sequence",
        562,
        b"ACGTACGTACGT",
    )


def test_converted_record_becomes_a_wrapped_fasta_record(tmp_path: Path) -> None:
    path = tmp_path / "t.gbk"
    path.write_bytes(GENBANK)
    [record] = list(read_flatfile(path))
    assert record.to_fasta(wrap=5).to_bytes() == b">TEST0001.1 A test sequence\nACGTA\nCGTAC\nGT\n"


def test_record_without_taxon_xref_has_none(tmp_path: Path) -> None:
    path = tmp_path / "t.gbk"
    path.write_bytes(GENBANK.replace(b'                     /db_xref="taxon:562"\n', b""))
    assert next(read_flatfile(path)).taxon is None


def test_fasta_given_as_genbank_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.fa"
    path.write_bytes(b">a\nAC\n")
    with pytest.raises(InputFormatError, match="expected GenBank or EMBL"):
        list(read_flatfile(path))


@pytest.mark.parametrize("cut", [200, len(GENBANK) - 4])
def test_truncated_genbank_is_an_input_format_error(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "t.gbk"
    path.write_bytes(GENBANK[:cut])
    with pytest.raises(InputFormatError):
        list(read_flatfile(path))


@pytest.mark.shared_data
def test_shared_leptospira_genbank_converts_every_record(shared_data: Path) -> None:
    records = list(
        read_flatfile(shared_data / "genbank/leptospira_kirschneri_H1_any2fasta_test.gbk.gz")
    )
    assert len(records) == 75
    assert {r.taxon for r in records} == {1049966}
    assert all(r.accession.startswith("NZ_AHMY02") for r in records)
