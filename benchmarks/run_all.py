"""Run every benchmark in this folder, one after another (``make bench``).

Each script runs in its own process (so one's memory or failure cannot skew the next) with
the defaults its README section quotes; ``--quick`` gives each a small size instead, for a
smoke run of a few minutes. Output is the scripts' own markdown, under a heading naming the
exact command. A script that fails does not stop the others; the exit code says whether any
failed. ``bench_sync.py`` runs when it exists.

Run from this folder::

    ../.venv/bin/python run_all.py            # full sizes (about two hours on 2 shared cores)
    ../.venv/bin/python run_all.py --quick
    ../.venv/bin/python run_all.py --skip bench_backends
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# script -> (full arguments, quick arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "bench_chunk_store": ([], ["--pieces", "3"]),
    "bench_backends": ([], ["--pieces", "4", "--small", "50", "--runs", "1"]),
    "bench_formats": ([], ["--only", "ecoli536,resfinder2025"]),
    "bench_database": (["all"], ["all", "--quick"]),
    "bench_sync": ([], ["--quick"]),
    "bench_remote_cache": ([], []),
    "bench_lookups": ([], ["--only", "first,footprint"]),
    "bench_lookup_instructions": ([], []),
    "bench_import_formats": ([], ["--runs", "1"]),
    "bench_serve": ([], ["--requests", "200"]),
    "bench_optimize": ([], ["--only", "resfinder"]),
    "bench_reduce": ([], ["--quick"]),
    "bench_delta": ([], ["--quick"]),
    "bench_pack_layout": ([], ["--only", "mmseqs2_DB"]),
}


def accepts(script: Path, option: str) -> bool:
    """True when ``script --help`` mentions ``option`` (bench_sync is written by another issue)."""
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        check=False,
        capture_output=True,
        text=True,
        cwd=HERE,
    )
    return option in done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere (a smoke run)")
    parser.add_argument(
        "--skip", action="append", default=[], help="a script to leave out (repeatable)"
    )
    args = parser.parse_args()
    failed: list[str] = []
    for name, (full, quick) in BENCHMARKS.items():
        script = HERE / f"{name}.py"
        if name in args.skip or not script.exists():
            continue
        extra = quick if args.quick else full
        if "--quick" in extra and not accepts(script, "--quick"):
            extra = [a for a in extra if a != "--quick"]
        command = [sys.executable, script.name, *extra]
        print(f"\n## {name}\n\n`{' '.join(['python', script.name, *extra])}`\n", flush=True)
        started = time.perf_counter()
        code = subprocess.run(command, check=False, cwd=HERE).returncode
        print(f"\n({name}: exit {code}, {time.perf_counter() - started:.0f} s)", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
