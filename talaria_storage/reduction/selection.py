"""Reference selection: greedy incremental clustering, as CD-HIT does it.

Given distinct sequences, choose *references* so that every other sequence
(a *member*) is similar enough to one of them, and say which:

1. **Order.** Longest first; equal lengths by SHA-256 (then taxon), so the
   result depends only on the set of sequences, never on the input order.
2. **Prefilter.** :mod:`talaria_storage.sequences.kmer_filter` finds, for
   each sequence, the earlier sequences that share enough sampled short
   words; only those pairs are ever aligned.
3. **Align.** Each candidate pair is aligned with edlib (a C library, never a
   Python loop): the member (the later, so never the longer sequence) as a
   whole against any part of the reference (edlib's ``HW`` mode, free end
   gaps in the reference), by edit distance, which rejects most pairs fast.
   A protein pair within the edit budget is aligned again the same way with
   BLOSUM62 and affine gaps (parasail, SIMD C; see :func:`_protein_alignment`
   for why), nucleotides keep the edit-distance alignment. From that alignment:

   * **identity** = identical aligned residues / length of the member. The
     member is the shorter sequence of the pair, so this is CD-HIT's default
     "global sequence identity" (``cd-hit -c``, ``-G 1``).
   * **coverage** = member residues from the first to the last aligned
     residue pair (``=`` or ``X`` in the CIGAR) / length of the member, so a
     member overhanging the reference's ends loses coverage. This is CD-HIT's
     ``-aS`` (alignment coverage of the shorter sequence).

   ``cd-hit -c I -aS C`` runs with the same definitions; the benchmark
   compares against exactly that. (CD-HIT aligns in a band, parasail over
   the whole matrix, so borderline pairs can still fall either side.)
4. **Assign.** In order, a sequence joins a reference chosen before it that
   it matches at ``identity`` or more with ``coverage`` or more; otherwise it
   becomes a reference itself. ``assignment="first"`` (the default, CD-HIT's
   ``-g 0``) takes the first such reference in selection order (the longest);
   ``"best"`` (CD-HIT's ``-g 1``) the one of highest identity, the first on a
   tie. Both give the same references; only members may move.

**Taxonomy-aware.** With ``taxonomy_aware=True`` a member joins only a
reference of the *same taxon id* (the taxon given with each sequence; all
sequences without one form one more group). Taxa are compared as given: to
cluster within a genus, say, give each sequence its ancestor at that rank.
A sequence given with two taxa is then two entries, one per taxon.

**Ratio.** ``ratio=F`` instead of an identity asks for at most that fraction
of the sequences to be kept as references, with as little loss as possible:
the highest identity threshold, on a grid of 0.01 from ``min_identity`` up to
1.0, whose clustering keeps ``F`` or less (found by bisection; the kept
fraction falls as the threshold falls, near enough for a bisection to find
it). If even ``min_identity`` keeps more, that clustering is returned and
:attr:`Clustering.identity` says which threshold was used. The candidate
pairs are found and aligned once, at ``min_identity``, and every threshold
tried re-uses those alignments (this is where caching alignments pays).

**Parallelism.** Word sampling and alignment run in a process pool over all
cores (fork on Linux: the workers inherit the sequences instead of receiving
them). Each worker aligns its sequences' candidates in order until the first
match, whether or not that candidate will turn out to be a reference; the
greedy pass then reads those results, and aligns in the main process only the
few pairs that speculation did not cover (a sequence whose first match became
a member itself). Every pair is aligned at most once per run.

Terms: a *position* is a sequence's place in the selection order.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import edlib

from talaria_storage.core.errors import ConfigError
from talaria_storage.core.forking import freeze_inherited_objects
from talaria_storage.core.hashing import is_hash_hex
from talaria_storage.core.lazy_module import LazyModule
from talaria_storage.sequences.kmer_filter import (
    CandidatePairs,
    EncodedSequences,
    SampledWords,
    WordFilter,
    encode_sequences,
    link_candidates,
    looks_nucleotide,
    sample_words,
    word_filter_for,
)

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy")  # imported on first use: a look-up never needs it (core.lazy_module)

Assignment = Literal["first", "best"]
Progress = Callable[[str, int, int], None]

_CIGAR = re.compile(r"(\d+)([=XID])")
# Below this many sequences a process pool costs more than it saves.
_POOL_MINIMUM = 2000
_SAMPLE_BLOCK = 4000  # sequences per word-sampling task
_ALIGN_BLOCK = 1500  # sequences per alignment task
# Above this many cells (member x reference residues) a protein pair keeps its edit-distance
# identity: parasail's traceback table would take hundreds of MB (a 6,000 x 6,000 pair: 36 M cells).
_SCORED_CELLS = 36_000_000


class SequenceKey(NamedTuple):
    """What is clustered: a distinct sequence (its SHA-256, hex), and its taxon in taxonomy-aware mode.

    ``taxon`` is always ``None`` unless the selection is taxonomy-aware.
    """

    sha256: str
    taxon: int | None = None


@dataclass(frozen=True, slots=True)
class SelectionParameters:
    """How references are chosen (see the module docstring for every term).

    Exactly one of ``identity`` and ``ratio`` is set; the default is identity
    0.9 with coverage 0.8.
    """

    identity: float | None = 0.9
    coverage: float = 0.8
    ratio: float | None = None
    taxonomy_aware: bool = False
    assignment: Assignment = "first"
    min_identity: float = 0.5

    def __post_init__(self) -> None:
        if (self.identity is None) == (self.ratio is None):
            raise ConfigError("reference selection takes either an identity or a ratio, not both (nor neither)")
        for name in ("identity", "coverage", "ratio", "min_identity"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise ConfigError(f"{name} must be in (0, 1], got {value!r}")
        if self.assignment not in ("first", "best"):
            raise ConfigError(f"assignment must be 'first' or 'best', got {self.assignment!r}")

    @classmethod
    def for_ratio(cls, ratio: float, **options: Any) -> SelectionParameters:
        """Parameters that aim at keeping ``ratio`` of the sequences."""
        return cls(identity=None, ratio=ratio, **options)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, for a reduction manifest."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Membership:
    """A member's reference, and how alike they are (both fractions of the member's length)."""

    reference: SequenceKey
    identity: float
    coverage: float


@dataclass(frozen=True, slots=True)
class SelectionStatistics:
    """What a selection did: counts, and seconds per step (not part of the result's equality)."""

    sequences: int
    candidate_pairs: int
    aligned_pairs: int
    aligned_in_greedy_pass: int
    alignment_lookups: int
    thresholds_tried: int
    processes: int
    seconds: dict[str, float]


@dataclass(frozen=True)
class Clustering:
    """The result of a selection: deterministic for a given set of sequences and parameters.

    ``references`` are in selection order (longest first); ``members`` maps
    each member to its :class:`Membership`, also in selection order.
    ``identity`` is the threshold used (the one found, in ratio mode).
    """

    parameters: SelectionParameters
    identity: float
    references: tuple[SequenceKey, ...]
    members: Mapping[SequenceKey, Membership]
    statistics: SelectionStatistics = field(compare=False, repr=False)

    @property
    def sequence_count(self) -> int:
        return len(self.references) + len(self.members)

    @property
    def kept_fraction(self) -> float:
        """References / sequences (1.0 for an empty input)."""
        return len(self.references) / self.sequence_count if self.sequence_count else 1.0

    def reference_of(self, key: SequenceKey) -> SequenceKey:
        """The reference that stands for ``key`` (itself, for a reference); KeyError if unknown."""
        membership = self.members.get(key)
        if membership is not None:
            return membership.reference
        if key in self._reference_set:
            return key
        raise KeyError(f"sequence {key.sha256} (taxon {key.taxon}) is not in this clustering")

    def members_of(self, reference: SequenceKey) -> tuple[SequenceKey, ...]:
        """The members of ``reference``, in selection order."""
        return self._members_by_reference.get(reference, ())

    @property
    def _reference_set(self) -> frozenset[SequenceKey]:
        cached = self.__dict__.get("_refs")
        if cached is None:
            cached = frozenset(self.references)
            object.__setattr__(self, "_refs", cached)
        return cached

    @property
    def _members_by_reference(self) -> dict[SequenceKey, tuple[SequenceKey, ...]]:
        cached = self.__dict__.get("_by_ref")
        if cached is None:
            grouped: dict[SequenceKey, list[SequenceKey]] = {}
            for member, membership in self.members.items():
                grouped.setdefault(membership.reference, []).append(member)
            cached = {ref: tuple(keys) for ref, keys in grouped.items()}
            object.__setattr__(self, "_by_ref", cached)
        return cached


SequenceInput = tuple[bytes | str, bytes, int | None]


def select_references(
    sequences: Iterable[SequenceInput],
    parameters: SelectionParameters | None = None,
    *,
    processes: int | None = None,
    progress: Progress | None = None,
    pinned: Sequence[SequenceKey] = (),
) -> Clustering:
    """Choose references among ``sequences``: ``(sha256, residues, taxon)`` triples.

    ``pinned``: keys that stay references whatever they match, ahead of every
    other sequence in this order (those not among ``sequences`` are ignored):
    an update keeps the references of an earlier reduction this way. A later,
    longer sequence is then aligned as a whole against a shorter reference,
    so it joins only when the reference covers it.

    ``sha256`` (32 bytes or 64 hex characters) names the sequence and breaks
    length ties; the same sequence given twice counts once. ``processes`` is
    the number of worker processes (default: one per core for inputs large
    enough to pay; 0 aligns in this process). ``progress(step, done, total)``
    is called as the steps advance.
    """
    parameters = parameters or SelectionParameters()
    report = progress or _no_progress
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    keys, residues, fixed = _order(sequences, parameters.taxonomy_aware, pinned)
    seconds["order"] = time.perf_counter() - started
    count = len(keys)
    floor = parameters.identity if parameters.identity is not None else parameters.min_identity
    nucleotide = looks_nucleotide(residues)
    word_filter = word_filter_for(floor, nucleotide=nucleotide)
    workers = _worker_count(processes, count)
    groups = _taxon_groups(keys) if parameters.taxonomy_aware else None
    evaluate_all = parameters.ratio is not None or parameters.assignment == "best"

    step = time.perf_counter()
    encoded = encode_sequences(residues, reduced_alphabet=word_filter.reduced_alphabet)
    pool = _start_pool(workers, residues, encoded, groups)
    try:
        candidates = _find_candidates(pool, encoded, count, word_filter, groups, report)
        seconds["prefilter"] = time.perf_counter() - step
        step = time.perf_counter()
        aligner = _PairAligner(residues, floor, parameters.coverage, protein=not nucleotide)
        _align_speculatively(pool, aligner, candidates, evaluate_all, report)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    seconds["align"] = time.perf_counter() - step

    step = time.perf_counter()
    if parameters.ratio is None:
        identity = floor
        assigned = _assign(candidates, aligner, identity, parameters.coverage, parameters.assignment, fixed)
        tried = 1
    else:
        identity, assigned, tried = _search_ratio(candidates, aligner, parameters, fixed)
    seconds["assign"] = time.perf_counter() - step
    seconds["total"] = time.perf_counter() - started
    statistics = SelectionStatistics(
        sequences=count,
        candidate_pairs=candidates.pair_count,
        aligned_pairs=aligner.aligned,
        aligned_in_greedy_pass=aligner.aligned_late,
        alignment_lookups=aligner.lookups,
        thresholds_tried=tried,
        processes=workers,
        seconds={name: round(value, 3) for name, value in seconds.items()},
    )
    return _clustering(keys, assigned, aligner, parameters, identity, statistics)


def _no_progress(step: str, done: int, total: int) -> None:
    """The default progress callback: report nothing."""


# -- step 1: order ------------------------------------------------------------------------------


def _order(
    sequences: Iterable[SequenceInput], taxonomy_aware: bool, pinned: Sequence[SequenceKey] = ()
) -> tuple[list[SequenceKey], list[bytes], int]:
    """Distinct entries in selection order: the pinned ones present, then longest first, then
    SHA-256, then taxon; and how many are pinned."""
    entries: dict[SequenceKey, bytes] = {}
    for number, item in enumerate(sequences, start=1):
        try:
            sha, residues, taxon = item
        except (TypeError, ValueError):
            raise ConfigError(
                f"sequence {number}: expected a (sha256, residues, taxon) triple, got {item!r:.80}"
            ) from None
        digest = _hex_digest(sha, number)
        if not isinstance(residues, (bytes, bytearray, memoryview)) or len(residues) == 0:
            raise ConfigError(f"sequence {number} ({digest}): residues must be non-empty bytes")
        if taxon is not None and not isinstance(taxon, int):
            raise ConfigError(f"sequence {number} ({digest}): taxon must be an integer id or None, got {taxon!r}")
        key = SequenceKey(digest, taxon if taxonomy_aware else None)
        known = entries.get(key)
        data = bytes(residues)
        if known is None:
            entries[key] = data
        elif known != data:
            raise ConfigError(f"sequence {number}: SHA-256 {digest} was given twice with different residues")
    first = list(dict.fromkeys(key for key in pinned if key in entries))
    chosen = set(first)
    rest = sorted(
        (key for key in entries if key not in chosen),
        key=lambda k: (-len(entries[k]), k.sha256, -1 if k.taxon is None else k.taxon),
    )
    ordered = first + rest
    return ordered, [entries[key] for key in ordered], len(first)


def _hex_digest(sha: bytes | str, number: int) -> str:
    if isinstance(sha, (bytes, bytearray)) and len(sha) == 32:
        return bytes(sha).hex()
    if isinstance(sha, str) and is_hash_hex(sha):
        return sha.lower()
    raise ConfigError(f"sequence {number}: sha256 must be 32 bytes or 64 hex characters, got {sha!r:.80}")


def _taxon_groups(keys: list[SequenceKey]) -> np.ndarray:
    """A small integer per position, equal for equal taxa (None is a group of its own)."""
    numbers: dict[int | None, int] = {}
    return np.fromiter((numbers.setdefault(k.taxon, len(numbers)) for k in keys), dtype=np.int64, count=len(keys))


# -- the process pool ---------------------------------------------------------------------------

# What a worker process holds: the residues in selection order, their codes and the taxon
# groups, installed once per worker by _install_worker (inherited, not pickled, under fork).
_worker_residues: list[bytes] = []
_worker_encoded: EncodedSequences | None = None
_worker_groups: np.ndarray | None = None


def _install_worker(residues: list[bytes], encoded: EncodedSequences, groups: np.ndarray | None) -> None:
    global _worker_residues, _worker_encoded, _worker_groups
    _worker_residues, _worker_encoded, _worker_groups = residues, encoded, groups


def _worker_count(processes: int | None, count: int) -> int:
    if processes is not None:
        return max(0, processes)
    if multiprocessing.current_process().daemon or count < _POOL_MINIMUM:
        return 0  # a pool worker may not start children; a small input is faster in-process
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if cores > 1 else 0


def _start_pool(
    workers: int, residues: list[bytes], encoded: EncodedSequences, groups: np.ndarray | None
) -> Executor | None:
    _install_worker(residues, encoded, groups)  # the in-process path reads the same globals
    if workers == 0:
        return None
    # Fork where it exists: the workers inherit the sequences instead of unpickling a copy each.
    context = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
    freeze_inherited_objects()  # a child must not finalize the parent's RocksDB handles (core.forking)
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_install_worker, initargs=(residues, encoded, groups)
    )


