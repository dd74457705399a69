"""A many-writer stress run against one store: imports, taxonomy imports, gc, readers and a sync.

Writers, a collector, readers and a syncer run as separate processes for a
while against one store; with ``kills``, the harness also sends SIGKILL to
random writers at random times and starts each again, re-running the import it
was killed in. Afterwards it checks what the store promises (docs/concurrency.md):

* every version a writer reported as published exports byte-exact (the SHA-256
  of the export equals that of the file imported);
* every killed import completed when re-run;
* ``verify`` is clean on the store and on the sync destination: no corrupt or
  missing object, no ref to a missing object;
* no reader got a wrong byte or an error, and no gc reported an object it
  removed from under a writer.

Each process appends its events to its own JSON-lines log (one line, flushed,
per event), so a writer killed mid-way leaves every event before its death and
no process shares a lock another can die holding. The test suite runs it
short (``tests/test_concurrency_stress.py``); ``benchmarks/bench_concurrency.py``
runs it long and writes the counts to ``benchmarks/README.md``.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import random
import signal
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from talaria_storage.backends.faults import FaultInjectingBackend
from talaria_storage.core.errors import InputFormatError, RefConflict
from talaria_storage.core.keys import REFS
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.sequences.database import open_database
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.sequences.taxonomy_store import TaxonomyCatalog
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.registry import open_backend
from talaria_storage.storage.store import Store
from talaria_storage.sync.protocol import push

#: The writers: (role, database). Two share a database, so their publishes race.
WRITERS: tuple[tuple[str, str], ...] = (("a", "shared"), ("b", "shared"), ("c", "own"), ("tax", ""))
RELEASES = 6
BAD_INPUT = b">broken\nACGT\n\x00\x01 not a sequence file\n"


@dataclass(frozen=True)
class StoreSpec:
    """How a process opens the store: a location, backend options, environment, freshening age."""

    location: str
    options: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    freshen_after: float = 1.0

    def open(self, pause_before_stat: float = 0.0) -> Store:
        os.environ.update(self.env)
        backend = open_backend(self.location, dict(self.options))
        if pause_before_stat:
            backend = FaultInjectingBackend(backend, latency_seconds=pause_before_stat, operations={"stat_many"})
        store = Store(backend, threads=2, freshen_after=self.freshen_after)
        store.initialise()
        return store


@dataclass(frozen=True)
class StressPlan:
    """One run: the store, an optional sync destination, a work folder, how long and how hard."""

    store: StoreSpec
    workdir: Path
    seconds: float
    grace_seconds: float
    mirror: StoreSpec | None = None
    kills: bool = False
    readers: int = 1
    seed: int = 0
    #: How long the gc process waits before each sweep batch's stat (a slow link to the store):
    #: it widens the window between gc's last mark and its delete, in which a writer that does
    #: not freshen what it re-uses loses it, so the run can catch that race.
    gc_pause_seconds: float = 0.3


@dataclass
class StressReport:
    """What the run did and every anomaly it saw (a line naming the process and what went wrong)."""

    published: int = 0
    taxonomies: int = 0
    imports_failed_on_purpose: int = 0
    reads: int = 0
    collections: int = 0
    objects_collected: int = 0
    syncs: int = 0
    kills: int = 0
    reruns_completed: int = 0
    anomalies: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.published} versions and {self.taxonomies} taxdumps published, "
            f"{self.imports_failed_on_purpose} imports failed on purpose, {self.reads} reads, "
            f"{self.collections} gc runs ({self.objects_collected} objects collected), {self.syncs} syncs, "
            f"{self.kills} kills ({self.reruns_completed} re-runs completed), {len(self.anomalies)} anomalies"
        )


# -- inputs -------------------------------------------------------------------------------------


def write_inputs(workdir: Path, seed: int = 0) -> None:
    """Releases of one protein set that share most records (so imports re-use each other's
    objects), a broken file, and a taxdump, in ``workdir``."""
    rng = random.Random(seed)
    residues = "ACDEFGHIKLMNPQRSTVWY"
    base = ["".join(rng.choice(residues) for _ in range(rng.randint(60, 400))) for _ in range(300)]
    workdir.mkdir(parents=True, exist_ok=True)
    for k in range(RELEASES):
        records = [(f"sp|Q{i:05d}|P{i}_STRESS", seq) for i, seq in enumerate(base) if (i + k) % 7]
        records += [(f"sp|N{k}{j:04d}|NEW{j}_R{k}", seq[::-1]) for j, seq in enumerate(base[: 20 * k])]
        path = workdir / f"release-{k}.fa"
        path.write_text("".join(f">{name} release {k}\n{seq}\n" for name, seq in records))
    (workdir / "broken.fa").write_bytes(BAD_INPUT)
    dump = workdir / "taxdump"
    dump.mkdir(exist_ok=True)
    (dump / "nodes.dmp").write_text("1\t|\t1\t|\tno rank\t|\n562\t|\t1\t|\tspecies\t|\n")
    (dump / "names.dmp").write_text("562\t|\tEscherichia coli\t|\t\t|\tscientific name\t|\n")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _record_ids(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text().splitlines()
    return [(lines[i][1:].split()[0], lines[i + 1]) for i in range(0, len(lines), 2)]


# -- the processes ------------------------------------------------------------------------------


class _Log:
    """One process's append-only event log."""

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as the process

    def __call__(self, event: str, **fields: Any) -> None:
        self._handle.write(json.dumps({"event": event, "at": time.time(), **fields}) + "\n")
        self._handle.flush()


