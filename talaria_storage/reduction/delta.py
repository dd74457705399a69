"""The delta codec: a child sequence stored as its difference from a reference sequence.

``encode(reference, child)`` returns bytes from which ``decode(reference,
delta)`` gives back ``child`` exactly, for any two byte strings (empty ones,
different lengths, lower-case runs, any alphabet: protein, nucleotide, IUPAC,
``*``, ``X``, ``-``, or arbitrary bytes). The first byte of every delta is its
form (:class:`DeltaForm`):

``EDIT_SCRIPT`` (1)
    An edit script (:func:`edit_script`: from an edlib alignment of the
    child against the best-matching part of the reference) serialized compactly, then zstd-compressed
    when that is smaller. Layout after the tag: one flag byte (0 = payload
    raw, 1 = payload is a magic-less zstd frame at level
    :data:`ZSTD_LEVEL`), then the payload::

        varint(op count)
        per op: varint(gap << 2 | kind), varint(length)   # kind 0 S, 1 I, 2 D
        the residues of every S and I op, concatenated, in op order

    ``gap`` is the op's reference position minus where the previous op ended
    (0 at the start), so positions cost one byte or two; ``length`` is the
    residue count for S and I and the deleted count for D. Varints are
    unsigned LEB128.
``ZSTD_PREFIX`` (2)
    The child compressed by zstd at level :data:`ZSTD_LEVEL` with the
    reference as a raw-content dictionary (zstd's "prefix" mode: matches may
    point anywhere into the reference), as one magic-less frame that records
    the content size, so decode knows the exact length.

``encode(form=None)`` makes both and keeps the smaller; a tie goes to
``EDIT_SCRIPT``, which is the cheaper to decode. Above
:data:`EDIT_SCRIPT_MAX_LENGTH` residues (reference or child) the alignment
would cost seconds (edlib's time grows with length x edit distance: 1 Mi
residues at 1 % divergence took 1.1 s here, while zstd took 0.7 s at level
19), so ``form=None`` uses ``ZSTD_PREFIX`` alone there; asking for
``EDIT_SCRIPT`` explicitly still aligns.

Which form wins, measured (``benchmarks/bench_delta.py``, see
``benchmarks/README.md`` "Delta codec"), on the members ``select_references``
pairs at identity 0.9: on proteins the edit script is the smaller for 70-77 %
of members (a few substitutions cost a few bytes, where a zstd frame alone
costs 6 and every match it encodes a few bits more), and keeping both is
9-10 % smaller than the better form alone; on rRNA genes (WoL 16S/23S, ~93 %
identity, over 100 edits a member) ``ZSTD_PREFIX`` wins for nine members in
ten and both forms save under 1 %; ResFinder splits about evenly (8 %).
Keeping both costs one tag byte per delta and twice the encode time, and
bounds the worst case: one member came out 10x larger in one form than in
the other.

The delta carries nothing that depends on time or randomness: the same
inputs give the same bytes (for one version of libzstd; the frames decode
with any version).

:func:`format_edits` / :func:`parse_edits` are the one-line text form of an
edit script that Talaria's ``deltas.dat`` carries (see their docstrings).
Errors are :class:`DeltaError`, one line, naming the delta or text at fault.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import edlib
import zstandard

from talaria_storage.core.errors import StorageError

ZSTD_LEVEL = 19
"""The zstd level of both forms: deltas are written once and read often, and are small."""

EDIT_SCRIPT_MAX_LENGTH = 1 << 20
"""Above this many residues (reference or child) ``encode(form=None)`` skips the alignment."""

_ZSTD_PREFIX_MINIMUM = 6  # tag + the smallest magic-less frame (empty content): nothing shorter can lose to it
_KINDS = "SID"
_CIGAR_RUN = re.compile(rb"(\d+)([=XID])")
_TEXT_EDIT = re.compile(r"([SID])(0|[1-9][0-9]*):(.*)\Z", re.DOTALL)
_PLAIN = frozenset(range(0x21, 0x7F)) - frozenset(b",:%")
_HEX = "0123456789ABCDEF"


class DeltaError(StorageError, ValueError):
    """A delta, an edit script or its text form is malformed, or does not fit its reference.

    ``problem`` is the message without the place it names, for a caller that
    names the place its own way (a file and line).
    """

    def __init__(self, message: str, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem if problem is not None else message


def _at(where: str, problem: str) -> DeltaError:
    return DeltaError(f"{where}: {problem}", problem)


class DeltaForm(enum.IntEnum):
    """The first byte of every delta: how the rest is to be read."""

    EDIT_SCRIPT = 1
    ZSTD_PREFIX = 2


@dataclass(frozen=True, slots=True)
class Edit:
    """One operation of an edit script; ``position`` is a 0-based offset in the reference.

    ``S`` replaces ``len(residues)`` reference residues from ``position`` with
    ``residues``; ``I`` inserts ``residues`` before reference residue
    ``position`` (``position`` may be the reference's length: an append);
    ``D`` removes ``length`` reference residues from ``position``. For ``S``,
    ``length`` is ``len(residues)`` (given as 0 it is set so); for ``I`` it is 0.
    """

    op: Literal["S", "I", "D"]
    position: int
    residues: bytes = b""
    length: int = 0

    def __post_init__(self) -> None:
        if self.op not in ("S", "I", "D"):
            raise DeltaError(f"edit op must be 'S', 'I' or 'D', got {self.op!r}")
        if not isinstance(self.position, int) or self.position < 0:
            raise DeltaError(f"edit position must be an int >= 0, got {self.position!r}")
        if not isinstance(self.residues, bytes):
            raise DeltaError(f"edit residues must be bytes, got {type(self.residues).__name__}")
        if self.op == "D":
            if self.residues or not isinstance(self.length, int) or self.length <= 0:
                raise DeltaError(f"a D edit at {self.position} takes a length > 0 and no residues, "
                                 f"got length {self.length!r} and {len(self.residues)} residue(s)")
            return
        if not self.residues:
            raise DeltaError(f"an {self.op} edit at {self.position} needs at least one residue")
        wanted = len(self.residues) if self.op == "S" else 0
        if self.length not in (0, wanted):
            raise DeltaError(f"an {self.op} edit at {self.position} has length {wanted}, got {self.length!r}")
        object.__setattr__(self, "length", wanted)

    @property
    def consumed(self) -> int:
        """How many reference residues this edit covers (and the next edit must start after)."""
        return self.length


def edit_script(reference: bytes, child: bytes) -> tuple[Edit, ...]:
    """The edits that turn ``reference`` into ``child``, from an edlib alignment.

    The child is aligned as a whole against the part of the reference it
    matches best (edlib ``mode="HW"``: gaps at the reference's ends are
    free); the reference outside that part becomes one ``D`` at each end. A
    global (``NW``) alignment costs the same number of edits but may spread
    those deletions anywhere: a 2,279-base 16S gene inside a 2,957-base one
    came out as 158 deletions (168 bytes) instead of two. Inside the aligned
    part, runs of mismatches become one ``S``, runs of child-only residues
    one ``I``, runs of reference-only residues one ``D``, in reference order.
    """
    if not child:
        return (Edit("D", 0, length=len(reference)),) if reference else ()
    if not reference:
        return (Edit("I", 0, child),)
    if reference == child:
        return ()
    found = edlib.align(child, reference, mode="HW", task="path")
    start, end = found["locations"][0]  # the aligned part of the reference, inclusive
    cigar = found["cigar"].encode()
    edits: list[Edit] = [Edit("D", 0, length=start)] if start else []
    at = start  # in the reference
    taken = 0  # in the child
    for count_text, code in _CIGAR_RUN.findall(cigar):
        count = int(count_text)
        if code == b"=":
            at += count
            taken += count
        elif code == b"X":
            edits.append(Edit("S", at, child[taken:taken + count]))
            at += count
            taken += count
        elif code == b"I":  # in the query (the child) only
            edits.append(Edit("I", at, child[taken:taken + count]))
            taken += count
        else:  # D: in the target (the reference) only
            edits.append(Edit("D", at, length=count))
            at += count
    if at != end + 1 or taken != len(child):
        raise DeltaError(f"edlib's alignment covers reference {start}-{at} and {taken} of {len(child)} child "
                         f"residues, not {start}-{end + 1} and all: an edlib version this code does not know")
    if at < len(reference):
        edits.append(Edit("D", at, length=len(reference) - at))
    return tuple(edits)


def apply_edits(reference: bytes, edits: Sequence[Edit]) -> bytes:
    """``reference`` with ``edits`` applied; DeltaError on an edit out of order or past its end."""
    pieces: list[bytes] = []
    cursor = 0
    for number, edit in enumerate(edits, start=1):
        if edit.position < cursor:
            raise DeltaError(f"edit {number} ({edit.op} at {edit.position}) is out of order: "
                             f"the edit before it covers the reference up to {cursor}")
        end = edit.position + edit.consumed
        if end > len(reference):
            raise DeltaError(f"edit {number} ({edit.op} at {edit.position}, covering {edit.consumed}) "
                             f"runs past the end of the {len(reference)}-residue reference")
        pieces.append(reference[cursor:edit.position])
        pieces.append(edit.residues)
        cursor = end
    pieces.append(reference[cursor:])
    return b"".join(pieces)


def format_edits(edits: Sequence[Edit]) -> str:
    """The one-line text form of an edit script, for ``deltas.dat``.

    Edits are joined by ``,``; each is ``S<pos>:<residues>``, ``I<pos>:<residues>``
    or ``D<pos>:<length>``, with ``<pos>`` the 0-based reference position in
    decimal, e.g. ``S12:A,I40:GG,D77:3``. The empty script (child equal to
    reference) is ``=``. A residue byte outside printable ASCII (0x21-0x7E),
    and ``,``, ``:`` and ``%``, is written ``%XX`` (two upper-case hex
    digits), so the text has no TAB, space or newline and round-trips any
    bytes.
    """
    if not edits:
        return "="
    parts = []
    for edit in edits:
        value = str(edit.length) if edit.op == "D" else _escape(edit.residues)
        parts.append(f"{edit.op}{edit.position}:{value}")
    return ",".join(parts)


def _escape(residues: bytes) -> str:
    if all(byte in _PLAIN for byte in residues):
        return residues.decode("ascii")
    return "".join(chr(b) if b in _PLAIN else f"%{_HEX[b >> 4]}{_HEX[b & 15]}" for b in residues)


def parse_edits(text: str, where: str) -> tuple[Edit, ...]:
    """The edit script of :func:`format_edits` text; DeltaError naming ``where`` (e.g. a file and line)."""
    if text == "=":
        return ()
    if not text:
        raise _at(where, "empty edit script (write '=' for a child equal to its reference)")
    edits: list[Edit] = []
    cursor = 0
    for number, part in enumerate(text.split(","), start=1):
        shown = part if len(part) <= 40 else part[:37] + "..."
        found = _TEXT_EDIT.match(part)
        if found is None:
            raise _at(where, f"edit {number} '{shown}' is not S<pos>:<residues>, I<pos>:<residues> or D<pos>:<length>")
        op, position_text, value = found.groups()
        position = int(position_text)
        try:
            if op == "D":
                if not value.isdigit() or not value.isascii():
                    raise DeltaError(f"the length '{value[:20]}' is not a decimal number")
                edit = Edit("D", position, length=int(value))
            else:
                edit = Edit(op, position, _unescape(value))  # type: ignore[arg-type]  # op is S or I here
        except DeltaError as exc:
            raise _at(where, f"edit {number} '{shown}': {exc}") from None
        if position < cursor:
            raise _at(where, f"edit {number} '{shown}' is out of order: the edit before it covers "
                             f"the reference up to {cursor}")
        cursor = position + edit.consumed
        edits.append(edit)
    return tuple(edits)


def _unescape(value: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(value):
        char = value[i]
        if char == "%":
            digits = value[i + 1:i + 3]
            if len(digits) != 2 or any(d not in _HEX for d in digits):
                raise DeltaError(f"'%' at residue {i} must be followed by two upper-case hex digits, got '{digits}'")
            out.append(int(digits, 16))
            i += 3
            continue
        code = ord(char)
        if code not in _PLAIN:
            raise DeltaError(f"residue {i} is {char!r}, which must be written %{code:02X}" if code < 256
                             else f"residue {i} is {char!r}, which is not a byte")
        out.append(code)
        i += 1
    return bytes(out)


# --- binary forms -----------------------------------------------------------------------------


def encode(reference: bytes, child: bytes, form: DeltaForm | None = None) -> bytes:
    """A delta from which :func:`decode` with the same ``reference`` gives back ``child`` exactly.

    ``form=None`` makes both forms and keeps the smaller (a tie goes to
    ``EDIT_SCRIPT``); above :data:`EDIT_SCRIPT_MAX_LENGTH` it makes
    ``ZSTD_PREFIX`` alone.
    """
    reference, child = bytes(reference), bytes(child)
    if form is DeltaForm.EDIT_SCRIPT:
        return _encode_edit_script(reference, child)
    if form is DeltaForm.ZSTD_PREFIX:
        return _encode_zstd_prefix(reference, child)
    if form is not None:
        raise DeltaError(f"unknown delta form {form!r}: use DeltaForm.EDIT_SCRIPT, DeltaForm.ZSTD_PREFIX or None")
    if max(len(reference), len(child)) > EDIT_SCRIPT_MAX_LENGTH:
        return _encode_zstd_prefix(reference, child)
    script = _encode_edit_script(reference, child)
    if len(script) <= _ZSTD_PREFIX_MINIMUM:
        return script
    prefixed = _encode_zstd_prefix(reference, child)
    return prefixed if len(prefixed) < len(script) else script


def decode(reference: bytes, delta: bytes, *, where: str = "delta") -> bytes:
    """The child that ``delta`` encodes against ``reference``; DeltaError naming ``where`` if malformed."""
    delta = bytes(delta)
    if not delta:
        raise DeltaError(f"{where}: empty (a delta starts with its form byte, 1 or 2)")
    tag = delta[0]
    if tag == DeltaForm.EDIT_SCRIPT:
        return _decode_edit_script(reference, delta, where)
    if tag == DeltaForm.ZSTD_PREFIX:
        return _decode_zstd_prefix(reference, delta, where)
    raise DeltaError(f"{where}: unknown form byte {tag} (known: 1 edit script, 2 zstd prefix); "
                     "it was written by a newer version or is corrupt")


def _compressor(source_size: int, dict_size: int, dictionary: zstandard.ZstdCompressionDict | None) -> zstandard.ZstdCompressor:
    # Parameters are derived from the sizes as ZstdCompressor(level=...) would, but magic-less
    # (4 bytes fewer per delta) and without checksum or dictionary id: the caller hashes the result.
    params = zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL, source_size=source_size, dict_size=dict_size, format=zstandard.FORMAT_ZSTD1_MAGICLESS,
        write_content_size=True, write_checksum=False, write_dict_id=False,
    )
    return zstandard.ZstdCompressor(compression_params=params, dict_data=dictionary)


def _frame_content_size(frame: bytes, limit: int, where: str) -> None:
    """Refuse a frame that does not record its size, or claims more than ``limit`` bytes (a corrupt header)."""
    try:
        size = zstandard.get_frame_parameters(frame, format=zstandard.FORMAT_ZSTD1_MAGICLESS).content_size
    except zstandard.ZstdError as exc:
        raise DeltaError(f"{where}: the zstd frame header does not parse ({exc})") from None
    if size == zstandard.CONTENTSIZE_UNKNOWN or size == zstandard.CONTENTSIZE_ERROR or size > limit:
        raise DeltaError(f"{where}: the zstd frame claims an impossible content size ({size}); the delta is corrupt")


def _raw_dictionary(reference: bytes) -> zstandard.ZstdCompressionDict | None:
    if not reference:
        return None
    return zstandard.ZstdCompressionDict(reference, dict_type=zstandard.DICT_TYPE_RAWCONTENT)


def _encode_zstd_prefix(reference: bytes, child: bytes) -> bytes:
    frame = _compressor(len(child), len(reference), _raw_dictionary(reference)).compress(child)
    return bytes([DeltaForm.ZSTD_PREFIX]) + frame


def _decode_zstd_prefix(reference: bytes, delta: bytes, where: str) -> bytes:
    frame = delta[1:]
    # zstd cannot expand more than ~1:32k (a 3-byte block header per 128 KiB block at best), and the
    # reference can add its own length: anything beyond is a corrupt header, not a big child.
    _frame_content_size(frame, 32768 * len(frame) + len(reference) + 4096, where)
    try:
        decompressor = zstandard.ZstdDecompressor(dict_data=_raw_dictionary(reference), format=zstandard.FORMAT_ZSTD1_MAGICLESS)
        return decompressor.decompress(frame)
    except zstandard.ZstdError as exc:
        raise DeltaError(f"{where}: the zstd-prefix frame does not decode against this {len(reference)}-residue "
                         f"reference ({exc})") from None


def _encode_edit_script(reference: bytes, child: bytes) -> bytes:
    payload = _serialize(edit_script(reference, child))
    packed = _compressor(len(payload), 0, None).compress(payload)
    if len(packed) < len(payload):
        return bytes([DeltaForm.EDIT_SCRIPT, 1]) + packed
    return bytes([DeltaForm.EDIT_SCRIPT, 0]) + payload


def _decode_edit_script(reference: bytes, delta: bytes, where: str) -> bytes:
    if len(delta) < 3:
        raise DeltaError(f"{where}: an edit-script delta is at least 3 bytes, got {len(delta)}")
    flag, body = delta[1], delta[2:]
    if flag == 1:
        _frame_content_size(body, 32768 * len(body) + 4096, where)
        try:
            body = zstandard.ZstdDecompressor(format=zstandard.FORMAT_ZSTD1_MAGICLESS).decompress(body)
        except zstandard.ZstdError as exc:
            raise DeltaError(f"{where}: the compressed edit script does not decode ({exc})") from None
    elif flag != 0:
        raise DeltaError(f"{where}: byte 1 (payload flag) is {flag}, not 0 (raw) or 1 (zstd)")
    edits = _deserialize(body, where)
    try:
        return apply_edits(reference, edits)
    except DeltaError as exc:
        raise DeltaError(f"{where}: does not fit this {len(reference)}-residue reference: {exc}") from None


def _serialize(edits: Sequence[Edit]) -> bytes:
    header = bytearray()
    residues: list[bytes] = []
    _put_varint(header, len(edits))
    cursor = 0
    for edit in edits:
        _put_varint(header, (edit.position - cursor) << 2 | _KINDS.index(edit.op))
        _put_varint(header, len(edit.residues) if edit.op != "D" else edit.length)
        residues.append(edit.residues)
        cursor = edit.position + edit.consumed
    return bytes(header) + b"".join(residues)


def _deserialize(body: bytes, where: str) -> list[Edit]:
    at = 0

    def varint() -> int:
        nonlocal at
        value = shift = 0
        while True:
            if at >= len(body):
                raise DeltaError(f"{where}: the edit script ends inside a number (payload byte {at})")
            byte = body[at]
            at += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise DeltaError(f"{where}: a number of the edit script is longer than 9 bytes (payload byte {at})")

    count = varint()
    if count > len(body):  # every op takes at least 2 header bytes
        raise DeltaError(f"{where}: the edit script claims {count} ops in {len(body)} bytes")
    shapes: list[tuple[int, int, int]] = []
    cursor = 0
    for _ in range(count):
        word, length = varint(), varint()
        kind, position = word & 3, cursor + (word >> 2)
        if kind == 3 or (length == 0):
            raise DeltaError(f"{where}: op {len(shapes) + 1} of the edit script is malformed "
                             f"(kind {kind}, length {length}; payload byte {at})")
        shapes.append((kind, position, length))
        cursor = position + (0 if kind == 1 else length)
    edits: list[Edit] = []
    for kind, position, length in shapes:
        if kind == 2:
            edits.append(Edit("D", position, length=length))
            continue
        if at + length > len(body):
            raise DeltaError(f"{where}: the edit script's residues end early (need {length} at payload byte {at}, "
                             f"have {len(body) - at})")
        edits.append(Edit(_KINDS[kind], position, body[at:at + length]))  # type: ignore[arg-type]  # S or I
        at += length
    if at != len(body):
        raise DeltaError(f"{where}: {len(body) - at} byte(s) after the edit script's last residue")
    return edits


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
