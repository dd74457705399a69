"""Forked workers never finalize what they inherited from their parent.

An import's parse and encode workers, and the reduction's aligners, are forked
(they inherit the data instead of unpickling a copy each). What the parent held
comes along, garbage included: a database dropped in a reference cycle, whose
RocksDB index waits for the collector. Collected in a child, such a finalizer closes
the RocksDB handle there and can wait for ever on background threads the fork did not
copy. Seen once in the test suite: an import's parse worker hung in a futex at an
allocation (where the collector runs), and the import with it; the test of this
module shows a child finalizing its parent's garbage without this, and not with it.
:func:`freeze_inherited_objects` moves everything a child
inherits out of the collector's reach, right after the fork; what the child makes
is collected as usual, and the parent's pages the collector would have written
stay shared (Python's ``gc.freeze`` documentation recommends it for forked workers).
"""

from __future__ import annotations

import gc
import os
import threading

_registered = False
_lock = threading.Lock()


def freeze_inherited_objects() -> None:
    """From now on, every process this one forks freezes what it inherits (once per process)."""
    global _registered
    with _lock:
        if not _registered and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=gc.freeze)
            _registered = True
