"""The delta codec on real reference/member pairs: size of each form, speed, round trips, and zstd -19 bars.

Each dataset's distinct sequences (upper-cased; identical sequences count
once, by SHA-256) go through ``select_references`` at identity 0.9 and
coverage 0.8 (:mod:`talaria_storage.reduction.selection`, a process pool
over all cores); every member is then delta-encoded against its reference
with :func:`talaria_storage.reduction.delta.encode` in each form:
``EDIT_SCRIPT``, ``ZSTD_PREFIX`` and ``None`` (both made, the smaller kept).
The datasets, read in place from ``../shared/data`` (``SOURCES.md`` there):

* ``mmseqs2_DB``: ``protein/mmseqs2_example_DB.fasta.gz`` (protein);
* ``uniprot15``: the 15 proteomes in ``protein/uniprot_proteomes/`` together (protein);
* ``wol16s`` and ``wol23s``: ``nucleotide/wol_16s_rRNA.fa.zst`` and
  ``wol_23s_rRNA.fa.zst`` (rRNA genes, nucleotide);
* ``resfinder_all``: the distinct sequences of all 14 ResFinder releases in
  ``versions/resfinder`` together (nucleotide).

Per dataset and form the tables give: the total delta bytes, bits per member
residue (8 x bytes / member residues), which form is the smaller member by
member (a tie counts for ``EDIT_SCRIPT``, as ``encode`` decides it), encode
and decode speed in MB/s of member residues (one pass, single thread; the
``None`` encode makes both forms), and round-trip failures (``decode`` not
giving back the child, or raising; must be 0, and every failure is listed
with a reproducer). Beside them, zstd level 19 (``zstandard``, one thread,
the same library as the ``zstd -19`` CLI) on the same members:

* (a) each member compressed alone (``ZstdCompressor(level=19)``, a normal
  frame with magic and content size);
* (b) all member residues one per line as one stream: the "sequence-only
  zstd -19" bar of ``BASELINES.md`` (0.235 bits/base on the whole 16S file),
  restricted to the members;
* (c) the whole reduced set against the plain one: all distinct sequences
  one per line as one zstd -19 stream, against the references as one zstd
  -19 stream plus the sum of the best-of-both deltas, both in bits per
  distinct residue.

A last table splits the members by their identity to the reference (as
``select_references`` measured it) and gives, per bucket, how often
``ZSTD_PREFIX`` is the smaller, the mean delta sizes and the mean number of
ops in the ``EDIT_SCRIPT`` deltas (read from their payload's op count).

Streams are in first-occurrence input order. Ratios are ours / baseline
(below 1 means the delta is smaller). ``BASELINES.md``'s own seq-only figure
(all records of the file, duplicates included) is quoted for context.
The time ``select_references`` took is given per dataset. Failing pairs are
written to ``$TMPDIR/bench_delta_failures`` (or ``--tmp``) as FASTA.

Run:  cd benchmarks && ../.venv/bin/python bench_delta.py [--quick] [--datasets NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zstandard
from _data import baseline_results, read_decompressed, require_shared_data

from talaria_storage.reduction import delta
from talaria_storage.reduction.selection import SelectionParameters, select_references

IDENTITY = 0.9
COVERAGE = 0.8
ZSTD_LEVEL = 19
FORMS: tuple[tuple[str, delta.DeltaForm | None], ...] = (
    ("EDIT_SCRIPT", delta.DeltaForm.EDIT_SCRIPT),
    ("ZSTD_PREFIX", delta.DeltaForm.ZSTD_PREFIX),
    ("None (best of both)", None),
)
IDENTITY_BUCKETS: tuple[tuple[float, float, str], ...] = (
    (0.0, 0.95, "0.90-0.95"),
    (0.95, 0.99, "0.95-0.99"),
    (0.99, 1.0, "0.99-<1.00"),
    (1.0, 2.0, "1.00 (sub-/superstring)"),
)
QUICK_DATASETS = ("mmseqs2_DB", "wol16s")

Record = tuple[str, bytes]  # (record id, upper-case residues)


# -- data ---------------------------------------------------------------------------------------


def fasta_records(data: bytes) -> Iterator[Record]:
    """(first word of the header, upper-cased residues) of every record of a FASTA text."""
    for block in data.split(b"\n>"):
        if not block.strip():
            continue
        header, _, body = block.partition(b"\n")
        name = header.lstrip(b">").split(maxsplit=1)
        residues = b"".join(body.split()).upper()
        if residues:
            yield (name[0].decode("ascii", "replace") if name else "?"), residues


@dataclass(frozen=True)
class Dataset:
    name: str
    alphabet: str
    files: Callable[[Path], list[Path]]
    baseline_key: str | None  # the BASELINES.md dataset whose seq-only figure is quoted

    def records(self, data: Path) -> Iterator[Record]:
        for path in self.files(data):
            yield from fasta_records(read_decompressed(path))


DATASETS: tuple[Dataset, ...] = (
    Dataset("mmseqs2_DB", "protein", lambda d: [d / "protein" / "mmseqs2_example_DB.fasta.gz"], "mmseqs2_DB"),
    Dataset("uniprot15", "protein", lambda d: sorted((d / "protein" / "uniprot_proteomes").glob("*.fasta.gz")),
            "uniprot15"),
    Dataset("wol16s", "nucleotide", lambda d: [d / "nucleotide" / "wol_16s_rRNA.fa.zst"], "wol16s"),
    Dataset("wol23s", "nucleotide", lambda d: [d / "nucleotide" / "wol_23s_rRNA.fa.zst"], "wol23s"),
    Dataset("resfinder_all", "nucleotide", lambda d: sorted((d / "versions" / "resfinder").glob("*.fasta.zst")),
            None),
)


# -- measuring ----------------------------------------------------------------------------------


@dataclass
class Failure:
    dataset: str
    form: str
    member_id: str
    reference_id: str
    member_length: int
    reference_length: int
    problem: str


@dataclass
class FormResult:
    form: str
    total_bytes: int = 0
    sizes: list[int] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)
    ops: list[int] = field(default_factory=list)  # op count of each EDIT_SCRIPT delta (0 for the other form)
    encode_s: float = 0.0
    decode_s: float = 0.0
    failures: int = 0


@dataclass
class DatasetResult:
    name: str
    alphabet: str
    records: int
    distinct: int
    distinct_residues: int
    references: int
    members: int
    member_residues: int
    select_s: float
    select_steps: dict[str, float]
    identities: list[float]
    member_lengths: list[int]
    forms: dict[str, FormResult]
    alone_zstd_bytes: int
    members_stream_bytes: int
    distinct_stream_bytes: int
    references_stream_bytes: int
    baseline_seq_only: float | None
    failures: list[Failure]


def zstd19(data: bytes) -> int:
    return len(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data))


def stream(sequences: list[bytes]) -> bytes:
    """Sequences one per line, as ``seqkit seq -s -w 0`` writes them."""
    return b"".join(s + b"\n" for s in sequences)


def log(message: str) -> None:
    print(f"[bench_delta {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def edit_ops(encoded: bytes) -> int:
    """The op count an EDIT_SCRIPT delta starts with (layout in the delta module's docstring)."""
    body = encoded[2:]
    if encoded[1] == 1:
        body = zstandard.ZstdDecompressor(format=zstandard.FORMAT_ZSTD1_MAGICLESS).decompress(body)
    value = shift = 0
    for byte in body:
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    return value


def save_reproducer(tmp: Path, failure: Failure, reference: bytes, child: bytes) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in failure.member_id)[:80]
    path = tmp / f"fail_{failure.dataset}_{failure.form.split()[0]}_{safe}.fa"
    path.write_bytes(
        f">reference {failure.reference_id} length={len(reference)}\n".encode() + reference + b"\n"
        + f">child {failure.member_id} length={len(child)}\n".encode() + child + b"\n"
    )