# -- step 2: prefilter --------------------------------------------------------------------------


def _find_candidates(
    pool: Executor | None,
    encoded: EncodedSequences,
    count: int,
    word_filter: WordFilter,
    groups: np.ndarray | None,
    report: Progress,
) -> CandidatePairs:
    blocks = [(first, min(count, first + _SAMPLE_BLOCK)) for first in range(0, count, _SAMPLE_BLOCK)]
    sampled: list[SampledWords] = []
    if pool is None:
        for first, last in blocks:
            sampled.append(sample_words(encoded, first, last, word_filter, groups))
            report("prefilter", last, count)
    else:
        for (_, last), words in zip(blocks, pool.map(_sample_block, blocks, [word_filter] * len(blocks))):
            sampled.append(words)
            report("prefilter", last, count)
    return link_candidates(sampled, count, word_filter)


def _sample_block(block: tuple[int, int], word_filter: WordFilter) -> SampledWords:
    assert _worker_encoded is not None  # installed by _install_worker
    return sample_words(_worker_encoded, block[0], block[1], word_filter, _worker_groups)


# -- step 3: align ------------------------------------------------------------------------------


class _PairResult(NamedTuple):
    identity: float  # -1.0: not within the edit budget of the lowest identity asked for
    coverage: float


_NO_MATCH = _PairResult(-1.0, 0.0)


