"""GenBank and EMBL flat files, read as records whose original text is kept byte for byte.

Format
    GenBank: ``LOCUS`` ... ``ORIGIN`` then sequence lines (a position right
    justified in 9 columns, then groups of 10 letters, 60 a line) ... ``//``.
    EMBL: ``ID`` ... ``SQ   Sequence ...`` then sequence lines (4 spaces,
    six blocks of `` <10 letters>``, the position right justified in 10
    columns) ... ``//``. Plain or compressed (detected by magic bytes, as FASTA).
What a record is
    :class:`FlatfileRecord`: the identifier as Biopython gives it
    (``VERSION`` accession.version, else the first ``ACCESSION``/``AC``,
    with EMBL's ``SV`` version, else the ``LOCUS``/``ID`` name), the
    definition (``DEFINITION``/``DE`` lines joined; GenBank's final ``.``
    dropped, as Biopython does), the taxon of the first ``/db_xref="taxon:N"`` (None when
    absent), the residues of the sequence block (upper case), and the
    record's whole text.
Why not Biopython's parser
    ``Bio.SeqIO`` gives the same identifiers, descriptions, taxa and
    residues (the tests hold these to it on every file), but it drops the
    text around them, and a store must give the file back byte for byte.
    Reading the few fields needed from the lines as they pass is also what
    lets the import stream a file of any size.
How it is stored (:func:`to_stored` / :func:`from_stored`)
    As a FASTA-shaped record whose residues are the sequence and whose
    header is ``<id> <definition>`` -- what look-ups key on and FASTA export
    writes -- then ``\\x1f`` and the *envelope*: one style letter, the text
    before the sequence block, ``\\x1d``, the text after it (the ``//`` line
    and anything after it), with each ``\\n`` written as ``\\x1e`` (a stored
    header holds no newline). The block itself is not stored: it is
    re-made from the residues in the style the letter names (``g``/``G``:
    GenBank lower/upper case, ``e``/``E``: EMBL), which the reader checked
    gives the block back exactly; any other block is kept verbatim (style
    ``v`` for GenBank, ``w`` for EMBL; the block between two ``\\x1d``). The three separators are control
    bytes no FASTA header may hold, so a stored header is unambiguous; a flat
    file that holds one is refused, naming the line.
Errors
    A record that does not end with ``//``, a sequence block outside
    ``ORIGIN``/``SQ``, a record without an identifier, a record of non-zero
    declared length without a sequence block (whose residues are not in the
    file), a separator byte, or text between records that is not blank: :class:`InputFormatError` naming the file
    and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

from talaria_storage.core.errors import InputFormatError
from talaria_storage.formats.fasta import (
    MARK,
    FastaRecord,
    Layout,
    Source,
    open_input,
    register_flatfile_text,
    source_name,
)

Flavour = Literal["genbank", "embl"]

SPLIT = b"\x1d"  # between the envelope's parts
NEWLINE = b"\x1e"  # a newline of the flat-file text, inside a stored header
_SEPARATORS = MARK + SPLIT + NEWLINE
FASTA_WRAP = 60  # Biopython's FASTA writer wraps at 60

_TAXON = re.compile(rb'/db_xref="taxon:(\d+)"')
_LENGTH = re.compile(rb"\s(\d+) (?:bp|aa|BP|AA)\b")  # the length a LOCUS or ID line declares
_LETTERS_PER_LINE = 60


@dataclass(frozen=True, slots=True)
class FlatfileRecord:
    """One GenBank or EMBL record: what Biopython would parse of it, and its exact text."""

    accession: str
    description: str
    taxon: int | None
    residues: bytes
    text: bytes  # the record's bytes in the file, from its first line to after its "//" line
    flavour: Flavour
    block: tuple[int, int]  # where the sequence block lies in ``text`` (start, end)

    @property
    def fasta_header(self) -> bytes:
        """``<id> <definition>``: the header FASTA export writes, as Biopython's FASTA writer does."""
        return (self.accession if not self.description else f"{self.accession} {self.description}").encode()


# --------------------------------------------------------------------------- the sequence block


def format_block(residues: bytes, style: bytes) -> bytes:
    """The sequence block of ``residues`` in one of the styles ``g``, ``G``, ``e``, ``E``."""
    letters = residues.lower() if style in (b"g", b"e") else residues.upper()
    lines = []
    for at in range(0, len(letters), _LETTERS_PER_LINE):
        groups = [letters[i : i + 10] for i in range(at, min(at + _LETTERS_PER_LINE, len(letters)), 10)]
        if style in (b"g", b"G"):
            lines.append(str(at + 1).rjust(9).encode() + b"".join(b" " + g for g in groups) + b"\n")
        else:
            body = b"".join((b" " + g).ljust(11) for g in groups).ljust(66)
            end = min(at + _LETTERS_PER_LINE, len(letters))
            lines.append(b"    " + body + str(end).rjust(10).encode() + b"\n")
    return b"".join(lines)


