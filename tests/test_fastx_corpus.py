"""A corpus of small, hand-written tricky FASTA/FASTQ files (tests/data/fastx): every accepted file
exports byte-exact, every refused one is one error line naming file and line, and publishes nothing."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from Bio import SeqIO
from talaria_storage.backends.memory import MemoryBackend
from typer.testing import CliRunner

from talaria_storage import open_database
from talaria_storage.cli.main import app
from talaria_storage.sequences import database as database_module
from talaria_storage.sequences.canonical import refget_id
from talaria_storage.storage.store import Store

CORPUS = Path(__file__).parent / "data" / "fastx"
ACCEPTED = [
    "nr_ctrl_a.fa", "empty_header.fa", "mixed_eol.fa", "no_final_newline.fq",
    "wrapped_at_sign_plus.fq", "wrapped_ragged_crlf.fq",
]
REFUSED = {
    "digits_in_residues.fa": ":4: character '1' (0x31) in sequence data (column 3)",
    "space_in_residues.fa": ":2: space (0x20) in sequence data (column 5)",
    "nul_byte.fa": ":4: NUL byte (binary data) in sequence data (column 3)",
    "plus_mismatch.fq": ":7: the '+' line names 'r9', not the '@' line's 'r2'",
    "bad_control_in_header.fa": ":1: control character 0x07 in header",
    "truncated.fa.gz": ": truncated gzip stream",
    "bad_frame.fa.zst": ": corrupt or truncated zstd stream",
}


def _imported(name: str, **options: str) -> bytes:
    db = open_database(Store(MemoryBackend()), "db")
    db.import_files([CORPUS / name], version="v1", **options)
    out = io.BytesIO()
    db.export(out)
    return out.getvalue()


@pytest.mark.parametrize("name", ACCEPTED)
def test_an_accepted_corpus_file_exports_byte_exact(name: str) -> None:
    assert _imported(name) == (CORPUS / name).read_bytes()


@pytest.mark.parametrize("name", ["nr_ctrl_a.fa", "empty_header.fa", "mixed_eol.fa"])
def test_an_accepted_fasta_file_holds_biopythons_residues(name: str) -> None:
    db = open_database(Store(MemoryBackend()), "db")
    db.import_files([CORPUS / name], version="v1")
    ours = [r.residues.upper() for r in db.records()]
    with open(CORPUS / name, newline=None) as handle:  # universal newlines, as Biopython reads text
        assert ours == [str(r.seq).upper().encode() for r in SeqIO.parse(handle, "fasta")]


@pytest.mark.parametrize("name", ["wrapped_at_sign_plus.fq", "wrapped_ragged_crlf.fq", "no_final_newline.fq"])
def test_an_accepted_fastq_file_holds_biopythons_ids_residues_and_qualities(name: str) -> None:
    db = open_database(Store(MemoryBackend()), "db")
    db.import_files([CORPUS / name], version="v1")
    ours = [(r.header.split()[0], r.residues, r.qualities) for r in db.records()]
    with open(CORPUS / name, newline=None) as handle:
        theirs = [
            (r.id.encode(), str(r.seq).encode(), bytes(q + 33 for q in r.letter_annotations["phred_quality"]))
            for r in SeqIO.parse(handle, "fastq")
        ]
    assert ours == theirs


def test_every_identifier_of_an_nr_header_finds_the_record() -> None:
    db = open_database(Store(MemoryBackend()), "db")
    db.import_files([CORPUS / "nr_ctrl_a.fa"], version="v1")
    [by_first] = db.get_all("WP_000001.1")
    [by_second] = db.get_all("WP_000002.1")
    assert by_first == by_second and b"\x01WP_000002.1" in by_first.header


def test_a_record_with_an_empty_header_is_found_by_position_and_digest_never_by_empty_string() -> None:
    db = open_database(Store(MemoryBackend()), "db")
    db.import_files([CORPUS / "empty_header.fa"], version="v1")
    [second] = db.get_all("#2")
    assert (second.header, second.residues) == (b"", b"GGGGCCCC")
    assert db.get_all("") == [] and db.get_all("#4") == [] and db.get_all("#0") == []
    assert db.get_all(refget_id(b"GGGGCCCC")) == [second]


def test_alphabet_any_keeps_digits_and_spaces() -> None:
    for name in ("digits_in_residues.fa", "space_in_residues.fa"):
        assert _imported(name, alphabet="any") == (CORPUS / name).read_bytes()


@pytest.mark.parametrize(("name", "problem"), sorted(REFUSED.items()))
def test_a_refused_corpus_file_is_one_error_line_and_publishes_nothing(
    tmp_path: Path, name: str, problem: str
) -> None:
    store = str(tmp_path / "store")
    runner = CliRunner()
    assert runner.invoke(app, ["--store", store, "init"]).exit_code == 0
    result = runner.invoke(app, ["--store", store, "import", str(CORPUS / name), "--database", "db"])
    lines = [line for line in result.stderr.splitlines() if not line.startswith("read ")]
    assert result.exit_code != 0 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {CORPUS / name}{problem}"), lines[0]
    assert runner.invoke(app, ["--store", store, "list", "--json"]).stdout.count('"version"') == 0


def test_two_imports_in_one_second_without_a_version_both_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database_module, "default_version", lambda: "20261206T120000Z")
    db = open_database(Store(MemoryBackend()), "db")
    first = db.import_files([CORPUS / "mixed_eol.fa"])
    second = db.import_files([CORPUS / "empty_header.fa"])
    assert (first.version, second.version) == ("20261206T120000Z", "20261206T120000Z-2")
    assert {v.version for v in db.versions()} == {first.version, second.version}


def test_the_truncated_gzip_corpus_file_really_is_cut_short() -> None:
    with pytest.raises(EOFError), gzip.open(CORPUS / "truncated.fa.gz") as handle:
        handle.read()
