"""Reference selection beside CD-HIT and MMseqs2 in the same run, and search recall after reduction.

Reference selection (:func:`talaria_storage.reduction.selection.select_references`,
greedy incremental clustering as CD-HIT does it) is timed on the same FASTA
as the peers, and its reference count and time are given as ratios to
``cd-hit`` (and to ``mmseqs easy-linclust``):

* **uniprot15**: the 15 UniProt proteomes in ``../shared/data/protein/
  uniprot_proteomes``, decompressed and concatenated into one FASTA (what
  ``zcat`` would write), at identity 0.9 and 0.8, coverage 0.8 of the
  shorter sequence;
* **mmseqs2_example**: ``mmseqs2_example_DB.fasta.gz`` at identity 0.9, 0.5
  and 0.3 (CD-HIT does not go below 0.4, so its 0.3 row is skipped).

The peers run as ``cd-hit -i in.fa -o out -c I -aS 0.8 -T 2 -M 0 -d 0 -n N``
(``N`` from the CD-HIT user's guide: 5 from 0.7, 4 from 0.6, 3 from 0.5, 2
from 0.4), ``mmseqs easy-linclust in.fa prefix tmp --min-seq-id I -c 0.8
--cov-mode 1 --threads 2`` and the same with ``easy-cluster`` (stopped after
``--cluster-timeout`` seconds, 180 by default); their representatives are the
records of the FASTA they write. Our side is timed with ``time.perf_counter``
in this process: reading the same FASTA with Biopython's
``SimpleFastaParser``, upper-casing and hashing (SHA-256) every record and
keeping the distinct sequences (**parse + hash**), then
``select_references(..., processes=None)`` on both cores (**select**); the
**seconds** column is their sum, since the peers' seconds include reading
their input too. Identical records count once on our side (they share a
key), and CD-HIT and MMseqs2 put them in one cluster as well, so the counts
compare. CD-HIT drops sequences of 10 residues or fewer (``-l 10``); the
notes say how many distinct ones the input has. **shared** is the number of
our references whose sequence is also a CD-HIT representative.

``--ratio`` mode (in the full run): ``SelectionParameters.for_ratio(0.5)`` on
mmseqs2_example, with the identity it found, the kept fraction, the
thresholds tried, and the pairs aligned against the alignment look-ups of
all greedy passes (a look-up served from an alignment made earlier in the
run is one the cache saved), beside single-identity runs.

**Recall** (the "smaller searches" use case): the 500 queries of
``mmseqs2_example_QUERY.fasta.gz`` are searched with DIAMOND at its defaults
(e-value 1e-3, 25 targets a query): ``diamond blastp -q query.fa -d db -o
hits.tsv --threads 2 --outfmt 6 qseqid sseqid``, against the full DB and
against a DB of only the references (ours at 0.9 and 0.5, and at ``--ratio
0.5``, one record per reference sequence; CD-HIT's representatives at 0.9
and 0.5; ``mmseqs easy-linclust``'s at 0.5, the issue's anchor, expanded
through its ``_cluster.tsv``). Each reference hit is expanded to the
reference and all its members (ours: by SHA-256 key, every record carrying
the key; CD-HIT: its ``.clstr`` cluster). Recall = full-DB (query, target)
pairs found after expansion / full-DB pairs. Also: the DB size as a
fraction of the full DB (sequences and residues), ``blastp`` seconds as a
ratio to the full search, and the expanded pairs the full search did not
report. ``--recall --sensitivity`` adds rows: the ``--ratio 0.5`` references
searched at DIAMOND's ``--mid-sensitive``, ``--sensitive`` and ``--sensitive
-k 100``, each beside the full DB searched at the same mode for its time
(recall is always against the full DB at the defaults).

**Membership check**: a sample of 300 members of each clustering (ours and
CD-HIT's) is aligned to its reference again with BLOSUM62 (Biopython's
``PairwiseAligner``) and scored the way CD-HIT defines identity and
coverage, to see whether members meet the thresholds under one common
scoring (ours aligns by edit distance, CD-HIT with BLOSUM62 in a band).

Each figure is one run (the machine is shared: treat time differences under
~15 % as noise). ``--quick`` runs only mmseqs2_example at 0.9 and the recall
at 0.9 (a smoke run of about two minutes).

Run:  cd benchmarks && ../.venv/bin/python bench_reduce.py [--quick | --recall [--sensitivity]] [--tmp DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import require_shared_data, write_decompressed
from Bio import Align
from Bio.Align import substitution_matrices
from Bio.SeqIO.FastaIO import SimpleFastaParser

from talaria_storage.reduction.selection import (
    Clustering,
    SelectionParameters,
    SequenceKey,
    select_references,
)

COVERAGE = 0.8
THREADS = 2
CDHIT_MIN_IDENTITY = 0.4
CDHIT_THROW_AWAY = 10  # cd-hit -l default: sequences this long or shorter are dropped
CHECK_SAMPLE = 300  # members re-aligned per clustering in the membership check


# -- input --------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """One FASTA as our side sees it: records by id, distinct sequences by SHA-256."""

    name: str
    fasta: Path
    record_ids: list[str]
    record_sha: dict[str, str]  # record id -> sha256 hex of the upper-cased residues
    residues: dict[str, bytes]  # sha256 hex -> residues (distinct sequences, upper case)
    parse_seconds: float
    records_of: dict[str, list[str]] = field(default_factory=dict)  # sha256 hex -> record ids

    def __post_init__(self) -> None:
        for record, sha in self.record_sha.items():
            self.records_of.setdefault(sha, []).append(record)

    @property
    def distinct(self) -> int:
        return len(self.residues)

    def short_distinct(self, limit: int = CDHIT_THROW_AWAY) -> int:
        return sum(1 for r in self.residues.values() if len(r) <= limit)


def read_fasta(path: Path) -> list[tuple[str, bytes]]:
    """(record id, upper-cased residues) per record; the id is the header up to the first space,
    as DIAMOND reports it and as ``cd-hit -d 0`` writes it in the ``.clstr`` file."""
    out = []
    with path.open() as handle:
        for title, sequence in SimpleFastaParser(handle):
            out.append((title.split(None, 1)[0] if title else "", sequence.upper().encode("ascii")))
    return out


def load(name: str, fasta: Path) -> Dataset:
    """Parse and hash ``fasta`` as the input of ``select_references`` (timed)."""
    started = time.perf_counter()
    record_sha: dict[str, str] = {}
    residues: dict[str, bytes] = {}
    ids: list[str] = []
    for record, sequence in read_fasta(fasta):
        sha = hashlib.sha256(sequence).hexdigest()
        if record in record_sha:
            sys.exit(f"{fasta}: record id {record} appears twice; the recall expansion needs unique ids")
        record_sha[record] = sha
        residues.setdefault(sha, sequence)
        ids.append(record)
    return Dataset(name, fasta, ids, record_sha, residues, time.perf_counter() - started)


def sha_set(fasta: Path) -> set[str]:
    """SHA-256 keys of the sequences in ``fasta`` (a peer's representatives)."""
    return {hashlib.sha256(seq).hexdigest() for _, seq in read_fasta(fasta)}


def count_records(fasta: Path) -> int:
    with fasta.open("rb") as handle:
        return sum(1 for line in handle if line.startswith(b">"))


# -- running tools ------------------------------------------------------------------------------


class Timeout(Exception):
    pass


def run(command: Sequence[str | Path], log: Path, timeout: float | None = None) -> float:
    """Run ``command`` (its output to ``log``) and return its wall seconds.

    It runs in a session of its own so that a timeout stops the whole process group
    (``mmseqs easy-*`` runs its steps as child processes).
    """
    started = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(part) for part in command], stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise Timeout(f"stopped after {timeout:.0f} s") from None
    seconds = time.perf_counter() - started
    if code != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"{Path(command[0]).name} exited with {code}: {' / '.join(tail)}")
    return seconds


