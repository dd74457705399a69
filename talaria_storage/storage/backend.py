"""The Backend ABC: a small blob store that knows nothing of hashes or sequences.

An implementation provides a handful of primitives; everything else has a
working default here that an implementation may override for speed
(batch variants, ranged reads). Implementations must:

* call :func:`talaria_storage.core.keys.validate_key` on every key they receive;
* make :meth:`Backend.put` atomic: a reader sees the old bytes or the new
  bytes, never a torn object;
* make :meth:`Backend.put_if_version` a real conditional write of the
  service (``O_EXCL``/link on a filesystem, ``If-None-Match``/``If-Match`` on
  S3, generation preconditions on GCS, ETags on Azure): of N concurrent
  writers expecting the same version, exactly one wins;
* translate their own exceptions into :class:`ObjectNotFound`,
  :class:`PreconditionFailed` and :class:`BackendError` (with ``retryable``
  set) at their edge.

Version tokens are opaque strings (an ETag, a generation, a content digest);
callers only hand back what :meth:`Backend.read_versioned` gave them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from talaria_storage.core.errors import ObjectNotFound, PreconditionFailed


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object: its key, stored size in bytes and modification time (epoch seconds)."""

    key: str
    size: int
    modified: float


def touched_since(listed: ObjectInfo, now: ObjectInfo) -> bool:
    """Whether ``now`` (a later stat of the object ``listed`` describes) shows a touch since.

    Every backend's stat reports an untouched object no later than its listing did (HTTP
    dates are whole seconds where an S3 listing carries milliseconds: earlier, never later;
    the backend suite checks it), so any later time is a touch.
    """
    return now.modified > listed.modified + 1e-3


@dataclass(frozen=True, slots=True)
class Versioned:
    """An object's bytes together with the version token a conditional write expects."""

    data: bytes
    version: str


class Backend(ABC):
    """A key -> bytes store with conditional writes. See the module docstring for the contract."""

    #: URL-like location this backend was opened from, with no secrets in it.
    location: str = ""

    # -- capabilities ---------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        """True when requests are cheap local calls (no network round trip)."""
        return False

    @property
    def supports_native_ranges(self) -> bool:
        """True when :meth:`get_range` reads only the requested bytes."""
        return False

    @property
    def origin(self) -> "Backend":
        """The backend that holds the objects, past any local cache: what ``verify`` reads."""
        return self

    def forget(self, key: str) -> None:
        """Drop any local copy of ``key`` (a cache's), because reading it showed it corrupt."""

    # -- primitives -----------------------------------------------------------------------------

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key``, replacing any previous object atomically."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Return the whole object; :class:`ObjectNotFound` when absent."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """True when ``key`` holds an object."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield every object whose key starts with ``prefix``, in no particular order."""

    @abstractmethod
    def read_versioned(self, key: str) -> Versioned | None:
        """Return the object with its version token, or None when absent."""

    @abstractmethod
    def put_if_version(self, key: str, data: bytes, expected: str | None) -> str:
        """Write only if the current version is ``expected`` (None: only if absent).

        Returns the new version token; raises :class:`PreconditionFailed`
        when another writer got there first.
        """

    # -- defaults (slow but correct for every backend; override for speed) ----------------------

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object (end clipped to its size)."""
        if start < 0 or end < start:
            raise ValueError(f"invalid range [{start}, {end}) for '{key}'")
        return self.get(key)[start:end]

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` only if it does not exist. True when this call created it."""
        try:
            self.put_if_version(key, data, None)
        except PreconditionFailed:
            return False
        return True

    def compare_and_swap(self, key: str, expected: bytes | None, new: bytes) -> bool:
        """Replace the object with ``new`` only if it currently holds ``expected``.

        ``expected=None`` means "only if absent". True when the swap happened;
        False when the current content differs or another writer raced us.
        """
        current = self.read_versioned(key)
        if expected is None:
            if current is not None:
                return False
            token = None
        else:
            if current is None or current.data != expected:
                return False
            token = current.version
        try:
            self.put_if_version(key, new, token)
        except PreconditionFailed:
            return False
        return True

    def stat(self, key: str) -> ObjectInfo:
        """Size and modification time of one object; :class:`ObjectNotFound` when absent."""
        for info in self.list(key):
            if info.key == key:
                return info
        raise ObjectNotFound(key, self.location)

    def touch(self, key: str) -> None:
        """Make ``key``'s modification time now, its bytes unchanged; :class:`ObjectNotFound` when absent.

        A writer that re-uses an old object ("freshening", as git does) restarts
        gc's grace period for it, so a collection running beside the writer
        spares it. This default rewrites the object, which is correct
        everywhere; backends override it with a metadata-only call of their
        service (``utime``, an S3 copy onto itself, a metadata update).
        """
        self.put(key, self.get(key))

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """Fetch several objects; missing keys are left out of the result."""
        found: dict[str, bytes] = {}
        for key in keys:
            try:
                found[key] = self.get(key)
            except ObjectNotFound:
                continue
        return found

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` that exist."""
        return {key for key in keys if self.exists(key)}

    def stat_many(self, keys: Iterable[str]) -> dict[str, ObjectInfo]:
        """:meth:`stat` of several objects; missing keys are left out of the result."""
        found: dict[str, ObjectInfo] = {}
        for key in keys:
            try:
                found[key] = self.stat(key)
            except ObjectNotFound:
                continue
        return found

    #: Whether :meth:`delete_unchanged` deletes on a version precondition (GCS, Azure).
    CONDITIONAL_DELETE: ClassVar[bool] = False

    def delete_unchanged(self, infos: Iterable[ObjectInfo]) -> list[ObjectInfo]:
        """Delete each object ``infos`` describe unless it was modified after ``info.modified``
        (a writer freshened it since the caller's stat); the ones deleted.

        This default deletes them all: the caller's stat was one round trip ago, and that round
        trip is the window a writer has. A backend whose delete takes a precondition on the
        object's version (GCS generation, Azure ETag) closes it: a touch always wins.
        """
        todo = list(infos)
        self.delete_many(info.key for info in todo)
        return todo

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete several keys (missing ones are ignored)."""
        for key in keys:
            self.delete(key)

    def sweep_incomplete(self, older_than_seconds: float) -> int:
        """Remove what writes killed mid-way left behind, older than ``older_than_seconds``.

        Temporary files, unfinished multipart uploads: never objects, so never
        visible to :meth:`list`, but they take space. Returns how many were
        removed. GC calls it with its grace period, so a write in progress is
        never robbed. Backends whose service expires such leftovers itself
        keep this default.
        """
        return 0

    def close(self) -> None:
        """Release connections, handles and locks. Safe to call twice."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"


class WrappingBackend(Backend):
    """A backend in front of another, adding one behaviour (faults, counting, a cache, a dry run):
    the same location and capabilities, forgets and closes through to it. Subclasses implement
    the primitives; what they do not change they forward themselves."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.location = inner.location

    @property
    def is_local(self) -> bool:
        return self.inner.is_local

    @property
    def supports_native_ranges(self) -> bool:
        return self.inner.supports_native_ranges

    def forget(self, key: str) -> None:
        self.inner.forget(key)

    def touch(self, key: str) -> None:
        self.inner.touch(key)

    def close(self) -> None:
        self.inner.close()
