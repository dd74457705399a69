"""An in-process backend: a dict behind a lock. For tests and throw-away stores (``memory://``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from talaria_storage.core.errors import ObjectNotFound, PreconditionFailed
from talaria_storage.core.keys import validate_key, validate_prefix
from talaria_storage.storage.backend import Backend, ObjectInfo, Versioned

if TYPE_CHECKING:
    from talaria_storage.storage.registry import Location


class MemoryBackend(Backend):
    """Objects live in a dict; versions are a per-store write counter."""

    def __init__(self, name: str = "") -> None:
        self.location = f"memory://{name}"
        self._objects: dict[str, tuple[bytes, int, float]] = {}
        self._lock = threading.Lock()
        self._counter = 0

    @classmethod
    def from_location(cls, location: Location, options: Mapping[str, Any]) -> "MemoryBackend":
        return cls(location.netloc or location.prefix)

    @property
    def is_local(self) -> bool:
        return True

    @property
    def supports_native_ranges(self) -> bool:
        return True

    def _write(self, key: str, data: bytes) -> str:
        self._counter += 1
        self._objects[key] = (bytes(data), self._counter, time.time())
        return str(self._counter)

    def put(self, key: str, data: bytes) -> None:
        validate_key(key)
        with self._lock:
            self._write(key, data)

    def get(self, key: str) -> bytes:
        validate_key(key)
        with self._lock:
            entry = self._objects.get(key)
        if entry is None:
            raise ObjectNotFound(key, self.location)
        return entry[0]

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if start < 0 or end < start:
            raise ValueError(f"invalid range [{start}, {end}) for '{key}'")
        return self.get(key)[start:end]

    def exists(self, key: str) -> bool:
        validate_key(key)
        with self._lock:
            return key in self._objects

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        with self._lock:
            snapshot = [
                ObjectInfo(k, len(v[0]), v[2]) for k, v in self._objects.items() if k.startswith(prefix)
            ]
        return iter(snapshot)

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        with self._lock:
            entry = self._objects.get(key)
        if entry is None:
            raise ObjectNotFound(key, self.location)
        return ObjectInfo(key, len(entry[0]), entry[2])

    def read_versioned(self, key: str) -> Versioned | None:
        validate_key(key)
        with self._lock:
            entry = self._objects.get(key)
        return None if entry is None else Versioned(entry[0], str(entry[1]))

    def put_if_version(self, key: str, data: bytes, expected: str | None) -> str:
        validate_key(key)
        with self._lock:
            entry = self._objects.get(key)
            current = None if entry is None else str(entry[1])
            if current != expected:
                raise PreconditionFailed(key, "it exists" if expected is None else "its version changed")
            return self._write(key, data)

    def touch(self, key: str) -> None:
        validate_key(key)
        self.set_modified(key, time.time())

    def set_modified(self, key: str, when: float) -> None:
        """Pretend ``key`` was written at ``when`` (:meth:`touch`, and GC grace-period tests)."""
        with self._lock:
            entry = self._objects.get(key)
            if entry is None:
                raise ObjectNotFound(key, self.location)
            self._objects[key] = (entry[0], entry[1], when)

