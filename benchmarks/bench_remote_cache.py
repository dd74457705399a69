"""Look-ups against a remote-style store, with and without the remote-object cache (issue #13).

uniprot15 (the 15 UniProt proteomes of ``../shared/data``) is imported into a
filesystem store, which is then opened as ``faults+file://STORE?latency=0.02``:
every backend call waits 20 ms, as a request to a cloud bucket does, and
``open_store`` reads such a store through the ``[cache]``. Each row is a new
process (so nothing is warm in memory) that opens the store, looks up one
accession, then 1,000 random ones (BASELINES' seed-42 draw of record names,
looked up by accession), and reports the backend requests, the bytes they
returned and the wall time:

* **cache off**: ``[cache] enabled = false``, every process fetches what it reads;
* **fresh cache**: an empty cache folder;
* **warm cache**: the folder the previous process filled;
* **v3, cache off**: after two more releases (each with 1 % of the sequences
  changed), the same look-ups into v3, whose look-up index has three layers:
  the small layers' filters (in the manifest) let a look-up of a record they
  do not hold skip them.

No row has a local look-up index (the store's ``.index`` folder is removed
before each): the first look-up reads the version's stored look-up table
(the manifest, one partition), then the record's chunk, and its pack by
byte ranges: the pack's stream table, then the one residue block it needs
(``talaria_storage/storage/chunk_ranges.py``). Later look-ups into a pack
already opened read the rest of it whole. The
warm row shows what the cache saves a second process: the objects come from
the cache folder, and only the ref crosses the network. Peers: pyfastx answers from
a local file only (no remote form), so it is not a row here; see the
"Sequence databases" section for local look-ups next to pyfastx and samtools.

Run:  cd benchmarks && ../.venv/bin/python bench_remote_cache.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _data import require_shared_data
from bench_formats import datasets
from talaria_storage.backends.faults import RequestCountingBackend

from talaria_storage import open_database, open_store
from talaria_storage.sequences.identifiers import accession_from_header

LATENCY = 0.02
LOOKUPS = 1000


def child(location: str, config: str, names_file: str) -> None:
    """One fresh process: open, one look-up, then the 1,000; print JSON figures."""
    names = json.loads(Path(names_file).read_text())
    started = time.perf_counter()
    store = open_store(location, config_path=config or None, create=False)
    # The outermost wrapper (the cache, or with the cache off the latency drill) reads through
    # ``inner``: count there, so every request that would cross the network is counted once.
    outer = store.backend
    counter = RequestCountingBackend(outer.inner)  # type: ignore[attr-defined]
    outer.inner = counter  # type: ignore[attr-defined]
    db = open_database(store, "uniprot15")
    snapshot = db.snapshot()
    assert snapshot.get_all(names[0]), names[0]
    first = time.perf_counter() - started
    first_requests, first_bytes = counter.total, counter.bytes_read
    started = time.perf_counter()
    found = sum(1 for name in names if snapshot.get_all(name))
    many = time.perf_counter() - started
    print(
        json.dumps(
            {
                "first_s": first,
                "first_requests": first_requests,
                "first_bytes": first_bytes,
                "many_s": many,
                "many_requests": counter.total - first_requests,
                "many_bytes": counter.bytes_read - first_bytes,
                "found": found,
            }
        )
    )


def add_releases(store_dir: Path, work: Path) -> int:
    """Releases v2 and v3 of the database, each with 1 % of its records' sequences changed (as
    ``bench_lookups.py`` makes v2); how many look-up layers v3 has."""
    with open_store(str(store_dir)) as store:
        db = open_database(store, "uniprot15")
        plain = work / "v1.fasta"
        with plain.open("wb") as out:
            db.export(out, version="v1")
        data = plain.read_bytes().split(b"\n>")
        for version, seed in (("v2", 1), ("v3", 2)):
            rng = random.Random(seed)
            for i in rng.sample(range(len(data)), len(data) // 100):
                head, _, body = data[i].partition(b"\n")
                data[i] = head + b"\n" + (b"W" + body[1:] if body[:1] != b"W" else b"Y" + body[1:])
            release = work / f"{version}.fasta"
            release.write_bytes(b"\n>".join(data))
            db.import_files([str(release)], version=version, taxonomy="header")
        lookup = db.manifest("v3")[1].lookup
        return len(lookup.layers) if lookup is not None else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    require_shared_data()
    files = datasets()["uniprot15"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store_dir = work / "store"
        os.environ["TALARIA_CACHE_DIR"] = str(work / "index-cache")
        print("importing uniprot15 ...", file=sys.stderr, flush=True)
        with open_store(str(store_dir)) as store:
            db = open_database(store, "uniprot15")
            db.import_files(files, version="v1", taxonomy="header")
            accessions = sorted({accession_from_header(r.header) for r in db.records()})
        database_bytes = sum(p.stat().st_size for p in store_dir.rglob("*") if p.is_file() and "chunks" in p.parts)
        names = random.Random(42).sample(accessions, LOOKUPS)
        names_file = work / "names.json"
        names_file.write_text(json.dumps(names))
        off = work / "cache-off.toml"
        off.write_text("[cache]\nenabled = false\n")
        location = f"faults+file://{store_dir}?latency={LATENCY}"
        rows = []

        def measure(label: str, config: str, folder: str) -> None:
            shutil.rmtree(store_dir / ".index", ignore_errors=True)  # no local index in any row
            env = dict(os.environ, TALARIA_CACHE_DIR=str(work / f"cache-{folder}"))
            done = subprocess.run(
                [sys.executable, __file__, "--child", location, config, str(names_file)],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
            rows.append((label, json.loads(done.stdout)))

        for label, config, folder in (
            ("cache off", str(off), "off"),
            ("fresh cache", "", "on"),
            ("warm cache", "", "on"),
        ):
            measure(label, config, folder)
        layers = add_releases(store_dir, work)
        measure(f"v3 ({layers} look-up layers), cache off", str(off), "off-v3")
    print(f"### Remote look-ups through the cache: uniprot15, latency {LATENCY * 1000:.0f} ms per request\n")
    print(f"Database objects (chunks/): {database_bytes / 1e6:.1f} MB.\n")
    print("| process | first look-up s | requests | bytes read | 1,000 look-ups s | requests | bytes read | found |")
    print("|---|---|---|---|---|---|---|---|")
    for label, r in rows:
        print(
            f"| {label} | {r['first_s']:.3f} | {r['first_requests']} | {r['first_bytes']:,} "
            f"| {r['many_s']:.2f} | {r['many_requests']} | {r['many_bytes']:,} | {r['found']} |"
        )


if __name__ == "__main__":
    main()
