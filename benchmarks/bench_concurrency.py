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

``--backend s3|gcs|azure`` runs it on the store in a fresh bucket of the test emulator (moto,
fake-gcs-server, Azurite), started on 127.0.0.1 for the run; the sync destination stays a folder.

Run:  cd benchmarks && ../.venv/bin/python bench_concurrency.py [--seconds 60] [--backend file] [--no-freshen]
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from talaria_storage.testing import emulators
from talaria_storage.testing.stress import StoreSpec, StressPlan, run_stress


@contextmanager
def store_spec(backend: str, root: Path, freshen: float) -> Iterator[StoreSpec]:
    """The stressed store: a folder, or a fresh bucket on an emulator started for the run."""
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    if backend == "file":
        yield StoreSpec(f"file://{root / 'store'}", freshen_after=freshen)
    elif backend == "s3":
        with emulators.moto_server(root) as endpoint:
            emulators.s3_test_session().client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
            env = {"AWS_ACCESS_KEY_ID": emulators.S3_TEST_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": emulators.S3_TEST_SECRET_KEY}
            yield StoreSpec(f"s3://{bucket}/store", {"endpoint_url": endpoint, **emulators.S3_TEST_OPTIONS}, env, freshen)
    elif backend == "gcs":
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        with emulators.fake_gcs_server(root) as endpoint:
            admin = storage.Client(project="bench", credentials=AnonymousCredentials(),
                                   client_options={"api_endpoint": endpoint})
            admin.create_bucket(bucket)
            admin.close()
            yield StoreSpec(f"gs://{bucket}/store", {"endpoint_url": endpoint, **emulators.GCS_TEST_OPTIONS},
                            freshen_after=freshen)
    else:
        from azure.storage.blob import BlobServiceClient

        with emulators.azurite_server(root) as connection:
            with BlobServiceClient.from_connection_string(connection) as admin:
                admin.create_container(bucket)
            yield StoreSpec(f"az://{bucket}/store", {"connection_string": connection, **emulators.AZURE_TEST_OPTIONS},
                            freshen_after=freshen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--grace", type=float, default=4.0)
    parser.add_argument("--no-freshen", action="store_true", help="writers never freshen: the race must show")
    parser.add_argument("--backend", choices=("file", "s3", "gcs", "azure"), default="file")
    args = parser.parse_args()
    freshen = 1e9 if args.no_freshen else 1.0
    for kills in (False, True):
        with tempfile.TemporaryDirectory() as tmp, store_spec(args.backend, Path(tmp), freshen) as store:
            root = Path(tmp)
            plan = StressPlan(
                store=store,
                mirror=StoreSpec(f"file://{root / 'mirror'}", freshen_after=freshen),
                workdir=root / "work",
                seconds=args.seconds,
                grace_seconds=args.grace,
                kills=kills,
            )
            report = run_stress(plan)
        print(f"{'kill -9' if kills else 'no kills'} ({args.seconds:.0f} s, {args.backend}): {report.summary()}")
        for line in report.anomalies[:20]:
            print("  anomaly:", line)


if __name__ == "__main__":
    main()
