"""``talaria-storage reduce``: reduce a version to references, and read the profiles that makes.

``reduce --database D[@V] --profile P (--identity F | --ratio F)`` makes or
replaces a profile; ``reduce list``, ``reduce show P``, ``reduce delete P``
and ``reduce expand P ID...`` read and manage them. The reduction itself is
:mod:`talaria_storage.reduction.building`.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from talaria_storage.cli.common import (
    DatabaseOption,
    JsonOption,
    database_spec,
    emit_json,
    human_bytes,
    state,
)
from talaria_storage.formats.fasta import write_records
from talaria_storage.reduction.building import (
    RANKS,
    ReductionResult,
    reduce_database,
    selection_parameters,
)
from talaria_storage.reduction.profile import ReductionProfile
from talaria_storage.sequences.database import open_database

reduce_app = typer.Typer(
    help="Reduce a database version to references (as CD-HIT does), and expand them back.",
    no_args_is_help=False,
    invoke_without_command=True,
)

ProfileOption = Annotated[str, typer.Option("--profile", "-p", metavar="NAME", help="Reduction profile name.")]


@reduce_app.callback()
def reduce(
    ctx: typer.Context,
    database: Annotated[
        str | None, typer.Option("--database", "-d", metavar="NAME[@VERSION]", help="Database (and version) to reduce.")
    ] = None,
    profile: Annotated[str | None, typer.Option("--profile", "-p", metavar="NAME", help="Profile to make or replace.")] = None,
    identity: Annotated[
        float | None, typer.Option("--identity", metavar="F", help="No two references more alike than F (default 0.9).")
    ] = None,
    ratio: Annotated[
        float | None, typer.Option("--ratio", metavar="F", help="Instead of --identity: keep about this fraction.")
    ] = None,
    coverage: Annotated[
        float, typer.Option("--coverage", metavar="F", help="A member's aligned fraction of its length.")
    ] = 0.8,
    taxonomy_aware: Annotated[
        bool, typer.Option("--taxonomy-aware", help="A member joins only a reference of its own taxon.")
    ] = False,
    rank: Annotated[
        str | None,
        typer.Option("--rank", metavar="RANK", help=f"With --taxonomy-aware: compare taxa at this rank ({', '.join(RANKS[:6])}, ...)."),
    ] = None,
    update: Annotated[
        bool, typer.Option("--update", help="Keep the profile's references; assign only what is new.")
    ] = False,
    processes: Annotated[
        int | None, typer.Option("--processes", min=0, metavar="N", help="Worker processes (default: one per core).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Reduce a database version to representatives; without a sub-command, make the profile."""
    if ctx.invoked_subcommand is not None:
        return
    if database is None or profile is None:
        raise typer.BadParameter("reduce needs --database and --profile (or a sub-command: list, show, expand, delete)")
    parameters = selection_parameters(identity, ratio, coverage, taxonomy_aware)
    name, version = database_spec(database)
    db = open_database(state(ctx).store(), name)
    with _ReduceProgress(quiet=json_output) as progress:
        result = reduce_database(
            db, profile, parameters, version=version, rank=rank, update=update, processes=processes, progress=progress
        )
    if json_output:
        emit_json(result.to_dict())
        return
    _print_summary(result)


def _print_summary(result: ReductionResult) -> None:
    verb = "unchanged" if result.unchanged else "published"
    typer.echo(
        f"{verb} profile '{result.profile}' of {result.database}@{result.version}: "
        f"{result.references:,} references, {result.members:,} members of {result.sequences:,} sequences "
        f"({result.records:,} records); kept {result.kept_fraction:.1%} at identity {result.identity:g}"
    )
    typer.echo(
        f"member residues {human_bytes(result.member_residues)} -> deltas {human_bytes(result.delta_bytes)}; "
        f"{result.seconds:.1f} s; manifest {result.manifest.to_hex()}"
    )


class _ReduceProgress:
    """A transient rich progress bar per step of the reduction (on stderr; nothing with --json)."""

    def __init__(self, *, quiet: bool) -> None:
        self._quiet = quiet or not sys.stderr.isatty()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> _ReduceProgress:
        if not self._quiet:
            from rich.console import Console  # rich loads only when a bar is drawn
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._bar = Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=Console(stderr=True), transient=True,
            )
            self._bar.__enter__()
        return self

    def __call__(self, step: str, done: int, total: int) -> None:
        if self._bar is None:
            return
        task = self._tasks.get(step)
        if task is None:
            task = self._tasks[step] = self._bar.add_task(step, total=total)
        self._bar.update(task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


@reduce_app.command("list")
def list_profiles(ctx: typer.Context, database: DatabaseOption, json_output: JsonOption = False) -> None:
    """List a database's reduction profiles."""
    db = open_database(state(ctx).store(), database)
    rows = [ReductionProfile(db, name).summary() for name in db.store.reductions.profiles(database)]
    if json_output:
        emit_json(rows)
        return
    if not rows:
        typer.echo(f"database '{database}' has no reduction profiles")
    for row in rows:
        stats = row["statistics"]
        typer.echo(
            f"{row['profile']}\t{row['version']}\t{stats.get('references', 0):,} references\t"
            f"{stats.get('members', 0):,} members\tidentity {row['parameters'].get('identity_used')}"
        )


@reduce_app.command("show")
def show(ctx: typer.Context, profile: Annotated[str, typer.Argument(metavar="PROFILE")], database: DatabaseOption, json_output: JsonOption = False) -> None:
    """Show one profile: its version, parameters and statistics."""
    db = open_database(state(ctx).store(), database)
    summary = ReductionProfile(db, profile).summary()
    if json_output:
        emit_json(summary)
        return
    for key in ("database", "profile", "version", "manifest", "tool_version", "delta_chunks"):
        typer.echo(f"{key}: {summary[key]}")
    for group in ("parameters", "statistics"):
        typer.echo(f"{group}:")
        for key, value in sorted(summary[group].items()):
            typer.echo(f"  {key}: {value}")


@reduce_app.command("delete")
def delete(ctx: typer.Context, profile: Annotated[str, typer.Argument(metavar="PROFILE")], database: DatabaseOption) -> None:
    """Delete a profile (its objects go at the next gc)."""
    store = state(ctx).store()
    store.reductions.require(database, profile)  # ProfileNotFound names the known ones
    store.delete_reduction_profile(database, profile)
    typer.echo(f"deleted profile '{profile}' of '{database}'")


@reduce_app.command("expand")
def expand(
    ctx: typer.Context,
    identifiers: Annotated[list[str], typer.Argument(metavar="ID...", help="Accessions or digests of search hits.")],
    database: DatabaseOption,
    profile: ProfileOption,
    fasta: Annotated[bool, typer.Option("--fasta", help="Write the members' records, not their ids.")] = False,
    json_output: JsonOption = False,
) -> None:
    """List what each reference stands for (itself first), or write those records with --fasta."""
    db = open_database(state(ctx).store(), database)
    reduction = ReductionProfile(db, profile)
    if fasta:
        for identifier in identifiers:
            write_records(reduction.expand(identifier), sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    found = {identifier: reduction.members_of(identifier) for identifier in identifiers}
    if json_output:
        emit_json(found)
        return
    for identifier, members in found.items():
        typer.echo("\t".join([identifier, *members]))
