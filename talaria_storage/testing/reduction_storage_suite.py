"""The ReductionStorage conformance suite: delta chunks, profiles, their index, gc and verify as tests.

Provide a ``reduction_storage`` fixture yielding a fresh, initialised
:class:`~talaria_storage.storage.store.Store` on the backend under test.
Damage is done through ``reduction_storage.backend``, the layer below, so it
bypasses the store as a bad disk or upload would. The gc and verify tests
import a small real database (``tmp_path`` holds its FASTA file), since a
profile keeps the version it reduced alive.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from talaria_storage import open_database
from talaria_storage.core.errors import (
    ChunkNotFound,
    InvalidKey,
    ProfileNotFound,
    RefConflict,
    StorageError,
)
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import reduction_key
from talaria_storage.core.types import (
    DeltaChunk,
    DeltaRecord,
    ReductionManifest,
    VerificationError,
    VerificationProblem,
)
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.storage import delta_index
from talaria_storage.storage.codecs import NoneCodec
from talaria_storage.storage.frame import encode as encode_frame
from talaria_storage.storage.reductions import StoredReduction
from talaria_storage.storage.store import Store

REFERENCE = SHA256Hash.compute(b"MKTAYIAKQRQISFVKSHFSRQ")
OTHER_REFERENCE = SHA256Hash.compute(b"MVLSPADKTNVKAAWGKVGAHAGEY")

FASTA = (
    b">sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OX=9606\n"
    b"MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADAL\n"
    b">sp|P01942|HBA_MOUSE Hemoglobin subunit alpha OX=10090\n"
    b"MVLSGEDKSNIKAAWGKIGGHGAEYGAEALERMFASFPTTKTYFPHFDVSHGSAQVKGHGKKVADAL\n"
)


def delta(child: str, reference: SHA256Hash = REFERENCE, **extra: object) -> DeltaRecord:
    """A delta record for a child sequence named and hashed after ``child`` (its ops are opaque here)."""
    return DeltaRecord(child, SHA256Hash.compute(child.encode()), reference, b"ops:" + child.encode(), **extra)  # type: ignore[arg-type]


def manifest(
    store: Store,
    chunks: tuple[SHA256Hash, ...],
    *,
    database: str = "db",
    profile: str = "90",
    source: SHA256Hash | None = None,
    **extra: object,
) -> ReductionManifest:
    """A reduction manifest over ``chunks``, reducing ``source`` (default: a stand-in version manifest)."""
    if source is None:
        source = store.manifests.store_chunk(b"a stand-in version manifest")
    extra.setdefault("parameters", {"identity": 0.9})
    return ReductionManifest(database, profile, source, "v1", delta_chunks=chunks, **extra)  # type: ignore[arg-type]


def keys(store: Store) -> dict[str, bytes]:
    """Every object of the store, key -> bytes (to show that a refused call wrote nothing)."""
    return store.backend.get_many(info.key for info in store.backend.list(""))


def import_version(store: Store, folder: Path, version: str = "v1") -> SHA256Hash:
    path = folder / f"sample-{version}.fasta"
    path.write_bytes(FASTA)
    return open_database(store, "db").import_files([path], version=version).manifest


class ReductionStorageConformance:
    """Every ReductionStorage implementation must pass these."""

    # -- delta chunks ---------------------------------------------------------------------------

    def test_a_delta_chunk_reads_back_equal_with_every_field(self, reduction_storage: Store) -> None:
        chunk = DeltaChunk(REFERENCE, (
            delta("child-1", taxon_id=9606, identity=0.97),
            delta("child-2", taxon_id=-1),
            DeltaRecord("Ünïcode id", SHA256Hash.compute(b"x"), REFERENCE, bytes(range(256))),
            DeltaRecord("", SHA256Hash.compute(b""), REFERENCE, b""),
        ))
        h = reduction_storage.store_delta_chunk(chunk)
        assert reduction_storage.get_delta_chunk(h) == chunk

    def test_the_same_delta_chunk_is_stored_once_under_the_same_hash(self, reduction_storage: Store) -> None:
        chunk = DeltaChunk(REFERENCE, (delta("a"), delta("b")))
        first = reduction_storage.store_delta_chunk(chunk)
        assert reduction_storage.store_delta_chunk(chunk) == first
        assert [info.hash for info in reduction_storage.enumerate_chunks()] == [first]

    def test_a_delta_chunk_is_an_ordinary_verified_chunk(self, reduction_storage: Store) -> None:
        h = reduction_storage.store_delta_chunk(DeltaChunk(REFERENCE, (delta("a"),)))
        assert reduction_storage.has_chunk(h)
        assert reduction_storage.verify_all() == []

    def test_getting_a_missing_delta_chunk_raises_chunk_not_found(self, reduction_storage: Store) -> None:
        with pytest.raises(ChunkNotFound):
            reduction_storage.get_delta_chunk(SHA256Hash.compute(b"never stored"))

    def test_getting_a_plain_chunk_as_a_delta_chunk_is_a_one_line_error(self, reduction_storage: Store) -> None:
        h = reduction_storage.store_chunk(b"just bytes, not deltas")
        with pytest.raises(StorageError, match="is not a delta chunk") as info:
            reduction_storage.get_delta_chunk(h)
        assert "\n" not in str(info.value)

    def test_a_truncated_delta_chunk_is_reported_as_damaged(self, reduction_storage: Store) -> None:
        encoded = b"TDLT\x01" + REFERENCE.digest + (1).to_bytes(4, "little") + b"\x00" * 10
        h = reduction_storage.store_chunk(encoded)
        with pytest.raises(StorageError, match="damaged delta chunk"):
            reduction_storage.get_delta_chunk(h)

    def test_a_delta_against_another_reference_is_refused_and_nothing_is_written(
        self, reduction_storage: Store
    ) -> None:
        before = keys(reduction_storage)
        with pytest.raises(StorageError, match="holds the deltas of one reference"):
            reduction_storage.store_delta_chunk(DeltaChunk(REFERENCE, (delta("a"), delta("b", OTHER_REFERENCE))))
        assert keys(reduction_storage) == before

    def test_a_delta_chunk_no_profile_lists_is_not_found_by_child(self, reduction_storage: Store) -> None:
        reduction_storage.store_delta_chunk(DeltaChunk(REFERENCE, (delta("a"),)))
        assert reduction_storage.find_delta_for_child(delta("a").child_hash) is None

    # -- profiles -------------------------------------------------------------------------------

    def test_a_stored_manifest_reads_back_equal(self, reduction_storage: Store) -> None:
        h = reduction_storage.store_delta_chunk(DeltaChunk(REFERENCE, (delta("a"),)))
        m = manifest(
            reduction_storage, (h,), objects=(reduction_storage.store_chunk(b"member table"),),
            reference_chunks=(reduction_storage.store_chunk(b">ref\nMKT\n"),),
            statistics={"references": 1, "members": 1}, tool_version="talaria-storage 0.1",
        )
        reduction_storage.store_reduction_manifest(m)
        assert reduction_storage.get_reduction_by_profile("db", "90") == m

    def test_profiles_are_listed_sorted_and_per_database(self, reduction_storage: Store) -> None:
        for database, profile in [("db", "90"), ("db", "50"), ("other", "90")]:
            reduction_storage.store_reduction_manifest(manifest(reduction_storage, (), database=database, profile=profile))
        assert reduction_storage.list_reduction_profiles("db") == ["50", "90"]
        assert reduction_storage.list_reduction_profiles("other") == ["90"]
        assert reduction_storage.list_reduction_profiles("none") == []

    def test_the_profile_ref_is_under_reductions_database_profile(self, reduction_storage: Store) -> None:
        h = reduction_storage.store_reduction_manifest(manifest(reduction_storage, ()))
        assert reduction_storage.refs.get("reductions/db/90") == h
        assert reduction_storage.manifests.has_chunk(h)

    def test_the_manifest_hash_does_not_depend_on_parameter_order(self, reduction_storage: Store) -> None:
        source = reduction_storage.manifests.store_chunk(b"a stand-in version manifest")
        first = reduction_storage.store_reduction_manifest(
            ReductionManifest("db", "90", source, "v1", parameters={"identity": 0.9, "coverage": 0.8})
        )
        reduction_storage.delete_reduction_profile("db", "90")
        second = reduction_storage.store_reduction_manifest(
            ReductionManifest("db", "90", source, "v1", parameters={"coverage": 0.8, "identity": 0.9})
        )
        assert first == second

    def test_publishing_the_same_reduction_again_writes_nothing_and_returns_its_hash(
        self, reduction_storage: Store
    ) -> None:
        m = manifest(reduction_storage, (reduction_storage.store_delta_chunk(DeltaChunk(REFERENCE, (delta("a"),))),))
        first = reduction_storage.store_reduction_manifest(m)
        before = keys(reduction_storage)
        assert reduction_storage.store_reduction_manifest(m) == first
        assert keys(reduction_storage) == before

    def test_a_deleted_and_republished_reduction_has_the_same_hash(self, reduction_storage: Store) -> None:
        m = manifest(reduction_storage, ())
        first = reduction_storage.store_reduction_manifest(m)
        assert reduction_storage.delete_reduction_profile("db", "90")
        assert reduction_storage.store_reduction_manifest(m) == first

    def test_replacing_a_profile_moves_it_from_the_expected_hash(self, reduction_storage: Store) -> None:
        first = reduction_storage.store_reduction_manifest(manifest(reduction_storage, ()))
        newer = manifest(reduction_storage, (), statistics={"run": 2})
        second = reduction_storage.store_reduction_manifest(newer, first)
        assert reduction_storage.get_reduction_by_profile("db", "90") == newer
        assert reduction_storage.reductions.load(second).previous == first

    def test_replacing_a_profile_without_saying_what_it_replaces_is_a_conflict(
        self, reduction_storage: Store
    ) -> None:
        first = reduction_storage.store_reduction_manifest(manifest(reduction_storage, ()))
        before = keys(reduction_storage)
        with pytest.raises(RefConflict, match="reductions/db/90") as info:
            reduction_storage.store_reduction_manifest(manifest(reduction_storage, (), statistics={"run": 2}))
        assert "\n" not in str(info.value)
        assert reduction_storage.refs.get("reductions/db/90") == first
        assert keys(reduction_storage) == before

    def test_a_stale_expected_hash_is_a_conflict_that_changes_nothing(self, reduction_storage: Store) -> None:
        first = reduction_storage.store_reduction_manifest(manifest(reduction_storage, ()))
        second = reduction_storage.store_reduction_manifest(manifest(reduction_storage, (), statistics={"run": 2}), first)
        with pytest.raises(RefConflict):
            reduction_storage.store_reduction_manifest(manifest(reduction_storage, (), statistics={"run": 3}), first)
        assert reduction_storage.refs.get("reductions/db/90") == second

    def test_force_replaces_whatever_the_profile_names(self, reduction_storage: Store) -> None:
        reduction_storage.store_reduction_manifest(manifest(reduction_storage, ()))
        forced = manifest(reduction_storage, (), statistics={"forced": True})
        reduction_storage.store_reduction_manifest(forced, force=True)
        assert reduction_storage.get_reduction_by_profile("db", "90") == forced

    def test_of_concurrent_first_publishers_exactly_one_wins(self, reduction_storage: Store) -> None:
        source = reduction_storage.manifests.store_chunk(b"a stand-in version manifest")
        candidates = [manifest(reduction_storage, (), source=source, statistics={"writer": i}) for i in range(4)]
        barrier = threading.Barrier(len(candidates))

        def publish(m: ReductionManifest) -> SHA256Hash | RefConflict:
            barrier.wait()
            try:
                return reduction_storage.store_reduction_manifest(m)
            except RefConflict as exc:
                return exc

        with ThreadPoolExecutor(len(candidates)) as pool:
            outcomes = list(pool.map(publish, candidates))
        winners = [o for o in outcomes if isinstance(o, SHA256Hash)]
        assert len(winners) == 1
        assert reduction_storage.refs.get("reductions/db/90") == winners[0]

    def test_a_manifest_listing_a_missing_delta_chunk_is_refused_and_nothing_is_written(
        self, reduction_storage: Store
    ) -> None:
        m = manifest(reduction_storage, (SHA256Hash.compute(b"a delta chunk never stored"),))
        before = keys(reduction_storage)
        with pytest.raises(StorageError, match="missing.*delta chunk") as info:
            reduction_storage.store_reduction_manifest(m)
        assert "\n" not in str(info.value)
        assert keys(reduction_storage) == before

    def test_a_manifest_of_a_missing_version_is_refused(self, reduction_storage: Store) -> None:
        m = manifest(reduction_storage, (), source=SHA256Hash.compute(b"no such version manifest"))
        with pytest.raises(StorageError, match="source version 'v1'.*import or pull"):
            reduction_storage.store_reduction_manifest(m)
        assert reduction_storage.list_reduction_profiles("db") == []

    def test_parameters_that_are_not_json_are_refused(self, reduction_storage: Store) -> None:
        m = manifest(reduction_storage, (), parameters={"when": object()})
        with pytest.raises(StorageError, match="JSON values"):
            reduction_storage.store_reduction_manifest(m)
        assert reduction_storage.list_reduction_profiles("db") == []

    def test_an_unknown_profile_reads_as_none_and_deletes_as_false(self, reduction_storage: Store) -> None:
        assert reduction_storage.get_reduction_by_profile("db", "missing") is None
        assert reduction_storage.delete_reduction_profile("db", "missing") is False

    def test_requiring_an_unknown_profile_is_a_one_line_error_naming_the_known_ones(
        self, reduction_storage: Store
    ) -> None:
        reduction_storage.store_reduction_manifest(manifest(reduction_storage, ()))
        with pytest.raises(ProfileNotFound, match=r"no reduction profile '50'.*profiles: 90") as info:
            reduction_storage.reductions.require("db", "50")
        assert "\n" not in str(info.value)

    def test_a_profile_name_that_is_not_a_key_segment_is_refused(self, reduction_storage: Store) -> None:
        with pytest.raises(InvalidKey):
            reduction_storage.store_reduction_manifest(manifest(reduction_storage, (), profile="../90"))
        with pytest.raises(InvalidKey):
            reduction_storage.get_reduction_by_profile("db", "a/b")

    def test_a_deleted_profile_is_gone_from_list_get_and_lookups(self, reduction_storage: Store) -> None:
        h = reduction_storage.store_delta_chunk(DeltaChunk(REFERENCE, (delta("a"),)))
        reduction_storage.store_reduction_manifest(manifest(reduction_storage, (h,)))
        assert reduction_storage.delete_reduction_profile("db", "90") is True
        assert reduction_storage.list_reduction_profiles("db") == []
        assert reduction_storage.get_reduction_by_profile("db", "90") is None
        assert reduction_storage.find_delta_for_child(delta("a").child_hash) is None

    def test_a_damaged_stored_reduction_is_never_read_as_a_manifest(self, reduction_storage: Store) -> None:
        h = reduction_storage.store_reduction_manifest(manifest(reduction_storage, ()))
        reduction_storage.backend.put(reduction_storage.manifests.key_for(h), encode_frame(b"{}", NoneCodec()))
        fresh = Store(reduction_storage.backend)  # no cached copy
        with pytest.raises(StorageError):
            fresh.get_reduction_by_profile("db", "90")

    # -- the delta index ------------------------------------------------------------------------

    def test_every_child_is_found_in_its_delta_chunk(self, reduction_storage: Store) -> None:
        first = reduction_storage.store_delta_chunk(DeltaChunk(REFERENCE, (delta("a"), delta("b"))))
        second = reduction_storage.store_delta_chunk(DeltaChunk(OTHER_REFERENCE, (delta("c", OTHER_REFERENCE),)))
        reduction_storage.store_reduction_manifest(manifest(reduction_storage, (first, second)))
        assert reduction_storage.find_delta_for_child(delta("a").child_hash) == first
        assert reduction_storage.find_delta_for_child(delta("b").child_hash) == first
        assert reduction_storage.find_delta_for_child(delta("c").child_hash) == second
        assert reduction_storage.find_delta_for_child(SHA256Hash.compute(b"not a member")) is None

    def test_every_delta_chunk_of_a_reference_is_found_sorted(self, reduction_storage: Store) -> None:
        chunks = [reduction_storage.store_delta_chunk(DeltaChunk(REFERENCE, (delta(f"m{i}"),))) for i in range(3)]
        other = reduction_storage.store_delta_chunk(DeltaChunk(OTHER_REFERENCE, (delta("o", OTHER_REFERENCE),)))
        reduction_storage.store_reduction_manifest(manifest(reduction_storage, (*chunks, other)))
        assert reduction_storage.get_deltas_for_reference(REFERENCE) == sorted(chunks)
        assert reduction_storage.get_deltas_for_reference(OTHER_REFERENCE) == [other]
        assert reduction_storage.get_deltas_for_reference(SHA256Hash.compute(b"not a reference")) == []

    def test_lookups_cover_every_profile_of_every_database(self, reduction_storage: Store) -> None:
        mine = reduction_storage.store_delta_chunk(DeltaChunk(REFERENCE, (delta("a"),)))
        theirs = reduction_storage.store_delta_chunk(DeltaChunk(REFERENCE, (delta("b"),)))
        reduction_storage.store_reduction_manifest(manifest(reduction_storage, (mine,)))
        reduction_storage.store_reduction_manifest(manifest(reduction_storage, (theirs,), database="other"))
        assert reduction_storage.find_delta_for_child(delta("b").child_hash) == theirs
        assert reduction_storage.get_deltas_for_reference(REFERENCE) == sorted([mine, theirs])

    def test_a_delta_chunk_written_by_another_process_is_indexed_from_its_bytes(
        self, reduction_storage: Store
    ) -> None:
        h = Store(reduction_storage.backend).store_delta_chunk(DeltaChunk(REFERENCE, (delta("a"),)))
        reduction_storage.store_reduction_manifest(manifest(reduction_storage, (h,)))
        assert reduction_storage.find_delta_for_child(delta("a").child_hash) == h

    def test_a_large_index_is_split_into_partitions_and_finds_every_child(
        self, reduction_storage: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(delta_index, "PARTITION_ENTRIES", 8)
        chunks = {
            reduction_storage.store_delta_chunk(DeltaChunk(REFERENCE, tuple(delta(f"c{i}-{j}") for j in range(10)))): i
            for i in range(12)
        }
        reduction_storage.store_reduction_manifest(manifest(reduction_storage, tuple(chunks)))
        stored = reduction_storage.reductions.stored("db", "90")
        assert stored is not None and len(reduction_storage.reductions.index(stored).children.partitions) > 1
        lookup = Store(reduction_storage.backend)  # reads the index from the backend, not from a cache
        for h, i in chunks.items():
            for j in range(10):
                assert lookup.find_delta_for_child(delta(f"c{i}-{j}").child_hash) == h

    # -- gc -------------------------------------------------------------------------------------

    def _profile_of_a_real_version(self, store: Store, folder: Path) -> tuple[StoredReduction, SHA256Hash]:
        source = import_version(store, folder)
        h = store.store_delta_chunk(DeltaChunk(REFERENCE, (delta("a"),)))
        m = manifest(store, (h,), source=source, objects=(store.store_chunk(b"member table"),))
        published = store.store_reduction_manifest(m)
        return store.reductions.load(published), h

    def test_gc_keeps_every_object_a_profile_needs(self, reduction_storage: Store, tmp_path: Path) -> None:
        stored, _ = self._profile_of_a_real_version(reduction_storage, tmp_path)
        needed = set(reduction_storage.reductions.objects(stored))
        collect_garbage(reduction_storage, grace_seconds=0)
        assert reduction_storage.present(needed) == needed
        assert reduction_storage.manifests.has_chunk(stored.hash)

    def test_gc_keeps_the_reduced_version_after_its_ref_is_deleted(
        self, reduction_storage: Store, tmp_path: Path
    ) -> None:
        stored, _ = self._profile_of_a_real_version(reduction_storage, tmp_path)
        import_version(reduction_storage, tmp_path, "v2")  # HEAD moves on, v1 is named only by its ref
        reduction_storage.refs.delete("refs/db/v1")
        collect_garbage(reduction_storage, grace_seconds=0)
        assert stored.manifest.source_manifest is not None
        assert reduction_storage.manifests.has_chunk(stored.manifest.source_manifest)
        assert verify_store(reduction_storage) == []

    def test_gc_collects_the_objects_of_a_deleted_profile(self, reduction_storage: Store, tmp_path: Path) -> None:
        stored, delta_hash = self._profile_of_a_real_version(reduction_storage, tmp_path)
        reduction_storage.delete_reduction_profile("db", "90")
        collect_garbage(reduction_storage, grace_seconds=0)
        assert not reduction_storage.has_chunk(delta_hash)
        assert not reduction_storage.has_chunk(stored.delta_index)
        assert not reduction_storage.manifests.has_chunk(stored.hash)

    def test_gc_collects_a_delta_chunk_no_profile_lists(self, reduction_storage: Store, tmp_path: Path) -> None:
        self._profile_of_a_real_version(reduction_storage, tmp_path)
        orphan = reduction_storage.store_delta_chunk(DeltaChunk(OTHER_REFERENCE, (delta("o", OTHER_REFERENCE),)))
        collect_garbage(reduction_storage, grace_seconds=0)
        assert not reduction_storage.has_chunk(orphan)

    def test_gc_stops_before_deleting_when_a_profile_is_damaged(self, reduction_storage: Store, tmp_path: Path) -> None:
        stored, _ = self._profile_of_a_real_version(reduction_storage, tmp_path)
        orphan = reduction_storage.store_chunk(b"collectable")
        reduction_storage.backend.delete(reduction_storage.key_for(stored.delta_index))
        with pytest.raises(StorageError, match="delta index"):
            collect_garbage(Store(reduction_storage.backend), grace_seconds=0)
        assert reduction_storage.has_chunk(orphan)

    # -- verify ---------------------------------------------------------------------------------

    def test_verify_finds_nothing_wrong_with_a_good_profile(self, reduction_storage: Store, tmp_path: Path) -> None:
        self._profile_of_a_real_version(reduction_storage, tmp_path)
        assert verify_store(reduction_storage) == []

    def test_verify_reports_a_missing_delta_chunk_naming_the_profile(
        self, reduction_storage: Store, tmp_path: Path
    ) -> None:
        _, delta_hash = self._profile_of_a_real_version(reduction_storage, tmp_path)
        reduction_storage.backend.delete(reduction_storage.key_for(delta_hash))
        (problem,) = verify_store(reduction_storage)
        assert problem.problem is VerificationProblem.MISSING and problem.hash == delta_hash
        assert "reductions/db/90" in problem.message and "delta chunk" in problem.message

    def test_verify_reports_a_corrupt_delta_chunk(self, reduction_storage: Store, tmp_path: Path) -> None:
        _, delta_hash = self._profile_of_a_real_version(reduction_storage, tmp_path)
        key = reduction_storage.key_for(delta_hash)
        reduction_storage.backend.put(key, encode_frame(b"not the delta chunk", NoneCodec()))
        problems = verify_store(reduction_storage)
        assert [(p.key, p.problem) for p in problems] == [(key, VerificationProblem.MISMATCH)]

    def test_verify_reports_a_missing_reduced_version(self, reduction_storage: Store, tmp_path: Path) -> None:
        stored, _ = self._profile_of_a_real_version(reduction_storage, tmp_path)
        source = stored.manifest.source_manifest
        assert source is not None
        reduction_storage.backend.delete(reduction_storage.manifests.key_for(source))
        missing = [p for p in verify_store(reduction_storage) if p.hash == source]
        assert missing and all(p.problem is VerificationProblem.MISSING for p in missing)

    def test_verify_hands_every_delta_chunk_to_the_delta_check(self, reduction_storage: Store, tmp_path: Path) -> None:
        _, delta_hash = self._profile_of_a_real_version(reduction_storage, tmp_path)
        seen: list[tuple[str, SHA256Hash, int]] = []

        def check(profile: StoredReduction, h: SHA256Hash, chunk: DeltaChunk) -> list[VerificationError]:
            seen.append((profile.key, h, len(chunk.deltas)))
            return [VerificationError(reduction_storage.key_for(h), VerificationProblem.MISMATCH, "decodes wrong", h)]

        problems = verify_store(reduction_storage, delta_check=check)
        assert seen == [(reduction_key("db", "90"), delta_hash, 1)]
        assert [p.message for p in problems] == ["decodes wrong"]