def _writer(plan: StressPlan, role: str, database: str, incarnation: int, rerun: dict[str, Any] | None) -> None:
    log = _Log(plan.workdir / f"log-{role}-{incarnation}.jsonl")
    rng = random.Random(f"{plan.seed}-{role}-{incarnation}")
    releases = sorted(plan.workdir.glob("release-*.fa"))
    store = plan.store.open()
    deadline = time.time() + plan.seconds
    task = 0
    while True:
        if rerun is not None:
            job, rerun = rerun, None
        elif time.time() >= deadline:
            break
        else:
            task += 1
            job = {"version": f"{role}{incarnation}-{task}", "file": str(rng.choice(releases)),
                   "broken": role != "tax" and rng.random() < 0.15}
        log("start", **job)
        try:
            _run_job(plan, store, role, database, job, log)
        except Exception as exc:  # noqa: BLE001 - every error is an anomaly, reported with its trace
            log("anomaly", message=f"writer {role} on {job['version']}: {exc!r}", trace=traceback.format_exc())
        else:
            log("done", version=job["version"])
        time.sleep(rng.uniform(0.2, 0.6) if role == "tax" else rng.uniform(0.0, 0.3))
    store.close()


def _run_job(plan: StressPlan, store: Store, role: str, database: str, job: dict[str, Any], log: _Log) -> None:
    """One writer task: a taxdump import, an import that fails on a broken file, or an import."""
    if role == "tax":
        TaxonomyCatalog(store).import_taxdump(plan.workdir / "taxdump", job["version"])
        log("published", **job)
    elif job["broken"]:
        try:
            open_database(store, database).import_files(
                [Path(job["file"]), plan.workdir / "broken.fa"], version=job["version"]
            )
        except InputFormatError:
            log("failed-on-purpose", **job)
        else:
            log("anomaly", message=f"writer {role}: an import of a broken file was published", **job)
    else:
        result = open_database(store, database).import_files([Path(job["file"])], version=job["version"])
        log("published", database=database, sha256=_digest(Path(job["file"])),
            manifest=result.manifest.to_hex(), **job)


def _collector(plan: StressPlan) -> None:
    log = _Log(plan.workdir / "log-gc.jsonl")
    store = plan.store.open(pause_before_stat=plan.gc_pause_seconds)
    deadline = time.time() + plan.seconds
    while time.time() < deadline:
        try:
            result = collect_garbage(store, grace_seconds=plan.grace_seconds)
            log("collected", removed=result.removed)
        except Exception as exc:  # noqa: BLE001
            log("anomaly", message=f"gc: {exc}", trace=traceback.format_exc())
        time.sleep(0.2)
    store.close()


