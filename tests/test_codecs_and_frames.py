"""Codecs and frames: properties over arbitrary bytes, and every way a frame can be bad."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talaria_storage.core.errors import CompressionError, ConfigError
from talaria_storage.storage import frame
from talaria_storage.storage.codecs import (
    CODECS,
    Codec,
    Lz4Codec,
    NoneCodec,
    SnappyCodec,
    ZstdCodec,
    codec_from_config,
)

ALL_CODECS = [NoneCodec(), ZstdCodec(1), ZstdCodec(3), ZstdCodec(22), Lz4Codec(), SnappyCodec()]
codecs = st.sampled_from(ALL_CODECS)
payloads = st.one_of(
    st.binary(max_size=4096),
    st.text(alphabet="ACGTN\n>", max_size=8192).map(str.encode),
)


@settings(max_examples=150, deadline=None)
@given(data=payloads, codec=codecs)
def test_every_frame_decodes_to_the_bytes_it_encoded(data: bytes, codec: Codec) -> None:
    decoded, header = frame.decode(frame.encode(data, codec))
    assert decoded == data
    assert header.size == len(data) and header.codec == codec


@settings(max_examples=150, deadline=None)
@given(data=payloads, codec=codecs, cut=st.integers(min_value=0))
def test_a_truncated_frame_never_decodes_to_other_bytes(data: bytes, codec: Codec, cut: int) -> None:
    framed = frame.encode(data, codec)
    shorter = framed[: cut % max(1, len(framed))]
    try:
        decoded, _ = frame.decode(shorter)
    except CompressionError:
        return
    assert decoded == data  # only possible when nothing meaningful was cut


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=1, max_size=2048), codec=codecs)
def test_codec_dicts_round_trip(data: bytes, codec: Codec) -> None:
    assert Codec.from_dict(codec.to_dict()) == codec


def test_frame_header_is_sixteen_bytes() -> None:
    assert frame.HEADER_SIZE == 16
    assert frame.encode(b"", NoneCodec()) [:4] == frame.MAGIC


def test_wrong_magic_is_not_a_frame() -> None:
    with pytest.raises(CompressionError, match="not a chunk frame"):
        frame.decode(b"XXXX" + frame.encode(b"abc", NoneCodec())[4:])


def test_a_newer_format_version_is_refused_with_an_upgrade_hint() -> None:
    framed = frame.encode(b"abc", NoneCodec())
    with pytest.raises(CompressionError, match="upgrade"):
        frame.decode(framed[:4] + bytes([2]) + framed[5:])


def test_an_absurd_declared_length_is_refused_before_allocating() -> None:
    framed = frame.encode(b"abc", ZstdCodec())
    lying = framed[:8] + struct.pack("<Q", 1 << 50) + framed[16:]
    with pytest.raises(CompressionError, match="corrupt"):
        frame.decode(lying)


def test_a_length_that_disagrees_with_the_payload_is_refused() -> None:
    framed = frame.encode(b"abcdef", ZstdCodec())
    lying = framed[:8] + struct.pack("<Q", 3) + framed[16:]
    with pytest.raises(CompressionError):
        frame.decode(lying)


@pytest.mark.parametrize("level", [0, 23, -1])
def test_zstd_levels_outside_1_to_22_are_config_errors(level: int) -> None:
    with pytest.raises(ConfigError, match="1-22"):
        ZstdCodec(level)


def test_an_unknown_codec_name_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError, match="zstd"):
        codec_from_config("brotli")


def test_codec_from_config_applies_the_level_to_zstd() -> None:
    assert codec_from_config("zstd", 19) == ZstdCodec(19)
    assert codec_from_config("lz4") == Lz4Codec()


def test_codec_ids_are_unique() -> None:
    assert len({cls.id for cls in CODECS.values()}) == len(CODECS)
