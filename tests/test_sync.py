"""The sync protocol (talaria_storage.sync.protocol) between filesystem and memory stores."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sync_data import dangling, export, fasta, import_version, snapshot
from talaria_storage.backends.faults import FaultInjectingBackend, RequestCountingBackend
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.core.errors import BackendError, RefConflict, StorageError, VersionNotFound
from talaria_storage.core.keys import ref_key
from talaria_storage.core.types import OperationType, SyncResult
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.storage.backend import Backend
from talaria_storage.storage.retry import RetryPolicy
from talaria_storage.storage.store import Store
from talaria_storage.sync.protocol import Relation, SyncPlan, plan, pull, push, status
from talaria_storage.sync.remote_link import RemoteLink

V1 = fasta(150, seed=1)
V2 = fasta(150, seed=1) + fasta(20, seed=2, first=1000)  # v1 plus 20 new records
V3 = fasta(120, seed=1) + fasta(20, seed=2, first=1000)  # 30 records dropped


def no_wait() -> RetryPolicy:
    """The default policy without the waiting, so fault tests take no wall time."""
    return RetryPolicy(sleep=lambda _: None)


@pytest.fixture(params=["filesystem", "memory"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_store(kind: str, tmp_path: Path) -> Callable[[str], Store]:
    """Make a fresh, initialised store of the parametrised kind."""
    made: list[Store] = []

    def make(name: str) -> Store:
        # fsync off: durability across power loss is not under test here (a killed process keeps
        # what it wrote in the page cache), and it would make these tests disk-bound.
        if kind == "filesystem":
            backend: Backend = FilesystemBackend(tmp_path / name, fsync=False)
        else:
            backend = MemoryBackend(name)
        store = Store(backend)
        store.initialise()
        made.append(store)
        return store

    yield make  # type: ignore[misc]
    for store in made:
        store.close()


@pytest.fixture
def local(new_store: Callable[[str], Store], tmp_path: Path) -> Store:
    """A store holding database ``db`` with versions v1 and v2 (HEAD)."""
    store = new_store("local")
    import_version(store, "db", V1, "v1", tmp_path)
    import_version(store, "db", V2, "v2", tmp_path)
    return store


@pytest.fixture
def remote(new_store: Callable[[str], Store]) -> Store:
    return new_store("remote")


# -- push and pull -------------------------------------------------------------------------------


def test_push_sends_every_version_and_the_remote_exports_them_byte_for_byte(local: Store, remote: Store) -> None:
    result = push(local, remote)
    assert result.refs_updated == ("refs/db/v1", "refs/db/v2", "refs/db/HEAD")
    assert remote.refs.get(ref_key("db", "HEAD")) == local.refs.get(ref_key("db", "HEAD"))
    assert export(remote, "db") == V2
    assert export(remote, "db", "v1") == V1
    assert remote.verify_all() == []


def test_pull_into_an_empty_store_verifies_and_exports_byte_for_byte(
    local: Store, new_store: Callable[[str], Store]
) -> None:
    clone = new_store("clone")
    pull(clone, local)
    assert clone.verify_all() == []
    assert export(clone, "db") == V2
    assert export(clone, "db", "v1") == V1
    assert dangling(clone) == []


def test_a_second_push_copies_only_what_the_new_version_added(local: Store, remote: Store, tmp_path: Path) -> None:
    push(local, remote)
    before = set(snapshot(remote))
    import_version(local, "db", V3, "v3", tmp_path)
    result = push(local, remote)
    added = set(snapshot(remote)) - before
    assert result.objects_copied == len([k for k in added if not k.startswith("refs/")])
    assert result.objects_copied < len([k for k in before if k.startswith("chunks/")])
    assert result.refs_updated == ("refs/db/v3", "refs/db/HEAD")


def test_copied_objects_are_the_source_frames_unchanged(local: Store, remote: Store) -> None:
    push(local, remote)
    theirs = snapshot(remote)
    mine = snapshot(local)
    objects = ("chunks/", "manifests/")
    assert {k: v for k, v in theirs.items() if k.startswith(objects)} == {
        k: v for k, v in mine.items() if k.startswith(objects)
    }


def test_pull_without_names_updates_the_databases_the_local_store_has(
    local: Store, remote: Store, new_store: Callable[[str], Store], tmp_path: Path
) -> None:
    push(local, remote)
    import_version(local, "other", fasta(20, seed=9), "o1", tmp_path)
    push(local, remote, ["other"])
    clone = new_store("clone")
    pull(clone, remote, ["db@v1"])
    pull(clone, remote)  # "db" only: clone has no "other"
    assert clone.refs.get(ref_key("db", "HEAD")) == remote.refs.get(ref_key("db", "HEAD"))
    assert clone.refs.get(ref_key("other", "HEAD")) is None


def test_pushing_a_named_version_to_an_empty_remote_makes_it_head(local: Store, remote: Store) -> None:
    result = push(local, remote, ["db@v1"])
    assert result.refs_updated == ("refs/db/v1", "refs/db/HEAD")
    assert export(remote, "db") == V1
    assert remote.refs.get(ref_key("db", "v2")) is None


def test_a_missing_database_is_an_error_naming_the_source(local: Store, remote: Store) -> None:
    with pytest.raises(VersionNotFound, match=f"'nope' does not exist in {local.location}"):
        push(local, remote, ["nope"])


def test_the_sync_state_is_completed_when_the_sync_ends(local: Store, remote: Store) -> None:
    push(local, remote)
    assert local.states.list() == []
    assert remote.states.list() == []


# -- the request budget --------------------------------------------------------------------------


def counted(store: Store) -> tuple[Store, RequestCountingBackend]:
    """The same store seen through a request counter."""
    counter = RequestCountingBackend(store.backend)
    return Store(counter), counter


def test_an_up_to_date_push_costs_at_most_three_requests_on_the_remote_and_no_listing(
    local: Store, remote: Store
) -> None:
    push(local, remote)
    seen, counter = counted(remote)
    seen.require_initialised()  # opening the remote, as the CLI does
    result = push(local, seen)
    assert result.refs_updated == () and result.objects_copied == 0
    assert counter.total <= 3, counter.counts
    assert counter.listings == 0


def test_an_up_to_date_push_of_a_named_version_costs_at_most_three_requests(local: Store, remote: Store) -> None:
    push(local, remote)
    seen, counter = counted(remote)
    seen.require_initialised()
    push(local, seen, ["db@v1"])
    assert counter.total <= 3, counter.counts
    assert counter.listings == 0


def test_an_up_to_date_pull_costs_at_most_three_requests_on_the_remote_and_lists_only_its_profiles(
    local: Store, new_store: Callable[[str], Store]
) -> None:
    """The one listing is of ``reductions/db/``: a profile reduced at the remote on a version both
    sides hold must be found, and profiles are refs (a few), never objects."""
    clone = new_store("clone")
    pull(clone, local)
    seen, counter = counted(local)
    seen.require_initialised()
    pull(clone, seen)
    assert counter.total <= 3, counter.counts
    assert counter.listings == 1


def test_the_remote_is_asked_only_about_candidates_in_batches(local: Store, remote: Store, tmp_path: Path) -> None:
    push(local, remote)
    import_version(local, "db", V3, "v3", tmp_path)
    seen, counter = counted(remote)
    push(local, seen)
    assert counter.listings == 0
    assert counter.counts.get("exists", 0) == 0
    assert counter.counts["exists_many"] == 2  # one batch of chunks, one of manifests


# -- conflicts -----------------------------------------------------------------------------------


@pytest.fixture
def diverged(local: Store, remote: Store, new_store: Callable[[str], Store], tmp_path: Path) -> Store:
    """``remote`` has v1 then another writer's v2b; ``local`` has v1 then v2."""
    other = new_store("other")
    pull(other, local, ["db@v1"])
    import_version(other, "db", fasta(50, seed=5), "v2b", tmp_path)
    push(other, remote)
    return other