def align_pair(member: bytes, reference: bytes, identity: float, protein: bool = False) -> tuple[float, float] | None:
    """Identity and coverage of ``member`` aligned as a whole inside ``reference`` (see the module docstring).

    ``None`` when the edit distance exceeds what ``identity`` allows: the
    member's mismatches and inserted residues (at most ``(1 - identity)``
    of its length) plus as many residues skipped in the reference (those do
    not lower identity over the member, but an edit-distance alignment pays
    for them). For proteins a pair within that budget is then aligned again
    with BLOSUM62 (:func:`_protein_alignment`), whose identity is the one
    returned.
    """
    length = len(member)
    budget = math.floor((1.0 - identity) * length + 1e-9)
    found = edlib.align(member, reference, mode="HW", task="path", k=2 * budget + 1)
    if found["editDistance"] < 0:
        return None
    measured = _identity_and_coverage(found["cigar"], length)
    # Only a pair that passes by edit distance is scored again: the edit-distance alignment lines up
    # at least as many identical residues as BLOSUM62's in all but rare pairs, so the others would
    # fail anyway, and rescoring every candidate would cost 4x the selection at threshold 0.5.
    if protein and measured[0] >= identity and length * len(reference) <= _SCORED_CELLS:
        return _protein_alignment(member, reference)
    return measured


