"""Small synthetic databases for the sync tests: many small chunks, several versions, shared records.

Imported by ``tests/test_sync*.py`` and by the child process of
``tests/test_sync_resume.py``; not a test module itself.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.sequences.chunking import ChunkingPolicy
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.store import Store

#: Small chunks, so a few hundred records make dozens of objects to copy.
POLICY = ChunkingPolicy(min_size=512, target_size=2048, max_size=8192)
TAXA = (9606, 10090, 562, 4932, 7227)


def fasta(count: int, seed: int, *, first: int = 0) -> bytes:
    """``count`` protein records (UniProt-style headers with ``OX=``), the same for the same arguments."""
    rng = random.Random(seed)
    lines = []
    for i in range(first, first + count):
        residues = "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(rng.randint(40, 160)))
        lines.append(f">sp|Q{i:05d}|T{i}_TEST protein {i} OS=test OX={rng.choice(TAXA)}\n")
        lines.extend(residues[j : j + 60] + "\n" for j in range(0, len(residues), 60))
    return "".join(lines).encode()


def database(store: Store, name: str) -> SequenceDatabase:
    return SequenceDatabase(store, name, chunking=POLICY)


def import_version(store: Store, name: str, data: bytes, version: str, folder: Path) -> SHA256Hash:
    """Import ``data`` as ``name@version`` and return its manifest hash."""
    path = folder / f"{name}-{version}-{SHA256Hash.compute(data).to_hex()[:8]}.fasta"
    path.write_bytes(data)
    return database(store, name).import_files([path], version=version).manifest


def export(store: Store, name: str, version: str | None = None) -> bytes:
    out = io.BytesIO()
    database(store, name).export(out, version=version)
    return out.getvalue()


def snapshot(store: Store) -> dict[str, bytes]:
    """Every chunk, manifest and ref of the store, key -> bytes."""
    keys = [info.key for info in store.backend.list("") if info.key.startswith(("chunks/", "manifests/", "refs/"))]
    return store.backend.get_many(keys)


def dangling(store: Store) -> list[str]:
    """What the store's refs reach but it does not hold (must always be empty)."""
    catalog = VersionCatalog(store)
    problems: list[str] = []
    for key, h in store.refs.list("refs/").items():
        if not store.manifests.has_chunk(h):
            problems.append(f"{key} -> missing manifest {h.to_hex()}")
    if problems:
        return problems
    chunks, _ = catalog.reachable()
    missing = chunks - store.present(chunks)
    return [f"missing chunk {h.to_hex()}" for h in sorted(missing)]