def test_a_diverged_remote_refuses_the_push_naming_force_and_changes_nothing(
    local: Store, remote: Store, diverged: Store
) -> None:
    before = snapshot(remote)
    with pytest.raises(RefConflict, match="--force") as caught:
        push(local, remote)
    assert caught.value.ref == "refs/db/HEAD"
    assert snapshot(remote) == before


def test_force_overwrites_a_diverged_remote(local: Store, remote: Store, diverged: Store) -> None:
    result = push(local, remote, force=True)
    assert "refs/db/HEAD" in result.refs_updated
    assert export(remote, "db") == V2
    assert remote.refs.get(ref_key("db", "v2b")) is not None  # other versions stay named
    assert remote.verify_all() == [] and dangling(remote) == []


def test_a_version_name_meaning_other_content_at_the_destination_is_a_conflict(
    local: Store, remote: Store, new_store: Callable[[str], Store], tmp_path: Path
) -> None:
    other = new_store("other")
    import_version(other, "db", fasta(10, seed=7), "v1", tmp_path)
    push(other, remote)
    before = snapshot(remote)
    with pytest.raises(RefConflict, match="--force") as caught:
        push(local, remote, ["db@v1"])
    assert caught.value.ref == "refs/db/v1"
    assert snapshot(remote) == before


