"""Import throughput on the shared GenBank and FASTQ files, beside Biopython and seqkit (issue #17).

For each file, in one run, median of ``--runs`` (default 3):

* **talaria import**: ``import_files`` into a fresh filesystem store (parse, canonical
  sequences, digests, packing, compression, writing the objects and the manifest): the
  whole job, not only the parse;
* **Biopython SeqIO.parse**: iterating every record (``genbank`` / ``fastq``), parse only;
* **seqkit stats**: ``seqkit stats -j 1 FILE`` (parse and count, one thread); skipped
  with the reason when seqkit is not installed (``apt-get install -y seqkit``);
* **talaria parse only**: our reader alone (``read_flatfile`` / ``read_fastq``), the
  like-for-like figure against the two parsers.

Throughput is the file's decompressed bytes per second; ratios are against SeqIO.

Run:  cd benchmarks && ../.venv/bin/python bench_import_formats.py [--runs 3]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _data import require_shared_data
from Bio import SeqIO

from talaria_storage import open_database, open_store
from talaria_storage.formats.fasta import read_fastq
from talaria_storage.formats.genbank import read_flatfile

FILES = {
    "genbank": ["genbank/leptospira_kirschneri_H1_any2fasta_test.gbk.gz"],
    "fastq": ["fastq/seqkit_Illumina1.8_10k.fq.gz", "fastq/seqkit_pcs109_5k_nanopore.fq.gz"],
}


def median_seconds(run: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def talaria_import(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_store(str(Path(tmp) / "store")) as store:
        open_database(store, "bench").import_files([path], version="v1", taxonomy="none")


def seqio_parse(path: Path, fmt: str) -> None:
    with gzip.open(path, "rt") as handle:
        for _ in SeqIO.parse(handle, fmt):
            pass


def cell(mb: float, timings: dict[str, float], key: str) -> str:
    """MB/s of one tool and its speed relative to SeqIO.parse (above 1: faster)."""
    if key not in timings:
        return "skipped"
    return f"{mb / timings[key]:.1f} ({timings['seqio'] / timings[key]:.2f}x)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data = require_shared_data()
    seqkit = shutil.which("seqkit")
    print("### Import throughput: GenBank and FASTQ (MB/s of decompressed input; ratio vs SeqIO.parse)\n")
    if seqkit is None:
        print("seqkit: skipped (not installed: apt-get install -y seqkit)\n")
    print("| file | MB | talaria import | talaria parse only | SeqIO.parse | seqkit stats |")
    print("|---|---|---|---|---|---|")
    for fmt, names in FILES.items():
        for name in names:
            path = data / name
            mb = len(gzip.decompress(path.read_bytes())) / 1e6
            ours_parse: Callable[[], object] = (
                (lambda p=path: sum(1 for _ in read_flatfile(p)))
                if fmt == "genbank"
                else (lambda p=path: sum(1 for _ in read_fastq(p)))
            )
            timings = {
                "import": median_seconds(lambda p=path: talaria_import(p), args.runs),
                "parse": median_seconds(ours_parse, args.runs),
                "seqio": median_seconds(lambda p=path, f=fmt: seqio_parse(p, f), args.runs),
            }
            if seqkit is not None:
                timings["seqkit"] = median_seconds(
                    lambda p=path: subprocess.run(
                        [seqkit, "stats", "-j", "1", str(p)], check=True, capture_output=True
                    ),
                    args.runs,
                )
            cells = " | ".join(cell(mb, timings, key) for key in ("import", "parse", "seqio", "seqkit"))
            print(f"| {Path(name).name} | {mb:.1f} | {cells} |")


if __name__ == "__main__":
    main()
