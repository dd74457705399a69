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
entry names (:func:`indexed_names`). A query probes the bare accession of
its first word (:func:`probe_names`: ``sp|P69905|HBA_HUMAN`` and ``P69905``
probe ``P69905``, ``HBA_HUMAN`` probes itself, ``NC_000913.3`` probes
``NC_000913``), and each candidate record is then checked against the query
(:func:`name_match`):
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

# Bytes tested for by value: ``b"|" in word`` costs CPython 3.11 a TypeError raised and
# cleared (bytes.__contains__ tries its operand as an integer first), ~7x ``0x7C in word``.
_CTRL_A, _PIPE, _DOT = 0x01, ord("|"), ord(".")
_SPACES = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.split() splits on

#: :func:`name_match` of an identifier that is a record's own name (first word, accession or
#: entry name); larger results are a bare accession matching that record's ``.version``.
EXACT = -1


def _first_words(header: bytes) -> list[bytes]:
    """The first word of each Ctrl-A-joined part of a header (none for an empty header)."""
    if _CTRL_A not in header:
        words = header.split(None, 1)
        return words[:1]
    return [words[0] for words in (part.split(None, 1) for part in header.split(b"\x01")) if words]


def _word_names(word: bytes) -> tuple[bytes, bytes | None]:
    """(accession, UniProt entry name or None) of a header's first word, the UniProt form
    matched once for both (a look-up checks each candidate's header with them)."""
    if _PIPE not in word:
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
    found = _VERSION.search(accession) if _DOT in accession else None
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
    """The name keys a look-up of ``identifier`` probes: the bare accession of each of its
    first words, and the identifier as written when the version has declared keys.

    A first word's entry name is not probed: ``sp|P69905|HBA_HUMAN`` names only records
    whose first word it is, and each of those holds the key ``P69905`` too (an entry name
    has no ``|``, so no record's accession or entry name is the word itself). One probe,
    not two, for the form BLAST and DIAMOND report.
    """
    if _CTRL_A not in identifier:  # one first word (no generator: this is every look-up's path)
        words = identifier.split(None, 1)
        word = words[0] if words else b""
        names = [bare_accession(_word_names(word)[0] if _PIPE in word else word)[0]] if words else []
    else:
        names = list(dict.fromkeys(bare_accession(_word_names(word)[0])[0] for word in _first_words(identifier)))
    if pattern is not None and identifier not in names:
        names.append(identifier)
    return names


def name_match(identifier: bytes, header: bytes, pattern: re.Pattern[bytes] | None = None) -> int | None:
    """How ``identifier`` names the record with ``header``: :data:`EXACT` when it is one of its
    first words, accessions, entry names or declared keys (``pattern``); the record's version
    ``N`` when it is the bare form of an accession ``identifier.N``; None when it does not
    name the record.

    Every look-up checks its candidates here, so the usual answers are told without
    splitting the header into words: an identifier that is the header's first word (what
    BLAST and DIAMOND report), and a UniProt accession or entry name (``P69905`` or
    ``HBA_HUMAN`` of ``sp|P69905|HBA_HUMAN``). Each gives what :func:`parsed_name_match`
    gives (a property test holds them to it).
    """
    if pattern is not None and identifier in declared_names(header, pattern):
        return EXACT
    n = len(identifier)
    if n and _CTRL_A not in identifier and identifier.split(None, 1) == [identifier]:  # one plain word
        if header.startswith(identifier) and (len(header) == n or header[n] in _SPACES):
            return EXACT  # the first word
        if (
            header[3 + n : 4 + n] == b"|" and header.startswith(identifier, 3) and _PIPE not in identifier
            and header.startswith((b"sp|", b"tr|"))
        ):
            return EXACT  # sp|<identifier>|...: the UniProt accession
    if n and header.startswith((b"sp|", b"tr|")):
        found = _UNIPROT.match(header)  # the first word's match, unless a Ctrl-A ends that word first
        if found is not None and identifier in found.group(2, 3) and _CTRL_A not in header[: found.end()]:
            return EXACT  # the UniProt accession or entry name
    return parsed_name_match(identifier, header)


def parsed_name_match(identifier: bytes, header: bytes) -> int | None:
    """:func:`name_match` without declared keys, by parsing each of the header's first words."""
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
