"""Reduce one database version to a profile: select references, encode members as deltas, publish.

A run reads every distinct sequence of the version once
(:meth:`SequenceDatabase.sequence_entries`), chooses references with
:func:`~talaria_storage.reduction.selection.select_references`, encodes
each member against its reference (:mod:`talaria_storage.reduction.delta`)
and stores, in this order (DESIGN.md §3: objects before the ref):

1. the :class:`~talaria_storage.reduction.cluster_table.ClusterTable`
   (first, so that a resumed run finds it);
2. one :class:`DeltaChunk` per reference that has members, its records
   sorted by child hash;
3. the :class:`ReductionManifest`, whose profile ref is moved by
   compare-and-swap from the one read when the run began.

Everything in the manifest is a function of the version and the parameters
(no times, no host names, statistics are counts), so the same command on the
same version gives the same manifest hash.

**Resume** (``StatefulStorage``): a run keeps two processing states, keyed
by the database, the version's manifest, the profile and a digest of the
parameters (and, for an update, the profile it starts from). The first
records the cluster table as soon as it is stored, the second each delta
chunk; both keep those objects from ``gc`` until the profile is published,
and are completed then. A re-run after a crash (``kill -9`` anywhere) finds
the table in the first state and skips the selection, which is most of the
work; deltas are encoded again (content-addressed, so nothing is stored
twice) and the profile ref moves only at the end. ``state list`` shows an
unfinished reduction.

**Update** (``update=True``, MMseqs2 ``clusterupdate``): the profile's
previous reduction, of an older version, is the starting point. Its
references that the new version still has stay references, ahead of every
other sequence; its members that are still there keep their reference when
that reference is still there; every other sequence (new, or whose reference
left) is assigned by the usual greedy pass against all references, and one
that no reference covers becomes a new reference. Sequences the new version
no longer has leave their clusters.

**Taxonomy-aware** (``taxonomy_aware=True``): a member joins only a
reference of the same taxon. With ``rank`` (``"genus"``, ``"species"``,
...) each record's taxon is first replaced by its ancestor at that rank,
read from the store's current taxdump, so members join references of the
same genus, say; a taxon with no ancestor at that rank (or records with no
taxon) keeps its own id. A sequence carried by records of two such taxa is
clustered once under each.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from talaria_storage.core.errors import ConfigError, ProfileNotFound, StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import validate_name
from talaria_storage.core.types import (
    DeltaChunk,
    DeltaRecord,
    OperationType,
    ProcessingState,
    ReductionManifest,
    SourceInfo,
)
from talaria_storage.reduction import delta
from talaria_storage.reduction.cluster_table import ClusterTable, ClusterTableError
from talaria_storage.reduction.selection import (
    Clustering,
    SelectionParameters,
    SequenceKey,
    select_references,
)
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.sequences.taxonomy import Taxonomy
from talaria_storage.sequences.taxonomy_store import TaxonomyCatalog

Progress = Callable[[str, int, int], None]
RANKS = ("strain", "subspecies", "species", "genus", "family", "order", "class", "phylum", "kingdom", "superkingdom", "domain")


def tool_version() -> str:
    """``talaria-storage <version>``: recorded in every manifest this builds."""
    # Imported when a reduction is built, not with the module: importlib.metadata takes ~35 ms
    # to load, which every process that imports the API (a one-record look-up) would pay.
    from importlib import metadata

    try:
        return f"talaria-storage {metadata.version('talaria-storage')}"
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "talaria-storage (not installed)"


def selection_parameters(
    identity: float | None, ratio: float | None, coverage: float = 0.8, taxonomy_aware: bool = False
) -> SelectionParameters:
    """Parameters from a user's choices: ``identity`` (default 0.9) or ``ratio``, never both."""
    if identity is not None and ratio is not None:
        raise ConfigError("choose an identity or a ratio (--identity or --ratio), not both")
    if ratio is not None:
        return SelectionParameters.for_ratio(ratio, coverage=coverage, taxonomy_aware=taxonomy_aware)
    return SelectionParameters(identity=0.9 if identity is None else identity, coverage=coverage, taxonomy_aware=taxonomy_aware)


@dataclass(frozen=True, slots=True)
class ReductionResult:
    """What a reduce run did: the profile it published and the counts a user checks."""

    database: str
    version: str
    profile: str
    manifest: SHA256Hash
    references: int
    members: int
    sequences: int
    records: int
    identity: float
    residues: int
    member_residues: int
    delta_bytes: int
    unchanged: bool
    seconds: float

    @property
    def kept_fraction(self) -> float:
        return self.references / self.sequences if self.sequences else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database, "version": self.version, "profile": self.profile,
            "manifest": self.manifest.to_hex(), "references": self.references, "members": self.members,
            "sequences": self.sequences, "records": self.records, "kept_fraction": round(self.kept_fraction, 6),
            "identity": self.identity, "residues": self.residues, "member_residues": self.member_residues,
            "delta_bytes": self.delta_bytes, "unchanged": self.unchanged, "seconds": round(self.seconds, 3),
        }


