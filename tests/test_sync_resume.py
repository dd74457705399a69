"""A push SIGKILLed at random points and re-run: it completes, copies no verified object twice,
and the remote never holds a ref to a missing object.

The push runs in a child process whose backends count every call (local and remote together)
and send the process SIGKILL when the count reaches a number drawn from the test's seed: a
real kill at an arbitrary point, in any of the copying threads, with no timing involved.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sync_data import dangling, export, fasta, import_version
from talaria_storage.backends.filesystem import FilesystemBackend

from talaria_storage.core.keys import ref_key
from talaria_storage.storage.store import Store

V1 = fasta(160, seed=41)
V2 = V1 + fasta(40, seed=42, first=3000)

CHILD = textwrap.dedent(
    """
    import itertools, os, signal, sys, threading

    from talaria_storage.backends.faults import RequestCountingBackend
    from talaria_storage.backends.filesystem import FilesystemBackend
    from talaria_storage.storage.store import Store
    from talaria_storage.sync.protocol import push

    local_path, remote_path, log_path, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    calls = itertools.count(1)
    lock = threading.Lock()
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)


    class KillAt(RequestCountingBackend):
        # Counts every call to the wrapped backend and SIGKILLs this process at call number kill_at.
        def _count(self, method, key=None, batch=0):
            super()._count(method, key, batch)
            with lock:
                n = next(calls)
            if n == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)


    class Watched(KillAt):
        # Logs every object write; DUP when the object was already there (a verified copy redone).
        def put_if_absent(self, key, data):
            if key.startswith(("chunks/", "manifests/")):
                seen = self.inner.exists(key)
                os.write(log, f"{'DUP' if seen else 'PUT'} {key}\\n".encode())
            return super().put_if_absent(key, data)


    # fsync off: a SIGKILL loses nothing the page cache holds; power loss is not under test.
    local = Store(KillAt(FilesystemBackend(local_path, fsync=False)))
    remote = Store(Watched(FilesystemBackend(remote_path, fsync=False)))
    push(local, remote, threads=4)
    print(next(calls) - 1)
    """
)


def run_push(tmp_path: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "local"), str(tmp_path / "remote"),
         str(tmp_path / "writes.log"), str(kill_at)],
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture
def local(tmp_path: Path) -> Store:
    store = Store(FilesystemBackend(tmp_path / "local"))
    store.initialise()
    import_version(store, "db", V1, "v1", tmp_path)
    import_version(store, "db", V2, "v2", tmp_path)
    return store


@pytest.fixture
def calls_of_a_whole_push(tmp_path_factory: pytest.TempPathFactory) -> int:
    """How many backend calls an uninterrupted push of the same data makes (kill points are drawn below it)."""
    folder = tmp_path_factory.mktemp("calibration")
    store = Store(FilesystemBackend(folder / "local"))
    store.initialise()
    import_version(store, "db", V1, "v1", folder)
    import_version(store, "db", V2, "v2", folder)
    done = run_push(folder, kill_at=0)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_push_killed_at_random_points_resumes_to_completion(
    seed: int, local: Store, tmp_path: Path, calls_of_a_whole_push: int
) -> None:
    rng = random.Random(seed)
    remote = Store(FilesystemBackend(tmp_path / "remote"))
    kills = 0
    for _ in range(2):
        run = run_push(tmp_path, kill_at=rng.randint(1, calls_of_a_whole_push))
        if run.returncode == 0:
            break
        assert run.returncode == -signal.SIGKILL, run.stderr
        kills += 1
        assert dangling(remote) == []  # at every kill point
    final = run_push(tmp_path, kill_at=0)
    assert final.returncode == 0, final.stderr

    writes = (tmp_path / "writes.log").read_text().split("\n")
    assert [w for w in writes if w.startswith("DUP")] == []
    assert kills >= 1
    assert remote.refs.get(ref_key("db", "HEAD")) == local.refs.get(ref_key("db", "HEAD"))
    assert export(remote, "db") == V2 and export(remote, "db", "v1") == V1
    assert remote.verify_all() == []
    assert local.states.list() == []
