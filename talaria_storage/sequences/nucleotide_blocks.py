"""Nucleotide residue blocks packed as 4-bit or 2-bit codes, and read back a range at a time.

Nucleotide blocks: a residue block whose letters are all IUPAC nucleotide
codes (``ACGTRYSWKMBDHVN-`` in either case) may be stored as 4-bit codes,
two per byte, or -- when at most 1/16 of it is not ``ACGT`` -- as 2-bit
codes, four per byte, with the other letters kept as exception runs. Lower
case is kept as a run-length mask in front of the packed bytes. The raw
text is compressed first; under 2 bits a base (a redundant gene set) 4-bit
codes are tried, over it (a genome) 2-bit codes, and the smaller of raw and
packed is kept, per block. Measured: 2-bit wins on single genomes (E. coli,
P. falciparum), 4-bit or raw text on redundant gene sets (a repeat at an
odd offset no longer lines up once packed, which costs most at high levels). Payload layouts: 4-bit = case mask,
packed codes; 2-bit = case mask, exception runs, varint length and letters
of the exceptions, packed codes (exceptions packed as ``A``); a run list is
a varint count then varints of alternating outside/inside run lengths.
"""

from __future__ import annotations

import binascii
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate

from talaria_storage.core.errors import CompressionError
from talaria_storage.sequences.varints import read_varint, varints

# 4-bit nucleotide codes: ACGT first, so an ACGT letter has the same code in 2 and 4 bits.
NUC16 = b"ACGTRYSWKMBDHVN-"
_TO_NUC = bytes.maketrans(NUC16, bytes(range(16)))
_ACGT = b"ACGT"
_TO_NUC2 = bytes.maketrans(NUC16, bytes([0, 1, 2, 3] + [0] * 12))
_LOWER_NUC16 = NUC16.lower()
_LOWER_FLAGS = bytes(1 if 0x61 <= b <= 0x7A else 0 for b in range(256))
_NOT_ACGT_FLAGS = bytes(0 if b in _ACGT else 1 for b in range(256))
# Decoding (see _unpack_letters): a hex digit of a packed byte is one 4-bit code, or two 2-bit ones.
_HEX = b"0123456789abcdef"
_HEX_TO_NUC16 = bytes.maketrans(_HEX, NUC16)
_HEX_TO_CODE_PAIR = bytes.maketrans(_HEX, bytes((v >> 2) << 4 | (v & 3) for v in range(16)))
_HEX_TO_ACGT = bytes.maketrans(_HEX[:4], _ACGT)