def measure_form(
    dataset: str,
    label: str,
    form: delta.DeltaForm | None,
    pairs: list[tuple[bytes, bytes]],
    names: list[tuple[str, str]],
    failures: list[Failure],
    tmp: Path,
) -> FormResult:
    result = FormResult(label)
    deltas: list[bytes | None] = []
    started = time.perf_counter()
    for number, (reference, child) in enumerate(pairs):
        try:
            deltas.append(delta.encode(reference, child, form))
        except Exception as exc:  # noqa: BLE001 - a codec failure is a finding, not a crash
            deltas.append(None)
            failures.append(Failure(dataset, label, names[number][0], names[number][1], len(child),
                                    len(reference), f"encode raised {type(exc).__name__}: {exc}"))
    result.encode_s = time.perf_counter() - started
    decoded: list[bytes | None] = []
    started = time.perf_counter()
    for (reference, _), encoded in zip(pairs, deltas):
        if encoded is None:
            decoded.append(None)
            continue
        try:
            decoded.append(delta.decode(reference, encoded))
        except Exception as exc:  # noqa: BLE001
            decoded.append(exc)  # type: ignore[arg-type]
    result.decode_s = time.perf_counter() - started
    for number, ((reference, child), encoded, out) in enumerate(zip(pairs, deltas, decoded)):
        if encoded is None:
            result.failures += 1
            result.sizes.append(0)
            result.tags.append(0)
            result.ops.append(0)
            continue
        result.sizes.append(len(encoded))
        result.tags.append(encoded[0])
        result.ops.append(edit_ops(encoded) if encoded[0] == delta.DeltaForm.EDIT_SCRIPT else 0)
        result.total_bytes += len(encoded)
        if isinstance(out, bytes) and out == child:
            continue
        result.failures += 1
        problem = (f"decode raised {type(out).__name__}: {out}" if isinstance(out, Exception)
                   else f"decode gave {len(out)} residues that differ from the child")  # type: ignore[arg-type]
        failure = Failure(dataset, label, names[number][0], names[number][1], len(child), len(reference), problem)
        failures.append(failure)
        save_reproducer(tmp, failure, reference, child)
    return result


