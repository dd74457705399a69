"""The ``talaria-storage taxonomy`` group: NCBI taxdumps stored as versioned objects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from talaria_storage.cli.common import JsonOption, emit_json, state
from talaria_storage.core.errors import StorageError
from talaria_storage.core.keys import validate_name
from talaria_storage.sequences.taxonomy_store import TaxonomyCatalog

taxonomy_app = typer.Typer(help="Store NCBI taxdumps as versioned objects.", no_args_is_help=True)


@taxonomy_app.command("import")
def taxonomy_import(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(metavar="DIR", help="Folder with nodes.dmp (+ names, merged, delnodes)."),
    ],
    version: Annotated[
        str | None,
        typer.Option("--version", "-v", metavar="V", help="Version name (default: a timestamp)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Store an NCBI taxdump as a versioned object and make it the current taxonomy."""
    if not directory.is_dir():
        raise StorageError(f"{directory}: not a folder; give the folder that holds nodes.dmp")
    if version is not None:
        validate_name(version, "taxonomy version")
    catalog = TaxonomyCatalog(state(ctx).store(create=True))
    imported = catalog.import_taxdump(directory, version=version)
    tree = catalog.load(imported.version)
    report = {
        "version": imported.version,
        "object": imported.object.to_hex(),
        "taxa": len(tree),
        "merged": len(tree.merged),
        "deleted": len(tree.deleted),
    }
    if json_output:
        emit_json(report)
        return
    typer.echo(
        f"imported taxonomy {report['version']}: {report['taxa']} taxa, {report['merged']} merged ids, "
        f"{report['deleted']} deleted ids (object {report['object']})"
    )


@taxonomy_app.command("list")
def taxonomy_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Stored taxonomy versions, the current one marked HEAD."""
    catalog = TaxonomyCatalog(state(ctx).store())
    head = catalog.head()
    rows = [
        {
            "version": v.version,
            "object": v.object.to_hex(),
            "head": head is not None and v.version == head.version,
        }
        for v in catalog.versions()
    ]
    if json_output:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no taxonomy stored: add one with 'talaria-storage taxonomy import DIR'")
    for row in rows:
        typer.echo(f"{row['version']}\t{'HEAD' if row['head'] else ''}\t{row['object']}")
