"""Sequence databases (issue #3): stored size, import speed, look-ups, versions, peak memory.

Everything goes through the public API only -- ``talaria_storage.open_store(path)``,
``open_database(store, name).import_files(...)``, ``db.get_all(...)``, ``db.stats()`` -- on the
embedded default store (a filesystem store, fsync per object) in a temporary folder, so
the figures are what a user of the current code gets. Real data is read in place from
``../shared/data``; the peers are measured live beside the store where they are
installed (``zstd``, ``xz``, pyfastx) and quoted from ``shared/data/baselines/results.json``
where they are not (ennaf, samtools). Subcommands, each printing a markdown table:

``size``
    stored bytes (chunks + manifests, as files in the store) per dataset against
    ``zstd -19`` and ``xz -9`` run live on the same uncompressed FASTA and the ennaf -22
    figures of BASELINES.md, as ratios (FASTA bytes / compressed bytes). Targets: at
    least ennaf's 2.83 on uniprot15, at least ``xz -9`` elsewhere.
``throughput``
    import MB/s of uncompressed FASTA and sequences/s, best of ``--repeat`` imports,
    each into a fresh store. Target: >= 50 MB/s on uniprot15.
``lookups``
    1,000 random look-ups by accession (``random.Random(42)``, the same names BASELINES
    picked) from the store, through one ``db.snapshot()`` (the version resolved once, as
    ``talaria-storage get`` does for its IDs): *cold* on a freshly opened store (index
    built beforehand, no decoded chunk cached) and *warm* (the same 1,000 again); and
    warm through ``db.get``, which re-reads HEAD on every call. Medians of 3 fresh opens.
    Against pyfastx live on the plain and the ``gzip -6`` file and samtools faidx as
    quoted. Target: <= 60 ms cold.
``versions``
    the 14 ResFinder releases imported one after another as versions of one database:
    total stored bytes against one release alone; new bytes per release. Target: <= 1.3x.
``memory``
    peak memory of an import of a ``--size-mib`` FASTA (default 1 GiB) built in a temporary
    folder from the UniProt proteomes, the import running in a child process: exact
    per-process peaks (``getrusage``) and the sampled peak of the whole process tree
    (importer + worker processes, PSS and RSS sums via psutil). Target: <= 500 MB.
``all``
    all of the above; ``--quick`` takes small sizes and the peers' figures from
    results.json instead of running zstd -19 / xz -9 (minutes on this machine).

Run from this folder::

    ../.venv/bin/python bench_database.py all
    ../.venv/bin/python bench_database.py size --only uniprot15,wol16s
    ../.venv/bin/python bench_database.py memory --size-mib 100

Temporary files (decompressed inputs, stores, the big FASTA) go under ``--work`` (default:
a fresh folder in the system temp dir, deleted at the end); nothing is written in the repo.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from _data import SHARED_DATA, baseline_results, require_shared_data, write_decompressed
from bench_formats import datasets, taxonomy_of

import talaria_storage
from talaria_storage import open_database
from talaria_storage.sequences.identifiers import accession_from_header

UNIPROT = "uniprot15"
ENNAF_TARGET = 2.83  # ennaf -22 on uniprot15, BASELINES.md
THROUGHPUT_TARGET_MBS = 50.0
LOOKUP_TARGET_MS = 60.0
VERSIONS_TARGET = 1.3
MEMORY_TARGET_BYTES = 500_000_000
QUICK_DATASETS = ("mmseqs2_DB", "ecoli536", "resfinder2025")
LOOKUP_COUNT = 1000


def log(message: str) -> None:
    """Progress on stderr, so stdout stays a clean markdown report."""
    print(message, file=sys.stderr, flush=True)


def stored_bytes(store_dir: Path) -> int:
    """Bytes of every chunk and manifest object as the filesystem store holds them."""
    total = 0
    for namespace in ("chunks", "manifests"):
        for root, _, files in os.walk(store_dir / namespace):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def record_names(fasta: Path) -> list[str]:
    """First header token of every record, as BASELINES' ``names_of`` reads them."""
    names = []
    with fasta.open("rb") as handle:
        for line in handle:
            if line.startswith(b">"):
                names.append(line[1:].split()[0].decode())
    return names


