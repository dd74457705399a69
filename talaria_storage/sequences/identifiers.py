"""The names a record answers to, and how a look-up's identifier is matched to them.

A pipeline holds identifiers in whatever form its tools print them. One
record of UniProt, ``>sp|P69905|HBA_HUMAN Hemoglobin subunit alpha ...``,
is asked for as

* the full first word of its header, ``sp|P69905|HBA_HUMAN`` (what BLAST,
  DIAMOND, ``samtools faidx`` and pyfastx report and key on);
* its accession, ``P69905`` (NCBI's ``NC_000913.3``, with or without the
  ``.3``: without, the record of the highest version is meant);
* its UniProt entry name, ``HBA_HUMAN``;

and by its sequence's digests (SHA-256, ``SQ.``, ``md5:``), which the
database layer matches itself. An nr-style header (``>id1 desc^Aid2
desc``) names one record by each of its Ctrl-A-joined parts.

Index keys. The stored look-up table (:mod:`talaria_storage.index.lookup_table`)
holds, per record, only its bare accessions (without ``.version``) and its
entry names (:func:`indexed_names`). A query is reduced by the same rule
(:func:`indexed_names` of the query itself: ``sp|P69905|HBA_HUMAN`` gives
``P69905`` and ``HBA_HUMAN``, ``NC_000913.3`` gives ``NC_000913``), and each
candidate record is then checked against the query (:func:`name_match`):
indexing every form separately made the table 1.5x larger for the same
answers.

Declared keys. ``import --id-regex R`` adds, for every record, each match
of ``R`` in its header (its first group, if it has one; :func:`declared_names`),
as written: ``--id-regex 'GN=(\\S+)'`` makes gene names look-up keys. The
version's manifest keeps ``R``, so look-ups probe and check them too.
"""

from __future__ import annotations

import hashlib
import re

from talaria_storage.formats.fasta import MARK
from talaria_storage.index.lookup_table import digest_fingerprint, name_fingerprint

_UNIPROT = re.compile(rb"(sp|tr)\|([^|\s]+)\|([^|\s]*)")
_NCBI_GI = re.compile(rb"gi\|\d+\|[a-z]{2,4}\|([^|\s]+)")
_VERSION = re.compile(rb"\.(\d+)$")

#: :func:`name_match` of an identifier that is a record's own name (first word, accession or
#: entry name); larger results are a bare accession matching that record's ``.version``.
EXACT = -1


def _first_words(header: bytes) -> list[bytes]:
    """The first word of each Ctrl-A-joined part of a header (none for an empty header)."""
    if b"\x01" not in header:
        words = header.split(None, 1)
        return words[:1]
    return [words[0] for words in (part.split(None, 1) for part in header.split(b"\x01")) if words]


def _word_names(word: bytes) -> tuple[bytes, bytes | None]:
    """(accession, UniProt entry name or None) of a header's first word, the UniProt form
    matched once for both (a look-up checks each candidate's header with them)."""
    if b"|" not in word:
        return word, None  # neither form matches: the test spares a look-up two regular expressions
    found = _UNIPROT.match(word)
    if found:
        return found.group(2), found.group(3) or None
    found = _NCBI_GI.match(word)
    return (found.group(1) if found else word), None


def accession_of_word(word: bytes) -> bytes:
    """The accession a header's first word names (see :func:`accession_from_header`)."""
    return _word_names(word)[0]


def accession_from_header(header: bytes) -> str:
    """The record's accession, used as its lookup key.

    UniProt ``sp|P12345|NAME_HUMAN ...`` -> ``P12345``; NCBI
    ``gi|123|ref|NC_008253.1| ...`` -> ``NC_008253.1``; otherwise the first
    whitespace-delimited token as a whole (ResFinder's
    ``resfinder~~~blaTEM-1B_1~~~AY458016~~~...`` stays one key). Decoded as
    UTF-8 with surrogate escapes, so no header byte is lost.
    """
    token = header.split(None, 1)[0] if header.strip() else b""
    return accession_of_word(token).decode("utf-8", "surrogateescape")


