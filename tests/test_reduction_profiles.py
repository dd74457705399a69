"""Reduction profiles through the API: reduce, expand, references, update, verify, gc, and bad input."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from reduction_data import AMINO, families, write_fasta

from talaria_storage import open_database
from talaria_storage.core.errors import ConfigError, ProfileNotFound, StorageError, VersionNotFound
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import REDUCTIONS
from talaria_storage.core.types import (
    DeltaChunk,
    DeltaRecord,
    ReductionManifest,
    VerificationProblem,
)
from talaria_storage.formats.fasta import format_record, write_records
from talaria_storage.reduction import delta
from talaria_storage.reduction.delta_check import DeltaDecodeCheck
from talaria_storage.reduction.reducible_database import ReducibleDatabase
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.sequences.integrity import verify_store

RECORDS = families()


@pytest.fixture
def db(tmp_path: Path) -> ReducibleDatabase:
    source = write_fasta(tmp_path / "families.fa", RECORDS)
    database = open_database(str(tmp_path / "store"), "prot")
    database.import_files([source], version="v1")
    yield database
    database.close()


def reduced(db: ReducibleDatabase, profile: str = "90", **options: object):
    return db.reduce(profile, processes=0, **options)  # type: ignore[arg-type]


def test_each_family_reduces_to_its_longest_sequence(db: ReducibleDatabase) -> None:
    result = reduced(db)
    profile = db.reduction("90")
    refs = [r.header.split()[0].decode() for r in profile.references()]
    assert refs == [f"F{f}_0" for f in reversed(range(6))] + sorted(refs[6:], key=refs[6:].index)
    assert (result.references, result.members, result.sequences) == (10, 24, 34)
    assert sorted(refs[6:]) == ["S0", "S1", "S2", "S3"]


def test_every_record_expands_from_exactly_one_reference(db: ReducibleDatabase) -> None:
    reduced(db)
    profile = db.reduction("90")
    expanded = [a for r in profile.references() for a in profile.members_of(r.header.split()[0].decode())]
    assert sorted(expanded) == sorted(a for a, _, _ in RECORDS)


def test_expanding_a_member_gives_its_reference_cluster(db: ReducibleDatabase) -> None:
    reduced(db)
    profile = db.reduction("90")
    assert profile.members_of("F2_3") == profile.members_of("F2_0")
    assert profile.members_of("F2_0")[0] == "F2_0"


def test_expanded_records_are_the_original_bytes(db: ReducibleDatabase) -> None:
    reduced(db)
    profile = db.reduction("90")
    originals = {r.header: format_record(r) for r in db.records()}
    for record in profile.expand("F4_0"):
        assert format_record(record) == originals[record.header]


def test_the_same_command_on_the_same_version_gives_the_same_manifest(db: ReducibleDatabase) -> None:
    first = reduced(db)
    again = reduced(db)
    assert again.manifest == first.manifest and again.unchanged


def test_the_references_fasta_holds_one_record_per_reference(db: ReducibleDatabase) -> None:
    reduced(db)
    out = io.BytesIO()
    write_records(db.reduction("90").references(), out)
    assert out.getvalue().count(b">") == 10


def test_a_lower_identity_keeps_fewer_references(db: ReducibleDatabase) -> None:
    strict = reduced(db, "99", identity=0.99)
    loose = reduced(db, "90", identity=0.9)
    assert strict.references > loose.references
    assert db.reductions() == ["90", "99"]


def test_a_ratio_keeps_at_most_that_fraction(db: ReducibleDatabase) -> None:
    result = reduced(db, "half", ratio=0.5)
    assert result.kept_fraction <= 0.5


def test_taxonomy_aware_members_join_only_references_of_their_taxon(db: ReducibleDatabase) -> None:
    reduced(db, "tax", taxonomy_aware=True)
    profile = db.reduction("tax")
    taxon_of = {a: t for a, _, t in RECORDS}
    for reference in profile.references():
        accession = reference.header.split()[0].decode()
        assert {taxon_of[a] for a in profile.members_of(accession)} == {taxon_of[accession]}


def test_every_delta_decodes_to_its_member(db: ReducibleDatabase) -> None:
    reduced(db)
    stored = db.store.reductions.require("prot", "90")
    residues = {hashlib.sha256(s.encode()).digest(): s.encode() for _, s, _ in RECORDS}
    for h in stored.manifest.delta_chunks:
        chunk = db.get_delta_chunk(h) if hasattr(db, "get_delta_chunk") else db.store.get_delta_chunk(h)
        for record in chunk.deltas:
            assert delta.decode(residues[chunk.reference_hash.digest], record.ops) == residues[record.child_hash.digest]


def test_verify_finds_nothing_wrong_with_a_fresh_profile(db: ReducibleDatabase) -> None:
    reduced(db)
    assert verify_store(db.store, delta_check=DeltaDecodeCheck(db.store)) == []


def test_verify_reports_a_delta_that_decodes_to_the_wrong_hash(db: ReducibleDatabase) -> None:
    source, _ = db.manifest()
    a, b = RECORDS[0][1].encode(), RECORDS[1][1].encode()
    wrong = DeltaRecord("F0_1", SHA256Hash(hashlib.sha256(b).digest()), SHA256Hash(hashlib.sha256(a).digest()),
                        delta.encode(a, b[:-1]))
    h = db.store.store_delta_chunk(DeltaChunk(wrong.reference_hash, (wrong,)))
    db.store.store_reduction_manifest(ReductionManifest("prot", "bad", source, "v1", delta_chunks=(h,)))
    problems = verify_store(db.store, delta_check=DeltaDecodeCheck(db.store))
    assert [p.problem for p in problems] == [VerificationProblem.MISMATCH]
    assert "F0_1" in problems[0].message and h.to_hex() in problems[0].message


def test_verify_reports_a_delta_whose_reference_is_not_in_the_version(db: ReducibleDatabase) -> None:
    source, _ = db.manifest()
    stranger = b"".join(AMINO[i % 20].encode() for i in range(50))
    child = RECORDS[0][1].encode()
    record = DeltaRecord("F0_0", SHA256Hash(hashlib.sha256(child).digest()),
                         SHA256Hash(hashlib.sha256(stranger).digest()), delta.encode(stranger, child))
    h = db.store.store_delta_chunk(DeltaChunk(record.reference_hash, (record,)))
    db.store.store_reduction_manifest(ReductionManifest("prot", "orphan", source, "v1", delta_chunks=(h,)))
    problems = verify_store(db.store, delta_check=DeltaDecodeCheck(db.store))
    assert [p.problem for p in problems] == [VerificationProblem.MISSING]
    assert "is not a sequence of prot@v1" in problems[0].message


def test_gc_keeps_a_profile_whole(db: ReducibleDatabase) -> None:
    reduced(db)
    collect_garbage(db.store, grace_seconds=0)
    assert verify_store(db.store, delta_check=DeltaDecodeCheck(db.store)) == []
    assert len(db.reduction("90").members_of("F1_0")) == 5


def test_update_keeps_the_references_and_assigns_only_new_sequences(db: ReducibleDatabase, tmp_path: Path) -> None:
    reduced(db)
    before = {r.header.split()[0].decode() for r in db.reduction("90").references()}
    newcomer = ("N0", "".join(AMINO[(i * 7) % 20] for i in range(400)), 4932)  # the longest, like nothing else
    kept = [r for r in RECORDS if r[0] != "F3_2"] + [newcomer]
    db.import_files([write_fasta(tmp_path / "v2.fa", kept)], version="v2")
    result = db.reduce("90", update=True, processes=0)
    profile = db.reduction("90")
    after = {r.header.split()[0].decode() for r in profile.references()}
    assert after == before | {"N0"}
    assert result.version == "v2" and profile.parameters["updated_from"] == "v1"
    assert "F3_2" not in profile.members_of("F3_0")


def test_update_without_a_profile_says_to_reduce_first(db: ReducibleDatabase) -> None:
    with pytest.raises(ProfileNotFound, match="run reduce without --update first"):
        db.reduce("90", update=True, processes=0)


@pytest.mark.parametrize("options", [{"identity": 0.0}, {"identity": 1.5}, {"coverage": 0.0}, {"identity": 0.9, "ratio": 0.5}])
def test_bad_parameters_are_refused_and_nothing_is_published(db: ReducibleDatabase, options: dict) -> None:
    with pytest.raises(ConfigError):
        db.reduce("90", processes=0, **options)
    assert db.store.refs.list(REDUCTIONS) == {}


def test_a_version_that_does_not_exist_is_refused(db: ReducibleDatabase) -> None:
    with pytest.raises(VersionNotFound):
        db.reduce("90", version="v9", processes=0)
    assert db.store.refs.list(REDUCTIONS) == {}


def test_an_unknown_profile_names_the_known_ones(db: ReducibleDatabase) -> None:
    reduced(db)
    with pytest.raises(ProfileNotFound, match=r"no reduction profile '80'.*profiles: 90"):
        db.reduction("80")


def test_expanding_an_unknown_identifier_names_the_version(db: ReducibleDatabase) -> None:
    reduced(db)
    with pytest.raises(StorageError, match=r"'NOPE' names no record of prot@v1"):
        db.reduction("90").expand("NOPE")


KILLED_REDUCE = """
import os, signal, sys
from talaria_storage import open_database

