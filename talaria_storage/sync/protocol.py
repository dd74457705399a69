"""Sync: move database versions between two stores (push, pull, status), resumably. DESIGN.md §5.

Words used here:

source, destination
    The store versions come from and the store they go to. A *push* runs
    with the local store as source and the remote as destination, a *pull*
    the other way round; both are :func:`transfer`.
tip
    The manifest a sync makes current at the destination: the source's HEAD,
    or the manifest of ``NAME@VERSION`` when a version is named.
versions to send
    The tip and its ancestors (``Manifest.parent``) down to and not
    including the destination's HEAD, sent oldest first. Ancestors whose
    version ref no longer names them at the source (deleted versions) are
    passed over: their objects may already be collected there. Databases
    move (``refs/<db>/...``) with their reduction profiles; taxonomy refs
    do not (a version carries the taxdump object it was labelled with).
profiles
    The reduction profiles of each database synced (``reductions/<db>/...``;
    with ``NAME@VERSION``, only those that reduced that version), found with
    one listing of that small prefix at the source: profiles are refs, and
    a profile reduced on a version both sides already hold must still be
    found. Objects are never listed. A profile whose ref differs at the
    destination carries its stored reduction, every object it needs
    (:meth:`Reductions.objects`) and the version it reduced with all that
    version reaches (:meth:`Manifest.objects`, the taxdump included),
    minus what the destination holds by construction. Its ref moves after
    the database's refs, by compare-and-swap from the value read in step 1;
    a destination profile the source's does not descend from (through
    ``previous``) is a conflict unless ``force``.
candidates
    Objects reachable from the versions to send (:meth:`Manifest.objects`:
    record chunks, sequence packs, order objects, the taxonomy object; and
    the manifests themselves) minus those reachable from the destination's
    HEAD manifest, which the destination holds by construction (refs are
    written after the objects they reach).

The protocol, per database:

1. **compare refs** (:func:`plan`): the source ref and the destination ref
   are read once each; equal refs end the sync for that database. An
   up-to-date database therefore costs one request on the remote (two when
   ``NAME@VERSION`` is named), and the remote is never listed: without
   ``--database`` the databases come from the *local* store's refs. The
   destination's HEAD must be an ancestor of the tip; otherwise the two
   sides have diverged and the sync stops with :class:`RefConflict` before
   anything is written (``force=True`` overwrites). Every plan is made
   before any object moves, so a conflict in one database changes nothing
   in any.
2. **diff manifests**: candidates are computed from the manifests alone and
   the destination is asked only about them, in batches
   (:meth:`ChunkStore.present`, i.e. ``Backend.exists_many``).
3. **copy** the missing objects on a thread pool (``threads``, default the
   running store's ``[storage] threads`` / ``TALARIA_STORAGE_THREADS``) as
   stored frames (:meth:`ChunkStore.get_framed` -> :meth:`ChunkStore.put_framed`,
   no recompression), each re-hashed on arrival before it is written. A
   frame that does not hash to its name is fetched once more (it may have
   been damaged in transit) and then refused with an error naming the
   source object; it is never written. Manifests go after the chunks.
4. **refs last**: version refs are created (create-only), then the
   destination's HEAD moves by compare-and-swap from the value read in
   step 1. If it moved meanwhile the sync stops with :class:`RefConflict`
   naming the ref and ``--force``.

Resumability: progress is processing state (``state/<id>``, see
:mod:`talaria_storage.storage.processing`) in the store that runs the sync (the
local one), recorded in batches as objects are verified at the
destination. A re-run, after a crash or a SIGKILL at any point, plans
again, leaves out what the state says is done and asks the destination
about the rest, so an object verified at the destination is never copied
twice; the state is completed (removed) when HEAD has moved. Because refs
move only after every object they reach is in place, the destination never
holds a ref to a missing object, whenever the process dies. Objects this
run did not write itself (an earlier run's copies, found present) are
unreferenced at the destination until then, and a GC there past its grace
period may take them, so just before the refs move the destination is
asked about them once more and what is gone is copied again.

Every call to either store goes through one :class:`RetryPolicy`
(:mod:`talaria_storage.storage.retry`): transient backend errors
(:attr:`BackendError.retryable`) are retried with backoff, in planning as
in copying; a permanent one stops the sync at once with the backend's
message (which names the fix) and, once copying has begun, a note that the
progress is saved and a re-run resumes.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Protocol

from talaria_storage.core.errors import (
    BackendError,
    ChunkNotFound,
    CompressionError,
    HashMismatch,
    RefConflict,
    StorageError,
    VersionNotFound,
)
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import REFS, reduction_prefix, ref_key
from talaria_storage.core.types import OperationType, RemoteStatus, SourceInfo, SyncResult
from talaria_storage.sequences.manifest import Manifest
from talaria_storage.sequences.versions import HEAD, VersionCatalog, parse_spec
from talaria_storage.storage.chunk_store import ChunkStore
from talaria_storage.storage.reductions import StoredReduction
from talaria_storage.storage.retry import RetryPolicy
from talaria_storage.storage.store import Store

#: Hashes asked about per ``exists_many`` call: large enough to amortise a round trip, small
#: enough that one batch of answers never holds much memory.
PRESENCE_BATCH = 1000
#: Verified objects per state update: a SIGKILL loses at most this many "done" marks, and
#: those objects are then found at the destination by the presence check, not copied again.
STATE_BATCH = 64
#: Frames in flight per copying thread (bounds memory whatever the number of objects).
WINDOW_PER_THREAD = 4


def version_objects(manifest: Manifest) -> dict[SHA256Hash, int]:
    """The ``chunks/`` objects a version needs (:meth:`Manifest.objects`), hash -> size (0: unrecorded)."""
    return {o.hash: o.size for o in manifest.objects()}


# -- one side of a sync ------------------------------------------------------------------------

#: A namespace of a store that holds framed, content-addressed objects.
Namespace = Callable[[Store], ChunkStore]


def chunks_of(store: Store) -> ChunkStore:
    """The ``chunks/`` namespace."""
    return store


def manifests_of(store: Store) -> ChunkStore:
    """The ``manifests/`` namespace."""
    return store.manifests


class _Side:
    """One store as a sync sees it: the reads and writes it needs, each retried under one policy."""

    def __init__(self, store: Store, retry: RetryPolicy) -> None:
        self.store = store
        self.retry = retry
        self.location = store.location
        self._manifests: dict[SHA256Hash, Manifest] = {}  # content-addressed: never stale

    def ref(self, key: str) -> SHA256Hash | None:
        return self.retry.call(self.store.refs.get, key)

    def databases(self) -> list[str]:
        """Names of the databases with a HEAD (one listing of ``refs/``)."""
        return self.retry.call(VersionCatalog(self.store).databases)

    def version_refs(self) -> dict[str, dict[str, SHA256Hash]]:
        """database -> version name (``HEAD`` included) -> manifest hash, from one listing."""
        found: dict[str, dict[str, SHA256Hash]] = {}
        for key, h in self.retry.call(self.store.refs.list, REFS).items():
            parts = key.split("/")
            if len(parts) == 3:
                found.setdefault(parts[1], {})[parts[2]] = h
        return found

    def manifest(self, h: SHA256Hash) -> Manifest | None:
        """The manifest ``h``, or None when it is not here (a corrupt one raises); each is read once."""
        found = self._manifests.get(h)
        if found is not None:
            return found
        try:
            raw = self.retry.call(self.store.manifests.get_chunk, h)
        except ChunkNotFound:
            return None  # not remembered: a sync may copy it here
        found = self._manifests[h] = Manifest.from_bytes(raw, f"manifest {h.to_hex()[:12]} in {self.location}")
        return found

    def named_manifest(self, h: SHA256Hash, named_by: str) -> Manifest:
        manifest = self.manifest(h)
        if manifest is None:
            raise StorageError(
                f"'{named_by}' in {self.location} names manifest {h.to_hex()}, which is missing: "
                "the store is damaged; restore the manifest from another copy or re-import"
            )
        return manifest

    def ancestry(
        self, tip: SHA256Hash, tip_manifest: Manifest, stop: SHA256Hash | None
    ) -> tuple[list[tuple[SHA256Hash, Manifest]], bool]:
        """Manifests from ``tip`` back along parents (newest first), stopping before ``stop``.

        Returns (chain, reached): ``reached`` is True when ``stop`` was met (or
        is None and the root was reached). A parent missing here ends the
        walk: an unnamed ancestor may have been collected.
        """
        chain: list[tuple[SHA256Hash, Manifest]] = []
        h: SHA256Hash | None = tip
        manifest: Manifest | None = tip_manifest
        while h is not None and manifest is not None:
            if h == stop:
                return chain, True
            chain.append((h, manifest))
            h = manifest.parent
            manifest = None if h is None or h == stop else self.manifest(h)
        return chain, h == stop

    def present(
        self, namespace: Namespace, hashes: Iterable[SHA256Hash], *, freshen: bool = False
    ) -> set[SHA256Hash]:
        """The subset of ``hashes`` held here, asked in batches of :data:`PRESENCE_BATCH`;
        with ``freshen``, the old ones are touched (:meth:`ChunkStore.freshen`)."""
        todo = list(hashes)
        target = namespace(self.store)
        ask = target.freshen if freshen else target.present
        found: set[SHA256Hash] = set()
        for start in range(0, len(todo), PRESENCE_BATCH):
            found |= self.retry.call(ask, todo[start : start + PRESENCE_BATCH])
        return found


# -- plans -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfilePlan:
    """One reduction profile a sync carries (see "profiles" in the module docstring)."""

    key: str
    #: the stored reduction the source's profile names, and the destination's as read at planning
    tip: SHA256Hash
    dest: SHA256Hash | None
    #: ``chunks/`` objects it needs (hash -> size, 0: unrecorded) and its manifests, the
    #: reduced version's (when any) before the stored reduction
    chunks: dict[SHA256Hash, int]
    manifests: tuple[SHA256Hash, ...]
    #: True when the destination's profile was not an ancestor and ``force`` was given
    forced: bool = False


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """What syncing one database will do; made before any object moves (see the module docstring)."""

    database: str
    #: what was asked: ``HEAD`` or a version name (with the tip, the identity of the sync's state)
    target: str
    #: the manifest that becomes current at the destination, and its version name ("" when unread)
    tip: SHA256Hash
    tip_version: str
    #: the destination's HEAD as read at the start: the compare-and-swap expectation
    dest_head: SHA256Hash | None
    #: whether the destination's HEAD moves to ``tip``
    move_head: bool
    #: versions whose objects are sent, oldest first
    send: tuple[tuple[SHA256Hash, Manifest], ...] = ()
    #: version refs to create at the destination (create-only)
    create_refs: tuple[tuple[str, SHA256Hash], ...] = ()
    #: version refs to re-point at the destination (only with ``force``)
    overwrite_refs: tuple[tuple[str, SHA256Hash], ...] = ()
    #: objects the destination holds by construction (reachable from refs it already has)
    base: frozenset[SHA256Hash] = frozenset()
    #: True when the destination's HEAD was not an ancestor of the tip and ``force`` was given
    forced: bool = False
    #: reduction profiles whose refs move at the destination
    profiles: tuple[ProfilePlan, ...] = ()

    @property
    def up_to_date(self) -> bool:
        return not (self.send or self.create_refs or self.overwrite_refs or self.move_head or self.profiles)

    @property
    def versions(self) -> tuple[str, ...]:
        """Names of the versions sent, oldest first."""
        return tuple(manifest.version for _, manifest in self.send)

    def candidates(self) -> tuple[dict[SHA256Hash, int], list[SHA256Hash]]:
        """(chunk objects with expected sizes, manifests oldest first) the destination may lack."""
        chunks: dict[SHA256Hash, int] = {}
        for _, manifest in self.send:
            for h, size in version_objects(manifest).items():
                if h not in self.base:
                    chunks[h] = size
        manifests = [h for h, _ in self.send]
        for profile in self.profiles:
            for h, size in profile.chunks.items():
                if h not in self.base:
                    chunks.setdefault(h, size)
            manifests += [h for h in profile.manifests if h not in manifests]
        return chunks, manifests


def _plan_one(source: _Side, dest: _Side, database: str, version: str | None, force: bool) -> SyncPlan:
    head_key = ref_key(database, HEAD)
    target = version or HEAD
    # 1. Compare refs: one read on each side ends the plan of an up-to-date database.
    if version is None:
        tip = source.ref(head_key)
        if tip is None:
            known = ", ".join(source.databases()) or "none"
            raise VersionNotFound(
                f"database '{database}' does not exist in {source.location} (databases: {known})"
            )
        dest_head = dest.ref(head_key)
        if dest_head == tip:
            return SyncPlan(database, target, tip, "", dest_head, move_head=False)
        tip_manifest = source.named_manifest(tip, head_key)
    else:
        version_key = ref_key(database, version)
        tip = source.ref(version_key)
        if tip is None:
            raise VersionNotFound(f"database '{database}' has no version '{version}' in {source.location}")
        if dest.ref(version_key) == tip:
            return SyncPlan(database, target, tip, version, None, move_head=False)
        dest_head = dest.ref(head_key)
        tip_manifest = source.named_manifest(tip, version_key)

    chain, reached = source.ancestry(tip, tip_manifest, dest_head)
    forced = False
    move_head = dest_head != tip
    if not reached and dest_head is not None:
        if version is not None:
            # A named version whose history does not hold the destination's HEAD is sent on
            # its own, as a version; HEAD stays where it is (that is not a conflict).
            chain, move_head = chain[:1], False
        elif force:
            forced = True
        else:
            raise RefConflict(
                head_key,
                f"an ancestor of {tip.to_hex()[:12]}",
                dest_head.to_hex()[:12],
                hint=(
                    f"{dest.location} holds versions that {source.location} lacks (the histories "
                    "diverged): sync them the other way first, or pass --force to overwrite"
                ),
            )
    if version is not None and not chain:
        chain = [(tip, tip_manifest)]  # the destination's HEAD is this version, under no name yet

    # 2. What the destination holds by construction: what its HEAD and its equal refs reach.
    base: set[SHA256Hash] = set()
    if dest_head is not None:
        head_manifest = dest.manifest(dest_head)
        if head_manifest is not None:
            base.update(version_objects(head_manifest))
    send: list[tuple[SHA256Hash, Manifest]] = []
    create: list[tuple[str, SHA256Hash]] = []
    overwrite: list[tuple[str, SHA256Hash]] = []
    for h, manifest in chain:
        key = ref_key(database, manifest.version)
        named_at_source = (h == tip and version is not None) or source.ref(key) == h
        if not named_at_source and h != tip:
            continue  # an ancestor no longer named at the source (see "versions to send")
        named = dest.ref(key) if named_at_source else None
        if named == h:
            base.update(version_objects(manifest))  # already there, with all it reaches
            continue
        if h != dest_head:
            send.append((h, manifest))
        if not named_at_source:
            continue  # the tip under a version name that now means something else at the source
        if named is None:
            create.append((key, h))
        elif force:
            overwrite.append((key, h))
        else:
            raise RefConflict(
                key,
                h.to_hex()[:12],
                named.to_hex()[:12],
                hint=(
                    f"version '{manifest.version}' of '{database}' names different content in "
                    f"{dest.location}: rename one of them, or pass --force to overwrite"
                ),
            )
    return SyncPlan(
        database,
        target,
        tip,
        tip_manifest.version,
        dest_head,
        move_head=move_head,
        send=tuple(reversed(send)),
        create_refs=tuple(reversed(create)),
        overwrite_refs=tuple(reversed(overwrite)),
        base=frozenset(base),
        forced=forced,
    )


def _specs(databases: Sequence[str] | None, side: _Side) -> list[tuple[str, str | None]]:
    if databases:
        return list(dict.fromkeys(parse_spec(spec) for spec in databases))
    return [(name, None) for name in side.databases()]


def plan(
    source: Store,
    dest: Store,
    databases: Sequence[str] | None = None,
    *,
    force: bool = False,
    retry: RetryPolicy | None = None,
) -> list[SyncPlan]:
    """Plan bringing ``dest`` up to date with ``source`` for each ``NAME[@VERSION]`` in ``databases``.

    ``None`` means every database of ``source`` (a listing of the source's
    refs, never of the destination's). Raises :class:`RefConflict` when a
    destination has diverged and ``force`` is False, and
    :class:`VersionNotFound` for a name the source lacks; nothing is written.
    """
    policy = retry if retry is not None else RetryPolicy()
    return _plans(_Side(source, policy), _Side(dest, policy), databases, force)


def _plans(source: _Side, dest: _Side, databases: Sequence[str] | None, force: bool) -> list[SyncPlan]:
    plans = []
    for name, version in _specs(databases, source):
        p = _plan_one(source, dest, name, version, force)
        plans.append(replace(p, profiles=_plan_profiles(source, dest, p, version, force)))
    return plans


def _descends(source: _Side, stored: StoredReduction, ancestor: SHA256Hash) -> bool:
    """True when ``ancestor`` is on ``stored``'s chain of ``previous`` reductions held at the source."""
    seen: set[SHA256Hash] = set()
    previous = stored.previous
    while previous is not None and previous not in seen:
        if previous == ancestor:
            return True
        seen.add(previous)
        if not source.retry.call(source.store.manifests.has_chunk, previous):
            return False  # collected: the chain can be followed no further
        previous = source.retry.call(source.store.reductions.load, previous).previous
    return False


def _plan_profiles(
    source: _Side, dest: _Side, p: SyncPlan, version: str | None, force: bool
) -> tuple[ProfilePlan, ...]:
    """The profiles of ``p.database`` whose refs differ at the destination (one listing at the source)."""
    found: list[ProfilePlan] = []
    refs = source.retry.call(source.store.refs.list, reduction_prefix(p.database))
    for key, tip in sorted(refs.items()):
        stored = source.retry.call(source.store.reductions.load, tip, key)
        reduced = stored.manifest.source_manifest
        if version is not None and reduced != p.tip:
            continue  # NAME@VERSION carries only the profiles of that version
        there = dest.ref(key)
        if there == tip:
            continue
        forced = False
        if there is not None and not _descends(source, stored, there):
            if not force:
                raise RefConflict(
                    key, tip.to_hex()[:12], there.to_hex()[:12],
                    hint=(
                        f"{dest.location} holds another reduction under this profile (not an earlier one of "
                        f"{source.location}'s): sync it the other way first, or pass --force to overwrite"
                    ),
                )
            forced = True
        chunks = dict.fromkeys(source.retry.call(source.store.reductions.objects, stored), 0)
        manifests: list[SHA256Hash] = []
        if reduced is not None:
            chunks.update(version_objects(source.named_manifest(reduced, key)))
            manifests.append(reduced)
        manifests.append(tip)
        found.append(ProfilePlan(key, tip, there, chunks, tuple(manifests), forced))
    return tuple(found)


# -- progress ----------------------------------------------------------------------------------


class SyncProgress(Protocol):
    """Receives progress as objects are copied (the CLI draws bars or prints lines from it)."""

    def begin(self, database: str, objects: int, estimated_bytes: int) -> None:
        """Copying starts: ``objects`` to copy, about ``estimated_bytes`` in total."""

    def advance(self, database: str, objects: int, nbytes: int) -> None:
        """``objects`` more were handled (copied or found present), ``nbytes`` of them written."""

    def end(self, database: str, result: SyncResult) -> None:
        """The database is done (up to date, or its refs moved)."""


class _SilentProgress:
    """The null :class:`SyncProgress`."""

    def begin(self, database: str, objects: int, estimated_bytes: int) -> None:
        return None

    def advance(self, database: str, objects: int, nbytes: int) -> None:
        return None

    def end(self, database: str, result: SyncResult) -> None:
        return None


# -- copying -----------------------------------------------------------------------------------


class _Copier:
    """Copies framed objects from one side to the other, verifying each, on a thread pool."""

    def __init__(self, source: _Side, dest: _Side, threads: int) -> None:
        self.source = source
        self.dest = dest
        self.threads = max(1, threads)

    def copy_one(self, namespace: Namespace, h: SHA256Hash) -> int:
        """Copy one object; the framed bytes written (0 when the destination already had it)."""
        src, dst = namespace(self.source.store), namespace(self.dest.store)
        retry = self.source.retry
        for attempt in (1, 2):
            framed = retry.call(src.get_framed, h)
            try:
                written = retry.call(dst.put_framed, h, framed)  # re-hashes before writing
            except (HashMismatch, CompressionError) as exc:
                if attempt == 1:
                    continue  # perhaps damaged in transit: read it once more
                reason = f"it hashes to {exc.actual.to_hex()}" if isinstance(exc, HashMismatch) else str(exc)
                raise StorageError(
                    f"object '{src.key_for(h)}' in {src.location} is corrupt ({reason}); it was not "
                    f"copied to {dst.location}: repair the source (run 'talaria-storage verify' there, then "
                    "restore the object from another copy or re-import), and re-run the sync"
                ) from exc
            return len(framed) if written else 0
        raise AssertionError("unreachable")  # pragma: no cover

    def copy_many(
        self,
        namespace: Namespace,
        hashes: Sequence[SHA256Hash],
        done: Callable[[list[SHA256Hash]], None],
        advance: Callable[[int, int], None],
    ) -> tuple[int, int, int]:
        """Copy ``hashes`` concurrently; ``done`` gets verified hashes in batches.

        Returns (objects written, bytes written, objects found already present).
        On the first error the objects still queued are cancelled, those that
        finished are reported to ``done``, and the error is raised.
        """
        written = nbytes = present = 0
        finished: list[SHA256Hash] = []
        todo = iter(hashes)
        pending: dict[Future[int], SHA256Hash] = {}
        with ThreadPoolExecutor(self.threads, thread_name_prefix="sync-copy") as pool:
            try:
                while True:
                    for h in todo:
                        pending[pool.submit(self.copy_one, namespace, h)] = h
                        if len(pending) >= WINDOW_PER_THREAD * self.threads:
                            break
                    if not pending:
                        break
                    completed, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    for future in completed:
                        size = future.result()
                        finished.append(pending.pop(future))
                        if size:
                            written, nbytes = written + 1, nbytes + size
                        else:
                            present += 1
                        advance(1, size)
                    if len(finished) >= STATE_BATCH:
                        done(finished)
                        finished = []
            except BaseException:
                for future in pending:
                    future.cancel()
                for future, h in pending.items():
                    if not future.cancelled() and future.exception() is None:
                        finished.append(h)
                raise
            finally:
                if finished:
                    done(finished)
        return written, nbytes, present


# -- transfer ----------------------------------------------------------------------------------


@dataclass
class _Tally:
    copied: int = 0
    nbytes: int = 0
    skipped: int = 0
    refs: list[str] = field(default_factory=list)

    def add(self, other: _Tally) -> None:
        self.copied += other.copied
        self.nbytes += other.nbytes
        self.skipped += other.skipped
        self.refs.extend(other.refs)

    def result(self, retried: int, seconds: float) -> SyncResult:
        return SyncResult(self.copied, self.nbytes, self.skipped, retried, tuple(self.refs), seconds)


def _moved(key: str, expected: SHA256Hash | None, actual: SHA256Hash | None) -> RefConflict:
    return RefConflict(
        key,
        expected.to_hex()[:12] if expected else None,
        actual.to_hex()[:12] if actual else None,
        hint="another writer moved it during the sync; re-run to sync again, or pass --force to overwrite",
    )


class _Run:
    """One :func:`transfer`: both sides, the copier, the store that keeps the state, the observer."""

    def __init__(
        self, source: _Side, dest: _Side, operation: OperationType, threads: int, progress: SyncProgress
    ) -> None:
        self.source = source
        self.dest = dest
        self.operation = operation
        pushing = operation is OperationType.SYNC_PUSH
        self.runner = source.store if pushing else dest.store
        self.other = dest.location if pushing else source.location
        self.copier = _Copier(source, dest, threads)
        self.progress = progress

    def execute(self, p: SyncPlan) -> _Tally:
        states = self.runner.states
        if p.up_to_date:
            leftover = states.find(p.database, self.operation, p.tip, p.target)
            if leftover is not None and leftover.source_info.source == self.other:
                states.complete(leftover.operation_id)  # killed after its refs moved, before this
            return _Tally()
        chunk_sizes, manifests = p.candidates()
        # The state's id is derived from this identity, so a re-run resumes the killed run's state.
        state = states.start(
            self.operation,
            SourceInfo(
                p.database,
                source=self.other,
                version=p.tip_version,
                extra={"tip": p.tip.to_hex(), "versions": list(p.versions), "forced": p.forced},
            ),
            manifest_hash=p.tip,
            manifest_version=p.target,
            total_chunks=len(chunk_sizes) + len(manifests),
        )
        try:
            tally = self._copy_and_publish(p, chunk_sizes, manifests, state.operation_id, state.completed_chunks)
        except BackendError as exc:
            raise BackendError(
                f"{exc}; the sync of '{p.database}' stopped with its progress saved in "
                f"{self.runner.location}: run it again to resume",
                retryable=exc.retryable,
                key=exc.key,
            ) from exc
        states.complete(state.operation_id)
        return tally

    def _copy_and_publish(
        self,
        p: SyncPlan,
        chunk_sizes: dict[SHA256Hash, int],
        manifests: list[SHA256Hash],
        state_id: str,
        done_before: frozenset[SHA256Hash],
    ) -> _Tally:
        tally = _Tally()

        def record(hashes: list[SHA256Hash]) -> None:
            self.runner.states.record_completed(state_id, hashes)

        # 2. Ask the destination about the candidates not yet recorded as done.
        wanted = {chunks_of: sorted(chunk_sizes), manifests_of: manifests}
        here: dict[Namespace, set[SHA256Hash]] = {}
        to_copy: dict[Namespace, list[SHA256Hash]] = {}
        for namespace, hashes in wanted.items():
            fresh = [h for h in hashes if h not in done_before]
            here[namespace] = self.dest.present(namespace, fresh)
            to_copy[namespace] = [h for h in fresh if h not in here[namespace]]
        found = sorted(here[chunks_of]) + sorted(here[manifests_of])
        if found:
            record(found)  # so a re-run need not ask again
        self.progress.begin(
            p.database,
            len(to_copy[chunks_of]) + len(to_copy[manifests_of]),
            sum(chunk_sizes[h] for h in to_copy[chunks_of]),
        )

        def advance(objects: int, nbytes: int) -> None:
            self.progress.advance(p.database, objects, nbytes)

        # 3. Copy: chunks first, then the manifests that list them (oldest version first).
        for namespace, hashes in wanted.items():
            written, nbytes, present = self.copier.copy_many(namespace, to_copy[namespace], record, advance)
            # What this run did not write (an earlier run's copies, another writer's objects) is
            # unreferenced at the destination until the refs move, so a GC there may have taken
            # it since it was last seen: look once more, freshening the old ones so a GC now
            # spares them, and copy again only what is gone.
            reused = [h for h in hashes if h in done_before or h in here[namespace]]
            gone = sorted(set(reused) - self.dest.present(namespace, reused, freshen=True))
            again, again_bytes, _ = self.copier.copy_many(namespace, gone, record, advance)
            tally.copied += written + again
            tally.nbytes += nbytes + again_bytes
            tally.skipped += present + len(reused) - len(gone)

        # 4. Refs last.
        self._move_refs(p, tally)
        return tally

    def _move_refs(self, p: SyncPlan, tally: _Tally) -> None:
        refs = self.dest.store.refs
        call = self.dest.retry.call
        head_key = ref_key(p.database, HEAD)
        if p.move_head and not p.forced:
            # Checked once more before any ref is written, so a HEAD moved during the copy
            # leaves the destination's refs as the other writer set them.
            current = self.dest.ref(head_key)
            if current != p.dest_head and current != p.tip:
                raise _moved(head_key, p.dest_head, current)
        for key, h in p.create_refs:
            if call(refs.create, key, h, force=p.forced, conflict=_moved):
                tally.refs.append(key)
        for key, h in p.overwrite_refs:
            call(refs.set, key, h)
            tally.refs.append(key)
        if p.move_head and call(refs.advance, head_key, p.dest_head, p.tip, force=p.forced, conflict=_moved):
            tally.refs.append(head_key)
        for profile in p.profiles:  # after the database's refs: a profile's version is in place by now
            if call(refs.advance, profile.key, profile.dest, profile.tip, force=profile.forced, conflict=_moved):
                tally.refs.append(profile.key)


def transfer(
    source: Store,
    dest: Store,
    databases: Sequence[str] | None = None,
    *,
    operation: OperationType = OperationType.SYNC_PUSH,
    force: bool = False,
    threads: int | None = None,
    progress: SyncProgress | None = None,
    retry: RetryPolicy | None = None,
) -> SyncResult:
    """Bring ``dest`` up to date with ``source`` for ``databases`` (``NAME[@VERSION]``; None: all).

    ``operation`` says which side runs the sync and keeps its state:
    ``SYNC_PUSH`` the source, ``SYNC_PULL`` the destination. ``threads``
    defaults to that store's ``threads``. See the module docstring for the
    protocol and its guarantees.
    """
    if operation not in (OperationType.SYNC_PUSH, OperationType.SYNC_PULL):
        raise ValueError(f"transfer() runs sync-push or sync-pull, not {operation.value}")
    started = time.monotonic()
    policy = retry if retry is not None else RetryPolicy()
    retries_before = policy.retries
    observer = progress if progress is not None else _SilentProgress()
    source_side, dest_side = _Side(source, policy), _Side(dest, policy)
    plans = _plans(source_side, dest_side, databases, force)  # every plan before anything moves
    runner = source if operation is OperationType.SYNC_PUSH else dest
    run = _Run(source_side, dest_side, operation, threads or runner.threads, observer)
    total = _Tally()
    for p in plans:
        db_started, db_retries = time.monotonic(), policy.retries
        tally = run.execute(p)
        total.add(tally)
        observer.end(p.database, tally.result(policy.retries - db_retries, time.monotonic() - db_started))
    return total.result(policy.retries - retries_before, time.monotonic() - started)


def push(
    local: Store,
    remote: Store,
    databases: Sequence[str] | None = None,
    *,
    force: bool = False,
    threads: int | None = None,
    progress: SyncProgress | None = None,
    retry: RetryPolicy | None = None,
) -> SyncResult:
    """Send ``databases`` (None: every local database) to ``remote``; the state is kept in ``local``."""
    return transfer(
        local, remote, databases, operation=OperationType.SYNC_PUSH,
        force=force, threads=threads, progress=progress, retry=retry,
    )


def pull(
    local: Store,
    remote: Store,
    databases: Sequence[str] | None = None,
    *,
    force: bool = False,
    threads: int | None = None,
    progress: SyncProgress | None = None,
    retry: RetryPolicy | None = None,
) -> SyncResult:
    """Fetch ``databases`` from ``remote`` into ``local``, where the state is kept.

    None means every database ``local`` already has (its own refs are listed,
    not the remote's); a local store with no database yet takes every
    database of the remote, which then is listed once (a first pull has
    nothing to be up to date with).
    """
    policy = retry if retry is not None else RetryPolicy()
    if not databases:
        databases = _Side(local, policy).databases() or _Side(remote, policy).databases()
    return transfer(
        remote, local, databases, operation=OperationType.SYNC_PULL,
        force=force, threads=threads, progress=progress, retry=policy,
    )


def copy_objects(
    source: Store,
    dest: Store,
    hashes: Iterable[SHA256Hash],
    *,
    threads: int | None = None,
    retry: RetryPolicy | None = None,
) -> int:
    """Copy the chunks ``hashes`` that ``dest`` lacks, verifying each; returns how many were written.

    The object half of a sync, without refs or state (``RemoteStorage.fetch_chunks``/``push_chunks``).
    """
    policy = retry if retry is not None else RetryPolicy()
    source_side, dest_side = _Side(source, policy), _Side(dest, policy)
    wanted = sorted(set(hashes))
    here = dest_side.present(chunks_of, wanted)
    copier = _Copier(source_side, dest_side, threads or source.threads)
    written, _, _ = copier.copy_many(chunks_of, [h for h in wanted if h not in here], lambda _: None, lambda _o, _b: None)
    return written


# -- status ------------------------------------------------------------------------------------


class Relation(str, enum.Enum):
    """How one database's HEADs relate across the two stores."""

    IN_SYNC = "in-sync"
    LOCAL_AHEAD = "local-ahead"  # the remote's HEAD is an ancestor of the local one: push
    REMOTE_AHEAD = "remote-ahead"  # the local HEAD is an ancestor of the remote's: pull
    DIVERGED = "diverged"  # neither: --force one way
    LOCAL_ONLY = "local-only"
    REMOTE_ONLY = "remote-only"


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    """One database compared across a store and its remote."""

    database: str
    relation: Relation
    local_head: SHA256Hash | None
    remote_head: SHA256Hash | None
    #: versions the local store names that the remote lacks (or names differently), oldest first
    missing_remote_versions: tuple[str, ...] = ()
    #: versions the remote names that the local store lacks (or names differently), oldest first
    missing_local_versions: tuple[str, ...] = ()
    #: objects (chunks and manifests) those versions need that the other side does not hold
    missing_remote_objects: int = 0
    missing_local_objects: int = 0


def _missing_versions(
    have: _Side, have_refs: dict[str, SHA256Hash], other: _Side, other_refs: dict[str, SHA256Hash]
) -> tuple[tuple[str, ...], int]:
    """Versions ``have`` names that ``other`` lacks, and how many objects ``other`` misses for them."""
    loaded = [
        (v, h, have.manifest(h)) for v, h in have_refs.items() if v != HEAD and other_refs.get(v) != h
    ]
    found = sorted(((v, h, m) for v, h, m in loaded if m is not None), key=lambda item: (item[2].created, item[0]))
    chunks: set[SHA256Hash] = set()
    for _, _, manifest in found:
        chunks.update(version_objects(manifest))
    manifests = {h for _, h, _ in found}
    lacking = len(chunks - other.present(chunks_of, chunks)) + len(manifests - other.present(manifests_of, manifests))
    return tuple(v for v, _, _ in found), lacking


def _relation(local: _Side, remote: _Side, lh: SHA256Hash | None, rh: SHA256Hash | None) -> Relation:
    if lh is None:
        return Relation.REMOTE_ONLY
    if rh is None:
        return Relation.LOCAL_ONLY
    if lh == rh:
        return Relation.IN_SYNC
    local_tip = local.manifest(lh)
    if local_tip is not None and local.ancestry(lh, local_tip, rh)[1]:
        return Relation.LOCAL_AHEAD
    remote_tip = remote.manifest(rh)
    if remote_tip is not None and remote.ancestry(rh, remote_tip, lh)[1]:
        return Relation.REMOTE_AHEAD
    return Relation.DIVERGED


def status(
    local: Store,
    remote: Store,
    databases: Sequence[str] | None = None,
    *,
    retry: RetryPolicy | None = None,
) -> list[DatabaseStatus]:
    """Compare every database (or the named ones) of ``local`` and ``remote``, version by version.

    Unlike push and pull this lists the refs of both stores (one listing
    each) and asks each side about the objects of the versions it lacks.
    """
    policy = retry if retry is not None else RetryPolicy()
    mine, theirs = _Side(local, policy), _Side(remote, policy)
    local_refs, remote_refs = mine.version_refs(), theirs.version_refs()
    if databases:
        names = list(dict.fromkeys(parse_spec(spec)[0] for spec in databases))
    else:
        names = sorted(set(local_refs) | set(remote_refs))
    report: list[DatabaseStatus] = []
    for name in names:
        here, there = local_refs.get(name, {}), remote_refs.get(name, {})
        lh, rh = here.get(HEAD), there.get(HEAD)
        if lh is None and rh is None:
            raise VersionNotFound(f"database '{name}' exists neither in {local.location} nor in {remote.location}")
        to_remote, remote_lacks = _missing_versions(mine, here, theirs, there)
        to_local, local_lacks = _missing_versions(theirs, there, mine, here)
        report.append(
            DatabaseStatus(
                name, _relation(mine, theirs, lh, rh), lh, rh, to_remote, to_local, remote_lacks, local_lacks
            )
        )
    return report


def summarize(remote: str, report: Sequence[DatabaseStatus]) -> RemoteStatus:
    """Fold a :func:`status` report into the trait's :class:`RemoteStatus` (database names per relation)."""

    def named(*relations: Relation) -> tuple[str, ...]:
        return tuple(s.database for s in report if s.relation in relations)

    return RemoteStatus(
        remote=remote,
        in_sync=named(Relation.IN_SYNC),
        local_ahead=named(Relation.LOCAL_AHEAD, Relation.LOCAL_ONLY),
        remote_ahead=named(Relation.REMOTE_AHEAD, Relation.REMOTE_ONLY),
        diverged=named(Relation.DIVERGED),
        missing_remote_objects=sum(s.missing_remote_objects for s in report),
        missing_local_objects=sum(s.missing_local_objects for s in report),
    )
