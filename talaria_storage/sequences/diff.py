"""What changed between two versions of a sequence database.

A version is seen as a multiset of *occurrences*: one per record, each an
(accession, header, canonical sequence hash, taxid) as
:meth:`SequenceDatabase.entries` yields them. Sequences are identified by
their canonical hash (upper case, no whitespace), so re-wrapping lines or
changing residue case is not a change.

Rules, applied per sequence hash ``S`` (A is the old version, B the new one):

1. **unchanged** - occurrences identical in accession, header and taxid are
   paired off first, copy for copy (a multiset difference);
2. of what is left, occurrences of ``S`` with the *same accession* are
   paired in sorted (header, taxid) order; then the rest of ``S``'s
   occurrences, whatever their accession, in sorted (accession, header,
   taxid) order;
3. a pair whose header differs is **header_changed**; a pair whose taxid
   differs is **reclassified**. A pair can be both (a UniProt ``OX=`` change
   rewrites the header and the taxon): it is then listed in both;
4. an occurrence of B left without a partner is **added**: either ``S`` is
   not in A at all, or B carries more copies of ``S`` than A (a new
   duplicate). Symmetrically, an A occurrence left over is **removed**.

Output tuples are sorted, so the same two versions always give the same diff.

Cost: two versions with the same manifest hash give an empty diff without
reading a chunk. Otherwise chunks present in both manifests (same hash, so
byte-identical records *and* taxids) are paired off as unchanged from the
manifests alone, and only the records of the other chunks are held in
memory, in one dict per version (sequence hash -> occurrences). That is
bounded by the size of the change, not of the database, for release-to-
release diffs; a diff of two unrelated versions holds both in memory.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import ref_key

if TYPE_CHECKING:
    from talaria_storage.sequences.database import SequenceDatabase
    from talaria_storage.sequences.manifest import Manifest


@dataclass(frozen=True, slots=True, order=True)
class Occurrence:
    """A record present in one version only (an added or removed occurrence)."""

    accession: str
    sequence: SHA256Hash
    header: str
    taxid: int  # 0 = none

    def to_dict(self) -> dict[str, Any]:
        return {"accession": self.accession, "sequence": self.sequence.to_hex(), "header": self.header,
                "taxid": self.taxid}


@dataclass(frozen=True, slots=True, order=True)
class HeaderChange:
    """The same sequence under a different header (``accession`` is B's, ``old_accession`` A's)."""

    accession: str
    old_accession: str
    sequence: SHA256Hash
    old_header: str
    new_header: str

    def to_dict(self) -> dict[str, Any]:
        return {"accession": self.accession, "old_accession": self.old_accession,
                "sequence": self.sequence.to_hex(), "old_header": self.old_header, "new_header": self.new_header}


@dataclass(frozen=True, slots=True, order=True)
class Reclassification:
    """The same sequence labelled with a different taxon (0 = none)."""

    accession: str
    sequence: SHA256Hash
    old_taxid: int
    new_taxid: int

    def to_dict(self) -> dict[str, Any]:
        return {"accession": self.accession, "sequence": self.sequence.to_hex(), "old_taxid": self.old_taxid,
                "new_taxid": self.new_taxid}


@dataclass(frozen=True, slots=True)
class VersionDiff:
    """The changes from version ``a`` to version ``b`` of ``database`` (see the module docstring)."""

    database: str
    a: str
    b: str
    added: tuple[Occurrence, ...] = ()
    removed: tuple[Occurrence, ...] = ()
    header_changed: tuple[HeaderChange, ...] = ()
    reclassified: tuple[Reclassification, ...] = ()
    unchanged: int = 0
    a_manifest: SHA256Hash | None = field(default=None, compare=False)
    b_manifest: SHA256Hash | None = field(default=None, compare=False)

    @property
    def is_empty(self) -> bool:
        """True when nothing was added, removed, renamed or reclassified."""
        return not (self.added or self.removed or self.header_changed or self.reclassified)

    def counts(self) -> dict[str, int]:
        """How many occurrences fall in each category."""
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "header_changed": len(self.header_changed),
            "reclassified": len(self.reclassified),
            "unchanged": self.unchanged,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: names, manifest hashes, counts and every change record."""
        return {
            "database": self.database,
            "a": self.a,
            "b": self.b,
            "a_manifest": self.a_manifest.to_hex() if self.a_manifest else None,
            "b_manifest": self.b_manifest.to_hex() if self.b_manifest else None,
            "counts": self.counts(),
            "added": [o.to_dict() for o in self.added],
            "removed": [o.to_dict() for o in self.removed],
            "header_changed": [c.to_dict() for c in self.header_changed],
            "reclassified": [c.to_dict() for c in self.reclassified],
        }


# (accession, header bytes, taxid) of one occurrence; grouped per sequence hash.
_Key = tuple[str, bytes, int]


