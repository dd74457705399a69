"""Look-ups at scale (issue #13): first look-up, 1,000 by each identifier form, footprint, import.

One run on uniprot15 (the 15 UniProt proteomes of ``../shared/data``, 82,814
records), each row beside the peers measured in the same run:

``first``
    a fresh process that opens a freshly imported store and looks up one
    record, timed end to end from outside (interpreter start, imports, open,
    look-up); median of 5. Ours through the API (``python -c``) and the CLI
    (``talaria-storage get``); peers: ``samtools faidx`` on the plain and the
    BGZF file, and pyfastx on the plain file (each with its index made
    beforehand, as ours is made at import). One warm-up run first; children
    may write bytecode caches (this machine sets ``PYTHONDONTWRITEBYTECODE``).
``many``
    1,000 random records (``random.Random(42)``) asked for as accessions, as
    full first words and as UniProt entry names, in one fresh process each
    (*cold*: opened, nothing decoded yet) and again in that process (*warm*);
    only the look-ups are timed; median of 3 processes. pyfastx and samtools
    key on the first word only, so they are timed on the first words.
``footprint``
    the look-up table's objects against the database's objects, and what a
    second version in which 1 % of the records changed adds to them (its own
    layer's partitions and the ordinal maps its manifest carries).
``import``
    import MB/s (uncompressed FASTA) into a fresh store, median of 3.

Run:  cd benchmarks && ../.venv/bin/python bench_lookups.py [--only first,many,footprint,import]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _data import require_shared_data
from bench_formats import datasets

LOOKUPS = 1000
BIN = Path(sys.executable).parent
# Child processes may cache bytecode, as Python does by default on a user's machine: this VM
# sets PYTHONDONTWRITEBYTECODE=1, which made every process compile ~60 modules (0.17 s).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=CHILD_ENV)
    return time.perf_counter() - started


def median_of(times: int, command: list[str]) -> float:
    run(command)  # warm-up: the bytecode cache, the file system's page cache
    return statistics.median(run(command) for _ in range(times))


def import_store(files: list[str], store_dir: Path) -> float:
    """Import uniprot15 into a fresh store; seconds."""
    code = (
        "import sys, time; from talaria_storage import open_database; t = time.perf_counter(); "
        "db = open_database(sys.argv[1], 'uniprot'); db.import_files(sys.argv[2:], version='v1'); "
        "print(time.perf_counter() - t)"
    )
    shutil.rmtree(store_dir, ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-c", code, str(store_dir), *files], check=True, capture_output=True, text=True, env=CHILD_ENV
    )
    return float(out.stdout.strip().splitlines()[-1])


def headers(fasta: Path) -> list[bytes]:
    with open(fasta, "rb") as f:
        return [line[1:].rstrip(b"\n") for line in f if line.startswith(b">")]


MANY = """
import json, sys, time
from talaria_storage import open_database
names = json.load(open(sys.argv[2]))
db = open_database(sys.argv[1], "uniprot")
snapshot = db.snapshot()
out = []
for _ in range(2):
    t = time.perf_counter()
    found = sum(1 for n in names if snapshot.get_all(n))
    out.append(time.perf_counter() - t)
assert found == len(names), found
print(json.dumps(out))
"""

PYFASTX_MANY = """
import json, sys, time, pyfastx
names = json.load(open(sys.argv[2]))
fa = pyfastx.Fasta(sys.argv[1])
out = []
for _ in range(2):
    t = time.perf_counter()
    found = sum(1 for n in names if fa[n].seq)
    out.append(time.perf_counter() - t)
