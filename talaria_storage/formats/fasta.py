"""Streaming FASTA and FASTQ readers that keep what byte-exact export needs.

Formats read
------------
FASTA
    Records of one header line starting with ``>`` followed by zero or more
    sequence lines. Everything up to the next line that starts with ``>`` (or
    the end of the input) belongs to the record. A file must start with
    ``>``; an empty file has no records.
FASTQ
    Records of an ``@header`` line, sequence lines up to the ``+`` line (``+``
    optionally followed by a copy of the header), then quality lines
    (``!``..``~``) until there are as many qualities as residues. Most files
    have one sequence and one quality line; wrapped (multi-line) FASTQ, as
    old Sanger tools wrote it, is read as the format defines it (Cock et
    al. 2010, NAR 38:1767): a quality line that starts with ``@`` or ``+`` is
    quality, since a record ends only when its qualities are complete.
Compression
    Plain, gzip (multi-member too, so BGZF), zstd (multi-frame too), bzip2 and
    xz, recognised by their magic bytes, not by the file name.

What a record keeps
-------------------
A :class:`FastaRecord` holds the header line without ``>`` and without its
line terminator (trailing spaces and tabs kept), the residues exactly as they
appear with the line breaks removed (case kept, since lower case is soft
masking; spaces inside sequence lines kept too), and a :class:`Layout`
sufficient to regenerate the record's bytes:

* ``wrap`` -- ``0`` when the residues sit on one line (or there are none);
  ``W > 0`` when every sequence line but the last holds exactly ``W``
  residues and the last holds 1..W (the common case: one number per record);
* ``line_lengths`` -- the explicit length of every sequence line, used only
  when the wrapping is irregular (blank lines, ragged lines);
* ``eol`` -- ``b"\\n"`` or ``b"\\r\\n"``, the terminator of every line;
* ``final_eol`` -- False only for the last record of a file that does not end
  with a line terminator;
* ``line_eols`` -- the explicit terminator of every line (header first), used
  only when one record mixes ``\\n`` and ``\\r\\n``.

A :class:`FastqRecord`'s layout says the same of its lines: ``wrap`` is the
width both its sequence and its quality lines are wrapped at (``0``: one
line each, the four-line form); when the two are wrapped differently or
raggedly, ``line_lengths`` is the number of sequence lines, then every
sequence line's length, then every quality line's; ``line_eols`` has one
terminator per line (header, sequence lines, ``+``, quality lines).

The layout is a pure function of the record's own bytes (never of its
neighbours), so the same record always gets the same layout and the same
chunk bytes. ``format_fasta(record)`` gives back the exact input bytes, and
concatenating the formatted records of a file gives back the file.

Why not Biopython here: ``Bio.SeqIO.FastaIO`` drops the wrapping, trailing
spaces of headers and the line terminators, and parses line by line in
Python. This reader cuts large decompressed blocks at ``b"\\n>"`` and handles
a whole record with a handful of C-level bytes operations (split, slice,
translate), which is what makes it fast enough (see
``benchmarks/bench_formats.py``). GenBank and EMBL are read, their text kept
byte for byte, by :mod:`talaria_storage.formats.genbank`.

Bad input raises :class:`InputFormatError` naming the file and line: data
before the first header, binary garbage or control characters (a header may
hold tab and Ctrl-A, the separator of NCBI nr/nt's joined identifiers), an
empty record when ``allow_empty=False``, FASTQ with
unequal sequence and quality lengths, a truncated or corrupt compressed
stream. An empty header (``>`` alone) is kept, as seqkit, samtools and
Biopython keep it. Empty records (a header with no residues) are kept by default and
flagged by :attr:`FastaRecord.is_empty`: real databases contain them, and a
byte-exact round trip must keep them.

Compressed input is decompressed in a background thread, a few pieces ahead
of the parser (ISA-L, zlib and zstd release the GIL, so on two cores the two
overlap). Memory: one read block (4 MiB by default), the largest record, and
at most four decompressed pieces (each the output of 1 MiB of compressed
input) waiting in the queue.
"""

from __future__ import annotations

import bz2
import functools
import io
import lzma
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, NamedTuple

import zstandard
from isal import isal_zlib

from talaria_storage.core.errors import InputFormatError

Source = str | os.PathLike[str] | BinaryIO

DEFAULT_BLOCK_SIZE = 4 << 20

LF = b"\n"
CRLF = b"\r\n"

# Bytes allowed inside a sequence line with ``alphabet="any"``: printable ASCII, space and tab.
_RESIDUE_BYTES = bytes(range(0x20, 0x7F)) + b"\t"
# ``alphabet="iupac"`` (the default): the IUPAC nucleotide and amino-acid letters (together, every
# letter: B, J, O, U, X and Z are amino-acid codes) in either case, '*' (stop), '-' and '.' (gaps).
_IUPAC_BYTES = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1)) + b"*-."
#: What ``alphabet=`` accepts, and the residue bytes each allows.
ALPHABETS = {"iupac": _IUPAC_BYTES, "any": _RESIDUE_BYTES}
_ALPHABET_HINT = "residues are IUPAC letters, '*', '-' or '.' (import with --alphabet any to keep any printable byte)"
# Bytes allowed inside a header line: the same plus any non-ASCII byte (UTF-8 organism names)
# and Ctrl-A (0x01), which joins the identifiers of one sequence in NCBI nr/nt headers.
CTRL_A = b"\x01"
_HEADER_BYTES = _RESIDUE_BYTES + bytes(range(0x80, 0x100)) + CTRL_A
# A block with none of the other bytes has no CR and no control character anywhere.
_CLEAN_BYTES = _HEADER_BYTES + b"\n"
# FASTQ qualities: '!'..'~'.
_QUALITY_BYTES = bytes(range(0x21, 0x7F))

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_BZ2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"