def _reader(plan: StressPlan, number: int) -> None:
    log = _Log(plan.workdir / f"log-reader-{number}.jsonl")
    rng = random.Random(f"{plan.seed}-reader-{number}")
    by_digest = {_digest(p): p for p in plan.workdir.glob("release-*.fa")}
    ids = {digest: _record_ids(path) for digest, path in by_digest.items()}
    store = plan.store.open()
    catalog = VersionCatalog(store)
    deadline = time.time() + plan.seconds
    reads = 0
    while time.time() < deadline:
        names = [
            (parts[1], parts[2])
            for parts in (key.split("/") for key in store.refs.list(REFS))
            if len(parts) == 3 and parts[2] != "HEAD"
        ]
        if not names:
            time.sleep(0.1)
            continue
        database, version = rng.choice(names)
        try:
            _, manifest = catalog.resolve(database, version)
            digest = manifest.sources[0].sha256
            db = open_database(store, database)
            if rng.random() < 0.3:
                out = io.BytesIO()
                db.export(out, version=version)
                if hashlib.sha256(out.getvalue()).hexdigest() != digest:
                    log("anomaly", message=f"reader: export of {database}@{version} differs from its input")
            else:
                name, seq = rng.choice(ids[digest])
                if db.get(name, version=version).seq != seq:
                    log("anomaly", message=f"reader: {database}@{version}[{name}] has wrong residues")
            reads += 1
        except Exception as exc:  # noqa: BLE001
            log("anomaly", message=f"reader on {database}@{version}: {exc!r}", trace=traceback.format_exc())
        if reads % 20 == 0:
            log("reads", count=reads)
    log("reads", count=reads)
    store.close()


def _syncer(plan: StressPlan) -> None:
    assert plan.mirror is not None
    log = _Log(plan.workdir / "log-sync.jsonl")
    local, remote = plan.store.open(), plan.mirror.open()
    deadline = time.time() + plan.seconds
    while time.time() < deadline:
        names = VersionCatalog(local).databases()
        if "shared" in names:
            try:
                push(local, remote, ["shared"])
                log("synced")
            except RefConflict as exc:  # a writer moved HEAD during the push: sync says so; next turn retries
                log("sync-retry", message=str(exc))
            except Exception as exc:  # noqa: BLE001
                log("anomaly", message=f"sync push: {exc!r}", trace=traceback.format_exc())
        time.sleep(0.3)
    local.close()
    remote.close()


# -- the harness --------------------------------------------------------------------------------


def run_stress(plan: StressPlan) -> StressReport:
    """Run ``plan`` (see the module docstring) and check the store afterwards."""
    write_inputs(plan.workdir, plan.seed)
    _seed_old_orphans(plan)
    context = multiprocessing.get_context("spawn")
    procs: dict[str, multiprocessing.process.BaseProcess] = {}
    incarnations = dict.fromkeys((role for role, _ in WRITERS), 0)

    def start(name: str, target: Any, *args: Any) -> None:
        proc = context.Process(target=target, args=(plan, *args), name=name, daemon=False)
        proc.start()
        procs[name] = proc

    for role, database in WRITERS:
        start(f"writer-{role}", _writer, role, database, 0, None)
    start("gc", _collector)
    for number in range(plan.readers):
        start(f"reader-{number}", _reader, number)
    if plan.mirror is not None:
        start("sync", _syncer)

    rng = random.Random(plan.seed)
    kills = 0
    killed_jobs: set[str] = set()
    pending: dict[str, dict[str, Any] | None] = dict.fromkeys(incarnations)
    deadline = time.time() + plan.seconds
    while plan.kills and time.time() < deadline - 1:
        time.sleep(rng.uniform(0.5, 2.0))
        role, database = rng.choice(WRITERS)
        proc = procs[f"writer-{role}"]
        if not proc.is_alive():
            continue
        log = plan.workdir / f"log-{role}-{incarnations[role]}.jsonl"
        aim = time.time() + 2.0  # most kills land mid-import: wait (briefly) for one to be running
        while time.time() < aim and _unfinished_task(log, pending[role]) is None:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
        proc.join()
        kills += 1
        unfinished = _unfinished_task(plan.workdir / f"log-{role}-{incarnations[role]}.jsonl", pending[role])
        if unfinished is not None:
            killed_jobs.add(unfinished["version"])
        pending[role] = unfinished
        incarnations[role] += 1
        start(f"writer-{role}", _writer, role, database, incarnations[role], unfinished)
    for proc in procs.values():
        proc.join(timeout=plan.seconds + 300)
        if proc.is_alive():
            proc.kill()
    report = _tally(plan, kills, killed_jobs)
    _check_store(plan, report)
    return report


