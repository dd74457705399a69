"""The documented top-level API: what ``talaria_storage`` exports, and the ways into a store and a database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from talaria_storage.backends.memory import MemoryBackend

import talaria_storage
from talaria_storage import (
    ChunkStorage,
    DeltaStorage,
    ReductionStorage,
    RemoteStorage,
    StatefulStorage,
    Store,
    TaxonomyStorage,
    open_database,
    open_store,
)
from talaria_storage.index.lookup_index import lookup_index

FASTA = b">sp|P1|ONE_TEST one\nMKV\n>sp|P2|TWO_TEST two\nMKVL\n"


def test_the_six_traits_open_database_and_open_store_are_exported() -> None:
    for name in (
        "ChunkStorage",
        "DeltaStorage",
        "ReductionStorage",
        "TaxonomyStorage",
        "RemoteStorage",
        "StatefulStorage",
        "open_database",
        "open_store",
        "SHA256Hash",
        "StorageError",
    ):
        assert name in talaria_storage.__all__ and hasattr(talaria_storage, name)
    assert issubclass(DeltaStorage, ChunkStorage) and issubclass(ReductionStorage, DeltaStorage)
    assert all(issubclass(t, ChunkStorage) for t in (TaxonomyStorage, RemoteStorage, StatefulStorage))


def test_databases_of_one_store_share_its_lookup_index() -> None:
    store = Store(MemoryBackend())
    assert open_database(store, "a").index is open_database(store, "b").index is lookup_index(store)


def test_a_database_opened_from_a_location_reads_what_a_store_wrote(tmp_path: Path) -> None:
    source = tmp_path / "in.fa"
    source.write_bytes(FASTA)
    with open_store(tmp_path / "store") as store:
        open_database(store, "db").import_files([source], version="v1")
    with open_database(tmp_path / "store", "db") as db:
        assert db["P2"].residues == b"MKVL"


def test_a_database_closes_the_store_it_opened_but_not_one_it_was_given(tmp_path: Path) -> None:
    given = open_store(tmp_path / "given")
    open_database(given, "db").close()
    assert given.metadata() is not None  # still usable
    given.close()
    owned = open_database(tmp_path / "owned", "db")
    owned.close()
    assert owned.store._resources == {}


def test_a_store_opens_a_resource_once_and_closes_it_with_itself() -> None:
    class Resource:
        opened = 0
        closed = 0

        def __init__(self) -> None:
            Resource.opened += 1

        def close(self) -> None:
            Resource.closed += 1

    store = Store(MemoryBackend())
    first = store.resource("thing", Resource)
    assert store.resource("thing", Resource) is first and Resource.opened == 1
    store.close()
    assert Resource.closed == 1


@pytest.mark.parametrize("command", [["-m", "talaria_storage", "--help"], ["-m", "talaria_storage.cli.main", "--help"]])
def test_the_command_line_runs_as_a_module(command: list[str]) -> None:
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "import" in done.stdout and "sync" in done.stdout
