"""The dry-run layer: a store seen through it changes, the store under it never does."""

from __future__ import annotations

from pathlib import Path

from talaria_storage.optimization.dry_run import DryRunBackend
from talaria_storage.storage.backend import Backend
from talaria_storage.storage.registry import open_backend


def _inner(tmp_path: Path) -> Backend:
    backend = open_backend(str(tmp_path / "s"))
    backend.put("chunks/a", b"old")
    return backend


def test_writes_are_seen_through_the_layer_only(tmp_path: Path) -> None:
    inner = _inner(tmp_path)
    layer = DryRunBackend(inner)
    layer.put("chunks/b", b"new")
    assert (layer.get("chunks/b"), inner.exists("chunks/b")) == (b"new", False)


def test_deletes_hide_an_object_without_removing_it(tmp_path: Path) -> None:
    inner = _inner(tmp_path)
    layer = DryRunBackend(inner)
    layer.delete("chunks/a")
    assert (layer.exists("chunks/a"), inner.get("chunks/a")) == (False, b"old")


def test_listing_merges_both_and_keeps_the_inner_modification_times(tmp_path: Path) -> None:
    inner = _inner(tmp_path)
    layer = DryRunBackend(inner)
    layer.put("chunks/b", b"new")
    listed = {info.key: info for info in layer.list("chunks/")}
    assert set(listed) == {"chunks/a", "chunks/b"}
    assert listed["chunks/a"].modified == inner.stat("chunks/a").modified


def test_a_conditional_write_is_checked_against_what_the_layer_shows(tmp_path: Path) -> None:
    layer = DryRunBackend(_inner(tmp_path))
    assert layer.compare_and_swap("chunks/a", b"old", b"newer")
    assert not layer.compare_and_swap("chunks/a", b"old", b"again")
    assert layer.get("chunks/a") == b"newer"
