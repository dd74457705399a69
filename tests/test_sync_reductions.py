"""Sync carries reduction profiles: their stored reduction, delta chunks, index and reduced version."""

from __future__ import annotations

from pathlib import Path

import pytest
from sync_data import dangling, export, fasta, import_version
from talaria_storage.backends.faults import FaultInjectingBackend, RequestCountingBackend
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.core.errors import BackendError, RefConflict
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.types import DeltaChunk, ReductionManifest
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.backend import Backend
from talaria_storage.storage.retry import RetryPolicy
from talaria_storage.storage.store import Store
from talaria_storage.sync.protocol import pull, push
from talaria_storage.testing.reduction_storage_suite import REFERENCE, delta

V1 = fasta(60, seed=41)
V2 = V1 + fasta(10, seed=42, first=500)


def fresh(backend: Backend) -> Store:
    store = Store(backend)
    store.initialise()
    return store


def reduce(store: Store, version: str = "v1", profile: str = "90", run: int = 1, expected: SHA256Hash | None = None,
           *, force: bool = False) -> SHA256Hash:
    """Publish a stand-in reduction of ``db@version``: real objects and refs, opaque deltas."""
    source = store.refs.get(f"refs/db/{version}")
    chunks = tuple(
        store.store_delta_chunk(DeltaChunk(REFERENCE, (delta(f"run{run}-member{i}"),))) for i in range(3)
    )
    m = ReductionManifest("db", profile, source, version, delta_chunks=chunks, statistics={"run": run})
    return store.store_reduction_manifest(m, expected, force=force)


@pytest.fixture
def local(tmp_path: Path) -> Store:
    store = fresh(FilesystemBackend(tmp_path / "local", fsync=False))
    import_version(store, "db", V1, "v1", tmp_path)
    return store


@pytest.fixture
def remote() -> Store:
    return fresh(MemoryBackend("remote"))


def test_a_push_carries_a_profile_with_every_object_it_needs(local: Store, remote: Store) -> None:
    h = reduce(local)
    result = push(local, remote)
    assert "reductions/db/90" in result.refs_updated
    assert remote.refs.get("reductions/db/90") == h
    assert remote.get_reduction_by_profile("db", "90") == local.get_reduction_by_profile("db", "90")
    assert remote.find_delta_for_child(delta("run1-member0").child_hash) is not None
    assert verify_store(remote) == [] and dangling(remote) == []


def test_a_profile_reduced_after_the_database_was_pushed_is_pushed_next_time(local: Store, remote: Store) -> None:
    push(local, remote)
    h = reduce(local)
    assert push(local, remote).refs_updated == ("reductions/db/90",)
    assert remote.refs.get("reductions/db/90") == h


def test_a_pull_finds_a_profile_reduced_at_the_remote_on_a_version_both_hold(local: Store, remote: Store) -> None:
    push(local, remote)
    h = reduce(remote)
    pull(local, remote)
    assert local.refs.get("reductions/db/90") == h
    assert verify_store(local) == []


def test_an_updated_profile_fast_forwards_at_the_destination(local: Store, remote: Store) -> None:
    first = reduce(local)
    push(local, remote)
    second = reduce(local, run=2, expected=first)
    push(local, remote)
    assert remote.refs.get("reductions/db/90") == second


def test_a_profile_that_diverged_at_the_destination_is_a_conflict_that_changes_nothing(
    local: Store, remote: Store
) -> None:
    push(local, remote)
    theirs = reduce(remote, run=7)
    reduce(local, run=1)
    with pytest.raises(RefConflict, match="reductions/db/90.*--force") as info:
        push(local, remote)
    assert "\n" not in str(info.value)
    assert remote.refs.get("reductions/db/90") == theirs


def test_force_overwrites_a_diverged_profile(local: Store, remote: Store) -> None:
    push(local, remote)
    reduce(remote, run=7)
    mine = reduce(local, run=1)
    push(local, remote, force=True)
    assert remote.refs.get("reductions/db/90") == mine


def test_a_profile_of_a_version_no_ref_names_carries_that_version(local: Store, remote: Store, tmp_path: Path) -> None:
    reduce(local, "v1")
    import_version(local, "db", V2, "v2", tmp_path)
    local.refs.delete("refs/db/v1")  # v1 lives on only through the profile
    reduction = local.get_reduction_by_profile("db", "90")
    assert reduction is not None and reduction.source_manifest is not None
    v1 = reduction.source_manifest
    push(local, remote)
    assert remote.refs.get("refs/db/v1") is None
    assert remote.manifests.has_chunk(v1)
    assert verify_store(remote) == []
    collect_garbage(remote, grace_seconds=0)
    assert verify_store(remote) == [] and export(remote, "db") == V2


def test_a_named_version_carries_only_the_profiles_of_that_version(
    local: Store, remote: Store, tmp_path: Path
) -> None:
    reduce(local, "v1", profile="old")
    import_version(local, "db", V2, "v2", tmp_path)
    reduce(local, "v2", profile="new")
    push(local, remote, ["db@v1"])
    assert remote.list_reduction_profiles("db") == ["old"]


def test_an_up_to_date_push_with_a_profile_lists_nothing_on_the_remote(local: Store, remote: Store) -> None:
    reduce(local)
    push(local, remote)
    counter = RequestCountingBackend(remote.backend)
    assert push(local, Store(counter)).refs_updated == ()
    assert counter.listings == 0 and counter.total <= 3, counter.counts


def test_a_push_cut_off_midway_leaves_no_profile_and_a_rerun_completes_it(local: Store, remote: Store) -> None:
    h = reduce(local)
    link = FaultInjectingBackend(remote.backend, cut_after=5, operations={"put_if_absent"})
    with pytest.raises(BackendError):
        push(local, Store(link), retry=RetryPolicy(attempts=1))
    assert remote.refs.get("reductions/db/90") is None
    push(local, remote)
    assert remote.refs.get("reductions/db/90") == h
    assert verify_store(remote) == []


def test_gc_at_the_destination_keeps_what_a_carried_profile_needs(local: Store, remote: Store) -> None:
    reduce(local)
    push(local, remote)
    collect_garbage(remote, grace_seconds=0)
    assert verify_store(remote) == []
    chunks, _ = VersionCatalog(remote).reachable()
    assert remote.present(chunks) == chunks


@pytest.mark.emulator
@pytest.mark.parametrize("service", ["s3", "gcs", "azure"])
def test_a_profile_pushed_to_the_cloud_and_pulled_back_is_the_same(
    local: Store, service: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    h = reduce(local)
    cloud = fresh(request.getfixturevalue(f"{service}_backend"))
    push(local, cloud)
    clone = fresh(FilesystemBackend(tmp_path / "clone", fsync=False))
    pull(clone, cloud, ["db"])
    assert clone.refs.get("reductions/db/90") == h
    assert clone.get_reduction_by_profile("db", "90") == local.get_reduction_by_profile("db", "90")
    assert verify_store(clone) == []
