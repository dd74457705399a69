"""Garbage collection of a whole store: mark from every ref, sweep ``chunks/`` and ``manifests/``.

Mark (nothing is deleted until it has finished without error):

* every ``refs/<db>/<version>`` and ``HEAD``: the manifest, its chunks, its
  record-order objects and the taxdump it names
  (:meth:`VersionCatalog.reachable`);
* ``taxonomy/dumps/...`` (stored taxdumps) and ``taxonomy/labels`` (the
  manifest of taxon-labelled chunks, and those chunks);
* ``reductions/<db>/<profile>``: the stored reduction, its delta chunks,
  reference chunks and other listed objects, its delta index, and the
  version it reduced with everything that version reaches (so deleting that
  version's ref does not break the profile);
* the processing states under ``state/`` (:meth:`ProcessingStates.live_objects`):
  the manifest and the completed objects of every unfinished import or sync,
  so an interrupted operation can resume without re-copying what GC would
  otherwise have taken. ``talaria-storage state clean`` releases them;
* ``extra_roots``: other objects a caller knows are live though no ref names
  them yet. Like state roots, each is kept in both namespaces, since a root
  may be a chunk or a manifest.

A ref that names a missing manifest stops the collection before anything is
deleted: a mark that could not read a manifest would sweep the objects only
that manifest keeps alive.

Sweep: :meth:`ChunkStore.gc` on ``chunks/`` and on ``manifests/``, which
spares objects modified less than ``grace_seconds`` ago, so an import that
has stored objects but not yet its ref is never robbed. Then the backend's
:meth:`Store.sweep_incomplete` removes what killed writes left behind
(temporary files, multipart uploads) older than the same grace period.

Known limit: a store write that finds its object already present writes
nothing (a dedup hit), so it does not refresh the object's age. A writer
that re-uses an *old, unreferenced* object (re-running an import that failed
more than ``grace_seconds`` ago) between this mark and sweep can lose it.
``VersionCatalog.publish`` then refuses a manifest whose objects are missing
(an import's own processing state also keeps what it stored from gc), and
``verify_store`` finds a loss after the fact. git avoids this by touching re-used objects
("freshening"); ChunkStore does not yet. Until it does, do not run gc
while re-running an import that failed longer than the grace period ago.
"""

from __future__ import annotations

from collections.abc import Iterable

from talaria_storage.core.errors import ConfigError, StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.types import GCResult
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.store import Store


def collect_garbage(
    store: Store,
    *,
    dry_run: bool = False,
    grace_seconds: float = 3600.0,
    extra_roots: Iterable[SHA256Hash] = (),
) -> GCResult:
    """Delete every object of ``chunks/`` and ``manifests/`` no ref reaches (see the module docstring).

    The result sums both namespaces; ``removed_hashes`` lists chunks first,
    then manifests. With ``dry_run`` nothing is deleted and the result says
    what would have been.
    """
    if grace_seconds < 0:
        raise ConfigError(f"gc grace period must be >= 0 seconds, got {grace_seconds}")
    check_manifest_refs(store)
    chunks, manifests = VersionCatalog(store).reachable()
    extra = set(extra_roots) | store.states.live_objects()
    chunks |= extra
    manifests |= extra
    swept_chunks = store.gc(chunks, dry_run=dry_run, grace_seconds=grace_seconds)
    swept_manifests = store.manifests.gc(manifests, dry_run=dry_run, grace_seconds=grace_seconds)
    return GCResult(
        removed=swept_chunks.removed + swept_manifests.removed,
        freed_bytes=swept_chunks.freed_bytes + swept_manifests.freed_bytes,
        kept=swept_chunks.kept + swept_manifests.kept,
        spared_young=swept_chunks.spared_young + swept_manifests.spared_young,
        dry_run=dry_run,
        removed_hashes=swept_chunks.removed_hashes + swept_manifests.removed_hashes,
        incomplete_removed=0 if dry_run else store.sweep_incomplete(grace_seconds),
    )


def check_manifest_refs(store: Store) -> None:
    """Raise a one-line :class:`StorageError` naming the first ref whose manifest is missing."""
    present: dict[SHA256Hash, bool] = {}
    for key, h in sorted(VersionCatalog(store).manifest_refs().items()):
        if h not in present:
            present[h] = store.manifests.has_chunk(h)
        if not present[h]:
            raise StorageError(
                f"gc stopped before deleting anything: ref '{key}' names manifest {h.to_hex()}, which is "
                f"missing from {store.location}; pull it from a remote or re-import (or delete the ref), "
                "then re-run gc"
            )