class Layout(NamedTuple):
    """How a record's lines were laid out; see the module docstring."""

    wrap: int = 0
    line_lengths: tuple[int, ...] | None = None
    eol: bytes = LF
    final_eol: bool = True
    line_eols: tuple[bytes, ...] | None = None

    @property
    def is_regular(self) -> bool:
        """True when one number (``wrap``) and one terminator describe every line."""
        return self.line_lengths is None and self.line_eols is None


#: Whitespace a record's residues may hold inside a line (its newlines are gone after parsing),
#: which Biopython drops from a sequence and canonical residues drop too.
RESIDUE_SPACES = b" \t\r\x0b\x0c"
#: Between the FASTA part of a stored GenBank/EMBL record's header and the envelope that
#: keeps its flat-file text (:mod:`talaria_storage.formats.genbank`).
MARK = b"\x1f"
#: How a stored GenBank/EMBL record gives back its flat-file text and flavour. This module is
#: below the one that stores such records, which installs it (:func:`register_flatfile_text`).
_flatfile_text: Callable[[FastaRecord], tuple[bytes, str]] | None = None


def register_flatfile_text(read: Callable[[FastaRecord], tuple[bytes, str]]) -> None:
    """Install how :meth:`FastaRecord.to_seqrecord` reads a stored GenBank/EMBL record."""
    global _flatfile_text
    _flatfile_text = read


class _Named:
    """What a pipeline reads off a record, as Biopython names it (``SeqIO`` parses the same)."""

    __slots__ = ()
    header: bytes
    residues: bytes
    qualities: bytes

    @property
    def description(self) -> str:
        """The whole header line after ``>`` / ``@`` (Biopython's ``description``)."""
        return self.header.partition(MARK)[0].decode("utf-8", "replace")

    @property
    def id(self) -> str:
        """The header's first word (Biopython's ``id``; what BLAST and ``samtools faidx`` key on)."""
        words = self.header.partition(MARK)[0].split(None, 1)
        return words[0].decode("utf-8", "replace") if words else ""

    @property
    def seq(self) -> str:
        """The residues as written, without spaces (case kept, as Biopython keeps it)."""
        return self.residues.translate(None, RESIDUE_SPACES).decode("ascii", "replace")

    def __len__(self) -> int:
        """Residues, as ``len()`` of a Biopython record (not the tuple's number of fields)."""
        return len(self.seq)

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Any:
        # namedtuple's own _make (and so _replace) checks the new tuple with len()
        return tuple.__new__(cls, iterable)


class _FastaFields(NamedTuple):
    header: bytes
    residues: bytes
    layout: Layout = Layout()


class _FastqFields(NamedTuple):
    header: bytes
    residues: bytes
    plus: bytes
    qualities: bytes
    layout: Layout = Layout()


class FastaRecord(_Named, _FastaFields):
    """One FASTA record: header (no ``>``, no terminator), residues as written, layout."""

    __slots__ = ()

    @property
    def is_empty(self) -> bool:
        """A header with no residues."""
        return not self.residues

    def to_bytes(self) -> bytes:
        """The record's exact bytes in the file it came from."""
        return format_fasta(self)

    def to_seqrecord(self) -> Any:
        """The record as a Biopython ``SeqRecord``: what ``SeqIO.parse`` gives for its text (a
        GenBank/EMBL record with its features and annotations, from its stored flat-file text)."""
        # Biopython is imported here, not with this module: it costs ~65 ms, which every
        # command that reads records (a one-record look-up) would pay for a method few call.
        from Bio import SeqIO
        from Bio.Seq import Seq
        from Bio.SeqRecord import SeqRecord

        if MARK in self.header and _flatfile_text is not None:
            text, flavour = _flatfile_text(self)
            return SeqIO.read(io.StringIO(text.decode("utf-8", "replace")), flavour)
        taxon = getattr(self, "taxon_id", 0)
        return SeqRecord(Seq(self.seq), id=self.id, name=self.id, description=self.description,
                         dbxrefs=[f"taxon:{taxon}"] if taxon else [])


class FastqRecord(_Named, _FastqFields):
    """One FASTQ record: four lines, or wrapped (see :class:`Layout` for how the lines are kept)."""

    __slots__ = ()

    def to_bytes(self) -> bytes:
        """The record's exact bytes in the file it came from."""
        return format_fastq(self)

    def to_seqrecord(self) -> Any:
        """The record as a Biopython ``SeqRecord`` with ``phred_quality`` letter annotations
        (Sanger offset 33), as ``SeqIO.parse(..., "fastq")`` gives it."""
        from Bio.Seq import Seq  # deferred: see FastaRecord.to_seqrecord
        from Bio.SeqRecord import SeqRecord

        qualities = self.qualities.translate(None, RESIDUE_SPACES)
        return SeqRecord(
            Seq(self.seq), id=self.id, name=self.id, description=self.description,
            letter_annotations={"phred_quality": [q - 33 for q in qualities]},
        )


SequenceRecord = FastaRecord | FastqRecord


class LabelledFastaRecord(FastaRecord):
    """A :class:`FastaRecord` read from a database, with the taxon it is stored under
    (``taxon_id``, 0: none). No ``__slots__``: the taxon lives in the instance's dict, so a
    labelled record still equals (as a tuple) the record parsed from the file."""

    taxon_id: int