def _block_style(block: bytes, residues: bytes, flavour: Flavour) -> bytes:
    """The style letter that re-makes ``block`` from ``residues``, or ``v``/``w`` (GenBank/EMBL, kept verbatim)."""
    for style in (b"g", b"G") if flavour == "genbank" else (b"e", b"E"):
        if format_block(residues, style) == block:
            return style
    return b"v" if flavour == "genbank" else b"w"


# --------------------------------------------------------------------------- reading


def _field(line: bytes, width: int) -> bytes:
    return line[width:].strip()


class _Record:
    """The lines of one record as they pass, and the few fields read from them."""

    def __init__(self, first_line: int, flavour: Flavour) -> None:
        self.first_line = first_line
        self.flavour = flavour
        self.lines: list[bytes] = []
        self.end: int | None = None  # index into lines of the "//" line
        self.version = self.accession = self.name = b""
        self.sv = b""
        self.length: int | None = None  # the length the LOCUS/ID line declares
        self.definition: list[bytes] = []
        self.taxon: int | None = None
        self.block_start: int | None = None  # index into lines of the first sequence line (after ORIGIN/SQ)
        self.block_end: int | None = None
        self.in_definition = False


def read_flatfile(
    source: Source, fmt: Flavour | None = None, *, name: str | None = None
) -> Iterator[FlatfileRecord]:
    """Stream the records of a GenBank or EMBL file (``fmt`` sniffed from its first bytes when None)."""
    path = source_name(source, name)
    with open_input(source, name) as stream:
        yield from _records(stream, path, fmt)


def _records(stream: BinaryIO, path: str, fmt: Flavour | None) -> Iterator[FlatfileRecord]:
    """Records in file order. Lines before the first record (a release header) belong to it,
    blank lines after a record's ``//`` to that record, so the records' texts joined are the file."""
    record: _Record | None = None
    done: _Record | None = None  # ended by "//", kept until the next record starts (or the end)
    preamble: list[bytes] = []
    number = 0
    for number, line in enumerate(stream, 1):
        for byte in _SEPARATORS:
            if byte in line:
                raise InputFormatError(path, number, f"control byte 0x{byte:02x} in a flat file (column {line.index(byte) + 1})")
        if record is None:
            flavour = _starts(line, fmt)
            if flavour is None:
                if done is not None:
                    if line.strip():
                        raise InputFormatError(path, number, "text between records: expected LOCUS (GenBank) or ID (EMBL)")
                    done.lines.append(line)
                else:
                    preamble.append(line)
                continue
            if done is not None:
                yield _finish(done, path)
                done = None
            record = _Record(number, flavour)
            record.lines.extend(preamble)
            preamble = []
        record.lines.append(line)
        if _read_line(record, line, path, number):
            done, record = record, None
    if record is not None:
        raise InputFormatError(
            path, number, f"the record from line {record.first_line} does not end with '//': the file is cut short"
        )
    if done is not None:
        yield _finish(done, path)
    elif any(p.strip() for p in preamble):
        raise InputFormatError(path, 1, "no GenBank LOCUS or EMBL ID line")


def _starts(line: bytes, fmt: Flavour | None) -> Flavour | None:
    if line.startswith(b"LOCUS") and fmt in (None, "genbank"):
        return "genbank"
    if line.startswith(b"ID   ") and fmt in (None, "embl"):
        return "embl"
    return None


def _read_line(record: _Record, line: bytes, path: str, number: int) -> bool:
    """Read one line into ``record``; True when it ended the record (``//``)."""
    if line.startswith(b"//"):
        record.end = len(record.lines) - 1
        if record.block_start is not None and record.block_end is None:
            record.block_end = record.end
        return True
    if record.block_start is not None:
        if record.block_end is None and line[:1] not in (b" ", b"\t") and line.strip():
            raise InputFormatError(path, number, "a line inside the sequence block that is not sequence; expected '//'")
        return False
    if record.flavour == "genbank":
        head = line[:12]
        if head.startswith(b"ORIGIN"):
            record.block_start = len(record.lines)
        elif head.startswith(b"LOCUS"):
            parts = line[12:].split()
            record.name = parts[0] if parts else b""
            record.length = _declared_length(line)
        elif head.startswith(b"DEFINITION"):
            record.definition.append(_field(line, 12))
            record.in_definition = True
            return False
        elif head.startswith(b"ACCESSION") and not record.accession:
            parts = line[12:].split()
            record.accession = parts[0] if parts else b""
        elif head.startswith(b"VERSION"):
            parts = line[12:].split()
            record.version = parts[0] if parts else b""
        elif record.in_definition and head == b" " * 12:
            record.definition.append(_field(line, 12))
            return False
        elif record.taxon is None and b"/db_xref=\"taxon:" in line:
            found = _TAXON.search(line)
            record.taxon = int(found.group(1)) if found else None
    else:
        code = line[:2]
        if code == b"SQ":
            record.block_start = len(record.lines)
        elif code == b"ID":
            parts = line[5:].split(b";")
            record.name = parts[0].strip()
            record.length = _declared_length(line)
            if len(parts) > 1 and parts[1].strip().startswith(b"SV "):
                record.sv = parts[1].strip()[3:].strip()
        elif code == b"AC" and not record.accession:
            record.accession = line[5:].split(b";")[0].strip()
        elif code == b"DE":
            record.definition.append(_field(line, 5))
        elif code == b"FT" and record.taxon is None and b"/db_xref=\"taxon:" in line:
            found = _TAXON.search(line)
            record.taxon = int(found.group(1)) if found else None
    record.in_definition = False
    return False