print(json.dumps(out))
"""


def many_times(code: str, target: str, names_file: Path) -> tuple[float, float]:
    runs = [
        json.loads(subprocess.run([sys.executable, "-c", code, target, str(names_file)], check=True,
                                  capture_output=True, text=True, env=CHILD_ENV).stdout)
        for _ in range(3)
    ]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="first,many,footprint,import")
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    require_shared_data()
    files = [str(f) for f in datasets()["uniprot15"]]
    have_samtools = shutil.which("samtools") is not None
    try:
        import pyfastx  # noqa: F401

        have_pyfastx = True
    except ImportError:
        have_pyfastx = False
    from Bio import bgzf

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["TALARIA_CACHE_DIR"] = str(work / "cache")
        store = work / "store"
        plain = work / "uniprot15.fasta"
        with open(plain, "wb") as out:
            for name in files:
                with gzip.open(name, "rb") as f:
                    shutil.copyfileobj(f, out)
        size = plain.stat().st_size
        print(f"# uniprot15: {size / 1e6:.1f} MB of FASTA", flush=True)

        if "import" in wanted:
            seconds = [import_store(files, store) for _ in range(3)]
            print("\n| import | seconds (median of 3) | MB/s |\n|---|---|---|")
            print(f"| talaria-storage, default settings | {statistics.median(seconds):.2f} | "
                  f"{size / 1e6 / statistics.median(seconds):.1f} |", flush=True)
        else:
            import_store(files, store)

        records = headers(plain)
        chosen = random.Random(42).sample(records, LOOKUPS)
        first_words = [h.split(None, 1)[0].decode() for h in chosen]
        accessions = [w.split("|")[1] for w in first_words]
        entry_names = [w.split("|")[2] for w in first_words]

        if "first" in wanted:
            bgz = work / "uniprot15.fasta.bgz"
            with open(plain, "rb") as f, bgzf.BgzfWriter(str(bgz), "wb") as out:
                shutil.copyfileobj(f, out)
            rows = []
            api = ("import sys; from talaria_storage import open_database; "
                   "print(open_database(sys.argv[1], 'uniprot')[sys.argv[2]].seq)")
            rows.append(("talaria-storage, Python API", median_of(5, [sys.executable, "-c", api, str(store), accessions[0]])))
            rows.append(("talaria-storage get (CLI)", median_of(5, [str(BIN / "talaria-storage"), "--store", str(store),
                                                                    "get", accessions[0], "--database", "uniprot"])))
            if have_samtools:
                for label, path in (("plain", plain), ("BGZF", bgz)):
                    run(["samtools", "faidx", str(path)])
                    rows.append((f"samtools faidx ({label})",
                                 median_of(5, ["samtools", "faidx", str(path), first_words[0]])))
            else:
                print("samtools not installed: its rows are skipped (apt-get install samtools)")
            if have_pyfastx:
                code = "import sys, pyfastx; print(pyfastx.Fasta(sys.argv[1])[sys.argv[2]].seq)"
                run([sys.executable, "-c", code, str(plain), first_words[0]])  # builds its .fxi index
                rows.append(("pyfastx", median_of(5, [sys.executable, "-c", code, str(plain), first_words[0]])))
            else:
                print("pyfastx not installed: its row is skipped (pip install pyfastx)")
            print("\n| first look-up, fresh process | wall time (median of 5) |\n|---|---|")
            for label, seconds in rows:
                print(f"| {label} | {ms(seconds)} |")
            python = median_of(5, [sys.executable, "-c", "pass"])
            print(f"| (an empty `python -c pass`) | {ms(python)} |", flush=True)

        if "many" in wanted:
            print("\n| 1,000 look-ups | cold | warm |\n|---|---|---|")
            for label, names in (("accessions", accessions), ("first words", first_words), ("entry names", entry_names)):
                names_file = work / f"{label}.json"
                names_file.write_text(json.dumps(names))
                cold, warm = many_times(MANY, str(store), names_file)
                print(f"| talaria-storage, {label} | {ms(cold)} | {ms(warm)} |", flush=True)
            names_file = work / "first words.json"
            if have_pyfastx:
                cold, warm = many_times(PYFASTX_MANY, str(plain), names_file)
                print(f"| pyfastx, first words | {ms(cold)} | {ms(warm)} |")
            if have_samtools:
                regions = work / "regions.txt"
                regions.write_text("\n".join(first_words) + "\n")
                for path in (plain, work / "uniprot15.fasta.bgz"):
                    if path.exists():
                        seconds = median_of(3, ["samtools", "faidx", str(path), "-r", str(regions)])
                        print(f"| samtools faidx -r ({path.suffix or 'plain'}), first words, one process | "
                              f"{ms(seconds)} | |")

        if "footprint" in wanted:
            print("\n| footprint | bytes | share |\n|---|---|---|")
            footprint(store, plain, work, records)


def stored(store: Path, hashes: set[str]) -> int:
    return sum((store / "chunks" / h[:2] / h).stat().st_size for h in hashes if (store / "chunks" / h[:2] / h).exists())


def footprint(store: Path, plain: Path, work: Path, records: list[bytes]) -> None:
    from talaria_storage import open_database

    db = open_database(str(store), "uniprot")
    manifest = db.manifest("v1")[1]
    assert manifest.lookup is not None
    table = {p.hash.to_hex() for p in manifest.lookup.partitions}
    objects = {o.hash.to_hex() for o in manifest.objects()}
    table_bytes, all_bytes = stored(store, table), stored(store, objects)
    print(f"| look-up table, v1 ({len(table)} partitions, {manifest.lookup.rows:,} rows) | {table_bytes:,} | "
          f"{table_bytes / (all_bytes - table_bytes):.1%} of the database's other objects |")
    local = store / ".index"
    if local.exists():
        local_bytes = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
        print(f"| local index folder after import (the store-wide sequence map) | {local_bytes:,} | |")
    # A second release: 1 % of the records get a changed residue (an updated sequence).
    data = plain.read_bytes().split(b"\n>")
    rng = random.Random(1)
    for i in rng.sample(range(len(data)), len(data) // 100):
        head, _, body = data[i].partition(b"\n")
        data[i] = head + b"\n" + (b"W" + body[1:] if body[:1] != b"W" else b"Y" + body[1:])
    second = work / "uniprot15.v2.fasta"
    second.write_bytes(b"\n>".join(data))
    db.import_files([str(second)], version="v2")
    manifest2 = db.manifest("v2")[1]
    assert manifest2.lookup is not None
    new = {p.hash.to_hex() for p in manifest2.lookup.partitions} - table
    added = stored(store, new)
    maps = sum(len(layer.ordinals.to_text()) for layer in manifest2.lookup.layers if layer.ordinals is not None)
    print(f"| v2 (1 % of records changed): new look-up partitions ({len(new)} of "
          f"{len(manifest2.lookup.partitions)}, {len(manifest2.lookup.layers)} layers) | {added:,} | "
          f"{added / table_bytes:.1%} of v1's table |")
    print(f"| v2: its ordinal maps (in its manifest) | {maps:,} | {maps / table_bytes:.1%} of v1's table |")
    print(f"| v2: new partitions and maps together | {added + maps:,} | {(added + maps) / table_bytes:.1%} of v1's table |")
    db.close()


if __name__ == "__main__":
    main()