class LabelledFastqRecord(FastqRecord):
    """A :class:`FastqRecord` read from a database, with its taxon (see :class:`LabelledFastaRecord`)."""

    taxon_id: int


def labelled(record: SequenceRecord, taxon_id: int) -> SequenceRecord:
    """``record`` with ``taxon_id`` (:class:`LabelledFastaRecord` or :class:`LabelledFastqRecord`)."""
    out = (LabelledFastqRecord if isinstance(record, FastqRecord) else LabelledFastaRecord)._make(record)
    out.taxon_id = taxon_id
    return out


_CR = 0x0D  # a carriage return, tested for by value

# Regular layouts are shared: a file of 80 million records holds a handful of Layout objects.
_LAYOUTS: dict[tuple[int, bool, bytes], Layout] = {}


def _regular_layout(wrap: int, final_eol: bool, eol: bytes = LF) -> Layout:
    key = (wrap, final_eol, eol)
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = _LAYOUTS.setdefault(key, Layout(wrap, None, eol, final_eol, None))
    return layout


# --------------------------------------------------------------------------- writing


def format_fasta(record: FastaRecord) -> bytes:
    """Regenerate the exact bytes of ``record`` (inverse of the reader)."""
    header, residues, layout = record
    if layout.is_regular:
        eol = layout.eol
        wrap = layout.wrap
        if not residues:
            body = b""
        elif wrap == 0 or len(residues) <= wrap:
            body = residues + eol
        else:
            body = eol.join([residues[i : i + wrap] for i in range(0, len(residues), wrap)]) + eol
        out = b">" + header + eol + body
        return out if layout.final_eol else out[: -len(eol)]
    lengths = layout.line_lengths
    if lengths is None:
        lengths = _wrapped_lengths(len(residues), layout.wrap)
    if sum(lengths) != len(residues):
        raise ValueError(
            f"layout line lengths add up to {sum(lengths)}, the record has {len(residues)} residues"
        )
    eols = layout.line_eols
    if eols is None:
        eols = (layout.eol,) * len(lengths) + ((layout.eol,) if layout.final_eol else (b"",))
    if len(eols) != len(lengths) + 1:
        raise ValueError(f"layout has {len(eols)} line terminators for {len(lengths) + 1} lines")
    parts = [b">", header, eols[0]]
    at = 0
    for length, eol in zip(lengths, eols[1:]):
        parts.append(residues[at : at + length])
        parts.append(eol)
        at += length
    return b"".join(parts)


def _wrapped_lengths(total: int, wrap: int) -> tuple[int, ...]:
    if total == 0:
        return ()
    if wrap == 0 or total <= wrap:
        return (total,)
    full, rest = divmod(total, wrap)
    return (wrap,) * full + ((rest,) if rest else ())


def format_fastq(record: FastqRecord) -> bytes:
    """Regenerate the exact bytes of a FASTQ record (four lines, or wrapped as it was read)."""
    header, residues, plus, qualities, layout = record
    if layout.line_lengths is None:
        seq_lengths = qual_lengths = _fastq_lengths(len(residues), layout.wrap)
    else:
        count = layout.line_lengths[0]
        seq_lengths = layout.line_lengths[1 : 1 + count]
        qual_lengths = layout.line_lengths[1 + count :]
    if sum(seq_lengths) != len(residues) or sum(qual_lengths) != len(qualities):
        raise ValueError(
            f"layout line lengths hold {sum(seq_lengths)} residues and {sum(qual_lengths)} qualities, "
            f"the record has {len(residues)} and {len(qualities)}"
        )
    lines = 2 + len(seq_lengths) + len(qual_lengths)
    eols = layout.line_eols
    if eols is None:
        eols = (layout.eol,) * (lines - 1) + ((layout.eol,) if layout.final_eol else (b"",))
    if len(eols) != lines:
        raise ValueError(f"a FASTQ record of {lines} lines has {len(eols)} line terminators in its layout")
    parts = [b"@", header, eols[0]]
    at = 0
    for length, eol in zip(seq_lengths, eols[1:]):
        parts += (residues[at : at + length], eol)
        at += length
    parts += (b"+", plus, eols[1 + len(seq_lengths)])
    at = 0
    for length, eol in zip(qual_lengths, eols[2 + len(seq_lengths) :]):
        parts += (qualities[at : at + length], eol)
        at += length
    return b"".join(parts)


def format_record(record: SequenceRecord) -> bytes:
    """Exact bytes of a FASTA or FASTQ record."""
    return format_fastq(record) if isinstance(record, FastqRecord) else format_fasta(record)


def write_records(
    records: Iterable[SequenceRecord],
    out: BinaryIO,
    formatter: Callable[[SequenceRecord], bytes] = format_record,
) -> int:
    """Write each record as ``formatter`` renders it (default: its exact bytes) to ``out``.

    Writes go out in batches of about 1 MiB. Returns the number of bytes written.
    """
    written = 0
    batch: list[bytes] = []
    size = 0
    for record in records:
        data = formatter(record)
        batch.append(data)
        size += len(data)
        if size >= 1 << 20:
            out.write(b"".join(batch))
            written += size
            batch, size = [], 0
    if batch:
        out.write(b"".join(batch))
        written += size
    return written


# --------------------------------------------------------------------------- opening


def source_name(source: Source, name: str | None) -> str:
    """The name error messages give an input: ``name`` if given, else its path, else the stream's name."""
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


_PIECE = 1 << 20  # compressed bytes read at a time; bounds one decompressed piece


