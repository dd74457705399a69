"""A module that is imported when it is first used, not when the module naming it is.

Why: a fresh process that opens a store and looks up one record -- what a
CLI user and a pipeline step feel -- imported numpy and the whole reduction
engine it never touches, about a third of its start-up time
(``benchmarks/bench_lookups.py``, "first look-up"). The modules that need
numpy (import, reduction, the look-up table's writer), the API's
reduction methods, the database's import pipeline and the CLI's command
modules name their heavy dependency through a :class:`LazyModule`, at module
level as any import, and it is imported on the first attribute read.

The standard library's ``importlib.util.LazyLoader`` does the same, but on
Python 3.11 it is not safe when two threads touch the module first at once
(fixed in 3.12, gh-114763), and imports run store threads; this proxy goes
through :func:`importlib.import_module`, which takes the import lock.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for the module ``name``, which it imports on the first attribute read."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{'' if self._module is None else ' (imported)'}>"
