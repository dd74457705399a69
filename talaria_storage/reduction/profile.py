"""ReductionProfile: a published reduction, read: its references, and what each one stands for.

``db.reduction("90")`` in the API, ``reduce show/expand`` and ``export
--profile`` on the command line. A profile is pinned to the version it
reduced (its manifest hash, not the version's name, so a moved or deleted
version ref does not change what it answers).

Identifiers are those every look-up takes (an accession, a full first word,
a SHA-256, refget ``SQ.`` or MD5 digest); an identifier names a sequence,
and through it the reference that stands for it. *Expanding* a reference
gives every record whose sequence is the reference's own or one of its
members': what a search hit against the reference stands for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.types import ReductionManifest
from talaria_storage.formats.fasta import SequenceRecord
from talaria_storage.reduction.building import load_table
from talaria_storage.reduction.cluster_table import ClusterTable
from talaria_storage.reduction.selection import SequenceKey
from talaria_storage.sequences.canonical import canonical
from talaria_storage.sequences.database import DatabaseSnapshot, SequenceDatabase


class UnknownIdentifier(StorageError, KeyError):
    """An identifier that names no record of the profile's version."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown identifier"


@dataclass(frozen=True, slots=True)
class Cluster:
    """A reference and the sequences it stands for (SHA-256 hex), members in selection order."""

    reference: SequenceKey
    members: tuple[SequenceKey, ...]


class ReductionProfile:
    """One published profile of ``db``, read once (its manifest and cluster table)."""

    def __init__(self, db: SequenceDatabase, name: str) -> None:
        self.database = db
        self.name = name
        stored = db.store.reductions.require(db.name, name)  # ProfileNotFound names the known ones
        self.hash: SHA256Hash = stored.hash
        self.manifest: ReductionManifest = stored.manifest
        self.table: ClusterTable = load_table(db, stored.manifest)
        source = stored.manifest.source_manifest
        if source is None:
            raise StorageError(f"reduction profile '{name}' of '{db.name}' names no source version")
        self.snapshot = DatabaseSnapshot(db, source, db.catalog.load(source))

    @property
    def version(self) -> str:
        return self.manifest.source_version

    @property
    def parameters(self) -> dict[str, Any]:
        return self.manifest.parameters

    @property
    def statistics(self) -> dict[str, Any]:
        return self.manifest.statistics

    def summary(self) -> dict[str, Any]:
        """What ``reduce show`` prints."""
        return {
            "database": self.database.name, "profile": self.name, "version": self.version,
            "manifest": self.hash.to_hex(), "parameters": self.parameters, "statistics": self.statistics,
            "tool_version": self.manifest.tool_version, "delta_chunks": len(self.manifest.delta_chunks),
        }

    # -- identifiers -> clusters

    def keys_of(self, identifier: str) -> list[SequenceKey]:
        """The table entries of the sequence(s) ``identifier`` names; :class:`UnknownIdentifier` if none."""
        records = self.snapshot.get_all(identifier)
        if not records:
            raise UnknownIdentifier(
                f"'{identifier}' names no record of {self.database.name}@{self.version} "
                f"(the version profile '{self.name}' reduced)"
            )
        keys: list[SequenceKey] = []
        for record in records:
            sha = hashlib.sha256(canonical(record.residues)).hexdigest()
            keys.extend(k for k in self.table.keys_of(sha) if k not in keys)
        return keys

    def cluster_of(self, identifier: str) -> list[Cluster]:
        """The cluster(s) of the reference(s) standing for ``identifier`` (one unless taxonomy-aware)."""
        found: list[Cluster] = []
        for key in self.keys_of(identifier):
            reference = self.table.reference_of(key)
            if all(c.reference != reference for c in found):
                found.append(Cluster(reference, tuple(self.table.members_of(reference))))
        return found

    def is_reference(self, identifier: str) -> bool:
        return any(self.table.is_reference(k) for k in self.keys_of(identifier))

    # -- records

    def records_of(self, key: SequenceKey) -> list[SequenceRecord]:
        """Every record of the version carrying ``key``'s sequence."""
        return self.snapshot.get_all(key.sha256)

    def references(self) -> Iterator[SequenceRecord]:
        """One record per reference (the first record carrying it), in selection order: the FASTA to search."""
        for key in self.table.references:
            records = self.records_of(key)
            if records:
                yield records[0]

    def expand(self, identifier: str) -> list[SequenceRecord]:
        """Every record the reference standing for ``identifier`` stands for, the reference's own first."""
        out: list[SequenceRecord] = []
        for cluster in self.cluster_of(identifier):
            for key in (cluster.reference, *cluster.members):
                out.extend(self.records_of(key))
        return out

    def members_of(self, identifier: str) -> list[str]:
        """Accessions of the records ``identifier``'s reference stands for, in :meth:`expand` order."""
        return [_first_word(r) for r in self.expand(identifier)]


def _first_word(record: SequenceRecord) -> str:
    header = record.header.decode("utf-8", "surrogateescape")
    return header.split(None, 1)[0] if header.strip() else ""
