"""Writers racing to publish into one database: every published version is listed, HEAD names the
one whose publish finished last, and no writer is told that nothing changed when its version landed."""

from __future__ import annotations

import io
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from talaria_storage import open_database, open_store
from talaria_storage.sequences.versions import VersionCatalog

RACES = 100


def _fasta(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.fa"
    path.write_bytes(f">{name}_1 from writer {name}\nMKVL{name.upper()}A\n".encode())
    return path


def _race(store_dir: Path, inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Import each input as its own version from its own thread and store, all publishing at once."""
    barrier = threading.Barrier(len(inputs))
    publish = VersionCatalog.publish

    def publish_together(self, manifest, expected_head, *, force=False):  # type: ignore[no-untyped-def]
        barrier.wait(timeout=30)  # every writer has its objects and manifest ready: now all publish
        return publish(self, manifest, expected_head, force=force)

    monkeypatch.setattr(VersionCatalog, "publish", publish_together)
    outcome: dict[str, object] = {}

    def writer(version: str, path: Path) -> None:
        try:
            with open_store(str(store_dir)) as store:
                open_database(store, "db").import_files([path], version=version)
            outcome[version] = "published"
        except Exception as exc:  # noqa: BLE001 - the test reports what each writer saw
            outcome[version] = exc

    threads = [threading.Thread(target=writer, args=item) for item in inputs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    monkeypatch.setattr(VersionCatalog, "publish", publish)
    return outcome


def test_two_imports_racing_both_publish_and_head_names_one_of_them_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = {"a": _fasta(tmp_path, "a"), "b": _fasta(tmp_path, "b")}
    heads = set()
    for race in range(RACES):
        store_dir = tmp_path / f"store{race}"
        outcome = _race(store_dir, inputs, monkeypatch)
        assert outcome == {"a": "published", "b": "published"}, outcome
        with open_store(str(store_dir)) as store:
            db = open_database(store, "db")
            versions = {v.version: v for v in db.versions()}
            assert set(versions) == {"a", "b"}
            [head] = [name for name, v in versions.items() if v.is_head]
            heads.add(head)
            # Both imports started from an empty database, so one of the two swaps lost and was retried.
            assert [db.manifest(name)[1].parent for name in ("a", "b")] == [None, None]
            for name, path in inputs.items():
                out = io.BytesIO()
                db.export(out, version=name)
                assert out.getvalue() == path.read_bytes()
    assert heads <= {"a", "b"}


def test_a_publish_over_a_head_moved_meanwhile_becomes_head_and_keeps_its_parent(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "store")) as store:
        db = open_database(store, "db")
        db.import_files([_fasta(tmp_path, "a")], version="a")
        stale = db.catalog.head("db")
        db.import_files([_fasta(tmp_path, "b")], version="b")
        c = replace(db.manifest("a")[1], version="c", parent=stale)
        db.catalog.publish(c, stale)  # its import started when HEAD was a; b was published meanwhile
        head = [v.version for v in db.versions() if v.is_head]
        assert head == ["c"] and db.manifest("c")[1].parent == stale


def test_a_rerun_of_a_publish_whose_answer_was_lost_changes_nothing(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "store")) as store:
        db = open_database(store, "db")
        db.import_files([_fasta(tmp_path, "a")], version="a")
        h, manifest = db.manifest("a")
        assert db.catalog.publish(manifest, None) == h  # version ref and HEAD already name it
        assert [(v.version, v.is_head) for v in db.versions()] == [("a", True)]
