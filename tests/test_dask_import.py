"""Import and verify on a Dask cluster: a real ``distributed.LocalCluster`` of worker processes on 127.0.0.1.

The promise under test (``sequences/sharded_import.py``): a version imported
by the cluster is the version this process would have written -- the same
manifest hash -- on the filesystem store and on S3 (moto), whatever happens
to its workers or its client on the way.
"""

from __future__ import annotations

import io
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

if os.environ.get("CI") == "true":
    import distributed  # under CI a missing extra fails the run: it is not skipped
else:
    distributed = pytest.importorskip("distributed", reason="the Dask tests need talaria-storage[dask]")

from talaria_storage import open_store
from talaria_storage.cli.main import app
from talaria_storage.core.errors import InputFormatError, StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.sequences import database as database_module
from talaria_storage.sequences import importing, sharded_import
from talaria_storage.sequences.dask_cluster import open_executor
from talaria_storage.sequences.database import open_database
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.sequences.worker_store import StoreAddress, address_of
from talaria_storage.testing.emulators import (
    S3_TEST_ACCESS_KEY,
    S3_TEST_REGION,
    S3_TEST_SECRET_KEY,
    free_port,
)

CREATED = 1_700_000_000.0  # both imports pin the manifest's creation time, so hashes compare
AMINO = "ACDEFGHIKLMNPQRSTVWY"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two worker processes, one thread each; the test S3 credentials are in their environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", S3_TEST_ACCESS_KEY)
        patch.setenv("AWS_SECRET_ACCESS_KEY", S3_TEST_SECRET_KEY)
        patch.setenv("AWS_DEFAULT_REGION", S3_TEST_REGION)
        with open_executor("local:2") as dask_client:
            yield dask_client


