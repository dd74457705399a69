"""DeltaDecodeCheck: what ``verify`` asks of every delta (the layers below have no codec).

For each delta record of a profile's delta chunk: its reference is a
sequence of the version the profile reduced, the delta decodes against it,
and the result hashes to the child hash the record claims. A delta that
fails is reported, never returned: nothing reads a member through a delta
without this same hash check (see :mod:`talaria_storage.reduction.delta`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import CHUNKS
from talaria_storage.core.types import DeltaChunk, VerificationError, VerificationProblem
from talaria_storage.reduction import delta
from talaria_storage.sequences.database import DatabaseSnapshot, SequenceDatabase
from talaria_storage.storage.reductions import StoredReduction
from talaria_storage.storage.store import Store


class DeltaDecodeCheck:
    """A :class:`~talaria_storage.storage.reductions.DeltaCheck` for ``verify_store(store, delta_check=...)``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._snapshots: dict[SHA256Hash, DatabaseSnapshot] = {}
        self._databases: dict[str, SequenceDatabase] = {}

    def _snapshot(self, profile: StoredReduction) -> DatabaseSnapshot:
        source = profile.manifest.source_manifest
        assert source is not None  # a profile without one has no deltas to check
        found = self._snapshots.get(source)
        if found is None:
            name = profile.manifest.database
            db = self._databases.get(name)
            if db is None:
                db = self._databases[name] = SequenceDatabase(self.store, name)
            found = self._snapshots[source] = DatabaseSnapshot(db, source, db.catalog.load(source))
        return found

    def __call__(self, profile: StoredReduction, delta_hash: SHA256Hash, chunk: DeltaChunk, /) -> Iterable[VerificationError]:
        key = CHUNKS + delta_hash.to_hex()
        where = f"delta chunk {delta_hash.to_hex()} of profile '{profile.manifest.profile}' of '{profile.manifest.database}'"
        try:
            reference = self._snapshot(profile).residues_of(chunk.reference_hash)
        except StorageError as exc:
            return [VerificationError(key, VerificationProblem.UNREADABLE, f"{where}: its version does not read ({exc})", delta_hash)]
        if reference is None:
            return [VerificationError(
                key, VerificationProblem.MISSING,
                f"{where}: reference {chunk.reference_hash.to_hex()} is not a sequence of "
                f"{profile.manifest.database}@{profile.manifest.source_version}: re-run reduce",
                delta_hash,
            )]
        problems = []
        for record in chunk.deltas:
            try:
                child = delta.decode(reference, record.ops)
            except StorageError as exc:
                problems.append(VerificationError(key, VerificationProblem.CORRUPT_FRAME, f"{where}: the delta of '{record.child_id}' does not decode ({exc})", delta_hash))
                continue
            if hashlib.sha256(child).digest() != record.child_hash.digest:
                problems.append(VerificationError(
                    key, VerificationProblem.MISMATCH,
                    f"{where}: the delta of '{record.child_id}' decodes to {hashlib.sha256(child).hexdigest()}, "
                    f"not {record.child_hash.to_hex()}: re-run reduce to rewrite it",
                    delta_hash,
                ))
        return problems
