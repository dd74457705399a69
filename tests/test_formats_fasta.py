"""FASTA/FASTQ readers: byte-exact round trips, layouts, and precise errors."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from talaria_storage.core.errors import InputFormatError
from talaria_storage.formats.fasta import (
    CRLF,
    FastaRecord,
    FastqRecord,
    Layout,
    format_fasta,
    format_record,
    open_input,
    read_fasta,
    read_fastq,
    read_sequences,
    sniff_format,
    write_records,
)

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
FASTA_FILES = (
    sorted(
        str(p.relative_to(SHARED))
        for pattern in ("**/*.fa*", "**/*.fna*")
        for p in SHARED.glob(pattern)
    )
    if SHARED.is_dir()
    else []
)
FASTQ_FILES = (
    sorted(str(p.relative_to(SHARED)) for p in SHARED.glob("fastq/*.f*q*"))
    if SHARED.is_dir()
    else []
)


def parse(data: bytes, **kwargs) -> list[FastaRecord]:
    return list(read_fasta(io.BytesIO(data), name="t.fa", **kwargs))


def round_trip(data: bytes, **kwargs) -> bytes:
    return b"".join(format_fasta(r) for r in parse(data, **kwargs))


# ----------------------------------------------------------------------- real data


@pytest.mark.shared_data
@pytest.mark.parametrize("relative", FASTA_FILES)
def test_every_shared_fasta_file_round_trips_byte_exactly(shared_data: Path, relative: str) -> None:
    path = shared_data / relative
    with open_input(path) as stream:
        original = stream.read()
    out = io.BytesIO()
    write_records(read_fasta(path), out)
    assert out.getvalue() == original


@pytest.mark.shared_data
@pytest.mark.parametrize("relative", FASTQ_FILES)
def test_every_shared_fastq_file_round_trips_byte_exactly(shared_data: Path, relative: str) -> None:
    path = shared_data / relative
    with open_input(path) as stream:
        original = stream.read()
    assert b"".join(format_record(r) for r in read_fastq(path)) == original


@pytest.mark.shared_data
def test_uniprot_layout_is_one_width_per_record(shared_data: Path) -> None:
    path = shared_data / "protein/uniprot_proteomes/UP000000625-E.coli.fasta.gz"
    layouts = {r.layout for r in read_fasta(path)}
    assert {layout.wrap for layout in layouts} <= {0, 60}
    assert all(layout.is_regular for layout in layouts)


@pytest.mark.shared_data
def test_trailing_space_of_smalt_headers_is_kept(shared_data: Path) -> None:
    first = next(read_fasta(shared_data / "nucleotide/pfalciparum_smalt_genome_1.fa.gz"))
    assert first.header == b"MAL1 "
    assert first.residues[:10].islower()


# ----------------------------------------------------------------------- layouts


def test_regular_wrapping_is_stored_as_one_width() -> None:
    [record] = parse(b">a\nACGT\nACGT\nAC\n")
    assert record.residues == b"ACGTACGTAC"
    assert record.layout == Layout(wrap=4)


def test_single_line_sequence_has_wrap_zero() -> None:
    [record] = parse(b">a desc\nACGTACGT\n")
    assert record.layout.wrap == 0 and record.layout.is_regular


def test_layout_depends_only_on_the_record_itself() -> None:
    alone = parse(b">a\nACG\n")[0]
    among_wrapped = parse(b">x\nAAAAAA\nAAAAAA\nAA\n>a\nACG\n")[1]
    assert alone == among_wrapped


def test_trailing_spaces_and_tabs_in_headers_are_kept() -> None:
    data = b">id  desc \t \nACGT\n"
    assert parse(data)[0].header == b"id  desc \t "
    assert round_trip(data) == data


def test_lower_case_residues_are_kept_for_soft_masking() -> None:
    assert parse(b">a\nACgtNn\n")[0].residues == b"ACgtNn"


def test_crlf_file_round_trips_with_crlf_layout() -> None:
    data = b">a\r\nACGT\r\nAC\r\n>b\r\nGG\r\n"
    records = parse(data)
    assert records[0].layout.eol == CRLF and records[0].layout.is_regular
    assert records[0].header == b"a"
    assert round_trip(data) == data


def test_mixed_line_endings_round_trip_with_explicit_terminators() -> None:
    data = b">a\r\nACGT\nAC\r\n"
    [record] = parse(data)
    assert record.layout.line_eols == (CRLF, b"\n", CRLF)
    assert round_trip(data) == data


def test_blank_lines_round_trip() -> None:
    data = b">a\nACGT\n\nAC\n\n>b\n\n"
    records = parse(data)
    assert records[0].layout.line_lengths == (4, 0, 2, 0)
    assert records[1].layout.line_lengths == (0,)
    assert round_trip(data) == data


def test_irregular_wrapping_stores_explicit_line_lengths() -> None:
    data = b">a\nACG\nACGTA\nA\n"
    [record] = parse(data)
    assert record.layout.line_lengths == (3, 5, 1)
    assert round_trip(data) == data


def test_missing_final_newline_round_trips() -> None:
    for data in (b">a\nACGT\nAC", b">a\nAC\n>b", b">a\r\nAC"):
        records = parse(data)
        assert records[-1].layout.final_eol is False
        assert round_trip(data) == data


def test_with_alphabet_any_spaces_inside_sequence_lines_are_residue_bytes() -> None:
    data = b">a\nACGT ACGT\nAC  \n"
    [record] = parse(data, alphabet="any")
    assert record.residues == b"ACGT ACGTAC  "
    assert round_trip(data, alphabet="any") == data


@pytest.mark.parametrize(
    ("data", "line", "what"),
    [
        (b">a\nACGT ACGT\n", 2, "space (0x20) in sequence data (column 5)"),
        (b">a\nAC\n>b\na1-\n", 4, "character '1' (0x31) in sequence data (column 2)"),
        (b">a\nAC\nAC?\n", 3, "character '?' (0x3f) in sequence data (column 3)"),
    ],
)
def test_a_residue_outside_iupac_is_refused_naming_line_and_column(data: bytes, line: int, what: str) -> None:
    with pytest.raises(InputFormatError, match=re.escape(what) + ".*--alphabet any") as info:
        parse(data)
    assert info.value.line == line


def test_iupac_letters_stops_and_gaps_are_residues() -> None:
    data = b">a\nACGTURYSWKMBDHVNacgtn\n>p\nMKVLAXBZJOU*-.\n"
    assert round_trip(data) == data


def test_record_larger_than_a_read_block_is_joined() -> None:
    data = b">big\n" + b"ACGTACGTAC\n" * 2000 + b">small\nAC\n"
    records = parse(data, block_size=4096)
    assert len(records[0].residues) == 20000
    assert round_trip(data, block_size=4096) == data


def test_header_starting_exactly_at_a_block_edge_is_found() -> None:
    data = b">a\nACG\n" + b">b\nTT\n"  # the second '>' is byte 7
    assert [r.header for r in parse(data, block_size=7)] == [b"a", b"b"]


def test_empty_input_has_no_records() -> None:
    assert parse(b"") == []


def test_empty_record_is_kept_and_flagged() -> None:
    records = parse(b">a\n>b\nAC\n")
    assert records[0].is_empty and not records[1].is_empty
    assert round_trip(b">a\n>b\nAC\n") == b">a\n>b\nAC\n"


def test_empty_record_is_an_error_when_not_allowed() -> None:
    with pytest.raises(InputFormatError) as info:
        parse(b">a\nAC\n>b\n>c\nAC\n", allow_empty=False)
    assert info.value.line == 3 and "empty record" in info.value.problem


def test_layout_with_wrong_line_lengths_is_refused_on_format() -> None:
    record = FastaRecord(b"a", b"ACGT", Layout(line_lengths=(1, 1)))
    with pytest.raises(ValueError, match="add up"):
        format_fasta(record)


# ----------------------------------------------------------------------- errors


def test_a_lone_gt_is_an_empty_header_kept_byte_exact() -> None:
    data = b">a\nAC\n>\nGG\n"
    assert [r.header for r in parse(data)] == [b"a", b""]
    assert round_trip(data) == data


def test_ctrl_a_separators_in_a_header_are_kept_byte_exact() -> None:
    data = b">WP_1.1 protein [E. coli]\x01WP_2.1 protein [Shigella]\nMKVL\n"
    assert round_trip(data) == data


def test_other_control_bytes_in_a_header_are_refused_by_name() -> None:
    with pytest.raises(InputFormatError, match="control character 0x02 in header"):
        parse(b">a\x02b\nAC\n")


def test_sequence_before_any_header_is_an_error() -> None:
    with pytest.raises(InputFormatError, match="no header before sequence data") as info:
        parse(b"ACGT\n>a\nAC\n")
    assert info.value.line == 1


def test_binary_garbage_is_reported_as_binary() -> None:
    with pytest.raises(InputFormatError, match="binary data"):
        parse(b"\x00\x01\x02garbage")


def test_nul_byte_inside_residues_names_the_line() -> None:
    with pytest.raises(InputFormatError, match="NUL byte") as info:
        parse(b">a\nACGT\nAC\x00T\n")
    assert info.value.line == 3


def test_control_character_inside_residues_names_the_line() -> None:
    with pytest.raises(InputFormatError, match="control character 0x07") as info:
        parse(b">a\nAC\n>b\nA\x07\n")
    assert info.value.line == 4


def test_control_character_in_header_is_an_error() -> None:
    with pytest.raises(InputFormatError, match="in header"):
        parse(b">a\x1bb\nAC\n")


def test_non_ascii_residue_is_an_error_but_utf8_header_is_fine() -> None:
    assert parse(">Saccharomycès\nAC\n".encode())[0].header == "Saccharomycès".encode()
    with pytest.raises(InputFormatError, match="non-ASCII"):
        parse(">a\nACé\n".encode())


def test_fastq_given_to_fasta_reader_is_explained() -> None:
    with pytest.raises(InputFormatError, match="looks like FASTQ"):
        parse(b"@r1\nACGT\n+\nIIII\n")


def test_truncated_gzip_is_reported_as_truncated(tmp_path: Path) -> None:
    whole = gzip.compress(b">a\n" + b"ACGT" * 50000 + b"\n")
    path = tmp_path / "cut.fa.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputFormatError, match="truncated gzip stream") as info:
        list(read_fasta(path))
    assert info.value.path == str(path)


def test_truncated_zstd_is_reported(tmp_path: Path) -> None:
    whole = zstandard.ZstdCompressor().compress(b">a\n" + bytes(range(65, 91)) * 20000 + b"\n")
    path = tmp_path / "cut.fa.zst"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputFormatError, match="zstd"):
        list(read_fasta(path))


def test_compression_is_detected_by_magic_bytes_not_name(tmp_path: Path) -> None:
    path = tmp_path / "misnamed.txt"
    path.write_bytes(gzip.compress(b">a\nAC\n"))
    assert [r.header for r in read_fasta(path)] == [b"a"]


def test_concatenated_zstd_frames_are_read_whole(tmp_path: Path) -> None:
    c = zstandard.ZstdCompressor()
    path = tmp_path / "two.fa.zst"
    path.write_bytes(c.compress(b">a\nAC\n") + c.compress(b">b\nGG\n"))
    assert [r.header for r in read_fasta(path)] == [b"a", b"b"]


@pytest.mark.parametrize("compress", [bz2.compress, lzma.compress])
def test_bzip2_and_xz_inputs_are_read(tmp_path: Path, compress) -> None:
    path = tmp_path / "f"
    path.write_bytes(compress(b">a\nAC\n>b\nGG\n"))
    assert [r.header for r in read_fasta(path)] == [b"a", b"b"]


def test_multi_member_gzip_with_nul_padding_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "bgzf-like.fa.gz"
    path.write_bytes(gzip.compress(b">a\nAC\n") + gzip.compress(b">b\nGG\n") + bytes(64))
    assert [r.header for r in read_fasta(path)] == [b"a", b"b"]


def test_corrupt_gzip_member_is_reported(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b">a\n" + b"ACGT" * 1000 + b"\n"))
    data[-8] ^= 0xFF  # the member's CRC-32
    path = tmp_path / "bad.fa.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(InputFormatError, match="corrupt or truncated gzip"):
        list(read_fasta(path))


def test_reader_stopped_early_releases_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.fa.gz"
    path.write_bytes(gzip.compress(b"".join(b">r%d\nACGT\n" % i for i in range(200_000))))
    records = read_fasta(path)
    assert next(records).header == b"r0"
    records.close()  # stops the decompressing thread and closes the file


def test_missing_file_is_an_input_format_error(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="cannot open"):
        list(read_fasta(tmp_path / "nope.fa"))


# ----------------------------------------------------------------------- FASTQ


def test_fastq_record_keeps_plus_line_and_qualities() -> None:
    data = b"@r1 x\nACGT\n+r1 x\nII#I\n@r2\nGG\n+\n!!\n"
    records = list(read_fastq(io.BytesIO(data)))
    assert records[0] == FastqRecord(b"r1 x", b"ACGT", b"r1 x", b"II#I", records[0].layout)
    assert b"".join(r.to_bytes() for r in records) == data


def test_fastq_crlf_and_missing_final_newline_round_trip() -> None:
    for data in (b"@r\r\nAC\r\n+\r\nII\r\n", b"@r\nAC\n+\nII"):
        records = list(read_fastq(io.BytesIO(data)))
        assert b"".join(r.to_bytes() for r in records) == data


def test_fastq_quality_length_mismatch_names_the_line() -> None:
    with pytest.raises(InputFormatError, match="3 quality values for 4 residues") as info:
        list(read_fastq(io.BytesIO(b"@r1\nACGT\n+\nIII\n"), name="q.fq"))
    assert info.value.line == 4


def test_wrapped_fastq_is_read_until_the_qualities_are_complete() -> None:
    data = b"@r1\nACGT\nACGT\n+\n@III\n+III\n@r2\nAC\n+\nII\n"
    records = list(read_fastq(io.BytesIO(data)))
    assert [(r.header, r.residues, r.qualities) for r in records] == [
        (b"r1", b"ACGTACGT", b"@III+III"),
        (b"r2", b"AC", b"II"),
    ]
    assert b"".join(r.to_bytes() for r in records) == data


def test_fastq_with_only_the_qualities_wrapped_round_trips() -> None:
    data = b"@r1\nACGTACGT\n+\nIIII\nIIII\n"
    [record] = read_fastq(io.BytesIO(data))
    assert record.qualities == b"IIIIIIII" and record.to_bytes() == data


def test_short_qualities_followed_by_a_record_name_the_wrapped_reading() -> None:
    with pytest.raises(InputFormatError, match="3 quality values for 4 residues on line 4; read on as wrapped"):
        list(read_fastq(io.BytesIO(b"@r1\nACGT\n+\nIII\n@r2\nACGT\n+\nIIII\n"), name="q.fq"))


def test_a_record_with_no_plus_line_before_the_next_record_names_the_line() -> None:
    with pytest.raises(InputFormatError, match="a new '@' record before the '\\+' line") as info:
        list(read_fastq(io.BytesIO(b"@r1\nACGT\n@r2\nAC\n+\nII\n"), name="q.fq"))
    assert info.value.line == 3


def test_truncated_fastq_record_is_an_error() -> None:
    with pytest.raises(InputFormatError, match="truncated FASTQ record"):
        list(read_fastq(io.BytesIO(b"@r1\nACGT\n+\nIIII\n@r2\nAC\n")))


# ----------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b">a\nAC\n", "fasta"),
        (b"@r\nA\n+\nI\n", "fastq"),
        (b"LOCUS       X", "genbank"),
        (b"ID   X; SV 1;", "embl"),
        (b"", "empty"),
    ],
)
def test_sniff_format_names_the_format(data: bytes, expected: str) -> None:
    assert sniff_format(io.BytesIO(gzip.compress(data))) == expected


def test_read_sequences_picks_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "r.fq"
    path.write_bytes(b"@r\nAC\n+\nII\n")
    assert isinstance(next(iter(read_sequences(path))), FastqRecord)


# ----------------------------------------------------------------------- properties

header_text = st.binary(min_size=1, max_size=30).map(
    lambda b: bytes(0x21 + x % 94 for x in b) + b" " * (b[0] % 3)
)
residue_text = st.text(alphabet="ACGTNacgtnMKLV*- ", max_size=300).map(str.encode)


@st.composite
def fasta_files(draw) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 6))):
        eol = draw(st.sampled_from([b"\n", b"\r\n"]))
        residues = draw(residue_text)
        parts.append(b">" + draw(header_text) + eol)
        if residues:
            style = draw(st.sampled_from(["wrap", "ragged", "one"]))
            if style == "one":
                lines = [residues]
            elif style == "wrap":
                w = draw(st.integers(1, 80))
                lines = [residues[i : i + w] for i in range(0, len(residues), w)]
            else:
                lines, at = [], 0
                while at < len(residues):
                    n = draw(st.integers(0, 40))
                    lines.append(residues[at : at + n])
                    at += n
            parts.extend(line + eol for line in lines)
        if draw(st.booleans()):
            parts.append(eol)  # a blank line
    data = b"".join(parts)
    if data and draw(st.booleans()):
        data = data.rstrip(b"\r\n")
    return data


@st.composite
def fastq_files(draw) -> bytes:
    """Four-line and wrapped FASTQ, LF or CRLF, quality lines that may start with '@' or '+'."""
    parts = []
    for n in range(draw(st.integers(0, 5))):
        eol = draw(st.sampled_from([b"\n", b"\r\n"]))
        residues = draw(st.text(alphabet="ACGTN", max_size=60).map(str.encode))
        qualities = draw(st.text(alphabet="@+I#5", min_size=len(residues), max_size=len(residues)).map(str.encode))

        def lines(text: bytes) -> list[bytes]:
            if not text or draw(st.booleans()):
                return [text]
            out, at = [], 0
            while at < len(text):
                size = draw(st.integers(1, 20))
                out.append(text[at : at + size])
                at += size
            return out

        parts.append(b"@r%d" % n + eol)
        parts.extend(line + eol for line in lines(residues))
        parts.append(draw(st.sampled_from([b"+", b"+r%d" % n])) + eol)
        parts.extend(line + eol for line in lines(qualities))
    data = b"".join(parts)
    if data and draw(st.booleans()):
        data = data[:-1] if data.endswith(b"\n") and not data.endswith(b"\r\n") else data
    return data


@settings(max_examples=300, deadline=None)
@given(fastq_files(), st.sampled_from([7, 64, 4 << 20]))
def test_random_fastq_round_trips_byte_exactly(data: bytes, block_size: int) -> None:
    records = list(read_fastq(io.BytesIO(data), block_size=block_size))
    assert b"".join(r.to_bytes() for r in records) == data


@settings(max_examples=300, deadline=None)
@given(fasta_files(), st.sampled_from([16, 64, 4 << 20]))
def test_random_fasta_round_trips_byte_exactly(data: bytes, block_size: int) -> None:
    assert round_trip(data, block_size=block_size, alphabet="any") == data


@settings(max_examples=100, deadline=None)
@given(fasta_files())
def test_reparsing_formatted_records_gives_equal_records(data: bytes) -> None:
    records = parse(data, alphabet="any")
    assert parse(b"".join(map(format_fasta, records)), alphabet="any") == records
