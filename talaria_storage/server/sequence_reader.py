"""Reading one served sequence: its length, its residues in pieces, its digests, aliases and topology.

A FASTA record's residues are read straight from its sequence pack slot,
which holds them canonical (upper case, no whitespace): a range decodes only
the pack blocks it lies in, and a whole sequence is sent in
``PIECE``-residue pieces, each decoded when the client is ready for it, so a
chromosome is never held whole (see
:meth:`~talaria_storage.sequences.database.SequenceDatabase.canonical_slot`).
A FASTQ record's slot holds its residues as written, so it is read whole and
canonicalised (reads are short).

The digests a metadata response lists (MD5, ``SQ.``, the store's SHA-256)
are computed from the residues once per sequence and kept
(``DIGEST_CACHE`` sequences): only the one the client asked by is known
without reading them.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from talaria_storage.formats.genbank import MARK
from talaria_storage.sequences.canonical import canonical
from talaria_storage.sequences.identifiers import accession_from_header
from talaria_storage.sequences.sequence_pack import PackReader
from talaria_storage.server.catalog import SequenceHit, lookup_key
from talaria_storage.server.settings import ServerSettings

PIECE = 1 << 20  # residues decoded and sent at a time
DIGEST_CACHE = 4096
MAX_ALIASES = 100  # records a metadata response names (a sequence may be carried by thousands)

# A FASTA header's own word for a circular molecule (Unicycler / Flye write ``circular=true``).
_CIRCULAR_WORD = re.compile(rb"(?:^|\s|\[)(?:circular=(?:true|yes|1)|topology=circular)(?:$|\s|\])", re.IGNORECASE)
# Naming authorities (refget appendix 1) recognised from an accession's shape.
_REFSEQ = re.compile(r"(?:[ANXYW][CGTWZMRP]|NG|NT|NW|NZ)_[0-9]+(?:\.[0-9]+)?")
_INSDC = re.compile(r"[A-Z]{1,2}[0-9]{5,6}(?:\.[0-9]+)?|[A-Z]{4,6}[0-9]{8,10}(?:\.[0-9]+)?")
_UNIPROT = re.compile(r"[OPQ][0-9][A-Z0-9]{3}[0-9](?:-[0-9]+)?|[A-NR-Z][0-9](?:[A-Z][A-Z0-9]{2}[0-9]){1,2}(?:-[0-9]+)?")


@dataclass(frozen=True, slots=True)
class Digests:
    """Every digest name of a sequence (refget's ``md5`` and ``ga4gh``, v1's ``trunc512``, the store's)."""

    md5: str
    ga4gh: str  # "SQ.<sha512t24u>"
    trunc512: str  # 48 hex characters: the same 24 bytes of SHA-512
    sha256: str
    length: int


def trunc512_to_refget(hex48: str) -> str:
    """A v1 ``TRUNC512`` digest (48 hex) as the ``SQ.`` identifier of the same 24 bytes."""
    return "SQ." + base64.urlsafe_b64encode(bytes.fromhex(hex48)).decode("ascii")


class SequenceReader:
    """Reads the sequences a :class:`SequenceHit` finds; shared by every request of a server."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._digests: OrderedDict[tuple[bytes, int, int], Digests] = OrderedDict()
        self._lock = threading.Lock()

    def length(self, hit: SequenceHit) -> int:
        """Canonical residues of the sequence."""
        slot = self._slot(hit)
        if slot is None:
            return len(self._whole(hit))
        pack, index = slot
        return pack.lengths()[index]

    def pieces(self, hit: SequenceHit, spans: list[tuple[int, int]]) -> Iterator[bytes]:
        """The residues of each ``[start, end)`` span, in order, at most ``PIECE`` at a time."""
        for start, end in spans:
            for at in range(start, end, PIECE):
                stop = min(end, at + PIECE)
                slot = self._slot(hit)  # looked up per piece: readers may leave the cache between pieces
                if slot is None:
                    yield self._whole(hit)[at:stop]
                else:
                    pack, index = slot
                    yield pack.residues(index, at, stop)

    def digests(self, hit: SequenceHit) -> Digests:
        """The sequence's digests, computed once from its residues in pieces."""
        ci, ri = hit.positions[0]
        key = (hit.version.manifest.digest, ci, ri)
        with self._lock:
            found = self._digests.get(key)
            if found is not None:
                self._digests.move_to_end(key)
                return found
        md5, sha512, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha512(), hashlib.sha256()
        length = 0
        for piece in self.pieces(hit, [(0, self.length(hit))]):
            md5.update(piece)
            sha512.update(piece)
            sha256.update(piece)
            length += len(piece)
        top = sha512.digest()[:24]
        found = Digests(md5.hexdigest(), "SQ." + base64.urlsafe_b64encode(top).decode("ascii"), top.hex(),
                        sha256.hexdigest(), length)
        with self._lock:
            self._digests[key] = found
            while len(self._digests) > DIGEST_CACHE:
                self._digests.popitem(last=False)
        return found

    def aliases(self, hit: SequenceHit) -> list[dict[str, str]]:
        """The accessions of the records carrying the sequence (the first ``MAX_ALIASES``), each with
        the naming authority its shape suggests, else the database it is served from."""
        version = hit.version
        seen: dict[str, None] = {}
        for ci, ri in hit.positions[:MAX_ALIASES]:
            header = version.db.record_header(version.snapshot.manifest, ci, ri)
            accession = accession_from_header(header.partition(MARK)[0])
            if accession:
                seen.setdefault(accession)
        return [{"alias": a, "naming_authority": _authority(a, version.database)} for a in seen]

    def is_circular(self, hit: SequenceHit) -> bool:
        """True for a circular molecule: said so by its GenBank LOCUS / EMBL ID line, by its FASTA
        header (``circular=true``, ``topology=circular``), or by the server's ``circular`` list."""
        version = hit.version
        settings = self.settings
        for ci, ri in hit.positions[:MAX_ALIASES]:
            header = version.db.record_header(version.snapshot.manifest, ci, ri)
            fasta, mark, envelope = header.partition(MARK)
            if mark and b"circular" in envelope.split(b"\n", 1)[0].lower():
                return True
            if _CIRCULAR_WORD.search(fasta):
                return True
            if settings.circular_names:
                words = fasta.split(maxsplit=1)
                names = {accession_from_header(fasta), words[0].decode("utf-8", "replace") if words else ""}
                if names & settings.circular_names:
                    return True
        if not settings.circular_ids:
            return False
        if hit.sid in settings.circular_ids:
            return True
        found = self.digests(hit)
        return any(
            sid.value == {"md5": found.md5, "sha256": found.sha256, "refget": found.ga4gh}[sid.kind]
            for sid in settings.circular_ids
        )

    # -- where the residues are

    def _slot(self, hit: SequenceHit) -> tuple[PackReader, int] | None:
        ci, ri = hit.positions[0]
        version = hit.version
        return version.db.canonical_slot(version.snapshot.manifest, ci, ri)

    def _whole(self, hit: SequenceHit) -> bytes:
        """The canonical residues of a record whose slot holds them as written (FASTQ)."""
        return canonical(hit.version.snapshot.get_all(lookup_key(hit.sid))[0].residues)


def _authority(accession: str, database: str) -> str:
    if _REFSEQ.fullmatch(accession):
        return "refseq"
    if _INSDC.fullmatch(accession):
        return "insdc"
    if _UNIPROT.fullmatch(accession):
        return "uniprot"
    return database
