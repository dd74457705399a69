"""``talaria-storage serve`` as a user runs it: a process bound to loopback, answering curl-style requests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from server_data import CIRCULAR, NC_SQ, compliance_fasta, import_fasta
from talaria_storage.config.open_store import open_store

CLI = [sys.executable, "-m", "talaria_storage.cli.main"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(store: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = _free_port()
    process = subprocess.Popen(
        [*CLI, "--store", str(store), "serve", "--port", str(port), "--log-level", "warning", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "sequence/service-info", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start: {process.communicate()[1][-2000:]}")
            time.sleep(0.1)
        yield process, base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-cli") / "store"
    with open_store(root) as opened:
        import_fasta(opened, "refget", compliance_fasta())
    return root


def test_serve_binds_loopback_only_by_default_and_answers(store: Path) -> None:
    with serving(store, "--circular", CIRCULAR) as (process, base):
        listening = {c.laddr.ip for c in psutil.Process(process.pid).net_connections() if c.status == "LISTEN"}
        assert listening == {"127.0.0.1"}
        assert httpx.get(base + f"sequence/{NC_SQ}?start=5374&end=5").text == "ATCCAACCTGCAGAGTT"


def test_serve_with_workers_answers_from_each(store: Path) -> None:
    with serving(store, "--workers", "2") as (_, base):
        with httpx.Client(base_url=base) as http:
            assert all(http.get(f"sequence/{NC_SQ}?end=4").text == "GAGT" for _ in range(10))


def test_serve_names_an_unknown_database_and_exits_1(store: Path) -> None:
    result = subprocess.run(
        [*CLI, "--store", str(store), "serve", "--port", str(_free_port()), "--database", "nope"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "database 'nope' does not exist" in result.stderr and "refget" in result.stderr
