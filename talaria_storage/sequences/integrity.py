"""Store verification: every object's bytes, and every ref's objects being there.

Two checks, both reported as :class:`VerificationError` (the verification
itself never raises for a bad object):

1. **objects** - every object of ``chunks/`` and ``manifests/`` is re-read
   and re-hashed (:meth:`Store.verify_all`), or, with ``subset``, a random
   ``subset`` percent of each namespace, drawn from a seeded generator over
   the sorted listing so the same seed picks the same objects;
2. **references** - every manifest a ref names (``refs/...``,
   ``reductions/...``, ``taxonomy/labels``) is present and loads, and every
   object it needs is present (:meth:`Manifest.objects`: its record chunks,
   their sequence packs, the record-order object of each source file and the
   taxdump it was labelled with); each stored taxdump (``taxonomy/dumps/...``) is present.
   This check always covers every ref: it needs only the listings, not the
   objects' bytes. Reduction manifests are checked for presence only; their
   format belongs to the reduction layer.

A missing object is reported once, naming the refs of the first manifest
that needs it, that manifest, and the fix.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from talaria_storage.core.errors import (
    BackendError,
    ChunkNotFound,
    CompressionError,
    ConfigError,
    HashMismatch,
    StorageError,
)
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import CHUNKS, MANIFESTS, REDUCTIONS, TAXONOMY_DUMPS
from talaria_storage.core.types import VerificationError, VerificationProblem
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.chunk_store import ChunkStore
from talaria_storage.storage.store import Store

_FIX = "pull it from a remote or re-import"


def verify_store(
    store: Store, *, subset: float | None = None, seed: int | None = None
) -> list[VerificationError]:
    """Check objects and references (see the module docstring); problems sorted by key.

    ``subset`` is a percentage, 0 < subset <= 100, of the objects to re-hash;
    ``seed`` makes the sample reproducible.
    """
    if subset is not None and not 0 < subset <= 100:
        raise ConfigError(f"verify subset must be a percentage in (0, 100], got {subset}")
    chunk_names = sorted(info.hash for info in store.enumerate_chunks())
    manifest_names = sorted(info.hash for info in store.manifests.enumerate_chunks())
    if subset is None:
        problems = store.verify_all()
    else:
        rng = random.Random(seed)
        problems = _verify_sample(store, _sample(rng, chunk_names, subset))
        problems += _verify_sample(store.manifests, _sample(rng, manifest_names, subset))
    reported = {p.key for p in problems}
    problems += _check_references(store, set(chunk_names), set(manifest_names), reported)
    return sorted(problems, key=lambda p: (p.key, p.problem.value, p.message))


def _sample(rng: random.Random, names: list[SHA256Hash], percent: float) -> list[SHA256Hash]:
    """``percent`` of ``names`` (at least one when there are any), drawn by ``rng``."""
    if not names:
        return []
    count = min(len(names), max(1, math.ceil(len(names) * percent / 100)))
    return sorted(rng.sample(names, count))


def _verify_sample(chunks: ChunkStore, names: list[SHA256Hash]) -> list[VerificationError]:
    with ThreadPoolExecutor(chunks.threads) as pool:
        found = pool.map(partial(_verify_object, chunks), names)
        return [p for p in found if p is not None]


def _verify_object(chunks: ChunkStore, h: SHA256Hash) -> VerificationError | None:
    """Re-read one object through the public get_chunk and classify what fails.

    :meth:`ChunkStore.verify_all` classifies the same way, but only for the
    whole namespace; it has no per-object entry point to reuse.
    """
    key = chunks.key_for(h)
    try:
        chunks.get_chunk(h)
    except ChunkNotFound:
        return VerificationError(key, VerificationProblem.MISSING, f"'{key}' vanished during verification", h)
    except HashMismatch as exc:
        return VerificationError(key, VerificationProblem.MISMATCH, str(exc), h)
    except CompressionError as exc:
        kind = VerificationProblem.UNKNOWN_CODEC if "unknown codec" in str(exc) else VerificationProblem.CORRUPT_FRAME
        return VerificationError(key, kind, str(exc), h)
    except BackendError as exc:
        return VerificationError(key, VerificationProblem.UNREADABLE, f"'{key}' is unreadable: {exc}", h)
    return None


def _check_references(
    store: Store, chunks: set[SHA256Hash], manifests: set[SHA256Hash], reported: set[str]
) -> list[VerificationError]:
    """Problems of check 2; ``reported`` holds keys check 1 already found bad."""
    where = store.location
    problems: list[VerificationError] = []
    catalog = VersionCatalog(store)
    refs_of: dict[SHA256Hash, list[str]] = defaultdict(list)
    for key, h in catalog.manifest_refs().items():
        refs_of[h].append(key)
    # missing object -> (what it is, who needs it, the first manifest needing it)
    needed_by: dict[SHA256Hash, tuple[str, str, SHA256Hash | None]] = {}
    also_needed: dict[SHA256Hash, set[SHA256Hash]] = defaultdict(set)
    for h in sorted(refs_of):
        names = ", ".join(f"'{k}'" for k in sorted(refs_of[h]))
        key = MANIFESTS + h.to_hex()
        if h not in manifests:
            problems.append(VerificationError(
                key, VerificationProblem.MISSING,
                f"ref {names} names manifest {h.to_hex()}, which is missing from {where}: {_FIX}", h,
            ))
            continue
        if all(k.startswith(REDUCTIONS) for k in refs_of[h]):
            continue  # a reduction manifest: its format is the reduction layer's
        try:
            manifest = catalog.load(h)
        except StorageError as exc:  # missing is ruled out above: corrupt, or not a manifest
            if key not in reported:
                kind = (
                    VerificationProblem.MISMATCH if isinstance(exc, HashMismatch)
                    else VerificationProblem.CORRUPT_FRAME if isinstance(exc, CompressionError)
                    else VerificationProblem.UNREADABLE
                )
                problems.append(VerificationError(
                    key, kind,
                    f"ref {names} names manifest {h.to_hex()}, which does not load ({exc})", h,
                ))
            continue
        needs = [(o.kind, o.hash) for o in manifest.objects()]
        for what, obj in needs:
            if obj in chunks:
                continue
            if obj in needed_by:
                if needed_by[obj][2] != h:
                    also_needed[obj].add(h)
            else:
                needed_by[obj] = (what, f"ref {names} -> manifest {h.to_hex()}", h)
    dumps = store.refs.list(TAXONOMY_DUMPS)
    for key, h in sorted(dumps.items()):
        if h not in chunks and h not in needed_by:
            needed_by[h] = ("taxdump object", f"ref '{key}'", None)
    for obj, (what, who, _) in needed_by.items():
        others = f" (also needed by {len(also_needed[obj])} other manifest(s))" if also_needed[obj] else ""
        problems.append(VerificationError(
            CHUNKS + obj.to_hex(), VerificationProblem.MISSING,
            f"{who} needs {what} {obj.to_hex()}, which is missing from {where}{others}: {_FIX}", obj,
        ))
    return problems

