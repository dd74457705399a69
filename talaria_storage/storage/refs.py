"""RefStore: the mutable names (``refs/...``, ``reductions/...``) that point at manifest hashes.

A ref object holds the 64-character hex hash and a newline. Refs move only by
compare-and-swap through the backend's conditional write, so two writers
never both think they advanced the same ref; callers write the objects a ref
points at *before* moving it (DESIGN.md §3).
"""

from __future__ import annotations

from collections.abc import Callable

from talaria_storage.core.errors import InvalidHash, RefConflict, StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import REFS, validate_key
from talaria_storage.storage.backend import Backend


def _encode(h: SHA256Hash) -> bytes:
    return (h.to_hex() + "\n").encode()


#: How many times a publish retries moving HEAD over other writers' publishes before it gives up.
HEAD_ATTEMPTS = 100

# Builds the error for a ref found elsewhere than expected: (key, expected, found).
Conflict = Callable[[str, "SHA256Hash | None", "SHA256Hash | None"], RefConflict]


def _conflict(key: str, expected: SHA256Hash | None, found: SHA256Hash | None) -> RefConflict:
    return RefConflict(key, expected.to_hex() if expected else None, found.to_hex() if found else None)


class RefStore:
    """Read and move refs on a backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _decode(self, key: str, raw: bytes) -> SHA256Hash:
        try:
            return SHA256Hash.from_hex(raw.decode("ascii").strip())
        except (UnicodeDecodeError, InvalidHash):
            raise StorageError(
                f"ref '{key}' in {self.backend.location} is corrupt (not a hash): "
                "restore it from a remote or point it at a manifest again"
            ) from None

    def get(self, key: str) -> SHA256Hash | None:
        """The hash a ref names, or None when the ref does not exist."""
        current = self.backend.read_versioned(validate_key(key))
        return None if current is None else self._decode(key, current.data)

    def compare_and_swap(self, key: str, expected: SHA256Hash | None, new: SHA256Hash) -> bool:
        """Point ``key`` at ``new`` only if it currently names ``expected`` (None: absent)."""
        old = None if expected is None else _encode(expected)
        return self.backend.compare_and_swap(validate_key(key), old, _encode(new))

    def set(self, key: str, new: SHA256Hash) -> None:
        """Point ``key`` at ``new`` unconditionally (``--force``)."""
        self.backend.put(validate_key(key), _encode(new))

    def create(self, key: str, new: SHA256Hash, *, force: bool = False, conflict: Conflict = _conflict) -> bool:
        """Create ``key`` naming ``new``; True when this call wrote it.

        A ref that already names ``new`` (an interrupted earlier run, or a
        write whose answer was lost) is left as it is: False. One that names
        another hash is re-pointed with ``force``, else ``conflict(key, None,
        found)`` is raised.
        """
        if self.compare_and_swap(key, None, new):
            return True
        found = self.get(key)
        if found == new:
            return False
        if not force:
            raise conflict(key, None, found)
        self.set(key, new)
        return True

    def advance(
        self,
        key: str,
        expected: SHA256Hash | None,
        new: SHA256Hash,
        *,
        force: bool = False,
        conflict: Conflict = _conflict,
    ) -> bool:
        """Move ``key`` from ``expected`` to ``new`` by compare-and-swap (``force``: set it); True
        when this call moved it. Already at ``new`` (a lost answer): False. Elsewhere: ``conflict``."""
        if force:
            self.set(key, new)
            return True
        if self.compare_and_swap(key, expected, new):
            return True
        found = self.get(key)
        if found != new:
            raise conflict(key, expected, found)
        return False

    def publish(
        self,
        version_key: str,
        head_key: str,
        new: SHA256Hash,
        expected_head: SHA256Hash | None,
        *,
        force: bool = False,
        taken: str = "that version name is taken: choose another, or pass --force to re-point it",
    ) -> SHA256Hash | None:
        """Name ``new`` as a version (:meth:`create`; ``taken`` is the conflict's hint), then make it
        HEAD; return the HEAD it replaced. For database versions and taxdumps.

        HEAD moves by compare-and-swap from ``expected_head``. When another writer moved it
        meanwhile -- its own publish finished first -- the swap is retried from what HEAD
        names now: ``new``'s objects and version ref are already in place, and a version does
        not depend on the one before it. So of writers racing, every one's version is
        published and HEAD names the version whose publish finished last; no writer is left
        with a version ref but told that nothing changed.
        """

        def name_taken(key: str, expected: SHA256Hash | None, found: SHA256Hash | None) -> RefConflict:
            shown = found.to_hex() if found else None
            problem = f"'{key}' already names another manifest ({shown[:12] if shown else 'none'}...)"
            return RefConflict(key, None, shown, hint=taken, problem=problem)

        self.create(version_key, new, force=force, conflict=name_taken)
        if force:
            self.set(head_key, new)
            return expected_head
        current = expected_head
        for _ in range(HEAD_ATTEMPTS):
            if self.compare_and_swap(head_key, current, new):
                return current
            found = self.get(head_key)
            if found == new:
                return None  # this writer's own earlier swap, whose answer was lost
            current = found
        raise StorageError(
            f"'{version_key}' is published, but '{head_key}' kept moving under {HEAD_ATTEMPTS} other "
            f"writers' publishes and still names {current.to_hex() if current else 'nothing'}: "
            "re-run the same command to make it HEAD"
        )

    def delete(self, key: str) -> None:
        self.backend.delete(validate_key(key))

    def list(self, prefix: str = REFS) -> dict[str, SHA256Hash]:
        """Every ref under ``prefix`` with the hash it names."""
        keys = [info.key for info in self.backend.list(prefix)]
        if not keys:
            return {}  # no second request for an empty prefix (a sync asks about every database's profiles)
        return {key: self._decode(key, raw) for key, raw in self.backend.get_many(keys).items()}
