"""The ``talaria-storage chunk`` group: raw content-addressed chunks (put, get, ls)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from talaria_storage.cli.common import JsonOption, emit_json, state
from talaria_storage.core.hashing import SHA256Hash

chunk_app = typer.Typer(help="Store, read and list raw chunks.", no_args_is_help=True)


@chunk_app.command("put")
def chunk_put(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="File to store; '-' reads stdin.")],
    no_compress: Annotated[
        bool, typer.Option("--no-compress", help="Store the bytes uncompressed.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Store a file's bytes as one chunk and print its SHA-256 hash."""
    data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    h = state(ctx).store().store_chunk(data, compress=not no_compress)
    if json_output:
        emit_json({"hash": h.to_hex(), "size": len(data)})
    else:
        typer.echo(h.to_hex())


@chunk_app.command("get")
def chunk_get(
    ctx: typer.Context,
    hash: Annotated[
        str, typer.Argument(metavar="HASH", help="SHA-256 of the chunk (64 hex characters).")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout."),
    ] = None,
) -> None:
    """Write a chunk's original bytes (verified against its hash) to stdout or a file."""
    h = SHA256Hash.from_hex(hash)  # validated before it can become a key or a path
    data = state(ctx).store().get_chunk(h)
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)


@chunk_app.command("ls")
def chunk_ls(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List every chunk: hash and stored (compressed) size in bytes, sorted by hash."""
    chunks = sorted(state(ctx).store().enumerate_chunks(), key=lambda c: c.hash)
    if json_output:
        emit_json([{"hash": c.hash.to_hex(), "size": c.size} for c in chunks])
        return
    for c in chunks:
        typer.echo(f"{c.hash.to_hex()}  {c.size}")
