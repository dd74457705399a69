"""Reference selection: greedy, longest first, deterministic; identity and coverage over the member."""

from __future__ import annotations

import hashlib
import random

import pytest
from reduction_data import AMINO, families, mutate

from talaria_storage.core.errors import ConfigError
from talaria_storage.reduction.selection import (
    Clustering,
    SelectionParameters,
    SequenceKey,
    align_pair,
    select_references,
)
from talaria_storage.sequences.kmer_filter import (
    encode_sequences,
    link_candidates,
    sample_words,
    word_filter_for,
)

RECORDS = families()


def triple(residues: str, taxon: int | None = None) -> tuple[str, bytes, int | None]:
    data = residues.encode()
    return hashlib.sha256(data).hexdigest(), data, taxon


def key(residues: str, taxon: int | None = None) -> SequenceKey:
    return SequenceKey(hashlib.sha256(residues.encode()).hexdigest(), taxon)


def select(sequences: list[tuple[str, bytes, int | None]], **options: object) -> Clustering:
    processes = options.pop("processes", 0)
    return select_references(sequences, SelectionParameters(**options), processes=processes)  # type: ignore[arg-type]


def family_triples(taxa: bool = False) -> list[tuple[str, bytes, int | None]]:
    return [triple(residues, taxon if taxa else None) for _, residues, taxon in RECORDS]


def random_protein(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(AMINO) for _ in range(length))


def test_each_family_keeps_its_longest_variant_as_its_one_reference() -> None:
    clustering = select(family_triples())
    longest = {key(residues) for accession, residues, _ in RECORDS if accession.endswith("_0")}
    singletons = {key(residues) for accession, residues, _ in RECORDS if accession.startswith("S")}
    assert set(clustering.references) == longest | singletons
    for accession, residues, _ in RECORDS:
        if accession.startswith("F") and not accession.endswith("_0"):
            family = accession.split("_")[0]
            base = next(r for a, r, _ in RECORDS if a == f"{family}_0")
            assert clustering.reference_of(key(residues)) == key(base)


def test_the_result_does_not_depend_on_the_input_order() -> None:
    sequences = family_triples()
    expected = select(sequences)
    for seed in range(5):
        shuffled = sequences[:]
        random.Random(seed).shuffle(shuffled)
        assert select(shuffled) == expected


def test_a_process_pool_gives_the_same_result_as_one_process() -> None:
    assert select(family_triples(), processes=2) == select(family_triples(), processes=0)


def test_identical_sequences_count_once() -> None:
    sequences = family_triples()
    clustering = select(sequences + sequences[:7])
    assert clustering.sequence_count == len(sequences)


def test_every_member_meets_the_identity_and_coverage_it_was_asked_for() -> None:
    clustering = select(family_triples(), identity=0.9, coverage=0.8)
    assert clustering.members
    for membership in clustering.members.values():
        assert membership.identity >= 0.9
        assert membership.coverage >= 0.8


def test_equal_lengths_are_ordered_by_sha256() -> None:
    rng = random.Random(1)
    base = random_protein(rng, 200)
    twin = base[:100] + ("W" if base[100] != "W" else "A") + base[101:]
    clustering = select([triple(base), triple(twin)])
    assert clustering.references == (min(key(base), key(twin)),)


def test_a_variant_below_the_identity_threshold_becomes_a_reference() -> None:
    rng = random.Random(2)
    base = random_protein(rng, 300)
    variant = mutate(rng, base, 0.13)[:299]
    looser = select([triple(base), triple(variant)], identity=0.8)
    stricter = select([triple(base), triple(variant)], identity=0.95)
    assert looser.references == (key(base),)
    assert set(stricter.references) == {key(base), key(variant)}


def test_identity_is_measured_over_the_shorter_sequence() -> None:
    rng = random.Random(3)
    long = random_protein(rng, 600)
    fragment = long[200:400]
    clustering = select([triple(long), triple(fragment)], identity=0.95)
    assert clustering.members[key(fragment)].identity == 1.0
    assert clustering.members[key(fragment)].coverage == 1.0


def test_a_member_overhanging_its_reference_needs_the_coverage() -> None:
    rng = random.Random(4)
    reference = random_protein(rng, 400)
    overhang = reference[-150:] + random_protein(rng, 150)
    covered = select([triple(reference), triple(overhang)], identity=0.45, coverage=0.4)
    uncovered = select([triple(reference), triple(overhang)], identity=0.45, coverage=0.8)
    assert covered.reference_of(key(overhang)) == key(reference)
    assert key(overhang) in uncovered.references