def _members(stream: BinaryIO, kind: str) -> Iterator[bytes]:
    """Decompress a gzip or zstd stream of one or more members (frames), piece by piece.

    Python's ``gzip`` module is a third slower than ``zlib`` itself, and
    ``zstandard``'s stream reader ends quietly at a frame cut short, which
    would make a truncated download look like a shorter valid file. Here a
    member still open at the end of the input raises ``EOFError``; the
    decoder checks every gzip member's CRC-32 and length. gzip is inflated
    by ISA-L (``isal``, as cutadapt and xopen do): zlib's interface at half
    its CPU (uniprot15's 15 files: 0.15 s against 0.30 s, the same bytes),
    and the main process of an import, which decompresses, is its bottleneck.
    """
    new: Callable[[], Any] = (
        functools.partial(isal_zlib.decompressobj, 31)  # 31: a gzip wrapper, checked
        if kind == "gzip"
        else zstandard.ZstdDecompressor().decompressobj
    )
    member = new()
    started = False
    while True:
        data = stream.read(_PIECE)
        if not data:
            if started and not member.eof:
                raise EOFError(f"{kind} stream cut short")
            return
        while data:
            if member.eof:
                if kind == "gzip" and not data.strip(b"\x00"):
                    break  # NUL padding after the last member, as tape and some tools write
                member = new()
            started = True
            out = member.decompress(data)
            if out:
                yield out
            data = member.unused_data if member.eof else b""


def _file_pieces(stream: BinaryIO) -> Iterator[bytes]:
    while data := stream.read(_PIECE):
        yield data


class _ReadAhead(io.RawIOBase):
    """Decompress in a background thread, a few pieces ahead of the parser.

    ISA-L, zstd, bz2 and lzma release the GIL while they work, so on two
    cores decompression and parsing overlap instead of adding up. At most
    ``depth`` pieces wait in the queue (bounded memory). Decoder errors are
    raised in the reading thread as :class:`InputFormatError` naming the
    file, so a truncated download is never parsed as a short valid file.
    """

    _END = object()

    def __init__(self, pieces: Iterator[bytes], path: str, kind: str, depth: int = 4) -> None:
        self._pieces = pieces
        self._path = path
        self._kind = kind
        self._queue: queue.Queue[object] = queue.Queue(depth)
        self._stop = threading.Event()
        self._current = b""
        self._at = 0
        self._done = False
        self._thread = threading.Thread(
            target=self._produce, name="talaria-decompress", daemon=True
        )
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for piece in self._pieces:
                if not self._put(piece):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            self._put(exc)
            return
        self._put(self._END)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while self._at >= len(self._current):
            if self._done:
                return 0
            item = self._queue.get()
            if item is self._END:
                self._done = True
                return 0
            if isinstance(item, BaseException):
                self._done = True
                raise self._translate(item)
            self._current = item  # type: ignore[assignment]
            self._at = 0
        n = min(len(buffer), len(self._current) - self._at)
        buffer[:n] = self._current[self._at : self._at + n]
        self._at += n
        return n

    def _translate(self, exc: BaseException) -> BaseException:
        if isinstance(exc, EOFError):
            return InputFormatError(self._path, None, f"truncated {self._kind} stream")
        if isinstance(exc, (OSError, isal_zlib.error, zstandard.ZstdError, lzma.LZMAError)):
            return InputFormatError(
                self._path, None, f"corrupt or truncated {self._kind} stream ({exc})"
            )
        return exc

    def close(self) -> None:
        """Stop the producer and wait for it, so the caller may close the file under it."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        super().close()


def compression_of(head: bytes) -> str:
    """Name the compression of a stream from its first bytes: gzip, zstd, bzip2, xz or none."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    if head.startswith(_BZ2_MAGIC):
        return "bzip2"
    if head.startswith(_XZ_MAGIC):
        return "xz"
    return "none"


@contextmanager
def open_input(source: Source, name: str | None = None) -> Iterator[BinaryIO]:
    """Open a path or binary stream and yield the *decompressed* byte stream.

    The compression is read from the magic bytes. A stream passed in is not
    closed on exit (the caller owns it); a path opened here is.
    """
    path = source_name(source, name)
    owned = isinstance(source, (str, os.PathLike))
    raw: BinaryIO
    if isinstance(source, (str, os.PathLike)):
        try:
            raw = open(source, "rb")  # noqa: SIM115 - closed in finally
        except OSError as exc:
            raise InputFormatError(path, None, f"cannot open: {exc.strerror or exc}") from exc
    else:
        raw = source
    peekable: BinaryIO = (
        raw if hasattr(raw, "peek") else io.BufferedReader(raw)  # type: ignore[arg-type,type-var]
    )
    try:
        kind = compression_of(peekable.peek(8)[:8])  # type: ignore[attr-defined]
        if kind == "none":
            yield peekable
            return
        decoder: BinaryIO | None = None
        if kind in ("gzip", "zstd"):
            pieces = _members(peekable, kind)
        elif kind == "bzip2":
            decoder = bz2.BZ2File(peekable, "rb")  # type: ignore[assignment]
            pieces = _file_pieces(decoder)  # type: ignore[arg-type]
        else:
            decoder = lzma.LZMAFile(peekable, "rb")  # type: ignore[assignment]  # noqa: SIM115
            pieces = _file_pieces(decoder)  # type: ignore[arg-type]
        stream = io.BufferedReader(_ReadAhead(pieces, path, kind), buffer_size=1 << 20)
        try:
            yield stream  # type: ignore[misc]
        finally:
            stream.close()  # stops and joins the decompressing thread first
            if decoder is not None:
                decoder.close()
    finally:
        if owned:
            raw.close()


