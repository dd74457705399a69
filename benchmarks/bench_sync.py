"""What a sync sends: 14 ResFinder releases pushed one after another, a no-op sync, a kill and resume.

The 14 releases in ``../shared/data/versions/resfinder`` (2017-03 to 2025-12,
2,130 to 3,206 nucleotide records each; see ``SOURCES.md`` §3a there) are
imported one after another as versions of one database in a local
filesystem store, and the store is pushed to a remote after each import.
Per release the table gives:

* **records** and **changed**: records in the release, and those whose
  exact bytes (header and sequence lines) were not in the previous release;
* **changed zst**: the changed records alone, as FASTA, compressed with
  ``zstd -19`` (the least a sync could send for them), and **manifest**: the
  framed size of the version's manifest;
* **sent**: the framed bytes of the objects the push wrote (chunks, packs,
  order objects, the manifest; the two or three 65-byte refs are left out),
  with the number of objects and of requests on the remote;
* **sent / (changed zst + manifest)**: the issue's target is <= 1.2;
* **alone**: the bytes of the release imported into an empty store (what
  the push would send without the previous versions at the remote), and
  **sent / alone**.

Then: the requests of an up-to-date push (the target is <= 3, no listing),
counted by :class:`RequestCountingBackend` from opening the remote to the
end; and the cost of a kill and resume: the whole history pushed to an
empty remote whose link is cut after 25 %, 50 % and 75 % of the calls a
clean push makes, then pushed again on a healthy link, compared with the
clean push in bytes written and requests.

The remote is a filesystem store in a temporary folder; ``--s3`` repeats the
per-release pushes against a moto S3 server on 127.0.0.1 (objects and bytes
are the same; the request counts show the S3 path). Figures are exact counts,
not timings, so one run is enough.

Run:  cd benchmarks && ../.venv/bin/python bench_sync.py [--s3]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zstandard
from _data import read_decompressed, require_shared_data
from talaria_storage.backends.faults import FaultInjectingBackend, RequestCountingBackend
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.core.errors import BackendError
from talaria_storage.sequences.chunking import ChunkingPolicy
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.storage.backend import Backend
from talaria_storage.storage.retry import RetryPolicy
from talaria_storage.storage.store import Store
from talaria_storage.sync.protocol import push

DATABASE = "resfinder"
_RELEASE = re.compile(r"resfinder_(\d{4}-\d{2}-\d{2})_([0-9a-f]+)\.fasta\.zst$")


class ByteCountingBackend(RequestCountingBackend):
    """A request counter that also adds up the bytes of every write that reaches the backend."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self.bytes_written = 0

    def put(self, key: str, data: bytes) -> None:
        self.bytes_written += len(data)
        super().put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self.bytes_written += len(data)
        return super().put_if_absent(key, data)

    def put_if_version(self, key: str, data: bytes, expected: str | None) -> str:
        self.bytes_written += len(data)
        return super().put_if_version(key, data, expected)


@dataclass
class Row:
    release: str
    records: int
    changed: int
    changed_zst: int
    manifest: int
    sent: int
    objects: int
    requests: int
    alone: int


def releases(data: Path) -> list[tuple[str, Path]]:
    found = []
    for path in sorted((data / "versions" / "resfinder").glob("resfinder_*.fasta.zst")):
        match = _RELEASE.search(path.name)
        if match:
            found.append((match.group(1), path))
    if len(found) != 14:
        sys.exit(f"expected 14 ResFinder releases in {data / 'versions' / 'resfinder'}, found {len(found)}")
    return found


def records_of(fasta: bytes) -> list[bytes]:
    """The exact bytes of each record (its header line and sequence lines)."""
    if not fasta:
        return []
    parts = fasta.split(b"\n>")
    return [parts[0] + b"\n"] + [b">" + p + b"\n" for p in parts[1:-1]] + ([b">" + parts[-1]] if len(parts) > 1 else [])


def stored_bytes(store: Store) -> int:
    """Framed bytes of every chunk and manifest in ``store``."""
    return sum(info.size for prefix in ("chunks/", "manifests/") for info in store.backend.list(prefix))


def database(store: Store, policy: ChunkingPolicy | None) -> SequenceDatabase:
    return SequenceDatabase(store, DATABASE, chunking=policy)


def alone(path: Path, version: str, policy: ChunkingPolicy | None) -> int:
    """Bytes of one release imported into an empty store."""
    store = Store(MemoryBackend())
    store.initialise()
    database(store, policy).import_files([path], version=version)
    return stored_bytes(store)


@contextmanager
def remote_backend(kind: str, work: Path) -> Iterator[Backend]:
    with ExitStack() as stack:
        if kind == "filesystem":
            backend: Backend = FilesystemBackend(work / f"remote-{uuid.uuid4().hex[:8]}")
        else:
            from talaria_storage.backends.s3 import S3Backend

            from talaria_storage.testing import emulators

            endpoint = stack.enter_context(emulators.moto_server(work))
            session = emulators.s3_test_session()
            bucket = f"b-{uuid.uuid4().hex[:12]}"
            session.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
            backend = S3Backend(bucket, "bench", endpoint_url=endpoint, session=session, **emulators.S3_TEST_OPTIONS)
        stack.callback(backend.close)
        yield backend