def _protein_alignment(member: bytes, reference: bytes) -> tuple[float, float]:
    """Identity and coverage from a BLOSUM62 alignment (gap open 11, extend 1, as BLAST and CD-HIT score).

    An edit-distance alignment pays as much for a gap as for a mismatch, so
    between distant proteins it lines up identical residues through many
    small gaps that no substitution matrix would open: at threshold 0.5 a
    tenth of the members it accepted fell below 0.5 when re-aligned with
    BLOSUM62, at 0.3 half (``benchmarks/bench_reduce.py``, "Membership
    check"). parasail (SIMD, C) aligns the member as a whole against any
    part of the reference (``sg_dx``: the reference's end gaps free).
    """
    # Imported here, once per process (later imports are a dictionary look-up): parasail takes
    # ~170 ms to load, which every command importing the API (a one-record look-up) would pay.
    import parasail

    found = parasail.sg_dx_trace_scan_16(member, reference, 11, 1, parasail.blosum62)
    if found.saturated:  # a score past 16 bits: thousands of identical residues
        found = parasail.sg_dx_trace_scan_32(member, reference, 11, 1, parasail.blosum62)
    return _identity_and_coverage(found.cigar.decode.decode("ascii"), len(member))


def _identity_and_coverage(cigar: str, length: int) -> tuple[float, float]:
    """Identical residues over ``length``, and the member's span from its first to its last aligned
    residue over ``length``, from a CIGAR of the member (``I``: member-only residues, ``D``:
    reference-only ones), as edlib and parasail both write it."""
    ops = _CIGAR.findall(cigar)
    identical = sum(int(n) for n, op in ops if op == "=")
    aligned = [(int(n), op) for n, op in ops if op != "D"]  # the member's residues, in order
    lead = aligned[0][0] if aligned and aligned[0][1] == "I" else 0
    trail = aligned[-1][0] if len(aligned) > 1 and aligned[-1][1] == "I" else 0
    return identical / length, max(0, length - lead - trail) / length


