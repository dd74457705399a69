"""The stored form of a :class:`DeltaChunk`: deterministic bytes, content-addressed in ``chunks/``.

Format (version 1; integers little-endian, then framed and compressed by the
chunk store like any chunk)::

    b"TDLT" u8 version  reference_hash[32]  u32 record_count
    per record:
        child_hash[32]  u8 flags (1: taxon present, 2: identity present)
        [i64 taxon_id]  [f64 identity]
        u32 len  child_id (UTF-8)
        u32 len  ops (opaque: the delta codec's bytes)

A record's reference is the chunk's, so it is written once. Fixed-width
lengths rather than varints: the chunk store compresses the frame, which
takes the zero bytes away, and the varint module belongs to the sequences
layer above this one. The same records in the same order always give the
same bytes, hence the same hash.
"""

from __future__ import annotations

import struct

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.types import DeltaChunk, DeltaRecord

MAGIC = b"TDLT"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<4sB32sI")
_TAXON = struct.Struct("<q")
_IDENTITY = struct.Struct("<d")
_LEN = struct.Struct("<I")
_HAS_TAXON = 1
_HAS_IDENTITY = 2


def encode(chunk: DeltaChunk) -> bytes:
    """The stored bytes of ``chunk``; a record whose reference is not the chunk's is refused."""
    out = [_HEAD.pack(MAGIC, FORMAT_VERSION, chunk.reference_hash.digest, len(chunk.deltas))]
    for record in chunk.deltas:
        if record.reference_hash != chunk.reference_hash:
            raise StorageError(
                f"delta of '{record.child_id}' is against reference {record.reference_hash.to_hex()}, not the "
                f"chunk's {chunk.reference_hash.to_hex()}: a delta chunk holds the deltas of one reference"
            )
        flags = (_HAS_TAXON if record.taxon_id is not None else 0) | (_HAS_IDENTITY if record.identity is not None else 0)
        out.append(record.child_hash.digest)
        out.append(bytes([flags]))
        if record.taxon_id is not None:
            out.append(_TAXON.pack(record.taxon_id))
        if record.identity is not None:
            out.append(_IDENTITY.pack(record.identity))
        name = record.child_id.encode("utf-8")
        out += [_LEN.pack(len(name)), name, _LEN.pack(len(record.ops)), bytes(record.ops)]
    return b"".join(out)


def decode(data: bytes, where: str) -> DeltaChunk:
    """Parse :func:`encode`'s bytes; ``where`` names the object in the one-line error for bad bytes."""
    if data[:4] != MAGIC:
        raise StorageError(f"{where} is not a delta chunk (it holds another kind of object)")
    try:
        _, version, reference, count = _HEAD.unpack_from(data, 0)
        if version != FORMAT_VERSION:
            raise StorageError(
                f"{where} is a delta chunk of format {version}; this version reads {FORMAT_VERSION}: upgrade talaria-storage"
            )
        ref = SHA256Hash(reference)
        pos = _HEAD.size
        records: list[DeltaRecord] = []
        for _ in range(count):
            child = SHA256Hash(data[pos : pos + 32])
            flags = data[pos + 32]
            pos += 33
            taxon = identity = None
            if flags & _HAS_TAXON:
                (taxon,) = _TAXON.unpack_from(data, pos)
                pos += _TAXON.size
            if flags & _HAS_IDENTITY:
                (identity,) = _IDENTITY.unpack_from(data, pos)
                pos += _IDENTITY.size
            name, pos = _field(data, pos)
            ops, pos = _field(data, pos)
            records.append(DeltaRecord(name.decode("utf-8"), child, ref, ops, taxon, identity))
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as exc:
        raise StorageError(f"{where} is a damaged delta chunk ({exc}): restore it from a remote or re-run reduce") from None
    if pos != len(data):
        raise StorageError(f"{where} is a damaged delta chunk ({len(data) - pos} stray bytes at its end)")
    return DeltaChunk(ref, tuple(records))


def _field(data: bytes, pos: int) -> tuple[bytes, int]:
    (length,) = _LEN.unpack_from(data, pos)
    start = pos + _LEN.size
    if start + length > len(data):
        raise ValueError(f"a field of {length} bytes runs past the end")
    return data[start : start + length], start + length
