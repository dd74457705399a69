"""ChunkRanges: a stored chunk read by byte ranges of its content, not whole.

Why
    A random look-up needs one residue block of a sequence pack: ~33 KB of
    a ~1 MB object. Against a remote store, fetching the whole pack was most
    of a look-up's bytes (3.9 % of uniprot15's objects for one record). A
    pack is framed without compression (its blocks are compressed inside),
    so a byte range of the stored object is a byte range of its content,
    and the reader can fetch its stream table and then only the blocks it
    decodes.
Integrity
    The chunk store's SHA-256 covers only the whole object, so a range
    cannot be checked against it. What is read by range must carry its own
    checks: every block of a pack is a zstd frame with its content checksum
    (:mod:`talaria_storage.sequences.streams`), and a block that fails it is a
    :class:`CompressionError`, never wrong residues. Whenever the whole object
    is read (it fits in the first read, a caller asks for all of it, or
    enough ranges were read that the rest is cheaper to fetch at once), it is
    hashed as any chunk read is.
Remote stores
    Each range is one request, so a reader that keeps asking for ranges of
    one object (a batch of look-ups landing in one pack) reads the rest of
    it whole after ``whole_after`` ranges (remote: one). A look-up reads a
    pack's table and one block; a batch reads each pack in three requests,
    about its size once (uniprot15, 1,000 look-ups: 102 requests, where
    reading every pack whole took 63). A local store (``whole_after`` None)
    never switches: a range there is a ``pread``.
"""

from __future__ import annotations

from collections.abc import Callable

from talaria_storage.core.errors import CompressionError, HashMismatch
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.storage import frame

#: Content bytes the first read of a ranged chunk asks for: a pack's stream table and its
#: slot lengths, so the next read is the block a look-up wants. uniprot15's packs need 0.7 to
#: 19.2 KB (320 to 10,657 slots); at 16 KiB its largest pack took a read more.
HEAD_BYTES = 32 << 10
#: Ranges a reader of a remote object asks for before it reads the rest of the object whole.
REMOTE_RANGES_BEFORE_WHOLE = 1


class ChunkRanges:
    """The content of one stored chunk, read a byte range at a time (see the module docstring).

    ``read_range(start, end)`` reads bytes of the stored object (frame
    header included); ``head`` is the content's first bytes, already read.
    """

    def __init__(
        self,
        hash: SHA256Hash,
        key: str,
        size: int,
        head: bytes,
        read_range: Callable[[int, int], bytes],
        *,
        whole_after: int | None = None,
        forget: Callable[[], None] = lambda: None,
    ) -> None:
        self.hash = hash
        self.key = key
        #: The content's length in bytes (what the frame header says).
        self.size = size
        self.head = head
        self._read_range = read_range
        self._whole: bytes | None = None
        self._whole_after = whole_after
        self._forget = forget
        self.ranges_read = 0

    def discard(self) -> None:
        """Drop any cached copy of the object's bytes: a block read from it failed its check."""
        self._forget()

    def read(self, start: int, end: int) -> bytes:
        """Content bytes ``[start, end)``: from the first read or the whole copy when they hold
        them, else one ranged read (or, past ``whole_after`` ranges, the whole object)."""
        if self._whole is not None:
            return self._whole[start:end]
        if end <= len(self.head):
            return self.head[start:end]
        if not 0 <= start <= end <= self.size:
            raise CompressionError(f"range [{start}, {end}) of chunk '{self.key}' is outside its {self.size} bytes")
        if self._whole_after is not None and self.ranges_read >= self._whole_after:
            return self.whole()[start:end]
        self.ranges_read += 1
        data = self._read_range(frame.HEADER_SIZE + start, frame.HEADER_SIZE + end)
        if len(data) != end - start:
            self.discard()
            raise CompressionError(
                f"chunk '{self.key}' is shorter than its frame header says ({end - start} bytes "
                f"asked at {start}, {len(data)} read): the stored object is truncated"
            )
        return data

    def whole(self) -> bytes:
        """All of the content, read once and checked against the chunk's SHA-256."""
        if self._whole is None:
            rest = self._read_range(frame.HEADER_SIZE + len(self.head), frame.HEADER_SIZE + self.size)
            data = self.head + rest
            actual = SHA256Hash.compute(data)
            if actual != self.hash:
                self.discard()
                raise HashMismatch(self.hash, actual, self.key)
            self._whole = data
        return self._whole
