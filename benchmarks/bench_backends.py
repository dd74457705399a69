"""Backend throughput (1 MiB objects) and small-object latency (1 KiB), as ratios to the filesystem backend.

What it measures, per backend, in one process and one run:

* put / get throughput of ``--pieces`` objects of 1 MiB, written and read one
  after the other on one thread (MB/s, best of ``--runs`` passes);
* median put / get latency of ``--small`` objects of 1 KiB (milliseconds),
  written as ``state/`` keys: the filesystem and RocksDB backends sync
  those to disk on every write, as they do for refs;
* each figure divided by the filesystem backend's figure from the same run
  (throughput: higher is better; latency: lower is better).

Objects are random bytes: stored chunks are already compressed by their
codec, so no backend gets to compress them again.

Backends: ``filesystem`` (fsync per object, as the store always runs it),
``memory``, ``rocksdb``, and ``s3`` / ``gcs`` / ``azure`` through the test
emulators (moto, fake-gcs-server, Azurite) started on 127.0.0.1 for the run
and stopped afterwards. **Emulator figures say little about real clouds**:
they measure a local dev server (moto is a single-threaded Python/werkzeug
app, Azurite a single node process) plus the SDK's client-side cost, with no
network latency, no TLS and no server-side durability. Use them to spot a
regression in the client code, never to choose a cloud or size a job.

Run:  .venv/bin/python benchmarks/bench_backends.py [--pieces 32] [--small 200] [--backends s3,rocksdb]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.storage.backend import Backend
from talaria_storage.testing import emulators

PIECE = 1 << 20
SMALL = 1 << 10
ALL_BACKENDS = ("filesystem", "memory", "rocksdb", "s3", "gcs", "azure")


@dataclass
class Result:
    """One backend's figures (None when the backend could not be measured)."""

    name: str
    put_mbs: float | None = None
    get_mbs: float | None = None
    put_ms: float | None = None
    get_ms: float | None = None
    note: str = ""


def best_of(runs: int, fn: Callable[[int], None]) -> float:
    """The shortest wall time of ``runs`` calls of ``fn(run_index)``."""
    best = float("inf")
    for run in range(runs):
        start = time.perf_counter()
        fn(run)
        best = min(best, time.perf_counter() - start)
    return best


def measure(
    name: str, backend: Backend, pieces: list[bytes], smalls: list[bytes], runs: int
) -> Result:
    """Throughput over ``pieces`` and median latency over ``smalls`` on a fresh, empty ``backend``."""
    mb = sum(map(len, pieces)) / 1e6
    keys = [[f"chunks/{run:02x}{i:062x}" for i in range(len(pieces))] for run in range(runs)]

    def put_all(run: int) -> None:
        for key, data in zip(keys[run], pieces):
            backend.put(key, data)

    def get_all(run: int) -> None:
        for key in keys[run]:
            backend.get(key)

    put_s = best_of(runs, put_all)
    get_s = best_of(runs, get_all)

    put_lat: list[float] = []
    get_lat: list[float] = []
    small_keys = [f"state/bench-{i}" for i in range(len(smalls))]
    for key, data in zip(small_keys, smalls):
        start = time.perf_counter()
        backend.put(key, data)
        put_lat.append(time.perf_counter() - start)
    for key in small_keys:
        start = time.perf_counter()
        backend.get(key)
        get_lat.append(time.perf_counter() - start)
    return Result(
        name,
        put_mbs=mb / put_s,
        get_mbs=mb / get_s,
        put_ms=statistics.median(put_lat) * 1e3,
        get_ms=statistics.median(get_lat) * 1e3,
    )


