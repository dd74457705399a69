"""The ``talaria-storage`` command line (typer + rich).

:mod:`.main` holds the app and its global options and gathers the command
modules; :mod:`.common` holds what they share (the per-invocation state,
output, JSON, progress, error handling). A command module imports
``common`` and the layers below, never ``main``.
"""
