"""Measure the sequence format modules on the shared real data.

What it measures, per dataset (the same seven as shared/data/BASELINES.md),
through the real import pipeline (:mod:`talaria_storage.sequences.importing`)
into an in-memory store, so that no backend cost is counted:

* parse: decompress + :func:`read_fasta`, MB/s of uncompressed FASTA, one process;
* store: records -> taxonomy-aware chunks (:mod:`chunking`) -> record chunks and
  sequence packs (:mod:`record_chunk`, :mod:`sequence_pack`) + record order objects: total stored
  bytes and the ratio against the uncompressed FASTA, beside the zstd -19 /
  xz -9 / ennaf -22 whole-file ratios from BASELINES.md;
* import: ``SequenceDatabase.import_files`` MB/s and sequences/s, wall clock,
  with the process pool it picks (``--processes``), and the CPU seconds of the
  import (main process and workers) per wall second;
* decode: a byte-exact export, MB/s;
* lookup: 1,000 random records, each from freshly opened objects (chunk and
  pack read from the store and parsed again, no cache), milliseconds per look-up;
* exact: the export equals the input bytes.

``--versions`` instead imports the 14 ResFinder releases as versions of one
database and prints total stored bytes against the last release alone.

``--memory MIB`` instead builds a FASTA of that size in a temporary folder
from the UniProt proteomes (copy ``k`` with accessions prefixed ``X<k>`` and
its 20 amino acids permuted, so nothing deduplicates; ``--interleaved`` also
gives every record a random one of 20,000 taxa, the worst case for the
chunker and the record order), imports it into a filesystem store in a child
process, and samples the resident memory of the whole process tree -- the
import's worker processes included -- every 50 ms (RSS, and PSS, which
counts pages shared after the fork once). Everything is deleted afterwards.

Run::

    .venv/bin/python benchmarks/bench_formats.py                 # default codec, all datasets
    .venv/bin/python benchmarks/bench_formats.py --only wol16s --level 9 --block-size 4194304
    # "archive": big chunks, big blocks, long matches, level 19 (about 1-3 MB/s)
    .venv/bin/python benchmarks/bench_formats.py --level 19 --nucleotide-level 19 --long \
        --block-size 8388608 --min-size 8388608 --target-size 16777216 --max-size 33554432
    .venv/bin/python benchmarks/bench_formats.py --sweep          # residue codec settings
    .venv/bin/python benchmarks/bench_formats.py --versions       # ResFinder releases
    .venv/bin/python benchmarks/bench_formats.py --memory 1024    # peak memory, 1 GiB FASTA

It reads ``../shared/data`` in place and writes nothing but the temporary files of ``--memory``.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.formats.fasta import open_input, read_fasta
from talaria_storage.sequences.chunking import ChunkingPolicy
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.sequences.record_chunk import ChunkReader
from talaria_storage.sequences.sequence_pack import PackReader
from talaria_storage.sequences.streams import ChunkCodec
from talaria_storage.storage.store import Store

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

# Whole-file ratios from shared/data/BASELINES.md (zstd -19, xz -9, ennaf -22).
BASELINES = {
    "uniprot15": (2.45, 2.64, 2.83),
    "mmseqs2_DB": (3.20, 3.29, 3.31),
    "ecoli536": (3.59, 3.71, 4.08),
    "pfalciparum": (4.44, 4.50, 5.08),
    "wol16s": (32.13, 32.55, 27.36),
    "wol23s": (44.99, 56.54, 35.57),
    "resfinder2025": (13.79, 14.25, 13.30),
}


def datasets() -> dict[str, list[str]]:
    return {
        "uniprot15": sorted(glob.glob(str(DATA / "protein/uniprot_proteomes/*.fasta.gz"))),
        "mmseqs2_DB": [str(DATA / "protein/mmseqs2_example_DB.fasta.gz")],
        "ecoli536": [str(DATA / "nucleotide/ecoli536_NC_008253.fna.gz")],
        "pfalciparum": [str(DATA / "nucleotide/pfalciparum_smalt_genome_1.fa.gz")],
        "wol16s": [str(DATA / "nucleotide/wol_16s_rRNA.fa.zst")],
        "wol23s": [str(DATA / "nucleotide/wol_23s_rRNA.fa.zst")],
        "resfinder2025": [str(DATA / "versions/resfinder/resfinder_2025-12-05_fa13a71.fasta.zst")],
    }


def taxonomy_of(name: str) -> dict[str, str]:
    """How each dataset's records get a taxon: import_files keyword arguments."""
    if name == "uniprot15":
        return {"taxonomy": "header"}
    if name.startswith("wol"):
        return {"taxonomy": str(DATA / "taxonomy/wol_subset/taxid.map"), "prefix_separator": "_"}
    return {"taxonomy": "none"}


def plain_digest(files: list[str]) -> tuple[int, str]:
    """Size and SHA-256 of the files' uncompressed bytes, concatenated."""
    sha = hashlib.sha256()
    total = 0
    for path in files:
        with open_input(path) as stream:
            while chunk := stream.read(1 << 22):
                sha.update(chunk)
                total += len(chunk)
    return total, sha.hexdigest()


