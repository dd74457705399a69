"""Similarity-ordered sequence packs: store size, import time and look-ups, against record order and xz -9.

Each dataset is imported into a fresh filesystem store (the embedded
default, in a temporary folder) twice, in one run:

* **chosen by size**: the default import, where a pack whose sequences
  resemble one another across blocks is also written with similar sequences
  side by side and keeps the smaller layout
  (:mod:`talaria_storage.sequences.similarity_order`);
* **record order**: the same import with that layout never tried (the
  benchmark raises ``sequence_pack.LONG_MATCH_GAIN`` out of reach; there is
  no user setting for it).

Per layout: the import's wall seconds, the bytes of the store's objects
(``chunks/``) and of the whole store folder (the local index and refs
included), the uncompressed FASTA's size over each (the compression ratio),
how many packs were laid out by similarity, a byte-exact export check, and
the mean time of 2,000 random record look-ups (``db.get_all(accession)`` on a
warm handle: the record's chunk and pack are read, and in a laid-out pack
its slot is found through the slot order). Beside them, in the same run,
``xz -9`` on the uncompressed FASTA (``xz -9 -T1 -c | wc -c``), and ennaf's
ratio as ``BASELINES.md`` gives it (ennaf is not packaged for this
distribution, so it is quoted, not re-run).

Then, on the default store, the round trip through a reduction: ``reduce``
at identity 0.9 (its seconds), ``verify`` with every delta decoded and its
hash checked (problems must be 0), and every reference expanded: the
records of all expansions, written out, must be exactly the input's records
(as a multiset).

``--versions`` instead imports the 14 ResFinder releases as versions of one
database and compares the whole folder with the last release imported
alone (the issue's bar: at most 1.3x).

Run:  cd benchmarks && ../.venv/bin/python bench_pack_layout.py [--only wol16s,mmseqs2_DB] [--versions]
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import SHARED_DATA, baseline_results, require_shared_data, write_decompressed
from bench_formats import datasets, taxonomy_of

from talaria_storage import open_database
from talaria_storage.formats.fasta import format_record, read_fasta
from talaria_storage.reduction.delta_check import DeltaDecodeCheck
from talaria_storage.sequences import sequence_pack
from talaria_storage.sequences.identifiers import accession_from_header
from talaria_storage.sequences.integrity import verify_store

LAYOUTS = ("chosen by size", "record order")
DEFAULT_ONLY = "wol16s,wol23s,mmseqs2_DB,uniprot15,resfinder2025"


@contextmanager
def layout(name: str) -> Iterator[None]:
    """Import with the default layout choice, or with similarity order never tried."""
    saved = sequence_pack.LONG_MATCH_GAIN
    if name == "record order":
        sequence_pack.LONG_MATCH_GAIN = 2.0  # a gain is at most 1.0: never tried
    try:
        yield
    finally:
        sequence_pack.LONG_MATCH_GAIN = saved


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def laid_out_packs(store: Path) -> tuple[int, int]:
    """(packs in format 2, all packs) among the store's objects."""
    laid = total = 0
    for item in (store / "chunks").rglob("*"):
        if item.is_file():
            head = item.read_bytes()[:64]
            at = head.find(b"TSQP")
            if at >= 0:
                total += 1
                laid += head[at + 4] == 2
    return laid, total


def xz_bytes(fasta: Path) -> tuple[int, float] | None:
    if shutil.which("xz") is None:
        return None
    start = time.perf_counter()
    with fasta.open("rb") as source:
        done = subprocess.run(["xz", "-9", "-T1", "-c"], stdin=source, capture_output=True, check=True)
    return len(done.stdout), time.perf_counter() - start


def lookups(db, accessions: list[str]) -> float:
    """Mean microseconds of ``db.get`` over ``accessions`` (after one warm-up look-up)."""
    db.get_all(accessions[0])
    start = time.perf_counter()
    for accession in accessions:
        if not db.get_all(accession):
            raise SystemExit(f"look-up of {accession} found nothing: the store is wrong")
    return (time.perf_counter() - start) * 1e6 / len(accessions)


def accessions_of(fasta: Path, count: int) -> list[str]:
    with fasta.open("rb") as handle:
        ids = [accession_from_header(line[1:].rstrip()) for line in handle if line.startswith(b">")]
    rng = random.Random(42)
    return [ids[rng.randrange(len(ids))] for _ in range(count)]


