"""GenBank and EMBL flat files: the fields Biopython parses, and the text kept byte for byte."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from Bio import SeqIO
from Bio.SeqRecord import SeqRecord

from talaria_storage.core.errors import InputFormatError
from talaria_storage.formats.genbank import (
    MARK,
    FlatfileRecord,
    fasta_of,
    from_stored,
    is_stored_flatfile,
    read_flatfile,
    stored_flavour,
    stored_taxon,
    to_stored,
)

CORPUS = Path(__file__).parent / "data" / "flatfiles"
ACCEPTED = ["two_records.gbk", "odd_block.gbk", "crlf.gbk", "lower_sq.embl"]
LEPTOSPIRA = "genbank/leptospira_kirschneri_H1_any2fasta_test.gbk.gz"

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


def _flavour(name: str) -> str:
    return "embl" if ".embl" in name else "genbank"


def _taxon(record: SeqRecord) -> int | None:
    """The taxon of a Biopython record's source feature, as NCBI's db_xref gives it."""
    for feature in record.features:
        if feature.type == "source":
            for xref in feature.qualifiers.get("db_xref", []):
                if xref.startswith("taxon:"):
                    return int(xref[6:])
    return None


def _assert_as_biopython_parses(path: Path) -> list[FlatfileRecord]:
    """Our records hold Biopython's ids, descriptions, taxa and residues, and their texts are the file."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    ours = list(read_flatfile(path))
    handle = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")
    theirs = list(SeqIO.parse(handle, _flavour(path.name)))
    assert [(r.accession, r.description, r.taxon, r.residues) for r in ours] == [
        (r.id, r.description, _taxon(r), bytes(r.seq).upper()) for r in theirs
    ]
    assert b"".join(r.text for r in ours) == raw
    return ours


# -- the fields ------------------------------------------------------------------------------------


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


def test_record_without_taxon_xref_has_none(tmp_path: Path) -> None:
    path = tmp_path / "t.gbk"
    path.write_bytes(GENBANK.replace(b'                     /db_xref="taxon:562"\n', b""))
    assert next(read_flatfile(path)).taxon is None


def test_embl_identifier_is_the_first_accession_with_its_sequence_version() -> None:
    [record] = list(read_flatfile(CORPUS / "lower_sq.embl"))
    assert (record.accession, record.taxon, record.residues[:10]) == ("TSE00003.1", 999002, b"GGTTAAGCGA")


def test_embl_description_keeps_its_final_full_stop_as_biopython_does() -> None:
    [record] = list(read_flatfile(CORPUS / "lower_sq.embl"))
    assert record.description.endswith("partial sequence.")


@pytest.mark.parametrize("name", ACCEPTED)
def test_corpus_file_parses_as_biopython_parses_it(name: str) -> None:
    _assert_as_biopython_parses(CORPUS / name)


@pytest.mark.shared_data
def test_shared_leptospira_genbank_parses_as_biopython_parses_it(shared_data: Path) -> None:
    records = _assert_as_biopython_parses(shared_data / LEPTOSPIRA)
    assert len(records) == 75 and {r.taxon for r in records} == {1049966}


# -- the stored form -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ACCEPTED)
def test_stored_record_gives_back_its_text_byte_for_byte(name: str) -> None:
    for record in read_flatfile(CORPUS / name):
        assert from_stored(to_stored(record)) == record.text


def test_a_standard_sequence_block_is_remade_from_the_residues_not_stored() -> None:
    [record] = list(read_flatfile(CORPUS / "lower_sq.embl"))
    stored = to_stored(record)
    assert stored.header.partition(MARK)[2][:1] == b"e"
    assert b"ggttaagcga" not in stored.header


def test_an_unusual_sequence_block_is_kept_verbatim() -> None:
    [record] = list(read_flatfile(CORPUS / "odd_block.gbk"))
    stored = to_stored(record)
    assert stored.header.partition(MARK)[2][:1] == b"v"
    assert from_stored(stored) == record.text


def test_stored_header_starts_with_the_fasta_header_and_names_its_taxon_and_flavour() -> None:
    record = next(read_flatfile(CORPUS / "two_records.gbk"))
    stored = to_stored(record)
    assert stored.header.startswith(b"TSA00001.2 Talariaella testii strain T1 16S ribosomal RNA gene, partial sequence\x1f")
    assert is_stored_flatfile(stored.header) and stored_taxon(stored.header) == 999001
    assert stored_flavour(stored) == "genbank"


def test_fasta_form_is_the_id_and_definition_with_residues_upper_case_in_lines_of_60() -> None:
    record = next(read_flatfile(CORPUS / "two_records.gbk"))
    fasta = fasta_of(to_stored(record))
    lines = fasta.split(b"\n")
    assert lines[0] == b">TSA00001.2 Talariaella testii strain T1 16S ribosomal RNA gene, partial sequence"
    assert [len(line) for line in lines[1:]] == [60, 60, 10, 0]
    assert b"".join(lines[1:]) == record.residues


def test_fasta_form_equals_what_biopython_writes_for_the_record() -> None:
    for ours, theirs in zip(
        read_flatfile(CORPUS / "two_records.gbk"), SeqIO.parse(CORPUS / "two_records.gbk", "genbank")
    ):
        written = io.StringIO()
        SeqIO.write(theirs, written, "fasta")
        assert fasta_of(to_stored(ours)) == written.getvalue().encode()


# -- refusals --------------------------------------------------------------------------------------


def test_fasta_given_as_genbank_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.fa"
    path.write_bytes(b">a\nAC\n")
    with pytest.raises(InputFormatError, match="no GenBank LOCUS or EMBL ID line"):
        list(read_flatfile(path))


@pytest.mark.parametrize("cut", [200, len(GENBANK) - 4])
def test_a_record_cut_short_is_refused_naming_where_it_began(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "t.gbk"
    path.write_bytes(GENBANK[:cut])
    with pytest.raises(InputFormatError, match="record from line 1 does not end with '//'"):
        list(read_flatfile(path))


def test_a_record_without_origin_is_refused_saying_its_residues_are_not_in_the_file() -> None:
    with pytest.raises(InputFormatError, match=r"no_origin.gbk:1: .*no ORIGIN sequence"):
        list(read_flatfile(CORPUS / "no_origin.gbk"))


def test_a_separator_control_byte_is_refused_naming_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.gbk"
    path.write_bytes(GENBANK.replace(b"A test", b"A\x1etest"))
    with pytest.raises(InputFormatError, match=r"t.gbk:2: control byte 0x1e .*column 14"):
        list(read_flatfile(path))


def test_text_between_records_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.gbk"
    path.write_bytes(GENBANK + b"stray text\n" + GENBANK)
    with pytest.raises(InputFormatError, match=r"t.gbk:16: text between records"):
        list(read_flatfile(path))


def test_annotation_inside_the_sequence_block_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.gbk"
    path.write_bytes(GENBANK.replace(b"//\n", b"FEATURES\n//\n"))
    with pytest.raises(InputFormatError, match=r"t.gbk:15: a line inside the sequence block"):
        list(read_flatfile(path))
