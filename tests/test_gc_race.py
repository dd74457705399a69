"""gc beside a writer that re-uses old, unreferenced objects: every interleaving is harmless or named.

The writer re-runs an import that failed hours ago, so every object it needs is already stored,
unreferenced and older than the grace period: exactly what gc deletes. Each test pauses the gc at
one point of its protocol (listing, re-stat, delete) and runs the whole writer there.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from talaria_storage import open_database, open_store
from talaria_storage.core.errors import InputFormatError, StorageError
from talaria_storage.sequences import importing
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.storage import chunk_store
from talaria_storage.storage.store import Store

RELEASE = b"".join(b">r%d OX=562\n%s\n" % (i, b"MKVLAT" * (20 + i)) for i in range(50))
GRACE = 3600.0
NEVER = float("inf")


@pytest.fixture
def release(tmp_path: Path) -> Path:
    path = tmp_path / "release.fa"
    path.write_bytes(RELEASE)
    return path


@pytest.fixture
def store(tmp_path: Path, release: Path) -> Iterator[Store]:
    """A store holding only the objects of an import of ``release`` that failed two hours ago."""
    bad = tmp_path / "bad.fa"
    bad.write_bytes(b">x\nACGT\n\x00\x01 binary garbage\n")
    with open_store(tmp_path / "store") as opened:
        with pytest.raises(InputFormatError):
            open_database(opened, "db").import_files([release, bad], version="v1")
        then = time.time() - 2 * 3600
        for path in (tmp_path / "store").rglob("*"):
            if path.is_file() and path.parts[-2:][0] != "refs":
                os.utime(path, (then, then))
        yield opened


def _publish_again(store: Store, release: Path) -> None:
    open_database(store, "db").import_files([release], version="v1")


def _export(store: Store) -> bytes:
    out = io.BytesIO()
    open_database(store, "db").export(out)
    return out.getvalue()


def _once(store: Store, method: str, writer: Callable[[], None], *, first_arg: object = None) -> None:
    """Run ``writer`` the first time ``method`` is called on the backend (with ``first_arg``, if
    given), then let the call go on. Installed just before the gc, so that call is the gc's."""
    backend = store.backend
    original = getattr(backend, method)
    fired = False

    def hooked(*args: object, **kwargs: object) -> object:
        nonlocal fired
        if not fired and (first_arg is None or args[:1] == (first_arg,)):
            fired = True
            writer()
        return original(*args, **kwargs)

    setattr(backend, method, hooked)


def _freshening(store: Store, on: bool) -> None:
    store.freshen_after = store.manifests.freshen_after = 600.0 if on else NEVER


def test_a_version_published_while_gc_lists_keeps_its_objects(store: Store, release: Path) -> None:
    _freshening(store, on=False)  # the second mark alone saves it
    _once(store, "list", lambda: _publish_again(store, release), first_arg="chunks/")
    collect_garbage(store, grace_seconds=GRACE)
    assert _export(store) == RELEASE
    assert verify_store(store) == []


def test_a_version_published_just_before_the_sweep_keeps_its_freshened_objects(store: Store, release: Path) -> None:
    _freshening(store, on=True)
    _once(store, "stat_many", lambda: _publish_again(store, release))
    result = collect_garbage(store, grace_seconds=GRACE)
    assert result.spared_young > 0
    assert _export(store) == RELEASE
    assert verify_store(store) == []


def test_a_sweep_that_outlasts_the_grace_period_still_spares_what_a_writer_freshened_at_its_start(
    store: Store, release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big store's sweep can take longer than grace - freshen_after: by its last batch an object
    freshened at its first looks old again. It is spared because its time moved past the listing's."""
    _freshening(store, on=True)

    def publish_then_sweep_for_two_hours() -> None:
        _publish_again(store, release)
        later = time.time() + 2 * GRACE
        monkeypatch.setattr(chunk_store, "time", SimpleNamespace(time=lambda: later))

    _once(store, "stat_many", publish_then_sweep_for_two_hours)
    result = collect_garbage(store, grace_seconds=GRACE)
    assert result.spared_young > 0
    assert _export(store) == RELEASE
    assert verify_store(store) == []


def test_without_freshening_that_interleaving_loses_objects_and_gc_names_them(store: Store, release: Path) -> None:
    """The race this protocol closes: proof that the tests above can fail."""
    _freshening(store, on=False)
    _once(store, "stat_many", lambda: _publish_again(store, release))
    with pytest.raises(StorageError, match=r"gc removed \d+ object\(s\) that a writer re-used while it ran"):
        collect_garbage(store, grace_seconds=GRACE)


def test_a_version_published_inside_the_delete_round_trip_is_named_and_a_rerun_repairs_it(
    store: Store, release: Path
) -> None:
    _freshening(store, on=True)
    _once(store, "delete_many", lambda: _publish_again(store, release))
    with pytest.raises(StorageError, match=r"verify' names the version; re-run its import"):
        collect_garbage(store, grace_seconds=GRACE)
    assert verify_store(store) != []
    _publish_again(store, release)  # the same files under the same name: writes what gc took
    assert _export(store) == RELEASE
    assert verify_store(store) == []
    assert collect_garbage(store, grace_seconds=GRACE).removed == 0


def test_an_object_a_writer_stores_again_after_the_sweep_is_no_loss(store: Store, release: Path) -> None:
    _freshening(store, on=True)
    backend = store.backend
    original = backend.delete_many

    def then_publish(keys: object) -> None:
        original(keys)  # type: ignore[arg-type]
        backend.delete_many = original  # type: ignore[method-assign]
        _publish_again(store, release)  # finds the objects gone and writes them again

    backend.delete_many = then_publish  # type: ignore[method-assign]
    result = collect_garbage(store, grace_seconds=GRACE)  # the third mark finds them there: no error
    assert result.removed > 0
    assert _export(store) == RELEASE
    assert verify_store(store) == []


def test_a_chunk_a_writer_stores_again_and_records_in_its_unfinished_state_is_no_loss(
    store: Store, release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The third mark takes a state's objects into both namespaces (a root may be either): a chunk
    written again under chunks/ is not looked for under manifests/ (the emulator runs' false alarm)."""
    _freshening(store, on=True)
    backend = store.backend
    original = backend.delete_many

    def killed(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt("killed after its objects were written, before it published")

    def then_import_without_publishing(keys: object) -> None:
        original(keys)  # type: ignore[arg-type]
        backend.delete_many = original  # type: ignore[method-assign]
        with monkeypatch.context() as patch:
            patch.setattr(importing.ImportRun, "finish", killed)
            with pytest.raises(KeyboardInterrupt):
                _publish_again(store, release)  # writes what gc took again, records it in its state

    backend.delete_many = then_import_without_publishing  # type: ignore[method-assign]
    result = collect_garbage(store, grace_seconds=GRACE)
    assert result.removed > 0 and store.states.live_objects()
    assert verify_store(store) == []
