"""DryRunBackend: a copy-on-write layer over a backend, so a plan can run without writing anything.

Why a wrapper and not a ``dry_run`` flag in every strategy: the estimate of
a strategy is then the strategy itself, run on this layer, and it can only
differ from what :meth:`StorageOptimizer.optimize` later does where the
store changed in between (restic keeps its dry-run the same way, as
``internal/backend/dryrun``, a backend wrapping a backend). Strategies run
one after another on one layer, so each sees the effect of the previous
ones: the estimates are chained, not summed.

Writes and deletes stay in memory (``written``, ``deleted``); reads fall
through to the wrapped backend for keys the layer has not touched. Listing
merges both, and keeps the wrapped backend's modification times for
untouched objects so gc's grace period decides as it would for real. The
wrapped backend is never written, not even by :meth:`sweep_incomplete`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

from talaria_storage.core.errors import ObjectNotFound, PreconditionFailed
from talaria_storage.core.keys import validate_key
from talaria_storage.storage.backend import Backend, ObjectInfo, Versioned, WrappingBackend


def _token(data: bytes) -> str:
    return "dry-run:" + hashlib.sha256(data).hexdigest()


class DryRunBackend(WrappingBackend):
    """``inner`` as it would be after the writes made here, which ``inner`` never sees."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        #: key -> (bytes, modification time) of everything written through this layer.
        self.written: dict[str, tuple[bytes, float]] = {}
        #: keys deleted through this layer (and not written again since).
        self.deleted: set[str] = set()

    # -- reads ----------------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        validate_key(key)
        if key in self.written:
            return self.written[key][0]
        if key in self.deleted:
            raise ObjectNotFound(key, self.location)
        return self.inner.get(key)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if key in self.written or key in self.deleted:
            return super().get_range(key, start, end)
        return self.inner.get_range(key, start, end)

    def exists(self, key: str) -> bool:
        validate_key(key)
        if key in self.written:
            return True
        return key not in self.deleted and self.inner.exists(key)

    def exists_many(self, keys: object) -> set[str]:
        keys = list(keys)  # type: ignore[call-overload]
        untouched = [k for k in keys if k not in self.written and k not in self.deleted]
        found = self.inner.exists_many(untouched) if untouched else set()
        return found | {k for k in keys if k in self.written}

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for info in self.inner.list(prefix):
            if info.key not in self.written and info.key not in self.deleted:
                yield info
        for key, (data, modified) in list(self.written.items()):
            if key.startswith(prefix):
                yield ObjectInfo(key, len(data), modified)

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        if key in self.written:
            data, modified = self.written[key]
            return ObjectInfo(key, len(data), modified)
        if key in self.deleted:
            raise ObjectNotFound(key, self.location)
        return self.inner.stat(key)

    def read_versioned(self, key: str) -> Versioned | None:
        validate_key(key)
        if key in self.written:
            data = self.written[key][0]
            return Versioned(data, _token(data))
        if key in self.deleted:
            return None
        return self.inner.read_versioned(key)

    # -- writes (kept here) ---------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        validate_key(key)
        self.written[key] = (bytes(data), time.time())
        self.deleted.discard(key)

    def put_if_version(self, key: str, data: bytes, expected: str | None) -> str:
        current = self.read_versioned(key)
        if (current is None) != (expected is None) or (current is not None and current.version != expected):
            raise PreconditionFailed(key)
        self.put(key, data)
        return _token(data)

    def touch(self, key: str) -> None:
        # Kept in this layer like every write: the wrapped backend's object keeps its age.
        self.put(key, self.get(key))

    def delete(self, key: str) -> None:
        validate_key(key)
        self.written.pop(key, None)
        self.deleted.add(key)

    def sweep_incomplete(self, older_than_seconds: float) -> int:
        return 0  # leftovers of killed writes are the wrapped backend's; a dry run leaves them

    def close(self) -> None:
        """Nothing to release: the wrapped backend belongs to its own store."""
