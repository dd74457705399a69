"""Codecs: how a chunk's bytes are compressed inside its frame.

A codec is a frozen dataclass that validates its parameters and round-trips
through ``to_dict`` / ``from_dict`` (as zarr's codecs do), so ``storage.toml``
and the frame header name the same thing. Each has a one-byte id written in
the frame; ids are part of the on-disk format and never reused.

==========  ==  ===========================================================
name        id  parameters
==========  ==  ===========================================================
none         0  -
zstd         1  level 1-22 (python-zstandard; levels above 19 are "ultra")
lz4          2  - (LZ4 block format; the frame records the length)
snappy       3  - (raw Snappy via python-snappy)
==========  ==  ===========================================================

Compressor objects of python-zstandard are not thread-safe, so each thread
keeps its own (``threading.local``) rather than building one per call, which
costs more than compressing a small chunk.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from talaria_storage.core.errors import CompressionError, ConfigError

ZSTD_MIN_LEVEL = 1
ZSTD_MAX_LEVEL = 22
DEFAULT_ZSTD_LEVEL = 3


class Codec(ABC):
    """A compression scheme for one frame payload."""

    name: ClassVar[str]
    id: ClassVar[int]

    @property
    def parameter(self) -> int:
        """The one-byte parameter written in the frame header (0 when unused)."""
        return 0

    @abstractmethod
    def compress(self, data: bytes) -> bytes:
        """Compress ``data``."""

    @abstractmethod
    def decompress(self, payload: bytes | memoryview, size: int) -> bytes:
        """Decompress ``payload`` (any bytes-like object) that must expand to exactly ``size`` bytes."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    @staticmethod
    def from_dict(spec: dict[str, Any]) -> "Codec":
        """Build a codec from ``{"name": ..., "level": ...}``; :class:`ConfigError` when invalid."""
        params = dict(spec)
        name = params.pop("name", None)
        if name not in CODECS:
            raise ConfigError(f"unknown codec {name!r}: use one of {', '.join(CODECS)}")
        try:
            return CODECS[name](**params)
        except TypeError as exc:
            raise ConfigError(f"codec '{name}' does not take parameters {sorted(params)}") from exc


@dataclass(frozen=True)
class NoneCodec(Codec):
    """Stores the bytes as they are (for data that is already compressed)."""

    name: ClassVar[str] = "none"
    id: ClassVar[int] = 0

    def compress(self, data: bytes) -> bytes:
        return bytes(data)

    def decompress(self, payload: bytes | memoryview, size: int) -> bytes:
        if len(payload) != size:
            raise CompressionError(f"stored payload is {len(payload)} bytes, header says {size}")
        return bytes(payload)


_ZSTD_LOCAL = threading.local()


@dataclass(frozen=True)
class ZstdCodec(Codec):
    """Zstandard at a fixed level (1-22)."""

    level: int = DEFAULT_ZSTD_LEVEL
    name: ClassVar[str] = "zstd"
    id: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if not isinstance(self.level, int) or isinstance(self.level, bool) or not (
            ZSTD_MIN_LEVEL <= self.level <= ZSTD_MAX_LEVEL
        ):
            raise ConfigError(
                f"zstd level {self.level!r} is out of range: zstd levels are {ZSTD_MIN_LEVEL}-{ZSTD_MAX_LEVEL}"
            )

    @property
    def parameter(self) -> int:
        return self.level

    def _compressor(self):  # noqa: ANN202 - zstandard has no stubs
        import zstandard

        cache = getattr(_ZSTD_LOCAL, "compressors", None)
        if cache is None:
            cache = _ZSTD_LOCAL.compressors = {}
        comp = cache.get(self.level)
        if comp is None:
            comp = cache[self.level] = zstandard.ZstdCompressor(level=self.level, write_content_size=True)
        return comp

    def compress(self, data: bytes) -> bytes:
        return self._compressor().compress(data)

    def decompress(self, payload: bytes | memoryview, size: int) -> bytes:
        import zstandard

        decomp = getattr(_ZSTD_LOCAL, "decompressor", None)
        if decomp is None:
            decomp = _ZSTD_LOCAL.decompressor = zstandard.ZstdDecompressor()
        try:
            out = decomp.decompress(payload, max_output_size=size)
        except zstandard.ZstdError as exc:
            raise CompressionError(f"zstd payload is corrupt: {exc}") from exc
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "level": self.level}


@dataclass(frozen=True)
class Lz4Codec(Codec):
    """LZ4 block format: fast, modest ratio."""

    name: ClassVar[str] = "lz4"
    id: ClassVar[int] = 2

    def compress(self, data: bytes) -> bytes:
        import lz4.block

        return lz4.block.compress(data, store_size=False)

    def decompress(self, payload: bytes | memoryview, size: int) -> bytes:
        import lz4.block

        try:
            return lz4.block.decompress(payload, uncompressed_size=size)
        except lz4.block.LZ4BlockError as exc:
            raise CompressionError(f"lz4 payload is corrupt: {exc}") from exc


@dataclass(frozen=True)
class SnappyCodec(Codec):
    """Raw Snappy: fastest, lowest ratio."""

    name: ClassVar[str] = "snappy"
    id: ClassVar[int] = 3

    def compress(self, data: bytes) -> bytes:
        import snappy

        return snappy.compress(data)

    def decompress(self, payload: bytes | memoryview, size: int) -> bytes:
        import snappy

        try:
            return snappy.decompress(payload)
        except Exception as exc:  # python-snappy raises several unrelated types
            raise CompressionError(f"snappy payload is corrupt: {exc}") from exc


CODECS: dict[str, type[Codec]] = {
    "none": NoneCodec,
    "zstd": ZstdCodec,
    "lz4": Lz4Codec,
    "snappy": SnappyCodec,
}
CODECS_BY_ID: dict[int, type[Codec]] = {cls.id: cls for cls in CODECS.values()}


def codec_from_config(name: str, level: int | None = None) -> Codec:
    """The codec ``storage.toml`` names; ``level`` applies to zstd only."""
    if name not in CODECS:
        raise ConfigError(f"unknown compression '{name}': use one of {', '.join(CODECS)}")
    if name == "zstd":
        return ZstdCodec(DEFAULT_ZSTD_LEVEL if level is None else level)
    return CODECS[name]()


def codec_from_header(codec_id: int, parameter: int) -> Codec:
    """The codec a frame header names; :class:`CompressionError` for an unknown id."""
    cls = CODECS_BY_ID.get(codec_id)
    if cls is None:
        raise CompressionError(f"unknown codec id {codec_id} in frame header (written by a newer version?)")
    if cls is ZstdCodec:
        try:
            return ZstdCodec(parameter)
        except ConfigError as exc:
            raise CompressionError(f"frame header has invalid zstd level {parameter}") from exc
    return cls()
