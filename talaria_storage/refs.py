"""RefStore: the mutable names (``refs/...``, ``reductions/...``) that point at manifest hashes.

A ref object holds the 64-character hex hash and a newline. Refs move only by
compare-and-swap through the backend's conditional write, so two writers
never both think they advanced the same ref; callers write the objects a ref
points at *before* moving it (DESIGN.md §3).
"""

from __future__ import annotations

from talaria_storage.backend import Backend
from talaria_storage.errors import InvalidHash, RefConflict, StorageError
from talaria_storage.hashing import SHA256Hash
from talaria_storage.keys import REFS, validate_key


def _encode(h: SHA256Hash) -> bytes:
    return (h.to_hex() + "\n").encode()


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

    def publish(
        self,
        version_key: str,
        head_key: str,
        new: SHA256Hash,
        expected_head: SHA256Hash | None,
        *,
        force: bool = False,
        taken: str = "that version name is taken: choose another, or pass --force to re-point it",
    ) -> None:
        """Name ``new`` as a version and make it HEAD (database versions, taxdumps).

        The version ref is create-only -- naming the same hash again is a
        no-op, another hash is a :class:`RefConflict` (``taken`` is its hint)
        unless ``force`` -- and HEAD moves from ``expected_head`` by
        compare-and-swap, so a concurrent publisher is detected, not overwritten.
        """
        if not self.compare_and_swap(version_key, None, new):
            existing = self.get(version_key)
            if existing != new:
                if not force:
                    raise RefConflict(version_key, None, existing.to_hex() if existing else None, hint=taken)
                self.set(version_key, new)
        if force:
            self.set(head_key, new)
        elif not self.compare_and_swap(head_key, expected_head, new):
            actual = self.get(head_key)
            if actual != new:
                raise RefConflict(
                    head_key, expected_head.to_hex() if expected_head else None, actual.to_hex() if actual else None
                )

    def delete(self, key: str) -> None:
        self.backend.delete(validate_key(key))

    def list(self, prefix: str = REFS) -> dict[str, SHA256Hash]:
        """Every ref under ``prefix`` with the hash it names."""
        keys = [info.key for info in self.backend.list(prefix)]
        return {key: self._decode(key, raw) for key, raw in self.backend.get_many(keys).items()}
