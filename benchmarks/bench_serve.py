"""Load on ``talaria-storage serve`` (issue #16): random refget sub-ranges over keep-alive, next to nginx.

uniprot15 (the 15 UniProt proteomes of ``../shared/data``) is imported into
a filesystem store and served by ``talaria-storage serve`` (one uvicorn
worker, the default). The ceiling is nginx (one worker process) serving the
same records as one uncompressed FASTA by byte range: for each request the
byte span that holds the same residues (the residues plus the line breaks
between them, found from each record's offset and line width, as a
``.fai`` index would say) is asked for with ``Range: bytes=``. ``python -m
http.server`` would be the other obvious peer, but it ignores ``Range``.

The load: ``--requests`` (1,000) random sub-ranges, drawn with seed 42 (a
random record, then a random ``[start, end)`` inside it), sent by
``--clients`` (8) threads, each over one keep-alive connection
(``httpx.Client``). Each response is checked -- status, length, and the
residues themselves against nginx's bytes with the line breaks removed -- so
an error is any answer that is not exactly right. Reported: requests/s
(wall clock over all requests), p50 and p99 latency, errors. The clients run
on the same two cores as the servers, which costs both sides alike.

Run:  cd benchmarks && ../.venv/bin/python bench_serve.py
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from _data import require_shared_data, write_decompressed

from talaria_storage import open_database, open_store
from talaria_storage.sequences.canonical import refget_id

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited with {process.returncode} before answering")
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    sys.exit(f"{what} did not answer {url} within 300 s")


class Record:
    """Where one record's residues are in the FASTA: byte offset of its first residue, line width."""

    __slots__ = ("sq", "offset", "width", "length")

    def __init__(self, sq: str, offset: int, width: int, length: int) -> None:
        self.sq, self.offset, self.width, self.length = sq, offset, width, length

    def byte_span(self, start: int, end: int) -> tuple[int, int]:
        """First and last byte (inclusive) of residues ``[start, end)`` in the file."""
        return self.offset + start + start // self.width, self.offset + (end - 1) + (end - 1) // self.width


def index_fasta(path: Path) -> list[Record]:
    """Every record's residue offset, line width and SQ id (each distinct sequence once)."""
    records: list[Record] = []
    seen: set[str] = set()
    data = path.read_bytes()
    at = 0
    while at < len(data):
        header_end = data.index(b"\n", at)
        start = header_end + 1
        nxt = data.find(b"\n>", start)
        stop = len(data) if nxt < 0 else nxt + 1
        block = data[start:stop]
        first_line = block.split(b"\n", 1)[0]
        residues = block.replace(b"\n", b"")
        sq = refget_id(residues)
        if sq not in seen and len(residues) > 1:
            seen.add(sq)
            records.append(Record(sq, start, len(first_line), len(residues)))
        at = stop
    return records


def draw(records: list[Record], count: int) -> list[tuple[Record, int, int]]:
    rng = random.Random(42)
    found = []
    for _ in range(count):
        record = rng.choice(records)
        start = rng.randrange(record.length)
        end = rng.randrange(start + 1, record.length + 1)
        found.append((record, start, end))
    return found


def run_load(
    base: str, requests: list[tuple[Record, int, int]], clients: int,
    request: Callable[[httpx.Client, Record, int, int], bytes],
) -> tuple[float, list[float], list[bytes | None]]:
    """Send ``requests`` from ``clients`` keep-alive connections; (seconds, latencies, bodies)."""
    latencies: list[float] = [0.0] * len(requests)
    bodies: list[bytes | None] = [None] * len(requests)
    barrier = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            try:
                request(http, *requests[k])  # open the connection before the clock starts
            finally:
                barrier.wait()
            for i in range(k, len(requests), clients):
                began = time.perf_counter()
                try:
                    bodies[i] = request(http, *requests[i])
                except (httpx.HTTPError, ValueError):
                    bodies[i] = None
                latencies[i] = time.perf_counter() - began

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - began, latencies, bodies


def refget_request(http: httpx.Client, record: Record, start: int, end: int) -> bytes:
    r = http.get(f"sequence/{record.sq}", params={"start": start, "end": end})
    if r.status_code != 200:
        raise ValueError(f"status {r.status_code}")
    return r.content


