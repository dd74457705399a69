"""Import on Dask (issue #15): the manifest hash against a single-process import, and throughput.

For UniProt proteomes (15 files) and WoL 23S rRNA (one file), on the filesystem store:
a single-process import (its own pool of worker processes, the default), then the same
input on a ``distributed.LocalCluster`` of 1 and of 2 worker processes (``--executor
local:N``). Every import pins the manifest's creation time, so the hashes compare: each
row says whether its manifest equals the single-process one. Seconds are the import's
own (``ImportResult.seconds``), the cluster's start (a few seconds, paid once per
``import`` command) apart; MB/s are decompressed input bytes per second. With
``--shard-mb`` the files are cut into shards of at least that many MB on disk (default:
the engine's 256 MB, so UniProt is one shard); ``--shard-mb 0`` makes each file a shard. With ``--segment-mb M`` a third input is WoL
23S decompressed to a temporary plain FASTA, chunked in segments of M MB (the engine's
are 256 MB; no shared file is that large), so the Dask rows import it in byte-range
shards, one per segment.

There is no peer column: none of the peer tools imports into a store on a cluster. The
single-process import of the same run is the reference the ratios are against.

Run:  cd benchmarks && ../.venv/bin/python bench_dask_import.py [--repeat 3] [--shard-mb 0] [--segment-mb 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _data import require_shared_data

from talaria_storage import open_store
from talaria_storage.formats.fasta import open_input
from talaria_storage.sequences import importing, sharded_import
from talaria_storage.sequences.dask_cluster import open_executor
from talaria_storage.sequences.database import open_database

CREATED = 1_700_000_000.0


def inputs(data: Path, plain: Path | None) -> dict[str, list[str]]:
    named = {
        "uniprot15": sorted(str(p) for p in (data / "protein" / "uniprot_proteomes").glob("*.fasta.gz")),
        "wol23s": [str(data / "nucleotide" / "wol_23s_rRNA.fa.zst")],
    }
    if plain is not None:
        named["wol23s, plain, in segments"] = [str(plain)]
    return named


def decompressed(source: Path, folder: Path) -> Path:
    """A temporary plain copy of a shared file (removed with ``folder``)."""
    target = folder / source.name.removesuffix(".zst")
    with open_input(source) as stream, target.open("wb") as out:
        while block := stream.read(1 << 20):
            out.write(block)
    return target


def run_import(root: Path, files: list[str], client: object | None) -> tuple[str, float, int]:
    """(manifest hash, seconds, decompressed bytes) of one import into a fresh store."""
    with tempfile.TemporaryDirectory(dir=root) as folder:
        db = open_database(open_store(Path(folder) / "store"), "bench")
        result = db.import_files(files, version="v1", created=CREATED, executor=client)
        db.store.close()
    return result.manifest.to_hex(), result.seconds, result.logical_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="imports per row (the median is reported)")
    parser.add_argument("--shard-mb", type=float, default=None, help="shard size in MB on disk (0: a file a shard)")
    parser.add_argument("--segment-mb", type=float, default=None, help="add plain WoL 23S in segments of this size")
    args = parser.parse_args()
    if args.shard_mb is not None:
        sharded_import.SHARD_BYTES = max(1, int(args.shard_mb * (1 << 20)))
    data = require_shared_data()
    rows: list[tuple[str, str, float, float, bool]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        plain = None
        if args.segment_mb is not None:
            importing.SEGMENT_BYTES = max(1, int(args.segment_mb * (1 << 20)))
            plain = decompressed(data / "nucleotide" / "wol_23s_rRNA.fa.zst", root)
            shards = len(sharded_import.plan_shards([str(plain)], importing.SEGMENT_BYTES))
            print(f"plain WoL 23S: {plain.stat().st_size / 1e6:.1f} MB in {shards} byte-range shards")
        reference: dict[str, tuple[str, float]] = {}
        for name, files in inputs(data, plain).items():
            runs = [run_import(root, files, None) for _ in range(args.repeat)]
            seconds = statistics.median(r[1] for r in runs)
            reference[name] = (runs[0][0], seconds)
            rows.append((name, "single process", seconds, runs[0][2] / seconds / 1e6, True))
        for workers in (1, 2):
            started = time.perf_counter()
            with open_executor(f"local:{workers}") as client:
                print(f"local:{workers} cluster started in {time.perf_counter() - started:.1f} s")
                for name, files in inputs(data, plain).items():
                    runs = [run_import(root, files, client) for _ in range(args.repeat)]
                    seconds = statistics.median(r[1] for r in runs)
                    same = all(r[0] == reference[name][0] for r in runs)
                    rows.append((name, f"Dask, {workers} worker{'s' if workers > 1 else ''}", seconds,
                                 runs[0][2] / seconds / 1e6, same))
    print(f"shard size: {sharded_import.SHARD_BYTES / (1 << 20):g} MB; median of {args.repeat}")
    print("| input | run | seconds | MB/s | vs single process | manifest = single process |")
    print("|---|---|---:|---:|---:|---|")
    for name, run, seconds, rate, same in rows:
        ratio = reference[name][1] / seconds
        print(f"| {name} | {run} | {seconds:.2f} | {rate:.1f} | {ratio:.2f}x | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
