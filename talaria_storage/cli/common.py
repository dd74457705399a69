"""What the commands of ``talaria-storage`` share: the invocation's state, errors, output, progress.

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

A command reaches the store through :func:`state` (``state(ctx).store()``),
which opens it on first use and closes it when the command ends; it raises
:class:`StorageError` for failures (never ``sys.exit``) and
``typer.Exit(EXIT_FAILURE)`` for "ran fine, found problems".
"""

from __future__ import annotations

import contextlib
import errno
import json
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

try:  # typer 0.2x vendors click as typer._click (its exceptions are those); older typer uses click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_errors  # type: ignore[no-redef]

from talaria_storage.config.open_store import open_store
from talaria_storage.config.settings import config_for_location, load_config
from talaria_storage.core.errors import (
    ConfigError,
    InvalidHash,
    InvalidKey,
    MissingExtra,
    StorageError,
)
from talaria_storage.sequences.dask_cluster import open_executor
from talaria_storage.sequences.versions import parse_spec

if TYPE_CHECKING:
    from talaria_storage.config.settings import StorageConfig
    from talaria_storage.storage.store import Store

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

#: Errors that mean "what you asked for is malformed", not "the operation failed".
USAGE_ERRORS: tuple[type[BaseException], ...] = (ConfigError, InvalidHash, InvalidKey, MissingExtra)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
DatabaseOption = Annotated[
    str, typer.Option("--database", "-d", metavar="NAME", help="Database name.")
]


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


class ErrorReportingGroup(TyperGroup):
    """The top-level group: turns exceptions into one-line messages and exit codes, closes the store.

    Done here rather than in :func:`main` so that ``CliRunner(app)`` in the
    tests and the installed script behave the same. Only our errors are
    caught: typer's own exceptions (usage errors, ``Exit``, ``--help``) pass
    through to typer, and an unexpected exception is a bug whose traceback
    should be seen.
    """

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Run the CLI; a usage error is one ``error:`` line naming the command's ``--help``.

        typer prints usage errors as a multi-line rich box, which scripts and logs cannot
        read; ``--help`` itself stays rich. Only the standalone (installed script,
        ``CliRunner``) path changes: with ``standalone_mode=False`` errors reach the caller.
        """
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click_errors.NoArgsIsHelpError as exc:
            exc.show()  # a group called without a command: its help, as before
            sys.exit(exc.exit_code)
        except click_errors.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "talaria-storage"
            message = " ".join(exc.format_message().splitlines()).rstrip(".")
            typer.echo(f"error: {message} (see '{command} --help')", err=True)
            sys.exit(EXIT_USAGE)
        except click_errors.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        # Without standalone mode typer returns an Exit's code instead of exiting with it.
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except StorageError as exc:
            fail(ctx, exc, EXIT_USAGE if isinstance(exc, USAGE_ERRORS) else EXIT_FAILURE)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # stdout closed by the reader (`| head`): typer exits quietly
            where = f"{exc.filename}: " if exc.filename else ""
            fail(ctx, exc, EXIT_FAILURE, f"{where}{exc.strerror or exc}")
        finally:
            if isinstance(ctx.obj, CliState):
                ctx.obj.close()


def fail(
    ctx: typer.Context, exc: BaseException, code: int, message: str | None = None
) -> NoReturn:
    """Print ``error: <message>`` (after the traceback with --debug) and exit with ``code``."""
    if isinstance(ctx.obj, CliState) and ctx.obj.debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    text = message if message is not None else (str(exc) or type(exc).__name__)
    typer.echo(f"error: {' '.join(text.splitlines())}", err=True)
    raise typer.Exit(code)


# -- output -------------------------------------------------------------------------------------


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (plain text: no colours, no wrapping)."""
    typer.echo(json.dumps(data, indent=2))


def byte_progress_bar(console: Any) -> Any:
    """A transient rich progress bar for byte counts: done/total, bytes/s and ETA (import, sync)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def human_bytes(n: int) -> str:
    """``n`` bytes in binary units, for tables (JSON output keeps exact integers)."""
    if n < 1024:
        return f"{n} B"
    size, unit = float(n), "B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024:
            break
    return f"{size:.1f} {unit}"



def database_spec(text: str) -> tuple[str, str | None]:
    """``NAME`` or ``NAME@VERSION`` (validated) -> (name, version or None)."""
    return parse_spec(text)


ExecutorOption = Annotated[
    str | None,
    typer.Option(
        "--executor",
        metavar="dask://HOST:PORT|local:N",
        help="Run on a Dask cluster: a running scheduler, or N local worker processes "
        "(needs talaria-storage[dask]). The result is the one this process would write.",
    ),
]


@contextlib.contextmanager
def executor_client(spec: str | None) -> Iterator[Any]:
    """The Dask client ``spec`` names, or None (this process does the work)."""
    if spec is None:
        yield None
        return
    with open_executor(spec) as client:
        yield client