def diff_versions(db: SequenceDatabase, a: str | None, b: str | None) -> VersionDiff:
    """The diff from ``db@a`` to ``db@b`` (None names HEAD); see the module docstring for the rules."""
    a_hash, a_manifest = db.manifest(a)
    b_hash, b_manifest = db.manifest(b)
    names: dict[str, Any] = {"database": db.name, "a": a_manifest.version, "b": b_manifest.version,
                             "a_manifest": a_hash, "b_manifest": b_hash}
    if a_hash == b_hash:
        return VersionDiff(unchanged=a_manifest.records, **names)
    skip_a, skip_b, shared_records = _shared_chunks(a_manifest, b_manifest)
    old = _occurrences(db.entries(_pinned(db, a, a_hash, a_manifest)), skip_a)
    new = _occurrences(db.entries(_pinned(db, b, b_hash, b_manifest)), skip_b)

    added: list[Occurrence] = []
    removed: list[Occurrence] = []
    renamed: list[HeaderChange] = []
    reclassified: list[Reclassification] = []
    unchanged = shared_records
    for sequence in old.keys() | new.keys():
        pairs, left_a, left_b, same = _pair(old.get(sequence, Counter()), new.get(sequence, Counter()))
        unchanged += same
        for (acc_a, head_a, tax_a), (acc_b, head_b, tax_b) in pairs:
            if head_a != head_b:
                renamed.append(HeaderChange(acc_b, acc_a, sequence, _text(head_a), _text(head_b)))
            if tax_a != tax_b:
                reclassified.append(Reclassification(acc_b, sequence, tax_a, tax_b))
        removed.extend(Occurrence(acc, sequence, _text(head), tax) for acc, head, tax in left_a)
        added.extend(Occurrence(acc, sequence, _text(head), tax) for acc, head, tax in left_b)
    return VersionDiff(
        added=tuple(sorted(added)),
        removed=tuple(sorted(removed)),
        header_changed=tuple(sorted(renamed)),
        reclassified=tuple(sorted(reclassified)),
        unchanged=unchanged,
        **names,
    )


def _shared_chunks(a: Manifest, b: Manifest) -> tuple[set[int], set[int], int]:
    """Chunk indexes of A and of B whose chunk the other version also lists, copy for copy.

    Equal chunk hashes mean byte-identical records with identical taxids, so
    their occurrences pair off as unchanged without being read (rule 1).
    """
    available = Counter(entry.hash for entry in b.chunks)
    skip_a: set[int] = set()
    matched: Counter[SHA256Hash] = Counter()
    records = 0
    for ci, entry in enumerate(a.chunks):
        if available[entry.hash] > 0:
            available[entry.hash] -= 1
            matched[entry.hash] += 1
            skip_a.add(ci)
            records += entry.records
    skip_b: set[int] = set()
    for ci, entry in enumerate(b.chunks):
        if matched[entry.hash] > 0:
            matched[entry.hash] -= 1
            skip_b.add(ci)
    return skip_a, skip_b, records


def _occurrences(entries: Iterator[Any], skip: set[int]) -> dict[SHA256Hash, Counter[_Key]]:
    """Sequence hash -> multiset of (accession, header, taxid) for records outside ``skip`` chunks."""
    found: dict[SHA256Hash, Counter[_Key]] = defaultdict(Counter)
    for entry in entries:
        if entry.chunk not in skip:
            found[entry.sequence][(entry.accession, entry.header, entry.taxid)] += 1
    return found


def _pair(
    old: Counter[_Key], new: Counter[_Key]
) -> tuple[list[tuple[_Key, _Key]], list[_Key], list[_Key], int]:
    """Pair one sequence's occurrences (rules 1 and 2): (changed pairs, A left, B left, unchanged)."""
    same = old & new
    rest_a = sorted((old - same).elements())
    rest_b = sorted((new - same).elements())
    pairs: list[tuple[_Key, _Key]] = []
    by_accession: dict[str, list[_Key]] = defaultdict(list)
    for key in rest_b:
        by_accession[key[0]].append(key)
    unpaired_a: list[_Key] = []
    for key in rest_a:
        candidates = by_accession.get(key[0])
        if candidates:
            pairs.append((key, candidates.pop(0)))
        else:
            unpaired_a.append(key)
    unpaired_b = [key for group in by_accession.values() for key in group]
    unpaired_b.sort()
    count = min(len(unpaired_a), len(unpaired_b))
    pairs.extend(zip(unpaired_a[:count], unpaired_b[:count]))
    return pairs, unpaired_a[count:], unpaired_b[count:], sum(same.values())


def _text(header: bytes) -> str:
    """Header bytes as text for people and JSON (undecodable bytes become U+FFFD)."""
    return header.decode("utf-8", "replace")


def _pinned(db: SequenceDatabase, requested: str | None, h: SHA256Hash, manifest: Manifest) -> str | None:
    """A version name that keeps naming manifest ``h`` while its entries are read.

    HEAD may move between resolving it and walking it; a version ref is
    create-only, so walking HEAD's version by name cannot switch manifests
    under the chunk indexes computed from ``h``.
    """
    if requested is None and db.store.refs.get(ref_key(db.name, manifest.version)) == h:
        return manifest.version
    return requested
