"""``talaria-storage sync``: exchange databases with a remote store (push, pull, status).

Mounted on the main app by :mod:`talaria_storage.cli.main`. ``REMOTE`` is a store
location (a path, ``s3://``, ``gs://``, ``az://``...) or the name of a
``[remote.NAME]`` table in the ``storage.toml`` given with ``--config``; a
remote on a cloud backend takes its options (endpoint, region...) from that
file's ``[storage.s3]``/``[storage.gcs]``/``[storage.azure]`` table. The
protocol and its guarantees are :mod:`talaria_storage.sync.protocol`'s.

Progress goes to stderr: a rich bar per database with bytes/s and ETA on a
terminal, one plain line when a database starts and ends otherwise. The
summary goes to stdout, as JSON with ``--json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from talaria_storage.cli.common import (
    CliState,
    JsonOption,
    byte_progress_bar,
    emit_json,
    human_bytes,
    state,
)
from talaria_storage.config.open_store import open_store
from talaria_storage.core.errors import StorageError
from talaria_storage.sync.protocol import pull, push, status

if TYPE_CHECKING:
    from talaria_storage.core.types import SyncResult
    from talaria_storage.storage.store import Store
    from talaria_storage.sync.protocol import DatabaseStatus

sync_app: typer.Typer = typer.Typer(help="Exchange databases with a remote store (push, pull, status).", no_args_is_help=True)

RemoteArgument = Annotated[
    str,
    typer.Argument(
        metavar="REMOTE",
        help="A store location (path, s3://..., gs://..., az://...) or a [remote.NAME] from --config.",
    ),
]
DatabasesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--database",
        "-d",
        metavar="NAME[@VERSION]",
        help="A database (its HEAD) or one version of it; repeat for several (default: every database).",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="Overwrite the destination's refs even where its history diverged."),
]


def open_remote(st: CliState, remote: str, *, create: bool) -> Store:
    """Open the store ``remote`` names (a ``[remote.NAME]`` or a location), with the current config file."""
    location = st.config().remote(remote)
    # open_store (not a config object) so that a 'faults+<location>?...' drill works as a remote.
    return open_store(location, config_path=st.config_path, create=create)


def _not_itself(local: Store, other: Store, remote: str) -> None:
    if other.location == local.location:
        raise StorageError(f"remote '{remote}' is this store ({other.location}): name another store")


class TransferProgress:
    """A :class:`talaria_storage.sync.protocol.SyncProgress` for the terminal (rich bars) or a log (plain lines)."""
    def __init__(self, verb: str) -> None:
        from rich.console import Console

        self._verb = verb
        self._console = Console(stderr=True, highlight=False)
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> TransferProgress:
        if self._console.is_terminal:
            self._bar = byte_progress_bar(self._console)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def begin(self, database: str, objects: int, estimated_bytes: int) -> None:
        if self._bar is not None:
            self._tasks[database] = self._bar.add_task(f"{self._verb} {database}", total=estimated_bytes or None)
            return
        self._console.print(
            f"{self._verb} {database}: {objects} object(s) to copy (about {human_bytes(estimated_bytes)})",
            markup=False,
        )

    def advance(self, database: str, objects: int, nbytes: int) -> None:
        if self._bar is not None and database in self._tasks:
            self._bar.update(self._tasks[database], advance=nbytes)

    def end(self, database: str, result: SyncResult) -> None:
        task = self._tasks.pop(database, None)
        if self._bar is not None:
            if task is not None:
                self._bar.remove_task(task)
            return
        if result.refs_updated or result.objects_copied:
            self._console.print(
                f"{self._verb} {database}: {result.objects_copied} object(s), "
                f"{human_bytes(result.bytes_copied)} copied in {result.duration_seconds:.1f}s",
                markup=False,
            )


def _report(verb: str, remote: str, result: SyncResult, json_output: bool) -> None:
    if json_output:
        emit_json(
            {
                "remote": remote,
                "operation": verb,
                "objects_copied": result.objects_copied,
                "bytes_copied": result.bytes_copied,
                "objects_skipped": result.objects_skipped,
                "retried": result.retried,
                "refs_updated": list(result.refs_updated),
                "duration_seconds": result.duration_seconds,
            }
        )
        return
    if not result.refs_updated and not result.objects_copied:
        typer.echo(f"up to date with {remote}")
        return
    typer.echo(
        f"{verb}: {result.objects_copied} object(s) copied ({human_bytes(result.bytes_copied)}), "
        f"{result.objects_skipped} already there, {result.retried} retried, "
        f"in {result.duration_seconds:.1f}s"
    )
    for ref in result.refs_updated:
        typer.echo(f"  {ref}")


@sync_app.command("push")
def sync_push(
    ctx: typer.Context,
    remote: RemoteArgument,
    database: DatabasesOption = None,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Send databases (objects first, refs last) to REMOTE, creating the remote store if needed."""
    st = state(ctx)
    local = st.store()
    with open_remote(st, remote, create=True) as other, TransferProgress("push") as progress:
        _not_itself(local, other, remote)
        result = push(local, other, database or None, force=force, progress=progress)
        where = other.location
    _report("push", where, result, json_output)


