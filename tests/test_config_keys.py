"""Every storage.toml key that shapes what an import writes has an effect (issue 14).

Each test imports the same small synthetic release under two settings of one
key and shows the difference in bytes written, chunk counts or behaviour.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optimization_data import import_releases, small_store, write_releases
from typer.testing import CliRunner

from talaria_storage.cli.main import app
from talaria_storage.config.open_store import open_store
from talaria_storage.sequences.database import open_database
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.store import Store


def _stored_bytes(store: Store) -> int:
    return store.get_stats().stored_bytes + store.manifests.get_stats().stored_bytes


def _import_once(location: Path, release: Path, **overrides: object) -> Store:
    store = open_store(str(location), **overrides)
    open_database(store, "genes").import_files([release], version="v0")
    return store


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return write_releases(tmp_path / "in", 1, records=200)[0]


def test_compression_level_changes_the_bytes_of_sequence_objects(tmp_path: Path, release: Path) -> None:
    fast = _import_once(tmp_path / "l1", release, compression_level=1)
    small = _import_once(tmp_path / "l19", release, compression_level=19)
    assert _stored_bytes(small) < _stored_bytes(fast)


def test_the_default_level_keeps_the_measured_sequence_levels(tmp_path: Path, release: Path) -> None:
    store = _import_once(tmp_path / "d", release)
    _, manifest = VersionCatalog(store).resolve("genes")
    assert (manifest.extra["codec"]["level"], manifest.extra["codec"]["meta_level"]) == (2, 9)


def test_the_level_used_is_recorded_in_the_version(tmp_path: Path, release: Path) -> None:
    store = _import_once(tmp_path / "l19", release, compression_level=19)
    _, manifest = VersionCatalog(store).resolve("genes")
    assert manifest.extra["codec"]["level"] == 18 and manifest.extra["codec"]["redundant_level"] == 22


def test_compression_codec_changes_the_bytes_of_framed_objects(tmp_path: Path, release: Path) -> None:
    zstd = _import_once(tmp_path / "zstd", release, compression="zstd")
    lz4 = _import_once(tmp_path / "lz4", release, compression="lz4")
    assert zstd.manifests.get_stats().stored_bytes != lz4.manifests.get_stats().stored_bytes
    assert set(lz4.manifests.get_stats().per_codec) == {"lz4"}


def test_a_codec_without_levels_leaves_sequence_objects_to_their_own_codec(tmp_path: Path, release: Path) -> None:
    zstd = _import_once(tmp_path / "zstd", release, compression="zstd")
    lz4 = _import_once(tmp_path / "lz4", release, compression="lz4")
    # The sequence objects compress themselves (codec "none" at the store); only the look-up
    # table's partitions take the store's codec.
    assert zstd.get_stats().per_codec["none"] == lz4.get_stats().per_codec["none"]


def _chunks(store: Store) -> int:
    return len(VersionCatalog(store).resolve("genes")[1].chunks)


def test_a_smaller_max_chunk_size_cuts_more_chunks(tmp_path: Path, release: Path) -> None:
    default = _import_once(tmp_path / "a", release)
    small = _import_once(tmp_path / "b", release, optimization={"min_chunk_size": "2KiB", "max_chunk_size": "8KiB"})
    assert _chunks(default) == 1  # 200 genes of ~1 kb: below the default 1 MiB minimum
    assert _chunks(small) >= 20


def test_max_chunk_size_bounds_every_chunk(tmp_path: Path, release: Path) -> None:
    store = _import_once(tmp_path / "b", release, optimization={"min_chunk_size": "2KiB", "max_chunk_size": "8KiB"})
    _, manifest = VersionCatalog(store).resolve("genes")
    assert max(e.residues + 64 * e.records for e in manifest.chunks) <= 8 << 10


def test_a_larger_min_chunk_size_cuts_fewer_chunks(tmp_path: Path, release: Path) -> None:
    fine = _import_once(tmp_path / "a", release, optimization={"min_chunk_size": "2KiB", "max_chunk_size": "64KiB"})
    coarse = _import_once(tmp_path / "b", release, optimization={"min_chunk_size": "16KiB", "max_chunk_size": "64KiB"})
    assert _chunks(coarse) < _chunks(fine)


def test_without_deduplication_a_release_stores_the_sequences_it_shares(tmp_path: Path) -> None:
    paths = write_releases(tmp_path / "in", 2, records=200)
    shared = small_store(tmp_path / "on")
    alone = small_store(tmp_path / "off", deduplication=False)
    import_releases(shared, paths)
    import_releases(alone, paths)
    assert _stored_bytes(alone) > 1.1 * _stored_bytes(shared)


def test_without_deduplication_a_version_reuses_no_pack_of_another(tmp_path: Path) -> None:
    paths = write_releases(tmp_path / "in", 2, records=200)
    alone = small_store(tmp_path / "off", deduplication=False)
    import_releases(alone, paths)
    _, latest = VersionCatalog(alone).resolve("genes", "v1")
    assert latest.reused_packs == ()


def test_stats_shows_the_sequence_levels_a_version_used(tmp_path: Path, release: Path) -> None:
    _import_once(tmp_path / "l19", release, compression_level=19).close()
    result = CliRunner().invoke(app, ["--store", str(tmp_path / "l19"), "stats", "--json"])
    assert json.loads(result.output)["databases"][0]["codec"]["level"] == 18
