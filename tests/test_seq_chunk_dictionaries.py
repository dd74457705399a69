"""A release's record chunks are compressed against the previous release's (record chunk stream 12)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage import open_database
from talaria_storage.core.errors import CompressionError
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.sequences.record_chunk import MAX_DICTIONARY_DEPTH, ChunkReader
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.store import Store
from talaria_storage.sync.protocol import push

_RNG = random.Random(11)
SEQUENCES = ["".join(_RNG.choice("ACGT") for _ in range(_RNG.randint(300, 900))) for _ in range(400)]
NAMES = [f"{_RNG.getrandbits(64):016x} {_RNG.choice(['bla', 'tet', 'aac', 'erm', 'van'])}" for _ in range(400)]


def _release(tmp_path: Path, name: str, renamed: set[int] = frozenset(), count: int = 300) -> Path:
    """A ResFinder-like release: gene names as headers; ``renamed`` records get a new one."""
    lines = []
    for i in range(count):
        suffix = "_v2" if i in renamed else ""
        lines.append(f">gene{i:04d}_{NAMES[i]}{suffix}")
        seq = SEQUENCES[i]
        lines.extend(seq[k : k + 60] for k in range(0, len(seq), 60))
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _export(db: SequenceDatabase, version: str) -> bytes:
    out = io.BytesIO()
    db.export(out, version=version)
    return out.getvalue()


def _chunk_bytes(store: Store, db: SequenceDatabase, version: str) -> int:
    return sum(len(store.get_chunk(e.hash)) for e in db.manifest(version)[1].chunks)


def test_a_release_that_repeats_its_records_stores_its_chunks_against_the_previous_ones(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    db = open_database(store, "db")
    db.import_files([_release(tmp_path, "v1.fa")], version="v1")
    db.import_files([_release(tmp_path, "v2.fa", renamed={5, 77})], version="v2")
    first, second = db.manifest("v1")[1], db.manifest("v2")[1]
    reader = ChunkReader(store.get_chunk(second.chunks[0].hash))
    assert reader.dictionary_chunks() == [e.hash for e in first.chunks]
    assert _chunk_bytes(store, db, "v2") < _chunk_bytes(store, db, "v1") / 4
    assert {h for h, _ in second.dictionary_chunks} == {e.hash for e in first.chunks}
    for version in ("v1", "v2"):
        assert _export(db, version) == (tmp_path / f"{version}.fa").read_bytes()


def test_an_unchanged_release_is_the_previous_chunks_again(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    db = open_database(store, "db")
    db.import_files([_release(tmp_path, "v1.fa")], version="v1")
    db.import_files([_release(tmp_path, "v2.fa", renamed={3})], version="v2")
    result = db.import_files([_release(tmp_path, "v3.fa", renamed={3})], version="v3")
    assert db.manifest("v3")[1].chunk_hashes() == db.manifest("v2")[1].chunk_hashes()
    assert result.new_chunks == 0 and result.new_packs == 0
    assert _export(db, "v3") == (tmp_path / "v3.fa").read_bytes()


def test_dictionary_chains_stop_at_the_maximum_depth(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    db = open_database(store, "db")
    versions = [f"v{n}" for n in range(MAX_DICTIONARY_DEPTH + 3)]
    for n, version in enumerate(versions):
        db.import_files([_release(tmp_path, f"{version}.fa", renamed=set(range(n)))], version=version)
    depths = [ChunkReader(store.get_chunk(db.manifest(v)[1].chunks[0].hash)).dictionary_depth() for v in versions]
    assert max(depths) == MAX_DICTIONARY_DEPTH and 0 in depths[1:]
    fresh = SequenceDatabase(store, "db")  # nothing cached: every chain is decoded from the store
    for version in versions:
        assert _export(fresh, version) == (tmp_path / f"{version}.fa").read_bytes()


def test_gc_after_deleting_the_older_releases_keeps_what_the_newest_needs(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    db = open_database(store, "db")
    for n in range(4):
        db.import_files([_release(tmp_path, f"v{n}.fa", renamed=set(range(n)))], version=f"v{n}")
    for n in range(3):
        VersionCatalog(store).delete_version("db", f"v{n}")
    collect_garbage(store, grace_seconds=0)
    assert _export(SequenceDatabase(store, "db"), "v3") == (tmp_path / "v3.fa").read_bytes()
    assert verify_store(store) == []


def test_a_pushed_release_takes_the_chunks_its_chunks_were_compressed_against(tmp_path: Path) -> None:
    local, remote = Store(MemoryBackend()), Store(MemoryBackend())
    db = open_database(local, "db")
    for n in range(3):
        db.import_files([_release(tmp_path, f"v{n}.fa", renamed=set(range(n)))], version=f"v{n}")
    push(local, remote, ["db@v2"])
    assert _export(open_database(remote, "db"), "v2") == (tmp_path / "v2.fa").read_bytes()
    assert verify_store(remote) == []


def test_a_chunk_with_a_dictionary_read_on_its_own_says_how_to_read_it(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    db = open_database(store, "db")
    db.import_files([_release(tmp_path, "v1.fa")], version="v1")
    db.import_files([_release(tmp_path, "v2.fa", renamed={1})], version="v2")
    with pytest.raises(CompressionError, match="read it through its database"):
        ChunkReader(store.get_chunk(db.manifest("v2")[1].chunks[0].hash)).headers()
