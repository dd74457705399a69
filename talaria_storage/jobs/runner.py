"""Running a job: decide each step's verdict from its fingerprint, then run, skip or resume it.

For each step, in the job's order (:mod:`.schema`), just before it would run:

1. its fingerprint is computed (:mod:`.fingerprint`) from its arguments, its
   inputs as they are *now* (after the steps before it ran) and the
   fingerprints of the steps it runs ``after``;
2. the verdict (STYLE.md §11: decide, show, then act):

   ``skip``    the log (:mod:`.log`) records this fingerprint as finished
               *and* the outputs recorded then still exist;
   ``resume``  it must run, and an earlier run left processing state that the
               step continues from (an import's or a sync's ``state/``);
   ``run``     otherwise, with the reason: never run, what changed
               (``input r2.fasta changed``), an output gone, ``--force``;
   ``blocked`` a step it runs after failed or was blocked: it does not run,
               and neither do its dependents; every other step still runs;

3. the step runs through the Python API (:mod:`.steps`); its start and end go
   to the log with fingerprint, outcome, bytes and seconds.

``--dry-run`` decides verdicts without running anything or writing anything
(no lock, no log line, no digest cache): a step after one that would run is
reported ``run`` ("after X, which would run"), as its inputs would change.
``--force`` runs every selected step. ``--from NAME`` selects NAME and every
step after it, ``--only NAME`` that step alone; unselected steps are left
alone, and a selected step that runs after one uses that step's last finished
fingerprint (blocked if it never finished). ``--force`` combines with both.

A run holds the job's lock (:mod:`.lock`) from the first step to the last.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from talaria_storage.config.open_store import open_store
from talaria_storage.config.settings import config_for_location, load_config
from talaria_storage.core.errors import StorageError
from talaria_storage.jobs.fingerprint import FileDigests, Fingerprint, explain_change, fingerprint
from talaria_storage.jobs.lock import JobLock
from talaria_storage.jobs.log import JobLog, StepHistory
from talaria_storage.jobs.schema import STEP_ARGS, Job, JobFileError, Role, StepSpec
from talaria_storage.jobs.steps import KIND_RUNNERS, StepContext

if TYPE_CHECKING:
    from talaria_storage.config.settings import StorageConfig
    from talaria_storage.storage.store import Store

__all__ = ["JobReport", "RunObserver", "RunOptions", "SilentObserver", "StepReport", "run_job"]

#: Errors that fail one step (the job goes on); anything else is a bug and propagates.
STEP_ERRORS: tuple[type[BaseException], ...] = (StorageError, OSError, ValueError)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The flags of ``talaria-storage run`` (and the global ``--store``/``--config``, which win over the job's)."""

    dry_run: bool = False
    force: bool = False
    start_from: str | None = None
    only: str | None = None
    store_location: str | None = None
    config_path: str | None = None


@dataclass
class StepReport:
    """One step's verdict and outcome in one run."""

    name: str
    kind: str
    number: int  # 1-based, in execution order
    verdict: str = ""  # run, resume, skip, blocked, not selected
    reason: str = ""
    outcome: str = ""  # ok, failed, skipped, blocked, not selected; in a dry run: would run / would skip ...
    fingerprint: str | None = None
    bytes: int = 0
    seconds: float = 0.0
    summary: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "kind", "number", "verdict", "reason", "outcome",
                                               "fingerprint", "bytes", "seconds", "summary", "error")}


@dataclass
class JobReport:
    """What a run did (or, in a dry run, would do), step by step."""

    job: str
    run: str
    dry_run: bool
    steps: list[StepReport] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(s.outcome in ("failed", "blocked") for s in self.steps)

    def step(self, name: str) -> StepReport:
        return next(s for s in self.steps if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "run": self.run, "dry_run": self.dry_run, "ok": self.ok,
                "seconds": round(self.seconds, 3), "messages": list(self.messages),
                "steps": [s.to_dict() for s in self.steps]}


class RunObserver(Protocol):
    """Who watches a run (the CLI's progress display); every method is a notification."""

    def begin(self, job: Job, selected: int) -> None: ...

    def message(self, text: str) -> None: ...

    def step_started(self, report: StepReport) -> None: ...

    def step_progress(self, name: str, advance: int, total: int | None) -> None: ...

    def step_finished(self, report: StepReport) -> None: ...


class SilentObserver:
    """An observer that shows nothing (the Python API's default)."""

    def begin(self, job: Job, selected: int) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def step_started(self, report: StepReport) -> None:
        pass

    def step_progress(self, name: str, advance: int, total: int | None) -> None:
        pass

    def step_finished(self, report: StepReport) -> None:
        pass


