"""Talaria's reduction metadata files: ``deltas.dat`` and ``ref2children.tsv``, written and read.

What ``export --profile P --metadata DIR`` writes, for tools that expand
search hits without this library:

``deltas.dat``
    One line per child record (every record a reference stands for but the
    reference record itself)::

        child<TAB>reference<TAB>[taxon:N<TAB>]ops

    ``ops`` is the edit script that turns the reference's residues into the
    child's (:func:`talaria_storage.reduction.delta.format_edits`: one line,
    no TAB); ``taxon:N`` is present when the child record has a taxon.
    Lines are sorted by child, then reference.
``ref2children.tsv``
    One line per reference record: ``reference<TAB>child<TAB>child…``, the
    children sorted; a reference with no children is a line of one field.
    Lines are sorted by reference.

A record is named by the first word of its header (its accession). Both
files are UTF-8 with LF line ends, and the same profile always writes the
same bytes. Reading either file checks every line and stops at the first bad
one with a :class:`MetadataFormatError` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from talaria_storage.core.errors import InputFormatError
from talaria_storage.reduction import delta
from talaria_storage.reduction.delta import Edit
from talaria_storage.reduction.profile import ReductionProfile

DELTAS = "deltas.dat"
REF2CHILDREN = "ref2children.tsv"


class MetadataFormatError(InputFormatError):
    """A line of ``deltas.dat`` or ``ref2children.tsv`` that is not what the format says."""


@dataclass(frozen=True, slots=True)
class DeltaLine:
    """One line of ``deltas.dat``."""

    child: str
    reference: str
    taxon: int | None
    edits: tuple[Edit, ...]

    def text(self) -> str:
        taxon = "" if self.taxon is None else f"taxon:{self.taxon}\t"
        return f"{self.child}\t{self.reference}\t{taxon}{delta.format_edits(self.edits)}\n"


@dataclass(frozen=True, slots=True)
class MetadataFiles:
    """What :func:`write_metadata` wrote."""

    deltas: Path
    ref2children: Path
    children: int
    references: int


def profile_lines(profile: ReductionProfile) -> tuple[list[DeltaLine], dict[str, list[str]]]:
    """The ``deltas.dat`` lines and the reference -> children map of ``profile``, sorted."""
    records, residues_of = _records_by_sequence(profile)
    table = profile.table
    deltas: list[DeltaLine] = []
    children: dict[str, list[str]] = {}
    for reference in table.references:
        carriers = records.get(reference.sha256, [])
        if not carriers:
            continue
        ref_id = carriers[0][0]
        kids = children.setdefault(ref_id, [])
        ref_residues = residues_of[reference.sha256]
        for key in (reference, *table.members_of(reference)):
            mine = [c for c in records.get(key.sha256, []) if key.taxon is None or c[1] == key.taxon or c[1] is None]
            if key == reference:
                mine = mine[1:]  # the reference record itself is no child
            if not mine:
                continue
            edits = delta.edit_script(ref_residues, residues_of[key.sha256])
            for child, taxon in mine:
                kids.append(child)
                deltas.append(DeltaLine(child, ref_id, taxon, edits))
    for kids in children.values():
        kids.sort()
    deltas.sort(key=lambda line: (line.child, line.reference))
    return deltas, dict(sorted(children.items()))


def _records_by_sequence(
    profile: ReductionProfile,
) -> tuple[dict[str, list[tuple[str, int | None]]], dict[str, bytes]]:
    """Per sequence (SHA-256 hex): the (accession, taxon) of every record carrying it, in manifest
    order, and its canonical residues; one pass over the version."""
    found: dict[str, list[tuple[str, int | None]]] = {}
    residues_of: dict[str, bytes] = {}
    for entry, residues in profile.database.sequence_entries(profile.snapshot.version):
        sha = entry.sequence.to_hex()
        found.setdefault(sha, []).append((entry.accession, entry.taxid or None))
        if residues is not None:
            residues_of[sha] = residues
    return found, residues_of


def write_metadata(profile: ReductionProfile, directory: Path) -> MetadataFiles:
    """Write ``deltas.dat`` and ``ref2children.tsv`` into ``directory`` (created), each atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    deltas, children = profile_lines(profile)
    deltas_path = _write(directory / DELTAS, (line.text() for line in deltas))
    tsv_path = _write(directory / REF2CHILDREN, ("\t".join([ref, *kids]) + "\n" for ref, kids in children.items()))
    return MetadataFiles(deltas_path, tsv_path, len(deltas), len(children))


def _write(path: Path, lines: Iterable[str]) -> Path:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="\n") as out:
        out.writelines(lines)
    partial.replace(path)
    return path


def read_deltas(path: Path) -> Iterator[DeltaLine]:
    """The lines of a ``deltas.dat``; a :class:`MetadataFormatError` naming the first bad line."""
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) not in (3, 4) or not fields[0] or not fields[1]:
            raise MetadataFormatError(
                str(path), number, f"expected 'child<TAB>reference<TAB>[taxon:N<TAB>]ops', got {len(fields)} field(s)"
            )
        taxon = None
        if len(fields) == 4:
            tag = fields[2]
            if not (tag.startswith("taxon:") and tag[6:].isdigit()):
                raise MetadataFormatError(str(path), number, f"the third of four fields must be 'taxon:N', got '{tag[:40]}'")
            taxon = int(tag[6:])
        try:
            edits = delta.parse_edits(fields[-1], "")
        except delta.DeltaError as exc:
            raise MetadataFormatError(str(path), number, exc.problem) from None
        yield DeltaLine(fields[0], fields[1], taxon, edits)


def read_ref2children(path: Path) -> dict[str, list[str]]:
    """A ``ref2children.tsv`` as reference -> children; a :class:`MetadataFormatError` naming the first bad line."""
    found: dict[str, list[str]] = {}
    for number, line in _lines(path):
        fields = line.split("\t")
        if any(not f for f in fields):
            raise MetadataFormatError(str(path), number, "an empty field (expected 'reference<TAB>child<TAB>child...')")
        if fields[0] in found:
            raise MetadataFormatError(str(path), number, f"reference '{fields[0][:60]}' is listed twice")
        found[fields[0]] = fields[1:]
    return found


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataFormatError(str(path), None, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            raise MetadataFormatError(str(path), number, "a CR line end; these files use LF only")
        if line:
            yield number, line
