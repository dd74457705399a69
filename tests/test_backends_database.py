"""A small sequence database imported, exported byte for byte and verified on every backend."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage import open_database
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.store import Store

SAMPLE = (
    b">sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens OX=9606 GN=HBA1 PE=1 SV=2 \n"
    b"MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADAL\n"
    b"TNAVAHVDDMPNALSALSDLHAHKLRVDPVNFKLLSHCLLVTLAAHLPAEFTPAVHASLDKFLASV\n"
    b"STVLTSKYR\n"
    b">sp|P01942|HBA_MOUSE Hemoglobin subunit alpha OS=Mus musculus OX=10090 GN=Hba PE=1 SV=2\n"
    b"mvlsgedksnikaawgkigghgaeygaealermfasfpttktyfphfdvshgsaqvkghgkkvadal\n"
    b"asaaghlddlpgalsalsdlhahklrvdpvnfkllshcllvtlashhpadftpavhasldkflasv\n"
    b"stvltskyr\n"
    b">dup of human OX=9606\n"
    b"MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADALTNAVAHVDDMPNALSALSDLHAHKLRVDPVNFKLLSHCLLVTLAAHLPAEFTPAVHASLDKFLASVSTVLTSKYR"
)

BACKENDS = ["memory", "filesystem", "rocksdb", "s3", "gcs", "azure"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    kind = request.param
    if kind == "memory":
        backend = MemoryBackend()
    elif kind == "filesystem":
        backend = FilesystemBackend(tmp_path / "fs")
    else:
        backend = request.getfixturevalue(f"{kind}_backend")
    store = Store(backend)
    store.initialise()
    return store


def test_a_database_round_trips_byte_for_byte_and_verifies(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "sample.fasta"
    source.write_bytes(SAMPLE)
    db = open_database(store, "sample")
    db.import_files([source], version="v1")
    out = io.BytesIO()
    db.export(out)
    assert out.getvalue() == SAMPLE
    assert store.verify_all() == []
    chunks, _ = VersionCatalog(store).reachable()
    assert store.gc(chunks, dry_run=True).removed == 0
    assert db["P01942"]
