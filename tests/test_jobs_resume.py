"""A job killed mid-step and run again: finished steps are skipped, the cut-off step resumes, edits re-run only what they touch.

The first run is a real ``talaria-storage run`` in a child process that
kills itself (SIGKILL) after a few object writes of the job's second step.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from talaria_storage import open_database, open_store
from talaria_storage.core.types import OperationType
from talaria_storage.jobs import load_job, run_job

# The child: run JOB with the CLI; once the step named KILL_STEP starts, SIGKILL itself just
# after KILL_AFTER objects are written (the same harness as tests/test_import_resume.py).
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from talaria_storage.cli.main import app
    from talaria_storage.jobs import steps
    from talaria_storage.storage.store import Store

    job, kill_step, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    armed = False
    written = 0
    original_run = steps.ImportStep.run

    def run(self, step, ctx, progress):
        global armed
        armed = step.name == kill_step
        return original_run(self, step, ctx, progress)

    original_store_chunk = Store.store_chunk

    def store_chunk(self, data, compress=True):
        global written
        h = original_store_chunk(self, data, compress)
        if armed:
            written += 1
            if written >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        return h

    steps.ImportStep.run = run
    Store.store_chunk = store_chunk
    app(["run", job], prog_name="talaria-storage")
    """
)

JOB = """\
[store]
location = "store"

[vars]
width = 60

[[step]]
name = "first"
kind = "import"
database = "small"
version = "v1"
files = ["small.fa"]

[[step]]
name = "second"
kind = "import"
database = "big"
version = "v1"
files = ["part1.fa", "part2.fa", "part3.fa", "part4.fa"]

[[step]]
name = "export"
kind = "export"
database = "big@v1"
output = "out/big.fa"
normalized = true
width = "${width}"
after = ["second"]

[[step]]
name = "verify"
kind = "verify"
after = ["export"]
"""


def _fasta(path: Path, records: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = []
    for i in range(records):
        seq = "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(rng.randint(60, 240)))
        lines.append(f">sp|Q{seed}{i:04d}|P{i}_TEST protein {i} OX={9606 + i % 3}\n")
        lines.extend(seq[j : j + 60] + "\n" for j in range(0, len(seq), 60))
    path.write_text("".join(lines))
    return path


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    _fasta(tmp_path / "small.fa", 30, 1)
    for n in range(1, 5):
        _fasta(tmp_path / f"part{n}.fa", 40, 10 + n)
    path = tmp_path / "job.toml"
    path.write_text(JOB)
    return path


def _log(job_file: Path) -> list[dict]:
    text = (job_file.parent / ".talaria-jobs" / "job" / "log.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_job_killed_in_its_second_step_resumes_it_and_skips_the_first(job_file: Path) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", CHILD, str(job_file), "second", "5"], check=False, capture_output=True, text=True
    )
    assert killed.returncode == -9, killed.stderr

    log = _log(job_file)
    first_end = next(e for e in log if e["event"] == "end" and e["step"] == "first")
    assert first_end["outcome"] == "ok"
    assert [e["event"] for e in log if e.get("step") == "second"] == ["start"]  # cut off: no end
    with open_store(job_file.parent / "store") as store:
        state = store.states.find("big", OperationType.IMPORT, None, "v1")
        assert state is not None and state.completed_chunks  # what the killed import stored
        assert store.refs.get("refs/big/v1") is None

    report = run_job(load_job(job_file))
    assert report.ok, report.to_dict()
    assert any("broke stale lock" in m for m in report.messages)  # the killed run's lock
    assert report.step("first").outcome == "skipped"
    skip = next(e for e in _log(job_file) if e["event"] == "skip" and e["step"] == "first")
    assert skip["fingerprint"] == first_end["fingerprint"]
    assert skip["reason"].startswith(f"fingerprint {first_end['fingerprint'][:8]}")
    second = report.step("second")
    assert second.verdict == "resume" and second.outcome == "ok"
    assert f"holds {len(state.completed_chunks)} stored object(s)" in second.reason
    assert [report.step(n).outcome for n in ("export", "verify")] == ["ok", "ok"]

    with open_store(job_file.parent / "store") as store:
        assert store.states.list() == []  # the resumed import finished and removed its state
        parts = b"".join((job_file.parent / f"part{n}.fa").read_bytes() for n in range(1, 5))
        out = job_file.parent / "exact.fa"
        with open(out, "wb") as handle:
            open_database(store, "big").export(handle)
        assert out.read_bytes() == parts


def test_a_finished_job_run_again_skips_every_step(job_file: Path) -> None:
    assert run_job(load_job(job_file)).ok
    again = run_job(load_job(job_file))
    assert [s.outcome for s in again.steps] == ["skipped"] * 4
    assert all(s.bytes == 0 for s in again.steps)


def test_editing_an_argument_of_step_three_reruns_only_it_and_the_steps_after_it(job_file: Path) -> None:
    assert run_job(load_job(job_file)).ok
    job_file.write_text(JOB.replace("width = 60", "width = 70"))
    report = run_job(load_job(job_file))
    assert [s.outcome for s in report.steps] == ["skipped", "skipped", "ok", "ok"]
    assert report.step("export").reason == "argument width changed (60 -> 70)"
    assert report.step("verify").reason == "step export (after) changed"
    lines = (job_file.parent / "out" / "big.fa").read_text().splitlines()
    assert max(len(line) for line in lines) == 70


def test_a_var_set_on_the_command_line_counts_as_an_edit(job_file: Path) -> None:
    assert run_job(load_job(job_file)).ok
    report = run_job(load_job(job_file, {"width": "80"}))
    assert [s.outcome for s in report.steps] == ["skipped", "skipped", "ok", "ok"]
