"""The RocksDB backend: the conformance suite plus locking, read-only mode, layout and persistence."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from talaria_storage.testing.emulators import require_sdk

require_sdk("rocksdict", "rocksdb")

from rocksdict import Rdict
from talaria_storage.backends.rocksdb import RocksDBBackend

from talaria_storage.core.errors import BackendError, ConfigError, PreconditionFailed
from talaria_storage.storage.registry import open_backend
from talaria_storage.testing.backend_suite import BackendConformance

MIB = 1024 * 1024


class TestRocksDBBackend(BackendConformance):
    """The shared Backend contract (1050 keys also cross the backend's 1000-entry list pages)."""

    @pytest.fixture
    def backend(self, rocksdb_backend: RocksDBBackend) -> Iterator[RocksDBBackend]:
        yield rocksdb_backend


def _run(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python process (RocksDB's LOCK is per process)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


OPEN_IN_CHILD = """
    import sys
    from talaria_storage.backends.rocksdb import RocksDBBackend
    from talaria_storage.core.errors import BackendError
    try:
        backend = RocksDBBackend(sys.argv[1] if len(sys.argv) > 1 else {path!r}, read_only={read_only})
    except BackendError as exc:
        print("ERROR:" + str(exc))
    else:
        print("OK:" + backend.get("refs/db/HEAD").decode())
        backend.close()
"""


def test_a_second_process_gets_a_one_line_lock_message(tmp_path: Path) -> None:
    path = tmp_path / "rocks"
    with RocksDBBackend(path) as backend:
        backend.put("refs/db/HEAD", b"v1")
        result = _run(OPEN_IN_CHILD.format(path=str(path), read_only=False))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"ERROR:store {path.resolve()} is open by another process "
        "(open it read-only with read_only=true, or stop the other process)"
    )


def test_a_second_process_can_open_the_store_read_only(tmp_path: Path) -> None:
    path = tmp_path / "rocks"
    with RocksDBBackend(path) as backend:
        backend.put("refs/db/HEAD", b"v1")
        result = _run(OPEN_IN_CHILD.format(path=str(path), read_only=True))
    assert result.stdout.strip() == "OK:v1", result.stderr


def test_close_releases_the_lock_for_other_processes(tmp_path: Path) -> None:
    path = tmp_path / "rocks"
    backend = RocksDBBackend(path)
    backend.put("refs/db/HEAD", b"v1")
    listing = backend.list("")
    next(listing)  # a listing still alive must not pin the database open
    backend.close()
    backend.close()
    result = _run(OPEN_IN_CHILD.format(path=str(path), read_only=False))
    assert result.stdout.strip() == "OK:v1", result.stderr


def test_reopening_the_store_keeps_one_info_log(tmp_path: Path) -> None:
    for i in range(3):  # a command each: RocksDB's default kept every earlier log (LOG.old.*)
        backend = RocksDBBackend(tmp_path / "rocks")
        backend.put(f"refs/db/v{i}", b"x")
        backend.close()
    assert sorted(p.name for p in (tmp_path / "rocks").rglob("LOG*")) == ["LOG"]


def test_a_second_handle_in_the_same_process_is_refused_clearly(
    rocksdb_backend: RocksDBBackend,
) -> None:
    with pytest.raises(BackendError, match="already open in this process"):
        RocksDBBackend(rocksdb_backend.root)


def test_read_only_mode_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "rocks"
    with RocksDBBackend(path) as writer:
        writer.put("refs/db/HEAD", b"v1")
    with RocksDBBackend(path, read_only=True) as reader:
        assert reader.get("refs/db/HEAD") == b"v1"
        assert [i.key for i in reader.list("refs/")] == ["refs/db/HEAD"]
        for write in (
            lambda: reader.put("refs/db/HEAD", b"v2"),
            lambda: reader.put_if_version("refs/db/v2", b"x", None),
            lambda: reader.delete("refs/db/HEAD"),
            lambda: reader.delete_many(["refs/db/HEAD"]),
        ):
            with pytest.raises(BackendError, match="is open read-only"):
                write()


def test_read_only_open_of_a_missing_store_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="does not exist"):
        RocksDBBackend(tmp_path / "nothing", read_only=True)
    with pytest.raises(BackendError, match="does not exist"):
        RocksDBBackend(tmp_path / "nothing", create=False)


def test_keys_live_in_their_column_families(rocksdb_backend: RocksDBBackend) -> None:
    rocksdb_backend.put("chunks/" + "ab" * 32, b"chunk")
    rocksdb_backend.put("refs/db/HEAD", b"ref")
    rocksdb_backend.put("store.json", b"{}")
    path = rocksdb_backend.root
    rocksdb_backend.close()
    assert {"chunks", "manifests", "refs", "state", "meta", "default"} <= set(
        Rdict.list_cf(str(path))
    )
    db = Rdict(str(path), access_type=__import__("rocksdict").AccessType.read_only())
    try:
        assert db.get_column_family("chunks").get(("chunks/" + "ab" * 32).encode()) == b"chunk"
        assert db.get_column_family("refs").get(b"refs/db/HEAD") == b"ref"
        assert db.get(b"store.json") == b"{}"
    finally:
        db.close()


def test_list_reports_sizes_and_modification_times(rocksdb_backend: RocksDBBackend) -> None:
    before = time.time()
    rocksdb_backend.put("state/op", b"12345")
    (info,) = rocksdb_backend.list("state/")
    assert info.size == 5
    assert before - 1 <= info.modified <= time.time() + 1
    assert rocksdb_backend.stat("state/op") == info


def test_data_and_versions_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "rocks"
    with RocksDBBackend(path) as backend:
        version = backend.put_if_version("refs/db/HEAD", b"v1", None)
        backend.put("chunks/" + "cd" * 32, os.urandom(MIB))  # a blob-file value
    with RocksDBBackend(path) as backend:
        current = backend.read_versioned("refs/db/HEAD")
        assert current is not None and current.version == version
        backend.put_if_version("refs/db/HEAD", b"v2", version)
        with pytest.raises(PreconditionFailed):
            backend.put_if_version("refs/db/HEAD", b"v3", version)
        assert backend.stat("chunks/" + "cd" * 32).size == MIB


def test_versions_change_even_when_the_content_comes_back(rocksdb_backend: RocksDBBackend) -> None:
    first = rocksdb_backend.put_if_version("refs/db/HEAD", b"A", None)
    rocksdb_backend.put("refs/db/HEAD", b"B")
    rocksdb_backend.put("refs/db/HEAD", b"A")
    with pytest.raises(PreconditionFailed):
        rocksdb_backend.put_if_version("refs/db/HEAD", b"C", first)


def test_batches_span_column_families(rocksdb_backend: RocksDBBackend) -> None:
    keys = ["chunks/" + "ef" * 32, "refs/db/HEAD", "state/op", "store.json", "reductions/p"]
    for key in keys:
        rocksdb_backend.put(key, key.encode())
    assert rocksdb_backend.get_many([*keys, "state/none"]) == {k: k.encode() for k in keys}
    assert rocksdb_backend.exists_many([*keys, "state/none"]) == set(keys)
    rocksdb_backend.delete_many(keys)
    assert list(rocksdb_backend.list("")) == []


@pytest.mark.parametrize("compression", ["none", "zstd", "snappy"])
def test_compression_and_bloom_settings_are_accepted(tmp_path: Path, compression: str) -> None:
    with RocksDBBackend(
        tmp_path / "rocks",
        compression=compression,
        bloom_bits=0,
        blob_files=False,
        sync_all=True,
        block_cache_mb=8,
    ) as backend:
        backend.put("chunks/" + "01" * 32, b"x" * 10_000)
        assert backend.get("chunks/" + "01" * 32) == b"x" * 10_000


def test_an_unknown_compression_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="compression = 'brotli'"):
        RocksDBBackend(tmp_path / "rocks", compression="brotli")


def test_open_backend_opens_a_rocksdb_url(tmp_path: Path) -> None:
    backend = open_backend(f"rocksdb://{tmp_path}/rocks", {"bloom_bits": 12, "compression": "zstd"})
    try:
        assert isinstance(backend, RocksDBBackend)
        backend.put("store.json", b"{}")
        assert backend.location == f"rocksdb://{(tmp_path / 'rocks').resolve()}"
    finally:
        backend.close()


def test_a_closed_backend_refuses_work(rocksdb_backend: RocksDBBackend) -> None:
    rocksdb_backend.close()
    with pytest.raises(BackendError, match="is closed"):
        rocksdb_backend.get("store.json")
