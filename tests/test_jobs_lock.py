"""The job lock: a second run refuses naming the holder; a stale lock is broken with a message."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from talaria_storage.cli.common import EXIT_FAILURE
from talaria_storage.cli.main import app
from talaria_storage.jobs import JobLocked, RunOptions, load_job, run_job
from talaria_storage.jobs.lock import JobLock

JOB = '[store]\nlocation = "store"\n\n[[step]]\nname = "check"\nkind = "verify"\n'

# The child: take the job's lock, say so, and hold it until stdin closes.
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from talaria_storage.jobs.lock import JobLock
    lock = JobLock(Path(sys.argv[1]))
    lock.acquire()
    print("locked", flush=True)
    sys.stdin.read()
    lock.release()
    """
)


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(JOB)
    return path


def lock_path(job_file: Path) -> Path:
    return job_file.parent / ".talaria-jobs" / "job" / "lock"


@pytest.fixture
def holder(job_file: Path) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_path(job_file))], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    yield child
    assert child.stdin is not None
    child.stdin.close()
    child.wait()


def write_lock(job_file: Path, **fields: object) -> None:
    now = time.time()
    data = {"pid": 1, "host": socket.gethostname(), "started": now, "heartbeat": now, "token": "x", **fields}
    path = lock_path(job_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_run_refuses_naming_the_holders_pid_and_host(job_file: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(JobLocked) as caught:
        run_job(load_job(job_file))
    assert f"pid {holder.pid} on host {socket.gethostname()}" in str(caught.value)
    assert caught.value.holder.pid == holder.pid


def test_the_cli_refuses_a_locked_job_in_one_line(job_file: Path, holder: subprocess.Popen[str]) -> None:
    result = CliRunner().invoke(app, ["run", str(job_file)])
    assert result.exit_code == EXIT_FAILURE
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: job is already running: pid ")


def test_a_lock_left_by_a_dead_process_is_broken_with_a_message(job_file: Path) -> None:
    pid = dead_pid()
    write_lock(job_file, pid=pid)
    report = run_job(load_job(job_file))
    assert report.ok
    assert report.messages[0].startswith(f"broke stale lock of pid {pid} on host {socket.gethostname()} "
                                         f"(pid {pid} is not running)")
    assert not lock_path(job_file).exists()  # released at the end


def test_a_lock_from_another_host_with_an_old_heartbeat_is_stale(job_file: Path) -> None:
    write_lock(job_file, host="elsewhere.example", heartbeat=time.time() - 3600)
    report = run_job(load_job(job_file))
    assert "on host elsewhere.example (its heartbeat is 60 min ago" in report.messages[0]


def test_a_lock_from_another_host_with_a_fresh_heartbeat_is_held(job_file: Path) -> None:
    write_lock(job_file, host="elsewhere.example")
    with pytest.raises(JobLocked, match="pid 1 on host elsewhere.example"):
        run_job(load_job(job_file))


def test_the_heartbeat_is_rewritten_while_the_lock_is_held(tmp_path: Path) -> None:
    lock = JobLock(tmp_path / "lock", heartbeat_seconds=0.01)
    lock.acquire()
    try:
        first = lock.holder()
        assert first is not None
        for _ in range(500):  # wait for a beat (no timing asserted: only that one comes)
            current = lock.holder()
            if current is not None and current.heartbeat > first.heartbeat:
                break
            time.sleep(0.01)
        assert current is not None and current.heartbeat > first.heartbeat and current.token == first.token
    finally:
        lock.release()
    assert lock.holder() is None


def test_a_dry_run_takes_no_lock(job_file: Path, holder: subprocess.Popen[str]) -> None:
    assert run_job(load_job(job_file), RunOptions(dry_run=True)).steps[0].outcome == "would run"