def segment_starts(path: str | os.PathLike[str], every: int) -> list[int]:
    """Where a plain FASTA file's segments of about ``every`` bytes start: the first record at
    or after each multiple of ``every`` (``[0]`` for a smaller, compressed or other file: in
    FASTQ or GenBank text a line may start with ``>`` inside a record).

    An import chunks each segment apart (``sequences.importing``), so a range of
    segments can be imported on its own -- a byte-range shard on a cluster -- and
    give the objects a whole-file import gives. The starts depend on the bytes
    alone: every caller finds the same ones. A record longer than a segment
    (a chromosome) makes its segment longer; a compressed file cannot be
    entered in the middle and is one segment.
    """
    size = os.path.getsize(path)
    starts = [0]
    if size <= every or sniff_format(path) != "fasta":
        return starts
    with open(path, "rb") as raw:
        if compression_of(raw.read(8)) != "none":
            return starts
        while True:
            at = max(len(starts) * every, starts[-1] + 1) - 1  # the newline before a '>' counts
            raw.seek(at)
            found = -1
            tail = b""
            while found < 0:
                block = raw.read(1 << 20)
                if not block:
                    return starts
                hit = (tail + block).find(b"\n>")
                if hit >= 0:
                    found = at - len(tail) + hit + 1
                tail = block[-1:]
                at += len(block)
            starts.append(found)


def sniff_format(source: Source, name: str | None = None) -> str:
    """Guess the record format of a (possibly compressed) input from its first bytes.

    Returns ``"fasta"``, ``"fastq"``, ``"genbank"``, ``"embl"`` or ``"empty"``;
    anything else is an :class:`InputFormatError`. A stream passed in is
    consumed; reopen it (or pass a path) to read the records.
    """
    path = source_name(source, name)
    with open_input(source, name) as stream:
        head = stream.read(4096)
    text = head.lstrip(b"\r\n")
    if not head:
        return "empty"
    if text.startswith(b">"):
        return "fasta"
    if text.startswith(b"@"):
        return "fastq"
    if text.startswith(b"LOCUS"):
        return "genbank"
    if text.startswith(b"ID   "):
        return "embl"
    if b"\nLOCUS " in head:
        return "genbank"  # an NCBI release file (gbbct1.seq): a release header, then the records
    raise InputFormatError(path, 1, f"not FASTA, FASTQ, GenBank or EMBL: starts with {head[:16]!r}")


# --------------------------------------------------------------------------- FASTA


def _first_byte_problem(first: bytes, fmt: str) -> str:
    if first and (first[0] not in b"\t\n\r" and (first[0] < 0x20 or first[0] >= 0x7F)):
        return "binary data, not " + fmt
    if fmt == "FASTA" and first.startswith(b"@"):
        return "no header before sequence data (the file looks like FASTQ, not FASTA)"
    if fmt == "FASTQ" and first.startswith(b">"):
        return "the file looks like FASTA, not FASTQ"
    if fmt == "FASTA":
        return "no header before sequence data (a FASTA file starts with '>')"
    return "a FASTQ record starts with '@'"


def _bad_byte(data: bytes, allowed: bytes) -> int:
    """Index of the first byte of ``data`` not in ``allowed`` (callers know there is one)."""
    bad = data.translate(None, allowed)
    return data.find(bad[:1])


def residue_bytes(alphabet: str) -> bytes:
    """The residue bytes ``alphabet`` allows (:data:`ALPHABETS`); an unknown name is a ValueError."""
    try:
        return ALPHABETS[alphabet]
    except KeyError:
        raise ValueError(f"unknown alphabet {alphabet!r}: use {' or '.join(ALPHABETS)}") from None


def _describe_byte(value: int) -> str:
    if value == 0:
        return "NUL byte (binary data)"
    if value == 0x0D:
        return "carriage return not followed by a line feed"
    if value < 0x20 or value == 0x7F:
        return f"control character 0x{value:02x}"
    if value == 0x20:
        return "space (0x20)"
    if value < 0x7F:
        return f"character '{chr(value)}' (0x{value:02x})"
    return f"non-ASCII byte 0x{value:02x}"


