"""Hash strings and object keys from outside are validated before they touch storage."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talaria_storage.core.errors import InvalidHash, InvalidKey
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import ref_key, validate_key, validate_name
from talaria_storage.storage.registry import parse_location

GOOD = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize(
    "text",
    ["../../etc/passwd", GOOD[:63], GOOD + "0", "g" * 64, " " + GOOD[1:], GOOD[:-1] + "\n", "", "0x" + GOOD[2:]],
)
def test_from_hex_rejects_anything_but_64_hex_characters(text: str) -> None:
    with pytest.raises(InvalidHash, match="64 hexadecimal"):
        SHA256Hash.from_hex(text)


def test_from_hex_accepts_upper_case_and_gives_lower_case_back() -> None:
    assert SHA256Hash.from_hex(GOOD.upper()).to_hex() == GOOD


@given(st.binary(max_size=256))
def test_hex_round_trips(data: bytes) -> None:
    h = SHA256Hash.compute(data)
    assert SHA256Hash.from_hex(h.to_hex()) == h


def test_a_digest_must_be_32_bytes() -> None:
    with pytest.raises(InvalidHash):
        SHA256Hash(b"short")


def test_invalid_hash_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        SHA256Hash.from_hex("nope")


@pytest.mark.parametrize("key", ["chunks/" + GOOD, "refs/uniprot/2024_01", "refs/db/HEAD", "state/op-1", "store.json"])
def test_well_formed_keys_are_accepted(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "with space"])
def test_user_names_cannot_escape_their_segment(name: str) -> None:
    with pytest.raises(InvalidKey):
        validate_name(name)


def test_ref_keys_validate_database_and_version() -> None:
    assert ref_key("uniprot", "2024_01") == "refs/uniprot/2024_01"
    with pytest.raises(InvalidKey):
        ref_key("../uniprot", "v1")


@pytest.mark.parametrize(
    ("location", "scheme", "netloc", "path"),
    [
        ("/data/store", "file", "", "/data/store"),
        ("file:///data/store", "file", "", "/data/store"),
        ("rocksdb:///var/db", "rocksdb", "", "/var/db"),
        ("s3://bucket/some/prefix", "s3", "bucket", "/some/prefix"),
        ("gs://bucket", "gs", "bucket", ""),
        ("az://container/p", "az", "container", "/p"),
        ("memory://", "memory", "", ""),
    ],
)
def test_locations_parse_into_scheme_bucket_and_path(location: str, scheme: str, netloc: str, path: str) -> None:
    loc = parse_location(location)
    assert (loc.scheme, loc.netloc, loc.path) == (scheme, netloc, path)
