"""An optimize cut off part-way leaves every version readable, and a re-run finishes the job (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from optimization_data import exports, import_releases, small_store, write_releases

from talaria_storage.backends.faults import WRITE_OPERATIONS, FaultInjectingBackend
from talaria_storage.core.errors import BackendError
from talaria_storage.optimization.optimizer import StorageOptimizer
from talaria_storage.optimization.strategies import OptimizationStrategy as S
from talaria_storage.optimization.strategies import OptimizeOptions
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.storage.store import Store

REWRITES = OptimizeOptions(strategies=(S.DEDUPLICATION, S.REPACKING), grace_seconds=0)


def _duplicated(location: Path, releases: list[Path]) -> Store:
    store = small_store(location, deduplication=False)
    import_releases(store, releases)
    return store


def _writes_of_a_whole_run(tmp_path: Path, releases: list[Path]) -> int:
    store = _duplicated(tmp_path / "measure", releases)
    counting = FaultInjectingBackend(store.backend, operations=WRITE_OPERATIONS)
    StorageOptimizer(Store(counting, store.codec, config=store.config)).optimize(REWRITES)
    return counting.calls


@pytest.fixture
def cut_off(tmp_path: Path) -> tuple[Store, dict[str, str]]:
    """A store whose optimize lost its link half-way through its writes; and the exports before it."""
    releases = write_releases(tmp_path / "in", 4, records=150)
    half = _writes_of_a_whole_run(tmp_path, releases) // 2
    store = _duplicated(tmp_path / "store", releases)
    before = exports(store)
    refs = store.refs.list()
    cut = FaultInjectingBackend(store.backend, operations=WRITE_OPERATIONS, cut_after=half)
    with pytest.raises(BackendError):
        StorageOptimizer(Store(cut, store.codec, config=store.config)).optimize(REWRITES)
    moved = {key for key, h in store.refs.list().items() if refs[key] != h}
    assert moved and moved != set(refs)  # cut between versions: some rewritten, some not
    return store, before


def test_an_interrupted_optimize_leaves_every_version_readable(cut_off: tuple[Store, dict[str, str]]) -> None:
    store, before = cut_off
    assert exports(store) == before and verify_store(store) == []


def test_a_rerun_after_an_interruption_completes(cut_off: tuple[Store, dict[str, str]]) -> None:
    store, before = cut_off
    optimizer = StorageOptimizer(store)
    optimizer.optimize(REWRITES)
    assert optimizer.estimate_savings(REWRITES.strategies, REWRITES).saved_bytes == 0
    assert exports(store) == before and verify_store(store) == []


def test_a_head_left_behind_between_its_refs_is_moved_on_the_next_run(tmp_path: Path) -> None:
    store = _duplicated(tmp_path / "store", write_releases(tmp_path / "in", 2, records=150))
    old_head = store.refs.get("refs/genes/HEAD")
    StorageOptimizer(store).optimize(OptimizeOptions(strategies=(S.DEDUPLICATION,)))
    assert old_head is not None and store.refs.get("refs/genes/v1") != old_head
    store.refs.set("refs/genes/HEAD", old_head)  # as if the run stopped after the version ref moved
    report = StorageOptimizer(store).optimize(OptimizeOptions(strategies=(S.DEDUPLICATION,)))
    assert report.finished_interrupted == ["refs/genes/HEAD"]
    assert store.refs.get("refs/genes/HEAD") == store.refs.get("refs/genes/v1")