@dataclass(slots=True)
class _Sequence:
    residues: bytes
    child_id: str
    taxon: int | None


def reduce_database(
    db: SequenceDatabase,
    profile: str,
    parameters: SelectionParameters | None = None,
    *,
    version: str | None = None,
    rank: str | None = None,
    update: bool = False,
    processes: int | None = None,
    progress: Progress | None = None,
) -> ReductionResult:
    """Reduce ``db`` at ``version`` (HEAD) to ``profile``; see the module docstring."""
    started = time.perf_counter()
    parameters = parameters or SelectionParameters()
    validate_name(profile, "reduction profile")
    if rank is not None and not parameters.taxonomy_aware:
        raise ConfigError("--rank needs --taxonomy-aware: it says which taxa a member may cross")
    if rank is not None and rank not in RANKS:
        raise ConfigError(f"unknown rank '{rank}': expected one of {', '.join(RANKS)}")
    manifest_hash, manifest = db.manifest(version)  # VersionNotFound names the versions there are
    reductions = db.store.reductions
    current = reductions.current(db.name, profile)
    previous = _previous_table(db, profile) if update else None

    taxonomy, taxdump = None, None
    if rank is not None:  # the profile lists the taxdump it read, so gc keeps it and sync carries it
        catalog = TaxonomyCatalog(db.store)
        taxdump = catalog.resolve_version().object
        taxonomy = catalog.load_object(taxdump)
    sequences, records = _read_sequences(db, manifest.version, parameters.taxonomy_aware, taxonomy, rank)
    identity_of_run = {"parameters": parameters.to_dict(), "rank": rank,
                       "update_from": current.to_hex() if update and current is not None else None}
    selecting = _state(db, manifest_hash, profile, "select", identity_of_run)
    deltas_state = _state(db, manifest_hash, profile, "deltas", identity_of_run)
    table, table_hash = _resumed_table(db, selecting)
    if table is None:
        pinned = _pinned(previous, sequences) if previous is not None else ()
        clustering = select_references(
            ((bytes.fromhex(key.sha256), s.residues, key.taxon) for key, s in sequences.items()),
            parameters,
            processes=processes,
            progress=progress,
            pinned=pinned,
        )
        if previous is not None:
            clustering = _keep_previous_members(clustering, previous, sequences)
        table = ClusterTable.of(clustering)
        table_hash = db.store.store_chunk(table.encode())
        db.store.states.record_completed(selecting.operation_id, [table_hash])
    chunk_hashes, delta_bytes = _store_deltas(db, table, sequences, progress, deltas_state.operation_id)
    member_residues = sum(len(sequences[k].residues) for k in table.members)
    residues = sum(len(s.residues) for s in sequences.values())
    statistics = {
        "sequences": table.sequence_count, "records": records, "references": len(table.references),
        "members": len(table.members), "residues": residues, "member_residues": member_residues,
        "delta_bytes": delta_bytes,
    }
    identity_used = table.identity if table.identity is not None else parameters.identity
    recorded = {**parameters.to_dict(), "identity_used": identity_used, "rank": rank}
    if taxdump is not None:
        recorded["taxdump"] = taxdump.to_hex()
    if previous is not None:
        recorded["updated_from"] = previous[0]
    reduction = ReductionManifest(
        database=db.name, profile=profile, source_manifest=manifest_hash, source_version=manifest.version,
        delta_chunks=tuple(sorted(chunk_hashes)), objects=(table_hash,) if taxdump is None else (table_hash, taxdump),
        parameters=recorded, statistics=statistics, tool_version=tool_version(),
    )
    published = reductions.publish(reduction, expected=current)
    db.store.states.complete(selecting.operation_id)
    db.store.states.complete(deltas_state.operation_id)
    return ReductionResult(
        db.name, manifest.version, profile, published, len(table.references), len(table.members),
        table.sequence_count, records, identity_used, residues, member_residues, delta_bytes,
        unchanged=published == current, seconds=time.perf_counter() - started,
    )


