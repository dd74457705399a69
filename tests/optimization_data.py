"""Small synthetic releases for the optimizer and config-key tests; not a test module itself.

Releases of one gene set, each editing a few of the previous release's
sequences and adding a few, as ResFinder's releases do, with sequences
that are mutated copies of a few ancestors (so compression levels and
deltas have something to find). Everything is fixed by the seed.
"""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

from talaria_storage.config.open_store import open_store
from talaria_storage.sequences.database import open_database
from talaria_storage.storage.store import Store

TAXA = (562, 1280, 287, 470)
_ALPHABET = "ACGT"


def _mutated(rng: random.Random, seq: str, rate: float) -> str:
    return "".join(rng.choice(_ALPHABET) if rng.random() < rate else c for c in seq)


def releases(count: int, *, records: int = 120, seed: int = 7) -> list[bytes]:
    """``count`` FASTA releases of a nucleotide gene set, oldest first."""
    rng = random.Random(seed)
    ancestors = ["".join(rng.choice(_ALPHABET) for _ in range(rng.randint(600, 1200))) for _ in range(8)]
    genes: list[tuple[str, int, str]] = []
    for i in range(records):
        genes.append((f"gene{i}_1", rng.choice(TAXA), _mutated(rng, rng.choice(ancestors), 0.03)))
    out = []
    for release in range(count):
        if release:
            for _ in range(max(1, records // 20)):  # a few sequences change
                k = rng.randrange(len(genes))
                name, taxon, seq = genes[k]
                genes[k] = (name, taxon, _mutated(rng, seq, 0.01))
            for _ in range(max(1, records // 15)):  # a few are added
                genes.append((f"gene{len(genes)}_1", rng.choice(TAXA), _mutated(rng, rng.choice(ancestors), 0.03)))
        text = []
        for name, taxon, seq in genes:
            text.append(f">{name} synthetic gene OX={taxon}\n")
            text.extend(seq[i : i + 60] + "\n" for i in range(0, len(seq), 60))
        out.append("".join(text).encode())
    return out


def write_releases(folder: Path, count: int, **kwargs: int) -> list[Path]:
    """The releases as files ``r00.fasta``, ``r01.fasta``, ... in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(releases(count, **kwargs)):
        path = folder / f"r{i:02d}.fasta"
        path.write_bytes(data)
        paths.append(path)
    return paths


def import_releases(store: Store, paths: list[Path], database: str = "genes") -> None:
    """Import each file as version ``v<i>`` of ``database``, one by one."""
    db = open_database(store, database)
    for i, path in enumerate(paths):
        db.import_files([path], version=f"v{i}", taxonomy="header")


def exports(store: Store, database: str = "genes") -> dict[str, str]:
    """SHA-256 of every version's byte-exact export, by version name."""
    db = open_database(store, database)
    found = {}
    for info in db.versions():
        out = io.BytesIO()
        db.export(out, version=info.version)
        found[info.version] = hashlib.sha256(out.getvalue()).hexdigest()
    return found


def small_store(location: Path, **optimization: object) -> Store:
    """A filesystem store whose chunker cuts small chunks (a few KiB), for many objects from little data."""
    settings = {"min_chunk_size": "2KiB", "max_chunk_size": "16KiB", **optimization}
    return open_store(str(location), optimization=settings)
