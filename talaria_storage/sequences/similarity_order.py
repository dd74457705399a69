"""Where a sequence pack lays out its slots' residues: each sequence beside the one most like it.

A pack's residues are compressed in blocks (1 MiB by default), and zstd
finds a repeat only inside its block. In record order a gene sits next to
unrelated ones while its close homologues are elsewhere in the pack; placed
right after its most similar predecessor, its residues become a few long
matches against that neighbour plus the differences -- a delta against a
reference, written by zstd's own matcher, decoded by decoding one block.

Similarity is judged only by content: two sequences are neighbours when
they share sampled short words (the minimizers of
:mod:`~talaria_storage.sequences.kmer_filter`), never because they have
the same length. Longest first (ties: slot order), each sequence hangs
under the earlier sequence it shares the most words with (ties: the
earlier); the placement is a depth-first walk of that forest, so a family
lies together, its longest member first. The placement depends only on the
pack's sequences, in slot order: the same input gives the same pack.

Finding neighbours costs about 0.2 s per MiB of residues (numpy), so it is
tried only where it can pay: :func:`gains_from_long_matches` first asks
zstd at level 1 (tens of milliseconds a pack) how much smaller the residues
get when matches may reach across the whole pack instead of one block. A
UniProt proteome pack gains 0-1.5 % that way and is left as it is; WoL 16S
packs gain 5-18 %, MMseqs2's example DB 7-8 %. Then the pack is encoded in
both layouts and keeps the smaller
(:func:`~talaria_storage.sequences.sequence_pack.encode_pack_joined`), so
reordering never makes a pack larger. Measured on this project's imports
(``benchmarks/README.md``, "Similarity-ordered packs").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import zstandard

from talaria_storage.core.lazy_module import LazyModule
from talaria_storage.sequences.kmer_filter import (
    WordFilter,
    encode_sequences,
    link_candidates,
    looks_nucleotide,
    sample_words,
)

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy")  # imported on first use: a look-up never needs it (core.lazy_module)

LONG_MATCH_GAIN = 0.03
"""Try a new layout only when whole-pack matching makes the residues at least this much smaller."""

MIN_LINKED = 0.05
"""Below this share of sequences with a similar predecessor the pack keeps its record order untried."""

# Word lengths as for clustering at 90 % (kmer_filter.word_filter_for); a wider window samples
# fewer words (faster) and still finds neighbours for sequences this alike; one candidate is
# all a placement needs, so few links per word.
_NUCLEOTIDE_WORDS = WordFilter(k=15, window=30, neighbours=2, heads=1, min_shared=2, max_candidates=4)
_PROTEIN_WORDS = WordFilter(k=7, window=10, neighbours=2, heads=1, min_shared=2, max_candidates=4)


def gains_from_long_matches(residues: bytes, block_size: int) -> float:
    """How much smaller zstd level 1 makes ``residues`` with one window over all of them than in blocks.

    0.0 means nothing to gain from placing similar sequences together (no
    sequence resembles one in another block); 0.15 means 15 % smaller.
    """
    if len(residues) < 2:
        return 0.0
    fast = zstandard.ZstdCompressor(level=1)
    blocked = sum(len(fast.compress(residues[at : at + block_size])) for at in range(0, len(residues), block_size))
    window = max(zstandard.WINDOWLOG_MIN, min(27, (len(residues) - 1).bit_length()))
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=window, enable_ldm=True)
    whole = len(zstandard.ZstdCompressor(compression_params=params).compress(residues))
    return max(0.0, 1.0 - whole / blocked)


def similarity_order(sequences: Sequence[bytes]) -> list[int] | None:
    """The slots of ``sequences`` in the order their residues should be laid out, or None.

    None when the record order is as good as it gets: fewer than two
    sequences, or fewer than :data:`MIN_LINKED` of them alike enough to any
    other to gain from being its neighbour.
    """
    count = len(sequences)
    if count < 2:
        return None
    by_length = sorted(range(count), key=lambda slot: (-len(sequences[slot]), slot))
    ordered = [sequences[slot] for slot in by_length]
    nucleotide = looks_nucleotide(ordered)
    words = _NUCLEOTIDE_WORDS if nucleotide else _PROTEIN_WORDS
    encoded = encode_sequences(ordered)
    fitting = min(words.k, 64 // encoded.bits)  # an input with many letters gets shorter words
    if fitting != words.k:
        words = replace(words, k=fitting)
    candidates = link_candidates([sample_words(encoded, 0, count, words, None)], count, words)
    children: list[list[int]] = [[] for _ in range(count)]
    roots: list[int] = []
    starts, targets, shared = candidates.starts, candidates.targets, candidates.shared
    linked = 0
    for position in range(count):
        first, last = int(starts[position]), int(starts[position + 1])
        if first == last:
            roots.append(position)
            continue
        # targets ascend, so argmax's first maximum is the earliest of the most similar
        children[int(targets[first + int(np.argmax(shared[first:last]))])].append(position)
        linked += 1
    if linked < MIN_LINKED * count:
        return None
    placement: list[int] = []
    for root in roots:
        stack = [root]
        while stack:
            position = stack.pop()
            placement.append(by_length[position])
            stack.extend(reversed(children[position]))
    if placement == list(range(count)):
        return None
    return placement