class _HashSink:
    def __init__(self) -> None:
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return len(data)


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the import's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def database(codec: ChunkCodec, policy: ChunkingPolicy, processes: int | None) -> SequenceDatabase:
    return SequenceDatabase(Store(MemoryBackend()), "bench", codec=codec, chunking=policy, processes=processes)


def measure(
    name: str, files: list[str], codec: ChunkCodec, policy: ChunkingPolicy, processes: int | None
) -> dict:
    size, digest = plain_digest(files)

    start = time.perf_counter()
    count = sum(1 for path in files for _ in read_fasta(path))
    parse_s = time.perf_counter() - start

    db = database(codec, policy, processes)
    start = time.perf_counter()
    cpu0 = cpu_seconds()
    result = db.import_files(files, version="v1", **taxonomy_of(name))
    import_s = time.perf_counter() - start
    import_cpu = cpu_seconds() - cpu0
    _, manifest = db.manifest()
    stored = manifest.stored_bytes

    sink = _HashSink()
    start = time.perf_counter()
    db.export(sink)  # type: ignore[arg-type]
    decode_s = time.perf_counter() - start

    # The objects' bytes in memory (no backend, no SHA-256 check), each look-up parsing them afresh.
    objects = {h: db.store.get_chunk(h) for h in manifest.object_hashes()}
    positions = [(ci, ri) for ci, entry in enumerate(manifest.chunks) for ri in range(entry.records)]
    rng = random.Random(42)
    picks = [positions[rng.randrange(len(positions))] for _ in range(1000)]
    start = time.perf_counter()
    for ci, ri in picks:
        reader = ChunkReader(objects[manifest.chunks[ci].hash])
        reader.record(ri, [PackReader(objects[h]) for h in reader.pack_hashes()])
    lookup_ms = (time.perf_counter() - start) * 1000 / len(picks)
    return {
        "name": name,
        "records": count,
        "bytes": size,
        "chunks": result.chunks,
        "packs": result.packs,
        "stored": stored,
        "ratio": size / stored,
        "parse": size / parse_s / 1e6,
        "import": size / import_s / 1e6,
        "seqs": count / import_s,
        "import_cpu": import_cpu / import_s,
        "decode": size / decode_s / 1e6,
        "lookup_ms": lookup_ms,
        "exact": sink.sha.hexdigest() == digest,
    }


def resfinder_versions(codec: ChunkCodec, policy: ChunkingPolicy, processes: int | None) -> None:
    """The 14 ResFinder releases as versions of one database, against the last one alone."""
    releases = sorted(glob.glob(str(DATA / "versions/resfinder/*.fasta.zst")))
    db = database(codec, policy, processes)
    print("| release | records | chunks (new) | packs (new) | new bytes |")
    print("|---|---:|---:|---:|---:|")
    for path in releases:
        label = Path(path).name.split("_")[1]
        r = db.import_files([path], version=label, taxonomy="none")
        print(f"| {label} | {r.records:,} | {r.chunks} ({r.new_chunks}) | {r.packs} ({r.new_packs}) | {r.new_bytes:,} |")
    total = sum(info.size for info in db.store.enumerate_chunks())
    alone = database(codec, policy, processes)
    alone.import_files([releases[-1]], version="last", taxonomy="none")
    single = sum(info.size for info in alone.store.enumerate_chunks())
    print(f"\n14 releases: {total:,} bytes; the last release alone: {single:,} bytes; {total / single:.2f}x")


AMINO_ACIDS = b"ACDEFGHIKLMNPQRSTVWY"

MEMORY_CHILD = r"""
import json, sys, time
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.storage.store import Store
store = Store(FilesystemBackend(sys.argv[1]))
store.initialise()
start = time.perf_counter()
result = SequenceDatabase(store, "big").import_files([sys.argv[2]], version="v1", taxonomy="header")
print(json.dumps({"seconds": time.perf_counter() - start, "records": result.records, "chunks": result.chunks}))
"""


def read_plain(path: str) -> bytes:
    with open_input(path) as stream:
        return stream.read()


def build_big_fasta(path: Path, size: int, interleaved: bool) -> int:
    """About ``size`` bytes of UniProt-like FASTA (see the module docstring); returns its size."""
    template = b"".join(read_plain(p) for p in datasets()["uniprot15"])
    rng = random.Random(7)
    written = 0
    with path.open("wb") as out:
        for k in range(1 << 30):
            if k:
                alphabet = bytearray(AMINO_ACIDS)
                random.Random(k).shuffle(alphabet)
                table = bytes.maketrans(AMINO_ACIDS, bytes(alphabet))
                parts = re.split(rb"(^>[^\n]*\n)", template, flags=re.MULTILINE)
                copy = b"".join(
                    re.sub(rb"^>(sp|tr)\|", b">\\1|X%d" % k, part, count=1) if i % 2 else part.translate(table)
                    for i, part in enumerate(parts)
                )
            else:
                copy = template
            if interleaved:
                copy = re.sub(rb" OX=\d+", lambda _: b" OX=%d" % rng.randrange(1, 20001), copy)
            if written + len(copy) > size:
                cut = copy.rfind(b"\n>", 0, size - written)
                if cut > 0:
                    out.write(copy[: cut + 1])
                    written += cut + 1
                return written
            out.write(copy)
            written += len(copy)
    return written