def _state(
    db: SequenceDatabase, manifest_hash: SHA256Hash, profile: str, step: str, identity: dict[str, Any]
) -> ProcessingState:
    """The processing state of one step of this reduction, started or resumed (see the module docstring)."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    source = SourceInfo(db.name, source=f"reduce {step} {digest}", version=profile)
    return db.store.states.start(
        OperationType.REDUCE, source, manifest_hash=manifest_hash, manifest_version=profile, total_chunks=0
    )


def _resumed_table(db: SequenceDatabase, state: ProcessingState) -> tuple[ClusterTable | None, SHA256Hash | None]:
    """The cluster table an interrupted run of this reduction stored, if it is still there and reads."""
    for table_hash in state.completed_chunks:
        try:
            return ClusterTable.decode(db.store.get_chunk(table_hash), f"cluster table {table_hash.to_hex()}"), table_hash
        except (StorageError, ClusterTableError):
            continue  # gone or damaged: select again
    return None, None


def _read_sequences(
    db: SequenceDatabase, version: str, taxonomy_aware: bool, taxonomy: Taxonomy | None, rank: str | None
) -> tuple[dict[SequenceKey, _Sequence], int]:
    """Every distinct sequence (per taxon when taxonomy-aware) with its first record's id and taxon."""
    residues_of: dict[bytes, bytes] = {}
    sequences: dict[SequenceKey, _Sequence] = {}
    records = 0
    ancestors: dict[int, int] = {}
    for entry, residues in db.sequence_entries(version):
        records += 1
        digest = entry.sequence.digest
        if residues is not None:
            residues_of[digest] = residues
        taxon = entry.taxid or None
        if taxon is not None and taxonomy is not None and rank is not None:
            if taxon not in ancestors:
                ancestors[taxon] = _ancestor_at(taxonomy, taxon, rank)
            taxon = ancestors[taxon]
        key = SequenceKey(entry.sequence.to_hex(), taxon if taxonomy_aware else None)
        if key not in sequences:
            sequences[key] = _Sequence(residues_of[digest], entry.accession, taxon)
        elif sequences[key].taxon is None and taxon is not None:
            sequences[key].taxon = taxon
    return sequences, records


def _ancestor_at(taxonomy: Taxonomy, taxid: int, rank: str) -> int:
    """``taxid``'s ancestor (or itself) at ``rank``; ``taxid`` when it has none or is unknown."""
    try:
        for node in reversed(taxonomy.lineage(taxid)):
            if taxonomy.rank(node) == rank:
                return node
    except KeyError:
        pass
    return taxid


def _previous_table(db: SequenceDatabase, profile: str) -> tuple[str, ClusterTable]:
    """The source version and cluster table of the profile an update starts from."""
    stored = db.store.reductions.stored(db.name, profile)
    if stored is None:
        known = ", ".join(db.store.reductions.profiles(db.name)) or "none yet"
        raise ProfileNotFound(
            f"--update needs an existing profile, and database '{db.name}' has no profile '{profile}' "
            f"(profiles: {known}): run reduce without --update first"
        )
    return stored.manifest.source_version, load_table(db, stored.manifest)


def load_table(db: SequenceDatabase, manifest: ReductionManifest) -> ClusterTable:
    """The cluster table a reduction manifest lists."""
    (table_hash,) = manifest.objects[:1] or (None,)
    if table_hash is None:
        raise ProfileNotFound(f"reduction profile '{manifest.profile}' of '{manifest.database}' lists no cluster table")
    return ClusterTable.decode(db.store.get_chunk(table_hash), f"cluster table {table_hash.to_hex()}")


def _pinned(previous: tuple[str, ClusterTable], sequences: dict[SequenceKey, _Sequence]) -> tuple[SequenceKey, ...]:
    """The previous references the new version still has, in their old selection order."""
    return tuple(key for key in previous[1].references if key in sequences)


def _keep_previous_members(
    clustering: Clustering, previous: tuple[str, ClusterTable], sequences: dict[SequenceKey, _Sequence]
) -> Clustering:
    """Members still present whose reference is still a reference keep that reference."""
    old = previous[1]
    references = set(clustering.references)
    members = dict(clustering.members)
    for key, membership in old.members.items():
        if key in members and membership.reference in references:
            members[key] = membership
    return replace(clustering, members=members)


def _store_deltas(
    db: SequenceDatabase,
    table: ClusterTable,
    sequences: dict[SequenceKey, _Sequence],
    progress: Progress | None,
    operation_id: str,
) -> tuple[list[SHA256Hash], int]:
    """Encode every member against its reference; store one delta chunk per reference with members,
    recording them in the run's processing state (256 at a time)."""
    hashes: list[SHA256Hash] = []
    unrecorded: list[SHA256Hash] = []
    size = 0
    with_members = [r for r in table.references if table.members_of(r)]
    for done, reference in enumerate(with_members, start=1):
        ref = sequences[reference].residues
        records = []
        for member in sorted(table.members_of(reference), key=lambda k: (k.sha256, k.taxon or 0)):
            seq = sequences[member]
            ops = delta.encode(ref, seq.residues)
            size += len(ops)
            records.append(DeltaRecord(
                child_id=seq.child_id, child_hash=SHA256Hash.from_hex(member.sha256),
                reference_hash=SHA256Hash.from_hex(reference.sha256), ops=ops, taxon_id=seq.taxon,
                identity=table.members[member].identity,
            ))
        stored = db.store.store_delta_chunk(DeltaChunk(SHA256Hash.from_hex(reference.sha256), tuple(records)))
        hashes.append(stored)
        unrecorded.append(stored)
        if done % 256 == 0 or done == len(with_members):
            db.store.states.record_completed(operation_id, unrecorded)
            unrecorded = []
            if progress is not None:
                progress("encode deltas", done, len(with_members))
    return hashes, size
