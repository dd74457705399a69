"""Which residues a refget sequence request asks for: ``?start=&end=`` or a ``Range`` header.

The rules (refget sequences v2.0.0, "Method: Get sequence by ID", and the
v1 compliance suite where v2 is silent or looser):

``start`` / ``end``
    32-bit unsigned decimal integers, 0-based, half-open. A value that is
    not one is 400. ``start >= length`` or ``end > length`` is 416 (v2 says
    400 for a start past the end; the compliance suite, EBI's server and
    the open refget PR #113 say 416, which this follows). ``start > end``
    wraps round the origin on a circular sequence and is 416 on any other
    ("if the server supports circular chromosomes and the chromosome is not
    circular ... Range Not Satisfiable"). ``start == end`` is an empty 200.
``Range: bytes=a-b``
    RFC 7233 byte ranges, inclusive, exactly one per request (the spec
    permits only one; several is 400). ``bytes=a-`` and the suffix form
    ``bytes=-n`` are accepted as RFC 7233 defines them. Another unit or a
    malformed spec is 400. ``a > b`` is 416 (refget: "Sub-sequences of
    circular chromosomes across the origin may not be requested via the
    Range header"), as is ``a >= length``; ``b`` past the end is clipped.
Both at once
    400: "The server MUST respond with a Bad Request error if both a Range
    header and start or end query parameters are specified."

Errors are :class:`RequestError` with the status and a one-line message
naming the parameter; nothing here reads the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

U32_MAX = (1 << 32) - 1
_DIGITS = re.compile(r"[0-9]{1,10}")
_BYTE_RANGE = re.compile(r"([0-9]{0,20})-([0-9]{0,20})")


class RequestError(Exception):
    """A request the server answers with a 4xx or 501: ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class QueryBounds:
    """``start`` / ``end`` as given (None when absent), before the sequence's length is known."""

    start: int | None
    end: int | None


@dataclass(frozen=True, slots=True)
class ByteRange:
    """One ``Range: bytes=`` spec: ``first``-``last`` inclusive, or the last ``suffix`` bytes."""

    first: int | None
    last: int | None
    suffix: int | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """The residues to send: ``[start, end)``, or with ``wraps`` ``[start, length) + [0, end)``."""

    start: int
    end: int
    wraps: bool = False
    partial: bool = False  # answered 206 with Content-Range (a Range header)

    def size(self, length: int) -> int:
        return (length - self.start) + self.end if self.wraps else self.end - self.start

    def pieces(self, length: int) -> list[tuple[int, int]]:
        """The ``[start, end)`` spans of the sequence to send, in order."""
        if self.wraps:
            return [(self.start, length), (0, self.end)]
        return [(self.start, self.end)]


def parse_query_bounds(values: Mapping[str, Sequence[str]]) -> QueryBounds:
    """``start`` and ``end`` from the query (each its list of values); 400 on anything malformed."""
    found: dict[str, int | None] = {"start": None, "end": None}
    for name in ("start", "end"):
        given = values.get(name, ())
        if not given:
            continue
        if len(given) > 1:
            raise RequestError(400, f"query parameter '{name}' is given {len(given)} times: give it once")
        text = given[0]
        if not _DIGITS.fullmatch(text) or int(text) > U32_MAX:
            raise RequestError(
                400, f"query parameter '{name}' must be a 32-bit unsigned integer, got '{_shown(text)}'"
            )
        found[name] = int(text)
    return QueryBounds(found["start"], found["end"])


def parse_range_header(text: str) -> ByteRange:
    """A ``Range`` header of one byte range; 400 for another unit, several ranges or a bad spec."""
    unit, equals, spec = text.strip().partition("=")
    if not equals or unit.strip().lower() != "bytes":
        raise RequestError(400, f"Range header '{_shown(text)}' is not 'bytes=FIRST-LAST': only byte ranges are served")
    if "," in spec:
        raise RequestError(400, f"Range header '{_shown(text)}' asks for several ranges: refget serves one per request")
    found = _BYTE_RANGE.fullmatch(spec.strip())
    if found is None or (not found[1] and not found[2]):
        raise RequestError(400, f"Range header '{_shown(text)}' is not 'bytes=FIRST-LAST' with decimal byte positions")
    if not found[1]:
        return ByteRange(None, None, suffix=int(found[2]))
    return ByteRange(int(found[1]), int(found[2]) if found[2] else None)


def select_from_query(bounds: QueryBounds, length: int, *, circular: bool) -> Selection:
    """The residues ``?start=&end=`` select from a sequence of ``length`` (see the module docstring)."""
    start = 0 if bounds.start is None else bounds.start
    end = length if bounds.end is None else bounds.end
    if bounds.start is not None and start >= length:
        raise RequestError(416, f"start={start} is past the end of the sequence (length {length})")
    if end > length:
        raise RequestError(416, f"end={end} is past the end of the sequence (length {length})")
    if start > end:
        if bounds.start is not None and bounds.end is not None and circular:
            return Selection(start, end, wraps=True)
        raise RequestError(
            416, f"start={start} is greater than end={end} and the sequence is not circular"
        )
    return Selection(start, end)


def select_from_range(byte_range: ByteRange, length: int) -> Selection:
    """The residues a ``Range`` header selects (see the module docstring); 416 with ``Content-Range``."""
    unsatisfiable = {"Content-Range": f"bytes */{length}"}
    if byte_range.suffix is not None:
        if byte_range.suffix == 0 or length == 0:
            raise RequestError(416, f"Range 'bytes=-{byte_range.suffix}' selects no bytes", unsatisfiable)
        return Selection(max(0, length - byte_range.suffix), length, partial=True)
    first = byte_range.first or 0
    last = length - 1 if byte_range.last is None else byte_range.last
    if first > last:
        raise RequestError(416, f"Range 'bytes={first}-{last}' has its first byte after its last", unsatisfiable)
    if first >= length:
        raise RequestError(416, f"Range 'bytes={first}-{last}' starts past the end of the sequence (length {length})",
                           unsatisfiable)
    return Selection(first, min(last, length - 1) + 1, partial=True)


def _shown(text: str) -> str:
    """User text as it may appear in a message: at most 60 characters, control characters escaped."""
    cut = text[:60] + ("..." if len(text) > 60 else "")
    return cut.encode("unicode_escape").decode("ascii")
