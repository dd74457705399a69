"""``talaria-storage sync``: exchange databases with a remote store (push, pull, status).

Mounted on the main app by :mod:`talaria_storage.cli`.
"""

from __future__ import annotations

import typer

sync_app = typer.Typer(help="Exchange databases with a remote store (push, pull, status).", no_args_is_help=True)
