"""The chunk frame: a self-describing envelope around a compressed payload.

Every object under ``chunks/`` and ``manifests/`` is one frame::

    offset  size  field
    0       4     magic  b"TLCF"  (TaLaria Chunk Frame)
    4       1     format version (currently 1)
    5       1     codec id (see talaria_storage.storage.codecs)
    6       1     codec parameter (zstd level; 0 otherwise)
    7       1     flags (reserved, 0)
    8       8     uncompressed length, unsigned little-endian
    16      ...   payload (the codec's output)

The name of the object is SHA-256 of the *uncompressed* bytes, so the frame
needs no checksum of its own: every read decodes and re-hashes. Readers
refuse frames of a newer format version instead of guessing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from talaria_storage.core.errors import CompressionError
from talaria_storage.storage.codecs import Codec, codec_from_header

MAGIC = b"TLCF"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sBBBBQ")
HEADER_SIZE = _HEADER.size  # 16
MAX_UNCOMPRESSED = 1 << 40  # refuse absurd lengths from a corrupt header before allocating


@dataclass(frozen=True, slots=True)
class FrameHeader:
    version: int
    codec: Codec
    size: int


def encode(data: bytes, codec: Codec) -> bytes:
    """Frame ``data`` compressed with ``codec``."""
    payload = codec.compress(data)
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, codec.id, codec.parameter, 0, len(data))
    return header + payload


def decode_header(frame: bytes) -> FrameHeader:
    """Parse and check the 16-byte header; :class:`CompressionError` when it is not a frame."""
    if len(frame) < HEADER_SIZE:
        raise CompressionError(f"frame is truncated: {len(frame)} bytes, the header alone is {HEADER_SIZE}")
    magic, version, codec_id, parameter, _flags, size = _HEADER.unpack_from(frame)
    if magic != MAGIC:
        raise CompressionError(f"not a chunk frame (magic {magic!r}, expected {MAGIC!r})")
    if version != FORMAT_VERSION:
        raise CompressionError(
            f"frame format version {version} is not supported (this version reads {FORMAT_VERSION}); upgrade talaria-storage"
        )
    if size > MAX_UNCOMPRESSED:
        raise CompressionError(f"frame header claims {size} uncompressed bytes; the header is corrupt")
    return FrameHeader(version, codec_from_header(codec_id, parameter), size)


def decode(frame: bytes) -> tuple[bytes, FrameHeader]:
    """Return the original bytes and the header; :class:`CompressionError` on any corruption."""
    header = decode_header(frame)
    data = header.codec.decompress(memoryview(frame)[HEADER_SIZE:], header.size)
    if len(data) != header.size:
        raise CompressionError(
            f"frame decoded to {len(data)} bytes but its header says {header.size} (truncated or corrupt)"
        )
    return data, header
