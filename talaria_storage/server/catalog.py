"""The versions a server serves, kept fresh: where a digest's sequence is, which version a collection is.

A :class:`ServedStore` holds a *view*: every version of the served
databases, each pinned as a :class:`~talaria_storage.sequences.database.DatabaseSnapshot`
(its look-up index checked or built once) with its sequence-collection
digests. The view is re-made when the store's refs change: a request finds
the view older than ``refresh_seconds``, lists the refs (one listing) and,
only if they differ from the view's, snapshots the new versions. One thread
re-makes it while the others keep answering from the old view (a new
version's index is built once, not by every request that arrives
meanwhile). Versions are immutable, so a view is never wrong, only late; a
version deleted and collected under a view fails its look-ups cleanly
(:class:`StorageError`, a 503) until the next refresh drops it.

Nothing here writes to the store; building a version's look-up index
writes only to the local lookup index, which is a cache.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import REFS
from talaria_storage.sequences.canonical import SequenceId
from talaria_storage.sequences.database import DatabaseSnapshot, SequenceDatabase, open_database
from talaria_storage.sequences.seqcol import CollectionDigests, SequenceCollection, version_collection, version_digests
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.server.settings import ServerSettings
from talaria_storage.storage.store import Store

LEVEL2_CACHE = 4  # level 2 collections kept in memory (a 100,000-sequence one is ~30 MB of objects)


@dataclass(frozen=True, slots=True)
class ServedVersion:
    """One version of a served database, pinned."""

    database: str
    version: str
    manifest: SHA256Hash
    head: bool
    snapshot: DatabaseSnapshot
    collection: CollectionDigests

    @property
    def db(self) -> SequenceDatabase:
        return self.snapshot.database


@dataclass(frozen=True, slots=True)
class SequenceHit:
    """Where a digest's sequence is: a version and the (chunk, record) of every record carrying it."""

    version: ServedVersion
    positions: tuple[tuple[int, int], ...]
    sid: SequenceId


@dataclass(frozen=True, slots=True)
class _View:
    refs: dict[str, SHA256Hash]
    versions: tuple[ServedVersion, ...]  # each database's HEAD first, then newest first
    by_collection: dict[str, ServedVersion]


def lookup_key(sid: SequenceId) -> str:
    """The identifier text a snapshot look-up takes for ``sid`` (never mistaken for an accession)."""
    return "md5:" + sid.value if sid.kind == "md5" else sid.value


class ServedStore:
    """The served databases of one store (see the module docstring)."""

    def __init__(self, store: Store, settings: ServerSettings) -> None:
        self.store = store
        self.settings = settings
        self._catalog = VersionCatalog(store)
        self._databases: dict[str, SequenceDatabase] = {}
        self._view = _View({}, (), {})
        self._checked = 0.0
        self._refreshing = threading.Lock()
        self._level2: OrderedDict[str, SequenceCollection] = OrderedDict()
        self._level2_lock = threading.Lock()
        known = self._catalog.databases()
        missing = [name for name in settings.databases if name not in known]
        if missing:
            raise StorageError(
                f"database '{missing[0]}' does not exist in {store.location} "
                f"(databases: {', '.join(known) or 'none yet'}): name one of them with --database"
            )

    # -- the view

    def refresh(self, *, wait: bool = True) -> None:
        """Re-make the view if the store's refs changed. Without ``wait``, return at once when
        another thread is already doing it (the caller goes on with the current view)."""
        if not self._refreshing.acquire(blocking=wait):
            return
        try:
            refs = self.store.refs.list(REFS)
            self._checked = time.monotonic()
            if refs == self._view.refs:
                return
            self._view = self._make_view(refs)
        finally:
            self._refreshing.release()

    def _make_view(self, refs: dict[str, SHA256Hash]) -> _View:
        old = {(v.database, v.version, v.manifest): v for v in self._view.versions}
        names = list(self.settings.databases) or self._catalog.databases()
        versions: list[ServedVersion] = []
        for name in names:
            db = self._databases.get(name)
            if db is None:
                db = self._databases[name] = open_database(self.store, name)
            infos = self._catalog.versions(name)  # oldest first
            ordered = [i for i in infos if i.is_head] + [i for i in reversed(infos) if not i.is_head]
            for info in ordered:
                kept = old.get((name, info.version, info.manifest))
                if kept is not None:
                    if kept.head != info.is_head:
                        kept = ServedVersion(kept.database, kept.version, kept.manifest, info.is_head,
                                             kept.snapshot, kept.collection)
                    versions.append(kept)
                    continue
                try:
                    snapshot = db.snapshot(info.version)
                    digests = version_digests(db, info.version)
                except StorageError:
                    continue  # deleted (or damaged) between the listing and now: not served
                versions.append(ServedVersion(name, info.version, info.manifest, info.is_head, snapshot, digests))
        by_collection: dict[str, ServedVersion] = {}
        for v in versions:
            by_collection.setdefault(v.collection.digest, v)
        return _View(refs, tuple(versions), by_collection)

    def _current(self) -> _View:
        if time.monotonic() - self._checked >= self.settings.refresh_seconds:
            self.refresh(wait=not self._view.refs)  # the first view is waited for, later ones are not
        return self._view

    def versions(self) -> tuple[ServedVersion, ...]:
        """Every served version: each database's HEAD first, then its other versions, newest first."""
        return self._current().versions

    # -- look-ups

    def find_sequence(self, sid: SequenceId) -> SequenceHit | None:
        """The first served version (see :meth:`versions`) holding the sequence ``sid`` names."""
        key = lookup_key(sid)
        for version in self.versions():
            positions = version.snapshot.positions(key)
            if positions:
                return SequenceHit(version, tuple(positions), sid)
        return None

    def find_collection(self, digest: str) -> ServedVersion | None:
        """The served version whose level 0 seqcol digest is ``digest``."""
        return self._current().by_collection.get(digest)

    def collections(self) -> Iterator[ServedVersion]:
        """One served version per distinct collection digest, in :meth:`versions` order."""
        seen: set[str] = set()
        for version in self.versions():
            if version.collection.digest not in seen:
                seen.add(version.collection.digest)
                yield version

    def level2(self, version: ServedVersion) -> SequenceCollection:
        """A version's collection arrays (the last few are kept in memory)."""
        digest = version.collection.digest
        with self._level2_lock:
            found = self._level2.get(digest)
            if found is not None:
                self._level2.move_to_end(digest)
                return found
        found = version_collection(version.db, version.version)
        if found.digest != digest:  # the version name was deleted and published again meanwhile
            raise StorageError(f"{version.database}@{version.version} changed while being read: ask again")
        with self._level2_lock:
            self._level2[digest] = found
            while len(self._level2) > LEVEL2_CACHE:
                self._level2.popitem(last=False)
        return found

    def close(self) -> None:
        for db in self._databases.values():
            db.close()
