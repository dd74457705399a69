"""StorageOptimizer: each strategy's estimate, what optimize then does, and the store it leaves (issue 14).

Synthetic releases of a small gene set, imported one by one into stores with
small chunks (many packs from little data). Every test that changes a store
checks that every version still exports byte for byte as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from optimization_data import exports, import_releases, small_store, write_releases

from talaria_storage.config.open_store import open_store
from talaria_storage.core.errors import ConfigError
from talaria_storage.optimization.optimizer import StorageOptimizer
from talaria_storage.optimization.strategies import OptimizationStrategy as S
from talaria_storage.optimization.strategies import OptimizeOptions, parse_strategy
from talaria_storage.sequences.database import open_database
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.store import Store

NOW = OptimizeOptions(grace_seconds=0)


def _options(*strategies: S) -> OptimizeOptions:
    return OptimizeOptions(strategies=strategies, grace_seconds=0)


def _listing(store: Store) -> dict[str, int]:
    return {info.key: info.size for info in store.backend.list("")}


@pytest.fixture
def releases(tmp_path: Path) -> list[Path]:
    return write_releases(tmp_path / "in", 4, records=150)


@pytest.fixture
def duplicated(tmp_path: Path, releases: list[Path]) -> Store:
    """Four releases imported with deduplication off: each stores the sequences the previous one held."""
    store = small_store(tmp_path / "store", deduplication=False)
    import_releases(store, releases)
    return store


def test_a_dry_run_writes_nothing(duplicated: Store) -> None:
    before = _listing(duplicated)
    StorageOptimizer(duplicated).optimize(OptimizeOptions(dry_run=True, grace_seconds=0))
    assert _listing(duplicated) == before


def test_deduplication_finds_the_sequences_stored_twice(duplicated: Store) -> None:
    estimate = StorageOptimizer(duplicated).estimate_savings([S.DEDUPLICATION], NOW)
    assert estimate.row(S.DEDUPLICATION).saved_bytes > 0.2 * estimate.before["used_bytes"]


def test_optimize_achieves_the_estimate_within_ten_percent(duplicated: Store) -> None:
    optimizer = StorageOptimizer(duplicated)
    estimate = optimizer.estimate_savings(NOW.strategies, NOW)
    achieved = optimizer.optimize(NOW)
    for planned, done in zip(estimate.rows, achieved.rows):
        assert done.saved_bytes == pytest.approx(planned.saved_bytes, rel=0.10, abs=64)


def test_every_version_exports_byte_exactly_after_optimize(duplicated: Store) -> None:
    before = exports(duplicated)
    StorageOptimizer(duplicated).optimize(NOW)
    assert exports(duplicated) == before


def test_verify_is_clean_after_optimize(duplicated: Store) -> None:
    report = StorageOptimizer(duplicated).optimize(NOW)
    assert report.verification["problems"] == [] and verify_store(duplicated) == []


def test_the_run_frees_what_its_rows_add_up_to(duplicated: Store) -> None:
    report = StorageOptimizer(duplicated).optimize(NOW)
    assert report.before["total_bytes"] - report.after["total_bytes"] == report.saved_bytes


def test_estimates_are_chained_each_after_the_previous_strategy(duplicated: Store) -> None:
    estimate = StorageOptimizer(duplicated).estimate_savings([S.DEDUPLICATION, S.REPACKING], NOW)
    dedup, repack = estimate.rows
    assert repack.used_bytes == dedup.used_bytes - dedup.saved_bytes


def test_a_second_run_finds_nothing_left_to_do(duplicated: Store) -> None:
    optimizer = StorageOptimizer(duplicated)
    optimizer.optimize(NOW)
    assert optimizer.estimate_savings(NOW.strategies, NOW).saved_bytes == 0


def test_old_objects_are_collected_only_by_gc(duplicated: Store) -> None:
    total = sum(_listing(duplicated).values())
    report = StorageOptimizer(duplicated).optimize(_options(S.DEDUPLICATION))
    assert report.row(S.DEDUPLICATION).saved_bytes > 0
    assert report.after["unused_bytes"] > 0 and sum(_listing(duplicated).values()) > total


def test_gc_keeps_young_objects_for_its_grace_period(duplicated: Store) -> None:
    optimizer = StorageOptimizer(duplicated)
    optimizer.optimize(_options(S.DEDUPLICATION))
    spared = optimizer.optimize(OptimizeOptions(strategies=(S.GARBAGE_COLLECTION,), grace_seconds=3600))
    assert spared.row(S.GARBAGE_COLLECTION).delete_objects == 0


def test_deduplication_works_across_databases(tmp_path: Path, releases: list[Path]) -> None:
    store = small_store(tmp_path / "two", deduplication=False)
    import_releases(store, releases[:1], "a")
    open_database(store, "b").import_files([releases[1]], version="v0")  # shares most sequences with a
    before = {db: exports(store, db) for db in ("a", "b")}
    report = StorageOptimizer(store).optimize(NOW)
    assert report.row(S.DEDUPLICATION).saved_bytes > 0
    assert {db: exports(store, db) for db in ("a", "b")} == before


def test_repacking_merges_small_packs(tmp_path: Path, releases: list[Path]) -> None:
    store = small_store(tmp_path / "small")
    import_releases(store, releases)
    optimizer = StorageOptimizer(store)
    packs = len(optimizer.analyze().packs)
    before = exports(store)
    report = optimizer.optimize(_options(S.REPACKING, S.GARBAGE_COLLECTION))
    assert report.row(S.REPACKING).repack_objects > 0
    assert len(optimizer.analyze().packs) < packs and exports(store) == before


def test_compression_reencodes_versions_written_with_another_level(tmp_path: Path, releases: list[Path]) -> None:
    fast = open_store(str(tmp_path / "c"), compression_level=1, optimization={"min_chunk_size": "2KiB", "max_chunk_size": "16KiB"})
    import_releases(fast, releases)
    before = exports(fast)
    fast.close()
    strong = open_store(str(tmp_path / "c"), compression_level=19, optimization={"min_chunk_size": "2KiB", "max_chunk_size": "16KiB"})
    report = StorageOptimizer(strong).optimize(_options(S.COMPRESSION, S.GARBAGE_COLLECTION))
    assert report.row(S.COMPRESSION).saved_bytes > 0 and exports(strong) == before
    _, manifest = VersionCatalog(strong).resolve("genes")
    assert manifest.extra["codec"]["level"] == 18


def test_compression_recompresses_framed_objects_in_place(tmp_path: Path, releases: list[Path]) -> None:
    lz4 = open_store(str(tmp_path / "f"), compression="lz4")
    import_releases(lz4, releases)
    names = {info.key for info in lz4.backend.list("manifests/")}
    lz4.close()
    zstd = open_store(str(tmp_path / "f"), compression="zstd")
    StorageOptimizer(zstd).optimize(_options(S.COMPRESSION))
    assert {info.key for info in zstd.backend.list("manifests/")} == names
    assert set(zstd.manifests.get_stats().per_codec) == {"zstd"}


def test_an_unknown_strategy_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="unknown optimization strategy 'squash': use one of deduplication"):
        parse_strategy("squash")


def test_a_strategy_left_out_says_why() -> None:
    with pytest.raises(ConfigError, match="archival was left out"):
        parse_strategy("Archival")


def test_delta_encoding_is_left_out_with_the_reason() -> None:
    with pytest.raises(ConfigError, match="delta-encoding was left out"):
        parse_strategy("DeltaEncoding")
