"""``talaria-storage run JOB.toml``: run a batch job (docs/jobs.md; the engine is :mod:`talaria_storage.jobs`).

Progress goes to stderr: on a terminal, a rich bar over the job's steps and
one for the running step (bytes, when the step reports them); otherwise one
plain line per step verdict and outcome, for logs. The report goes to
stdout: a table, or JSON with ``--json``. Exit code 1 when any step failed
or was blocked (the steps that did not depend on it still ran), or when
another run holds the job's lock; 2 for a bad job file or a bad flag.

The global ``--store`` and ``--config`` win over the job's ``[store]`` and
``config``, as arguments win over files everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from talaria_storage.cli.common import EXIT_FAILURE, JsonOption, emit_json, human_bytes, state
from talaria_storage.jobs import RunOptions, load_job, parse_assignments, run_job
from talaria_storage.jobs.runner import JobReport, StepReport
from talaria_storage.jobs.schema import Job

if TYPE_CHECKING:
    from typing_extensions import Self

commands = typer.Typer()


def _line(report: StepReport, total: int) -> str:
    head = f"[{report.number}/{total}] {report.name} ({report.kind})"
    if report.outcome in ("ok", "failed"):
        took = f" in {report.seconds:.1f}s" + (f", {human_bytes(report.bytes)}" if report.bytes else "")
        tail = report.summary if report.outcome == "ok" else f"error: {report.error}"
        return f"{head}: {report.outcome}{took}: {tail}"
    return f"{head}: {report.verdict}: {report.reason}" + (f": error: {report.error}" if report.error else "")


class PlainProgress:
    """One line per step on stderr, for logs and pipes."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False, soft_wrap=True)
        self.total = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def begin(self, job: Job, selected: int) -> None:
        self.total = len(job.steps)

    def message(self, text: str) -> None:
        self.console.print(text, markup=False)

    def step_started(self, report: StepReport) -> None:
        self.console.print(_line(report, self.total), markup=False)

    def step_progress(self, name: str, advance: int, total: int | None) -> None:
        pass

    def step_finished(self, report: StepReport) -> None:
        self.console.print(_line(report, self.total), markup=False)


class RichProgress(PlainProgress):
    """An overall bar over the steps and a bar for the running one; step lines printed above them."""

    def __enter__(self) -> Self:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(
            TextColumn("[progress.description]{task.description}"), BarColumn(),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=self.console, transient=True,
        )
        self.bars.__enter__()
        self.overall: Any = None
        self.current: Any = None
        self.done = 0
        self.moved = 0
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def begin(self, job: Job, selected: int) -> None:
        super().begin(job, selected)
        self.overall = self.bars.add_task(f"job {job.name}", total=len(job.steps), detail=f"0/{self.total} steps")

    def step_started(self, report: StepReport) -> None:
        super().step_started(report)
        self.moved = 0
        self.current = self.bars.add_task(f"  {report.name}", total=None, detail="")

    def step_progress(self, name: str, advance: int, total: int | None) -> None:
        if self.current is not None:
            self.moved += advance
            shown = human_bytes(self.moved) + (f" of {human_bytes(total)}" if total else "")
            self.bars.update(self.current, completed=self.moved, total=total, detail=shown)

    def step_finished(self, report: StepReport) -> None:
        if self.current is not None:
            self.bars.remove_task(self.current)
            self.current = None
        super().step_finished(report)
        if self.overall is not None:
            self.done += 1
            self.bars.update(self.overall, completed=self.done, detail=f"{self.done}/{self.total} steps")


def _print_report(report: JobReport) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    what = "dry run of" if report.dry_run else "run of"
    table = Table(title=Text(f"{what} {report.job}"))
    for column in ("#", "step", "kind", "outcome", "why", "bytes", "seconds"):
        table.add_column(column, justify="right" if column in ("#", "bytes", "seconds") else "left")
    for s in report.steps:
        why = s.error if s.error else s.reason
        table.add_row(str(s.number), Text(s.name), s.kind, s.outcome, Text(why or ""),
                      human_bytes(s.bytes) if s.bytes else "", f"{s.seconds:.1f}" if s.seconds else "")
    Console(highlight=False, width=160).print(table)


@commands.command("run")
def run(
    ctx: typer.Context,
    job_file: Annotated[Path, typer.Argument(metavar="JOB", help="The job file (see docs/jobs.md).")],
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="NAME=VALUE", help="Set a ${NAME} var (wins over the job file's vars); repeatable."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print each step's verdict and why; run and write nothing.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Run every selected step, finished or not.")] = False,
    start_from: Annotated[
        str | None, typer.Option("--from", metavar="NAME", help="Start at this step (it and every later one).")
    ] = None,
    only: Annotated[str | None, typer.Option("--only", metavar="NAME", help="Run this step only.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Run a TOML batch job: skip finished steps, resume cut-off ones, run the rest."""
    st = state(ctx)
    job = load_job(job_file, parse_assignments(assignments or []))
    options = RunOptions(
        dry_run=dry_run, force=force, start_from=start_from, only=only,
        store_location=st.store_location, config_path=str(st.config_path) if st.config_path else None,
    )
    from rich.console import Console

    display = RichProgress() if Console(stderr=True).is_terminal else PlainProgress()
    with display:
        report = run_job(job, options, display)  # JobLocked: a StorageError, one line and exit 1
    if json_output:
        emit_json(report.to_dict())
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(EXIT_FAILURE)
