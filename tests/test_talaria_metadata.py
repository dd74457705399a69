"""Reading Talaria's ``deltas.dat`` and ``ref2children.tsv``: every malformed line is named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from talaria_storage.io.talaria_metadata import MetadataFormatError, read_deltas, read_ref2children


def written(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_a_deltas_line_with_a_taxon_reads_back(tmp_path: Path) -> None:
    (line,) = read_deltas(written(tmp_path, "deltas.dat", "C1\tR1\ttaxon:562\t=\n"))
    assert (line.child, line.reference, line.taxon, line.edits) == ("C1", "R1", 562, ())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("C1\tR1\n", "deltas.dat:1: expected 'child<TAB>reference<TAB>[taxon:N<TAB>]ops', got 2 field(s)"),
        ("C1\tR1\t=\n\tR2\t=\n", "deltas.dat:2: expected"),
        ("C1\tR1\ttax:5\t=\n", "deltas.dat:1: the third of four fields must be 'taxon:N', got 'tax:5'"),
        ("C1\tR1\t=\r\n", "deltas.dat:1: a CR line end"),
    ],
)
def test_a_malformed_deltas_line_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MetadataFormatError, match=re.escape(message)):
        list(read_deltas(written(tmp_path, "deltas.dat", text)))


def test_malformed_ops_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(MetadataFormatError, match=r"deltas.dat:2: "):
        list(read_deltas(written(tmp_path, "deltas.dat", "C1\tR1\t=\nC2\tR1\t%%%not-ops\n")))


def test_ref2children_reads_references_and_children(tmp_path: Path) -> None:
    found = read_ref2children(written(tmp_path, "ref2children.tsv", "R1\tC1\tC2\nR2\n"))
    assert found == {"R1": ["C1", "C2"], "R2": []}


def test_a_reference_listed_twice_is_named(tmp_path: Path) -> None:
    with pytest.raises(MetadataFormatError, match=r"ref2children.tsv:2: reference 'R1' is listed twice"):
        read_ref2children(written(tmp_path, "ref2children.tsv", "R1\tC1\nR1\tC2\n"))


def test_an_empty_child_field_is_named(tmp_path: Path) -> None:
    with pytest.raises(MetadataFormatError, match=r"ref2children.tsv:1: an empty field"):
        read_ref2children(written(tmp_path, "ref2children.tsv", "R1\t\tC2\n"))
