"""Measure the sequence format modules on the shared real data.

What it measures, per dataset (the same seven as shared/data/BASELINES.md):

* parse: decompress + :func:`read_fasta`, MB/s of uncompressed FASTA;
* store: records -> taxonomy-aware chunks (:mod:`chunking`) -> chunk bytes
  (:mod:`chunk_format`), total stored bytes and the ratio against the
  uncompressed FASTA, beside the zstd -19 / xz -9 / ennaf -22 whole-file
  ratios from BASELINES.md;
* import: parse + canonical hash + chunking + encoding, with the encoding in
  a two-thread pool (zstd releases the GIL), MB/s wall clock;
* decode: all chunks back to records, MB/s;
* lookup: 1,000 random records, each from a freshly opened chunk (no cache),
  milliseconds per look-up;
* exact: every record formatted back equals the input bytes.

Run::

    .venv/bin/python benchmarks/bench_formats.py                 # default codec, all datasets
    .venv/bin/python benchmarks/bench_formats.py --only wol16s --level 9 --block-size 4194304
    # "archive": big chunks, big blocks, long matches, level 19 (about 1-3 MB/s)
    .venv/bin/python benchmarks/bench_formats.py --level 19 --nucleotide-level 19 --long \
        --block-size 8388608 --min-size 8388608 --target-size 16777216 --max-size 33554432
    .venv/bin/python benchmarks/bench_formats.py --sweep          # residue codec settings

It reads ``../shared/data`` in place and writes nothing.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from talaria_storage.sequences.canonical import sequence_hash
from talaria_storage.sequences.chunk_format import ChunkCodec, ChunkReader, encode_chunk
from talaria_storage.sequences.chunking import ChunkingPolicy, plan_chunks
from talaria_storage.sequences.fasta import format_fasta, open_input, read_fasta
from talaria_storage.sequences.taxonomy import (
    AccessionTaxonMap,
    accession_from_header,
    taxon_from_header,
)

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


def taxon_source(name: str):
    """How each dataset's records get a taxon (0 = none)."""
    if name == "uniprot15":
        return lambda record: taxon_from_header(record.header) or 0
    if name.startswith("wol"):
        mapping = AccessionTaxonMap.from_file(
            DATA / "taxonomy/wol_subset/taxid.map", prefix_separator="_"
        )
        return lambda record: mapping.get(accession_from_header(record.header)) or 0
    return lambda record: 0


def raw_size(files: list[str]) -> int:
    total = 0
    for path in files:
        with open_input(path) as stream:
            while chunk := stream.read(1 << 22):
                total += len(chunk)
    return total


def measure(
    name: str, files: list[str], codec: ChunkCodec, policy: ChunkingPolicy, threads: int
) -> dict:
    size = raw_size(files)

    start = time.perf_counter()
    count = sum(1 for path in files for _ in read_fasta(path))
    parse_s = time.perf_counter() - start

    taxon_of = taxon_source(name)
    start = time.perf_counter()
    cpu0 = time.process_time()
    chunks: list[bytes] = []
    placement: list[tuple[int, int]] = []  # per chunk order, (chunk, position)
    with ThreadPoolExecutor(threads) as pool:
        futures = []

        def items():
            for path in files:
                for record in read_fasta(path):
                    yield record, taxon_of(record), sequence_hash(record.residues)

        for planned in plan_chunks(items(), policy):
            futures.append(pool.submit(encode_chunk, planned.records, planned.taxids, codec))
            placement.extend((len(futures) - 1, i) for i in range(len(planned.records)))
        chunks = [f.result() for f in futures]
    import_s = time.perf_counter() - start
    import_cpu = time.process_time() - cpu0
    stored = sum(len(c) for c in chunks)

    start = time.perf_counter()
    decoded = [ChunkReader(c).records() for c in chunks]
    decode_s = time.perf_counter() - start

    # Byte-exact: the records of all chunks, put back in input order, format to the input.
    ordered = [decoded[c][i] for c, i in placement]  # chunk order == ordinal order only per group
    exact_bytes = sum(len(format_fasta(r)) for r in ordered) == size

    rng = random.Random(42)
    picks = [rng.randrange(len(placement)) for _ in range(1000)]
    start = time.perf_counter()
    for pick in picks:
        c, i = placement[pick]
        ChunkReader(chunks[c]).record(i)
    lookup_ms = (time.perf_counter() - start) * 1000 / len(picks)
    return {
        "name": name,
        "records": count,
        "bytes": size,
        "chunks": len(chunks),
        "stored": stored,
        "ratio": size / stored,
        "parse": size / parse_s / 1e6,
        "import": size / import_s / 1e6,
        "import_cpu": import_cpu / import_s,
        "decode": size / decode_s / 1e6,
        "lookup_ms": lookup_ms,
        "exact": exact_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="comma-separated dataset names")
    parser.add_argument("--level", type=int, default=ChunkCodec().level)
    parser.add_argument("--meta-level", type=int, default=ChunkCodec().meta_level)
    parser.add_argument("--nucleotide-level", type=int, default=ChunkCodec().nucleotide_level)
    parser.add_argument("--block-size", type=int, default=ChunkCodec().block_size)
    parser.add_argument("--long", action="store_true", help="zstd long-distance matching")
    parser.add_argument("--threads", type=int, default=2)
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
        args.min_size, args.target_size, args.max_size, max(args.max_size, 256 << 20)
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
    print(
        "| dataset | codec | records | chunks | stored bytes | ratio | zstd-19 / xz-9 / ennaf | "
        "parse MB/s | import MB/s (cpu use) | decode MB/s | lookup ms | byte-exact |"
    )
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|")
    for codec in codecs:
        label = (
            f"L{codec.level}/{codec.nucleotide_level}/{codec.meta_level} blk {codec.block_size >> 10}K"
            + (" ldm" if codec.long_distance else "")
        )
        for name, files in chosen.items():
            r = measure(name, files, codec, policy, args.threads)
            z, x, e = BASELINES[name]
            print(
                f"| {name} | {label} | {r['records']:,} | {r['chunks']} | {r['stored']:,} | "
                f"{r['ratio']:.2f} | {z} / {x} / {e} | {r['parse']:.0f} | "
                f"{r['import']:.0f} ({r['import_cpu']:.1f}) | {r['decode']:.0f} | "
                f"{r['lookup_ms']:.2f} | {r['exact']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
