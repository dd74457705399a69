"""``talaria-storage state``: list and clean the state of resumable operations.

Mounted on the main app by :mod:`talaria_storage.cli`.
"""

from __future__ import annotations

import typer

state_app = typer.Typer(help="List and clean the state of resumable operations.", no_args_is_help=True)
