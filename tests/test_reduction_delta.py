"""The delta codec: lossless for any pair, in either form; the text form of ``deltas.dat``; clear errors."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reduction_data import AMINO, mutate

from talaria_storage.reduction import delta
from talaria_storage.reduction.delta import DeltaError, DeltaForm, Edit

FORMS = [DeltaForm.EDIT_SCRIPT, DeltaForm.ZSTD_PREFIX, None]
ALPHABETS = {
    "protein": b"ACDEFGHIKLMNPQRSTVWYXBZJUO*-",
    "nucleotide": b"ACGTNacgtn",
    "iupac": b"ACGTURYSWKMBDHVN-.",
    "bytes": bytes(range(256)),
}

residues = st.sampled_from(sorted(ALPHABETS)).flatmap(lambda name: st.binary(max_size=400).map(
    lambda raw, alphabet=ALPHABETS[name]: bytes(alphabet[b % len(alphabet)] for b in raw)))


@st.composite
def mutated_pairs(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A reference and a child made from it by substitutions, indels, case changes and block moves."""
    reference = draw(st.text(alphabet=AMINO, min_size=1, max_size=600)).encode()
    child = bytearray(reference)
    for _ in range(draw(st.integers(0, 12))):
        at = draw(st.integers(0, len(child)))
        kind = draw(st.sampled_from("SIDLB"))
        size = draw(st.integers(1, 20))
        if kind == "S" and at < len(child):
            child[at] = draw(st.sampled_from(AMINO)).encode()[0]
        elif kind == "I":
            child[at:at] = draw(st.text(alphabet=AMINO, min_size=1, max_size=size)).encode()
        elif kind == "D":
            del child[at:at + size]
        elif kind == "L":
            child[at:at + size] = child[at:at + size].lower()
        else:  # a block copied from elsewhere in the reference
            start = draw(st.integers(0, len(reference) - 1))
            child[at:at] = reference[start:start + size * 5]
    return reference, bytes(child)


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name if f else "smaller")
@settings(max_examples=120, deadline=None)
@given(reference=residues, child=residues)
def test_any_two_sequences_round_trip(form: DeltaForm | None, reference: bytes, child: bytes) -> None:
    assert delta.decode(reference, delta.encode(reference, child, form)) == child


@pytest.mark.parametrize("form", FORMS, ids=lambda f: f.name if f else "smaller")
@settings(max_examples=120, deadline=None)
@given(pair=mutated_pairs())
def test_mutated_pairs_round_trip(form: DeltaForm | None, pair: tuple[bytes, bytes]) -> None:
    reference, child = pair
    assert delta.decode(reference, delta.encode(reference, child, form)) == child


def test_family_variants_round_trip_and_stay_small() -> None:
    rng = random.Random(3)
    reference = "".join(rng.choice(AMINO) for _ in range(400))
    for _ in range(50):
        child = mutate(rng, reference, 0.05).encode()
        encoded = delta.encode(reference.encode(), child)
        assert delta.decode(reference.encode(), encoded) == child
        assert len(encoded) < len(child) / 4


def test_the_smaller_form_is_kept() -> None:
    rng = random.Random(5)
    reference = "".join(rng.choice(AMINO) for _ in range(300)).encode()
    for child in (mutate(rng, reference.decode(), 0.03).encode(), reference[150:] + reference[:150]):
        sizes = {form: len(delta.encode(reference, child, form)) for form in FORMS[:2]}
        assert len(delta.encode(reference, child)) == min(sizes.values())


def test_a_rearranged_child_is_smaller_as_zstd_prefix() -> None:
    rng = random.Random(11)
    reference = "".join(rng.choice(AMINO) for _ in range(400)).encode()
    child = reference[200:] + reference[:200]
    assert delta.encode(reference, child)[0] == DeltaForm.ZSTD_PREFIX


def test_a_few_substitutions_are_smaller_as_an_edit_script() -> None:
    rng = random.Random(13)
    reference = "".join(rng.choice(AMINO) for _ in range(400)).encode()
    child = reference[:100] + (b"W" if reference[100:101] != b"W" else b"A") + reference[101:]
    assert delta.encode(reference, child)[0] == DeltaForm.EDIT_SCRIPT