def nginx_request(http: httpx.Client, record: Record, start: int, end: int) -> bytes:
    first, last = record.byte_span(start, end)
    r = http.get("uniprot15.fa", headers={"Range": f"bytes={first}-{last}"})
    if r.status_code != 206:
        raise ValueError(f"status {r.status_code}")
    return r.content.replace(b"\n", b"")


def start_nginx(folder: Path, port: int) -> subprocess.Popen[bytes] | None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        print("skipped nginx: not installed (apt-get install -y nginx-light)")
        return None
    (folder / "logs").mkdir(exist_ok=True)
    conf = folder / "nginx.conf"
    conf.write_text(
        f"worker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/logs/error.log;\n"
        "events { worker_connections 256; }\n"
        "http { access_log off; sendfile on; keepalive_requests 100000;\n"
        f"  client_body_temp_path {folder}/tmp; proxy_temp_path {folder}/tmp; fastcgi_temp_path {folder}/tmp;\n"
        f"  uwsgi_temp_path {folder}/tmp; scgi_temp_path {folder}/tmp;\n"
        f"  server {{ listen 127.0.0.1:{port}; root {folder}/www; }} }}\n"
    )
    return subprocess.Popen([nginx, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"])


def summary(name: str, seconds: float, latencies: list[float], errors: int) -> dict[str, float | str | int]:
    ordered = sorted(latencies)
    return {
        "server": name,
        "requests/s": len(latencies) / seconds,
        "p50 ms": 1000 * statistics.median(ordered),
        "p99 ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    shared = require_shared_data()
    files = sorted((shared / "protein" / "uniprot_proteomes").glob("*.fasta.gz"))
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    work.chmod(0o755)  # nginx's worker runs as nobody and must read www/
    processes: list[subprocess.Popen[bytes]] = []
    try:
        (work / "www").mkdir()
        (work / "tmp").mkdir()
        fasta = work / "www" / "uniprot15.fa"
        write_decompressed(files, fasta)
        with open_store(work / "store") as store:
            open_database(store, "uniprot15").import_files(files, version="v1")
        records = index_fasta(fasta)
        requests = draw(records, args.requests)

        port = free_port()
        serve = subprocess.Popen(
            [str(Path(sys.executable).parent / "talaria-storage"), "--store", str(work / "store"), "serve",
             "--port", str(port), "--log-level", "warning"],
        )
        processes.append(serve)
        wait_for(f"http://127.0.0.1:{port}/sequence/service-info", serve, "talaria-storage serve")
        seconds, latencies, bodies = run_load(f"http://127.0.0.1:{port}/", requests, args.clients, refget_request)
        rows = []

        ceiling: list[bytes | None] | None = None
        nginx_port = free_port()
        nginx = start_nginx(work, nginx_port)
        if nginx is not None:
            processes.append(nginx)
            wait_for(f"http://127.0.0.1:{nginx_port}/", nginx, "nginx")
            n_seconds, n_latencies, ceiling = run_load(
                f"http://127.0.0.1:{nginx_port}/", requests, args.clients, nginx_request
            )
        errors = sum(
            1 for i, (_, start, end) in enumerate(requests)
            if bodies[i] is None or len(bodies[i]) != end - start or (ceiling is not None and bodies[i] != ceiling[i])
        )
        rows.append(summary("talaria-storage serve (1 worker)", seconds, latencies, errors))
        if ceiling is not None:
            n_errors = sum(1 for i, (_, s, e) in enumerate(requests) if ceiling[i] is None or len(ceiling[i]) != e - s)
            rows.append(summary("nginx 1 worker, FASTA by byte range (ceiling)", n_seconds, n_latencies, n_errors))
        print(f"{args.requests} random sub-ranges of {len(records)} distinct uniprot15 sequences, "
              f"{args.clients} keep-alive clients")
        print("| server | requests/s | p50 ms | p99 ms | errors |")
        print("|---|---:|---:|---:|---:|")
        for row in rows:
            print(f"| {row['server']} | {row['requests/s']:.0f} | {row['p50 ms']:.2f} | {row['p99 ms']:.2f} | {row['errors']} |")
        if len(rows) == 2:
            print(f"serve / nginx requests/s: {rows[0]['requests/s'] / rows[1]['requests/s']:.2f}")
        if any(row["errors"] for row in rows):
            sys.exit("errors: some responses were not exactly the asked-for residues")
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT if process is processes[0] else signal.SIGQUIT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent)
    main()
