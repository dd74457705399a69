"""Canonical sequences, identity hashes and GA4GH refget identifiers."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.sequences.canonical import (
    InvalidSequenceId,
    SequenceId,
    canonical,
    digests,
    md5_hex,
    parse_sequence_id,
    sequence_id_in,
    refget_id,
    sequence_hash,
    sha512t24u,
)

# Published in the GA4GH VRS / refget documentation: "ACGT" -> SQ.aKF498dAxcJAqme6QYQ7EZ07-fiw8Kw2.
ACGT_REFGET = "SQ.aKF498dAxcJAqme6QYQ7EZ07-fiw8Kw2"
ACGT_MD5 = "f1f8f4bf413b16ad135722aa4591043e"


def test_refget_identifier_matches_the_published_acgt_vector() -> None:
    assert refget_id(b"ACGT") == ACGT_REFGET


def test_md5_matches_the_published_acgt_vector() -> None:
    assert md5_hex(b"ACGT") == ACGT_MD5


def test_sha512t24u_of_empty_input_is_the_truncated_sha512_of_nothing() -> None:
    # SHA-512("") starts cf83e1357eefb8bd...; its first 24 bytes in base64url:
    assert sha512t24u(b"") == "z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXc"


def test_canonical_form_upper_cases_and_drops_whitespace() -> None:
    assert canonical(b"ac gt\r\nN\t*-") == b"ACGTN*-"


def test_soft_masking_and_wrapping_do_not_change_identity() -> None:
    assert sequence_hash(b"acgt\nAC") == sequence_hash(b"ACGTAC")
    assert refget_id(b"ac gt") == ACGT_REFGET


def test_identity_is_sha256_of_the_canonical_bytes() -> None:
    assert sequence_hash(b"acgt") == SHA256Hash(hashlib.sha256(b"ACGT").digest())


def test_digests_bundle_agrees_with_the_single_functions() -> None:
    found = digests(b"acgt ")
    assert (found.sha256, found.refget, found.md5, found.length) == (
        sequence_hash(b"ACGT"),
        ACGT_REFGET,
        ACGT_MD5,
        4,
    )


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("A" * 64, "sha256", "a" * 64),
        (ACGT_REFGET, "refget", ACGT_REFGET),
        ("ga4gh:" + ACGT_REFGET, "refget", ACGT_REFGET),
        ("md5:" + ACGT_MD5.upper(), "md5", ACGT_MD5),
        (ACGT_MD5, "md5", ACGT_MD5),
        ("  " + ACGT_MD5 + "\n", "md5", ACGT_MD5),
    ],
)
def test_lookup_identifiers_are_recognised_and_normalised(text: str, kind: str, value: str) -> None:
    assert parse_sequence_id(text) == SequenceId(kind, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SQ.short",
        "sq.aKF498dAxcJAqme6QYQ7EZ07-fiw8Kw2",
        "md5:xyz",
        "a" * 63,
        "../../etc/passwd",
        "SQ.aKF498dAxcJAqme6QYQ7EZ07-fiw8Kw2/x",
    ],
)
def test_malformed_lookup_identifiers_are_refused(text: str) -> None:
    with pytest.raises(InvalidSequenceId):
        parse_sequence_id(text)


@pytest.mark.parametrize("text", ["P69905", "sp|P69905|HBA_HUMAN", "SQ.short", "a" * 63, ""])
def test_a_name_is_no_sequence_id_and_raises_nothing_there(text: str) -> None:
    assert sequence_id_in(text) is None


def test_a_digest_is_the_same_sequence_id_either_way() -> None:
    for text in ("A" * 64, "ga4gh:" + ACGT_REFGET, "md5:" + ACGT_MD5.upper()):
        assert sequence_id_in(text) == parse_sequence_id(text)


def test_invalid_identifier_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_sequence_id("nope")


def test_parsed_identifier_matches_its_sequence_digests() -> None:
    found = digests(b"ACGT")
    for text in (found.sha256.to_hex(), found.refget, "md5:" + found.md5):
        assert parse_sequence_id(text).matches(found)
    assert not parse_sequence_id("0" * 32).matches(found)


@given(st.binary(max_size=200))
def test_canonicalising_twice_changes_nothing(data: bytes) -> None:
    assert canonical(canonical(data)) == canonical(data)