@sync_app.command("pull")
def sync_pull(
    ctx: typer.Context,
    remote: RemoteArgument,
    database: DatabasesOption = None,
    force: ForceOption = False,
    json_output: JsonOption = False,
) -> None:
    """Fetch databases from REMOTE (default: those this store has; all of them into an empty store)."""
    st = state(ctx)
    with open_remote(st, remote, create=False) as other, TransferProgress("pull") as progress:
        local = st.store(create=True)  # after the remote opened, so a wrong REMOTE leaves no new store
        _not_itself(local, other, remote)
        result = pull(local, other, database or None, force=force, progress=progress)
        where = other.location
    _report("pull", where, result, json_output)


def _short(h: Any) -> str:
    return "-" if h is None else h.to_hex()[:12]


def _status_json(report: list[DatabaseStatus]) -> list[dict[str, Any]]:
    return [
        {
            "database": s.database,
            "relation": s.relation.value,
            "local_head": None if s.local_head is None else s.local_head.to_hex(),
            "remote_head": None if s.remote_head is None else s.remote_head.to_hex(),
            "missing_remote_versions": list(s.missing_remote_versions),
            "missing_local_versions": list(s.missing_local_versions),
            "missing_remote_objects": s.missing_remote_objects,
            "missing_local_objects": s.missing_local_objects,
        }
        for s in report
    ]


@sync_app.command("status")
def sync_status(
    ctx: typer.Context,
    remote: RemoteArgument,
    database: DatabasesOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show, per database and version, what is missing on which side (reads both stores' refs)."""
    st = state(ctx)
    local = st.store()
    with open_remote(st, remote, create=False) as other:
        _not_itself(local, other, remote)
        report = status(local, other, database or None)
        where = other.location
    if json_output:
        emit_json({"local": local.location, "remote": where, "databases": _status_json(report)})
        return
    if not report:
        typer.echo(f"no databases in {local.location} or {where}")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"{local.location} <-> {where}"))
    for column in ("database", "state", "local HEAD", "remote HEAD", "to push", "to pull"):
        table.add_column(column)
    for s in report:
        to_push = ", ".join(s.missing_remote_versions) or "-"
        to_pull = ", ".join(s.missing_local_versions) or "-"
        if s.missing_remote_objects:
            to_push += f" ({s.missing_remote_objects} objects)"
        if s.missing_local_objects:
            to_pull += f" ({s.missing_local_objects} objects)"
        table.add_row(
            Text(s.database), s.relation.value, _short(s.local_head), _short(s.remote_head),
            Text(to_push), Text(to_pull),
        )
    Console(highlight=False, width=160).print(table)
