"""Push to and pull from S3, GCS and Azure stores, through real servers on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from sync_data import dangling, export, fasta, import_version
from talaria_storage.backends.faults import RequestCountingBackend
from talaria_storage.backends.filesystem import FilesystemBackend

from talaria_storage.storage.backend import Backend
from talaria_storage.storage.store import Store
from talaria_storage.sync.protocol import Relation, pull, push, status

V1 = fasta(120, seed=31)
V2 = V1 + fasta(20, seed=32, first=2000)

pytestmark = pytest.mark.emulator


@pytest.fixture(params=["s3", "gcs", "azure"])
def cloud(request: pytest.FixtureRequest) -> Store:
    """An empty store on a fresh bucket or container of the parametrised service."""
    backend: Backend = request.getfixturevalue(f"{request.param}_backend")
    store = Store(backend)
    store.initialise()
    return store


@pytest.fixture
def local(tmp_path: Path) -> Store:
    store = Store(FilesystemBackend(tmp_path / "local"))
    store.initialise()
    import_version(store, "db", V1, "v1", tmp_path)
    import_version(store, "db", V2, "v2", tmp_path)
    return store


def test_a_database_pushed_to_the_cloud_and_pulled_back_is_byte_for_byte_the_same(
    local: Store, cloud: Store, tmp_path: Path
) -> None:
    push(local, cloud)
    assert dangling(cloud) == []
    clone = Store(FilesystemBackend(tmp_path / "clone"))
    clone.initialise()
    pull(clone, cloud, ["db"])
    assert clone.verify_all() == []
    assert export(clone, "db") == V2
    assert export(clone, "db", "v1") == V1
    [s] = status(clone, cloud)
    assert s.relation is Relation.IN_SYNC


def test_an_up_to_date_push_to_the_cloud_costs_at_most_three_requests(local: Store, cloud: Store) -> None:
    push(local, cloud)
    counter = RequestCountingBackend(cloud.backend)
    seen = Store(counter)
    seen.require_initialised()
    push(local, seen)
    assert counter.total <= 3, counter.counts
    assert counter.listings == 0