def peak_memory(size_mib: int, interleaved: bool) -> None:
    """Import a big FASTA in a child process; sample the memory of the child and its workers."""
    import psutil

    with tempfile.TemporaryDirectory(prefix="talaria-bench-") as work:
        big = Path(work) / "big.fa"
        size = build_big_fasta(big, size_mib << 20, interleaved)
        child = subprocess.Popen(
            [sys.executable, "-c", MEMORY_CHILD, str(Path(work) / "store"), str(big)],
            stdout=subprocess.PIPE,
            text=True,
        )
        process = psutil.Process(child.pid)
        peak_main = peak_rss = peak_pss = 0
        while child.poll() is None:
            try:
                tree = [process, *process.children(recursive=True)]
                infos = [p.memory_full_info() for p in tree]
                peak_main = max(peak_main, infos[0].rss)
                peak_rss = max(peak_rss, sum(i.rss for i in infos))
                peak_pss = max(peak_pss, sum(i.pss for i in infos))
            except psutil.Error:
                pass  # a worker exited between the listing and the reading
            time.sleep(0.05)
        assert child.stdout is not None
        result = json.loads(child.stdout.read().strip().splitlines()[-1])
    print(
        "| FASTA bytes | records | taxa | chunks | import s | MB/s | peak RSS, main process | "
        "peak RSS, with workers | peak PSS, with workers |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {size:,} | {result['records']:,} | {'20,000 interleaved' if interleaved else '15 proteomes'} | "
        f"{result['chunks']} | {result['seconds']:.1f} | {size / 1e6 / result['seconds']:.1f} | "
        f"{peak_main / 1e6:.0f} MB | {peak_rss / 1e6:.0f} MB | {peak_pss / 1e6:.0f} MB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated dataset names")
    parser.add_argument("--level", type=int, default=ChunkCodec().level)
    parser.add_argument("--meta-level", type=int, default=ChunkCodec().meta_level)
    parser.add_argument("--nucleotide-level", type=int, default=ChunkCodec().nucleotide_level)
    parser.add_argument("--block-size", type=int, default=ChunkCodec().block_size)
    parser.add_argument("--long", action="store_true", help="zstd long-distance matching")
    parser.add_argument("--processes", type=int, default=None, help="import workers (default: automatic)")
    parser.add_argument("--versions", action="store_true", help="the ResFinder releases as versions")
    parser.add_argument("--memory", type=int, metavar="MIB", help="peak memory importing a FASTA of MIB")
    parser.add_argument("--interleaved", action="store_true", help="--memory with 20,000 interleaved taxa")
    parser.add_argument("--min-size", type=int, default=ChunkingPolicy().min_size)
    parser.add_argument("--target-size", type=int, default=ChunkingPolicy().target_size)
    parser.add_argument("--max-size", type=int, default=ChunkingPolicy().max_size)
    parser.add_argument("--sweep", action="store_true", help="try several residue codec settings")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"no shared data at {DATA}")
    chosen = datasets()
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    policy = ChunkingPolicy(
        args.min_size, args.target_size, args.max_size, max(args.max_size, ChunkingPolicy().memory_budget)
    )
    codecs = [
        ChunkCodec(
            args.level,
            args.meta_level,
            args.block_size,
            long_distance=args.long,
            nucleotide_level=args.nucleotide_level,
        )
    ]
    if args.sweep:
        codecs = [
            ChunkCodec(block_size=64 << 10),
            ChunkCodec(block_size=256 << 10),
            ChunkCodec(block_size=1 << 20),
            ChunkCodec(level=3, block_size=1 << 20),
            ChunkCodec(block_size=4 << 20, long_distance=True),
        ]
    print(f"cpus={os.cpu_count()} policy={policy}")
    if args.versions:
        resfinder_versions(codecs[0], policy, args.processes)
        return
    if args.memory:
        peak_memory(args.memory, args.interleaved)
        return
    print(
        "| dataset | codec | records | chunks / packs | stored bytes | ratio | zstd-19 / xz-9 / ennaf | "
        "parse MB/s | import MB/s (cpu use) | import seq/s | decode MB/s | lookup ms | byte-exact |"
    )
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for codec in codecs:
        label = (
            f"L{codec.level}/{codec.nucleotide_level}/{codec.meta_level} blk {codec.block_size >> 10}K"
            + (" ldm" if codec.long_distance else "")
        )
        for name, files in chosen.items():
            r = measure(name, files, codec, policy, args.processes)
            z, x, e = BASELINES[name]
            print(
                f"| {name} | {label} | {r['records']:,} | {r['chunks']} / {r['packs']} | {r['stored']:,} | "
                f"{r['ratio']:.2f} | {z} / {x} / {e} | {r['parse']:.0f} | "
                f"{r['import']:.0f} ({r['import_cpu']:.1f}) | {r['seqs']:,.0f} | {r['decode']:.0f} | "
                f"{r['lookup_ms']:.2f} | {r['exact']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