def die(step, done, total):
    if step == "encode deltas":
        os.kill(os.getpid(), signal.SIGKILL)

db = open_database(sys.argv[1], "prot")
db.reduce("90", processes=0, progress=die)
"""


def test_a_reduce_killed_while_storing_deltas_is_completed_by_running_it_again(tmp_path: Path) -> None:
    location = str(tmp_path / "store")
    with open_database(location, "prot") as db:
        db.import_files([write_fasta(tmp_path / "families.fa", RECORDS)], version="v1")
    killed = subprocess.run([sys.executable, "-c", KILLED_REDUCE, location], check=False, capture_output=True)
    assert killed.returncode == -9
    with open_database(location, "prot") as db:
        assert db.reductions() == []  # nothing published by the killed run
        reduced(db)
        assert verify_store(db.store, delta_check=DeltaDecodeCheck(db.store)) == []
        resumed = db.store.reductions.require("prot", "90").manifest
    with open_database(str(tmp_path / "clean"), "prot") as clean:  # the same objects as a run never killed
        clean.import_files([write_fasta(tmp_path / "families.fa", RECORDS)], version="v1")
        reduced(clean)
        uninterrupted = clean.store.reductions.require("prot", "90").manifest
    assert (resumed.delta_chunks, resumed.objects) == (uninterrupted.delta_chunks, uninterrupted.objects)


def test_a_resumed_reduce_skips_the_selection_and_leaves_no_state(tmp_path: Path) -> None:
    location = str(tmp_path / "store")
    with open_database(location, "prot") as db:
        db.import_files([write_fasta(tmp_path / "families.fa", RECORDS)], version="v1")
    subprocess.run([sys.executable, "-c", KILLED_REDUCE, location], check=False, capture_output=True)
    with open_database(location, "prot") as db:
        assert [s.operation.value for s in db.store.states.list()] == ["reduce", "reduce"]
        steps: set[str] = set()
        db.reduce("90", processes=0, progress=lambda step, done, total: steps.add(step))
        assert "prefilter" not in steps and "encode deltas" in steps
        assert db.store.states.list() == []
