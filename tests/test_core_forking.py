"""A forked worker never finalizes what it inherited (core.forking)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from talaria_storage.core.forking import freeze_inherited_objects

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")


class _Finalized:
    """Garbage in a reference cycle that writes its finalizer's process id to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cycle = self

    def __del__(self) -> None:
        with open(self.path, "a") as out:
            out.write(f"{os.getpid()}\n")


def test_a_forked_worker_does_not_finalize_garbage_its_parent_left(tmp_path: Path) -> None:
    finalized = tmp_path / "finalized"
    gc.disable()  # the cycle stays uncollected in the parent until the fork, as garbage can
    try:
        _Finalized(finalized)  # dropped at once: garbage only the collector frees
        freeze_inherited_objects()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            child = pool.submit(os.getpid).result()
            pool.submit(gc.collect).result()  # the child's collector runs over all it holds
    finally:
        gc.enable()
    gc.collect()  # the parent's own copy is finalized here, in the parent
    assert finalized.read_text().split() == [str(os.getpid())], f"finalized in worker {child} too"