def _one_line(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


def _selected(job: Job, options: RunOptions) -> set[str]:
    names = [s.name for s in job.steps]
    if options.only is not None and options.start_from is not None:
        raise JobFileError("choose --only or --from, not both", key="--only")
    for flag, name in (("--only", options.only), ("--from", options.start_from)):
        if name is not None and name not in names:
            raise JobFileError(f"{flag} '{name}' names no step of {job.where}: steps are {', '.join(names)}", key=flag)
    if options.only is not None:
        return {options.only}
    if options.start_from is not None:
        return set(names[names.index(options.start_from):])
    return set(names)


def _open(job: Job, options: RunOptions, report: JobReport) -> tuple[Store | None, StorageConfig, str | None]:
    location = options.store_location or job.store.location
    config_path = options.config_path or job.store.config
    if location is None and config_path is None:
        raise JobFileError(
            f"{job.where}: the job names no store: add [store] location = \"./store\" or config = \"storage.toml\", "
            "or pass --store", file=job.where,
        )
    overrides = dict(job.store.overrides)
    if location is not None:
        config = config_for_location(location, config_path=config_path, **overrides)
    else:
        config = load_config(config_path, **overrides)
    if not options.dry_run:
        return open_store(config, create=True), config, config_path
    try:
        return open_store(config, create=False), config, config_path
    except StorageError as exc:  # a dry run creates nothing: judge against an empty store
        report.messages.append(f"store {config.location} cannot be opened ({_one_line(exc)}): judged as empty")
        return None, config, config_path


def _fingerprint_args(step: StepSpec, ctx: StepContext) -> dict[str, Any]:
    """The step's arguments, paths made relative to the job's folder (see :mod:`.fingerprint`)."""
    args: dict[str, Any] = {}
    for name, value in step.args.items():
        role = STEP_ARGS[step.kind][name].role
        is_path = role in (Role.INPUT, Role.INPUT_DIR, Role.OUTPUT) or (
            role == Role.TAXON_SOURCE and value not in ("header", "none")
        )
        if is_path and value is not None:
            value = tuple(ctx.relative(v) for v in value) if isinstance(value, tuple) else ctx.relative(value)
        args[name] = value
    return args


class _Run:
    """One run of a job (see the module docstring)."""

    def __init__(self, job: Job, options: RunOptions, observer: RunObserver) -> None:
        self.job = job
        self.options = options
        self.observer = observer
        self.report = JobReport(job.where, uuid.uuid4().hex[:12], options.dry_run)
        self.log = JobLog(job.state_dir / "log.jsonl")
        self.history: dict[str, StepHistory] = {}
        self.fingerprints: dict[str, str] = {}
        self.status: dict[str, str] = {}  # step -> ok | failed | blocked | would run | unfinished

    def note(self, text: str) -> None:
        self.report.messages.append(text)
        self.observer.message(text)

    def write(self, event: dict[str, Any]) -> None:
        if not self.options.dry_run:
            self.log.append({"run": self.report.run, **event})

    # -- the whole run ---------------------------------------------------------------------------

    def execute(self) -> JobReport:
        started = time.perf_counter()
        selected = _selected(self.job, self.options)
        lock = JobLock(self.job.state_dir / "lock")
        if not self.options.dry_run:
            broke = lock.acquire()
            if broke:
                self.note(broke)
        try:
            self.history = self.log.history()
            store, config, config_path = _open(self.job, self.options, self.report)
            digests = FileDigests(None if self.options.dry_run else self.job.state_dir / "digests.json")
            ctx = StepContext(store, config, config_path, digests, self.job.path.parent)
            self.write({"event": "job-start", "job": self.job.where, "store": config.location,
                        "selected": sorted(selected), "force": self.options.force})
            self.observer.begin(self.job, len(selected))
            try:
                for number, step in enumerate(self.job.steps, start=1):
                    report = StepReport(step.name, step.kind, number)
                    self.report.steps.append(report)
                    if step.name in selected:
                        self.step(step, report, ctx)
                    else:
                        self.unselected(step, report)
                    if not self.options.dry_run:
                        digests.save()
            finally:
                ctx.close()
                if store is not None:
                    store.close()
            self.report.seconds = time.perf_counter() - started
            self.write({"event": "job-end", "outcome": "ok" if self.report.ok else "failed",
                        "seconds": round(self.report.seconds, 3)})
        finally:
            if not self.options.dry_run:
                lock.release()
        return self.report

    # -- one step ---------------------------------------------------------------------------------

    def unselected(self, step: StepSpec, report: StepReport) -> None:
        last = self.history.get(step.name)
        finished = last.last_finished if last is not None else None
        report.verdict = report.outcome = "not selected"
        if finished is not None:
            self.fingerprints[step.name] = str(finished.get("fingerprint"))
            self.status[step.name] = "ok"
            report.reason = f"last finished {finished.get('time')}"
        else:
            self.status[step.name] = "unfinished"
            report.reason = "never finished"
        self.observer.step_finished(report)

    def step(self, step: StepSpec, report: StepReport, ctx: StepContext) -> None:
        dry = self.options.dry_run
        blockers = [d for d in step.after if self.status.get(d) not in ("ok", "would run")]
        if blockers:
            word = {"failed": "failed", "blocked": "is blocked", "unfinished": "has never finished"}
            other = blockers[0]
            report.verdict = report.outcome = "blocked"
            report.reason = f"after {other}, which {word.get(self.status.get(other, ''), 'did not finish')}"
            self.status[step.name] = "blocked"
            self.write({"event": "blocked", "step": step.name, "kind": step.kind, "reason": report.reason})
            self.observer.step_finished(report)
            return
        waiting = [d for d in step.after if self.status.get(d) == "would run"]
        if dry and waiting:
            report.verdict, report.outcome = "run", "would run"
            report.reason = f"after {waiting[0]}, which would run"
            self.status[step.name] = "would run"
            self.observer.step_finished(report)
            return
        runner = KIND_RUNNERS[step.kind]
        try:
            inputs = runner.inputs(step, ctx)
            fp = fingerprint(step.kind, _fingerprint_args(step, ctx), inputs,
                             {d: self.fingerprints[d] for d in step.after})
            report.fingerprint = fp.digest
            self.fingerprints[step.name] = fp.digest
            report.verdict, report.reason = self.decide(step, fp, ctx)
        except STEP_ERRORS as exc:
            report.verdict, report.reason = "run", "its inputs could not be read"
            self.failed(step, report, exc)
            return
        if report.verdict == "skip":
            report.outcome = "would skip" if dry else "skipped"
            self.status[step.name] = "ok"
            self.write({"event": "skip", "step": step.name, "kind": step.kind, "fingerprint": fp.digest,
                        "reason": report.reason})
            self.observer.step_finished(report)
            return
        if dry:
            report.outcome = f"would {report.verdict}"
            self.status[step.name] = "would run"
            self.observer.step_finished(report)
            return
        self.write({"event": "start", "step": step.name, "kind": step.kind, "fingerprint": fp.digest,
                    "verdict": report.verdict, "reason": report.reason})
        self.observer.step_started(report)
        started = time.perf_counter()
        try:
            result = runner.run(step, ctx, lambda n, total: self.observer.step_progress(step.name, n, total))
        except STEP_ERRORS as exc:
            report.seconds = time.perf_counter() - started
            self.failed(step, report, exc)
            return
        except BaseException as exc:  # a bug or an interrupt: record it, then let it through
            self.write({"event": "end", "step": step.name, "kind": step.kind, "fingerprint": fp.digest,
                        "outcome": "failed", "error": _one_line(exc),
                        "seconds": round(time.perf_counter() - started, 3)})
            raise
        report.seconds = time.perf_counter() - started
        report.outcome, report.bytes, report.summary = "ok", result.bytes, result.summary
        self.status[step.name] = "ok"
        self.write({"event": "end", "step": step.name, "kind": step.kind, "fingerprint": fp.digest,
                    "outcome": "ok", "bytes": result.bytes, "seconds": round(report.seconds, 3),
                    "summary": result.summary, "outputs": result.outputs, "parts": dict(fp.parts)})
        self.observer.step_finished(report)

    def failed(self, step: StepSpec, report: StepReport, exc: BaseException) -> None:
        report.outcome, report.error = "failed", _one_line(exc)
        self.status[step.name] = "failed"
        self.write({"event": "end", "step": step.name, "kind": step.kind, "fingerprint": report.fingerprint,
                    "outcome": "failed", "error": report.error, "seconds": round(report.seconds, 3)})
        self.observer.step_finished(report)

    def decide(self, step: StepSpec, fp: Fingerprint, ctx: StepContext) -> tuple[str, str]:
        """(verdict, reason) for a selected step that is free to run (see the module docstring)."""
        runner = KIND_RUNNERS[step.kind]
        history = self.history.get(step.name)
        if self.options.force:
            reason = "--force"
        else:
            finished = history.finished_with(fp.digest) if history is not None else None
            if finished is not None:
                missing = runner.missing_output(step, ctx, _mapping(finished.get("outputs")))
                when = finished.get("time", "?")
                if missing is None:
                    return "skip", f"fingerprint {fp.short} finished {when}"
                reason = f"fingerprint {fp.short} finished {when}, but {missing}"
            elif history is not None and history.cut_off is not None and history.cut_off.get("fingerprint") == fp.digest:
                reason = f"cut off at {history.cut_off.get('time')} (run {history.cut_off.get('run')})"
            elif history is not None and history.last_finished is not None:
                reason = explain_change(_mapping(history.last_finished.get("parts")), fp.parts)
            else:
                reason = "never run"
        pending = runner.pending(step, ctx)
        if pending is not None:
            return "resume", f"{reason}; resuming from {pending}"
        return "run", reason


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def run_job(job: Job, options: RunOptions | None = None, observer: RunObserver | None = None) -> JobReport:
    """Run (or with ``options.dry_run`` judge) ``job``; the report says what each step did.

    Raises :class:`JobFileError` for bad flags, :class:`~talaria_storage.jobs.lock.JobLocked`
    when another run holds the job, and :class:`StorageError` when the store cannot be
    opened. A failed step does not raise: it is in the report (``report.ok`` is False).
    """
    return _Run(job, options or RunOptions(), observer or SilentObserver()).execute()
