"""The ``talaria-storage`` command line (typer + rich).

Global options (before the command): ``--store LOCATION`` (a path or URL; wins
over ``--config`` and the environment), ``--config FILE`` (a ``storage.toml``;
none is read unless named), ``--debug`` (tracebacks). Reporting commands take
``--json`` for machine-readable output on stdout.

Exit codes (stable; scripts may rely on them):

===  ==========================================================================
0    success
1    the operation failed (missing chunk, corrupt object, backend or I/O
     error), or ``verify`` found bad objects
2    usage or configuration error: a bad option or argument, a malformed hash
     or name, an invalid ``storage.toml`` key or environment variable, a
     missing optional extra (``pip install talaria-storage[s3]``)
===  ==========================================================================

Every :class:`StorageError` (and every OS error such as an unreadable input
file) is one line on stderr, ``error: <message>``; ``--debug`` adds the
traceback above it. Any other exception is a bug and shows its traceback.

Adding a command group (import, export, sync, gc, ...): define a sub-app and
mount it here, and reach the store through the shared state, which opens it on
first use and closes it when the command ends::

    sync_app = typer.Typer(help="Exchange data with remote stores.", no_args_is_help=True)
    app.add_typer(sync_app, name="sync")

    @sync_app.command("push")
    def sync_push(ctx: typer.Context, remote: str, json_output: JsonOption = False) -> None:
        st = state(ctx)
        result = st.store().push(st.config().remote(remote))
        ...

Raise :class:`StorageError` for failures (never ``sys.exit``); use
``raise typer.Exit(1)`` for "ran fine, found problems".

The sequence-database commands (import, export, get, list, diff, taxonomy,
index, gc) live in :mod:`talaria_storage.cli_database`, the sync and state
groups in ``cli_sync``/``cli_state``; each module registers itself on ``app``
and is imported at the bottom of this one.
"""

from __future__ import annotations

import errno
import json
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from talaria_storage.errors import ConfigError, InvalidHash, InvalidKey, MissingExtra, StorageError
from talaria_storage.hashing import SHA256Hash

if TYPE_CHECKING:
    from talaria_storage.config import StorageConfig
    from talaria_storage.store import Store

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

#: Errors that mean "what you asked for is malformed", not "the operation failed".
USAGE_ERRORS: tuple[type[BaseException], ...] = (ConfigError, InvalidHash, InvalidKey, MissingExtra)


# -- shared state -------------------------------------------------------------------------------


@dataclass
class CliState:
    """What every command shares: the global options, the config and the store, both built lazily.

    Lazy so that ``--help``, argument errors and commands that need no store
    never load a config or touch a backend.
    """

    store_location: str | None = None
    config_path: Path | None = None
    debug: bool = False
    _config: StorageConfig | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)

    def config(self) -> StorageConfig:
        """The effective configuration: ``--store`` > environment > ``--config`` file > defaults."""
        if self._config is None:
            from talaria_storage.config import config_for_location, load_config

            if self.store_location is not None:
                self._config = config_for_location(
                    self.store_location, config_path=self.config_path
                )
            else:
                self._config = load_config(self.config_path)
        return self._config

    def store(self, *, create: bool = False) -> Store:
        """The opened store; without ``create`` a location holding no store is an error naming ``init``."""
        if self._store is None:
            from talaria_storage import open_store

            self._store = open_store(self.config(), create=create)
        return self._store

    def close(self) -> None:
        """Close the store if a command opened it. Safe to call twice."""
        store, self._store = self._store, None
        if store is not None:
            store.close()


def state(ctx: typer.Context) -> CliState:
    """The :class:`CliState` of this invocation (set by the top-level callback)."""
    found = ctx.find_object(CliState)
    if found is None:  # only when a command is invoked without the app around it
        found = ctx.ensure_object(CliState)
    return found


# -- error handling -----------------------------------------------------------------------------


