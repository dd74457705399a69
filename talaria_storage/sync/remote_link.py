"""RemoteLink: a store and the remote it syncs with, as the :class:`RemoteStorage` trait.

The store itself knows nothing of sync (DESIGN.md §2: ``Store`` knows
objects and refs); this is where a local store meets another store, on any
backend, through the protocol of :mod:`talaria_storage.sync.protocol`.
"""

from __future__ import annotations

from collections.abc import Iterable

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.traits import RemoteStorage
from talaria_storage.core.types import (
    GCResult,
    RemoteStatus,
    StorageChunkInfo,
    StorageStats,
    SyncResult,
    VerificationError,
)
from talaria_storage.storage.store import Store
from talaria_storage.sync.protocol import copy_objects, push, status, summarize


class RemoteLink(RemoteStorage):
    """``local`` and, once attached, its remote; the caller opens and closes both stores.

    As the trait asks, a link is also a :class:`ChunkStorage`: that of the
    local store, to which those methods go unchanged.

    For example, with a ``[remote.NAME]`` of ``storage.toml``:
    ``RemoteLink(store).attach_remote(open_store(load_config("storage.toml").remote("backup")))``.
    """

    def __init__(self, local: Store, remote: Store | None = None) -> None:
        self.local = local
        self._remote: Store | None = None
        if remote is not None:
            self.attach_remote(remote)

    def attach_remote(self, remote: Store) -> RemoteLink:
        """Make ``remote`` (another store, on any backend) the remote of the methods below; returns self."""
        if remote is self.local or remote.location == self.local.location:
            raise StorageError(f"a store cannot be its own remote ({self.local.location})")
        self._remote = remote
        return self

    @property
    def remote(self) -> Store:
        """The attached remote; a one-line error naming :meth:`attach_remote` when there is none."""
        remote = self._remote
        if remote is None:
            raise StorageError(
                f"{self.local.location} has no remote: attach one with "
                "RemoteLink(store).attach_remote(open_store(LOCATION)), "
                "or run 'talaria-storage sync push|pull LOCATION'"
            )
        return remote

    # -- ChunkStorage: the local store's ----------------------------------------------------------

    def store_chunk(self, data: bytes, compress: bool = True) -> SHA256Hash:
        # docstring inherited
        return self.local.store_chunk(data, compress)

    def get_chunk(self, hash: SHA256Hash) -> bytes:
        # docstring inherited
        return self.local.get_chunk(hash)

    def has_chunk(self, hash: SHA256Hash) -> bool:
        # docstring inherited
        return self.local.has_chunk(hash)

    def enumerate_chunks(self) -> list[StorageChunkInfo]:
        # docstring inherited
        return self.local.enumerate_chunks()

    def verify_all(self) -> list[VerificationError]:
        # docstring inherited
        return self.local.verify_all()

    def get_stats(self) -> StorageStats:
        # docstring inherited
        return self.local.get_stats()

    def gc(
        self, referenced: Iterable[SHA256Hash], *, dry_run: bool = False, grace_seconds: float = 0.0
    ) -> GCResult:
        # docstring inherited
        return self.local.gc(referenced, dry_run=dry_run, grace_seconds=grace_seconds)

    # -- RemoteStorage ----------------------------------------------------------------------------

    def fetch_chunks(self, hashes: Iterable[SHA256Hash]) -> int:
        # docstring inherited
        return copy_objects(self.remote, self.local, hashes, threads=self.local.threads)

    def push_chunks(self, hashes: Iterable[SHA256Hash]) -> int:
        # docstring inherited
        return copy_objects(self.local, self.remote, hashes, threads=self.local.threads)

    def sync(self) -> SyncResult:
        """Push every database of the local store to the remote (:func:`talaria_storage.sync.push`)."""
        return push(self.local, self.remote)

    def get_remote_status(self) -> RemoteStatus:
        # docstring inherited
        return summarize(self.remote.location, status(self.local, self.remote))