@contextmanager
def open_backend(name: str, work: Path) -> Iterator[Backend]:
    """A fresh, empty backend of kind ``name`` (starting its emulator if it needs one)."""
    with ExitStack() as stack:
        if name == "filesystem":
            backend: Backend = FilesystemBackend(work / "fs")
        elif name == "memory":
            backend = MemoryBackend()
        elif name == "rocksdb":
            from talaria_storage.backends.rocksdb import RocksDBBackend

            backend = RocksDBBackend(work / "rocks")
        elif name == "s3":
            from talaria_storage.backends.s3 import S3Backend

            endpoint = stack.enter_context(emulators.moto_server(work))
            session = emulators.s3_test_session()
            bucket = f"b-{uuid.uuid4().hex[:12]}"
            session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
            options = {
                **emulators.S3_TEST_OPTIONS,
                "multipart_threshold_mb": 64,
                "multipart_chunksize_mb": 16,
            }
            backend = S3Backend(bucket, "bench", endpoint_url=endpoint, session=session, **options)
        elif name == "gcs":
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage
            from talaria_storage.backends.gcs import GCSBackend

            endpoint = stack.enter_context(emulators.fake_gcs_server(work))
            bucket = f"b-{uuid.uuid4().hex[:12]}"
            admin = storage.Client(
                project="bench",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": endpoint},
            )
            admin.create_bucket(bucket)
            admin.close()
            backend = GCSBackend(
                bucket, "bench", endpoint_url=endpoint, **emulators.GCS_TEST_OPTIONS
            )
        elif name == "azure":
            from azure.storage.blob import BlobServiceClient
            from talaria_storage.backends.azure import AzureBackend

            connection = stack.enter_context(emulators.azurite_server(work))
            container = f"b-{uuid.uuid4().hex[:12]}"
            with BlobServiceClient.from_connection_string(connection) as admin:
                admin.create_container(container)
            options = {
                **emulators.AZURE_TEST_OPTIONS,
                "max_single_put_size_mb": 64,
                "max_block_size_mb": 8,
            }
            backend = AzureBackend(container, "bench", connection_string=connection, **options)
        else:
            raise SystemExit(f"unknown backend '{name}': use {', '.join(ALL_BACKENDS)}")
        stack.callback(backend.close)
        yield backend


def _cell(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ratio(value: float | None, base: float | None, *, lower_is_better: bool = False) -> str:
    if value is None or not base:
        return "n/a"
    ratio = base / value if lower_is_better else value / base
    return f"{ratio:.0f}x" if ratio >= 100 else f"{ratio:.3g}x"


def table(results: list[Result]) -> str:
    """The results as a markdown table; ratios are to the filesystem row (1.00x = as fast)."""
    base = next((r for r in results if r.name == "filesystem"), None)
    header = (
        "| backend | put MB/s | get MB/s | put vs fs | get vs fs | 1 KiB put ms | 1 KiB get ms "
        "| put latency vs fs | get latency vs fs | note |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        put_base, get_base = (base.put_mbs, base.get_mbs) if base else (None, None)
        put_ms_base, get_ms_base = (base.put_ms, base.get_ms) if base else (None, None)
        lines.append(
            f"| {r.name} | {_cell(r.put_mbs)} | {_cell(r.get_mbs)} "
            f"| {_ratio(r.put_mbs, put_base)} | {_ratio(r.get_mbs, get_base)} "
            f"| {_cell(r.put_ms, 3)} | {_cell(r.get_ms, 3)} "
            f"| {_ratio(r.put_ms, put_ms_base, lower_is_better=True)} "
            f"| {_ratio(r.get_ms, get_ms_base, lower_is_better=True)} | {r.note} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, default=32, help="1 MiB objects per throughput pass")
    parser.add_argument(
        "--small", type=int, default=200, help="1 KiB objects for the latency figures"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="throughput passes; the best one counts"
    )
    parser.add_argument("--backends", default=",".join(ALL_BACKENDS), help="comma-separated subset")
    args = parser.parse_args()
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    if "filesystem" not in names:
        names.insert(0, "filesystem")  # every ratio is to it

    pieces = [os.urandom(PIECE) for _ in range(args.pieces)]
    smalls = [os.urandom(SMALL) for _ in range(args.small)]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        for name in names:
            work = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{name}-"))
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            try:
                with open_backend(name, work) as backend:
                    results.append(measure(name, backend, pieces, smalls, args.runs))
            except (emulators.EmulatorUnavailable, ImportError) as exc:
                results.append(Result(name, note=f"skipped: {exc}"))
    print(
        f"\n{args.pieces} x 1 MiB (best of {args.runs}) and {args.small} x 1 KiB, one thread; "
        "emulator rows measure local dev servers, not clouds.\n"
    )
    print(table(results))


if __name__ == "__main__":
    main()