def measure(name: str, files: list[str], work: Path) -> None:
    fasta = work / f"{name}.fa"
    size = write_decompressed(files, fasta)
    picks = accessions_of(fasta, 2000)
    rows = []
    for choice in LAYOUTS:
        store = work / f"store-{name}-{choice.replace(' ', '-')}"
        with layout(choice), open_database(str(store), "bench") as db:
            start = time.perf_counter()
            db.import_files([str(fasta)], version="v1", **taxonomy_of(name))
            seconds = time.perf_counter() - start
            exported = work / "export.fa"
            with exported.open("wb") as out:
                db.export(out, version="v1")
            exact = exported.read_bytes() == fasta.read_bytes()
            exported.unlink()
            micro = lookups(db, picks)
        objects = folder_bytes(store / "chunks")
        whole = folder_bytes(store)  # closed: the local index is compacted
        laid, packs = laid_out_packs(store)
        if choice == LAYOUTS[0]:
            with open_database(str(store), "bench") as db:
                reduced = (*reduction_round_trip(db, fasta), folder_bytes(store / "chunks") - objects)
        rows.append((choice, seconds, objects, whole, laid, packs, exact, micro))
        shutil.rmtree(store)
    xz = xz_bytes(fasta)
    ennaf = baseline_results().get(name, {}).get("codecs", {})
    ennaf_ratio = next((v["ratio"] for k, v in ennaf.items() if k.startswith("ennaf")), None)
    base = rows[1]
    print(f"\n### {name}: {size:,} bytes of FASTA\n")
    print("| layout | import s | objects bytes | ratio (objects) | whole folder bytes | ratio (folder) "
          "| laid-out packs | export exact | look-up us | objects / record order |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for choice, seconds, objects, whole, laid, packs, exact, micro in rows:
        print(f"| {choice} | {seconds:.1f} | {objects:,} | {size / objects:.2f} | {whole:,} | {size / whole:.2f} "
              f"| {laid} of {packs} | {'yes' if exact else 'NO'} | {micro:.0f} | {objects / base[2]:.3f} |")
    if xz is not None:
        print(f"| xz -9 -T1 (same run) | {xz[1]:.1f} | {xz[0]:,} | {size / xz[0]:.2f} | | | | | | |")
    else:
        print("| xz -9 | skipped: xz is not installed | | | | | | | | |")
    if ennaf_ratio is not None:
        print(f"| ennaf (BASELINES.md, not re-run) | | | {ennaf_ratio:.2f} | | | | | | |")
    seconds, problems, exact_members, profile_bytes = reduced
    print(f"\nreduce --identity 0.9: {seconds:.1f} s, the profile's objects {profile_bytes:,} bytes; verify with every "
          f"delta decoded: {problems} problem(s); every record expanded exactly: {'yes' if exact_members else 'NO'}")
    fasta.unlink()


def reduction_round_trip(db, fasta: Path) -> tuple[float, int, bool]:
    """Reduce at 0.9, verify every delta, and compare all expansions with the input's records."""
    start = time.perf_counter()
    db.reduce("90", identity=0.9)
    seconds = time.perf_counter() - start
    problems = len(verify_store(db.store, delta_check=DeltaDecodeCheck(db.store)))
    profile = db.reduction("90")
    expanded = sorted(
        format_record(record) for reference in profile.table.references for record in profile.expand(reference.sha256)
    )
    original = sorted(format_record(record) for record in read_fasta(str(fasta)))
    return seconds, problems, expanded == original


def versions(work: Path) -> None:
    releases = sorted(glob.glob(str(SHARED_DATA / "versions/resfinder/*.fasta.zst")))
    print("\n### ResFinder: 14 releases as versions of one database, against the last alone\n")
    print("| layout | all releases: whole folder bytes | objects bytes | last release alone: whole folder "
          "| objects | folder / alone | objects / alone |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for choice in LAYOUTS:
        history, alone = work / "history", work / "alone"
        with layout(choice):
            with open_database(str(history), "resfinder") as db:
                for path in releases:
                    db.import_files([path], version=Path(path).name.split("_")[1], taxonomy="none")
            with open_database(str(alone), "resfinder") as db:
                db.import_files([releases[-1]], version="last", taxonomy="none")
        h_whole, h_obj = folder_bytes(history), folder_bytes(history / "chunks")
        a_whole, a_obj = folder_bytes(alone), folder_bytes(alone / "chunks")
        print(f"| {choice} | {h_whole:,} | {h_obj:,} | {a_whole:,} | {a_obj:,} | {h_whole / a_whole:.2f} "
              f"| {h_obj / a_obj:.2f} |")
        shutil.rmtree(history)
        shutil.rmtree(alone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", default=DEFAULT_ONLY, help=f"comma-separated datasets (default {DEFAULT_ONLY})")
    parser.add_argument("--versions", action="store_true", help="the ResFinder history instead")
    args = parser.parse_args()
    require_shared_data()
    with tempfile.TemporaryDirectory(prefix="bench-layout-") as tmp:
        work = Path(tmp)
        if args.versions:
            versions(work)
            return
        known = datasets()
        for name in args.only.split(","):
            if name not in known:
                sys.exit(f"unknown dataset '{name}': choose from {', '.join(known)}")
            measure(name, known[name], work)
    print(f"\n(cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
