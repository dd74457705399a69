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
   A reduction profile needs its listed objects, its delta index and the
   version it reduced (checked like a named version, even when no version ref
   names it any more). This check always covers every ref: it needs only the
   listings and the small manifests, not the objects' bytes;
3. **deltas**, only when a ``delta_check`` is given (the reduction layer's
   :class:`~talaria_storage.storage.reductions.DeltaCheck`: this layer has no
   delta codec): every present delta chunk of every profile is read, parsed and
   handed to it, which checks that each delta decodes to the hash it claims.

A missing object is reported once, naming the refs of the first manifest
that needs it, that manifest, and the fix.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

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
from talaria_storage.sequences.worker_store import StoreAddress, address_of, worker_store
from talaria_storage.storage.chunk_store import ChunkStore
from talaria_storage.storage.reductions import DeltaCheck
from talaria_storage.storage.store import Store

_FIX = "pull it from a remote or re-import"
VERIFY_BATCH = 2048  # objects per worker task: ~8 GB of chunks at most, a few seconds to minutes each


def verify_store(
    store: Store,
    *,
    subset: float | None = None,
    seed: int | None = None,
    delta_check: DeltaCheck | None = None,
    executor: Any | None = None,
) -> list[VerificationError]:
    """Check objects, references and (with ``delta_check``) deltas, see the module docstring;
    problems sorted by key.

    ``subset`` is a percentage, 0 < subset <= 100, of the objects to re-hash;
    ``seed`` makes the sample reproducible. ``executor``: a ``distributed.Client``
    whose workers re-hash the objects (check 1), each reading its share of them
    straight from the store; the other checks run here.
    """
    if subset is not None and not 0 < subset <= 100:
        raise ConfigError(f"verify subset must be a percentage in (0, 100], got {subset}")
    address = address_of(store) if executor is not None else None
    chunk_names = sorted(info.hash for info in store.enumerate_chunks())
    manifest_names = sorted(info.hash for info in store.manifests.enumerate_chunks())
    if subset is None and address is None:
        problems = store.verify_all()
    else:
        chunks, manifests = chunk_names, manifest_names
        if subset is not None:
            rng = random.Random(seed)
            chunks, manifests = _sample(rng, chunk_names, subset), _sample(rng, manifest_names, subset)
        if address is not None:
            problems = _verify_on(executor, address, chunks, manifests)
        else:
            problems = _verify_sample(store, chunks) + _verify_sample(store.manifests, manifests)
    reported = {p.key for p in problems}
    problems += _check_references(store, set(chunk_names), set(manifest_names), reported)
    if delta_check is not None:
        problems += _check_deltas(store, set(chunk_names), {p.key for p in problems}, delta_check)
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


def _verify_on(
    executor: Any, address: StoreAddress, chunks: list[SHA256Hash], manifests: list[SHA256Hash]
) -> list[VerificationError]:
    """Check 1 on the workers of ``executor``: batches of :data:`VERIFY_BATCH` objects."""
    futures = [
        executor.submit(verify_batch, address, namespace, [h.to_hex() for h in names[i : i + VERIFY_BATCH]], pure=False)
        for namespace, names in ((CHUNKS, chunks), (MANIFESTS, manifests))
        for i in range(0, len(names), VERIFY_BATCH)
    ]
    problems: list[VerificationError] = []
    for future in futures:
        try:
            problems += future.result()
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001 - Dask re-raises the worker's error (or KilledWorker) here
            raise StorageError(f"verify on Dask failed: {type(exc).__name__}: {exc}") from None
    return problems


def verify_batch(address: StoreAddress, namespace: str, names: list[str]) -> list[VerificationError]:
    """Worker task: re-hash objects of ``namespace`` (``chunks/`` or ``manifests/``) of the store."""
    store = worker_store(address)
    chunks = store if namespace == CHUNKS else store.manifests
    return _verify_sample(chunks, [SHA256Hash.from_hex(h) for h in names])


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
    # Versions reduced by a profile that no version ref names: checked as if named by the profile.
    for h, profiles in _reduction_needs(store, refs_of, chunks, manifests, reported, needed_by, problems).items():
        if h not in refs_of:
            refs_of[h] = profiles
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
            continue  # a stored reduction: checked by _reduction_needs
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



def _reduction_needs(
    store: Store,
    refs_of: dict[SHA256Hash, list[str]],
    chunks: set[SHA256Hash],
    manifests: set[SHA256Hash],
    reported: set[str],
    needed_by: dict[SHA256Hash, tuple[str, str, SHA256Hash | None]],
    problems: list[VerificationError],
) -> dict[SHA256Hash, list[str]]:
    """Check every present stored reduction: it loads, and its listed objects and delta index are
    present (missing ones go to ``needed_by``). Returns the source manifests the profiles need,
    each with the profile refs naming it, to be checked like named versions."""
    sources: dict[SHA256Hash, list[str]] = defaultdict(list)
    for h in sorted(refs_of):
        profile_keys = sorted(k for k in refs_of[h] if k.startswith(REDUCTIONS))
        if not profile_keys or h not in manifests:
            continue  # not a profile, or reported missing by the caller
        names = ", ".join(f"'{k}'" for k in profile_keys)
        who = f"ref {names} -> reduction manifest {h.to_hex()}"
        try:
            stored = store.reductions.load(h, profile_keys[0])
        except StorageError as exc:
            key = MANIFESTS + h.to_hex()
            if key not in reported:
                kind = VerificationProblem.MISMATCH if isinstance(exc, HashMismatch) else VerificationProblem.CORRUPT_FRAME
                problems.append(VerificationError(key, kind, f"ref {names} names a reduction manifest that does not load ({exc})", h))
            continue
        needs = stored.listed_objects()
        if stored.delta_index in chunks and CHUNKS + stored.delta_index.to_hex() not in reported:
            try:
                for part in store.reductions.index(stored).object_hashes():
                    needs.setdefault(part, "delta index partition")
            except StorageError as exc:
                problems.append(VerificationError(
                    CHUNKS + stored.delta_index.to_hex(), VerificationProblem.CORRUPT_FRAME,
                    f"{who}: its delta index does not load ({exc})", stored.delta_index,
                ))
        for obj, what in sorted(needs.items()):
            if obj not in chunks and obj not in needed_by:
                needed_by[obj] = (what, who, h)
        source = stored.manifest.source_manifest
        if source is not None:
            sources[source].extend(f"version reduced by {k}" for k in profile_keys)
    return sources


def _check_deltas(
    store: Store, chunks: set[SHA256Hash], reported: set[str], check: DeltaCheck
) -> list[VerificationError]:
    """Check 3: every present, not yet reported, delta chunk of every profile, parsed and given to ``check``."""
    problems: list[VerificationError] = []
    seen: set[tuple[SHA256Hash, SHA256Hash]] = set()
    for key, h in sorted(store.reductions.all_refs().items()):
        try:
            stored = store.reductions.load(h, key)
        except StorageError:
            continue  # reported by the references check
        for delta in stored.manifest.delta_chunks:
            delta_key = CHUNKS + delta.to_hex()
            if delta not in chunks or delta_key in reported or (h, delta) in seen:
                continue
            seen.add((h, delta))
            try:
                chunk = store.reductions.get_delta_chunk(delta)
            except StorageError as exc:
                problems.append(VerificationError(
                    delta_key, VerificationProblem.CORRUPT_FRAME, f"'{key}' lists delta chunk {delta.to_hex()}, which does not parse ({exc})", delta,
                ))
                continue
            problems.extend(check(stored, delta, chunk))
    return problems
