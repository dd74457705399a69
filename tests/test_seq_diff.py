"""diff_versions: what was added, removed, renamed or reclassified between two versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from talaria_storage import open_database, open_store
from talaria_storage.core.errors import VersionNotFound
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.sequences.canonical import sequence_hash
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.sequences.diff import (
    HeaderChange,
    Occurrence,
    Reclassification,
    diff_versions,
)

BASE = (
    b">sp|P00001|A_ECOLI Alpha OS=E. coli OX=562\nMKVLATAAGG\n"
    b">sp|P00002|B_HUMAN Beta OS=H. sapiens OX=9606\nMSTNPKPQRK\n"
    b">sp|P00003|C_HUMAN Gamma OS=H. sapiens OX=9606\nMAAAWWWCCC\n"
)


def _database(tmp_path: Path, *releases: bytes) -> SequenceDatabase:
    """A fresh in-memory database with one version per release, named v1, v2, ..."""
    db = open_database(open_store("memory://"), "db")
    for number, data in enumerate(releases, 1):
        path = tmp_path / f"release{number}.fa"
        path.write_bytes(data)
        db.import_files([path], version=f"v{number}")
    return db


def _h(residues: bytes) -> SHA256Hash:
    return sequence_hash(residues)


def test_a_version_compared_with_itself_is_empty(tmp_path: Path) -> None:
    db = _database(tmp_path, BASE)
    diff = diff_versions(db, "v1", "v1")
    assert diff.is_empty
    assert diff.counts() == {"added": 0, "removed": 0, "header_changed": 0, "reclassified": 0, "unchanged": 3}


def test_the_same_manifest_is_diffed_without_reading_any_chunk(tmp_path: Path) -> None:
    db = _database(tmp_path, BASE, BASE + b">extra\nMKKK\n")
    db.store.gc([])  # every chunk gone: a diff that read one would fail
    diff = diff_versions(db, None, "v2")  # HEAD is v2
    assert diff.is_empty and (diff.a, diff.b) == ("v2", "v2")


def test_a_new_sequence_is_added(tmp_path: Path) -> None:
    db = _database(tmp_path, BASE, BASE + b">sp|P00004|D_ECOLI Delta OX=562\nMNEWNEWNEW\n")
    diff = diff_versions(db, "v1", "v2")
    assert diff.added == (Occurrence("P00004", _h(b"MNEWNEWNEW"), "sp|P00004|D_ECOLI Delta OX=562", 562),)
    assert (diff.removed, diff.header_changed, diff.reclassified) == ((), (), ())


def test_a_dropped_sequence_is_removed(tmp_path: Path) -> None:
    db = _database(tmp_path, BASE, BASE.split(b">sp|P00003")[0])
    diff = diff_versions(db, "v1", "v2")
    assert [o.accession for o in diff.removed] == ["P00003"]
    assert diff.removed[0].sequence == _h(b"MAAAWWWCCC")
    assert diff.added == ()


def test_a_new_description_under_the_same_accession_is_a_header_change(tmp_path: Path) -> None:
    renamed = BASE.replace(b"Beta OS=H. sapiens", b"Beta chain OS=H. sapiens")
    db = _database(tmp_path, BASE, renamed)
    diff = diff_versions(db, "v1", "v2")
    assert diff.header_changed == (
        HeaderChange(
            "P00002", "P00002", _h(b"MSTNPKPQRK"),
            "sp|P00002|B_HUMAN Beta OS=H. sapiens OX=9606", "sp|P00002|B_HUMAN Beta chain OS=H. sapiens OX=9606",
        ),
    )
    assert (diff.added, diff.removed, diff.reclassified) == ((), (), ())


def test_the_same_sequence_under_a_new_accession_is_a_header_change(tmp_path: Path) -> None:
    db = _database(tmp_path, BASE, BASE.replace(b"sp|P00003|C_HUMAN", b"sp|Q99999|C_HUMAN"))
    diff = diff_versions(db, "v1", "v2")
    (change,) = diff.header_changed
    assert (change.old_accession, change.accession) == ("P00003", "Q99999")
    assert (diff.added, diff.removed) == ((), ())


def test_a_new_taxon_is_a_reclassification_and_a_header_change(tmp_path: Path) -> None:
    db = _database(tmp_path, BASE, BASE.replace(b"E. coli OX=562", b"E. coli OX=83333"))
    diff = diff_versions(db, "v1", "v2")
    assert diff.reclassified == (Reclassification("P00001", _h(b"MKVLATAAGG"), 562, 83333),)
    assert [c.accession for c in diff.header_changed] == ["P00001"]


def test_an_extra_copy_of_a_known_sequence_is_added(tmp_path: Path) -> None:
    copy = b">sp|P00005|A2_ECOLI Alpha copy OX=562\nMKVLATAAGG\n"
    db = _database(tmp_path, BASE, BASE + copy)
    diff = diff_versions(db, "v1", "v2")
    assert [(o.accession, o.sequence) for o in diff.added] == [("P00005", _h(b"MKVLATAAGG"))]
    assert (diff.removed, diff.header_changed) == ((), ())


def test_dropping_one_of_two_identical_records_removes_one_occurrence(tmp_path: Path) -> None:
    twice = BASE + b">sp|P00002|B_HUMAN Beta OS=H. sapiens OX=9606\nMSTNPKPQRK\n"
    db = _database(tmp_path, twice, BASE)
    diff = diff_versions(db, "v1", "v2")
    assert [o.accession for o in diff.removed] == ["P00002"]
    assert diff.counts()["unchanged"] == 3


def test_rewrapping_and_lower_case_residues_are_not_changes(tmp_path: Path) -> None:
    rewrapped = BASE.replace(b"MKVLATAAGG", b"mkvla\ntaagg")
    db = _database(tmp_path, BASE, rewrapped)
    assert diff_versions(db, "v1", "v2").is_empty


def test_head_is_the_default_side(tmp_path: Path) -> None:
    db = _database(tmp_path, BASE, BASE + b">new OX=562\nMQQQ\n")
    assert diff_versions(db, "v1", None) == diff_versions(db, "v1", "v2")


def test_the_reverse_diff_swaps_added_and_removed(tmp_path: Path) -> None:
    db = _database(tmp_path, BASE, BASE + b">new OX=562\nMQQQ\n")
    forward, backward = diff_versions(db, "v1", "v2"), diff_versions(db, "v2", "v1")
    assert forward.added == backward.removed and forward.removed == backward.added


def test_change_records_are_sorted(tmp_path: Path) -> None:
    new = b"".join(b">n%02d OX=%d\nMK%sQ\n" % (i, 562 + i % 3, b"W" * i) for i in (7, 3, 11, 1))
    db = _database(tmp_path, BASE, BASE + new)
    added = diff_versions(db, "v1", "v2").added
    assert [o.accession for o in added] == ["n01", "n03", "n07", "n11"]


def test_to_dict_is_json_with_counts_and_hex_hashes(tmp_path: Path) -> None:
    db = _database(tmp_path, BASE, BASE.replace(b"OX=562", b"OX=561"))
    doc = json.loads(json.dumps(diff_versions(db, "v1", "v2").to_dict()))
    assert doc["counts"]["reclassified"] == 1
    assert doc["reclassified"][0] == {
        "accession": "P00001", "sequence": _h(b"MKVLATAAGG").to_hex(), "old_taxid": 562, "new_taxid": 561,
    }
    assert (doc["database"], doc["a"], doc["b"]) == ("db", "v1", "v2")


def test_unchanged_counts_records_of_shared_chunks_and_of_paired_records(tmp_path: Path) -> None:
    db = _database(tmp_path, BASE, BASE + b">new OX=7\nMQQQ\n")
    assert diff_versions(db, "v1", "v2").unchanged == 3


def test_an_unknown_version_raises_version_not_found(tmp_path: Path) -> None:
    db = _database(tmp_path, BASE)
    with pytest.raises(VersionNotFound, match="no version 'v9'"):
        diff_versions(db, "v1", "v9")

