"""collect_garbage (mark from every ref, sweep chunks and manifests) and verify_store."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from talaria_storage import open_database, open_store
from talaria_storage.core.errors import ConfigError, InputFormatError, StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import CHUNKS, MANIFESTS
from talaria_storage.core.types import OperationType, SourceInfo, VerificationProblem
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.sequences.taxonomy_store import TaxonomyCatalog, TaxonomyIndexedStore
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage import frame
from talaria_storage.storage.codecs import NoneCodec
from talaria_storage.storage.store import Store

RELEASE_1 = b"".join(b">p%d OX=%d\n%s\n" % (i, 562 + i % 3, b"MKVL" * (10 + i)) for i in range(60))
RELEASE_2 = RELEASE_1 + b">new OX=9606\nMSTNPKPQRKTKRNTNRRPQDVKFPGG\n"
TAXDUMP = {
    "nodes.dmp": "1\t|\t1\t|\tno rank\t|\n562\t|\t1\t|\tspecies\t|\n9606\t|\t1\t|\tspecies\t|\n",
    "names.dmp": "562\t|\tEscherichia coli\t|\t\t|\tscientific name\t|\n",
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _objects(store: Store) -> set[str]:
    return {info.key for prefix in (CHUNKS, MANIFESTS) for info in store.backend.list(prefix)}


def _export(store: Store, database: str, version: str | None = None) -> bytes:
    out = io.BytesIO()
    open_database(store, database).export(out, version=version)
    return out.getvalue()


def _age(root: Path, seconds: float) -> None:
    """Make every object file under a filesystem store look ``seconds`` old."""
    then = time.time() - seconds
    for namespace in ("chunks", "manifests"):
        for path in (root / namespace).rglob("*"):
            if path.is_file():
                os.utime(path, (then, then))


def _abort_an_import(store: Store, tmp_path: Path) -> None:
    """An import whose second file is garbage: the first file's objects are stored, no ref is."""
    orphan = _write(tmp_path / "orphan.fa", b"".join(b">o%d OX=7\n%s\n" % (i, b"W" * (50 + i)) for i in range(40)))
    bad = _write(tmp_path / "bad.fa", b">x\nACGT\n\x00\x01\x02 binary garbage\n")
    with pytest.raises(InputFormatError):
        open_database(store, "aborted").import_files([orphan, bad], version="v1")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A filesystem store holding db@v1, db@v2 (HEAD), a taxdump and one labelled chunk."""
    with open_store(tmp_path / "store") as opened:
        db = open_database(opened, "db")
        db.import_files([_write(tmp_path / "r1.fa", RELEASE_1)], version="v1")
        db.import_files([_write(tmp_path / "r2.fa", RELEASE_2)], version="v2")
        dump = tmp_path / "taxdump"
        dump.mkdir()
        for name, text in TAXDUMP.items():
            (dump / name).write_text(text)
        TaxonomyCatalog(opened).import_taxdump(dump, "2024")
        TaxonomyIndexedStore(opened).store_taxonomy_chunk(b"labelled records", [562], 1)
        yield opened


# ----------------------------------------------------------------------------------- gc


def test_gc_keeps_everything_reachable_from_refs_and_taxonomy(store: Store, tmp_path: Path) -> None:
    before = _objects(store)
    _age(tmp_path / "store", 7200)
    result = collect_garbage(store)
    assert (result.removed, result.kept) == (0, len(before))
    assert _objects(store) == before
    assert _export(store, "db", "v1") == RELEASE_1 and _export(store, "db") == RELEASE_2
    assert 562 in TaxonomyCatalog(store).load("2024")
    assert len(TaxonomyIndexedStore(store).find_chunks_by_taxon(562)) >= 1


def test_gc_sweeps_an_aborted_imports_orphans_after_the_grace_period(store: Store, tmp_path: Path) -> None:
    kept = _objects(store)
    _abort_an_import(store, tmp_path)
    assert _objects(store) > kept
    _age(tmp_path / "store", 7200)
    result = collect_garbage(store, grace_seconds=3600)
    assert result.removed > 0 and not result.dry_run
    assert _objects(store) == kept


def test_a_rerun_of_the_aborted_import_completes_after_gc(store: Store, tmp_path: Path) -> None:
    _abort_an_import(store, tmp_path)
    _age(tmp_path / "store", 7200)
    collect_garbage(store)
    open_database(store, "aborted").import_files([tmp_path / "orphan.fa"], version="v1")
    assert _export(store, "aborted") == (tmp_path / "orphan.fa").read_bytes()


def test_gc_spares_unreferenced_objects_younger_than_the_grace_period(store: Store, tmp_path: Path) -> None:
    _age(tmp_path / "store", 7200)
    _abort_an_import(store, tmp_path)  # written just now
    before = _objects(store)
    result = collect_garbage(store, grace_seconds=3600)
    assert result.removed == 0 and result.spared_young > 0
    assert _objects(store) == before


def test_gc_dry_run_reports_what_it_would_delete_and_deletes_nothing(store: Store, tmp_path: Path) -> None:
    _abort_an_import(store, tmp_path)
    _age(tmp_path / "store", 7200)
    before = _objects(store)
    planned = collect_garbage(store, dry_run=True)
    assert planned.dry_run and planned.removed > 0
    assert _objects(store) == before
    assert sorted(collect_garbage(store).removed_hashes) == sorted(planned.removed_hashes)


def test_gc_sweeps_the_manifest_and_chunks_of_a_deleted_version(store: Store, tmp_path: Path) -> None:
    v1_manifest, _ = VersionCatalog(store).resolve("db", "v1")
    VersionCatalog(store).delete_version("db", "v1")
    _age(tmp_path / "store", 7200)
    result = collect_garbage(store)
    assert v1_manifest in result.removed_hashes
    assert not store.manifests.has_chunk(v1_manifest)
    assert _export(store, "db") == RELEASE_2


def test_gc_keeps_extra_roots(store: Store, tmp_path: Path) -> None:
    in_flight = store.store_chunk(b"an object a running operation still needs")
    _age(tmp_path / "store", 7200)
    collect_garbage(store, extra_roots=[in_flight])
    assert store.has_chunk(in_flight)


def test_gc_keeps_the_objects_of_an_unfinished_operation_until_its_state_is_cleaned(
    store: Store, tmp_path: Path
) -> None:
    copied = store.store_chunk(b"an object an interrupted sync already copied and verified")
    state = store.states.start(
        OperationType.SYNC_PULL, SourceInfo("db", source="s3://bucket/store"),
        manifest_hash=None, manifest_version="v3", total_chunks=2,
    )
    store.states.record_completed(state.operation_id, [copied])
    _age(tmp_path / "store", 7200)
    collect_garbage(store)
    assert store.has_chunk(copied)

    store.states.complete(state.operation_id)
    collect_garbage(store)
    assert not store.has_chunk(copied)


def test_gc_removes_the_temporary_files_of_killed_writes(store: Store, tmp_path: Path) -> None:
    leftover = tmp_path / "store" / ".tmp" / "put-killed"
    leftover.parent.mkdir(exist_ok=True)
    leftover.write_bytes(b"half an object")
    then = time.time() - 7200
    os.utime(leftover, (then, then))
    assert collect_garbage(store, dry_run=True).incomplete_removed == 0 and leftover.exists()
    assert collect_garbage(store).incomplete_removed == 1
    assert not leftover.exists()


def test_a_ref_to_a_missing_manifest_stops_gc_before_it_deletes_anything(store: Store, tmp_path: Path) -> None:
    _abort_an_import(store, tmp_path)
    _age(tmp_path / "store", 7200)
    v1_manifest, _ = VersionCatalog(store).resolve("db", "v1")
    store.backend.delete(MANIFESTS + v1_manifest.to_hex())  # a lost object, below the store under test
    before = _objects(store)
    with pytest.raises(StorageError, match=r"gc stopped before deleting anything: ref 'refs/db/v1' names manifest"):
        collect_garbage(store)
    assert _objects(store) == before


def test_a_negative_grace_period_is_refused(store: Store) -> None:
    with pytest.raises(ConfigError, match="grace"):
        collect_garbage(store, grace_seconds=-1)


def test_a_grace_period_not_longer_than_freshen_after_is_warned_about(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    collect_garbage(store, grace_seconds=store.freshen_after)
    assert "is not longer than freshen_after_seconds" in caplog.text


def test_the_default_grace_period_gives_no_warning(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    collect_garbage(store)
    assert caplog.text == ""


# ------------------------------------------------------------------------------- verify


def _corrupt(store: Store, key: str) -> None:
    store.backend.put(key, frame.encode(b"not what was stored", NoneCodec()))


def _first_chunk(store: Store, version: str = "v1") -> SHA256Hash:
    _, manifest = VersionCatalog(store).resolve("db", version)
    return manifest.chunks[0].hash


def test_verify_finds_nothing_wrong_in_a_sound_store(store: Store) -> None:
    assert verify_store(store) == []


def test_verify_reports_a_deleted_chunk_a_manifest_lists(store: Store) -> None:
    lost = _first_chunk(store, "v2")  # v1's chunks are also v2's dictionary chunks: needed twice
    store.backend.delete(CHUNKS + lost.to_hex())
    (problem,) = verify_store(store)
    assert (problem.key, problem.problem, problem.hash) == (CHUNKS + lost.to_hex(), VerificationProblem.MISSING, lost)
    assert "refs/db/v2" in problem.message and "manifest " in problem.message
    assert "pull it from a remote or re-import" in problem.message


def test_verify_reports_a_missing_record_order_object(store: Store) -> None:
    _, manifest = VersionCatalog(store).resolve("db", "v2")
    order = manifest.extra["files"][0]["order"]
    store.backend.delete(CHUNKS + order)
    (problem,) = verify_store(store)
    assert problem.key == CHUNKS + order and "record order object" in problem.message


def test_verify_reports_a_missing_sequence_pack(store: Store) -> None:
    _, manifest = VersionCatalog(store).resolve("db", "v2")
    pack = next(c.pack for c in manifest.chunks if c.pack is not None)
    store.backend.delete(CHUNKS + pack.to_hex())
    problems = verify_store(store)
    assert [p.key for p in problems] == [CHUNKS + pack.to_hex()]
    assert "sequence pack" in problems[0].message


def test_verify_reports_a_missing_taxdump_object(store: Store) -> None:
    stored = TaxonomyCatalog(store).head()
    assert stored is not None
    store.backend.delete(CHUNKS + stored.object.to_hex())
    (problem,) = verify_store(store)
    assert problem.problem is VerificationProblem.MISSING and "taxonomy/dumps/2024" in problem.message


def test_verify_reports_a_ref_to_a_missing_manifest(store: Store) -> None:
    h, _ = VersionCatalog(store).resolve("db", "v1")
    store.backend.delete(MANIFESTS + h.to_hex())
    problems = verify_store(store)
    assert [(p.key, p.problem) for p in problems] == [(MANIFESTS + h.to_hex(), VerificationProblem.MISSING)]
    assert "'refs/db/v1'" in problems[0].message


def test_verify_reports_a_corrupted_chunk(store: Store) -> None:
    bad = _first_chunk(store)
    _corrupt(store, CHUNKS + bad.to_hex())
    (problem,) = verify_store(store)
    assert (problem.hash, problem.problem) == (bad, VerificationProblem.MISMATCH)


def test_verify_reports_a_corrupted_manifest(store: Store) -> None:
    h, _ = VersionCatalog(store).resolve("db", "v2")
    _corrupt(store, MANIFESTS + h.to_hex())
    problems = verify_store(store)
    assert [(p.key, p.problem) for p in problems] == [(MANIFESTS + h.to_hex(), VerificationProblem.MISMATCH)]


def test_verify_with_a_subset_of_every_object_reports_a_corrupted_chunk(store: Store) -> None:
    bad = _first_chunk(store)
    _corrupt(store, CHUNKS + bad.to_hex())
    assert [p.hash for p in verify_store(store, subset=100)] == [bad]


def test_subset_sampling_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    with open_store(f"memory://{tmp_path.name}") as store:
        hashes = [store.store_chunk(b"object %d" % i) for i in range(40)]
        for h in hashes:
            _corrupt(store, CHUNKS + h.to_hex())  # every object bad: the problems are the sample
        first = [p.hash for p in verify_store(store, subset=25, seed=7)]
        assert len(first) == 10
        assert [p.hash for p in verify_store(store, subset=25, seed=7)] == first
        assert [p.hash for p in verify_store(store, subset=25, seed=8)] != first


def test_a_subset_outside_0_to_100_percent_is_refused(store: Store) -> None:
    with pytest.raises(ConfigError, match="percentage"):
        verify_store(store, subset=0)
    with pytest.raises(ConfigError, match="percentage"):
        verify_store(store, subset=150)
