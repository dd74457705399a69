"""``talaria-storage serve``: the read-only GA4GH refget v2 + sequence-collections service over the store.

The service is :mod:`talaria_storage.server` (extra ``server``: FastAPI and
uvicorn); this command only turns flags into
:class:`~talaria_storage.server.settings.ServerSettings` and runs it. It
binds 127.0.0.1 unless ``--host`` says otherwise. Without the extra the
command exits 2 naming it (the server package is imported only when the
command runs, so the rest of the CLI works without FastAPI).
"""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer

from talaria_storage.cli.common import state
from talaria_storage.core.errors import MissingExtra

commands = typer.Typer()


@commands.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", metavar="ADDRESS", help="Address to bind (default loopback only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")] = 8080,
    databases: Annotated[
        list[str] | None,
        typer.Option("--database", "-d", metavar="NAME", help="Serve this database (repeat; default: all)."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
    max_bases: Annotated[
        int,
        typer.Option("--max-bases", min=0, metavar="N",
                     help="Most residues per sequence response: 416 for a range, 413 for a whole sequence (0: no limit)."),
    ] = 0,
    circular: Annotated[
        list[str] | None,
        typer.Option("--circular", metavar="ID",
                     help="Treat this accession or digest as circular (repeat); GenBank/EMBL topology is read anyway."),
    ] = None,
    refresh: Annotated[
        float, typer.Option("--refresh", min=0.0, metavar="SECONDS", help="Re-read the store's versions at most this often.")
    ] = 1.0,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.0, metavar="SECONDS",
                     help="Drop a client that sends headers, or reads a response, slower than this."),
    ] = 30.0,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Serve the store over HTTP as GA4GH refget v2 (/sequence/...) and sequence collections (/collection/...)."""
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise MissingExtra("serve needs FastAPI and uvicorn: install talaria-storage[server]")
    from talaria_storage.server.app import serve as run_server
    from talaria_storage.server.settings import ServerSettings

    settings = ServerSettings(
        databases=tuple(databases or ()),
        max_bases=max_bases,
        circular=tuple(circular or ()),
        refresh_seconds=refresh,
        header_timeout=min(timeout, 10.0) if timeout else 0.0,
        send_timeout=timeout,
    )
    cli = state(ctx)
    store = cli.store()
    typer.echo(
        f"serving {store.location} on http://{host}:{port}/ (refget: /sequence/service-info, seqcol: /service-info)",
        err=True,
    )
    run_server(
        store, settings, host=host, port=port, workers=workers, location=cli.store_location,
        config_path=str(cli.config_path) if cli.config_path else None, log_level=log_level,
    )
