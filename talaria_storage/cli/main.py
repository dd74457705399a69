"""The ``talaria-storage`` app: its global options, and the command modules gathered into it.

Global options (before the command): ``--store LOCATION`` (a path or URL; wins
over ``--config`` and the environment), ``--config FILE`` (a ``storage.toml``;
none is read unless named), ``--debug`` (tracebacks). Reporting commands take
``--json`` for machine-readable output on stdout. Exit codes and error
handling: :mod:`talaria_storage.cli.common`.

Adding a command: write it in the module of its group (or a new module),
on that module's own ``typer.Typer``, using only :mod:`~talaria_storage.cli.common`
and the layers below; then mount the module's app here. A top-level command
module's app has no name (``app.add_typer(store.commands)`` merges its
commands into the top level); a group's app is mounted under its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from talaria_storage.cli import (
    chunk,
    database,
    index,
    optimize,
    reduce,
    run,
    serve,
    state,
    store,
    sync,
    taxonomy,
)
from talaria_storage.cli.common import CliState, ErrorReportingGroup

app = typer.Typer(
    name="talaria-storage",
    cls=ErrorReportingGroup,
    help="Content-addressed storage for biological sequence databases.",
    epilog="Exit codes: 0 success, 1 operation failed or problems found, 2 usage or configuration error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(store.commands)
app.add_typer(database.commands)
app.add_typer(run.commands)
app.add_typer(optimize.commands)
app.add_typer(serve.commands)
app.add_typer(chunk.chunk_app, name="chunk")
app.add_typer(taxonomy.taxonomy_app, name="taxonomy")
app.add_typer(index.index_app, name="index")
app.add_typer(sync.sync_app, name="sync")
app.add_typer(reduce.reduce_app, name="reduce")
app.add_typer(state.state_app, name="state")


@app.callback()
def _global_options(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            "-s",
            metavar="LOCATION",
            help="Store path or URL (s3://bucket/prefix, gs://..., az://..., rocksdb:///path, memory://).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="A storage.toml to read (none is read unless named).",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks with errors.")] = False,
) -> None:
    """Content-addressed storage for biological sequence databases."""
    ctx.obj = CliState(store_location=store, config_path=config, debug=debug)



def main() -> None:
    """Console-script entry point (``talaria-storage``)."""
    app(prog_name="talaria-storage")


if __name__ == "__main__":
    main()