def accessions_from_header(header: bytes) -> list[str]:
    """Every identifier a header names: one per Ctrl-A-joined part (NCBI nr/nt's
    ``>id1 desc1^Aid2 desc2``), each as :func:`accession_from_header` gives it; none for an
    empty header, which is found by digest or position, never by an empty string."""
    found = (accession_of_word(word).decode("utf-8", "surrogateescape") for word in _first_words(header))
    return list(dict.fromkeys(found))


def entry_name(word: bytes) -> bytes | None:
    """The UniProt entry name of a first word ``sp|P69905|HBA_HUMAN`` (``HBA_HUMAN``), else None."""
    return _word_names(word)[1]


def bare_accession(accession: bytes) -> tuple[bytes, int | None]:
    """(accession without ``.version``, the version or None)."""
    found = _VERSION.search(accession) if b"." in accession else None
    if found is None:
        return accession, None
    return accession[: found.start()], int(found.group(1))


def indexed_names(header: bytes) -> list[bytes]:
    """The name keys the stored look-up table holds for a record with this header (or that a
    query with this text probes): each bare accession and each entry name, once."""
    names: dict[bytes, None] = {}
    for word in _first_words(header):
        accession, name = _word_names(word)
        names[bare_accession(accession)[0]] = None
        if name:
            names[name] = None
    return list(names)


def declared_names(header: bytes, pattern: re.Pattern[bytes] | None) -> list[bytes]:
    """The keys ``pattern`` (``--id-regex``) finds in a header: each match, or its first group."""
    if pattern is None:
        return []
    text = header.partition(MARK)[0]
    found = (m.group(1) if pattern.groups else m.group(0) for m in pattern.finditer(text))
    return list(dict.fromkeys(name for name in found if name))


def record_names(header: bytes, pattern: re.Pattern[bytes] | None) -> list[bytes]:
    """Every name key of a record: :func:`indexed_names`, then :func:`declared_names`, once each."""
    names = indexed_names(header)
    names += [name for name in declared_names(header, pattern) if name not in names]
    return names


def declared_pattern(regex: str | None) -> re.Pattern[bytes] | None:
    """``--id-regex`` compiled (None for none); ValueError naming the problem when it is not one."""
    if not regex:
        return None
    try:
        return re.compile(regex.encode("utf-8", "surrogateescape"))
    except re.error as exc:
        raise ValueError(f"--id-regex {regex!r} is not a regular expression ({exc})") from None


def probe_names(identifier: bytes, pattern: re.Pattern[bytes] | None) -> list[bytes]:
    """The name keys a look-up of ``identifier`` probes: :func:`indexed_names` of it, and the
    identifier as written when the version has declared keys."""
    names = indexed_names(identifier)
    if pattern is not None and identifier not in names:
        names.append(identifier)
    return names


def name_match(identifier: bytes, header: bytes, pattern: re.Pattern[bytes] | None = None) -> int | None:
    """How ``identifier`` names the record with ``header``: :data:`EXACT` when it is one of its
    first words, accessions, entry names or declared keys (``pattern``); the record's version
    ``N`` when it is the bare form of an accession ``identifier.N``; None when it does not
    name the record."""
    if pattern is not None and identifier in declared_names(header, pattern):
        return EXACT
    best: int | None = None
    for word in _first_words(header):
        accession, name = _word_names(word)
        if identifier in (word, accession) or identifier == name:
            return EXACT
        bare, version = bare_accession(accession)
        if version is not None and bare == identifier and (best is None or version > best):
            best = version
    return best


def record_fingerprints(
    header: bytes, sequence: bytes, sha256: bytes, pattern: re.Pattern[bytes] | None = None
) -> list[int]:
    """The look-up table's keys for one record, as fingerprints: its canonical ``sequence``'s
    SHA-256 (given: the import has it already), SHA-512 (``SQ.``) and MD5, then
    :func:`indexed_names` and :func:`declared_names`."""
    found = [
        digest_fingerprint(sha256),
        digest_fingerprint(hashlib.sha512(sequence).digest()),
        digest_fingerprint(hashlib.md5(sequence, usedforsecurity=False).digest()),
    ]
    found += [name_fingerprint(name) for name in record_names(header, pattern)]
    return found
