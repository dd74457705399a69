"""The cluster table: which sequences a reduction kept as references, and which reference stands for each member.

One object in ``chunks/`` per reduction, listed in the manifest's
``objects``. Delta chunks carry only the references that have members; this
table carries every reference (most have none), the selection order and each
member's identity and coverage, so a profile answers "what does this
reference stand for" and "which reference stands for this" from one read.

Format (text, then compressed by the chunk store like any chunk; one line
per sequence, sorted: references in selection order, then members in
selection order)::

    talaria-clusters 1
    I <identity threshold used>
    R <sha256 hex> <taxon | ->
    M <sha256 hex> <taxon | -> <reference number> <identity> <coverage>

The ``I`` line (the threshold the selection used, which in ratio mode it
found) is optional. ``<reference number>`` is the 0-based place of the member's reference among
the ``R`` lines; identity and coverage are written with four decimals. The
taxon is the one the selection grouped by (``-`` unless taxonomy-aware).
The same clustering always gives the same bytes. A sequence appears once per
taxon it was clustered under, so taxonomy-aware tables may list a sequence
twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from talaria_storage.core.errors import StorageError
from talaria_storage.reduction.selection import Clustering, Membership, SequenceKey

HEADER = "talaria-clusters 1"


class ClusterTableError(StorageError):
    """A cluster table that does not parse: the object is damaged or not one."""


@dataclass(frozen=True)
class ClusterTable:
    """References in selection order and each member's :class:`Membership`."""

    references: tuple[SequenceKey, ...]
    members: dict[SequenceKey, Membership]
    identity: float | None = None
    _by_sha: dict[str, list[SequenceKey]] = field(default_factory=dict, compare=False, repr=False)
    _by_reference: dict[SequenceKey, list[SequenceKey]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for key in (*self.references, *self.members):
            self._by_sha.setdefault(key.sha256, []).append(key)
        for member, membership in self.members.items():
            self._by_reference.setdefault(membership.reference, []).append(member)

    @classmethod
    def of(cls, clustering: Clustering) -> ClusterTable:
        """The table of ``clustering``, its fractions rounded as the stored form writes them, so a
        table read back from the store equals the one that was written."""
        members = {
            key: Membership(m.reference, round(m.identity, 4), round(m.coverage, 4))
            for key, m in clustering.members.items()
        }
        return cls(tuple(clustering.references), members, round(clustering.identity, 4))

    @property
    def sequence_count(self) -> int:
        return len(self.references) + len(self.members)

    def keys_of(self, sha256: str) -> list[SequenceKey]:
        """Every entry of the sequence ``sha256`` (hex): one, or one per taxon when taxonomy-aware."""
        return self._by_sha.get(sha256, [])

    def is_reference(self, key: SequenceKey) -> bool:
        return key not in self.members and key in self._by_sha.get(key.sha256, ())

    def reference_of(self, key: SequenceKey) -> SequenceKey:
        """The reference standing for ``key`` (itself for a reference)."""
        membership = self.members.get(key)
        return key if membership is None else membership.reference

    def members_of(self, reference: SequenceKey) -> list[SequenceKey]:
        """The members of ``reference``, in selection order (none for a member)."""
        return self._by_reference.get(reference, [])

    def encode(self) -> bytes:
        return "".join(self._lines()).encode("ascii")

    def _lines(self) -> Iterator[str]:
        yield HEADER + "\n"
        if self.identity is not None:
            yield f"I {self.identity:.4f}\n"
        number = {key: i for i, key in enumerate(self.references)}
        for key in self.references:
            yield f"R {key.sha256} {_taxon_text(key.taxon)}\n"
        for key, m in self.members.items():
            yield (
                f"M {key.sha256} {_taxon_text(key.taxon)} {number[m.reference]} "
                f"{m.identity:.4f} {m.coverage:.4f}\n"
            )

    @classmethod
    def decode(cls, data: bytes, where: str) -> ClusterTable:
        """Parse a stored table; a :class:`ClusterTableError` naming ``where`` and the line otherwise."""
        lines = data.decode("ascii", "replace").split("\n")
        if not lines or lines[0] != HEADER:
            raise ClusterTableError(f"{where}: not a cluster table (line 1 is not '{HEADER}')")
        references: list[SequenceKey] = []
        members: dict[SequenceKey, Membership] = {}
        identity = None
        for number, line in enumerate(lines[1:], start=2):
            if not line:
                continue
            try:
                if number == 2 and line.startswith("I "):
                    identity = float(line[2:])
                    continue
                members_part = _parse_line(line, references)
            except (ValueError, IndexError) as exc:
                raise ClusterTableError(f"{where} line {number}: {exc}; the object is damaged (run verify)") from None
            if members_part is None:
                continue
            members[members_part[0]] = members_part[1]
        return cls(tuple(references), members, identity)


def _taxon_text(taxon: int | None) -> str:
    return "-" if taxon is None else str(taxon)


def _parse_line(line: str, references: list[SequenceKey]) -> tuple[SequenceKey, Membership] | None:
    parts = line.split(" ")
    kind = parts[0]
    if kind == "R" and len(parts) == 3:
        references.append(_key(parts[1], parts[2]))
        return None
    if kind == "M" and len(parts) == 6:
        reference = int(parts[3])
        if not 0 <= reference < len(references):
            raise ValueError(f"reference number {reference} of {len(references)}")
        return _key(parts[1], parts[2]), Membership(references[reference], float(parts[4]), float(parts[5]))
    raise ValueError(f"expected 'R <sha256> <taxon>' or 'M <sha256> <taxon> <ref> <identity> <coverage>', got '{line[:60]}'")


def _key(sha: str, taxon: str) -> SequenceKey:
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"'{sha[:70]}' is not a SHA-256 in lower-case hex")
    return SequenceKey(sha, None if taxon == "-" else int(taxon))