def _pack(codes: bytes, bits: int) -> bytes:
    """Pack byte values below 2**bits, most significant first, padding the tail with 0.

    Uses big-integer arithmetic on whole byte strings: the k-th code of every
    group is an interleaved slice, and shifting and adding the slices as
    integers puts each group in one byte with no carries, all at C speed.
    """
    per = 8 // bits
    codes += bytes(-len(codes) % per)
    value = 0
    for k in range(per):
        value = (value << bits) + int.from_bytes(codes[k::per], "big")
    return value.to_bytes(len(codes) // per, "big")


def _unpack_letters(packed: bytes, bits: int) -> bytes:
    """The letters of packed 4-bit or 2-bit codes (the inverse of :func:`_pack` and the code tables).

    ``hexlify`` splits every byte into its two nibbles, most significant
    first, in C: for 4-bit codes a translate of the hex digits gives the
    letters; for 2-bit codes each digit is first turned into the byte whose
    hex digits are its two 2-bit halves, and hexlified again. Three to five
    linear C passes: ~4x faster than unpacking through big integers and
    translating codes to letters (1 MiB of 2-bit codes: 2 ms against 7.6 ms).
    The tail padding becomes letters too; the caller trims it.
    """
    if bits == 4:
        return binascii.hexlify(packed).translate(_HEX_TO_NUC16)
    return binascii.hexlify(binascii.hexlify(packed).translate(_HEX_TO_CODE_PAIR)).translate(_HEX_TO_ACGT)


def _runs(text: bytes, flags: bytes) -> list[int]:
    """Alternating run lengths (outside first) of the stretches of ``text`` whose bytes are flagged.

    ``flags`` is a translate table mapping each byte to 1 (in a stretch) or
    0. Splitting the flagged text at the 1s runs at C speed; the Python
    loop is per flagged byte, so it is cheap exactly when stretches are
    rare (runs of N, soft-masked repeats).
    """
    segments = text.translate(flags).split(b"\x01")
    runs: list[int] = []
    gap = len(segments[0])
    k = 1
    last = len(segments) - 1
    while k <= last:
        length = 1
        while k < last and not segments[k]:
            length += 1
            k += 1
        runs.append(gap)
        runs.append(length)
        gap = len(segments[k])
        k += 1
    return runs


def _read_runs(payload: bytes, at: int) -> tuple[list[int], int]:
    count, at = read_varint(payload, at)
    runs = []
    for _ in range(count):
        value, at = read_varint(payload, at)
        runs.append(value)
    return runs, at


def nucleotide_payload(block: bytes, upper: bytes, bits: int) -> bytes | None:
    """The 4-bit or 2-bit payload of a nucleotide block (``upper``: the block upper-cased).

    4-bit: case mask, packed codes. 2-bit: case mask, exception runs
    (stretches that are not ACGT, such as runs of N) with their letters,
    packed codes (exceptions packed as A); None when more than 1/16 of the
    block would be exceptions.
    """
    # The run scans are the slow part; all-upper and all-lower blocks skip them.
    if upper == block:
        runs: list[int] = []
    elif block.islower() and not block.translate(None, _LOWER_NUC16):
        runs = [0, len(block)]
    else:
        runs = _runs(block, _LOWER_FLAGS)
    mask = varints([len(runs)]) + varints(runs)
    if bits == 4:
        return mask + _pack(upper.translate(_TO_NUC), 4)
    odd_count = len(upper.translate(None, _ACGT))
    if odd_count > len(block) // 16:
        return None
    odd = _runs(upper, _NOT_ACGT_FLAGS) if odd_count else []
    odd_letters = b"".join(upper[a : a + n] for a, n in _run_spans(odd))
    exceptions = varints([len(odd)]) + varints(odd) + varints([len(odd_letters)]) + odd_letters
    return mask + exceptions + _pack(upper.translate(_TO_NUC2), 2)


def _run_spans(runs: Sequence[int]) -> Iterator[tuple[int, int]]:
    """(start, length) of the matched stretches described by alternating run lengths."""
    at = 0
    for k in range(0, len(runs), 2):
        at += runs[k]
        yield at, runs[k + 1]
        at += runs[k + 1]


def _span_table(runs: Sequence[int], count: int, what: str) -> tuple[list[int], list[int]]:
    """(starts, ends) of the stretches of alternating run lengths, checked to lie inside ``count``."""
    if len(runs) % 2:
        raise CompressionError(f"nucleotide block {what} has an odd number of run lengths")
    starts: list[int] = []
    ends: list[int] = []
    at = 0
    for start, length in _run_spans(runs):
        starts.append(start)
        ends.append(start + length)
        at = start + length
    if at > count:
        raise CompressionError(f"nucleotide block {what} reach past its {count} letters")
    return starts, ends


class NucleotideBlock:
    """A 4-bit or 2-bit nucleotide block held packed; letters are made only for the range asked for.

    The zstd frame is decompressed (and its checksum verified) once, whole;
    what is kept is the packed payload -- a half or a quarter of the
    letters -- and the case and exception stretches. A look-up then unpacks
    only its own record's codes: on rRNA sets (WoL 16S/23S, one 0.2-1 MiB
    block per pack, all packed) unpacking whole blocks was most of a
    look-up's time.
    """

    __slots__ = ("_bits", "_case", "_codes_at", "_letters", "_odd", "_odd_at", "_payload", "_per", "count")

    def __init__(self, payload: bytes, bits: int, count: int) -> None:
        case_runs, at = _read_runs(payload, 0)
        self._case = _span_table(case_runs, count, "case runs")
        if bits == 4:
            self._bits = 4
            self._odd: tuple[list[int], list[int]] = ([], [])
            self._odd_at: list[int] = []
            self._letters = b""
        else:
            self._bits = 2
            odd_runs, at = _read_runs(payload, at)
            size, at = read_varint(payload, at)
            self._letters = payload[at : at + size]
            self._odd = _span_table(odd_runs, count, "exception runs")
            self._odd_at = list(accumulate((e - s for s, e in zip(*self._odd)), initial=0))
            if len(self._letters) != size or self._odd_at[-1] != size:
                raise CompressionError(
                    f"nucleotide block has {len(self._letters)} exception letters for runs of {self._odd_at[-1]}"
                )
            at += size
        self._per = 8 // self._bits
        self._payload = payload  # the codes are its tail, from _codes_at: not copied
        self._codes_at = at
        if len(payload) - at != -(-count // self._per):
            raise CompressionError(
                f"nucleotide block packs {len(payload) - at} bytes of codes for {count} letters"
            )
        self.count = count

    @property
    def nbytes(self) -> int:
        """Bytes held (for a cache's budget)."""
        return len(self._payload) + len(self._letters) + 24 * (len(self._case[0]) + len(self._odd[0]))

    def slice(self, start: int, end: int) -> bytes:
        """Letters ``[start, end)`` (0 <= start <= end <= count), case and exceptions restored."""
        per = self._per
        first = start // per
        at = self._codes_at
        letters = _unpack_letters(self._payload[at + first : at - (-end // per)], self._bits)
        skip = start - first * per
        if skip or len(letters) != end - start:
            letters = letters[skip : skip + end - start]
        odd_starts, odd_ends = self._odd
        case_starts, case_ends = self._case
        odd = bisect_right(odd_ends, start)
        case = bisect_right(case_ends, start)
        if (odd == len(odd_starts) or odd_starts[odd] >= end) and (
            case == len(case_starts) or case_starts[case] >= end
        ):
            return letters  # no exception or lower-case stretch in the range: the common case
        out = bytearray(letters)
        while odd < len(odd_starts) and odd_starts[odd] < end:
            a, b = max(odd_starts[odd], start), min(odd_ends[odd], end)
            at = self._odd_at[odd] + a - odd_starts[odd]
            out[a - start : b - start] = self._letters[at : at + b - a]
            odd += 1
        while case < len(case_starts) and case_starts[case] < end:
            a, b = max(case_starts[case], start) - start, min(case_ends[case], end) - start
            out[a:b] = out[a:b].lower()
            case += 1
        return bytes(out)