def test_a_head_moved_during_the_sync_stops_it_and_the_other_writer_keeps_head(
    local: Store, remote: Store, new_store: Callable[[str], Store], tmp_path: Path
) -> None:
    intruder = new_store("intruder")
    import_version(intruder, "db", fasta(15, seed=11), "x1", tmp_path)

    class MoveHeadMeanwhile:
        def begin(self, database: str, objects: int, estimated_bytes: int) -> None:
            push(intruder, remote)  # another writer publishes while this sync copies

        def advance(self, database: str, objects: int, nbytes: int) -> None:
            return None

        def end(self, database: str, result: SyncResult) -> None:
            return None

    with pytest.raises(RefConflict, match="refs/db/HEAD.*--force"):
        push(local, remote, progress=MoveHeadMeanwhile())
    assert remote.refs.get(ref_key("db", "HEAD")) == intruder.refs.get(ref_key("db", "HEAD"))
    assert remote.refs.get(ref_key("db", "v2")) is None
    assert dangling(remote) == []


def test_a_plan_is_made_for_every_database_before_anything_moves(
    local: Store, remote: Store, diverged: Store, tmp_path: Path
) -> None:
    import_version(local, "aaa", fasta(10, seed=3), "a1", tmp_path)  # plans first, would sync fine
    with pytest.raises(RefConflict):
        push(local, remote)
    assert remote.refs.get(ref_key("aaa", "HEAD")) is None


def test_plan_lists_the_versions_to_send_oldest_first(local: Store, remote: Store) -> None:
    [p] = plan(local, remote, ["db"])
    assert isinstance(p, SyncPlan)
    assert p.versions == ("v1", "v2") and p.move_head and not p.up_to_date


# -- concurrency ---------------------------------------------------------------------------------


def test_concurrent_pushes_of_different_databases_to_one_remote_both_land(
    new_store: Callable[[str], Store], remote: Store, tmp_path: Path
) -> None:
    first, second = new_store("first"), new_store("second")
    shared = fasta(150, seed=21)  # the same records in both: the same chunks race to the remote
    import_version(first, "alpha", shared, "1", tmp_path)
    import_version(second, "beta", shared + fasta(20, seed=22, first=500), "1", tmp_path)
    errors: list[BaseException] = []

    def run(store: Store) -> None:
        try:
            push(store, remote, threads=4)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert export(remote, "alpha") == shared
    assert export(remote, "beta") == shared + fasta(20, seed=22, first=500)
    assert remote.verify_all() == []


# -- faults --------------------------------------------------------------------------------------


def corrupt_one_chunk(store: Store) -> str:
    """Flip the last byte of one stored chunk (a filesystem store); returns its key."""
    h = next(iter(store.chunk_hashes()))
    key = store.key_for(h)
    path = Path(store.location.removeprefix("file://")) / "chunks" / key[7:9] / key[7:]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    return key


def test_a_corrupt_source_object_is_refused_by_name_and_never_copied(tmp_path: Path) -> None:
    local = Store(FilesystemBackend(tmp_path / "local"))
    remote = Store(MemoryBackend("remote"))
    import_version(local, "db", V1, "v1", tmp_path)
    key = corrupt_one_chunk(local)
    with pytest.raises(StorageError, match=f"'{key}' in {local.location} is corrupt") as caught:
        push(local, remote)
    assert "not copied" in str(caught.value)
    assert not remote.backend.exists(key)
    assert remote.refs.get(ref_key("db", "HEAD")) is None


def test_a_remote_with_ten_percent_transient_faults_ends_with_the_same_objects(
    local: Store, remote: Store, new_store: Callable[[str], Store]
) -> None:
    clean = new_store("clean")
    push(local, clean)
    flaky = Store(
        FaultInjectingBackend(remote.backend, transient_rate=0.1, lost_response_rate=0.05, seed=7)
    )
    result = push(local, flaky, retry=no_wait())
    assert result.retried > 0
    assert snapshot(remote) == snapshot(clean)
    assert export(remote, "db") == V2


def test_a_flaky_remote_pull_verifies_and_exports_byte_for_byte(
    local: Store, new_store: Callable[[str], Store]
) -> None:
    flaky = Store(FaultInjectingBackend(local.backend, transient_rate=0.1, seed=3))
    clone = new_store("clone")
    pull(clone, flaky, ["db"], retry=no_wait())
    assert clone.verify_all() == []
    assert export(clone, "db") == V2


