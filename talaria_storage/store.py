"""Store: one store on one backend, with its namespaces.

A :class:`Store` *is* the chunk store of ``chunks/`` (it implements
:class:`ChunkStorage`) and carries the other namespaces of DESIGN.md §3:
``manifests`` (a second content-addressed ChunkStore) and ``refs``
(compare-and-swap pointers). ``store.json`` records the format version and
the defaults the store was created with; it is written once, create-only, so
two processes initialising the same location cannot disagree.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from talaria_storage.backend import Backend
from talaria_storage.chunk_store import ChunkStore
from talaria_storage.codecs import Codec
from talaria_storage.errors import ObjectNotFound, StorageError
from talaria_storage.keys import CHUNKS, MANIFESTS, STORE_META
from talaria_storage.refs import RefStore
from talaria_storage.types import VerificationError

if TYPE_CHECKING:
    from talaria_storage.config import StorageConfig

STORE_FORMAT = "talaria-storage"
STORE_FORMAT_VERSION = 1


class Store(ChunkStore):
    """A store: chunks, manifests and refs on one backend."""

    def __init__(
        self,
        backend: Backend,
        codec: Codec | None = None,
        *,
        threads: int = 4,
        config: "StorageConfig | None" = None,
    ) -> None:
        super().__init__(backend, codec, prefix=CHUNKS, threads=threads)
        self.config = config
        self.manifests = ChunkStore(backend, self.codec, prefix=MANIFESTS, threads=threads)
        self.refs = RefStore(backend)

    def verify_all(self) -> list[VerificationError]:
        """Verify every chunk and every manifest (both are content-addressed frames)."""
        return sorted(super().verify_all() + self.manifests.verify_all(), key=lambda p: p.key)

    # -- lifecycle ------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any] | None:
        """The parsed ``store.json``, or None for an uninitialised location."""
        try:
            raw = self.backend.get(STORE_META)
        except ObjectNotFound:
            return None
        try:
            meta = json.loads(raw)
        except ValueError:
            raise StorageError(f"'{STORE_META}' in {self.location} is not valid JSON: the store is damaged") from None
        if meta.get("format") != STORE_FORMAT:
            raise StorageError(f"{self.location} is not a talaria-storage store ({STORE_META} says {meta.get('format')!r})")
        if int(meta.get("format_version", 0)) > STORE_FORMAT_VERSION:
            raise StorageError(
                f"{self.location} uses store format {meta['format_version']}; this version reads "
                f"{STORE_FORMAT_VERSION}: upgrade talaria-storage"
            )
        return meta

    def initialise(self) -> bool:
        """Write ``store.json`` if absent. True when this call created the store."""
        if self.metadata() is not None:
            return False
        meta = {
            "format": STORE_FORMAT,
            "format_version": STORE_FORMAT_VERSION,
            "created": time.time(),
            "codec": self.codec.to_dict(),
        }
        return self.backend.put_if_absent(STORE_META, json.dumps(meta, sort_keys=True).encode() + b"\n")

    def require_initialised(self) -> None:
        """Raise a one-line error naming the fix when the location holds no store."""
        if self.metadata() is None:
            raise StorageError(
                f"no store at {self.location}: create it with 'talaria-storage --store {self.location} init'"
            )

    def database(self, name: str) -> Any:
        """The sequence database ``name`` of this store (a :class:`SequenceDatabase`)."""
        from talaria_storage.sequences.database import SequenceDatabase

        return SequenceDatabase(self, name)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.location!r}, codec={self.codec.to_dict()})"