def test_unrelated_sequences_are_all_references() -> None:
    rng = random.Random(5)
    sequences = [triple(random_protein(rng, 150 + i)) for i in range(30)]
    assert len(select(sequences).references) == 30


def test_a_ratio_keeps_at_most_that_fraction_with_the_highest_threshold_that_does() -> None:
    clustering = select_references(family_triples(), SelectionParameters.for_ratio(0.5), processes=0)
    assert clustering.kept_fraction <= 0.5
    stricter = select(family_triples(), identity=round(clustering.identity + 0.01, 2))
    assert stricter.kept_fraction > 0.5


def test_a_ratio_threshold_search_reuses_the_alignments_it_made() -> None:
    clustering = select_references(family_triples(), SelectionParameters.for_ratio(0.3), processes=0)
    statistics = clustering.statistics
    assert statistics.thresholds_tried > 1
    assert statistics.alignment_lookups > statistics.aligned_pairs


def test_taxonomy_aware_members_join_only_a_reference_of_their_own_taxon() -> None:
    clustering = select(family_triples(taxa=True), taxonomy_aware=True)
    for member, membership in clustering.members.items():
        assert member.taxon == membership.reference.taxon
    blind = select(family_triples(taxa=True))
    assert len(clustering.references) > len(blind.references)


def test_a_pinned_sequence_stays_a_reference_and_comes_first() -> None:
    sequences = family_triples()
    member = next(k for k in select(sequences).members)
    clustering = select_references(sequences, SelectionParameters(), processes=0, pinned=[member])
    assert clustering.references[0] == member


def test_a_longer_sequence_joins_a_pinned_shorter_reference_only_when_covered() -> None:
    rng = random.Random(6)
    short = random_protein(rng, 300)
    longer = short + random_protein(rng, 20)
    much_longer = short + random_protein(rng, 300)
    clustering = select_references(
        [triple(short), triple(longer), triple(much_longer)], SelectionParameters(), processes=0, pinned=[key(short)]
    )
    assert clustering.reference_of(key(longer)) == key(short)
    assert key(much_longer) in clustering.references


def test_identity_and_ratio_cannot_both_be_given() -> None:
    with pytest.raises(ConfigError, match="either an identity or a ratio"):
        SelectionParameters(identity=0.9, ratio=0.5)


def test_a_threshold_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"coverage must be in \(0, 1\]"):
        SelectionParameters(coverage=1.5)


def test_a_malformed_input_names_the_sequence() -> None:
    with pytest.raises(ConfigError, match="sequence 2: sha256 must be 32 bytes or 64 hex"):
        select([triple("ACDE"), ("nothex", b"ACDE", None)])
    with pytest.raises(ConfigError, match="residues must be non-empty"):
        select([(hashlib.sha256(b"").hexdigest(), b"", None)])


def test_the_prefilter_links_family_members_and_not_strangers() -> None:
    rng = random.Random(8)
    base = random_protein(rng, 400)
    variant = mutate(rng, base, 0.05)
    stranger = random_protein(rng, 390)
    sequences = [base.encode(), variant.encode(), stranger.encode()]
    word_filter = word_filter_for(0.9, nucleotide=False)
    encoded = encode_sequences(sequences, reduced_alphabet=word_filter.reduced_alphabet)
    candidates = link_candidates([sample_words(encoded, 0, 3, word_filter, None)], 3, word_filter)
    assert list(candidates.of(1)) == [0]
    assert list(candidates.of(2)) == []


def test_unrelated_proteins_pass_a_low_threshold_by_edit_distance_but_not_with_blosum62() -> None:
    rng = random.Random(3)
    pairs = [(random_protein(rng, 190).encode(), random_protein(rng, 200).encode()) for _ in range(10)]
    by_edits = [align_pair(member, reference, 0.22) for member, reference in pairs]
    by_blosum = [align_pair(member, reference, 0.22, protein=True) for member, reference in pairs]
    assert all(found is not None and found[0] >= 0.22 for found in by_edits)
    assert all(found is None or found[0] < 0.22 for found in by_blosum)


def test_a_homologue_keeps_its_identity_under_blosum62() -> None:
    rng = random.Random(4)
    reference = random_protein(rng, 300)
    member = mutate(rng, reference, 0.2)[:290].encode()
    found = align_pair(member, reference.encode(), 0.7, protein=True)
    assert found is not None and 0.75 <= found[0] <= 0.85 and found[1] >= 0.95
