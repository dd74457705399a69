"""Canonical sequences and the digests that name them.

Canonical sequence
    The residues upper-cased (ASCII) with every whitespace byte (space, tab,
    CR, LF, VT, FF) removed. Soft-masking (lower case), line wrapping and
    stray spaces therefore do not change a sequence's identity. Nothing else
    is touched: ``*`` (stop), ``-`` (gap) and IUPAC codes stay as they are.
Identity
    SHA-256 of the canonical bytes, as a :class:`SHA256Hash`
    (``DESIGN.md`` section 4). Identical sequences are stored once whatever
    their headers.
GA4GH refget identifiers (refget v2 / VRS)
    ``SQ.`` + ``sha512t24u``: the first 24 bytes of SHA-512 of the canonical
    sequence, encoded as base64url without padding (32 characters); written
    ``ga4gh:SQ.<digest>`` as a CURIE. And the MD5 of the canonical sequence,
    32 lower-case hex characters, written ``md5:<hex>`` by some services.
    Published vector (GA4GH VRS / refget documentation):
    ``ACGT`` -> ``SQ.aKF498dAxcJAqme6QYQ7EZ07-fiw8Kw2``, MD5
    ``f1f8f4bf413b16ad135722aa4591043e``.

Lookup identifiers accepted by :func:`parse_sequence_id`: 64 hex characters
(SHA-256), ``SQ.<32 base64url>`` or ``ga4gh:SQ.<...>`` (refget), and
``md5:<32 hex>`` or bare 32 hex characters (MD5). Anything else is an
:class:`InvalidSequenceId` (a ``ValueError``): user text never reaches an
index or a key unvalidated.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from talaria_storage.core.errors import InvalidSequenceId
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.formats.fasta import RESIDUE_SPACES

# Whitespace canonical form drops: RESIDUE_SPACES (inside parsed residues, which hold no
# newlines) and the newline.
_WHITESPACE = RESIDUE_SPACES + b"\n"
_EACH_RESIDUE_SPACE = tuple(bytes([c]) for c in RESIDUE_SPACES)
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")
_SHA512T24U = re.compile(r"[A-Za-z0-9_-]{32}")

IdKind = Literal["sha256", "refget", "md5"]


def canonical(residues: bytes) -> bytes:
    """Upper-case ``residues`` and drop whitespace (see the module docstring)."""
    return residues.translate(None, _WHITESPACE).upper()


def is_canonical(text: bytes) -> bool:
    """True when ``text`` has no lower-case letter and no whitespace but newlines
    (parsed residues, or several joined by newlines, need no :func:`canonical`).

    Written with ``bytes`` methods (each a C scan) rather than one regular
    expression: on UniProt's 40 MB of residues the regex cost 0.2 s of an
    import's main process, these a few milliseconds.
    """
    if not text.isupper() and text.upper() != text:  # isupper() is False without letters too
        return False
    return not any(space in text for space in _EACH_RESIDUE_SPACE)


def sequence_hash(residues: bytes) -> SHA256Hash:
    """The identity of a sequence: SHA-256 of its canonical form."""
    return SHA256Hash(hashlib.sha256(canonical(residues)).digest())


def sequence_keys(residues: bytes, qualities: bytes | None = None) -> tuple[bytes, bytes]:
    """(canonical sequence SHA-256, dedup key) of a record.

    The dedup key names what a pack slot stores: for FASTA the canonical
    residues (upper case, no whitespace; the record chunk keeps how each
    occurrence was written, see ``residue_edit`` in
    :mod:`~talaria_storage.sequences.record_chunk`), so ``ACGT`` and
    ``acgt`` are one slot; it is then the first 16 bytes of the canonical
    hash. FASTQ slots hold residues and qualities as written (qualities
    pair with the written letters), keyed by SHA-256 of the residues, a
    newline and the qualities. 128 bits make an accidental collision among
    even 10^12 keys about 10^-15 likely.
    """
    # Parsed residues hold no line breaks; without lower case or whitespace they are canonical.
    text = residues if is_canonical(residues) else canonical(residues)
    digest = hashlib.sha256(text).digest()
    if qualities is not None:
        return digest, hashlib.sha256(residues + b"\n" + qualities).digest()[:16]
    return digest, digest[:16]


def sha512t24u(data: bytes) -> str:
    """GA4GH ``sha512t24u``: base64url (no padding) of the first 24 bytes of SHA-512."""
    return base64.urlsafe_b64encode(hashlib.sha512(data).digest()[:24]).decode("ascii")


def refget_id(residues: bytes) -> str:
    """The refget / VRS sequence identifier ``SQ.<sha512t24u>`` of the canonical sequence."""
    return "SQ." + sha512t24u(canonical(residues))


def md5_hex(residues: bytes) -> str:
    """MD5 of the canonical sequence, lower-case hex (refget's second digest)."""
    return hashlib.md5(canonical(residues), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class SequenceDigests:
    """Every name of one canonical sequence, computed from a single canonicalisation."""

    sha256: SHA256Hash
    refget: str  # "SQ.<sha512t24u>"
    md5: str  # 32 lower-case hex
    length: int  # canonical residues


def digests(residues: bytes) -> SequenceDigests:
    """SHA-256 identity, refget ``SQ.`` and MD5 of ``residues``, canonicalised once."""
    seq = canonical(residues)
    return SequenceDigests(
        sha256=SHA256Hash(hashlib.sha256(seq).digest()),
        refget="SQ." + sha512t24u(seq),
        md5=hashlib.md5(seq, usedforsecurity=False).hexdigest(),
        length=len(seq),
    )


@dataclass(frozen=True, slots=True)
class SequenceId:
    """A validated lookup identifier: which digest it is and its normal form.

    ``value`` is lower-case hex for ``sha256`` and ``md5``, and ``SQ.<32
    characters>`` for ``refget`` (case kept: base64url is case-sensitive).
    """

    kind: IdKind
    value: str

    def matches(self, found: SequenceDigests) -> bool:
        """True when ``found`` carries this identifier."""
        if self.kind == "sha256":
            return found.sha256.to_hex() == self.value
        if self.kind == "md5":
            return found.md5 == self.value
        return found.refget == self.value


def parse_sequence_id(text: str) -> SequenceId:
    """Validate a user's sequence identifier and say which digest it is."""
    if not isinstance(text, str):
        raise InvalidSequenceId(f"a sequence identifier is text, got {type(text).__name__}")
    found = sequence_id_in(text)
    if found is None:
        raise InvalidSequenceId(
            f"'{text[:80]}' is not a sequence identifier: expected 64 hex characters (SHA-256), "
            "'SQ.' or 'ga4gh:SQ.' followed by 32 base64url characters (refget), "
            "or 'md5:' / 32 hex characters (MD5)"
        )
    return found


_DIGEST_STARTS = "SgGmM"  # of SQ., ga4gh: and md5: in any case ("" is in it too: checked in full)


def sequence_id_in(text: str) -> SequenceId | None:
    """The digest ``text`` is (see :func:`parse_sequence_id`), or None: for a look-up, where
    most identifiers are names, and raising and catching the error cost each ~3 µs."""
    item = text.strip()
    if len(item) not in (32, 64) and item[:1] not in _DIGEST_STARTS:
        return None  # a name: no digest has its length or first letter (spares it three expressions)
    if _SHA256_HEX.fullmatch(item):
        return SequenceId("sha256", item.lower())
    lowered = item.lower()
    if lowered.startswith("ga4gh:"):
        item = item[len("ga4gh:") :]
    if item.startswith("SQ.") and _SHA512T24U.fullmatch(item[3:]):
        return SequenceId("refget", item)
    if lowered.startswith("md5:"):
        item = item[len("md5:") :]
    if _MD5_HEX.fullmatch(item):
        return SequenceId("md5", item.lower())
    return None