class _FastaBlockParser:
    """Turns complete-record text into :class:`FastaRecord` objects for one file."""

    def __init__(self, path: str, allow_empty: bool, alphabet: str = "iupac") -> None:
        self.path = path
        self.allow_empty = allow_empty
        self.residue_bytes = residue_bytes(alphabet)

    def parse(self, text: bytes, first_line: int, final_eol: bool) -> list[FastaRecord]:
        """Parse ``text``: whole records, the first starting with ``>``.

        Every record but the last ends just before a ``"\\n>"`` (the split
        removed that newline); the last ends with a newline iff ``final_eol``
        (already removed by the caller).
        """
        parts = text[1:].split(b"\n>")
        last = len(parts) - 1
        if text.translate(None, _CLEAN_BYTES):
            # Somewhere in the block: a CR, a control byte... Check record by record.
            return [
                self._record(parts, i, part, first_line, final_eol or i != last)
                for i, part in enumerate(parts)
            ]
        # One scan of the whole block found no CR and no control byte, so each record
        # only needs its wrapping checked, its residues to be ASCII, its header not blank.
        out: list[FastaRecord] = []
        append = out.append
        layouts: dict[int, Layout] = {}
        for i, part in enumerate(parts):
            nl = part.find(b"\n")
            if nl <= 0 or (i == last and not final_eol):
                append(self._record(parts, i, part, first_line, final_eol or i != last))
                continue
            header = part[:nl]
            body = part[nl + 1 :]
            wrap = body.find(b"\n")
            if wrap < 0:
                residues = body
                wrap = 0
            elif (
                wrap > 0 and body[-1] != 10 and body[wrap :: wrap + 1] == b"\n" * body.count(b"\n")
            ):
                residues = body.replace(b"\n", b"")
            else:
                residues = b""  # irregular: the general path below
            if (
                not residues
                or not residues.isascii()
                or header.isspace()
                or residues.translate(None, self.residue_bytes)
            ):
                append(self._record(parts, i, part, first_line, True))
                continue
            layout = layouts.get(wrap)
            if layout is None:
                layout = layouts[wrap] = _regular_layout(wrap, True)
            append(FastaRecord(header, residues, layout))
        return out

    def _record(
        self, parts: list[bytes], i: int, part: bytes, first_line: int, final: bool
    ) -> FastaRecord:
        if _CR in part:  # by value: b"\r" in part costs CPython 3.11 a TypeError raised and cleared
            return self._slow(parts, i, part, first_line, final)
        nl = part.find(b"\n")
        if nl < 0:
            header, body = part, None
        else:
            header, body = part[:nl], part[nl + 1 :]
        if not header.strip() or header.translate(None, _HEADER_BYTES):
            return self._slow(parts, i, part, first_line, final)
        if body is None:
            if not self.allow_empty:
                self._fail(parts, i, 0, first_line, "empty record: header with no residues")
            return FastaRecord(header, b"", _regular_layout(0, final))
        wrap = body.find(b"\n")
        if wrap < 0:
            if not body:  # one blank line after the header
                return self._slow(parts, i, part, first_line, final)
            residues = body
            layout = _regular_layout(0, final)
        else:
            newlines = body.count(b"\n")
            if wrap > 0 and body[-1:] != b"\n" and body[wrap :: wrap + 1] == b"\n" * newlines:
                residues = body.replace(b"\n", b"")
                layout = _regular_layout(wrap, final)
            else:
                return self._slow(parts, i, part, first_line, final)
        if residues.translate(None, self.residue_bytes):
            return self._slow(parts, i, part, first_line, final)
        return FastaRecord(header, residues, layout)

    def _slow(
        self, parts: list[bytes], i: int, part: bytes, first_line: int, final: bool
    ) -> FastaRecord:
        """General path: any terminators, blank lines, ragged lines; and precise errors."""
        lines = part.split(b"\n")
        contents: list[bytes] = []
        eols: list[bytes] = []
        for n, line in enumerate(lines):
            last_line = n == len(lines) - 1
            if line.endswith(b"\r") and (final or not last_line):
                contents.append(line[:-1])
                eols.append(CRLF)
            else:
                contents.append(line)
                eols.append(b"" if last_line and not final else LF)
        header = contents[0]  # may be empty ('>' alone): kept, found by digest or position only
        if header.translate(None, _HEADER_BYTES):
            at = _bad_byte(header, _HEADER_BYTES)
            self._fail(parts, i, 0, first_line, f"{_describe_byte(header[at])} in header")
        seq_lines = contents[1:]
        for n, line in enumerate(seq_lines, start=1):
            if line.translate(None, self.residue_bytes):
                at = _bad_byte(line, self.residue_bytes)
                hint = f": {_ALPHABET_HINT}" if self.residue_bytes is _IUPAC_BYTES and 0x20 <= line[at] < 0x7F else ""
                self._fail(
                    parts,
                    i,
                    n,
                    first_line,
                    f"{_describe_byte(line[at])} in sequence data (column {at + 1}){hint}",
                )
        residues = b"".join(seq_lines)
        if not residues and not self.allow_empty:
            self._fail(parts, i, 0, first_line, "empty record: header with no residues")
        lengths = tuple(len(line) for line in seq_lines)
        wrap = lengths[0] if lengths else 0
        regular_lines = all(x == wrap for x in lengths[:-1]) and (
            not lengths or 0 < lengths[-1] <= wrap
        )
        if len(lengths) == 1:
            wrap = 0
        distinct = set(eols[:-1] if not final else eols)
        if len(distinct) <= 1:
            eol = distinct.pop() if distinct else LF
            line_eols = None
        else:
            eol = LF
            line_eols = tuple(eols)
        if regular_lines and line_eols is None:
            layout = _regular_layout(wrap, final, eol)
        else:
            layout = Layout(
                wrap if regular_lines else 0,
                None if regular_lines else lengths,
                eol,
                final,
                line_eols,
            )
        return FastaRecord(header, residues, layout)

    def _fail(self, parts: list[bytes], i: int, line_in_record: int, first_line: int, problem: str):
        line = first_line + sum(part.count(b"\n") + 1 for part in parts[:i]) + line_in_record
        raise InputFormatError(self.path, line, problem)


def _complete_blocks(stream: BinaryIO, block_size: int, marker: bytes) -> Iterator[bytes]:
    """Yield the input in pieces that end exactly where a record starts.

    Each yielded piece (but the last) ends with the newline before
    ``marker``'s second byte; the next piece starts with it. Pieces are
    joined only when a record is larger than a block, so a 250 MB
    chromosome costs one join, not a quadratic series of copies.
    """
    pending: list[bytes] = []
    while True:
        data = stream.read(block_size)
        if not data:
            break
        cut = data.rfind(marker)
        if cut < 0:
            if pending and pending[-1].endswith(b"\n") and data.startswith(marker[1:]):
                yield b"".join(pending)
                pending = [data]
            else:
                pending.append(data)
            continue
        pending.append(data[: cut + 1])
        yield b"".join(pending)
        pending = [data[cut + 1 :]]
    if pending:
        tail = b"".join(pending)
        if tail:
            yield tail


