"""``talaria-storage state``: list and clean the state of resumable operations.

A killed import or sync leaves its progress under ``state/`` so a re-run
continues where it stopped (:mod:`talaria_storage.storage.processing`). Finished
operations remove their own state; ``state clean`` removes what interrupted
operations left behind and will not resume. While a state exists, the
objects it lists are spared by GC, so cleaning a state that a running
operation still uses only costs that operation its resumability.

Mounted on the main app by :mod:`talaria_storage.cli.main`.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from talaria_storage.cli.common import JsonOption, emit_json, state
from talaria_storage.core.types import ProcessingState

state_app = typer.Typer(help="List and clean the state of resumable operations.", no_args_is_help=True)

#: States not updated for this long are stale enough for a plain ``state clean`` (one week).
DEFAULT_CLEAN_HOURS = 168.0


def _as_dict(state: ProcessingState) -> dict[str, Any]:
    return {
        "operation_id": state.operation_id,
        "operation": state.operation.value,
        "database": state.database,
        "manifest_version": state.manifest_version,
        "manifest_hash": None if state.manifest_hash is None else state.manifest_hash.to_hex(),
        "source": state.source_info.source,
        "completed": len(state.completed_chunks),
        "total": state.total_chunks,
        "started": state.started,
        "updated": state.updated,
    }


def _age(seconds: float) -> str:
    """A duration as a short human string (``45s``, ``12m``, ``3.5h``, ``2.0d``)."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


@state_app.command("list")
def state_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the unfinished operations whose state is kept in the store (oldest first)."""
    store = state(ctx).store()
    states = store.states.list()
    if json_output:
        emit_json([_as_dict(s) for s in states])
        return
    if not states:
        typer.echo(f"no unfinished operations in {store.location}")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    now = time.time()
    table = Table(title=Text(f"unfinished operations in {store.location}"))
    # The id comes whole on one line (it is what a user copies) and starts with the operation's
    # name, so the operation needs no column of its own; the other columns give way on a narrow terminal.
    table.add_column("id", no_wrap=True, min_width=max(len(s.operation_id) for s in states))
    for column in ("database", "version", "done", "updated"):
        table.add_column(column, justify="right" if column in ("done", "updated") else "left", overflow="fold")
    for s in states:
        table.add_row(
            Text(s.operation_id),
            Text(s.database),
            Text(s.manifest_version or "-"),
            f"{len(s.completed_chunks)}/{s.total_chunks}",
            f"{_age(now - s.updated)} ago",
        )
    Console(highlight=False).print(table)


@state_app.command("clean")
def state_clean(
    ctx: typer.Context,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            metavar="HOURS",
            min=0.0,
            help=f"Remove states not updated for HOURS (default {DEFAULT_CLEAN_HOURS:g}, one week).",
        ),
    ] = None,
    all_states: Annotated[
        bool,
        typer.Option("--all", help="Remove every state, however recent (their operations restart from scratch)."),
    ] = False,
    operation: Annotated[
        str | None,
        typer.Option("--operation", metavar="ID", help="Remove this one state (an id 'state list' shows)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Remove the state of interrupted operations that will not be resumed."""
    if all_states and older_than is not None:
        raise typer.BadParameter("give --older-than or --all, not both", param_hint="--all")
    store = state(ctx).store()
    if operation is not None:
        if all_states or older_than is not None:
            raise typer.BadParameter("give --operation alone", param_hint="--operation")
        found = store.states.get(operation) is not None
        store.states.complete(operation)
        if json_output:
            emit_json({"location": store.location, "removed": [operation] if found else []})
            return
        typer.echo(f"removed {operation}" if found else f"no state {operation} in {store.location}")
        return
    hours = 0.0 if all_states else (DEFAULT_CLEAN_HOURS if older_than is None else older_than)
    removed = store.states.expire(hours * 3600.0)  # 0 removes every state
    if json_output:
        emit_json({"location": store.location, "removed": removed})
        return
    for op_id in removed:
        typer.echo(f"removed {op_id}")
    what = "every state" if all_states else f"states not updated for {hours:g} h"
    typer.echo(f"{len(removed)} state(s) removed from {store.location} ({what})")
