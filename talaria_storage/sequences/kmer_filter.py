"""The short-word prefilter of reference selection: which pairs are worth an alignment.

Greedy clustering (:mod:`talaria_storage.reduction.selection`) would have to
align every sequence against every reference chosen before it; CD-HIT avoids
that by counting the short words (k-mers) a sequence shares with each
reference and aligning only those that share enough. This module does the
same for a whole set at once, in numpy, in linear time, the way MMseqs2's
linclust does it:

1. **Words.** Every sequence is cut into overlapping words of ``k`` residues
   (coded in ``bits`` bits per residue; a word never spans two sequences).
2. **Sampling.** Of each run of ``window`` consecutive words only the one with
   the smallest hash is kept (a *minimizer*). Two sequences that share a
   stretch share its minimizers, whatever the rest of them looks like, so a
   fragment still finds its full-length reference; and about
   ``2 / (window + 1)`` of all words remain.
3. **Links.** The sampled words are sorted by (word, position in the
   selection order). Inside the run of one word, each sequence is linked to
   the ``neighbours`` sequences just before it (those of about its length)
   and to the ``heads`` first ones (the longest). Only earlier sequences are
   linked, because greedy clustering only ever compares a sequence with
   references chosen before it. A common word (low complexity, a large
   family) therefore costs a bounded number of links, never a quadratic
   number of pairs.
4. **Counting.** A pair's links are counted: that is the number of sampled
   words the two share. Pairs that share at least ``min_shared`` of them are
   the candidates, at most ``max_candidates`` per sequence (those that share
   the most).

Like every k-mer prefilter at these speeds (CD-HIT's and linclust's too) it
is a heuristic: a pair can be similar enough and share no sampled word, most
often below 60 % identity. :func:`word_filter_for` picks settings that keep
the pairs CD-HIT finds (measured in ``benchmarks/bench_reduce.py``).

Terms: *position* is a sequence's place in the selection order (0 = longest);
*word* is a k-mer's integer code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from talaria_storage.core.lazy_module import LazyModule

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy")  # imported on first use: a look-up never needs it (core.lazy_module)

# Murphy, Wallqvist & Levy's 10-letter protein alphabet (Protein Eng. 13:149, 2000): residues
# that substitute for one another share a letter, so a word survives a conservative
# substitution. Used below 70 % identity, where exact words of the 20-letter alphabet rarely
# survive.
REDUCED_PROTEIN_GROUPS: tuple[bytes, ...] = (
    b"LVIM", b"C", b"A", b"G", b"ST", b"P", b"FYW", b"EDNQ", b"KR", b"H",
)

_NUCLEOTIDE_LETTERS = b"ACGTUN"
# Plain integers, made numpy's uint64 where used: a numpy scalar here would import numpy with the module.
_GOLDEN = 0x9E3779B97F4A7C15
_MIX = 0xBF58476D1CE4E5B9
_GROUP_MIX = 0x94D049BB133111EB


@dataclass(frozen=True, slots=True)
class WordFilter:
    """Settings of the prefilter (see the module docstring for what each step does)."""

    k: int
    window: int
    neighbours: int
    heads: int
    min_shared: int
    max_candidates: int
    reduced_alphabet: bool = False

    def __post_init__(self) -> None:
        for name in ("k", "window", "min_shared", "max_candidates"):
            if getattr(self, name) < 1:
                raise ValueError(f"word filter {name} must be at least 1, got {getattr(self, name)}")
        if self.neighbours < 0 or self.heads < 0 or self.neighbours + self.heads == 0:
            raise ValueError("word filter needs at least one neighbour or head link per word")


def looks_nucleotide(sequences: Sequence[bytes]) -> bool:
    """True when nearly all letters of a sample are A, C, G, T, U or N (either case): use nucleotide words."""
    sample = b"".join(sequences[:: max(1, len(sequences) // 200)]).upper()[:1_000_000]
    if not sample:
        return False
    common = sum(sample.count(bytes([letter])) for letter in _NUCLEOTIDE_LETTERS)
    return common >= 0.9 * len(sample)


def word_filter_for(identity: float, *, nucleotide: bool) -> WordFilter:
    """Prefilter settings for clustering at ``identity``.

    A word of ``k`` residues survives identity ``c`` with probability about
    ``c**k``; the word must be long enough to be rare in a large set by chance
    and short enough to survive. Proteins: 7 residues above 80 % (0.9**7 =
    0.48 survive), 6 above 70 %, then 5 letters of the reduced alphabet.
    Nucleotides (4 letters, so longer words for the same rarity): 15 above
    90 %, 12 above 80 %, then 10.
    """
    if nucleotide:
        k = 15 if identity >= 0.9 else 12 if identity >= 0.8 else 10
        return WordFilter(k=k, window=10, neighbours=4, heads=2, min_shared=2, max_candidates=30)
    if identity >= 0.8:
        return WordFilter(k=7, window=8, neighbours=4, heads=2, min_shared=2, max_candidates=30)
    if identity >= 0.7:
        return WordFilter(k=6, window=6, neighbours=4, heads=2, min_shared=2, max_candidates=40)
    return WordFilter(
        k=5, window=4, neighbours=6, heads=2, min_shared=2, max_candidates=60, reduced_alphabet=True
    )


@dataclass(frozen=True, slots=True)
class EncodedSequences:
    """Sequences in selection order as one array of small residue codes.

    ``codes`` holds every sequence back to back; sequence ``p`` is
    ``codes[offsets[p]:offsets[p + 1]]``. ``bits`` is the width of one code.
    """

    codes: np.ndarray
    offsets: np.ndarray
    bits: int

    @property
    def count(self) -> int:
        return len(self.offsets) - 1


def encode_sequences(sequences: Sequence[bytes], *, reduced_alphabet: bool = False) -> EncodedSequences:
    """Code ``sequences`` (already in selection order) for word counting.

    Letters are compared case-insensitively. Each distinct letter gets its own
    code, the most frequent first; past 31 letters the rarest share the last
    code (they are rare, so merging them loses nothing a filter needs). With
    ``reduced_alphabet`` the protein letters of one
    :data:`REDUCED_PROTEIN_GROUPS` group share a code.
    """
    joined = np.frombuffer(b"".join(sequences), dtype=np.uint8)
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    upper = np.arange(256, dtype=np.uint8)
    upper[ord("a") : ord("z") + 1] -= 32
    letters = upper[joined]
    if reduced_alphabet:
        merged = upper.copy()
        for group in REDUCED_PROTEIN_GROUPS:
            merged[list(group)] = group[0]
        letters = merged[letters]
    frequency = np.bincount(letters, minlength=256)
    by_frequency = np.argsort(-frequency, kind="stable")
    present = int(np.count_nonzero(frequency))
    lut = np.zeros(256, dtype=np.uint8)
    lut[by_frequency] = np.minimum(np.arange(256), 31).astype(np.uint8)
    bits = max(1, math.ceil(math.log2(max(2, min(present, 32)))))
    return EncodedSequences(lut[letters], offsets, bits)


@dataclass(frozen=True, slots=True)
class SampledWords:
    """The minimizer words of a range of sequences: ``words[i]`` occurs in sequence ``positions[i]``."""

    words: np.ndarray
    positions: np.ndarray


def sample_words(
    encoded: EncodedSequences, first: int, last: int, word_filter: WordFilter, groups: np.ndarray | None = None
) -> SampledWords:
    """The minimizer words of sequences ``first`` to ``last - 1`` (steps 1 and 2).

    With ``groups`` (one integer per position), each word is mixed with its
    sequence's group so that words only ever meet inside a group: this is how
    taxonomy-aware selection keeps taxa apart at no extra cost.
    """
    k, bits, window = word_filter.k, encoded.bits, word_filter.window
    if k * bits > 64:
        raise ValueError(f"a word of {k} residues of {bits} bits does not fit in 64 bits")
    start, stop = int(encoded.offsets[first]), int(encoded.offsets[last])
    codes = encoded.codes[start:stop].astype(np.uint64)
    count = len(codes) - k + 1
    if count < 1:
        return SampledWords(np.zeros(0, np.uint64), np.zeros(0, np.int32))
    words = np.zeros(count, dtype=np.uint64)
    for j in range(k):
        words <<= np.uint64(bits)
        words |= codes[j : j + count]
    lengths = np.diff(encoded.offsets[first : last + 1])
    local_ends = encoded.offsets[first + 1 : last + 1] - start
    positions = np.repeat(np.arange(first, last, dtype=np.int32), lengths)[:count]
    valid = np.arange(count, dtype=np.int64) + k <= np.repeat(local_ends, lengths)[:count]
    if groups is not None:
        words = words * np.uint64(_GROUP_MIX) + groups[positions].astype(np.uint64)
    hashes = _mix64(words)
    hashes[~valid] = np.uint64(np.iinfo(np.uint64).max)
    chosen = valid & (hashes == _window_max(_window_min(hashes, window), window, count))
    return SampledWords(words[chosen], positions[chosen])


def _mix64(values: np.ndarray) -> np.ndarray:
    """A 64-bit mixing hash (splitmix64's finaliser), so minimizers are spread over word space."""
    x = values * np.uint64(_GOLDEN)
    x ^= x >> np.uint64(30)
    x *= np.uint64(_MIX)
    x ^= x >> np.uint64(27)
    return x


def _window_min(values: np.ndarray, window: int) -> np.ndarray:
    """``out[j] = min(values[j : j + window])`` for every full window, by doubling (log window passes)."""
    window = min(window, len(values))
    span, current = 1, values
    while span * 2 <= window:
        current = np.minimum(current[:-span], current[span:])
        span *= 2
    return np.minimum(current[: len(values) - window + 1], current[window - span :][: len(values) - window + 1])


def _window_max(window_min: np.ndarray, window: int, count: int) -> np.ndarray:
    """For each word position, the largest window minimum among the windows that contain it.

    A word is a minimizer exactly when its hash equals that value.
    """
    window = min(window, count)
    pad = np.zeros(window - 1, dtype=window_min.dtype)
    padded = np.concatenate([pad, window_min, pad])
    span, current = 1, padded
    while span * 2 <= window:
        current = np.maximum(current[:-span], current[span:])
        span *= 2
    return np.maximum(current[:count], current[window - span :][:count])


@dataclass(frozen=True, slots=True)
class CandidatePairs:
    """Candidates per sequence, in compressed-row form.

    The candidates of position ``q`` are ``targets[starts[q]:starts[q + 1]]``:
    earlier positions, ascending (greedy clustering tries references in
    selection order), with ``shared[...]`` the number of sampled words shared.
    """

    starts: np.ndarray
    targets: np.ndarray
    shared: np.ndarray

    @property
    def pair_count(self) -> int:
        return len(self.targets)

    def of(self, query: int) -> np.ndarray:
        return self.targets[self.starts[query] : self.starts[query + 1]]


def link_candidates(sampled: Sequence[SampledWords], count: int, word_filter: WordFilter) -> CandidatePairs:
    """Steps 3 and 4: link sequences that share sampled words, count, keep the best per sequence.

    ``sampled`` are the outputs of :func:`sample_words` for consecutive ranges,
    in order, so positions ascend; ``count`` is the number of sequences.
    """
    words = np.concatenate([s.words for s in sampled]) if sampled else np.zeros(0, np.uint64)
    positions = np.concatenate([s.positions for s in sampled]) if sampled else np.zeros(0, np.int32)
    order = np.argsort(words, kind="stable")  # stable: positions stay ascending inside a word
    words, positions = words[order], positions[order]
    repeat = np.zeros(len(words), dtype=bool)
    repeat[1:] = (words[1:] == words[:-1]) & (positions[1:] == positions[:-1])
    words, positions = words[~repeat], positions[~repeat]  # a word counts once per sequence
    n = len(words)
    index = np.arange(n, dtype=np.int64)
    starts_run = np.ones(n, dtype=bool)
    starts_run[1:] = words[1:] != words[:-1]
    run_start = np.maximum.accumulate(np.where(starts_run, index, 0))
    links: list[np.ndarray] = []
    for back in range(1, word_filter.neighbours + 1):
        same = index[back:] - back >= run_start[back:]
        links.append(_pair_codes(positions[back:][same], positions[:-back][same], count))
    for head in range(word_filter.heads):
        source = run_start + head
        # heads already reached as neighbours are not linked twice (a word counts once per pair)
        usable = source < index - word_filter.neighbours
        links.append(_pair_codes(positions[usable], positions[source[usable]], count))
    codes = np.concatenate(links) if links else np.zeros(0, np.int64)
    pairs, shared = np.unique(codes, return_counts=True)
    keep = shared >= word_filter.min_shared
    pairs, shared = pairs[keep], shared[keep].astype(np.int32)
    queries = pairs // count
    targets = (pairs % count).astype(np.int32)
    queries, targets, shared = _best_per_query(queries, targets, shared, word_filter.max_candidates)
    starts = np.searchsorted(queries, np.arange(count + 1, dtype=np.int64)).astype(np.int64)
    return CandidatePairs(starts, targets, shared)


def _pair_codes(queries: np.ndarray, targets: np.ndarray, count: int) -> np.ndarray:
    return queries.astype(np.int64) * count + targets.astype(np.int64)


def _best_per_query(
    queries: np.ndarray, targets: np.ndarray, shared: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep each query's ``limit`` candidates that share the most words (ties: earlier target).

    Input and output are sorted by (query, target).
    """
    if len(queries) == 0:
        return queries, targets, shared
    rank_order = np.lexsort((targets, -shared, queries))
    q_sorted = queries[rank_order]
    first = np.searchsorted(q_sorted, q_sorted, side="left")
    rank = np.arange(len(q_sorted)) - first
    chosen = np.sort(rank_order[rank < limit])  # back to (query, target) order
    return queries[chosen], targets[chosen], shared[chosen]