def _declared_length(line: bytes) -> int | None:
    found = _LENGTH.search(line)
    return int(found.group(1)) if found else None


def _finish(record: _Record, path: str) -> FlatfileRecord:
    lines = record.lines
    assert record.end is not None
    if record.block_start is None:
        if record.length != 0:
            keyword = "ORIGIN" if record.flavour == "genbank" else "SQ"
            raise InputFormatError(
                path,
                record.first_line,
                f"the record has no {keyword} sequence (a CONTIG or master record?): its residues are not in "
                "the file; fetch it with its sequence (NCBI efetch rettype=gbwithparts) and import that",
            )
        start = end = record.end  # no sequence block: the "//" line follows the annotation
    else:
        start, end = record.block_start, record.end
    residues = b"".join(lines[start:end]).translate(None, b"0123456789 \t\r\n").upper()
    if record.flavour == "genbank":
        identifier = record.version or record.accession or record.name
    else:
        accession = record.accession or record.name
        identifier = accession + b"." + record.sv if record.sv and accession else accession
    if not identifier:
        raise InputFormatError(path, record.first_line, "a record without an accession or name")
    definition = b" ".join(d for d in record.definition if d)
    if record.flavour == "genbank" and definition.endswith(b"."):
        definition = definition[:-1]  # as Biopython does for GenBank (its EMBL parser keeps the ".")
    before = b"".join(lines[:start])
    block = b"".join(lines[start:end])
    return FlatfileRecord(
        accession=identifier.decode("utf-8", "replace"),
        description=definition.decode("utf-8", "replace"),
        taxon=record.taxon,
        residues=residues,
        text=before + block + b"".join(lines[end:]),
        flavour=record.flavour,
        block=(len(before), len(before) + len(block)),
    )


# --------------------------------------------------------------------------- stored form


def to_stored(record: FlatfileRecord) -> FastaRecord:
    """The FASTA-shaped record a flat-file record is stored as (see the module docstring)."""
    start, end = record.block
    block = record.text[start:end]
    style = _block_style(block, record.residues, record.flavour)
    parts = [style, record.text[:start], SPLIT]
    if style in (b"v", b"w"):
        parts += [block, SPLIT]
    parts.append(record.text[end:])
    envelope = b"".join(parts).replace(b"\n", NEWLINE)
    return FastaRecord(record.fasta_header + MARK + envelope, record.residues, Layout())


def is_stored_flatfile(header: bytes) -> bool:
    """True for the header of a record stored by :func:`to_stored`."""
    return MARK in header


def stored_taxon(header: bytes) -> int | None:
    """The taxon a stored flat-file header's text names (its first ``/db_xref="taxon:N"``)."""
    found = _TAXON.search(header, header.find(MARK))
    return int(found.group(1)) if found else None


def stored_flavour(record: FastaRecord) -> Flavour:
    """Whether a record stored by :func:`to_stored` came from GenBank or EMBL (its style letter)."""
    at = record.header.find(MARK) + 1
    return "genbank" if record.header[at : at + 1] in (b"g", b"G", b"v") else "embl"


def from_stored(record: FastaRecord) -> bytes:
    """The original text of a record stored by :func:`to_stored`."""
    _, _, envelope = record.header.partition(MARK)
    envelope = envelope.replace(NEWLINE, b"\n")
    style, rest = envelope[:1], envelope[1:]
    before, _, rest = rest.partition(SPLIT)
    if style in (b"v", b"w"):
        block, _, after = rest.partition(SPLIT)
    else:
        block, after = format_block(record.residues, style), rest
    return before + block + after


register_flatfile_text(lambda record: (from_stored(record), stored_flavour(record)))


def fasta_of(record: FastaRecord, wrap: int = FASTA_WRAP) -> bytes:
    """A stored record as FASTA: ``><id> <definition>``, residues upper case wrapped at ``wrap``."""
    header = record.header.partition(MARK)[0]
    residues = record.residues.upper()
    lines = [residues[i : i + wrap] for i in range(0, len(residues), wrap)]
    return b">" + header + b"\n" + b"".join(line + b"\n" for line in lines)