class _PairAligner:
    """Aligns pairs by position and keeps every result for the run (the alignment cache)."""

    def __init__(self, residues: list[bytes], floor: float, coverage: float, protein: bool = False) -> None:
        self.residues = residues
        self.protein = protein
        self.floor = floor
        self.coverage = coverage
        self.count = len(residues)
        self.results: dict[int, _PairResult] = {}
        self.aligned = 0
        self.aligned_late = 0
        self.lookups = 0

    def add(self, codes: np.ndarray, identities: np.ndarray, coverages: np.ndarray) -> None:
        for code, ident, cov in zip(codes.tolist(), identities.tolist(), coverages.tolist()):
            self.results[code] = _PairResult(ident, cov)
        self.aligned += len(codes)

    def get(self, query: int, target: int) -> _PairResult:
        self.lookups += 1
        code = query * self.count + target
        result = self.results.get(code)
        if result is None:
            found = align_pair(self.residues[query], self.residues[target], self.floor, self.protein)
            result = _NO_MATCH if found is None else _PairResult(*found)
            self.results[code] = result
            self.aligned += 1
            self.aligned_late += 1
        return result


def _align_speculatively(
    pool: Executor | None,
    aligner: _PairAligner,
    candidates: CandidatePairs,
    evaluate_all: bool,
    report: Progress,
) -> None:
    count = aligner.count
    blocks = [(first, min(count, first + _ALIGN_BLOCK)) for first in range(0, count, _ALIGN_BLOCK)]
    tasks = [
        (
            first,
            candidates.starts[first : last + 1] - candidates.starts[first],
            candidates.targets[candidates.starts[first] : candidates.starts[last]],
            aligner.floor,
            aligner.coverage,
            evaluate_all,
            aligner.protein,
        )
        for first, last in blocks
    ]
    results = map(_align_block, tasks) if pool is None else pool.map(_align_block, tasks)
    for (_, last), (codes, identities, coverages) in zip(blocks, results):
        aligner.add(codes, identities, coverages)
        report("align", last, count)