def test_a_permanent_failure_stops_at_once_with_the_fix_and_leaves_resumable_state(
    local: Store, remote: Store
) -> None:
    counting = RequestCountingBackend(remote.backend)
    broken = FaultInjectingBackend(counting, permanent_rate=0.2, seed=4, operations={"put_if_absent"})
    retry = no_wait()
    with pytest.raises(BackendError, match="check the credentials.*run it again to resume") as caught:
        push(local, Store(broken), retry=retry)
    assert not caught.value.retryable
    assert retry.retries == 0  # a permanent error is never retried
    [state] = local.states.list()
    assert state.operation is OperationType.SYNC_PUSH and state.database == "db"
    assert remote.refs.get(ref_key("db", "HEAD")) is None

    push(local, Store(counting))  # the link is fixed: the re-run resumes
    assert export(remote, "db") == V2
    assert local.states.list() == []
    writes = counting.writes_per_key
    assert all(n == 1 for k, n in writes.items() if k.startswith(("chunks/", "manifests/"))), writes


def test_a_sync_stopped_midway_resumes_without_copying_a_verified_object_twice(
    local: Store, remote: Store
) -> None:
    counting = RequestCountingBackend(remote.backend)
    link = FaultInjectingBackend(counting, cut_after=25, operations={"put_if_absent"})
    with pytest.raises(BackendError):
        push(local, Store(link), retry=RetryPolicy(attempts=1))
    assert dangling(remote) == []
    [state] = local.states.list()
    assert state.completed_chunks
    result = push(local, Store(counting))
    assert result.objects_skipped >= len(state.completed_chunks)
    assert all(n == 1 for k, n in counting.writes_per_key.items() if not k.startswith(("refs/", "state/")))
    assert export(remote, "db") == V2


def test_a_resumed_push_copies_again_what_a_gc_at_the_remote_collected_meanwhile(
    local: Store, remote: Store
) -> None:
    link = FaultInjectingBackend(remote.backend, cut_after=30, operations={"put_if_absent"})
    with pytest.raises(BackendError):
        push(local, Store(link), retry=RetryPolicy(attempts=1))
    assert collect_garbage(remote, grace_seconds=0).removed > 0  # the copies were unreferenced there
    push(local, remote)
    assert dangling(remote) == []
    assert export(remote, "db") == V2


# -- status --------------------------------------------------------------------------------------


def test_status_shows_the_versions_and_objects_the_remote_lacks(local: Store, remote: Store) -> None:
    push(local, remote, ["db@v1"])
    [s] = status(local, remote)
    assert s.relation is Relation.LOCAL_AHEAD
    assert s.missing_remote_versions == ("v2",) and s.missing_local_versions == ()
    assert s.missing_remote_objects > 0 and s.missing_local_objects == 0


def test_status_after_a_push_is_in_sync(local: Store, remote: Store) -> None:
    push(local, remote)
    [s] = status(local, remote)
    assert s.relation is Relation.IN_SYNC
    assert (s.missing_remote_objects, s.missing_local_objects) == (0, 0)


def test_status_shows_a_remote_ahead_and_a_diverged_remote(
    local: Store, remote: Store, new_store: Callable[[str], Store], diverged: Store
) -> None:
    [s] = status(local, remote)
    assert s.relation is Relation.DIVERGED
    assert s.missing_local_versions == ("v2b",) and s.missing_remote_versions == ("v2",)
    [s] = status(diverged, remote)
    assert s.relation is Relation.IN_SYNC
    behind = new_store("behind")
    pull(behind, remote, ["db@v1"])
    [s] = status(behind, remote)
    assert s.relation is Relation.REMOTE_AHEAD


def test_status_shows_databases_only_one_side_has(local: Store, remote: Store) -> None:
    [s] = status(local, remote)
    assert s.relation is Relation.LOCAL_ONLY
    [s] = status(remote, local)
    assert s.relation is Relation.REMOTE_ONLY


# -- RemoteStorage: a store and its remote ------------------------------------------------------


def test_a_store_syncs_and_reports_through_its_attached_remote(local: Store, remote: Store) -> None:
    link = RemoteLink(local).attach_remote(remote)
    assert link.get_remote_status().local_ahead == ("db",)
    link.sync()
    summary = link.get_remote_status()
    assert summary.in_sync == ("db",) and summary.missing_remote_objects == 0


def test_fetch_and_push_chunks_copy_only_what_the_other_side_lacks(
    local: Store, new_store: Callable[[str], Store]
) -> None:
    clone = new_store("clone")
    link = RemoteLink(clone).attach_remote(local)
    wanted = sorted(local.chunk_hashes())[:5]
    assert link.fetch_chunks(wanted) == 5
    assert link.fetch_chunks(wanted) == 0
    assert all(clone.get_chunk(h) == local.get_chunk(h) for h in wanted)
    extra = clone.store_chunk(b"only in the clone")
    assert link.push_chunks([extra, *wanted]) == 1
    assert local.get_chunk(extra) == b"only in the clone"


def test_a_store_without_a_remote_says_how_to_attach_one(local: Store) -> None:
    with pytest.raises(StorageError, match="attach_remote"):
        RemoteLink(local).sync()
