"""Processing state: resumable operations recorded in the store under state/, surviving process death."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from talaria_storage.backends.faults import RequestCountingBackend
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import STATE, validate_key
from talaria_storage.core.types import OperationType, SourceInfo
from talaria_storage.storage.backend import Backend
from talaria_storage.storage.processing import COMPACT_AFTER, ProcessingStates
from talaria_storage.storage.store import Store

MANIFEST = SHA256Hash.compute(b"manifest v1")
SOURCE = SourceInfo(database="uniprot", source="file:///srv/workstation", version="2024_01")
PUSH = OperationType.SYNC_PUSH


def h(i: int) -> SHA256Hash:
    return SHA256Hash.compute(f"object {i}".encode())


@pytest.fixture(params=["memory", "filesystem"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
    else:
        yield FilesystemBackend(tmp_path / "store")


@pytest.fixture
def states(backend: Backend) -> ProcessingStates:
    return ProcessingStates(backend)


def start(states: ProcessingStates, **changes: object) -> str:
    """Start (or resume) the default operation, with any argument changed; returns its id."""
    args: dict[str, object] = {
        "operation": PUSH,
        "source": SOURCE,
        "manifest_hash": MANIFEST,
        "manifest_version": "v1",
        "total_chunks": 10,
    }
    args.update(changes)
    operation = args.pop("operation")
    source = args.pop("source")
    return states.start(operation, source, **args).operation_id  # type: ignore[arg-type]


def state_keys(backend: Backend) -> set[str]:
    return {info.key for info in backend.list(STATE)}


def segment_keys(backend: Backend, op_id: str) -> list[str]:
    return sorted(k for k in state_keys(backend) if k.startswith(f"{STATE}{op_id}."))


def age(backend: Backend, key: str, seconds: float) -> None:
    """Pretend ``key`` was last written ``seconds`` ago."""
    when = time.time() - seconds
    if isinstance(backend, MemoryBackend):
        backend.set_modified(key, when)
    else:
        assert isinstance(backend, FilesystemBackend)
        os.utime(backend.root / key, (when, when))


# -- start and resume -------------------------------------------------------------------------------


def test_a_new_state_has_nothing_completed(states: ProcessingStates) -> None:
    state = states.start(PUSH, SOURCE, manifest_hash=MANIFEST, manifest_version="v1", total_chunks=10)
    assert state.completed_chunks == frozenset()
    assert (state.database, state.manifest_hash, state.manifest_version, state.total_chunks) == (
        "uniprot",
        MANIFEST,
        "v1",
        10,
    )
    assert state.remaining == 10 and not state.is_complete


def test_starting_the_same_identity_again_resumes_the_existing_state(states: ProcessingStates) -> None:
    op_id = start(states)
    states.record_completed(op_id, [h(1), h(2)])
    first = states.get(op_id)
    resumed = states.start(PUSH, SOURCE, manifest_hash=MANIFEST, manifest_version="v1", total_chunks=10)
    assert resumed.operation_id == op_id
    assert resumed.completed_chunks == {h(1), h(2)}
    assert first is not None and resumed.started == first.started


def test_a_different_version_is_a_new_state(states: ProcessingStates) -> None:
    assert start(states, manifest_version="v1") != start(states, manifest_version="v2")


def test_a_different_manifest_hash_is_a_new_state(states: ProcessingStates) -> None:
    assert start(states) != start(states, manifest_hash=SHA256Hash.compute(b"other"))


def test_a_different_operation_is_a_new_state(states: ProcessingStates) -> None:
    assert start(states, operation=PUSH) != start(states, operation=OperationType.SYNC_PULL)


def test_a_different_source_is_a_new_state(states: ProcessingStates) -> None:
    other = SourceInfo(database="uniprot", source="s3://bucket/elsewhere", version="2024_01")
    assert start(states) != start(states, source=other)


def test_source_extra_is_not_part_of_the_identity(states: ProcessingStates) -> None:
    noted = SourceInfo(database="uniprot", source=SOURCE.source, version=SOURCE.version, extra={"at": 1.5})
    assert start(states) == start(states, source=noted)


def test_operation_ids_are_deterministic_valid_keys(tmp_path: Path) -> None:
    first = start(ProcessingStates(MemoryBackend()))
    second = start(ProcessingStates(FilesystemBackend(tmp_path / "other")))
    assert first == second
    assert validate_key(STATE + first) and "." not in first


def test_a_resumed_start_with_a_new_total_records_it(states: ProcessingStates) -> None:
    op_id = start(states, total_chunks=10)
    start(states, total_chunks=25)
    state = states.get(op_id)
    assert state is not None and state.total_chunks == 25


def test_an_invalid_database_name_is_refused(states: ProcessingStates) -> None:
    with pytest.raises(StorageError, match="database name"):
        start(states, source=SourceInfo(database="../etc"))


# -- recording progress -----------------------------------------------------------------------------


def test_recorded_hashes_survive_a_fresh_instance_on_the_same_backend(backend: Backend) -> None:
    op_id = start(ProcessingStates(backend))
    ProcessingStates(backend).record_completed(op_id, [h(1), h(2)])
    ProcessingStates(backend).record_completed(op_id, [h(2), h(3)])
    state = ProcessingStates(backend).get(op_id)
    assert state is not None and state.completed_chunks == {h(1), h(2), h(3)}


def test_recording_writes_one_new_object_and_reads_nothing(backend: Backend) -> None:
    counting = RequestCountingBackend(backend)
    states = ProcessingStates(counting)
    op_id = start(states)
    states.record_completed(op_id, [h(i) for i in range(100)])
    counting.reset()
    states.record_completed(op_id, [h(i) for i in range(100, 200)])
    assert counting.counts == {"put_if_absent": 1}


def test_recording_an_empty_batch_writes_nothing(backend: Backend) -> None:
    counting = RequestCountingBackend(backend)
    states = ProcessingStates(counting)
    op_id = start(states)
    counting.reset()
    states.record_completed(op_id, [])
    assert counting.total == 0


def test_two_writers_on_one_state_never_overwrite_each_other(backend: Backend) -> None:
    first, second = ProcessingStates(backend), ProcessingStates(backend)
    op_id = start(first)
    start(second)
    first.record_completed(op_id, [h(1)])
    second.record_completed(op_id, [h(2)])  # both think sequence 1 is next: one must move on
    first.record_completed(op_id, [h(3)])
    state = ProcessingStates(backend).get(op_id)
    assert state is not None and state.completed_chunks == {h(1), h(2), h(3)}


def test_recording_on_a_finished_state_is_an_error_naming_it(states: ProcessingStates) -> None:
    op_id = start(states)
    states.complete(op_id)
    with pytest.raises(StorageError, match=f"no processing state '{op_id}'.*start the operation again"):
        ProcessingStates(states.backend).record_completed(op_id, [h(1)])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_segment_is_skipped_with_a_warning(
    backend: Backend, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    states = ProcessingStates(backend)
    op_id = start(states)
    states.record_completed(op_id, [h(1)])
    states.record_completed(op_id, [h(2)])
    torn = segment_keys(backend, op_id)[1]
    data = backend.get(torn)
    backend.put(torn, {"truncated": data[:-5], "garbage": b"\x00not a segment" * 9, "empty": b""}[damage])
    with caplog.at_level(logging.WARNING, logger="talaria_storage.storage.processing"):
        state = ProcessingStates(backend).get(op_id)
    assert state is not None and state.completed_chunks == {h(1)}
    assert torn in caplog.text


def test_segments_left_by_an_earlier_run_are_removed_when_it_starts_again(backend: Backend) -> None:
    states = ProcessingStates(backend)
    op_id = start(states)
    states.record_completed(op_id, [h(1)])
    (leftover,) = segment_keys(backend, op_id)
    data = backend.get(leftover)
    states.complete(op_id)
    backend.put(leftover, data)  # written by a process that had not noticed the completion
    again = ProcessingStates(backend).start(
        PUSH, SOURCE, manifest_hash=MANIFEST, manifest_version="v1", total_chunks=10
    )
    assert again.completed_chunks == frozenset()
    assert segment_keys(backend, op_id) == []


def test_a_late_segment_of_an_earlier_run_does_not_count(backend: Backend) -> None:
    states = ProcessingStates(backend)
    op_id = start(states)
    states.record_completed(op_id, [h(1)])
    (old_segment,) = segment_keys(backend, op_id)
    data = backend.get(old_segment)
    states.complete(op_id)
    ProcessingStates(backend).start(PUSH, SOURCE, manifest_hash=MANIFEST, manifest_version="v1", total_chunks=10)
    backend.put(f"{STATE}{op_id}.00000007", data)  # the old run's straggler lands after the restart
    state = ProcessingStates(backend).get(op_id)
    assert state is not None and state.completed_chunks == frozenset()


def test_many_segments_are_merged_when_the_state_is_resumed(backend: Backend) -> None:
    states = ProcessingStates(backend)
    op_id = start(states)
    for i in range(COMPACT_AFTER + 1):
        states.record_completed(op_id, [h(i)])
    resumed = ProcessingStates(backend)
    state = resumed.start(PUSH, SOURCE, manifest_hash=MANIFEST, manifest_version="v1", total_chunks=10)
    assert state.completed_chunks == {h(i) for i in range(COMPACT_AFTER + 1)}
    assert len(segment_keys(backend, op_id)) == 1
    resumed.record_completed(op_id, [h(1000)])
    final = ProcessingStates(backend).get(op_id)
    assert final is not None and len(final.completed_chunks) == COMPACT_AFTER + 2


# -- finding, listing, finishing ------------------------------------------------------------------


def test_find_returns_the_unfinished_state_of_that_target(states: ProcessingStates) -> None:
    op_id = start(states)
    found = states.find("uniprot", PUSH, MANIFEST, "v1")
    assert found is not None and found.operation_id == op_id


@pytest.mark.parametrize(
    "database, operation, version",
    [("other", PUSH, "v1"), ("uniprot", OperationType.SYNC_PULL, "v1"), ("uniprot", PUSH, "v2")],
)
def test_find_ignores_other_targets(
    states: ProcessingStates, database: str, operation: OperationType, version: str
) -> None:
    start(states)
    assert states.find(database, operation, MANIFEST, version) is None


def test_find_works_for_an_import_with_no_manifest_yet(states: ProcessingStates) -> None:
    op_id = start(states, operation=OperationType.IMPORT, manifest_hash=None)
    found = states.find("uniprot", OperationType.IMPORT, None, "v1")
    assert found is not None and found.operation_id == op_id and found.manifest_hash is None


def test_get_of_an_unknown_operation_is_none(states: ProcessingStates) -> None:
    assert states.get("sync-push-0123456789abcdef-01234567") is None


def test_get_refuses_a_malformed_operation_id(states: ProcessingStates) -> None:
    with pytest.raises(StorageError, match="invalid operation id"):
        states.get("../../etc/passwd")


def test_list_returns_every_unfinished_state(states: ProcessingStates) -> None:
    ids = {start(states, manifest_version=f"v{i}") for i in range(3)}
    assert {s.operation_id for s in states.list()} == ids


def test_complete_removes_every_object_of_the_state(backend: Backend) -> None:
    states = ProcessingStates(backend)
    kept = start(states, manifest_version="v2")
    op_id = start(states)
    states.record_completed(op_id, [h(1)])
    states.record_completed(op_id, [h(2)])
    states.complete(op_id)
    assert states.get(op_id) is None
    assert state_keys(backend) == {STATE + kept}


def test_completing_twice_is_harmless(states: ProcessingStates) -> None:
    op_id = start(states)
    states.complete(op_id)
    states.complete(op_id)
    assert states.list() == []


def test_expire_removes_only_states_not_updated_for_that_long(backend: Backend) -> None:
    states = ProcessingStates(backend)
    stale, fresh = start(states, manifest_version="old"), start(states, manifest_version="new")
    states.record_completed(stale, [h(1)])
    for key in state_keys(backend):
        if key.startswith(STATE + stale):
            age(backend, key, 7200)
    assert states.expire(3600) == [stale]
    assert [s.operation_id for s in states.list()] == [fresh]
    assert all(not key.startswith(STATE + stale) for key in state_keys(backend))


def test_a_recent_segment_keeps_an_old_state_alive(backend: Backend) -> None:
    states = ProcessingStates(backend)
    op_id = start(states)
    age(backend, STATE + op_id, 7200)
    states.record_completed(op_id, [h(1)])
    assert states.expire(3600) == []


def test_expire_removes_leftover_segments_with_no_state(backend: Backend) -> None:
    states = ProcessingStates(backend)
    op_id = start(states)
    states.record_completed(op_id, [h(1)])
    backend.delete(STATE + op_id)  # a completion killed after removing the header
    for key in segment_keys(backend, op_id):
        age(backend, key, 7200)
    states.expire(3600)
    assert state_keys(backend) == set()


def test_expire_with_zero_removes_every_state(states: ProcessingStates) -> None:
    ids = {start(states, manifest_version="a"), start(states, manifest_version="b")}
    assert set(states.expire(0)) == ids
    assert states.list() == []


def test_live_objects_are_the_manifests_and_completed_objects_of_unfinished_states(
    states: ProcessingStates,
) -> None:
    first = start(states)
    states.record_completed(first, [h(1), h(2)])
    second = start(states, manifest_hash=None, manifest_version="v2", operation=OperationType.IMPORT)
    states.record_completed(second, [h(3)])
    finished = start(states, manifest_hash=SHA256Hash.compute(b"done"), manifest_version="v3")
    states.record_completed(finished, [h(4)])
    states.complete(finished)
    assert states.live_objects() == {MANIFEST, h(1), h(2), h(3)}


# -- the StatefulStorage trait on Store ------------------------------------------------------------


def test_store_runs_an_operation_through_the_stateful_storage_methods(backend: Backend) -> None:
    store = Store(backend)
    op_id = store.start_processing(PUSH, MANIFEST, "v1", 3, SOURCE)
    store.update_processing_state([h(1), h(2)])
    resumable = Store(backend).check_resumable("uniprot", PUSH, MANIFEST, "v1")
    assert resumable is not None and resumable.operation_id == op_id
    assert resumable.completed_chunks == {h(1), h(2)} and resumable.remaining == 1
    store.complete_processing()
    assert store.check_resumable("uniprot", PUSH, MANIFEST, "v1") is None


def test_store_resumes_a_killed_operation_in_a_new_instance(backend: Backend) -> None:
    killed = Store(backend)
    op_id = killed.start_processing(PUSH, MANIFEST, "v1", 3, SOURCE)
    killed.update_processing_state([h(1)])
    rerun = Store(backend)
    assert rerun.start_processing(PUSH, MANIFEST, "v1", 3, SOURCE) == op_id
    rerun.update_processing_state([h(2)])
    state = rerun.states.get(op_id)
    assert state is not None and state.completed_chunks == {h(1), h(2)}


def test_store_refuses_progress_without_an_operation(backend: Backend) -> None:
    with pytest.raises(StorageError, match="start_processing"):
        Store(backend).update_processing_state([h(1)])


def test_the_current_operation_belongs_to_one_store_instance(backend: Backend) -> None:
    Store(backend).start_processing(PUSH, MANIFEST, "v1", 3, SOURCE)
    with pytest.raises(StorageError, match="start_processing"):
        Store(backend).complete_processing()


def test_a_state_survives_on_rocksdb(rocksdb_backend: Backend) -> None:
    op_id = start(ProcessingStates(rocksdb_backend))
    ProcessingStates(rocksdb_backend).record_completed(op_id, [h(1), h(2)])
    resumed = ProcessingStates(rocksdb_backend).start(
        PUSH, SOURCE, manifest_hash=MANIFEST, manifest_version="v1", total_chunks=10
    )
    assert resumed.operation_id == op_id and resumed.completed_chunks == {h(1), h(2)}
    ProcessingStates(rocksdb_backend).complete(op_id)
    assert state_keys(rocksdb_backend) == set()


def test_a_huge_batch_is_split_into_bounded_segments(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("talaria_storage.storage.processing.MAX_SEGMENT_HASHES", 3)
    states = ProcessingStates(backend)
    op_id = start(states)
    states.record_completed(op_id, [h(i) for i in range(7)])
    assert len(segment_keys(backend, op_id)) == 3
    state = states.get(op_id)
    assert state is not None and state.completed_chunks == {h(i) for i in range(7)}


def test_compact_merges_the_segments_without_losing_any_hash(backend: Backend) -> None:
    states = ProcessingStates(backend)
    op_id = start(states)
    for i in range(5):
        states.record_completed(op_id, [h(i), h(i + 1)])
    assert ProcessingStates(backend).compact(op_id) == 5
    assert len(segment_keys(backend, op_id)) == 1
    state = states.get(op_id)
    assert state is not None and state.completed_chunks == {h(i) for i in range(6)}


# -- notes ------------------------------------------------------------------------------------------


def test_a_note_is_read_back_by_name(states: ProcessingStates) -> None:
    op_id = start(states)
    states.put_note(op_id, "shard-000000-000002", b"summary")
    states.put_note(op_id, "carry-000002", b"carry")
    assert states.notes(op_id) == {"shard-000000-000002": b"summary", "carry-000002": b"carry"}


def test_a_note_put_again_replaces_the_old_one(states: ProcessingStates) -> None:
    op_id = start(states)
    states.put_note(op_id, "carry", b"old")
    states.put_note(op_id, "carry", b"new")
    assert states.notes(op_id) == {"carry": b"new"}


def test_notes_are_not_segments(states: ProcessingStates) -> None:
    op_id = start(states)
    states.record_completed(op_id, [h(1)])
    states.put_note(op_id, "executor", b"dask")
    (state,) = states.list()
    assert state.completed_chunks == frozenset({h(1)})


def test_completing_a_state_removes_its_notes(states: ProcessingStates, backend: Backend) -> None:
    op_id = start(states)
    states.put_note(op_id, "executor", b"dask")
    states.complete(op_id)
    assert states.notes(op_id) == {}
    assert state_keys(backend) == set()


def test_expiring_a_state_removes_its_notes(states: ProcessingStates, backend: Backend) -> None:
    op_id = start(states)
    states.put_note(op_id, "executor", b"dask")
    assert states.expire(0) == [op_id]
    assert state_keys(backend) == set()