def read_fasta(
    source: Source,
    *,
    name: str | None = None,
    allow_empty: bool = True,
    block_size: int = DEFAULT_BLOCK_SIZE,
    alphabet: str = "iupac",
) -> Iterator[FastaRecord]:
    """Stream the records of a FASTA file (plain or compressed), keeping their layout.

    ``name`` is the file name used in error messages (default: the path or
    the stream's ``name``). ``allow_empty=False`` makes a header without
    residues an error instead of an empty record. ``alphabet`` (:data:`ALPHABETS`):
    ``"iupac"`` refuses any other residue byte, naming line and column (digits and
    spaces are the usual ones); ``"any"`` keeps every printable byte.
    """
    path = source_name(source, name)
    parser = _FastaBlockParser(path, allow_empty, alphabet)
    with open_input(source, name) as stream:
        line = 1
        started = False
        pieces = _complete_blocks(stream, block_size, b"\n>")
        for piece in pieces:
            if not started:
                if not piece.startswith(b">"):
                    raise InputFormatError(path, 1, _first_byte_problem(piece[:1], "FASTA"))
                started = True
            # A piece ends with "\n" exactly when another piece follows (it was cut before '>').
            # Only the file's last piece can lack the final newline.
            if piece.endswith(b"\n"):
                text, final_eol = piece[:-1], True
            else:
                text, final_eol = piece, False
            yield from parser.parse(text, line, final_eol)
            line += piece.count(b"\n")


# --------------------------------------------------------------------------- FASTQ


def _complete_lines(stream: BinaryIO, block_size: int) -> Iterator[tuple[list[bytes], bool]]:
    """Yield lists of whole lines (terminator removed) and whether the input ended."""
    rest = b""
    while True:
        data = stream.read(block_size)
        if not data:
            if rest:
                yield rest.split(b"\n"), True
            return
        data = rest + data
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            continue
        rest = data[cut + 1 :]
        yield data[:cut].split(b"\n"), False


def read_fastq(
    source: Source, *, name: str | None = None, block_size: int = DEFAULT_BLOCK_SIZE, alphabet: str = "iupac"
) -> Iterator[FastqRecord]:
    """Stream the records of a FASTQ file (plain or compressed), keeping their layout.

    Four-line records take a fast path; anything else (wrapped sequence or
    quality lines, CRLF, a missing final newline, an error) is read by
    :func:`_fastq_record` as the format defines it. ``alphabet`` as for
    :func:`read_fasta`. A ``+`` line that repeats an identifier must repeat
    the ``@`` line's (Biopython refuses it otherwise).
    """
    path = source_name(source, name)
    allowed = residue_bytes(alphabet)
    layout_lf = _regular_layout(0, True)
    with open_input(source, name) as stream:
        carry: list[bytes] = []
        line_no = 1  # line number of carry[0]
        started = False
        for lines, at_end in _complete_lines(stream, block_size):
            if carry:
                lines = carry + lines
            if not started and lines:
                if not lines[0].startswith(b"@"):
                    raise InputFormatError(path, 1, _first_byte_problem(lines[0][:1], "FASTQ"))
                started = True
            count = len(lines)
            k = 0
            while k < count:
                if k + 4 < count or (k + 4 == count and not at_end):
                    head, seq, plus, qual = lines[k : k + 4]
                    if (
                        head[:1] == b"@"
                        and plus[:1] == b"+"
                        and len(seq) == len(qual)
                        and not head.translate(None, _HEADER_BYTES)
                        and not plus.translate(None, _HEADER_BYTES)
                        and not seq.translate(None, allowed)
                        and (len(plus) == 1 or plus[1:] == head[1:])
                        and not qual.translate(None, _QUALITY_BYTES)
                        and len(head) > 1
                        and not head[1:].isspace()
                    ):
                        yield FastqRecord(head[1:], seq, plus[1:], qual, layout_lf)
                        k += 4
                        continue
                parsed = _fastq_record(path, lines, k, line_no + k, ended=at_end, allowed=allowed)
                if parsed is None:
                    break
                record, k = parsed
                yield record
            carry = lines[k:]
            line_no += k
        while carry:  # the input ended with a line terminator inside or after the last record
            parsed = _fastq_record(path, carry, 0, line_no, ended=True, allowed=allowed, final_eol=True)
            assert parsed is not None
            record, k = parsed
            yield record
            carry = carry[k:]
            line_no += k


