"""GenBank and EMBL flat files, converted (not byte-exact) into sequence records.

Format
    GenBank (``LOCUS`` ... ``ORIGIN`` ... ``//``) and EMBL (``ID`` ... ``SQ``
    ... ``//``) flat files, plain or compressed (detected by magic bytes).
    Parsing is Biopython's (``Bio.SeqIO`` ``"genbank"`` / ``"embl"``): these
    formats carry features, references and annotations that a sequence
    database does not keep, so there is no layout to preserve.
What is kept
    Per record: the accession with version (``VERSION`` line, else the first
    ``ACCESSION``), the description (``DEFINITION`` / ``DE``), the taxon from
    the source feature's ``/db_xref="taxon:N"`` (None when absent), and the
    sequence (upper case, as Biopython gives it). :meth:`ConvertedRecord.to_fasta`
    turns it into a :class:`FastaRecord` with header ``<accession> <description>``
    wrapped at 60 residues (GenBank's ORIGIN width), which is what gets stored;
    an export therefore gives FASTA, not the original flat file.
Errors
    Biopython's parse errors, and a file that ends inside a record's
    sequence (which Biopython only warns about), become
    :class:`InputFormatError` naming the file;
    Biopython does not report line numbers, so the error names the record
    count reached instead.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from talaria_storage.core.errors import InputFormatError
from talaria_storage.formats.fasta import (
    FastaRecord,
    Source,
    _regular_layout,
    open_input,
    sniff_format,
    source_name,
)

DEFAULT_WRAP = 60


@dataclass(frozen=True, slots=True)
class ConvertedRecord:
    """One GenBank/EMBL record reduced to what the database stores."""

    accession: str
    description: str
    taxon: int | None
    residues: bytes

    def to_fasta(self, wrap: int = DEFAULT_WRAP) -> FastaRecord:
        """A FASTA record for this entry (header ``accession description``)."""
        header = self.accession if not self.description else f"{self.accession} {self.description}"
        return FastaRecord(header.encode("utf-8"), self.residues, _regular_layout(wrap, True))


def _taxon_of(record) -> int | None:  # record: Bio.SeqRecord.SeqRecord
    for feature in record.features:
        if feature.type != "source":
            continue
        for xref in feature.qualifiers.get("db_xref", []):
            if xref.startswith("taxon:") and xref[6:].isdigit():
                return int(xref[6:])
    for xref in record.dbxrefs:  # EMBL sometimes puts it at record level
        if xref.startswith("taxon:") and xref[6:].isdigit():
            return int(xref[6:])
    return None


def read_flatfile(
    source: Source, fmt: Literal["genbank", "embl"] | None = None, *, name: str | None = None
) -> Iterator[ConvertedRecord]:
    """Stream the records of a GenBank or EMBL file (``fmt`` sniffed from paths when None)."""
    from Bio import BiopythonParserWarning, SeqIO  # imported on use: FASTA imports never pay for it

    path = source_name(source, name)
    if fmt is None:
        if not isinstance(source, (str, os.PathLike)):
            raise ValueError("give fmt= when reading GenBank/EMBL from a stream")
        found = sniff_format(source, name)
        if found not in ("genbank", "embl"):
            raise InputFormatError(path, 1, f"expected GenBank or EMBL, found {found}")
        fmt = found  # type: ignore[assignment]
    with open_input(source, name) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace")  # type: ignore[arg-type]
        count = 0
        try:
            records = SeqIO.parse(text, fmt)
            while True:
                # Biopython only warns when the file ends inside a record's sequence: a cut
                # download must be an error, not a silently shorter record. The filter is
                # scoped to the parse of one record, never held across a yield.
                with warnings.catch_warnings():
                    warnings.filterwarnings(
                        "error", message="Premature end of file", category=BiopythonParserWarning
                    )
                    record = next(records, None)
                if record is None:
                    break
                count += 1
                accession = record.id if record.id and record.id != "<unknown id>" else record.name
                yield ConvertedRecord(
                    accession=accession,
                    description=record.description if record.description != "." else "",
                    taxon=_taxon_of(record),
                    residues=bytes(record.seq).upper() if record.seq is not None else b"",
                )
        except InputFormatError:
            raise
        except BiopythonParserWarning as exc:
            raise InputFormatError(
                path, None, f"truncated {fmt} file after {count} records"
            ) from exc
        except (ValueError, AssertionError) as exc:  # Biopython reports bad input with both
            raise InputFormatError(
                path, None, f"invalid {fmt} after {count} records: {exc}"
            ) from exc
        finally:
            text.detach()