def run_dataset(spec: Dataset, data: Path, tmp: Path) -> DatasetResult:
    log(f"{spec.name}: reading")
    distinct: dict[str, Record] = {}  # sha256 hex -> first (id, residues), in input order
    records = 0
    for name, residues in spec.records(data):
        records += 1
        distinct.setdefault(hashlib.sha256(residues).hexdigest(), (name, residues))
    log(f"{spec.name}: {records:,} records, {len(distinct):,} distinct; selecting references")
    started = time.perf_counter()
    clustering = select_references(
        ((sha, residues, None) for sha, (_, residues) in distinct.items()),
        SelectionParameters(identity=IDENTITY, coverage=COVERAGE),
        processes=None,
    )
    select_s = time.perf_counter() - started
    member_shas = [sha for sha in distinct if (sha, None) in clustering.members]  # input order
    pairs: list[tuple[bytes, bytes]] = []
    names: list[tuple[str, str]] = []
    identities: list[float] = []
    for sha in member_shas:
        membership = clustering.members[(sha, None)]  # type: ignore[index]
        ref_name, ref_residues = distinct[membership.reference.sha256]
        member_name, member_residues = distinct[sha]
        pairs.append((ref_residues, member_residues))
        names.append((member_name, ref_name))
        identities.append(membership.identity)
    member_residues = sum(len(child) for _, child in pairs)
    log(f"{spec.name}: {len(clustering.references):,} references, {len(pairs):,} members "
        f"({member_residues:,} residues) in {select_s:.1f} s")

    failures: list[Failure] = []
    forms: dict[str, FormResult] = {}
    for label, form in FORMS:
        log(f"{spec.name}: form {label}")
        forms[label] = measure_form(spec.name, label, form, pairs, names, failures, tmp)

    log(f"{spec.name}: zstd -19 baselines")
    alone = sum(zstd19(child) for _, child in pairs)
    members_stream = zstd19(stream([child for _, child in pairs]))
    distinct_stream = zstd19(stream([residues for _, residues in distinct.values()]))
    reference_set = {key.sha256 for key in clustering.references}
    references_stream = zstd19(stream([residues for sha, (_, residues) in distinct.items() if sha in reference_set]))
    baseline = baseline_results().get(spec.baseline_key or "", {}).get("seq_only", {}).get("zstd -19")
    return DatasetResult(
        name=spec.name, alphabet=spec.alphabet, records=records, distinct=len(distinct),
        distinct_residues=sum(len(r) for _, r in distinct.values()), references=len(clustering.references),
        members=len(pairs), member_residues=member_residues, select_s=select_s,
        select_steps=dict(clustering.statistics.seconds), identities=identities,
        member_lengths=[len(child) for _, child in pairs], forms=forms,
        alone_zstd_bytes=alone, members_stream_bytes=members_stream, distinct_stream_bytes=distinct_stream,
        references_stream_bytes=references_stream, baseline_seq_only=baseline, failures=failures,
    )