class _ErrorReportingGroup(TyperGroup):
    """The top-level group: turns exceptions into one-line messages and exit codes, closes the store.

    Done here rather than in :func:`main` so that ``CliRunner(app)`` in the
    tests and the installed script behave the same. Only our errors are
    caught: typer's own exceptions (usage errors, ``Exit``, ``--help``) pass
    through to typer, and an unexpected exception is a bug whose traceback
    should be seen.
    """

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except StorageError as exc:
            _fail(ctx, exc, EXIT_USAGE if isinstance(exc, USAGE_ERRORS) else EXIT_FAILURE)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # stdout closed by the reader (`| head`): typer exits quietly
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(ctx, exc, EXIT_FAILURE, f"{where}{exc.strerror or exc}")
        finally:
            if isinstance(ctx.obj, CliState):
                ctx.obj.close()


def _fail(
    ctx: typer.Context, exc: BaseException, code: int, message: str | None = None
) -> NoReturn:
    """Print ``error: <message>`` (after the traceback with --debug) and exit with ``code``."""
    if isinstance(ctx.obj, CliState) and ctx.obj.debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    text = message if message is not None else (str(exc) or type(exc).__name__)
    typer.echo(f"error: {' '.join(text.splitlines())}", err=True)
    raise typer.Exit(code)


# -- the app ------------------------------------------------------------------------------------

