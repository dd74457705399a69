"""``talaria-storage optimize``: what the store holds, what each strategy would save, and doing it.

Without options it runs the default strategies (deduplication, compression,
repacking, gc) and prints, as ``restic prune`` does, a table per strategy of
objects and bytes used, unused, to repack, to delete and to keep, with what
it wrote and saved, then the verification of what changed. ``--dry-run``
prints the same table, estimated, and writes nothing; ``--analyze`` prints
what the store holds and the estimate; ``--report FILE.html`` also writes a
self-contained page of plots (extra ``report``). Strategies and their
terms: :mod:`talaria_storage.optimization.strategies`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from talaria_storage.cli.common import EXIT_FAILURE, JsonOption, emit_json, state
from talaria_storage.optimization.optimizer import OptimizationReport, StorageOptimizer
from talaria_storage.optimization.report import COLUMNS, human_bytes, table_rows, write_html
from talaria_storage.optimization.strategies import DEFAULT_STRATEGIES, OptimizeOptions, parse_strategy

commands = typer.Typer()


def _print_table(console: Console, report: OptimizationReport, title: str) -> None:
    table = Table(title=Text(title))
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for row in table_rows(report):
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)
    for row in report.rows:
        console.print(Text(f"{row.strategy}: {'; '.join(row.notes)}"))


@commands.command()
def optimize(
    ctx: typer.Context,
    analyze: Annotated[
        bool, typer.Option("--analyze", help="Print what the store holds and the estimate; change nothing.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the estimated table; write nothing.")] = False,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy",
            metavar="S",
            help="Run these strategies, in this order: deduplication, compression, repacking, caching, gc "
            "(default: deduplication compression repacking gc).",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="FILE.html", help="Also write a self-contained HTML page of plots."),
    ] = None,
    grace: Annotated[
        float, typer.Option("--grace", min=0.0, metavar="SECONDS", help="gc spares objects younger than this.")
    ] = 3600.0,
    min_gain: Annotated[
        float,
        typer.Option("--min-gain", metavar="FRACTION", help="Recompress at a better level only if it saves this much."),
    ] = 0.10,
    repack_fraction: Annotated[
        float,
        typer.Option("--repack-fraction", metavar="FRACTION", help="Merge packs below this fraction of the target size."),
    ] = 0.5,
    json_output: JsonOption = False,
) -> None:
    """Deduplicate, recompress and repack the store's objects, then collect what they replaced."""
    chosen = tuple(parse_strategy(name) for name in strategy) if strategy else DEFAULT_STRATEGIES
    options = OptimizeOptions(
        strategies=chosen, dry_run=dry_run or analyze, grace_seconds=grace, min_gain=min_gain,
        repack_fraction=repack_fraction,
    )
    store = state(ctx).store()
    optimizer = StorageOptimizer(store)
    before = optimizer.analyze()
    result = optimizer.optimize(options)
    after = optimizer.analyze() if not options.dry_run else None
    if report is not None:
        estimate = result if options.dry_run else None
        write_html(report, before, estimate=estimate, achieved=None if options.dry_run else result, after=after)
    problems = result.verification.get("problems", [])
    if json_output:
        data = result.to_dict()
        if analyze:
            data["analysis"] = before.to_dict()
        if report is not None:
            data["report"] = str(report)
        emit_json(data)
    else:
        # A pipe gets the whole table on one line per strategy, not cells wrapped to 80 columns.
        console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
        if analyze:
            console.print(
                Text(
                    f"{store.location}: {len(before.objects)} objects, {human_bytes(before.total_bytes)}; "
                    f"used {before.used_objects} ({human_bytes(before.used_bytes)}), unused "
                    f"{len(before.unused_keys)} ({human_bytes(before.unused_bytes)}); {len(before.versions)} "
                    f"version(s), {len(before.packs)} sequence pack(s)"
                )
            )
            for kind, size in before.bytes_by_kind().items():
                console.print(Text(f"  {kind}: {human_bytes(size)}"))
        title = "estimate (dry run: nothing written)" if options.dry_run else "optimize"
        _print_table(console, result, f"{title} {store.location}")
        if not options.dry_run:
            verdict = "clean" if not problems else f"{len(problems)} problem(s)"
            console.print(
                Text(
                    f"verify: {result.verification.get('objects_checked', 0)} written object(s) and "
                    f"{result.verification.get('versions_checked', 0)} version(s) checked: {verdict}"
                )
            )
            for problem in problems:
                console.print(Text(f"  {problem}"))
        if report is not None:
            console.print(Text(f"report written to {report}"))
    if problems:
        raise typer.Exit(EXIT_FAILURE)