def _align_block(
    task: tuple[int, np.ndarray, np.ndarray, float, float, bool, bool],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Align each query's candidates in order, up to its first match (or all of them)."""
    first, starts, targets, identity, coverage, evaluate_all, protein = task
    residues = _worker_residues
    count = len(residues)
    codes: list[int] = []
    identities: list[float] = []
    coverages: list[float] = []
    target_list = targets.tolist()
    bounds = starts.tolist()
    for offset in range(len(bounds) - 1):
        query = first + offset
        member = residues[query]
        for target in target_list[bounds[offset] : bounds[offset + 1]]:
            found = align_pair(member, residues[target], identity, protein)
            codes.append(query * count + target)
            if found is None:
                identities.append(-1.0)
                coverages.append(0.0)
                continue
            identities.append(found[0])
            coverages.append(found[1])
            if not evaluate_all and found[0] >= identity and found[1] >= coverage:
                break
    return np.array(codes, dtype=np.int64), np.array(identities), np.array(coverages)


# -- step 4: assign -----------------------------------------------------------------------------


def _assign(
    candidates: CandidatePairs,
    aligner: _PairAligner,
    identity: float,
    coverage: float,
    assignment: Assignment,
    fixed: int = 0,
) -> np.ndarray:
    """The greedy pass: ``out[p]`` is the reference position of member ``p``, or -1 for a reference.

    The first ``fixed`` positions (pinned) are references whatever they match.
    """
    count = aligner.count
    reference_of = np.full(count, -1, dtype=np.int64)
    is_reference = [True] * count
    starts = candidates.starts.tolist()
    targets = candidates.targets.tolist()
    for query in range(fixed, count):
        best, best_identity = -1, -1.0
        for target in targets[starts[query] : starts[query + 1]]:
            if not is_reference[target]:
                continue
            result = aligner.get(query, target)
            if result.identity >= identity and result.coverage >= coverage:
                if assignment == "first":
                    best = target
                    break
                if result.identity > best_identity:
                    best, best_identity = target, result.identity
        if best >= 0:
            reference_of[query] = best
            is_reference[query] = False
    return reference_of


def _search_ratio(
    candidates: CandidatePairs, aligner: _PairAligner, parameters: SelectionParameters, fixed: int = 0
) -> tuple[float, np.ndarray, int]:
    """The highest identity (grid 0.01) from ``min_identity`` to 1 that keeps at most ``ratio``."""
    assert parameters.ratio is not None
    count = aligner.count
    low = math.ceil(parameters.min_identity * 100 - 1e-9)
    high = 100
    tried: dict[int, np.ndarray] = {}

    def kept(percent: int) -> float:
        if percent not in tried:
            tried[percent] = _assign(
                candidates, aligner, percent / 100, parameters.coverage, parameters.assignment, fixed
            )
        return float(np.count_nonzero(tried[percent] < 0)) / count if count else 1.0

    if kept(low) > parameters.ratio:
        return low / 100, tried[low], len(tried)
    while low < high:  # invariant: kept(low) <= ratio
        middle = (low + high + 1) // 2
        if kept(middle) <= parameters.ratio:
            low = middle
        else:
            high = middle - 1
    return low / 100, tried[low], len(tried)


def _clustering(
    keys: list[SequenceKey],
    reference_of: np.ndarray,
    aligner: _PairAligner,
    parameters: SelectionParameters,
    identity: float,
    statistics: SelectionStatistics,
) -> Clustering:
    references: list[SequenceKey] = []
    members: dict[SequenceKey, Membership] = {}
    for position, reference in enumerate(reference_of.tolist()):
        if reference < 0:
            references.append(keys[position])
            continue
        result = aligner.results[position * aligner.count + reference]
        members[keys[position]] = Membership(keys[reference], result.identity, result.coverage)
    return Clustering(parameters, identity, tuple(references), members, statistics)
