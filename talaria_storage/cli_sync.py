"""``talaria-storage sync`` and ``talaria-storage state``: exchange data with remotes; resumable operations.

Mounted on the main app by :mod:`talaria_storage.cli`.
"""

from __future__ import annotations

import typer

sync_app = typer.Typer(help="Exchange databases with a remote store (push, pull, status).", no_args_is_help=True)
state_app = typer.Typer(help="List and clean the state of resumable operations.", no_args_is_help=True)
