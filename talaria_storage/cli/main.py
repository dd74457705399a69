"""The ``talaria-storage`` app: its global options, and the command modules gathered into it.

Global options (before the command): ``--store LOCATION`` (a path or URL; wins
over ``--config`` and the environment), ``--config FILE`` (a ``storage.toml``;
none is read unless named), ``--debug`` (tracebacks). Reporting commands take
``--json`` for machine-readable output on stdout. Exit codes and error
handling: :mod:`talaria_storage.cli.common`.

Adding a command: write it in the module of its group (or a new module),
on that module's own ``typer.Typer``, using only :mod:`~talaria_storage.cli.common`
and the layers below; then name it in :data:`COMMANDS`. A top-level command
module's app has no name, and each of its commands is listed there under its
own name; a group's app is listed under the group's name.

Command modules are imported when their command runs (or ``--help`` lists
them), not when the app starts: ``talaria-storage get`` in a fresh process
imported every module -- the reduction engine, batch jobs, sync, the
optimizer -- which was about a third of its start-up
(``benchmarks/bench_lookups.py``, "first look-up"). That is click's
documented "lazily loading subcommands" pattern; typer has no form of its
own for it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main

from talaria_storage.cli.common import CliState, ErrorReportingGroup

COMMANDS: dict[str, tuple[str, str]] = {
    # command or group name: (module under talaria_storage.cli, the module's typer app), in help order
    "init": ("store", "commands"),
    "stats": ("store", "commands"),
    "verify": ("store", "commands"),
    "gc": ("store", "commands"),
    "import": ("database", "commands"),
    "export": ("database", "commands"),
    "get": ("database", "commands"),
    "list": ("database", "commands"),
    "diff": ("database", "commands"),
    "run": ("run", "commands"),
    "optimize": ("optimize", "commands"),
    "serve": ("serve", "commands"),
    "chunk": ("chunk", "chunk_app"),
    "taxonomy": ("taxonomy", "taxonomy_app"),
    "index": ("index", "index_app"),
    "sync": ("sync", "sync_app"),
    "reduce": ("reduce", "reduce_app"),
    "state": ("state", "state_app"),
}
"""Every command of the top level, and where it is defined (see the module docstring). A module's
app named ``commands`` holds top-level commands; any other is a group, mounted under its name."""


def module_command(name: str) -> Any:
    """The click command (or group) ``name`` of :data:`COMMANDS`, its module imported now.

    A command of an app named ``commands`` is converted alone: typer converts a whole app's
    commands at once (``get_group``), and cli/database's five cost a first ``get`` ~18 ms,
    where its own conversion costs ~4. Any other app is one group, under ``name``.
    """
    module, attribute = COMMANDS[name]
    sub_app = getattr(importlib.import_module(f"talaria_storage.cli.{module}"), attribute)
    if attribute != "commands":
        # get_group, not get_command: a group of one command (index) stays a group, and no
        # completion options are added to a sub-app, as app.add_typer did before.
        group = typer.main.get_group(sub_app)
        group.name = name
        return group
    for info in sub_app.registered_commands:
        if info.callback is not None and (info.name or typer.main.get_command_name(info.callback.__name__)) == name:
            return typer.main.get_command_from_info(
                info, pretty_exceptions_short=sub_app.pretty_exceptions_short, rich_markup_mode=sub_app.rich_markup_mode
            )
    raise LookupError(f"talaria_storage.cli.{module} defines no command {name!r}; fix COMMANDS in cli/main.py")


def load_command(name: str, loaded: dict[str, Any] | None = None) -> Any:
    """The click command (or group) ``name`` of :data:`COMMANDS`, made once: ``loaded`` holds
    the commands made so far, and gets this one."""
    loaded = {} if loaded is None else loaded
    if name not in loaded:
        loaded[name] = module_command(name)
    return loaded[name]


class LazyCommandGroup(ErrorReportingGroup):
    """The top-level group: lists :data:`COMMANDS` and imports a command's module when it is asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return load_command(cmd_name, self.commands) if cmd_name in COMMANDS else None


app = typer.Typer(
    name="talaria-storage",
    cls=LazyCommandGroup,
    help="Content-addressed storage for biological sequence databases.",
    epilog="Exit codes: 0 success, 1 operation failed or problems found, 2 usage or configuration error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