def _seed_old_orphans(plan: StressPlan) -> None:
    """Imports that failed long ago: every release's objects stored, unreferenced, and older than
    the grace period by the time writers re-use them, which is what gc deletes."""
    store = plan.store.open()
    for index, path in enumerate(sorted(plan.workdir.glob("release-*.fa"))):
        try:
            open_database(store, "shared").import_files([path, plan.workdir / "broken.fa"], version=f"seed-{index}")
        except InputFormatError:
            pass
    store.close()
    time.sleep(min(plan.grace_seconds + 0.5, plan.seconds / 3))


def _unfinished_task(log_path: Path, handed: dict[str, Any] | None) -> dict[str, Any] | None:
    """The job a killed writer had started and not finished, to re-run as it was; ``handed`` is
    the re-run it was started with, still owed when it was killed before it began that."""
    last = handed
    for event in _events(log_path):
        if event["event"] == "start":
            last = {k: event[k] for k in ("version", "file", "broken")}
        elif event["event"] in ("done", "anomaly"):
            last = None
    return last


def _events(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        try:
            yield json.loads(line)
        except ValueError:
            continue  # the line a kill cut short


def _tally(plan: StressPlan, kills: int, killed_jobs: set[str]) -> StressReport:
    report = StressReport(kills=kills)
    done: set[str] = set()
    for path in sorted(plan.workdir.glob("log-*.jsonl")):
        reads = 0
        for event in _events(path):
            kind = event["event"]
            if kind == "anomaly":
                report.anomalies.append(f"{path.stem[4:]}: {event['message']}")
            elif kind == "published":
                if "database" in event:
                    report.published += 1
                else:
                    report.taxonomies += 1
            elif kind == "failed-on-purpose":
                report.imports_failed_on_purpose += 1
            elif kind == "done":
                done.add(event["version"])
            elif kind == "collected":
                report.collections += 1
                report.objects_collected += event["removed"]
            elif kind == "synced":
                report.syncs += 1
            elif kind == "reads":
                reads = event["count"]  # each reader logs its running count
        report.reads += reads
    report.reruns_completed = len(killed_jobs & done)
    for version in sorted(killed_jobs - done):
        report.anomalies.append(f"the import {version}, killed, did not complete when re-run")
    return report


def _check_store(plan: StressPlan, report: StressReport) -> None:
    store = plan.store.open()
    try:
        for path in sorted(plan.workdir.glob("log-*.jsonl")):
            for event in _events(path):
                if event["event"] != "published":
                    continue
                if "database" not in event:
                    if event["version"] not in {v.version for v in TaxonomyCatalog(store).versions()}:
                        report.anomalies.append(f"taxonomy {event['version']} was reported published but is not listed")
                    continue
                spec = f"{event['database']}@{event['version']}"
                out = io.BytesIO()
                try:
                    open_database(store, event["database"]).export(out, version=event["version"])
                except Exception as exc:  # noqa: BLE001
                    report.anomalies.append(f"{spec} was reported published but does not export: {exc}")
                    continue
                if hashlib.sha256(out.getvalue()).hexdigest() != event["sha256"]:
                    report.anomalies.append(f"{spec} exports other bytes than its input")
        for problem in verify_store(store):
            report.anomalies.append(f"verify: {problem.key}: {problem.message}")
    finally:
        store.close()
    if plan.mirror is not None:
        mirror = plan.mirror.open()
        try:
            for problem in verify_store(mirror):
                report.anomalies.append(f"verify (sync destination): {problem.key}: {problem.message}")
        finally:
            mirror.close()