def _fastq_record(
    path: str,
    lines: list[bytes],
    k: int,
    line_no: int,
    *,
    ended: bool,
    allowed: bytes,
    final_eol: bool = False,
) -> tuple[FastqRecord, int] | None:
    """Read the record starting at ``lines[k]`` (file line ``line_no``) as the format defines it.

    The sequence runs until the ``+`` line; the quality runs until it is as
    long as the sequence, so a quality line that starts with ``@`` or ``+``
    is quality, never a record start (Cock et al. 2010, NAR 38:1767).
    Returns the record and the index of the line after it, or None when
    ``lines`` ends inside the record and more input may follow (``ended``
    False). With ``ended``, the last line of ``lines`` has no terminator
    unless ``final_eol``.
    """
    count = len(lines)
    last = count - 1

    def content(i: int) -> tuple[bytes, bytes]:
        line = lines[i]
        if i == last and ended and not final_eol:
            return line, b""
        if line.endswith(b"\r"):
            return line[:-1], CRLF
        return line, LF

    def check(i: int, line: bytes, accepted: bytes, what: str) -> None:
        if line.translate(None, accepted):
            at = _bad_byte(line, accepted)
            problem = (
                _describe_byte(line[at])
                if line[at] < 0x21 or line[at] > 0x7E
                else f"byte {line[at : at + 1]!r}"
            )
            raise InputFormatError(path, line_no + i - k, f"{problem} in {what}")

    def incomplete(problem: str) -> None:
        if ended:
            raise InputFormatError(path, line_no + count - 1 - k, f"truncated FASTQ record: {problem}")

    head, head_eol = content(k)
    if not head.startswith(b"@"):
        raise InputFormatError(path, line_no, "a FASTQ record starts with '@'")
    if not head[1:].strip():
        raise InputFormatError(path, line_no, "empty header ('@' with no identifier)")
    check(k, head, _HEADER_BYTES, "header")
    eols = [head_eol]
    seq_lines: list[bytes] = []
    i = k + 1
    while True:
        if i >= count:
            incomplete("no '+' line after the sequence")
            return None
        line, eol = content(i)
        if line.startswith(b"+"):
            break
        if line.startswith(b"@") and seq_lines:
            raise InputFormatError(
                path, line_no + i - k, f"a new '@' record before the '+' line of the record at line {line_no}"
            )
        check(i, line, allowed, "sequence data")
        seq_lines.append(line)
        eols.append(eol)
        i += 1
    if not seq_lines:
        raise InputFormatError(path, line_no + 1, "no sequence line between '@' and '+' (an empty read has an empty line)")
    plus, eol = content(i)
    check(i, plus, _HEADER_BYTES, "'+' line")
    if len(plus) > 1 and plus[1:] != head[1:]:
        raise InputFormatError(
            path,
            line_no + i - k,
            f"the '+' line names {plus[1:60].decode('utf-8', 'replace')!r}, not the '@' line's "
            f"{head[1:60].decode('utf-8', 'replace')!r}: a '+' line is bare or repeats the header",
        )
    eols.append(eol)
    plus_at = i
    residues = b"".join(seq_lines)
    qual_lines: list[bytes] = []
    have = 0
    i += 1
    while not qual_lines or have < len(residues):
        if i >= count:
            if ended and not residues:  # an empty read's empty quality line, the file's last, unterminated
                qual_lines.append(b"")
                eols.append(b"")
                break
            incomplete(f"{have} quality values for {len(residues)} residues")
            return None
        line, eol = content(i)
        check(i, line, _QUALITY_BYTES, "qualities")
        qual_lines.append(line)
        eols.append(eol)
        have += len(line)
        i += 1
    if have > len(residues):
        problem = f"{have} quality values for {len(residues)} residues"
        if len(qual_lines) > 1:
            first = line_no + plus_at + 1 - k
            extra = len(qual_lines) - 1
            more = f"line {first + 1}" if extra == 1 else f"lines {first + 1}-{first + extra}"
            problem = (
                f"{len(qual_lines[0])} quality values for {len(residues)} residues on line {first}; "
                f"read on as wrapped FASTQ, {more} {'makes' if extra == 1 else 'make'} it {have}"
            )
        raise InputFormatError(path, line_no + plus_at + 1 - k, problem)
    qualities = b"".join(qual_lines)
    return FastqRecord(head[1:], residues, plus[1:], qualities, _fastq_layout(seq_lines, qual_lines, eols)), i


def _fastq_layout(seq_lines: list[bytes], qual_lines: list[bytes], eols: list[bytes]) -> Layout:
    """The layout that regenerates a record's lines: see :class:`Layout` for the FASTQ form."""
    final = eols[-1] != b""
    distinct = set(eols if final else eols[:-1])
    eol = next(iter(distinct)) if len(distinct) == 1 else LF
    line_eols = tuple(eols) if len(distinct) > 1 else None
    seq_lengths = tuple(len(line) for line in seq_lines)
    qual_lengths = tuple(len(line) for line in qual_lines)
    total = sum(seq_lengths)
    wrap = seq_lengths[0] if len(seq_lengths) > 1 else 0
    if seq_lengths == _fastq_lengths(total, wrap) and qual_lengths == seq_lengths:
        if line_eols is None:
            return _regular_layout(wrap, final, eol)
        return Layout(wrap, None, eol, final, line_eols)
    return Layout(0, (len(seq_lengths), *seq_lengths, *qual_lengths), eol, final, line_eols)


def _fastq_lengths(total: int, wrap: int) -> tuple[int, ...]:
    """Line lengths of ``total`` FASTQ residues wrapped at ``wrap``: an empty read is one empty line."""
    return _wrapped_lengths(total, wrap) or (0,)


def read_sequences(
    source: str | os.PathLike[str], *, name: str | None = None
) -> Iterator[SequenceRecord]:
    """Read a FASTA or FASTQ file, chosen by its first bytes (paths only: the file is opened twice)."""
    fmt = sniff_format(source, name)
    if fmt == "empty":
        return iter(())
    if fmt == "fasta":
        return read_fasta(source, name=name)
    if fmt == "fastq":
        return read_fastq(source, name=name)
    raise InputFormatError(
        source_name(source, name),
        1,
        f"{fmt} records are read by talaria_storage.formats.genbank.read_flatfile, not here",
    )