def provenance() -> str:
    """The commit measured, and whether the reduction code had uncommitted edits."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "talaria_storage"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown (no git)"
    return f"commit {commit}" + (" with uncommitted edits under talaria_storage/" if dirty else "")


def missing(tool: str) -> str | None:
    return None if shutil.which(tool) else f"{tool} not on PATH"


# -- clustering ---------------------------------------------------------------------------------


@dataclass
class Row:
    tool: str
    references: int | None = None
    seconds: float | None = None
    skipped: str | None = None
    note: str = ""
    shas: set[str] | None = None  # the representatives' sequences, for "shared"


@dataclass
class Ours:
    clustering: Clustering
    select_seconds: float


def run_ours(data: Dataset, parameters: SelectionParameters) -> Ours:
    triples = [(sha, residues, None) for sha, residues in data.residues.items()]
    started = time.perf_counter()
    clustering = select_references(triples, parameters, processes=None)
    return Ours(clustering, time.perf_counter() - started)


def ours_row(data: Dataset, ours: Ours) -> Row:
    stats = ours.clustering.statistics
    steps = ", ".join(f"{k} {v:.1f}" for k, v in stats.seconds.items() if k != "total")
    return Row(
        "talaria_storage",
        len(ours.clustering.references),
        data.parse_seconds + ours.select_seconds,
        note=(
            f"parse + hash {data.parse_seconds:.1f} s + select {ours.select_seconds:.1f} s "
            f"({steps}; {stats.processes} processes); {stats.candidate_pairs:,} candidate pairs, "
            f"{stats.aligned_pairs:,} aligned"
        ),
        shas={key.sha256 for key in ours.clustering.references},
    )


def cdhit_word(identity: float) -> int:
    """Word length for ``cd-hit -c identity`` (CD-HIT user's guide)."""
    return 5 if identity >= 0.7 else 4 if identity >= 0.6 else 3 if identity >= 0.5 else 2


def run_cdhit(fasta: Path, work: Path, identity: float) -> tuple[Row, Path | None]:
    """CD-HIT's row and its output prefix (``out`` and ``out.clstr``), or None when skipped."""
    reason = missing("cd-hit")
    if reason is None and identity < CDHIT_MIN_IDENTITY:
        reason = f"cd-hit takes -c {CDHIT_MIN_IDENTITY} or more"
    if reason:
        return Row("cd-hit", skipped=reason), None
    out = work / f"cdhit-{identity:.2f}"
    word = cdhit_word(identity)
    command = ["cd-hit", "-i", fasta, "-o", out, "-c", str(identity), "-aS", str(COVERAGE),
               "-T", str(THREADS), "-M", "0", "-d", "0", "-n", str(word)]
    try:
        seconds = run(command, work / f"cdhit-{identity:.2f}.log")
    except (RuntimeError, Timeout) as exc:
        return Row("cd-hit", skipped=str(exc)), None
    return Row("cd-hit", count_records(out), seconds, note=f"-n {word}", shas=sha_set(out)), out


def run_mmseqs(fasta: Path, work: Path, workflow: str, identity: float, timeout: float | None) -> Row:
    name = f"mmseqs {workflow}"
    reason = missing("mmseqs")
    if reason:
        return Row(name, skipped=reason)
    prefix = work / f"{workflow}-{identity:.2f}"
    scratch = work / f"{workflow}-{identity:.2f}-tmp"
    command = ["mmseqs", workflow, fasta, prefix, scratch, "--min-seq-id", str(identity),
               "-c", str(COVERAGE), "--cov-mode", "1", "--threads", str(THREADS)]
    try:
        seconds = run(command, work / f"{workflow}-{identity:.2f}.log", timeout)
    except (RuntimeError, Timeout) as exc:
        return Row(name, skipped=str(exc))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    reps = Path(f"{prefix}_rep_seq.fasta")
    return Row(name, count_records(reps), seconds, shas=sha_set(reps))


def ratio(value: float | None, base: float | None, digits: int = 3) -> str:
    if value is None or not base:
        return "n/a"
    return f"{value / base:.{digits}f}"


def clustering_table(title: str, rows: list[Row], data: Dataset) -> str:
    cdhit = next((r for r in rows if r.tool == "cd-hit" and r.skipped is None), None)
    linclust = next((r for r in rows if r.tool == "mmseqs easy-linclust" and r.skipped is None), None)
    lines = [
        f"#### {title}\n",
        ("| tool | references | references / CD-HIT | seconds | seconds / CD-HIT "
        "| references / linclust | shared with CD-HIT | notes |"),
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r.skipped is not None:
            lines.append(f"| {r.tool} | skipped: {r.skipped} | | | | | | |")
            continue
        shared = (
            f"{len(r.shas & cdhit.shas):,}" if cdhit and cdhit.shas is not None and r.shas is not None else "n/a"
        )
        lines.append(
            f"| {r.tool} | {r.references:,} | {ratio(r.references, cdhit.references if cdhit else None)} "
            f"| {r.seconds:.1f} | {ratio(r.seconds, cdhit.seconds if cdhit else None, 2)} "
            f"| {ratio(r.references, linclust.references if linclust else None)} | {shared} | {r.note} |"
        )
    lines.append(
        f"\n{len(data.record_ids):,} records, {data.distinct:,} distinct sequences "
        f"({data.short_distinct():,} of {CDHIT_THROW_AWAY} residues or fewer, which CD-HIT drops); "
        f"coverage {COVERAGE} of the shorter sequence.\n"
    )
    return "\n".join(lines)


@dataclass
class Level:
    """Everything measured at one identity on one dataset."""

    identity: float
    rows: list[Row]
    ours: Ours | None
    cdhit_out: Path | None


def cluster_level(
    data: Dataset, work: Path, identity: float, cluster_timeout: float, with_ours: bool = True
) -> Level:
    print(f"[{data.name} identity {identity}] ...", file=sys.stderr, flush=True)
    ours = run_ours(data, SelectionParameters(identity=identity, coverage=COVERAGE)) if with_ours else None
    rows = [ours_row(data, ours)] if ours else []
    cdhit, cdhit_out = run_cdhit(data.fasta, work, identity)
    rows.append(cdhit)
    rows.append(run_mmseqs(data.fasta, work, "easy-linclust", identity, None))
    rows.append(run_mmseqs(data.fasta, work, "easy-cluster", identity, cluster_timeout))
    return Level(identity, rows, ours, cdhit_out)


# -- membership check ---------------------------------------------------------------------------


def blosum_aligner() -> Align.PairwiseAligner:
    """Global alignment with BLOSUM62 (gap -11/-1), the reference's overhanging ends free."""
    aligner = Align.PairwiseAligner(
        mode="global", substitution_matrix=substitution_matrices.load("BLOSUM62"),
        open_gap_score=-11, extend_gap_score=-1,
    )
    aligner.end_deletion_score = 0.0  # residues of the reference (the target) left out at its ends
    return aligner


@dataclass
class Check:
    label: str
    identity: float
    checked: int
    passed: int  # identity and coverage both reached on re-alignment
    identity_passed: int
    low_identity: float  # 5th percentile of the re-aligned identity


def membership_check(
    label: str, data: Dataset, pairs: list[tuple[str, str]], identity: float
) -> Check:
    """Re-align a sample of (member, reference) pairs (SHA-256 keys) with BLOSUM62, the way CD-HIT
    scores them (identical residues / member length; coverage = member span aligned / length)."""
    aligner = blosum_aligner()
    sample = random.Random(0).sample(pairs, min(CHECK_SAMPLE, len(pairs)))
    found: list[tuple[float, float]] = []
    for member_sha, reference_sha in sample:
        member = data.residues[member_sha].decode()
        reference = data.residues[reference_sha].decode()
        blocks = aligner.align(reference, member)[0].aligned
        same = sum(
            sum(1 for i in range(t1 - t0) if reference[t0 + i] == member[q0 + i])
            for (t0, t1), (q0, _) in zip(blocks[0], blocks[1])
        )
        span = blocks[1][-1][1] - blocks[1][0][0] if len(blocks[1]) else 0
        found.append((same / len(member), span / len(member)))
    identities = sorted(i for i, _ in found)
    return Check(
        label, identity, len(found),
        sum(1 for i, c in found if i >= identity - 1e-9 and c >= COVERAGE - 1e-9),
        sum(1 for i, _ in found if i >= identity - 1e-9),
        identities[len(identities) // 20] if identities else float("nan"),
    )


def check_level(data: Dataset, level: Level) -> list[Check]:
    checks = []
    if level.ours is not None:
        pairs = [(k.sha256, m.reference.sha256) for k, m in level.ours.clustering.members.items()]
        checks.append(membership_check(f"{data.name}: talaria_storage", data, pairs, level.identity))
    if level.cdhit_out is not None:
        pairs = []
        for rep, records in read_clstr(Path(f"{level.cdhit_out}.clstr")).items():
            rep_sha = data.record_sha[rep]
            pairs += [(data.record_sha[r], rep_sha) for r in records if data.record_sha[r] != rep_sha]
        checks.append(membership_check(f"{data.name}: cd-hit", data, pairs, level.identity))
    return checks


def check_table(checks: list[Check]) -> str:
    lines = [
        ("| clustering | identity | members re-aligned | identity and coverage reached | identity reached "
        "| 5th percentile of re-aligned identity |"),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in checks:
        lines.append(
            f"| {c.label} | {c.identity} | {c.checked} | {c.passed} ({c.passed / c.checked:.1%}) "
            f"| {c.identity_passed} ({c.identity_passed / c.checked:.1%}) | {c.low_identity:.3f} |"
        )
    return "\n".join(lines)


# -- ratio mode ---------------------------------------------------------------------------------


def ratio_table(data: Dataset, target: float, levels: dict[float, Level]) -> str:
    print(f"[{data.name} ratio {target}] ...", file=sys.stderr, flush=True)
    by_ratio = run_ours(data, SelectionParameters.for_ratio(target, coverage=COVERAGE))
    found = by_ratio.clustering.identity
    single = levels.get(found)
    if single is None or single.ours is None:
        single_ours = run_ours(data, SelectionParameters(identity=found, coverage=COVERAGE))
    else:
        single_ours = single.ours
    runs: list[tuple[str, Ours]] = [(f"ratio {target} (min_identity 0.5)", by_ratio),
                                    (f"identity {found:.2f} (the one found)", single_ours)]
    floor = levels.get(0.5)
    if floor is not None and floor.ours is not None and found != 0.5:
        runs.append(("identity 0.50 (the floor the ratio run aligns at)", floor.ours))
    lines = [
        f"#### Ratio mode on {data.name}: `SelectionParameters.for_ratio({target})`\n",
        ("| run | identity | references | kept fraction | thresholds tried | candidate pairs "
        "| aligned pairs | of which in greedy passes | alignment look-ups | look-ups served from earlier "
        "alignments | look-ups / aligned | select seconds | seconds / ratio run |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, run_ in runs:
        c, s = run_.clustering, run_.clustering.statistics
        lines.append(
            f"| {label} | {c.identity:.2f} | {len(c.references):,} | {c.kept_fraction:.3f} "
            f"| {s.thresholds_tried} | {s.candidate_pairs:,} | {s.aligned_pairs:,} "
            f"| {s.aligned_in_greedy_pass:,} | {s.alignment_lookups:,} "
            f"| {s.alignment_lookups - s.aligned_in_greedy_pass:,} "
            f"| {s.alignment_lookups / s.aligned_pairs if s.aligned_pairs else 0:.2f} "
            f"| {run_.select_seconds:.1f} | {run_.select_seconds / by_ratio.select_seconds:.2f} |"
        )
    steps = ", ".join(f"{k} {v:.1f}" for k, v in by_ratio.clustering.statistics.seconds.items())
    lines.append(f"\nRatio run steps (s): {steps}.\n")
    return "\n".join(lines)


# -- recall -------------------------------------------------------------------------------------


@dataclass
class Search:
    label: str
    sequences: int
    residues: int
    makedb_seconds: float
    blastp_seconds: float
    raw_pairs: int
    pairs: set[tuple[str, str]]  # after expansion to members
    skipped: str | None = None


def diamond(
    db_fasta: Path, query: Path, work: Path, label: str, extra: Sequence[str] = ()
) -> tuple[float, float, set[tuple[str, str]]]:
    """makedb and blastp seconds, and the (query, target) pairs found; ``extra``: more blastp options."""
    tag = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")
    db = work / f"diamond-{tag}"
    hits = work / f"hits-{tag}.tsv"
    makedb = run(["diamond", "makedb", "--in", db_fasta, "-d", db], work / f"makedb-{tag}.log")
    blastp = run(
        ["diamond", "blastp", "-q", query, "-d", db, "-o", hits, "--threads", str(THREADS),
         "--outfmt", "6", "qseqid", "sseqid", *extra],
        work / f"blastp-{tag}.log",
    )
    pairs = set()
    with hits.open() as handle:
        for line in handle:
            q, s = line.rstrip("\n").split("\t")[:2]
            pairs.add((q, s))
    return makedb, blastp, pairs


def fasta_size(fasta: Path) -> tuple[int, int]:
    records = read_fasta(fasta)
    return len(records), sum(len(seq) for _, seq in records)


def mode_label(extra: Sequence[str]) -> str:
    """How a row names the blastp options it added (none: the defaults)."""
    return f" ({' '.join(extra)})" if extra else ""


def search_full(data: Dataset, query: Path, work: Path, extra: Sequence[str] = ()) -> Search:
    how = mode_label(extra)
    makedb, blastp, pairs = diamond(data.fasta, query, work, "full" + how, extra)
    sequences, residues = fasta_size(data.fasta)
    return Search("full DB" + how, sequences, residues, makedb, blastp, len(pairs), pairs)


def search_ours(
    data: Dataset, ours: Ours, query: Path, work: Path, how: str = "", extra: Sequence[str] = ()
) -> Search:
    c = ours.clustering
    how += mode_label(extra)
    label = f"talaria_storage references at {c.identity:.2f}{how}"
    fasta = work / f"ours-{c.identity:.2f}.fa"
    rep_record: dict[str, str] = {}  # record id written -> reference key
    with fasta.open("wb") as out:
        for key in c.references:
            record = data.records_of[key.sha256][0]
            rep_record[record] = key.sha256
            out.write(b">" + record.encode() + b"\n" + data.residues[key.sha256] + b"\n")
    makedb, blastp, raw = diamond(fasta, query, work, label, extra)
    expanded: set[tuple[str, str]] = set()
    for q, s in raw:
        reference = SequenceKey(rep_record[s])
        for key in (reference, *c.members_of(reference)):
            for record in data.records_of[key.sha256]:
                expanded.add((q, record))
    sequences, residues = fasta_size(fasta)
    return Search(label, sequences, residues, makedb, blastp, len(raw), expanded)


_CLSTR_MEMBER = re.compile(r">(.+?)\.\.\. ")


def read_clstr(path: Path) -> dict[str, list[str]]:
    """Representative record id -> every record id of its cluster, from a CD-HIT ``.clstr``."""
    clusters: dict[str, list[str]] = {}
    current: list[str] = []
    rep: str | None = None

    def close() -> None:
        if current:
            assert rep is not None, "a .clstr cluster without a representative"
            clusters[rep] = list(current)

    with path.open() as handle:
        for line in handle:
            if line.startswith(">Cluster"):
                close()
                current, rep = [], None
                continue
            match = _CLSTR_MEMBER.search(line)
            if match is None:
                continue
            current.append(match.group(1))
            if line.rstrip().endswith("*"):
                rep = match.group(1)
    close()
    return clusters


def search_cdhit(identity: float, out: Path, query: Path, work: Path) -> Search:
    label = f"CD-HIT representatives at {identity:.2f}"
    clusters = read_clstr(Path(f"{out}.clstr"))
    makedb, blastp, raw = diamond(out, query, work, label)
    expanded = {(q, record) for q, s in raw for record in clusters[s]}
    sequences, residues = fasta_size(out)
    return Search(label, sequences, residues, makedb, blastp, len(raw), expanded)


def _accession(word: str) -> str:
    parts = word.split("|")
    return parts[1] if len(parts) == 3 and parts[0] in ("sp", "tr") else word


def search_linclust(fasta: Path, work: Path, identity: float, query: Path) -> Search:
    """linclust's representatives at ``identity`` searched, each hit expanded through its cluster."""
    label = f"mmseqs easy-linclust representatives at {identity:.2f}"
    reason = missing("mmseqs")
    if reason:
        return Search(label, 0, 0, 0, 0, 0, set(), skipped=reason)
    run_mmseqs(fasta, work, "easy-linclust", identity, None)
    prefix = work / f"easy-linclust-{identity:.2f}"
    # mmseqs names a UniProt record by its accession (sp|P12345|NAME -> P12345), DIAMOND by the
    # header's first word: the cluster table is read in accessions and mapped back.
    word_of = {_accession(word): word for word, _ in read_fasta(fasta)}
    clusters: dict[str, list[str]] = {}
    with Path(f"{prefix}_cluster.tsv").open() as handle:
        for line in handle:
            rep, member = line.rstrip("\n").split("\t")[:2]
            clusters.setdefault(rep, []).append(word_of[member])
    reps = Path(f"{prefix}_rep_seq.fasta")
    makedb, blastp, raw = diamond(reps, query, work, label)
    expanded = {(q, record) for q, s in raw for record in clusters[_accession(s)]}
    sequences, residues = fasta_size(reps)
    return Search(label, sequences, residues, makedb, blastp, len(raw), expanded)


def recall_table(full: Search, searches: list[Search]) -> str:
    lines = [
        ("| DB searched | sequences | sequences / full | residues / full | makedb s | blastp s "
        "| blastp s / full | (query, target) pairs hit | pairs after expansion | full-DB pairs found "
        "| recall | expanded pairs not in full search |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        (f"| {full.label} | {full.sequences:,} | 1 | 1 | {full.makedb_seconds:.2f} | {full.blastp_seconds:.2f} "
        f"| 1 | {full.raw_pairs:,} | {len(full.pairs):,} | {len(full.pairs):,} | 1 | 0 |"),
    ]
    for s in searches:
        if s.skipped is not None:
            lines.append(f"| {s.label} | skipped: {s.skipped} | | | | | | | | | | |")
            continue
        found = len(s.pairs & full.pairs)
        lines.append(
            f"| {s.label} | {s.sequences:,} | {s.sequences / full.sequences:.3f} "
            f"| {s.residues / full.residues:.3f} | {s.makedb_seconds:.2f} | {s.blastp_seconds:.2f} "
            f"| {s.blastp_seconds / full.blastp_seconds:.2f} | {s.raw_pairs:,} | {len(s.pairs):,} "
            f"| {found:,} | {found / len(full.pairs):.4f} | {len(s.pairs - full.pairs):,} |"
        )
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


#: DIAMOND modes ``--sensitivity`` adds: the --ratio 0.5 references searched more sensitively, and the
#: full DB at the same mode for its cost (recall is always against the full DB at the defaults).
SENSITIVITY_MODES = (("--mid-sensitive",), ("--sensitive",), ("--sensitive", "-k", "100"))


def recall_only(protein: Path, work: Path, sensitivity: bool = False) -> None:
    """The issue's loop: the full DB's hits against the 50 % references' hits expanded, and kept fractions."""
    db_fa = work / "mmseqs2_example_DB.fa"
    write_decompressed([protein / "mmseqs2_example_DB.fasta.gz"], db_fa)
    example = load("mmseqs2_example", db_fa)
    query_fa = work / "mmseqs2_example_QUERY.fa"
    write_decompressed([protein / "mmseqs2_example_QUERY.fasta.gz"], query_fa)
    print("### Recall after reduction (DIAMOND blastp defaults, 500 queries against mmseqs2_example_DB)\n")
    reason = missing("diamond")
    if reason:
        print(f"skipped: {reason}")
        return
    full = search_full(example, query_fa, work)
    by_ratio = run_ours(example, SelectionParameters.for_ratio(0.5, coverage=COVERAGE))
    searches = [
        search_ours(example, run_ours(example, SelectionParameters(identity=0.5, coverage=COVERAGE)), query_fa, work),
        search_ours(example, by_ratio, query_fa, work, " (--ratio 0.5)"),
        search_linclust(db_fa, work, 0.5, query_fa),
    ]
    if sensitivity:
        for extra in SENSITIVITY_MODES:
            searches.append(search_ours(example, by_ratio, query_fa, work, " (--ratio 0.5)", extra))
            searches.append(search_full(example, query_fa, work, extra))
    _, cdhit_out = run_cdhit(db_fa, work, 0.5)
    if cdhit_out is not None:
        searches.append(search_cdhit(0.5, cdhit_out, query_fa, work))
    print(recall_table(full, searches))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only mmseqs2_example at 0.9 and the recall at 0.9")
    parser.add_argument("--recall", action="store_true", help="only the recall loop (mmseqs2_example at 0.5)")
    parser.add_argument(
        "--sensitivity", action="store_true",
        help="with --recall: also search the --ratio 0.5 references and the full DB at DIAMOND's more sensitive modes",
    )
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the temporary files (default: system)")
    parser.add_argument(
        "--cluster-timeout", type=float, default=180.0, metavar="S",
        help="stop `mmseqs easy-cluster` after S seconds (its row then says skipped)",
    )
    args = parser.parse_args()
    data_dir = require_shared_data()
    protein = data_dir / "protein"
    if args.tmp is not None:
        args.tmp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-reduce-", dir=args.tmp) as folder:
        work = Path(folder)
        print("### Reference selection beside CD-HIT and MMseqs2\n")
        print(
            f"cd-hit, mmseqs and diamond with {THREADS} threads; ours with `processes=None` "
            f"({len(os.sched_getaffinity(0))} cores). Seconds are wall time of one run; ours include "
            f"parsing and hashing the FASTA (see notes). Measured at {provenance()}.\n"
        )
        if args.recall:
            recall_only(protein, work, args.sensitivity)
            return
        if not args.quick:
            uniprot_fa = work / "uniprot15.fa"
            files = sorted((protein / "uniprot_proteomes").glob("*.fasta.gz"))
            write_decompressed(files, uniprot_fa)
            uniprot = load("uniprot15", uniprot_fa)
            checks: list[Check] = []
            print(f"### uniprot15 ({len(files)} proteomes, {uniprot_fa.stat().st_size:,} bytes of FASTA)\n")
            for identity in (0.9, 0.8):
                level = cluster_level(uniprot, work, identity, args.cluster_timeout)
                print(clustering_table(f"identity {identity}", level.rows, uniprot), flush=True)
                checks += check_level(uniprot, level)
            del uniprot
        else:
            checks = []

        db_fa = work / "mmseqs2_example_DB.fa"
        write_decompressed([protein / "mmseqs2_example_DB.fasta.gz"], db_fa)
        example = load("mmseqs2_example", db_fa)
        print(f"### mmseqs2_example ({db_fa.stat().st_size:,} bytes of FASTA)\n")
        levels: dict[float, Level] = {}
        for identity in (0.9,) if args.quick else (0.9, 0.5, 0.3):
            levels[identity] = cluster_level(example, work, identity, args.cluster_timeout)
            print(clustering_table(f"identity {identity}", levels[identity].rows, example), flush=True)
            checks += check_level(example, levels[identity])

        if not args.quick:
            print(ratio_table(example, 0.5, levels), flush=True)

        print(
            f"### Membership check: {CHECK_SAMPLE} members per clustering re-aligned with BLOSUM62\n\n"
            "Each sampled member is aligned to its reference again, globally with BLOSUM62 and gaps "
            "-11/-1, the reference's overhanging ends free (Biopython `PairwiseAligner`), and scored as "
            "CD-HIT defines it: identical residues / member length, coverage = member span aligned / "
            f"member length (threshold {COVERAGE}). CD-HIT members identical to their representative "
            "are left out (ours never has them).\n"
        )
        print(check_table(checks) + "\n", flush=True)

        print("### Recall after reduction (DIAMOND blastp, 500 queries against mmseqs2_example_DB)\n")
        reason = missing("diamond")
        if reason:
            print(f"skipped: {reason}")
            return
        print("[recall] ...", file=sys.stderr, flush=True)
        query_fa = work / "mmseqs2_example_QUERY.fa"
        write_decompressed([protein / "mmseqs2_example_QUERY.fasta.gz"], query_fa)
        full = search_full(example, query_fa, work)
        searches: list[Search] = []
        for identity in sorted(levels, reverse=True):
            level = levels[identity]
            if identity not in (0.9, 0.5):
                continue
            if level.ours is not None:
                searches.append(search_ours(example, level.ours, query_fa, work))
            if level.cdhit_out is not None:
                searches.append(search_cdhit(identity, level.cdhit_out, query_fa, work))
            else:
                searches.append(Search(f"CD-HIT representatives at {identity:.2f}", 0, 0, 0, 0, 0, set(),
                                       skipped="no CD-HIT result at this identity"))
        print(recall_table(full, searches))
        print(
            "\nA hit on a reference counts for the reference and every member of its cluster "
            "(every record carrying one of those sequences). Recall = full-DB pairs found after that "
            "expansion / full-DB pairs; the last column is expanded pairs the full search did not report."
        )


if __name__ == "__main__":
    main()
