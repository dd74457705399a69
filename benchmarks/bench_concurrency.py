"""Many writers, one store (issue #15): the long form of the stress run, with its counts.

Four writer processes (two importing into one database, one into its own, one importing
taxdumps), gc in a loop with the shortest grace the docs call safe for these writers (freshen
after 1 s, grace 4 s), a reader doing random ``get`` and ``export``, and a ``sync push`` to a
second store, for ``--seconds``; then the same with kill -9 of random writers, each re-run.
Every anomaly is listed (there must be none). ``--no-freshen`` runs it with freshening off
(writers never touch what they re-use): the race issue #15 names, which the run must catch.

It is a correctness run, not a speed benchmark: no peer tool publishes concurrently into one
store, so there is no peer column. The synthetic releases (``talaria_storage.testing.stress``)
are small on purpose, so that the run publishes often and gc collects often.

Run:  cd benchmarks && ../.venv/bin/python bench_concurrency.py [--seconds 60] [--backend file] [--no-freshen]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from talaria_storage.testing.stress import StoreSpec, StressPlan, run_stress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--grace", type=float, default=4.0)
    parser.add_argument("--no-freshen", action="store_true", help="writers never freshen: the race must show")
    args = parser.parse_args()
    freshen = 1e9 if args.no_freshen else 1.0
    for kills in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            plan = StressPlan(
                store=StoreSpec(f"file://{root / 'store'}", freshen_after=freshen),
                mirror=StoreSpec(f"file://{root / 'mirror'}", freshen_after=freshen),
                workdir=root / "work",
                seconds=args.seconds,
                grace_seconds=args.grace,
                kills=kills,
            )
            report = run_stress(plan)
        print(f"{'kill -9' if kills else 'no kills'} ({args.seconds:.0f} s, filesystem): {report.summary()}")
        for line in report.anomalies[:20]:
            print("  anomaly:", line)


if __name__ == "__main__":
    main()
