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

Sweep, beside live writers (docs/concurrency.md):

1. list both namespaces; the candidates are the unreferenced objects older
   than ``grace_seconds`` (:meth:`ChunkStore.gc_candidates`);
2. mark again from the refs and states as they are now (only manifests the
   first mark had not read are read), so a version published while the
   store was listed keeps its objects;
3. delete in batches, each stat'ed again first: an object a writer
   re-used meanwhile was freshened (:meth:`ChunkStore.freshen`, at every
   dedup hit and at every publish): its time has moved past the one the
   listing saw, so it is spared (:meth:`ChunkStore.sweep`);
4. mark a third time: should a writer have freshened an object and
   published its ref inside one batch's stat-to-delete round trip, the
   object is named in a :class:`StorageError` with the fix (re-run that
   import: a re-import of the same files under the name of a damaged version
   replaces it, :meth:`VersionCatalog.publish`), never lost in silence.

Then the backend's :meth:`Store.sweep_incomplete` removes what killed writes
left behind (temporary files, multipart uploads) older than the same grace
period.

The grace period is safe beside live writers when it is longer than
``Store.freshen_after``: an object unreferenced and older than the grace
period at the listing is older than ``freshen_after`` at any publish after
it, so that publish touches it, and step 3 sees its time moved past the
listing's -- however long the sweep has run since. A grace period longer
than ``freshen_after`` plus a writer's longest pause between re-using an
object and publishing also spares the writer a refused publish ("objects are
missing", whose re-run completes). The defaults are 3,600 s against 600 s; a
shorter grace period is warned about (gc goes on: with no writer it is safe).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from talaria_storage.core.errors import ConfigError, StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.types import GCResult
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.store import Store

_log = logging.getLogger(__name__)


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
    if not dry_run and grace_seconds <= store.freshen_after:
        _log.warning(
            "gc grace %gs is not longer than freshen_after_seconds (%gs) of %s: beside a live writer gc may "
            "take objects it re-uses; safe only while nothing else writes (docs/concurrency.md)",
            grace_seconds, store.freshen_after, store.location,
        )
    check_manifest_refs(store)
    catalog = VersionCatalog(store)
    roots = set(extra_roots)
    chunks, manifests = _mark(catalog, roots)
    chunk_plan = store.gc_candidates(chunks, grace_seconds)
    manifest_plan = store.manifests.gc_candidates(manifests, grace_seconds)
    chunks, manifests = _mark(catalog, roots, (chunks, manifests))
    swept_chunks = store.sweep(chunk_plan, live=chunks, dry_run=dry_run, grace_seconds=grace_seconds)
    swept_manifests = store.manifests.sweep(
        manifest_plan, live=manifests, dry_run=dry_run, grace_seconds=grace_seconds
    )
    if not dry_run:
        _check_nothing_live_was_swept(catalog, roots, (chunks, manifests), swept_chunks, swept_manifests)
    return GCResult(
        removed=swept_chunks.removed + swept_manifests.removed,
        freed_bytes=swept_chunks.freed_bytes + swept_manifests.freed_bytes,
        kept=swept_chunks.kept + swept_manifests.kept,
        spared_young=swept_chunks.spared_young + swept_manifests.spared_young,
        dry_run=dry_run,
        removed_hashes=swept_chunks.removed_hashes + swept_manifests.removed_hashes,
        incomplete_removed=0 if dry_run else store.sweep_incomplete(grace_seconds),
    )


Marks = tuple[set[SHA256Hash], set[SHA256Hash]]


def _mark(catalog: VersionCatalog, roots: set[SHA256Hash], earlier: Marks | None = None) -> Marks:
    """(chunks, manifests) live now: reachable from the refs, plus unfinished states and ``roots``
    (kept in both namespaces, since a root may be either); past ``earlier``, only new refs are read."""
    chunks, manifests = catalog.reachable(earlier)
    extra = roots | catalog.store.states.live_objects()
    return chunks | extra, manifests | extra


def _check_nothing_live_was_swept(
    catalog: VersionCatalog, roots: set[SHA256Hash], marks: Marks, *swept: GCResult
) -> None:
    """Raise naming the objects a writer re-used and published inside a sweep's last round trip,
    and that are still missing."""
    chunks, manifests = _mark(catalog, roots, marks)
    swept_chunks, swept_manifests = swept
    store = catalog.store
    # One that is there again was written again by a writer that found it gone (its publish
    # checks every object): nothing is lost. Each namespace against its own removals: a state
    # root is marked in both (it may be either), and a chunk it names is never in manifests/.
    lost = sorted(
        [h for h in set(swept_chunks.removed_hashes) & chunks if not store.has_chunk(h)]
        + [h for h in set(swept_manifests.removed_hashes) & manifests if not store.manifests.has_chunk(h)]
    )
    if lost:
        raise StorageError(
            f"gc removed {len(lost)} object(s) that a writer re-used while it ran (e.g. {lost[0].to_hex()}) in "
            f"{catalog.store.location}: 'talaria-storage verify' names the version; re-run its import (the "
            "same files, the same --version) or sync to write them again"
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
