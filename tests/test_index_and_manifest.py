"""The lookup index (memory, SQLite, RocksDB) and version manifests."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.index.local_index import ChunkIndex, IndexBusy, open_index
from talaria_storage.sequences.manifest import ChunkEntry, Manifest, SourceFile, merkle_root


@pytest.fixture(params=["memory", "sqlite", "rocksdb"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChunkIndex]:
    idx = open_index(request.param, tmp_path)
    yield idx
    idx.close()


def test_index_returns_what_a_batch_wrote(index: ChunkIndex) -> None:
    index.write_batch([(b"acc:P1", b"h1"), (b"acc:P2", b"h2")])
    assert index.get(b"acc:P1") == b"h1" and index.get(b"acc:P3") is None


def test_index_scan_is_ordered_and_bounded_by_the_prefix(index: ChunkIndex) -> None:
    index.write_batch([(b"b:2", b"x"), (b"a:9", b"y"), (b"b:1", b"z"), (b"c:0", b"w"), (b"b\xff", b"v")])
    assert [k for k, _ in index.scan(b"b:")] == [b"b:1", b"b:2"]


def test_index_batch_deletes(index: ChunkIndex) -> None:
    index.write_batch([(b"k1", b"1"), (b"k2", b"2")])
    index.write_batch([(b"k3", b"3")], [b"k1"])
    assert index.get_many([b"k1", b"k2", b"k3"]) == [None, b"2", b"3"]


def test_index_delete_prefix_removes_only_that_prefix(index: ChunkIndex) -> None:
    index.write_batch([(b"m:1:a", b""), (b"m:1:b", b""), (b"m:2:a", b"")])
    assert index.delete_prefix(b"m:1:") == 2
    assert [k for k, _ in index.scan(b"m:")] == [b"m:2:a"]


def test_persistent_indexes_survive_reopening(tmp_path: Path) -> None:
    for kind in ("sqlite", "rocksdb"):
        idx = open_index(kind, tmp_path / kind)
        idx.write_batch([(b"k", b"v")])
        idx.close()
        again = open_index(kind, tmp_path / kind)
        assert again.get(b"k") == b"v"
        again.close()


def test_reopening_the_rocksdb_index_keeps_one_info_log(tmp_path: Path) -> None:
    for _ in range(3):  # a command each: RocksDB's default kept every earlier log (LOG.old.*)
        idx = open_index("rocksdb", tmp_path / "rocks")
        idx.write_batch([(b"k", b"v")])
        idx.close()
    assert sorted(p.name for p in (tmp_path / "rocks").rglob("LOG*")) == ["LOG"]


def _open_and_close_rocksdb_index(path: Path, times: int) -> list[str]:
    """What ``times`` opens of the index at ``path`` failed with, other than its lock being held."""
    failures = []
    for i in range(times):
        try:
            idx = open_index("rocksdb", path)
        except IndexBusy:
            continue
        except StorageError as exc:
            failures.append(str(exc))
            continue
        idx.write_batch([(b"k%d" % i, b"v")])
        idx.close()
    return failures


def test_processes_racing_to_open_the_rocksdb_index_find_it_busy_never_unreadable(tmp_path: Path) -> None:
    # An open that loses the race for RocksDB's lock still rotates the info log; with a rolling
    # logger it also trimmed old logs inside the open and failed when another process had
    # deleted one first ("while unlink() file: LOG.old.*"): 15 % of the opens in this test.
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = list(pool.map(_open_and_close_rocksdb_index, [tmp_path / "rocks"] * 3, [80] * 3))
    assert [failure for run in runs for failure in run] == []


def _h(i: int) -> SHA256Hash:
    return SHA256Hash.compute(str(i).encode())


def _manifest(n: int = 3) -> Manifest:
    return Manifest(
        database="uniprot",
        version="2024_01",
        created=1700000000.0,
        sources=(SourceFile("a.fasta.gz", 10, "00" * 32, "fasta", 2),),
        chunks=tuple(ChunkEntry(_h(i), (9606, 10090), 2, 100, 50) for i in range(n)),
        extra={"note": "é"},
    )


def test_a_manifest_round_trips_through_its_bytes() -> None:
    m = _manifest()
    assert Manifest.from_bytes(m.to_bytes()) == m


def test_manifest_bytes_are_deterministic() -> None:
    assert _manifest().to_bytes() == _manifest().to_bytes()


def test_a_manifest_whose_chunk_list_was_edited_is_refused() -> None:
    raw = _manifest().to_bytes().replace(_h(0).to_hex().encode(), _h(99).to_hex().encode())
    with pytest.raises(StorageError, match="Merkle"):
        Manifest.from_bytes(raw)


def test_garbage_is_not_a_manifest() -> None:
    with pytest.raises(StorageError, match="not a valid manifest"):
        Manifest.from_bytes(b"{}")


def test_merkle_root_separates_leaves_from_inner_nodes() -> None:
    a, b = _h(1), _h(2)
    # A one-leaf tree whose leaf is the concatenation of two leaf hashes must differ from the two-leaf tree.
    assert merkle_root([a, b]) != merkle_root([a]) and merkle_root([a]) != a


@given(st.lists(st.integers(0, 50), min_size=1, max_size=20))
def test_merkle_root_depends_on_order_and_content(ids: list[int]) -> None:
    hashes = [_h(i) for i in ids]
    assert merkle_root(hashes) == merkle_root(list(hashes))
    if len(set(ids)) > 1:
        assert merkle_root(hashes) != merkle_root(hashes[::-1]) or hashes == hashes[::-1]
