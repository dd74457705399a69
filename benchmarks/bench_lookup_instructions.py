"""Cold and warm look-ups counted in instructions (issue #13): figures this noisy VM repeats exactly.

Wall-clock times of 1,000 warm look-ups vary by 30 % from run to run here, more than most
changes to the look-up path. ``valgrind --tool=callgrind`` counts the instructions a
process executes instead, the same total for the same inputs whatever else the machine
does (with ``PYTHONHASHSEED`` fixed). One process opens a freshly imported uniprot15 and
makes 1,000 random look-ups (``random.Random(42)``, as ``bench_lookups.py``) in passes.
Runs of 0, 1, 2 and 4 passes are counted: the first pass less none is the cold pass (the
objects are in the page cache; what is counted is the decoding), and half of 4 less 2 is
what 1,000 warm look-ups cost. Callgrind runs without the CPU's SHA instructions, so the
SHA-256 checks of the objects a cold pass reads weigh several times what they do natively.
Each identifier form is a row, and pyfastx on the first words (``fa[name].seq``, its index
made beforehand) is counted the same way beside them.

Run:  cd benchmarks && ../.venv/bin/python bench_lookup_instructions.py [--store DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _data import require_shared_data
from bench_formats import datasets

LOOKUPS = 1000

OURS = """
import json, sys
from talaria_storage import open_database
names = json.load(open(sys.argv[2]))
snapshot = open_database(sys.argv[1], "uniprot").snapshot()
for _ in range(int(sys.argv[3])):
    assert all(snapshot.get_all(n) for n in names)
"""

PYFASTX = """
import json, sys, pyfastx
names = json.load(open(sys.argv[2]))
fa = pyfastx.Fasta(sys.argv[1])
for _ in range(int(sys.argv[3])):
    assert all(fa[n].seq for n in names)
"""


def instructions(code: str, target: str, names: Path, passes: int, work: Path) -> int:
    """Instructions callgrind counted for one process making ``passes`` passes."""
    out = work / f"callgrind.{os.getpid()}.{names.stem}.{passes}.{abs(hash(code))}"
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", code, target,
         str(names), str(passes)],
        capture_output=True, text=True, env=env, check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no total:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def pass_costs(code: str, target: str, names: Path, work: Path) -> tuple[int, int]:
    """Instructions of the first (cold) pass of 1,000 look-ups (1 pass less none: the process
    that opens the database and makes no look-up) and of a warm pass (half of 4 passes less 2)."""
    with ThreadPoolExecutor(2) as pool:  # two runs at once: one per core
        none, one, two, four = pool.map(lambda k: instructions(code, target, names, k, work), (0, 1, 2, 4))
    return one - none, (four - two) // 2


def row(label: str, costs: tuple[int, int]) -> str:
    cold, warm = costs
    return f"| {label} | {cold / 1e6:.1f} M | {warm / 1e6:.1f} M | {warm / LOOKUPS / 1e3:.1f} k |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="a store holding uniprot15 as database 'uniprot' (else one is imported)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("skipped: valgrind is not installed (apt-get install -y valgrind)")
        return
    require_shared_data()
    files = datasets()["uniprot15"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = Path(args.store) if args.store else work / "store"
        if not args.store:
            print("importing uniprot15 ...", file=sys.stderr, flush=True)
            from talaria_storage import open_database

            open_database(str(store), "uniprot").import_files(files, version="v1")
        words = []
        plain = work / "uniprot15.fasta"
        with plain.open("wb") as out:
            for name in files:
                with gzip.open(name, "rb") as f:
                    for line in f:
                        out.write(line)
                        if line.startswith(b">"):
                            words.append(line[1:].split()[0].decode())
        picked = random.Random(42).sample(words, LOOKUPS)
        forms = {
            "accessions": [w.split("|")[1] for w in picked],
            "first words": picked,
            "entry names": [w.split("|")[2] for w in picked],
        }
        print("| 1,000 look-ups, instructions (callgrind) | cold pass | warm pass | warm, per look-up |")
        print("|---|---:|---:|---:|")
        for form, names in forms.items():
            path = work / f"{form.replace(' ', '_')}.json"
            path.write_text(json.dumps(names))
            print(row(f"talaria-storage, {form}", pass_costs(OURS, str(store), path, work)), flush=True)
        try:
            import pyfastx

            pyfastx.Fasta(str(plain))  # its index, made beforehand as ours is at import
        except ImportError:
            print("| pyfastx | skipped: not installed (pip install pyfastx) | | |")
            return
        path = work / "first_words.json"
        print(row("pyfastx, first words", pass_costs(PYFASTX, str(plain), path, work)))


if __name__ == "__main__":
    main()
