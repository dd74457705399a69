"""The Dask cluster an import or a verify runs on: a running scheduler's address, or a local cluster.

``dask://HOST:PORT`` (``tcp://`` too) connects to a scheduler started with
``dask scheduler`` and its workers (``dask worker HOST:PORT``), each of which
must reach the store at the location the client names. ``local:N`` starts
``distributed.LocalCluster`` with N worker processes on this machine, one
thread each: the work is CPU-bound Python, and threads of one process would
share one interpreter lock.

Dask is the optional extra ``talaria-storage[dask]``; it is imported when
an executor is asked for, so an install without it runs everything else.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from talaria_storage.core.errors import ConfigError, MissingExtra, StorageError

_LOCAL = re.compile(r"^local:(\d+)$")
SCHEDULER_TIMEOUT = 10.0  # seconds to wait for a scheduler to answer
LARGE_ARGUMENT = 64 << 10  # bytes from which a sub-task's argument is sent to a worker directly


def _distributed() -> Any:
    try:
        return importlib.import_module("distributed")
    except ImportError:
        raise MissingExtra("--executor needs Dask distributed: install talaria-storage[dask]") from None


def check_executor_spec(spec: str) -> str:
    """``spec`` unchanged when it names an executor this module can open; else a one-line error."""
    if _LOCAL.match(spec) and int(spec.split(":")[1]) >= 1:
        return spec
    if spec.startswith(("dask://", "tcp://")) and len(spec.split("://", 1)[1]) > 0:
        return spec
    raise ConfigError(f"executor {spec!r} is neither dask://HOST:PORT nor local:N (N >= 1 worker processes)")


@contextmanager
def open_executor(spec: str, *, timeout: float = SCHEDULER_TIMEOUT) -> Iterator[Any]:
    """A ``distributed.Client`` for ``spec`` (see the module docstring), closed on exit;
    a local cluster it started is shut down with it."""
    check_executor_spec(spec)
    distributed = _distributed()
    local = _LOCAL.match(spec)
    if local:
        cluster = distributed.LocalCluster(
            n_workers=int(local.group(1)), threads_per_worker=1, processes=True,
            host="127.0.0.1", dashboard_address="127.0.0.1:0",  # loopback only, any free port
        )
        with cluster, distributed.Client(cluster) as client:
            yield client
        return
    address = "tcp://" + spec.split("://", 1)[1]
    try:
        client = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise StorageError(
            f"no Dask scheduler answers at {spec} ({type(exc).__name__}): start one with 'dask scheduler' "
            "and its workers with 'dask worker', or use --executor local:N"
        ) from None
    with client:
        yield client


class ClusterPool:
    """The cluster as a pool of workers for the sub-tasks of a task running on it.

    ``submit`` has the signature of :meth:`concurrent.futures.Executor.submit`,
    so an :class:`~talaria_storage.sequences.importing.ImportRun` sends its
    parse and encode tasks here as it would to its own process pool. Their
    large arguments (pieces of input, chunks to encode) go straight to a
    peer worker (``scatter(direct=True)``), and results come straight back,
    never through the scheduler, which would otherwise forward every byte
    of the input twice. Every task is impure: two equal pieces are two tasks.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, fn: Any, /, *args: Any) -> _PeerFuture:
        sent = [self.client.scatter(a, direct=True, hash=False) if _large(a) else a for a in args]
        return _PeerFuture(self.client, self.client.submit(fn, *sent, pure=False))

    def workers(self) -> int:
        """Worker threads the cluster has now (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))


def _large(value: Any) -> bool:
    """Worth sending apart from the task: bytes, or a tuple of columns (an encode task)."""
    if isinstance(value, bytes | bytearray):
        return len(value) > LARGE_ARGUMENT
    return isinstance(value, tuple) and sum(len(v) for v in value if isinstance(v, bytes)) > LARGE_ARGUMENT


class _PeerFuture:
    """A sub-task's future whose result is fetched from the worker that holds it."""

    def __init__(self, client: Any, future: Any) -> None:
        self.client, self.future = client, future

    def result(self, timeout: float | None = None) -> Any:
        return self.client.gather(self.future, direct=True)


@contextmanager
def cluster_pool() -> Iterator[ClusterPool]:
    """Inside a task on a Dask worker: the cluster, for the task's own sub-tasks.

    The task leaves its worker's thread pool meanwhile (``worker_client``),
    so a worker with one thread runs the sub-tasks too instead of waiting
    for itself.
    """
    with _distributed().worker_client(separate_thread=True) as client:
        yield ClusterPool(client)