def write_proteome(path: Path, records: int, seed: int, shared: list[str], taxon: int) -> Path:
    """A UniProt-like FASTA: OX= taxa, 60-column lines, some soft-masked records, and the
    ``shared`` sequences (which other files hold too) among its own."""
    rng = random.Random(seed)
    lines = []
    for i in range(records):
        residues = rng.choice(shared) if shared and i % 5 == 0 else "".join(rng.choices(AMINO, k=rng.randint(30, 400)))
        if i % 17 == 0:
            residues = residues[:10].lower() + residues[10:]
        lines.append(f">sp|P{seed:02d}{i:05d}|PROT{i} Protein {i} OS=Test OX={taxon + i % 3} GN=g{i}")
        lines += [residues[j : j + 60] for j in range(0, len(residues), 60)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def proteomes(tmp_path: Path) -> list[Path]:
    """Four files that share sequences, so each file's packing depends on the files before it."""
    rng = random.Random(7)
    shared = ["".join(rng.choices(AMINO, k=rng.randint(50, 300))) for _ in range(40)]
    folder = tmp_path / "input"
    folder.mkdir()
    return [write_proteome(folder / f"p{n}.fasta", 300 + 50 * n, n, shared, 1000 * (n + 1)) for n in range(4)]


@pytest.fixture
def one_shard_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file is a shard of its own (the plan is made in this process)."""
    monkeypatch.setattr(sharded_import, "SHARD_BYTES", 1)


def single_process(tmp_path: Path, files: list[Path], name: str = "single") -> SHA256Hash:
    db = open_database(open_store(tmp_path / name), "prot")
    return db.import_files(files, version="v1", created=CREATED).manifest


def export_bytes(db: Any) -> bytes:
    out = io.BytesIO()
    db.export(out)
    return out.getvalue()


def s3_config(tmp_path: Path, endpoint: str, bucket: str) -> Path:
    path = tmp_path / "s3.toml"
    path.write_text(
        f'[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "{bucket}"\nprefix = "db"\n'
        f'endpoint_url = "{endpoint}"\naddressing_style = "path"\n'
    )
    return path


# --------------------------------------------------------------------------- byte identity


@pytest.mark.parametrize("shard_bytes", [1, sharded_import.SHARD_BYTES], ids=["a-shard-per-file", "one-shard"])
def test_dask_import_writes_the_single_process_manifest_on_the_filesystem(
    tmp_path: Path, client: Any, proteomes: list[Path], shard_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sharded_import, "SHARD_BYTES", shard_bytes)  # the plan is made in this process
    db = open_database(open_store(tmp_path / "dask"), "prot")
    result = db.import_files(proteomes, version="v1", created=CREATED, executor=client)
    assert result.manifest == single_process(tmp_path, proteomes)
    assert verify_store(db.store) == []


@pytest.mark.usefixtures("one_shard_per_file")
def test_dask_import_writes_the_single_process_manifest_on_s3(
    tmp_path: Path, client: Any, proteomes: list[Path], s3_endpoint: str, s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_TEST_SECRET_KEY)
    store = open_store(s3_config(tmp_path, s3_endpoint, s3_bucket))
    result = open_database(store, "prot").import_files(proteomes, version="v1", created=CREATED, executor=client)
    assert result.manifest == single_process(tmp_path, proteomes)
    assert verify_store(store, executor=client) == []


@pytest.mark.usefixtures("one_shard_per_file")
def test_a_second_version_reuses_the_first_versions_packs_as_a_single_process_would(
    tmp_path: Path, client: Any, proteomes: list[Path]
) -> None:
    expected_db = open_database(open_store(tmp_path / "single"), "prot")
    expected_db.import_files(proteomes[:2], version="v1", created=CREATED)
    expected = expected_db.import_files(proteomes, version="v2", created=CREATED + 1)
    db = open_database(open_store(tmp_path / "dask"), "prot")
    db.import_files(proteomes[:2], version="v1", created=CREATED)
    result = db.import_files(proteomes, version="v2", created=CREATED + 1, executor=client)
    assert result.reused_packs > 0  # the workers found the first version's sequences
    assert result.manifest == expected.manifest


# --------------------------------------------------------------------------- one large file in byte ranges


@pytest.fixture
def large_file(tmp_path: Path, proteomes: list[Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """The four proteomes as one file, cut into segments of 16 KB (the plan and the single-process
    import are made in this process; the workers get the size with the task)."""
    monkeypatch.setattr(importing, "SEGMENT_BYTES", 16 << 10)
    joined = tmp_path / "input" / "all.fasta"
    joined.write_bytes(b"".join(p.read_bytes() for p in proteomes))
    return joined


def test_a_large_file_is_cut_into_byte_range_shards_at_record_boundaries(large_file: Path) -> None:
    shards = sharded_import.plan_shards([str(large_file)], importing.SEGMENT_BYTES)
    data = large_file.read_bytes()
    assert len(shards) > 10 and [s.last for s in shards].count(True) == 1 and shards[-1].last
    assert all(s.span is not None and data[s.span.start : s.span.start + 1] == b">" for s in shards)
    assert [s.span.end for s in shards[:-1] if s.span] == [s.span.start for s in shards[1:] if s.span]


def test_byte_range_shards_write_the_single_process_manifest(
    tmp_path: Path, client: Any, large_file: Path, proteomes: list[Path]
) -> None:
    counting = InterruptedClient(client, stop_at=-1)
    db = open_database(open_store(tmp_path / "dask"), "prot")
    result = db.import_files([large_file, proteomes[0]], version="v1", created=CREATED, executor=counting)
    assert counting.shards > 10  # one per segment, then the small file
    assert result.manifest == single_process(tmp_path, [large_file, proteomes[0]])
    assert export_bytes(db) == large_file.read_bytes() + proteomes[0].read_bytes()
    assert verify_store(db.store) == []


def test_an_interrupted_client_resumes_in_the_middle_of_a_large_file(
    tmp_path: Path, client: Any, large_file: Path
) -> None:
    db = open_database(open_store(tmp_path / "dask"), "prot")
    with pytest.raises(KeyboardInterrupt):
        db.import_files([large_file], version="v1", created=CREATED, executor=InterruptedClient(client, 5))
    counting = InterruptedClient(client, stop_at=-1)
    result = db.import_files([large_file], version="v1", created=CREATED, executor=counting)
    assert counting.shards == len(sharded_import.plan_shards([str(large_file)], importing.SEGMENT_BYTES)) - 5
    assert result.manifest == single_process(tmp_path, [large_file])


def test_a_malformed_record_in_a_later_segment_is_named_with_its_line_in_the_file(
    tmp_path: Path, client: Any, large_file: Path
) -> None:
    lines = large_file.read_bytes().split(b"\n")
    bad_line = len(lines) - 3
    lines[bad_line - 1] = b"AC1DE"
    large_file.write_bytes(b"\n".join(lines))
    db = open_database(open_store(tmp_path / "dask"), "prot")
    with pytest.raises(InputFormatError, match=rf"all\.fasta:{bad_line}\b"):
        db.import_files([large_file], version="v1", executor=client)
    assert db.versions() == []


# --------------------------------------------------------------------------- failures on the way


class InterruptedClient:
    """A client that stops (as a killed client would) before submitting its ``stop_at``-th shard."""

    def __init__(self, client: Any, stop_at: int) -> None:
        self.client, self.stop_at, self.shards = client, stop_at, 0

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if fn is sharded_import.import_shard:
            if self.shards == self.stop_at:
                raise KeyboardInterrupt("client killed")
            self.shards += 1
        return self.client.submit(fn, *args, **kwargs)


@pytest.mark.usefixtures("one_shard_per_file")
def test_a_rerun_of_an_interrupted_client_resumes_after_the_finished_shards(
    tmp_path: Path, client: Any, proteomes: list[Path]
) -> None:
    db = open_database(open_store(tmp_path / "dask"), "prot")
    with pytest.raises(KeyboardInterrupt):
        db.import_files(proteomes, version="v1", created=CREATED, executor=InterruptedClient(client, 2))
    counting = InterruptedClient(client, stop_at=-1)
    result = db.import_files(proteomes, version="v1", created=CREATED, executor=counting)
    assert counting.shards == len(proteomes) - 2
    assert result.manifest == single_process(tmp_path, proteomes)
    assert db.store.states.list() == []  # the state, its notes with it, is gone once published


@pytest.mark.usefixtures("one_shard_per_file")
def test_resuming_a_dask_import_without_an_executor_is_refused(
    tmp_path: Path, client: Any, proteomes: list[Path]
) -> None:
    db = open_database(open_store(tmp_path / "dask"), "prot")
    with pytest.raises(KeyboardInterrupt):
        db.import_files(proteomes, version="v1", executor=InterruptedClient(client, 1))
    with pytest.raises(StorageError, match="begun with a Dask executor and is resumed without one"):
        db.import_files(proteomes, version="v1")
    assert db.versions() == []


def test_resuming_a_single_process_import_on_dask_is_refused(
    tmp_path: Path, client: Any, proteomes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = open_database(open_store(tmp_path / "single"), "prot")

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt("killed after the objects were written")

    monkeypatch.setattr(importing.ImportRun, "finish", killed)
    with pytest.raises(KeyboardInterrupt):
        db.import_files(proteomes, version="v1")
    monkeypatch.undo()
    with pytest.raises(StorageError, match="begun with no executor and is resumed with a Dask executor"):
        db.import_files(proteomes, version="v1", executor=client)
    assert db.versions() == []


def test_a_worker_killed_mid_shard_is_retried_and_the_manifest_is_unchanged(
    tmp_path: Path, client: Any
) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    files = [write_proteome(folder / f"b{n}.fasta", 12_000, 50 + n, [], 9000) for n in range(2)]
    db = open_database(open_store(tmp_path / "dask"), "prot")
    killed: list[str] = []

    def kill_the_shards_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for worker, keys in client.processing().items():
                if any(str(key).startswith("import_shard") for key in keys):
                    time.sleep(0.3)  # well inside the shard, which takes seconds
                    pid = client.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(worker)
                    return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_the_shards_worker)
    killer.start()
    result = db.import_files(files, version="v1", created=CREATED, executor=client)
    killer.join()
    assert killed, "the shard finished before it could be killed"
    assert result.manifest == single_process(tmp_path, files)
    assert verify_store(db.store) == []
    client.wait_for_workers(2, timeout=60)


# --------------------------------------------------------------------------- bad input


def test_a_malformed_file_on_a_worker_is_named_with_its_line(tmp_path: Path, client: Any) -> None:
    bad = tmp_path / "bad.fasta"
    bad.write_text(">ok\nACDE\n>bad\nAC1DE\n")
    db = open_database(open_store(tmp_path / "dask"), "prot")
    with pytest.raises(InputFormatError, match=r"bad\.fasta:4"):
        db.import_files([bad], version="v1", executor=client)
    assert db.versions() == []


def workers_open(monkeypatch: pytest.MonkeyPatch, other: StoreAddress) -> None:
    """The workers are sent ``other``'s location and settings, with the client's store.json digest."""

    def address_the_workers_see(store: Any) -> StoreAddress:
        return StoreAddress(other.config, address_of(store).meta, other.location)

    monkeypatch.setattr(database_module, "address_of", address_the_workers_see)


def test_a_worker_that_finds_another_store_stops_and_nothing_is_published(
    tmp_path: Path, client: Any, proteomes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = open_database(open_store(tmp_path / "client-store"), "prot")
    elsewhere = open_store(tmp_path / "workers-store")
    workers_open(monkeypatch, address_of(elsewhere))
    with pytest.raises(StorageError, match="finds another store at .* than the client's"):
        db.import_files(proteomes, version="v1", executor=client)
    assert db.versions() == []
    assert open_database(elsewhere, "prot").versions() == []
    assert list(elsewhere.enumerate_chunks()) == []


def test_a_worker_that_cannot_open_the_store_names_it(
    tmp_path: Path, client: Any, proteomes: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = open_database(open_store(tmp_path / "client-store"), "prot")
    workers_open(monkeypatch, address_of(open_store(tmp_path / "gone")))
    (tmp_path / "gone" / "store.json").unlink()
    with pytest.raises(StorageError, match="a Dask worker cannot open the store .*gone"):
        db.import_files(proteomes, version="v1", executor=client)
    assert db.versions() == []


def test_a_memory_store_cannot_be_shared_with_workers(client: Any, proteomes: list[Path]) -> None:
    db = open_database(open_store("memory://"), "prot")
    with pytest.raises(StorageError, match="cannot share a memory store"):
        db.import_files(proteomes, version="v1", executor=client)


def test_a_dead_scheduler_address_is_named() -> None:
    address = f"dask://127.0.0.1:{free_port()}"
    with pytest.raises(StorageError, match=f"no Dask scheduler answers at {address}"), open_executor(address, timeout=1):
        pass


# --------------------------------------------------------------------------- verify


def test_verify_on_workers_reports_what_verify_here_reports(
    tmp_path: Path, client: Any, proteomes: list[Path]
) -> None:
    store = open_store(tmp_path / "store")
    open_database(store, "prot").import_files(proteomes, version="v1")
    victim = min(info.hash for info in store.enumerate_chunks())
    (path,) = (tmp_path / "store").rglob(victim.to_hex() + "*")
    path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 1]))
    here = verify_store(store)
    assert [p.key for p in here] == [store.key_for(victim)]
    assert verify_store(store, executor=client) == here


# --------------------------------------------------------------------------- command line


def test_the_cli_imports_and_verifies_on_a_local_cluster(tmp_path: Path, proteomes: list[Path]) -> None:
    store = str(tmp_path / "store")
    imported = CliRunner().invoke(
        app, ["--store", store, "import", "-d", "prot", "--version", "v1", "--executor", "local:1", *map(str, proteomes)]
    )
    assert imported.exit_code == 0, imported.output
    assert "imported 1500 records into prot@v1" in imported.output
    verified = CliRunner().invoke(app, ["--store", store, "verify", "--executor", "local:1"])
    assert verified.exit_code == 0, verified.output
    assert "ok: no problems" in verified.output


def test_the_cli_refuses_an_unknown_executor_before_opening_the_store(tmp_path: Path, proteomes: list[Path]) -> None:
    store = tmp_path / "store"
    result = CliRunner().invoke(app, ["--store", str(store), "import", "-d", "prot", "--executor", "lcoal:2", str(proteomes[0])])
    assert result.exit_code != 0
    assert "executor 'lcoal:2' is neither dask://HOST:PORT nor local:N" in result.output
    assert not store.exists()