@settings(max_examples=60, deadline=None)
@given(pair=mutated_pairs())
def test_encoding_is_deterministic(pair: tuple[bytes, bytes]) -> None:
    reference, child = pair
    assert delta.encode(reference, child) == delta.encode(bytes(reference), bytes(child))


@settings(max_examples=150, deadline=None)
@given(reference=residues, child=residues)
def test_the_text_form_round_trips(reference: bytes, child: bytes) -> None:
    text = delta.format_edits(delta.edit_script(reference, child))
    assert not set(text) & {"\t", "\n", "\r", " "}
    assert delta.apply_edits(reference, delta.parse_edits(text, "here")) == child


def test_the_text_form_reads_as_documented() -> None:
    edits = (Edit("S", 12, b"AC"), Edit("I", 40, b"G,G"), Edit("D", 77, length=3))
    assert delta.format_edits(edits) == "S12:AC,I40:G%2CG,D77:3"
    assert delta.format_edits(()) == "="
    assert delta.parse_edits("S12:AC,I40:G%2CG,D77:3", "x") == edits


def test_an_identical_child_has_the_empty_script() -> None:
    assert delta.edit_script(b"ACGT", b"ACGT") == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty edit script"),
        ("Q1:A", "is not S<pos>"),
        ("S1:", "needs at least one residue"),
        ("D4:x", "is not a decimal number"),
        ("S9:A,S3:C", "out of order"),
        ("S1:%G1", "two upper-case hex digits"),
        ("I1:A B", "must be written %20"),
    ],
)
def test_malformed_text_names_the_place_and_the_problem(text: str, says: str) -> None:
    with pytest.raises(DeltaError, match=says) as caught:
        delta.parse_edits(text, "deltas.dat line 7")
    assert str(caught.value).startswith("deltas.dat line 7: ")
    assert says in caught.value.problem


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (b"", "empty"),
        (b"\x07abc", "unknown form byte 7"),
        (b"\x01", "at least 3 bytes"),
        (b"\x01\x05\x00", "payload flag"),
        (b"\x02\x00", "does not parse|impossible content size|does not decode"),
    ],
)
def test_a_malformed_delta_is_refused_with_its_name(bad: bytes, says: str) -> None:
    with pytest.raises(DeltaError, match=f"chunk 3f2a member 9: .*({says})"):
        delta.decode(b"ACGT", bad, where="chunk 3f2a member 9")


@pytest.mark.parametrize("form", FORMS[:2], ids=lambda f: f.name)
def test_a_truncated_delta_is_refused_not_misread(form: DeltaForm) -> None:
    rng = random.Random(17)
    reference = "".join(rng.choice(AMINO) for _ in range(300)).encode()
    child = mutate(rng, reference.decode(), 0.1).encode()
    encoded = delta.encode(reference, child, form)
    for cut in range(1, len(encoded)):
        with pytest.raises(DeltaError):
            delta.decode(reference, encoded[:cut], where=f"cut at {cut}")


def test_an_edit_script_for_another_reference_is_refused() -> None:
    encoded = delta.encode(b"ACGTACGTACGT" * 10, b"ACGTACGTACGA" * 10, DeltaForm.EDIT_SCRIPT)
    with pytest.raises(DeltaError, match="does not fit this 4-residue reference"):
        delta.decode(b"ACGT", encoded, where="m")


def test_an_edit_names_what_is_wrong_with_it() -> None:
    with pytest.raises(DeltaError, match="a D edit at 3 takes a length > 0"):
        Edit("D", 3)
    with pytest.raises(DeltaError, match="edit op must be"):
        Edit("X", 0, b"A")  # type: ignore[arg-type]


def test_above_the_alignment_limit_only_zstd_prefix_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delta, "EDIT_SCRIPT_MAX_LENGTH", 100)
    reference = b"ACDEFGHIKL" * 20
    child = reference[:50] + b"W" + reference[51:]
    assert delta.encode(reference, child)[0] == DeltaForm.ZSTD_PREFIX
    assert delta.encode(reference, child, DeltaForm.EDIT_SCRIPT)[0] == DeltaForm.EDIT_SCRIPT