app = typer.Typer(
    name="talaria-storage",
    cls=_ErrorReportingGroup,
    help="Content-addressed storage for biological sequence databases.",
    epilog="Exit codes: 0 success, 1 operation failed or problems found, 2 usage or configuration error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
chunk_app = typer.Typer(help="Store, read and list raw chunks.", no_args_is_help=True)
app.add_typer(chunk_app, name="chunk")

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


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


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (plain text: no colours, no wrapping)."""
    typer.echo(json.dumps(data, indent=2))


def byte_progress_bar(console: Any) -> Any:
    """A transient rich progress bar for byte counts: done/total, bytes/s and ETA (import, sync)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _human_bytes(n: int) -> str:
    """``n`` bytes in binary units, for tables (JSON output keeps exact integers)."""
    if n < 1024:
        return f"{n} B"
    size, unit = float(n), "B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024:
            break
    return f"{size:.1f} {unit}"


# -- commands -----------------------------------------------------------------------------------


@app.command()
def init(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Create the store (idempotent) and print its location and settings."""
    st = state(ctx)
    config = st.config()
    store = st.store(create=True)
    codec = store.codec.to_dict()
    if json_output:
        emit_json(
            {
                "location": store.location,
                "backend": config.storage.backend,
                "codec": codec,
                "config": config.as_dict(),
            }
        )
        return
    level = f" (level {codec['level']})" if codec.get("level") is not None else ""
    typer.echo(f"initialised store at {store.location}")
    typer.echo(f"  backend  {config.storage.backend}")
    typer.echo(f"  codec    {codec['name']}{level}")
    typer.echo(f"  threads  {config.threads}")
    if config.source:
        typer.echo(f"  config   {config.source}")


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


@app.command()
def stats(
    ctx: typer.Context,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            "-d",
            metavar="NAME[@VERSION]",
            help="Per-database figures for this database only (default: every database's HEAD).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Object counts, sizes, compression ratio and dedup counters; then per-database figures."""
    from talaria_storage.cli_database import database_stats

    store = state(ctx).store()
    databases = database_stats(store, database)
    s = store.get_stats()
    data = {
        "location": store.location,
        "total_chunks": s.total_chunks,
        "stored_bytes": s.stored_bytes,
        "logical_bytes": s.logical_bytes,
        "compression_ratio": s.compression_ratio,
        "dedup_hits": s.dedup_hits,
        "dedup_bytes_saved": s.dedup_bytes_saved,
        "unreadable": getattr(s, "unreadable", 0),
        "per_codec": {
            name: {
                "objects": c.objects,
                "stored_bytes": c.stored_bytes,
                "logical_bytes": c.logical_bytes,
            }
            for name, c in sorted(s.per_codec.items())
        },
        "databases": databases,
    }
    if json_output:
        emit_json(data)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"store {store.location}"), show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("chunks", str(s.total_chunks))
    table.add_row("stored", _human_bytes(s.stored_bytes))
    table.add_row("logical", _human_bytes(s.logical_bytes))
    table.add_row("frame compression ratio", f"{s.compression_ratio:.2f}")
    if "none" in s.per_codec:
        # Sequence record chunks and packs are compressed by their own format (streams,
        # nucleotide packing) and stored in frames of codec "none": their ratio is per database.
        table.caption = "codec none: objects that compress themselves; see the ratio per database"
    table.add_row("dedup hits (this process)", str(s.dedup_hits))
    table.add_row("unreadable", str(data["unreadable"]))
    codecs = Table(title="per codec")
    for column in ("codec", "objects", "stored", "logical"):
        codecs.add_column(column, justify="left" if column == "codec" else "right")
    for name, c in sorted(s.per_codec.items()):
        codecs.add_row(
            Text(name), str(c.objects), _human_bytes(c.stored_bytes), _human_bytes(c.logical_bytes)
        )
    console = Console(highlight=False)
    console.print(table)
    if s.per_codec:
        console.print(codecs)
    if databases:
        per_db = Table(title="per database")
        columns = ("database", "records", "unique", "residues", "stored", "ratio", "dedup saved")
        for column in columns:
            per_db.add_column(column, justify="left" if column == "database" else "right")
        for d in databases:
            per_db.add_row(
                Text(f"{d['database']}@{d['version']}"),
                str(d["records"]),
                str(d["unique_sequences"]),
                str(d["residues"]),
                _human_bytes(d["stored_bytes"]),
                f"{d['ratio']:.2f}",
                _human_bytes(d["dedup_bytes_saved"]),
            )
        console.print(per_db)


@app.command()
def verify(
    ctx: typer.Context,
    subset: Annotated[
        float | None,
        typer.Option(
            "--subset",
            min=0.0,
            max=100.0,
            metavar="PERCENT",
            help="Re-hash only this percentage of the objects, drawn at random (refs are always checked).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", metavar="N", help="Seed for --subset, to draw the same sample again."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Re-hash chunks and manifests and check every ref's objects exist; exit 1 if any is bad."""
    from talaria_storage.sequences.integrity import verify_store

    store = state(ctx).store()
    problems = verify_store(store, subset=subset, seed=seed)
    if json_output:
        emit_json(
            {
                "location": store.location,
                "ok": not problems,
                "problems": [
                    {
                        "key": p.key,
                        "problem": str(getattr(p.problem, "value", p.problem)),
                        "message": p.message,
                        "hash": None if p.hash is None else p.hash.to_hex(),
                    }
                    for p in problems
                ],
            }
        )
    else:
        for p in problems:
            typer.echo(f"{getattr(p.problem, 'value', p.problem)}  {p.key}  {p.message}")
        if problems:
            typer.echo(f"{len(problems)} bad object(s) in {store.location}")
        else:
            typer.echo(f"ok: no problems in {store.location}")
    if problems:
        raise typer.Exit(EXIT_FAILURE)


# Command groups defined in their own modules; imported here, after the shared helpers above exist.
import talaria_storage.cli_database  # noqa: E402,F401  (registers import, export, get, list, ...)
from talaria_storage.cli_state import state_app  # noqa: E402
from talaria_storage.cli_sync import sync_app  # noqa: E402

app.add_typer(sync_app, name="sync")
app.add_typer(state_app, name="state")


def main() -> None:
    """Console-script entry point (``talaria-storage``)."""
    app(prog_name="talaria-storage")


if __name__ == "__main__":
    # Run as ``python -m talaria_storage.cli``: go through the imported module, not this
    # ``__main__`` copy, so the command groups (which import talaria_storage.cli) share its state.
    from talaria_storage.cli import main as _main

    _main()