# -- tables -------------------------------------------------------------------------------------


def bits(total_bytes: int, residues: int) -> float:
    return 8 * total_bytes / residues if residues else float("nan")


def mbps(residues: int, seconds: float) -> float:
    return residues / 1e6 / seconds if seconds > 0 else float("nan")


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def selection_table(results: list[DatasetResult]) -> str:
    lines = [
        ("| dataset | alphabet | records | distinct | distinct residues | references | members | member residues "
        "| median member identity | select_references s (prefilter / align) |"),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        median = statistics.median(r.identities) if r.identities else float("nan")
        steps = r.select_steps
        lines.append(
            f"| {r.name} | {r.alphabet} | {r.records:,} | {r.distinct:,} | {r.distinct_residues:,} | {r.references:,} "
            f"| {r.members:,} | {r.member_residues:,} | {median:.3f} | {r.select_s:.1f} "
            f"({steps.get('prefilter', 0):.1f} / {steps.get('align', 0):.1f}) |"
        )
    return "\n".join(lines)


def wins(r: DatasetResult) -> tuple[int, int]:
    """Members where EDIT_SCRIPT is the smaller or equal, and where ZSTD_PREFIX is strictly smaller."""
    edit, prefix = r.forms["EDIT_SCRIPT"].sizes, r.forms["ZSTD_PREFIX"].sizes
    zstd_wins = sum(1 for e, z in zip(edit, prefix) if z < e)
    return len(edit) - zstd_wins, zstd_wins


def form_table(results: list[DatasetResult]) -> str:
    lines = [
        ("| dataset | form | delta bytes | bits / member residue | EDIT_SCRIPT kept | ZSTD_PREFIX kept "
        "| encode MB/s | decode MB/s | round-trip failures | vs (a) zstd-19 alone | vs (b) members stream |"),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        edit_wins, zstd_wins = wins(r)
        for label, form in FORMS:
            f = r.forms[label]
            if form is None:
                kept_edit = sum(1 for t in f.tags if t == delta.DeltaForm.EDIT_SCRIPT)
                kept_zstd = sum(1 for t in f.tags if t == delta.DeltaForm.ZSTD_PREFIX)
                shares = f"{pct(kept_edit, r.members)} | {pct(kept_zstd, r.members)}"
            elif form is delta.DeltaForm.EDIT_SCRIPT:
                shares = f"{pct(edit_wins, r.members)} smaller/tie | -"
            else:
                shares = f"- | {pct(zstd_wins, r.members)} smaller"
            lines.append(
                f"| {r.name} | {label} | {f.total_bytes:,} | {bits(f.total_bytes, r.member_residues):.4f} | {shares} "
                f"| {mbps(r.member_residues, f.encode_s):.2f} | {mbps(r.member_residues, f.decode_s):.1f} "
                f"| {f.failures} | {f.total_bytes / r.alone_zstd_bytes:.3f} "
                f"| {f.total_bytes / r.members_stream_bytes:.3f} |"
            )
    return "\n".join(lines)


def baseline_table(results: list[DatasetResult]) -> str:
    lines = [
        ("| dataset | (a) zstd-19 each member alone, bits/res | (b) members as one zstd-19 stream, bits/res "
        "| best-of-both deltas, bits/res | best / (a) | best / (b) | BASELINES.md seq-only zstd -19 (whole file) |"),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        best = r.forms["None (best of both)"].total_bytes
        quoted = f"{r.baseline_seq_only:.3f}" if r.baseline_seq_only is not None else "- (only 2025-12 release: 0.517)"
        lines.append(
            f"| {r.name} | {bits(r.alone_zstd_bytes, r.member_residues):.4f} "
            f"| {bits(r.members_stream_bytes, r.member_residues):.4f} | {bits(best, r.member_residues):.4f} "
            f"| {best / r.alone_zstd_bytes:.3f} | {best / r.members_stream_bytes:.3f} | {quoted} |"
        )
    return "\n".join(lines)


def whole_set_table(results: list[DatasetResult]) -> str:
    lines = [
        ("| dataset | distinct residues | (c) plain: distinct seqs as one zstd-19 stream, bytes (bits/res) "
        "| references stream, bytes | + deltas (best of both), bytes | reduced total, bytes (bits/res) "
        "| reduced / plain |"),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        deltas = r.forms["None (best of both)"].total_bytes
        reduced = r.references_stream_bytes + deltas
        lines.append(
            f"| {r.name} | {r.distinct_residues:,} | {r.distinct_stream_bytes:,} "
            f"({bits(r.distinct_stream_bytes, r.distinct_residues):.4f}) | {r.references_stream_bytes:,} "
            f"| {deltas:,} | {reduced:,} ({bits(reduced, r.distinct_residues):.4f}) "
            f"| {reduced / r.distinct_stream_bytes:.3f} |"
        )
    return "\n".join(lines)


def both_forms_table(results: list[DatasetResult]) -> str:
    lines = [
        ("| dataset | EDIT_SCRIPT only, bytes | ZSTD_PREFIX only, bytes | best of both, bytes "
        "| best / smaller single form | worst member EDIT/ZSTD size | worst member ZSTD/EDIT size |"),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        edit, prefix = r.forms["EDIT_SCRIPT"], r.forms["ZSTD_PREFIX"]
        best = r.forms["None (best of both)"].total_bytes
        pairs = [(e, z) for e, z in zip(edit.sizes, prefix.sizes) if e and z]
        worst_edit = max((e / z for e, z in pairs), default=float("nan"))
        worst_zstd = max((z / e for e, z in pairs), default=float("nan"))
        lines.append(
            f"| {r.name} | {edit.total_bytes:,} | {prefix.total_bytes:,} | {best:,} "
            f"| {best / min(edit.total_bytes, prefix.total_bytes):.3f} | {worst_edit:.1f}x | {worst_zstd:.1f}x |"
        )
    return "\n".join(lines)


def identity_table(results: list[DatasetResult]) -> str:
    lines = [
        ("| dataset | member identity | members | ZSTD_PREFIX smaller | mean EDIT_SCRIPT bytes "
        "| mean ZSTD_PREFIX bytes | mean best bytes | best bits/res | mean EDIT_SCRIPT ops |"),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        edit, prefix, best = (r.forms[label].sizes for label, _ in FORMS)
        ops = r.forms["EDIT_SCRIPT"].ops
        lengths = r.member_lengths
        for low, high, label in IDENTITY_BUCKETS:
            chosen = [i for i, x in enumerate(r.identities) if low <= x < high]
            if not chosen:
                continue
            zstd_wins = sum(1 for i in chosen if prefix[i] < edit[i])
            residues = sum(lengths[i] for i in chosen)
            best_total = sum(best[i] for i in chosen)
            lines.append(
                f"| {r.name} | {label} | {len(chosen):,} | {pct(zstd_wins, len(chosen))} "
                f"| {statistics.fmean(edit[i] for i in chosen):.1f} | {statistics.fmean(prefix[i] for i in chosen):.1f} "
                f"| {statistics.fmean(best[i] for i in chosen):.1f} | {bits(best_total, residues):.4f} "
                f"| {statistics.fmean(ops[i] for i in chosen):.1f} |"
            )
    return "\n".join(lines)


def failure_section(results: list[DatasetResult]) -> str:
    failures = [f for r in results for f in r.failures]
    if not failures:
        return "Round trips: every decode gave back its child exactly (0 failures in every dataset and form)."
    lines = [
        f"**{len(failures)} round-trip failure(s).** Reproducers (reference, then child, as FASTA) are in the temp folder.\n",
        "| dataset | form | member id | member length | reference id | reference length | problem |",
        "|---|---|---|---:|---|---:|---|",
    ]
    for f in failures[:50]:
        lines.append(f"| {f.dataset} | {f.form} | {f.member_id} | {f.member_length} | {f.reference_id} "
                     f"| {f.reference_length} | {f.problem[:200]} |")
    if len(failures) > 50:
        lines.append(f"| ... {len(failures) - 50} more | | | | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only {' and '.join(QUICK_DATASETS)} (a smoke run)")
    parser.add_argument("--datasets", nargs="+", choices=[d.name for d in DATASETS], help="run these datasets only")
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()) / "bench_delta_failures",
                        help="where failing pairs are written (default %(default)s)")
    args = parser.parse_args()
    data = require_shared_data()
    wanted = args.datasets or (list(QUICK_DATASETS) if args.quick else [d.name for d in DATASETS])
    results: list[DatasetResult] = []
    started = time.perf_counter()
    for spec in DATASETS:
        if spec.name in wanted:
            result = run_dataset(spec, data, args.tmp)
            results.append(result)
    elapsed = time.perf_counter() - started
    print(f"### Delta codec on the members of `select_references` (identity {IDENTITY}, coverage {COVERAGE})\n")
    print(f"zstandard {zstandard.__version__} (libzstd {'.'.join(map(str, zstandard.ZSTD_VERSION))}), "
          f"level {ZSTD_LEVEL} everywhere; {time.strftime('%Y-%m-%d')}; total wall time {elapsed / 60:.1f} min.\n")
    print("#### Datasets and reference selection\n")
    print(selection_table(results))
    print("\n#### Each form on every member\n")
    print("bits / member residue = 8 x delta bytes / member residues; MB/s = member residues per second "
          "(one pass, one thread). 'kept' in the EDIT_SCRIPT and ZSTD_PREFIX rows says in what share of members "
          "that form is the smaller (a tie counts for EDIT_SCRIPT); in the None row, which form `encode` kept. "
          "Ratios are delta bytes / baseline bytes on the same members.\n")
    print(form_table(results))
    print("\n#### Against zstd -19 on the same members\n")
    print(baseline_table(results))
    print("\n#### The whole set: references + deltas against the plain distinct-sequence stream\n")
    print(whole_set_table(results))
    print("\n#### Does keeping both forms pay?\n")
    print(both_forms_table(results))
    print("\n#### Which form wins, by member identity to its reference\n")
    print(identity_table(results))
    print()
    print(failure_section(results))


if __name__ == "__main__":
    main()