def lookup_names(fasta: Path) -> list[str] | None:
    """The 1,000 distinct record names BASELINES looked up (same seed, same draw), or None."""
    unique = list(dict.fromkeys(record_names(fasta)))
    if len(unique) < LOOKUP_COUNT:
        return None  # the genomes: BASELINES looked up 1 kb regions there, see lookups()
    return random.Random(42).sample(unique, LOOKUP_COUNT)


def run_timed(command: str) -> float:
    """Wall seconds of a shell command (``bash -c``, as BASELINES runs them)."""
    start = time.perf_counter()
    subprocess.run(["bash", "-c", command], check=True)
    return time.perf_counter() - start


@dataclass
class ImportRun:
    seconds: float
    records: int
    fasta_bytes: int
    stored: int
    store_dir: Path


class Workspace:
    """Temporary inputs and stores of one benchmark run, reused across subcommands."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sources = datasets()
        self._imports: dict[str, list[ImportRun]] = {}

    def plain(self, name: str) -> Path:
        """The dataset as one uncompressed FASTA (``zcat FILES > name.fa``, as in BASELINES)."""
        path = self.root / f"{name}.fa"
        if not path.exists():
            log(f"decompressing {name} ...")
            partial = path.with_suffix(".part")
            write_decompressed(self.sources[name], partial)
            partial.rename(path)
        return path

    def fresh_store_dir(self, label: str) -> Path:
        return Path(tempfile.mkdtemp(dir=self.root, prefix=f"store-{label}-"))

    def imports(self, name: str, repeat: int) -> list[ImportRun]:
        """``repeat`` imports of the dataset, each into a fresh store (cached per run)."""
        runs = self._imports.setdefault(name, [])
        while len(runs) < repeat:
            fasta = self.plain(name)
            store_dir = self.fresh_store_dir(name)
            log(f"importing {name} ({len(runs) + 1}/{repeat}) ...")
            with talaria_storage.open_store(str(store_dir)) as store:
                start = time.perf_counter()
                result = open_database(store, name).import_files(
                    [fasta], version="v1", **taxonomy_of(name)
                )
                seconds = time.perf_counter() - start
            runs.append(
                ImportRun(
                    seconds,
                    result.records,
                    fasta.stat().st_size,
                    stored_bytes(store_dir),
                    store_dir,
                )
            )
            if len(runs) > 1:  # keep only the first store (look-ups use it); disks are not free
                shutil.rmtree(store_dir)
        return runs[:repeat]


def chosen(args: argparse.Namespace) -> list[str]:
    names = list(datasets())
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            sys.exit(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(names)}")
        return [n for n in names if n in wanted]
    return [n for n in names if n in QUICK_DATASETS] if args.quick else names


# ---------------------------------------------------------------------------------- size


def peer_bytes(ws: Workspace, name: str, live: bool) -> tuple[int, int, str]:
    """Bytes under ``zstd -19`` and ``xz -9`` (run live, or quoted from results.json)."""
    if not live:
        codecs = baseline_results()[name]["codecs"]
        return codecs["zstd -19"]["bytes"], codecs["xz -9"]["bytes"], "results.json"
    fasta = ws.plain(name)
    out = {}
    for label, command in (
        ("zstd", "zstd -19 -T1 -q -c {i} > {o}"),
        ("xz", "xz -9 -T1 -c {i} > {o}"),
    ):
        target = ws.root / f"{name}.{label}"
        log(f"{label} on {name} ...")
        run_timed(command.format(i=fasta, o=target))
        out[label] = target.stat().st_size
        target.unlink()
    return out["zstd"], out["xz"], "live"


def size(ws: Workspace, names: list[str], live_peers: bool) -> None:
    baselines = baseline_results()
    print("\n### Stored bytes against zstd -19, xz -9 and ennaf -22\n")
    print("ratio = uncompressed FASTA bytes / stored (or compressed) bytes; higher is better.\n")
    print(
        "| dataset | FASTA bytes | stored bytes | store ratio | zstd -19 | xz -9 | ennaf -22 | target | met |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    sources = set()
    for name in names:
        run = ws.imports(name, 1)[0]
        zstd_b, xz_b, source = peer_bytes(ws, name, live_peers)
        sources.add(source)
        ennaf = baselines.get(name, {}).get("codecs", {}).get("ennaf -22", {}).get("bytes")
        ratio = run.fasta_bytes / run.stored
        if name == UNIPROT:
            target, goal = f">= {ENNAF_TARGET} (ennaf)", ENNAF_TARGET
        else:
            goal = run.fasta_bytes / xz_b
            target = f">= {goal:.2f} (xz -9)"
        ennaf_cell = f"{run.fasta_bytes / ennaf:.2f}" if ennaf else "n/a"
        print(
            f"| {name} | {run.fasta_bytes:,} | {run.stored:,} | {ratio:.2f} | {run.fasta_bytes / zstd_b:.2f} "
            f"| {run.fasta_bytes / xz_b:.2f} | {ennaf_cell} | {target} | {'met' if ratio >= goal else 'not met'} |",
            flush=True,
        )
    print(
        f"\nzstd -19 / xz -9: {' and '.join(sorted(sources))} (`-T1`, as in BASELINES.md); ennaf -22: BASELINES.md."
    )


# ---------------------------------------------------------------------------- throughput


def throughput(ws: Workspace, names: list[str], repeat: int) -> None:
    print(f"\n### Import throughput (best of {repeat}, fresh filesystem store each time)\n")
    print("| dataset | FASTA bytes | records | best s | MB/s | sequences/s | target | met |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for name in names:
        runs = ws.imports(name, repeat)
        best = min(runs, key=lambda r: r.seconds)
        mbs = best.fasta_bytes / 1e6 / best.seconds
        target = f">= {THROUGHPUT_TARGET_MBS:.0f} MB/s" if name == UNIPROT else "-"
        met = ("met" if mbs >= THROUGHPUT_TARGET_MBS else "not met") if name == UNIPROT else "-"
        print(
            f"| {name} | {best.fasta_bytes:,} | {best.records:,} | {best.seconds:.2f} | {mbs:.1f} "
            f"| {best.records / best.seconds:,.0f} | {target} | {met} |",
            flush=True,
        )


# ------------------------------------------------------------------------------- lookups

PYFASTX_SNIPPET = r"""
import sys, time, pyfastx
path, names_file = sys.argv[1], sys.argv[2]
names = [l.rstrip("\n") for l in open(names_file)]
t0 = time.perf_counter()
fa = pyfastx.Fasta(path)
t1 = time.perf_counter()
total = sum(len(fa[n].seq) for n in names)
t2 = time.perf_counter()
print(f"{t1 - t0:.6f} {t2 - t1:.6f} {total}")
"""  # the look-up half of BASELINES' PYFASTX_SNIPPET (names only: regions are not measured here)


def pyfastx_times(path: Path, names_file: Path) -> tuple[float, float] | None:
    """(index build s, 1,000 look-ups s) of pyfastx in a fresh process, or None without it."""
    for index in path.parent.glob(path.name + ".fxi"):
        index.unlink()
    done = subprocess.run(
        [sys.executable, "-c", PYFASTX_SNIPPET, str(path), str(names_file)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        log(f"pyfastx failed on {path}: {done.stderr.strip().splitlines()[-1:]}")
        return None
    build, lookups, _ = done.stdout.split()
    return float(build), float(lookups)


LOOKUP_RUNS = 3  # fresh store objects per dataset; the median of each figure is reported


def store_lookup_times(
    store_dir: Path, name: str, accessions: list[str]
) -> tuple[float, float, float, float, int]:
    """(index ready s, cold 1,000 s, warm 1,000 s, warm 1,000 through ``db.get`` s, records not
    found): medians of ``LOOKUP_RUNS`` runs, each on a freshly opened store.

    Cold and warm go through one snapshot (:meth:`SequenceDatabase.snapshot`): the version
    is resolved once. ``db.get`` resolves it on every call (one read of ``refs/<db>/HEAD``),
    so that it sees a version published meanwhile; its column shows what that costs. The
    median, because on a shared machine single runs of ~0.1 s vary by +-50%.
    """
    with talaria_storage.open_store(str(store_dir)) as store:
        open_database(store, name).get(
            accessions[0]
        )  # build the index once, as a user's first query does
    runs = [_lookup_run(store_dir, name, accessions) for _ in range(LOOKUP_RUNS)]
    ready, cold, warm, warm_get = (statistics.median(r[k] for r in runs) for k in range(4))
    return ready, cold, warm, warm_get, max(r[4] for r in runs)


def _lookup_run(store_dir: Path, name: str, accessions: list[str]) -> tuple[float, float, float, float, int]:
    """One run of :func:`store_lookup_times` on a freshly opened store."""
    with talaria_storage.open_store(str(store_dir)) as store:
        db = open_database(store, name)
        start = time.perf_counter()
        snapshot = db.snapshot()  # resolves HEAD, opens (or, if not persistent, rebuilds) the index
        snapshot.get_all("no-such-accession-in-this-benchmark")
        ready = time.perf_counter() - start
        start = time.perf_counter()
        found = [snapshot.get_all(acc) for acc in accessions]
        cold = time.perf_counter() - start
        start = time.perf_counter()
        for acc in accessions:
            snapshot.get_all(acc)
        warm = time.perf_counter() - start
        start = time.perf_counter()
        for acc in accessions:
            db.get_all(acc)
        warm_get = time.perf_counter() - start
    return ready, cold, warm, warm_get, sum(1 for f in found if not f)


def ms(seconds: float | None) -> str:
    """Seconds as a milliseconds table cell."""
    return f"{seconds * 1000:.1f}" if seconds is not None else "n/a"


def pair(times: tuple[float, float] | None) -> str:
    """(build s, look-ups s) as two table cells."""
    return f"{times[0]:.3f} | {ms(times[1])}" if times else "n/a | n/a"


def lookups(ws: Workspace, names: list[str]) -> None:
    baselines = baseline_results()
    print(
        f"\n### {LOOKUP_COUNT:,} random look-ups by accession (random.Random(42), names as in BASELINES.md)\n"
    )
    print(
        "| dataset | store: index ready s | store cold ms | store warm ms | store warm, db.get ms "
        "| pyfastx build s | pyfastx ms | pyfastx on gzip: build s | pyfastx on gzip ms "
        "| samtools faidx ms * | samtools BGZF ms * | target (cold) | met |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    skipped = []
    for name in names:
        fasta = ws.plain(name)
        picked = lookup_names(fasta)
        if picked is None:
            skipped.append(name)
            continue
        names_file = ws.root / f"{name}.names1000.txt"
        names_file.write_text("\n".join(picked) + "\n")
        accessions = [accession_from_header(n.encode()) for n in picked]
        run = ws.imports(name, 1)[0]
        log(f"look-ups on {name} ...")
        ready, cold, warm, warm_get, missing = store_lookup_times(run.store_dir, name, accessions)
        gz = ws.root / f"{name}.fa.gz"
        if not gz.exists():
            run_timed(f"gzip -6 -c {fasta} > {gz}")
        plain_px = pyfastx_times(fasta, names_file)
        gz_px = pyfastx_times(gz, names_file)
        ra = baselines.get(name, {}).get("random_access", {})
        sam = ra.get("samtools faidx 1000 look-ups (plain)", {}).get("s")
        bgzf = ra.get("samtools faidx 1000 look-ups (BGZF)", {}).get("s")

        met = cold * 1000 <= LOOKUP_TARGET_MS and not missing
        print(
            f"| {name} | {ready:.2f} | {ms(cold)}{f' ({missing} not found!)' if missing else ''} | {ms(warm)} "
            f"| {ms(warm_get)} | {pair(plain_px)} | {pair(gz_px)} | {ms(sam)} | {ms(bgzf)} "
            f"| <= {LOOKUP_TARGET_MS:.0f} ms "
            f"| {'met' if met else 'not met'} |",
            flush=True,
        )
    print(
        "\n\\* samtools is not installed here: its figures are quoted from BASELINES.md (results.json)."
    )
    if skipped:
        print(
            f"Not measured: {', '.join(skipped)} (fewer than {LOOKUP_COUNT:,} records; BASELINES looks up "
            "1 kb regions there, and `db.get` returns whole records)."
        )


# ------------------------------------------------------------------------------ versions


def releases() -> list[Path]:
    return sorted(
        Path(p) for p in glob.glob(str(SHARED_DATA / "versions" / "resfinder" / "*.fasta.zst"))
    )


def release_label(path: Path) -> str:
    found = re.search(r"_(\d{4}-\d{2}-\d{2})_", path.name)
    return found.group(1) if found else path.stem


def versions(ws: Workspace) -> None:
    files = releases()
    if not files:
        print("\nversions: skipped, no ResFinder releases under shared/data/versions/resfinder")
        return
    print(f"\n### {len(files)} ResFinder releases as versions of one database\n")
    print(
        "| release | records | FASTA bytes | stored alone | new bytes as next version | store total |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    together = ws.fresh_store_dir("resfinder-versions")
    alone: dict[Path, int] = {}
    with talaria_storage.open_store(str(together)) as store:
        db = open_database(store, "resfinder")
        before = stored_bytes(together)
        for path in files:
            log(f"release {release_label(path)} ...")
            result = db.import_files([path], version=release_label(path), taxonomy="none")
            total = stored_bytes(together)
            single = ws.fresh_store_dir("resfinder-alone")
            with talaria_storage.open_store(str(single)) as one:
                open_database(one, "resfinder").import_files(
                    [path], version=release_label(path), taxonomy="none"
                )
            alone[path] = stored_bytes(single)
            shutil.rmtree(single)
            print(
                f"| {release_label(path)} | {result.records:,} | {result.logical_bytes:,} | {alone[path]:,} "
                f"| {total - before:,} | {total:,} |",
                flush=True,
            )
            before = total
    last = alone[files[-1]]
    largest = max(alone.values())
    ratio = before / last
    print(
        f"\nAll {len(files)} versions: {before:,} bytes = **{ratio:.2f} x** the last release alone ({last:,} bytes; "
        f"{before / largest:.2f} x the largest alone), against {sum(alone.values()):,} bytes "
        f"({sum(alone.values()) / last:.1f} x) for {len(files)} separate stores. Target <= {VERSIONS_TARGET} x: "
        f"{'met' if ratio <= VERSIONS_TARGET else 'not met'}."
    )


# -------------------------------------------------------------------------------- memory

AMINO_ACIDS = b"ACDEFGHIKLMNPQRSTVWY"
_HEADER_LINE = re.compile(rb"(^>[^\n]*\n)", re.MULTILINE)
_UNIPROT_ID = re.compile(rb"^>(sp|tr)\|")


def copies(template: bytes) -> Iterator[bytes]:
    """Endless variants of a UniProt FASTA: copy k gets accessions ``X<k>...`` and its 20
    amino acids permuted by ``random.Random(k)``, so records are neither duplicate
    accessions nor duplicate sequences, but keep real protein statistics and layout."""
    k = 0
    while True:
        if k == 0:
            yield template
        else:
            alphabet = bytearray(AMINO_ACIDS)
            random.Random(k).shuffle(alphabet)
            table = bytes.maketrans(AMINO_ACIDS, bytes(alphabet))
            prefix = b">\\1|X%d" % k
            parts = _HEADER_LINE.split(template)
            # re.split with one group alternates [text, header, text, header, ...]
            yield b"".join(
                _UNIPROT_ID.sub(prefix, part, count=1) if i % 2 else part.translate(table)
                for i, part in enumerate(parts)
            )
        k += 1


def build_big_fasta(template: bytes, target: int, out: Path) -> int:
    """Write about ``target`` bytes of FASTA (whole records) made of :func:`copies`."""
    written = 0
    with out.open("wb") as sink:
        for copy in copies(template):
            room = target - written
            if len(copy) > room:
                cut = copy.rfind(b"\n>", 0, room)
                if cut > 0:
                    sink.write(copy[: cut + 1])
                    written += cut + 1
                break
            sink.write(copy)
            written += len(copy)
    return written


MEMORY_CHILD = r"""
import json, resource, sys, time
import talaria_storage
from talaria_storage import open_database
store_dir, fasta = sys.argv[1], sys.argv[2]
with talaria_storage.open_store(store_dir) as store:
    start = time.perf_counter()
    result = open_database(store, "big").import_files([fasta], version="v1", taxonomy="header")
    seconds = time.perf_counter() - start
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest reaped worker
print(json.dumps({"seconds": seconds, "records": result.records, "own": own, "worker": workers}))
"""


@dataclass
class TreeMemory:
    """Peaks of the summed memory of a process and all its descendants, sampled."""

    rss: int = 0  # sum of RSS: counts pages shared by forked workers once per process
    pss: int = 0  # sum of PSS: shared pages split between the processes sharing them


def watch_tree(proc: subprocess.Popen[str], interval: float = 0.05) -> TreeMemory:
    """Sample the process tree of ``proc`` until it exits.

    getrusage gives exact peaks, but per process; an import with worker processes needs the
    peak of their sum, which only sampling gives (a spike shorter than ``interval`` can be
    missed, so both are reported).
    """
    import psutil

    peak = TreeMemory()
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        rss = pss = 0
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for member in tree:
            try:
                info = member.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            rss += info.rss
            pss += info.pss
        peak = TreeMemory(max(peak.rss, rss), max(peak.pss, pss))
        time.sleep(interval)
    return peak


def memory(ws: Workspace, size_mib: int) -> None:
    target = size_mib << 20
    template = ws.plain(UNIPROT).read_bytes()
    big = ws.root / "big.fa"
    log(f"building a {size_mib} MiB FASTA ...")
    size = build_big_fasta(template, target, big)
    del template
    store_dir = ws.fresh_store_dir("big")
    log("importing it in a child process ...")
    with subprocess.Popen(
        [sys.executable, "-c", MEMORY_CHILD, str(store_dir), str(big)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        tree = watch_tree(proc)
        out, err = proc.communicate()
    big.unlink()
    if proc.returncode != 0:
        shutil.rmtree(store_dir)
        print(f"\nmemory: the import failed: {err.strip().splitlines()[-1:]}")
        return
    child = json.loads(out.strip().splitlines()[-1])
    stored = stored_bytes(store_dir)
    shutil.rmtree(store_dir)

    def mb(n: int) -> str:
        return f"{n / 1e6:.0f} MB"

    met = tree.pss <= MEMORY_TARGET_BYTES
    print(f"\n### Peak memory importing a {size_mib:,} MiB FASTA\n")
    print(
        "| FASTA bytes | records | import s | MB/s | stored bytes | ratio | main process peak "
        "| largest worker peak | whole tree, PSS sum | whole tree, RSS sum | target | met |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    print(
        f"| {size:,} | {child['records']:,} | {child['seconds']:.1f} | {size / 1e6 / child['seconds']:.1f} "
        f"| {stored:,} | {size / stored:.2f} | {mb(child['own'])} | {mb(child['worker'])} "
        f"| {mb(tree.pss)} | {mb(tree.rss)} | <= {mb(MEMORY_TARGET_BYTES)} (PSS) | {'met' if met else 'not met'} |"
    )
    print(
        "\nInput: the 15 UniProt proteomes repeated, copy k with accessions prefixed `X<k>` and the 20 "
        "amino acids permuted (seeded), so neither accessions nor sequences repeat. Per-process peaks are "
        "exact (`getrusage` in the importing process: RUSAGE_SELF, and RUSAGE_CHILDREN for its worker "
        "processes); the whole-tree figures are sampled every 50 ms with psutil. The PSS sum is the memory "
        "the import takes from the machine; the RSS sum counts pages the forked workers share with their "
        "parent once per process, so it overstates."
    )


# ---------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "what", choices=("size", "throughput", "lookups", "versions", "memory", "all")
    )
    parser.add_argument(
        "--only", help="comma-separated dataset names (default: all seven of BASELINES.md)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="three small datasets, one import, 100 MiB memory run, "
        "peers' zstd/xz figures quoted instead of run",
    )
    parser.add_argument(
        "--repeat", type=int, help="imports per dataset for throughput (default 3, quick 1)"
    )
    parser.add_argument(
        "--size-mib", type=int, help="FASTA size for the memory run (default 1024, quick 100)"
    )
    parser.add_argument(
        "--quote-peers", action="store_true", help="take zstd -19 / xz -9 from results.json"
    )
    parser.add_argument(
        "--work", type=Path, help="folder for temporary files (kept); default: a temp dir, deleted"
    )
    args = parser.parse_args()
    require_shared_data()
    repeat = args.repeat or (1 if args.quick else 3)
    size_mib = args.size_mib or (100 if args.quick else 1024)
    names = chosen(args)
    root = args.work or Path(tempfile.mkdtemp(prefix="bench-database-"))
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(root)
    started = time.perf_counter()
    print(
        f"talaria-storage {talaria_storage.__version__}, {os.cpu_count()} CPUs, datasets: {', '.join(names)}"
    )
    try:
        if args.what in ("size", "all"):
            size(ws, names, live_peers=not (args.quick or args.quote_peers))
        if args.what in ("throughput", "all"):
            throughput(ws, names, repeat)
        if args.what in ("lookups", "all"):
            lookups(ws, names)
        if args.what in ("versions", "all"):
            versions(ws)
        if args.what in ("memory", "all"):
            memory(ws, size_mib)
    finally:
        if args.work is None:
            shutil.rmtree(root, ignore_errors=True)
    log(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