def push_releases(
    data: Path, work: Path, kind: str, policy: ChunkingPolicy | None
) -> tuple[list[Row], Store, Backend, dict[str, int]]:
    """Import and push each release in turn; returns the rows, the local store, the remote and the no-op counts."""
    local = Store(FilesystemBackend(work / f"local-{kind}"))
    local.initialise()
    cctx = zstandard.ZstdCompressor(level=19)
    rows: list[Row] = []
    previous: set[bytes] = set()
    with remote_backend(kind, work) as inner:
        counter = ByteCountingBackend(inner)
        remote = Store(counter)
        remote.initialise()
        for version, path in releases(data):
            database(local, policy).import_files([path], version=version)
            records = records_of(read_decompressed(path))
            changed = [r for r in records if r not in previous]
            previous = set(records)
            counter.reset()
            result = push(local, remote)
            head = local.refs.get(f"refs/{DATABASE}/HEAD")
            assert head is not None
            rows.append(
                Row(
                    release=version,
                    records=len(records),
                    changed=len(changed),
                    changed_zst=len(cctx.compress(b"".join(changed))) if changed else 0,
                    manifest=len(local.manifests.get_framed(head)),
                    sent=result.bytes_copied,
                    objects=result.objects_copied,
                    requests=counter.total,
                    alone=alone(path, version, policy),
                )
            )
        counter.reset()
        seen = Store(counter)
        seen.require_initialised()
        noop = push(local, seen)
        assert noop.objects_copied == 0 and not noop.refs_updated
        noop_counts = {"total": counter.total, "listings": counter.listings, **counter.counts}
        return rows, local, inner, noop_counts


def kill_and_resume(local: Store, work: Path) -> list[tuple[str, int, int, int, int]]:
    """(cut point, clean bytes, extra bytes, clean requests, extra requests) for cuts at 25/50/75 %."""
    clean = ByteCountingBackend(FilesystemBackend(work / f"clean-{uuid.uuid4().hex[:8]}"))
    push(local, Store(clean))
    out = []
    for fraction in (0.25, 0.5, 0.75):
        counter = ByteCountingBackend(FilesystemBackend(work / f"cut-{uuid.uuid4().hex[:8]}"))
        link = FaultInjectingBackend(counter, cut_after=int(clean.total * fraction))
        try:
            push(local, Store(link), retry=RetryPolicy(attempts=1))
            raise SystemExit("the cut did not stop the push")
        except BackendError:
            pass
        push(local, Store(counter))  # the link is back: resume
        out.append(
            (
                f"{int(fraction * 100)} %",
                clean.bytes_written,
                counter.bytes_written - clean.bytes_written,
                clean.total,
                counter.total - clean.total,
            )
        )
    return out


def release_table(rows: list[Row]) -> str:
    head = (
        "| release | records | changed | changed zst | manifest | sent | objects | requests "
        "| sent / (changed zst + manifest) | alone | sent / alone |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        base = r.changed_zst + r.manifest
        lines.append(
            f"| {r.release} | {r.records} | {r.changed} | {r.changed_zst:,} | {r.manifest:,} | {r.sent:,} "
            f"| {r.objects} | {r.requests} | {r.sent / base:.2f} | {r.alone:,} | {r.sent / r.alone:.2f} |"
        )
    total_sent = sum(r.sent for r in rows[1:])
    total_base = sum(r.changed_zst + r.manifest for r in rows[1:])
    total_alone = sum(r.alone for r in rows[1:])
    lines.append(
        f"| **releases 2-14** | | {sum(r.changed for r in rows[1:])} | {sum(r.changed_zst for r in rows[1:]):,} "
        f"| {sum(r.manifest for r in rows[1:]):,} | {total_sent:,} | {sum(r.objects for r in rows[1:])} "
        f"| {sum(r.requests for r in rows[1:])} | {total_sent / total_base:.2f} | {total_alone:,} "
        f"| {total_sent / total_alone:.2f} |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--s3", action="store_true", help="also push to a moto S3 server on 127.0.0.1")
    parser.add_argument(
        "--chunk-target-kib", type=int, default=None, metavar="N",
        help="chunk with target N KiB (min N/4, max 4N) instead of the default policy",
    )
    args = parser.parse_args()
    policy = None
    if args.chunk_target_kib:
        target = args.chunk_target_kib << 10
        policy = ChunkingPolicy(min_size=target // 4, target_size=target, max_size=4 * target)
    data = require_shared_data()
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as folder:
        work = Path(folder)
        rows, local, _, noop = push_releases(data, work, "filesystem", policy)
        chunking = policy or ChunkingPolicy()
        print(
            f"### Pushing each release (remote: filesystem store; chunks of {chunking.min_size >> 10}-"
            f"{chunking.max_size >> 10} KiB, target {chunking.target_size >> 10} KiB)\n"
        )
        print(release_table(rows))
        listed = ", ".join(f"{k} {v}" for k, v in sorted(noop.items()) if k not in ("total", "listings"))
        print(f"\nUp-to-date push: **{noop['total']} requests** on the remote ({listed}), {noop['listings']} listings.\n")
        print("### Kill and resume (the whole history to an empty remote, link cut, then pushed again)\n")
        print("| cut after | clean push: bytes | extra bytes | clean push: requests | extra requests |")
        print("|---|---:|---:|---:|---:|")
        for point, clean_bytes, extra_bytes, clean_requests, extra_requests in kill_and_resume(local, work):
            print(f"| {point} of the calls | {clean_bytes:,} | {extra_bytes:,} | {clean_requests} | {extra_requests} |")
        if args.s3:
            s3_rows, _, _, s3_noop = push_releases(data, work, "s3", policy)
            print("\n### Pushing each release (remote: moto S3 on 127.0.0.1)\n")
            print(release_table(s3_rows))
            print(f"\nUp-to-date push to S3: **{s3_noop['total']} requests**, {s3_noop['listings']} listings.")


if __name__ == "__main__":
    main()
