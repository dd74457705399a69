"""The ``talaria-storage index`` group: the local lookup index, a rebuildable cache."""

from __future__ import annotations

from typing import Annotated

import typer

from talaria_storage.cli.common import JsonOption, emit_json, state
from talaria_storage.core.keys import validate_name
from talaria_storage.sequences.database import rebuild_lookup_index

index_app = typer.Typer(help="The local lookup index (a rebuildable cache).", no_args_is_help=True)


@index_app.command("rebuild")
def index_rebuild(
    ctx: typer.Context,
    database: Annotated[
        str | None,
        typer.Option("--database", "-d", metavar="NAME", help="Only this database (default: all)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Drop the lookup index and rebuild it from the manifests of every version."""
    store = state(ctx).store()
    if database is not None:
        validate_name(database, "database name")
    report = rebuild_lookup_index(store, database)
    if json_output:
        emit_json(report)
        return
    for row in report:
        typer.echo(
            f"rebuilt {row['database']}@{row['version']}: {row['records']} records, "
            f"{row['unique_sequences']} unique sequences"
        )
    if not report:
        typer.echo(f"no databases in {store.location}: the index is empty")
